"""TaskQueues: create, fetch, list (by the workers they select), update, delete; and the
worker-queue memberships routing reads, kept current with every queue change."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from taskrouter_sandbox import expressions
from taskrouter_sandbox.domain import validation as check
from taskrouter_sandbox.domain.errors import EngineError
from taskrouter_sandbox.domain.validation import MAX_RESERVED_WORKERS, QUEUE_ORDERS, new_sid
from taskrouter_sandbox.domain.validation import attributes as parse_attributes
from taskrouter_sandbox.domain.values import Paging
from taskrouter_sandbox.domain.workflow import configuration_queues
from taskrouter_sandbox.engine.listing import paged, parse_ordering
from taskrouter_sandbox.engine.operations import Operations
from taskrouter_sandbox.state import events, membership, reads
from taskrouter_sandbox.state.operation import Operation
from taskrouter_sandbox.store import Page

ORDER_COLUMNS = {
    "datecreated": ("q.date_created", "date_created"),
    "dateupdated": ("q.date_updated", "date_updated"),
}
UPDATABLE = frozenset(
    {
        "friendly_name",
        "target_workers",
        "max_reserved_workers",
        "task_order",
        "reservation_activity_sid",
        "assignment_activity_sid",
    }
)


def named(op: Operation, workspace_sid: str, *, sid: str | None, name: str | None) -> dict:
    """The sid and target_workers of the workspace's TaskQueue a filter names by TaskQueueSid
    or TaskQueueName (the Workers list and the Workers statistics); 400 if none."""
    if sid is not None:
        check.sid(sid, "WQ", "TaskQueueSid")
        column, value, label = "sid", sid, f"TaskQueueSid {sid}"
    else:
        column, value, label = "friendly_name", name, f"TaskQueueName {name!r}"
    row = op.tx.one(
        f"SELECT sid, target_workers FROM task_queues WHERE {column} = ? AND workspace_sid = ?",
        (value, workspace_sid),
    )
    if row is None:
        raise EngineError(f"{label} is not a TaskQueue of workspace {workspace_sid}")
    return row


def get_task_queue(ops: Operations, workspace_sid: str, sid: str) -> dict[str, Any]:
    with ops.read() as op:
        return reads.task_queue(op, workspace_sid, sid)


def list_task_queues(
    ops: Operations,
    workspace_sid: str,
    paging: Paging,
    *,
    friendly_name: str | None = None,
    evaluate_worker_attributes: str | None = None,
    worker_sid: str | None = None,
    ordering: str | None = None,
) -> Page:
    order = parse_ordering(ordering, ORDER_COLUMNS, "q")
    worker_attributes: dict[str, Any] | None = None
    if evaluate_worker_attributes is not None:
        worker_attributes = parse_attributes(
            check.json_object(evaluate_worker_attributes, "EvaluateWorkerAttributes")
        )
    with ops.read() as op:
        reads.workspace(op, workspace_sid)
        if worker_sid is not None:
            check.sid(worker_sid, "WK", "WorkerSid")
            worker = op.tx.one(
                "SELECT attributes FROM workers WHERE sid = ? AND workspace_sid = ?",
                (worker_sid, workspace_sid),
            )
            if worker is None:
                raise EngineError(
                    f"WorkerSid {worker_sid} is not a Worker of workspace {workspace_sid}"
                )
            worker_attributes = parse_attributes(worker["attributes"])
        where, params = ["q.workspace_sid = ?"], [workspace_sid]
        if friendly_name is not None:
            where.append("q.friendly_name = ?")
            params.append(friendly_name)

        def matches(row: dict[str, Any]) -> bool:
            return expressions.parse(row["target_workers"]).evaluate(worker_attributes)

        return paged(
            op.tx,
            paging,
            select=reads.TASK_QUEUE_SELECT,
            where=where,
            params=params,
            order=order,
            predicate=matches if worker_attributes is not None else None,
        )


def _values(op: Operation, workspace_sid: str, changes: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if changes.get("friendly_name") is not None:
        values["friendly_name"] = check.text(changes["friendly_name"], "FriendlyName")
    if changes.get("target_workers") is not None:
        check.expression(changes["target_workers"], "TargetWorkers")
        values["target_workers"] = changes["target_workers"]
    if changes.get("max_reserved_workers") is not None:
        values["max_reserved_workers"] = check.integer(
            changes["max_reserved_workers"], "MaxReservedWorkers", 1, MAX_RESERVED_WORKERS
        )
    if changes.get("task_order") is not None:
        if changes["task_order"] not in QUEUE_ORDERS:
            raise EngineError(f"TaskOrder must be FIFO or LIFO, got {changes['task_order']!r}")
        values["task_order"] = changes["task_order"]
    for key, parameter in (
        ("reservation_activity_sid", "ReservationActivitySid"),
        ("assignment_activity_sid", "AssignmentActivitySid"),
    ):
        if changes.get(key) is not None:
            activity = reads.referenced_activity(op, workspace_sid, changes[key], parameter)
            values[key] = activity["sid"]
    return values


def _check_name(
    op: Operation, workspace_sid: str, friendly_name: str, sid: str | None = None
) -> None:
    clash = op.tx.scalar(
        "SELECT sid FROM task_queues WHERE workspace_sid = ? AND friendly_name = ?"
        " AND sid IS NOT ?",
        (workspace_sid, friendly_name, sid),
    )
    if clash:
        raise EngineError(
            f"FriendlyName {friendly_name!r}: a TaskQueue with that name already exists ({clash})"
        )


def create_task_queue(
    ops: Operations,
    workspace_sid: str,
    friendly_name: str,
    *,
    target_workers: str | None = None,
    max_reserved_workers: int | None = None,
    task_order: str | None = None,
    reservation_activity_sid: str | None = None,
    assignment_activity_sid: str | None = None,
) -> dict[str, Any]:
    with ops.write() as op:
        return add(
            op,
            workspace_sid,
            friendly_name,
            target_workers=target_workers,
            max_reserved_workers=max_reserved_workers,
            task_order=task_order,
            reservation_activity_sid=reservation_activity_sid,
            assignment_activity_sid=assignment_activity_sid,
        )


def add(
    op: Operation,
    workspace_sid: str,
    friendly_name: str,
    *,
    target_workers: str | None = None,
    max_reserved_workers: int | None = None,
    task_order: str | None = None,
    reservation_activity_sid: str | None = None,
    assignment_activity_sid: str | None = None,
) -> dict[str, Any]:
    """create_task_queue inside an operation already open (a workspace's template)."""
    check.text(friendly_name, "FriendlyName")
    reads.workspace(op, workspace_sid)
    values = _values(
        op,
        workspace_sid,
        {
            "friendly_name": friendly_name,
            "target_workers": "1==1" if target_workers is None else target_workers,
            "max_reserved_workers": 1 if max_reserved_workers is None else max_reserved_workers,
            "task_order": task_order or "FIFO",
            "reservation_activity_sid": reservation_activity_sid,
            "assignment_activity_sid": assignment_activity_sid,
        },
    )
    _check_name(op, workspace_sid, friendly_name)
    stamp = op.stamp()
    sid = new_sid("WQ")
    op.tx.insert(
        "task_queues",
        {
            "sid": sid,
            "workspace_sid": workspace_sid,
            **values,
            "date_created": stamp,
            "date_updated": stamp,
        },
    )
    membership.sync_queue(op, sid)
    events.record(
        op,
        workspace_sid,
        "task-queue.created",
        "task_queue",
        sid,
        f"TaskQueue {friendly_name} created",
        {
            "TaskQueueSid": sid,
            "TaskQueueName": friendly_name,
            "TaskQueueTargetExpression": values["target_workers"],
        },
    )
    return reads.task_queue(op, workspace_sid, sid)


def update_task_queue(
    ops: Operations, workspace_sid: str, sid: str, **changes: Any
) -> dict[str, Any]:
    """Accepts friendly_name, target_workers, max_reserved_workers, task_order,
    reservation_activity_sid, assignment_activity_sid."""
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise TypeError(f"update_task_queue() got unexpected fields {sorted(unknown)}")
    with ops.write() as op:
        queue = reads.task_queue(op, workspace_sid, sid)
        values = _values(op, workspace_sid, changes)
        if "friendly_name" in values:
            _check_name(op, workspace_sid, values["friendly_name"], sid)
        if values:
            values["date_updated"] = op.stamp()
            op.tx.update("task_queues", sid, values)
            if values.get("target_workers", queue["target_workers"]) != queue["target_workers"]:
                membership.sync_queue(op, sid)
                events.record(
                    op,
                    workspace_sid,
                    "task-queue.expression.updated",
                    "task_queue",
                    sid,
                    f"TaskQueue {queue['friendly_name']} target workers expression updated",
                    {
                        "TaskQueueSid": sid,
                        "TaskQueueName": values.get("friendly_name", queue["friendly_name"]),
                        "TaskQueueTargetExpression": values["target_workers"],
                    },
                )
            op.route_again("task-queue.updated", workspace_sid, sid)
        return reads.task_queue(op, workspace_sid, sid)


def delete_task_queue(ops: Operations, workspace_sid: str, sid: str) -> None:
    with ops.write() as op:
        queue = reads.task_queue(op, workspace_sid, sid)
        for workflow in op.tx.all(
            "SELECT sid, friendly_name, configuration FROM workflows WHERE workspace_sid = ?",
            (workspace_sid,),
        ):
            if sid in configuration_queues(workflow["configuration"]):
                raise EngineError(
                    f"TaskQueue {sid} ({queue['friendly_name']}) cannot be deleted: "
                    f"Workflow {workflow['sid']} ({workflow['friendly_name']}) routes to it"
                )
        # Read from tasks_queue_order's entries alone (the queue's own indexes hold only its
        # waiting tasks, or every task it ever had).
        active = op.tx.scalar(
            "SELECT count(*) FROM tasks WHERE workspace_sid = ? AND task_queue_sid = ?"
            f" AND assignment_status IN ({reads.ACTIVE_TASKS})",
            (workspace_sid, sid),
        )
        if active:
            raise EngineError(
                f"TaskQueue {sid} ({queue['friendly_name']}) cannot be deleted: it holds "
                f"{active} active task(s)"
            )
        op.tx.delete("task_queues", sid)
        events.record(
            op,
            workspace_sid,
            "task-queue.deleted",
            "task_queue",
            sid,
            f"TaskQueue {queue['friendly_name']} deleted",
            {"TaskQueueSid": sid, "TaskQueueName": queue["friendly_name"]},
        )


def ensure_memberships(ops: Operations) -> None:
    """Build worker-to-queue memberships once for a database made before routing."""
    with ops.write() as op:
        if op.tx.setting("worker_queues_built") is None:
            membership.rebuild(op)
            op.tx.set_setting("worker_queues_built", "1")
