"""When TaskRouter's deadlines fire: reservation timeouts, workflow target timeouts and task
TTLs, each due item in its own operation. What each does is in state/transitions.py and
routing/placement.py; the thread that calls fire_due is taskrouter_sandbox/scheduler.py."""

from __future__ import annotations

from datetime import datetime

from taskrouter_sandbox.clock import from_storage, to_storage
from taskrouter_sandbox.engine.operations import Operations
from taskrouter_sandbox.routing import placement
from taskrouter_sandbox.state import transitions

# How many due items fire_due takes per read; each fires in its own transaction.
DUE_BATCH = 200


def fire_due(ops: Operations) -> float | None:
    """Fire every reservation timeout, target timeout and task TTL due at clock.now(),
    each in its own transaction; return the seconds until the next deadline (None: none).

    The scheduler's tick: safe to call from any thread or process at any time.
    """
    stamp = to_storage(ops.clock.now())
    while True:
        with ops.read() as op:
            tx = op.tx
            reservations = tx.all(
                "SELECT sid FROM reservations WHERE reservation_status = 'pending'"
                " AND timeout_at <= ? ORDER BY timeout_at LIMIT ?",
                (stamp, DUE_BATCH),
            )
            # Each status named in the text, not bound: tasks_ttl holds only the waiting
            # tasks, and a bound status would have SQLite prepare the statement again for
            # each new value, to see that it applies (store/schema.py WAITING_TASKS).
            expired = [
                row
                for status in ("pending", "reserved")
                for row in tx.all(
                    f"SELECT sid FROM tasks WHERE assignment_status = '{status}'"
                    " AND timeout_at <= ? ORDER BY timeout_at LIMIT ?",
                    (stamp, DUE_BATCH),
                )
            ]
            moved = tx.all(
                "SELECT sid FROM tasks WHERE assignment_status = 'pending'"
                " AND target_timeout_at <= ? ORDER BY target_timeout_at LIMIT ?",
                (stamp, DUE_BATCH),
            )
        if not (reservations or expired or moved):
            break
        for row in reservations:
            with ops.write() as op:
                transitions.time_out_reservation(op, row["sid"], stamp)
        for row in expired:
            with ops.write() as op:
                transitions.expire_task(op, row["sid"], stamp)
        for row in moved:
            with ops.write() as op:
                placement.target_timed_out(op, row["sid"])
    return next_deadline(ops)


def earliest_deadline(ops: Operations) -> datetime | None:
    """The earliest pending deadline: a reservation's timeout, a task's TTL or target timeout."""
    with ops.read() as op:
        tx = op.tx
        candidates = [
            tx.scalar(
                "SELECT min(timeout_at) FROM reservations WHERE reservation_status = 'pending'"
            ),
            tx.scalar("SELECT min(timeout_at) FROM tasks WHERE assignment_status = 'pending'"),
            tx.scalar("SELECT min(timeout_at) FROM tasks WHERE assignment_status = 'reserved'"),
            tx.scalar(
                "SELECT min(target_timeout_at) FROM tasks WHERE assignment_status = 'pending'"
                # Says what min() skips anyway, so that the partial index serves it.
                " AND target_timeout_at IS NOT NULL"
            ),
        ]
    due = [from_storage(value) for value in candidates if value]
    return min(due) if due else None


def next_deadline(ops: Operations) -> float | None:
    """Seconds from clock.now() to the earliest pending deadline (0 if overdue)."""
    due = earliest_deadline(ops)
    if due is None:
        return None
    return max(0.0, (due - ops.clock.now()).total_seconds())
