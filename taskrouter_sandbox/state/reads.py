"""Row reads inside an operation: each resource by SID, scoped to its workspace (else NotFound),
with the names its JSON shows joined in. Workspaces, queues, workflows, workers, tasks and
reservations come from the transaction's row cache (Transaction.cached): read once, and kept by
the write transactions from one to the next until a write may have changed them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from taskrouter_sandbox.clock import from_storage
from taskrouter_sandbox.domain.errors import EngineError, NotFound
from taskrouter_sandbox.domain.lifecycle import ACTIVE_TASK_STATUSES, OPEN_RESERVATION_STATUSES
from taskrouter_sandbox.domain.validation import sid as check_sid
from taskrouter_sandbox.state.operation import Operation

WORKSPACE_SELECT = (
    "SELECT w.*, da.friendly_name AS default_activity_name,"
    " ta.friendly_name AS timeout_activity_name"
    " FROM workspaces w"
    " LEFT JOIN activities da ON da.sid = w.default_activity_sid"
    " LEFT JOIN activities ta ON ta.sid = w.timeout_activity_sid"
)
ACTIVITY_SELECT = "SELECT a.* FROM activities a"
TASK_CHANNEL_SELECT = "SELECT c.* FROM task_channels c"
WORKER_SELECT = (
    "SELECT k.*, a.friendly_name AS activity_name"
    " FROM workers k JOIN activities a ON a.sid = k.activity_sid"
)
TASK_QUEUE_SELECT = (
    "SELECT q.*, ra.friendly_name AS reservation_activity_name,"
    " aa.friendly_name AS assignment_activity_name"
    " FROM task_queues q"
    " LEFT JOIN activities ra ON ra.sid = q.reservation_activity_sid"
    " LEFT JOIN activities aa ON aa.sid = q.assignment_activity_sid"
)
WORKFLOW_SELECT = "SELECT f.* FROM workflows f"
TASK_SELECT = (
    "SELECT t.*, q.friendly_name AS task_queue_friendly_name,"
    " f.friendly_name AS workflow_friendly_name, c.unique_name AS task_channel_unique_name"
    " FROM tasks t"
    " LEFT JOIN task_queues q ON q.sid = t.task_queue_sid"
    " LEFT JOIN workflows f ON f.sid = t.workflow_sid"
    " LEFT JOIN task_channels c ON c.sid = t.task_channel_sid"
)
RESERVATION_SELECT = (
    "SELECT r.*, k.friendly_name AS worker_name"
    " FROM reservations r JOIN workers k ON k.sid = r.worker_sid"
)
# The reservations that take up a worker's capacity on a task channel in a multitasking
# workspace: offers waiting for an answer and accepted tasks (routing/__init__.py says why a
# wrapping task does not). For worker_sid and task_channel_sid, through reservations_worker.
CHANNEL_LOAD = (
    "SELECT count(*) FROM reservations r JOIN tasks t ON t.sid = r.task_sid"
    " WHERE r.worker_sid = {worker} AND r.reservation_status IN ('pending', 'accepted')"
    " AND t.task_channel_sid = {channel}"
)
WORKER_CHANNEL_SELECT = (
    "SELECT wc.*, c.unique_name AS task_channel_unique_name, ("
    + CHANNEL_LOAD.format(worker="wc.worker_sid", channel="wc.task_channel_sid")
    + ") AS assigned_tasks"
    " FROM worker_channels wc JOIN task_channels c ON c.sid = wc.task_channel_sid"
)
EVENT_SELECT = "SELECT e.* FROM events e"
# What the joined columns of TASK_SELECT and RESERVATION_SELECT come from (for tx.cached).
_TASK_JOINS = frozenset({"task_queues", "workflows", "task_channels"})
_TASK_JOIN_KEYS = frozenset({"task_queue_sid", "workflow_sid", "task_channel_sid"})
_TASK_JOINED = frozenset({"friendly_name", "unique_name"})
_RESERVATION_JOINS = frozenset({"workers"})
_RESERVATION_JOIN_KEYS = frozenset({"worker_sid"})
_NAME = frozenset({"friendly_name"})
_ACTIVITIES = frozenset({"activities"})
_WORKER_JOIN_KEYS = frozenset({"activity_sid"})
_QUEUE_JOIN_KEYS = frozenset({"reservation_activity_sid", "assignment_activity_sid"})
_WORKSPACE_JOIN_KEYS = frozenset({"default_activity_sid", "timeout_activity_sid"})


def workspace(op: Operation, workspace_sid: str) -> dict[str, Any]:
    """The workspace row, a copy the caller may change."""
    return dict(workspace_row(op, workspace_sid))


def workspace_row(op: Operation, workspace_sid: str) -> dict[str, Any]:
    """The operation's cached workspace row itself (callers only read it, and never keep it
    past the operation: a later one may patch it in place), else NotFound.
    Looked up once per operation (routing asks for it many times per reservation), from the
    transaction's cache (Transaction.cached), which keeps it from one write to the next."""
    row = op.workspaces.get(workspace_sid)
    if row is None:
        tx = op.tx
        row = tx.cached(
            "workspaces",
            workspace_sid,
            lambda: tx.one(WORKSPACE_SELECT + " WHERE w.sid = ?", (workspace_sid,)),
            joins=_ACTIVITIES,
            keys=_WORKSPACE_JOIN_KEYS,
            joined=_NAME,
            view=True,
        )
        if row is None:
            raise NotFound(f"Workspace {workspace_sid} not found")
        op.workspaces[workspace_sid] = row
    return row


