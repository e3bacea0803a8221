"""Pure TaskRouter rules and values: errors, validation, lifecycles, workflow documents.

Standard library plus the sandbox's leaf modules (expressions, jsonlimits) only: no database,
no HTTP, no clock. Every other package of the sandbox may import it; it imports none of them.
"""
