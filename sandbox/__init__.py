"""A local TaskRouter v1: the REST resources, the routing engine and its callbacks.

It knows nothing of the quickstart server in routes/; app.py mounts it at /sandbox.
"""
