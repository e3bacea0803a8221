"""Which queues a worker belongs to (worker_queues), kept current inside each operation.

Routing reads candidates from these rows: the members of a queue in idle order, with their
availability; the single-tasking free flag on them is kept by the store's triggers.
"""

from __future__ import annotations

from taskrouter_sandbox import expressions
from taskrouter_sandbox.domain.validation import attributes
from taskrouter_sandbox.state.operation import Operation

_INSERT = (
    "INSERT INTO worker_queues (task_queue_sid, worker_sid, workspace_sid, available,"
    " idle_since) VALUES (?, ?, ?, ?, ?)"
)


def sync_worker(op: Operation, worker_sid: str) -> None:
    """Recompute which queues select a worker (after it was created or its attributes
    changed), keeping each kept membership's idle time."""
    tx = op.tx
    worker = tx.one(
        "SELECT sid, workspace_sid, attributes, available, date_status_changed"
        " FROM workers WHERE sid = ?",
        (worker_sid,),
    )
    if worker is None:
        return
    worker_attributes = attributes(worker["attributes"])
    current = {
        row["task_queue_sid"]: row["idle_since"]
        for row in tx.all(
            "SELECT task_queue_sid, idle_since FROM worker_queues WHERE worker_sid = ?",
            (worker_sid,),
        )
    }
    wanted = {
        queue["sid"]
        for queue in tx.all(
            "SELECT sid, target_workers FROM task_queues WHERE workspace_sid = ?",
            (worker["workspace_sid"],),
        )
        if expressions.parse(queue["target_workers"]).evaluate(worker_attributes)
    }
    idle_since = max(current.values(), default=worker["date_status_changed"])
    for queue_sid in current.keys() - wanted:
        tx.execute(
            "DELETE FROM worker_queues WHERE task_queue_sid = ? AND worker_sid = ?",
            (queue_sid, worker_sid),
        )
    for queue_sid in wanted - current.keys():
        tx.execute(
            _INSERT,
            (queue_sid, worker_sid, worker["workspace_sid"], worker["available"], idle_since),
        )


def sync_queue(op: Operation, task_queue_sid: str) -> None:
    """Recompute a queue's members (after it was created or its target_workers changed)."""
    tx = op.tx
    queue = tx.one(
        "SELECT sid, workspace_sid, target_workers FROM task_queues WHERE sid = ?",
        (task_queue_sid,),
    )
    if queue is None:
        return
    expression = expressions.parse(queue["target_workers"])
    tx.execute("DELETE FROM worker_queues WHERE task_queue_sid = ?", (task_queue_sid,))
    # A worker's idle time is the same in every queue it belongs to: keep it if known.
    rows = [
        (
            task_queue_sid,
            worker["sid"],
            queue["workspace_sid"],
            worker["available"],
            worker["idle"],
        )
        for worker in tx.all(
            "SELECT k.sid, k.attributes, k.available,"
            " COALESCE((SELECT max(idle_since) FROM worker_queues m"
            " WHERE m.worker_sid = k.sid), k.date_status_changed) AS idle"
            " FROM workers k WHERE k.workspace_sid = ?",
            (queue["workspace_sid"],),
        )
        if expression.evaluate(attributes(worker["attributes"]))
    ]
    tx.executemany(_INSERT, rows)


def rebuild(op: Operation) -> None:
    """Every membership from scratch (a database from before routing existed)."""
    for queue in op.tx.all("SELECT sid FROM task_queues"):
        sync_queue(op, queue["sid"])


def worker_moved(op: Operation, worker_sid: str, available: int, stamp: str) -> None:
    """A worker changed activity: its availability in every queue, idle from now."""
    op.tx.execute(
        "UPDATE worker_queues SET available = ?, idle_since = ? WHERE worker_sid = ?",
        (available, stamp, worker_sid),
    )


def reservation_ended(op: Operation, worker_sid: str) -> None:
    """A worker's reservation ended: it goes to the back of the idle order."""
    op.tx.execute(
        "UPDATE worker_queues SET idle_since = ? WHERE worker_sid = ?",
        (op.stamp(), worker_sid),
    )
