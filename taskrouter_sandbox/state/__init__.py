"""Inside one transaction: the operation, row reads, events, memberships and status moves.

An `Operation` is one engine call's unit of work: its transaction, the clock, and what it
collects (events to write, effects to publish after commit, routing hints, the soonest
deadline, per-operation caches). `transitions` is the one module that writes a task's,
a reservation's or a worker's status. Imports store and domain, never routing or engine.
"""