def workspace_or_none(op: Operation, workspace_sid: str) -> dict[str, Any] | None:
    """The operation's cached workspace row (not a copy: callers only read it, within the
    operation)."""
    if workspace_sid not in op.workspaces:
        try:
            workspace_row(op, workspace_sid)
        except NotFound:
            return None
    return op.workspaces[workspace_sid]


def scoped(
    op: Operation, select: str, alias: str, name: str, workspace_sid: str, sid: str
) -> dict[str, Any]:
    """A row of the workspace by SID, else NotFound naming the resource."""
    workspace_row(op, workspace_sid)
    row = op.tx.one(
        f"{select} WHERE {alias}.sid = ? AND {alias}.workspace_sid = ?", (sid, workspace_sid)
    )
    if row is None:
        raise NotFound(f"{name} {sid} not found in workspace {workspace_sid}")
    return row


def _cached_in_workspace(
    op: Operation,
    read: Callable[[Operation, str], dict[str, Any] | None],
    resource: str,
    workspace_sid: str,
    sid: str,
) -> dict[str, Any]:
    """read(op, sid), the cached row, when it is the workspace's."""
    workspace_row(op, workspace_sid)
    row = read(op, sid)
    if row is None or row["workspace_sid"] != workspace_sid:
        raise NotFound(f"{resource} {sid} not found in workspace {workspace_sid}")
    return row


def activity(op: Operation, workspace_sid: str, sid: str) -> dict[str, Any]:
    return scoped(op, ACTIVITY_SELECT, "a", "Activity", workspace_sid, sid)


def activity_by_sid(op: Operation, sid: str) -> dict[str, Any] | None:
    return op.tx.one(ACTIVITY_SELECT + " WHERE a.sid = ?", (sid,))


def worker(op: Operation, workspace_sid: str, sid: str) -> dict[str, Any]:
    return _cached_in_workspace(op, worker_by_sid, "Worker", workspace_sid, sid)


def worker_by_sid(op: Operation, sid: str, *, view: bool = False) -> dict[str, Any] | None:
    """A worker with its activity's name, read through the row cache (view: Transaction.cached's
    uncopied row, only to read at once)."""
    tx = op.tx
    return tx.cached(
        "workers",
        sid,
        lambda: tx.one(WORKER_SELECT + " WHERE k.sid = ?", (sid,)),
        joins=_ACTIVITIES,
        keys=_WORKER_JOIN_KEYS,
        joined=_NAME,
        view=view,
    )


def task_queue(op: Operation, workspace_sid: str, sid: str) -> dict[str, Any]:
    return _cached_in_workspace(op, task_queue_row, "TaskQueue", workspace_sid, sid)


def task_queue_row(op: Operation, sid: str, *, view: bool = False) -> dict[str, Any] | None:
    """A queue with its activities' names, read through the row cache: routing reads its
    name, target, order, reservation limit and activities several times per reservation
    (view: Transaction.cached's uncopied row, only to read; only an update of the queue
    itself changes it)."""
    tx = op.tx
    return tx.cached(
        "task_queues",
        sid,
        lambda: tx.one(TASK_QUEUE_SELECT + " WHERE q.sid = ?", (sid,)),
        joins=_ACTIVITIES,
        keys=_QUEUE_JOIN_KEYS,
        joined=_NAME,
        view=view,
    )


def workflow(op: Operation, workspace_sid: str, sid: str) -> dict[str, Any]:
    return _cached_in_workspace(op, workflow_row, "Workflow", workspace_sid, sid)


def workflow_row(op: Operation, sid: str) -> dict[str, Any] | None:
    """A workflow, read through the row cache."""
    tx = op.tx
    return tx.cached("workflows", sid, lambda: tx.one(WORKFLOW_SELECT + " WHERE f.sid = ?", (sid,)))


def task_channel(op: Operation, workspace_sid: str, sid: str) -> dict[str, Any]:
    return scoped(op, TASK_CHANNEL_SELECT, "c", "TaskChannel", workspace_sid, sid)


def task(op: Operation, workspace_sid: str, sid: str) -> dict[str, Any]:
    return with_age(op, _cached_in_workspace(op, task_row, "Task", workspace_sid, sid))


def task_row(op: Operation, sid: str, *, view: bool = False) -> dict[str, Any] | None:
    """A task with its queue, workflow and channel names, read through the row cache (view:
    Transaction.cached's uncopied row, only to read at once)."""
    tx = op.tx
    return tx.cached(
        "tasks",
        sid,
        lambda: tx.one(TASK_SELECT + " WHERE t.sid = ?", (sid,)),
        joins=_TASK_JOINS,
        keys=_TASK_JOIN_KEYS,
        joined=_TASK_JOINED,
        view=view,
    )


def seed_task(op: Operation, row: dict[str, Any]) -> None:
    """Cache a task row (TASK_SELECT's columns) just read or written in this transaction."""
    op.tx.seed(
        "tasks", row["sid"], row, joins=_TASK_JOINS, keys=_TASK_JOIN_KEYS, joined=_TASK_JOINED
    )


def task_status(op: Operation, sid: str) -> str | None:
    """The task's assignment status as this transaction sees it (None: no such task)."""
    row = task_row(op, sid, view=True)
    return None if row is None else row["assignment_status"]


def seed_reservation(op: Operation, row: dict[str, Any]) -> None:
    """Cache a reservation row (RESERVATION_SELECT's columns) just read or written."""
    op.tx.seed(
        "reservations",
        row["sid"],
        row,
        joins=_RESERVATION_JOINS,
        keys=_RESERVATION_JOIN_KEYS,
        joined=_NAME,
    )


def reservation_row(op: Operation, sid: str, *, view: bool = False) -> dict[str, Any] | None:
    """A reservation with its worker's name, read through the row cache (view:
    Transaction.cached's uncopied row, only to read at once)."""
    tx = op.tx
    return tx.cached(
        "reservations",
        sid,
        lambda: tx.one(RESERVATION_SELECT + " WHERE r.sid = ?", (sid,)),
        joins=_RESERVATION_JOINS,
        keys=_RESERVATION_JOIN_KEYS,
        joined=_NAME,
        view=view,
    )


def reservation(op: Operation, workspace_sid: str, sid: str) -> dict[str, Any]:
    workspace_row(op, workspace_sid)
    row = reservation_row(op, sid)
    if row is None or row["workspace_sid"] != workspace_sid:
        raise NotFound(f"Reservation {sid} not found in workspace {workspace_sid}")
    return row


def referenced_activity(
    op: Operation, workspace_sid: str, sid: object, parameter: str
) -> dict[str, Any]:
    """An activity named in a parameter: a bad one is a 400 naming the parameter."""
    check_sid(sid, "WA", parameter)
    row = op.tx.one(
        ACTIVITY_SELECT + " WHERE a.sid = ? AND a.workspace_sid = ?", (sid, workspace_sid)
    )
    if row is None:
        raise EngineError(f"{parameter} {sid} is not an Activity of workspace {workspace_sid}")
    return row


def with_age(op: Operation, task_row: dict[str, Any]) -> dict[str, Any]:
    """The task with `age`: whole seconds since its virtual start (else its creation)."""
    task_row["age"] = task_age(op, task_row)
    return task_row


def task_age(op: Operation, task_row: Mapping[str, Any]) -> int:
    """Whole seconds since the task's virtual start (else its creation)."""
    start = task_row.get("virtual_start_time") or task_row["date_created"]
    return max(0, int((op.now() - from_storage(start)).total_seconds()))


def quoted(statuses: tuple[str, ...]) -> str:
    """Statuses as the inside of a SQL IN (...): the lifecycle's lists, written once."""
    return ", ".join(f"'{status}'" for status in statuses)


ACTIVE_TASKS = quoted(ACTIVE_TASK_STATUSES)
OPEN_RESERVATIONS = quoted(OPEN_RESERVATION_STATUSES)
