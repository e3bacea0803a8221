"""Matching: the best workers for a pending task, and the best task for an available worker.

Workers are taken in idle order from their queue's memberships (single-tasking: only the free
ones, through an index), filtered by the target's expression, ordered by its order_by.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from taskrouter_sandbox.clock import to_storage
from taskrouter_sandbox.domain import lifecycle
from taskrouter_sandbox.domain.validation import attributes
from taskrouter_sandbox.domain.values import Actor
from taskrouter_sandbox.domain.workflow import OrderBy, Target, taskrouter_context
from taskrouter_sandbox.routing.known_workers import only_worker
from taskrouter_sandbox.routing.placement import offered, target_timed_out, workflow_plan
from taskrouter_sandbox.state import reads, transitions
from taskrouter_sandbox.state.operation import Operation


def _worker_context(row: dict[str, Any]) -> dict[str, Any]:
    context = attributes(row["attributes"])
    context.update(
        sid=row["worker_sid"],
        friendly_name=row["friendly_name"],
        activity_sid=row["activity_sid"],
        activity_name=row["activity_name"],
    )
    return context


def _sort_key(order_by: OrderBy, context: dict[str, Any]) -> tuple:
    """Numbers by order_by (missing or non-numeric values last); ties keep idle order."""
    key: list[Any] = []
    for path, descending in order_by:
        value: Any = context
        for segment in path:
            value = value.get(segment) if isinstance(value, dict) else None
        if isinstance(value, bool) or not isinstance(value, int | float):
            key.append((1, 0))
        else:
            key.append((0, -value if descending else value))
    return tuple(key)


_CANDIDATE_COLUMNS = (
    "SELECT wq.worker_sid, k.friendly_name, k.attributes, k.activity_sid,"
    " a.friendly_name AS activity_name"
)
_CANDIDATE_JOINS = (
    " JOIN workers k ON k.sid = wq.worker_sid JOIN activities a ON a.sid = k.activity_sid"
)
# Single-tasking: the free flag (store.FREE_VALUE, kept by triggers) says it all, and its
# index yields the free members already in idle order.
_SINGLE_TASK_CANDIDATES = (
    _CANDIDATE_COLUMNS
    + " FROM worker_queues wq INDEXED BY worker_queues_free"
    + _CANDIDATE_JOINS
    + " WHERE wq.task_queue_sid = ? AND wq.free = 1"
)
_MULTI_TASK_CANDIDATES = (
    _CANDIDATE_COLUMNS
    + " FROM worker_queues wq"
    + _CANDIDATE_JOINS
    + " WHERE wq.task_queue_sid = ? AND wq.available = 1"
)
# A task that ignores capacity (its RoutingTarget worker, lifecycle.ignores_capacity): any
# member of the queue, whatever its availability and load.
_ANY_MEMBER_CANDIDATES = (
    _CANDIDATE_COLUMNS
    + " FROM worker_queues wq"
    + _CANDIDATE_JOINS
    + " WHERE wq.task_queue_sid = ?"
)
# Multi-tasking: the worker's channel for the task's channel is available and holds fewer
# tasks than its capacity (one indexed row, and a count over the worker's open reservations).
_MULTI_TASK_ROOM = (
    " AND EXISTS (SELECT 1 FROM worker_channels wc WHERE wc.worker_sid = wq.worker_sid"
    " AND wc.task_channel_sid = ? AND wc.available AND wc.capacity > ("
    + reads.CHANNEL_LOAD.format(worker="wq.worker_sid", channel="wc.task_channel_sid")
    + "))"
)
# A bound on the offers one worker gets in one pass, so a bug cannot loop; far above any
# worker's total capacity in practice.
MAX_OFFERS_PER_WORKER = 1000
_TASK_COLUMNS = (
    "SELECT seq, sid, workspace_sid, attributes, priority, date_created, virtual_start_time,"
    " assignment_status, task_queue_sid, workflow_sid, filter_index, target_index,"
    " target_timeout_at, routing_date, task_channel_sid, routing_target FROM tasks"
)
# A queue's pending tasks in the order it hands them out (the Task Queue resource's
# assignment precedence for FIFO; the queue-ordering page for LIFO, which "does not consider
# the Task priority"). _better compares tasks the same way, so a scan can stop early.
_QUEUE_HEAD = {
    "FIFO": _TASK_COLUMNS + " INDEXED BY tasks_fifo WHERE task_queue_sid = ?"
    " AND assignment_status = 'pending' ORDER BY priority DESC, date_created, seq",
    "LIFO": _TASK_COLUMNS + " INDEXED BY tasks_newest WHERE task_queue_sid = ?"
    " AND assignment_status = 'pending' ORDER BY date_created DESC, seq DESC",
}


def pending_in_queue_order(op: Operation, queue_sid: str) -> list[dict[str, Any]]:
    """The queue's pending tasks, the one it would hand out first first."""
    queue = reads.task_queue_row(op, queue_sid, view=True)
    task_order = None if queue is None else queue["task_order"]
    if task_order not in _QUEUE_HEAD:
        return []
    return op.tx.all(_QUEUE_HEAD[task_order], (queue_sid,))


def _target(op: Operation, task: dict[str, Any]) -> Target | None:
    filter_index, target_index = task["filter_index"], task["target_index"]
    if filter_index is None or filter_index < 0 or target_index is None or target_index < 0:
        return None
    found = workflow_plan(op, task["workflow_sid"])
    if found is None:
        return None
    filters = found[1].filters
    if filter_index >= len(filters) or target_index >= len(filters[filter_index].targets):
        return None
    target = filters[filter_index].targets[target_index]
    return target if target.queue == task["task_queue_sid"] else None


def _multi_task(op: Operation, workspace_sid: str) -> bool:
    return bool(reads.workspace_row(op, workspace_sid)["multi_task_enabled"])


def _refused(op: Operation, task: dict[str, Any]) -> set[str]:
    """Workers this task must not be offered to: those holding a pending offer of it,
    and those who rejected it or let it time out since it was last placed."""
    return {
        row["worker_sid"]
        for row in op.tx.all(
            "SELECT worker_sid FROM reservations WHERE task_sid = ? AND ("
            " reservation_status = 'pending' OR (reservation_status IN ('rejected', 'timeout')"
            " AND date_updated >= ?))",
            (task["sid"], task["routing_date"] or ""),
        )
    }


def route_task(op: Operation, workspace_sid: str, task_sid: str) -> None:
    """Offer a pending task to the best available workers of its queue."""
    task = reads.task_row(op, task_sid)
    if task is None or task["assignment_status"] != "pending" or not task["task_queue_sid"]:
        return
    moment = op.now()
    if task["target_timeout_at"] is not None and task["target_timeout_at"] <= to_storage(moment):
        target_timed_out(op, task_sid)
        return  # the move noted task.placed, which routes it again
    queue = reads.task_queue_row(op, task["task_queue_sid"], view=True)
    if queue is None:
        return
    workers, free = _candidates(op, workspace_sid, task, queue["max_reserved_workers"], moment)
    for worker_sid in workers:
        transitions.reserve(
            op,
            workspace_sid,
            task_sid,
            worker_sid,
            Actor.workspace(workspace_sid),
            holds_no_offer=free,
        )
    offered(op, task_sid, reserved=bool(workers))  # skip_if, when it just entered a target


def _candidates(
    op: Operation,
    workspace_sid: str,
    task: dict[str, Any],
    wanted: int,
    moment: datetime,
) -> tuple[list[str], bool]:
    """The workers to offer the task to, best first, and whether they are all free members
    (single-tasking: available and holding no pending offer, by the triggers' flag)."""
    target = _target(op, task)
    refused = _refused(op, task)
    params: list[Any] = [task["task_queue_sid"]]
    free = False
    if lifecycle.ignores_capacity(task):
        sql = _ANY_MEMBER_CANDIDATES
    elif _multi_task(op, workspace_sid):
        sql = _MULTI_TASK_CANDIDATES + _MULTI_TASK_ROOM
        params.append(task["task_channel_sid"])
    else:
        sql = _SINGLE_TASK_CANDIDATES
        free = True
    pinned = only_worker(op, task, target)
    if pinned is not None:
        sql += " AND wq.worker_sid = ?"
        params.append(pinned)
    sql += " ORDER BY wq.idle_since, wq.worker_sid"
    expression = target.expression if target else None
    order_by = target.order_by if target else ()
    context: dict[str, Any] | None = None
    if expression is not None:
        context = {
            "task": attributes(task["attributes"]),
            "taskrouter": taskrouter_context(moment),
        }
    chosen: list[tuple[tuple, int, str]] = []
    cursor = op.tx.execute(sql, params)
    try:
        for position, row in enumerate(cursor):
            if row["worker_sid"] in refused:
                continue
            worker: dict[str, Any] | None = None
            if context is not None:
                worker = _worker_context(row)
                context["worker"] = worker
                if not expression.evaluate(context):
                    continue
            if order_by:
                worker = worker or _worker_context(row)
                chosen.append((_sort_key(order_by, worker), position, row["worker_sid"]))
                continue
            chosen.append(((), position, row["worker_sid"]))
            if len(chosen) >= wanted:
                break
    finally:
        cursor.close()
    chosen.sort()
    return [worker_sid for _, _, worker_sid in chosen[:wanted]], free


def route_worker(op: Operation, workspace_sid: str, worker_sid: str) -> None:
    """Offer an available worker the best pending task among the queues it belongs to."""
    multi_task = _multi_task(op, workspace_sid)
    # Multi-tasking: one offer at a time, looking again while its channels have room.
    for _ in range(MAX_OFFERS_PER_WORKER if multi_task else 1):
        if not _route_worker_once(op, workspace_sid, worker_sid, multi_task):
            return


def _channels_with_room(op: Operation, worker_sid: str) -> set[str]:
    """The task channels on which a multitasking worker may take another task."""
    return {
        row["task_channel_sid"]
        for row in op.tx.all(
            reads.WORKER_CHANNEL_SELECT + " WHERE wc.worker_sid = ? AND wc.available",
            (worker_sid,),
        )
        if row["capacity"] > row["assigned_tasks"]
    }


def _route_worker_once(
    op: Operation, workspace_sid: str, worker_sid: str, multi_task: bool
) -> bool:
    worker = reads.worker_by_sid(op, worker_sid)
    if worker is None or not worker["available"]:
        return False
    worker["worker_sid"] = worker_sid
    open_channels: set[str] = set()
    if multi_task:
        open_channels = _channels_with_room(op, worker_sid)
        if not open_channels:
            return False
    # Single-tasking: only a pending offer holds the worker (see the note at the top).
    elif op.tx.scalar(
        "SELECT 1 FROM reservations WHERE worker_sid = ? AND reservation_status = 'pending'",
        (worker_sid,),
    ):
        return False
    refused = {
        row["task_sid"]: row["date_updated"]
        for row in op.tx.all(
            "SELECT task_sid, max(date_updated) AS date_updated FROM reservations"
            " WHERE worker_sid = ? AND reservation_status IN ('rejected', 'timeout')"
            " GROUP BY task_sid",
            (worker_sid,),
        )
    }
    queues = op.tx.all(
        "SELECT q.sid, q.task_order FROM worker_queues wq"
        " JOIN task_queues q ON q.sid = wq.task_queue_sid WHERE wq.worker_sid = ?",
        (worker_sid,),
    )
    if not queues:
        return False
    moment = op.now()
    stamp = to_storage(moment)
    context: dict[str, Any] = {"worker": _worker_context(worker)}
    preferred = reads.workspace_row(op, workspace_sid)["prioritize_queue_order"]
    best: dict[str, Any] | None = None
    best_order = ""
    for queue in queues:
        order = queue["task_order"]
        cursor = op.tx.execute(_QUEUE_HEAD[order], (queue["sid"],))
        try:
            for task in cursor:
                # The queue hands tasks out in _better's order: once one cannot beat the
                # best so far, none after it can.
                if best is not None and not _better(task, order, best, best_order, preferred):
                    break
                if task["target_timeout_at"] is not None and task["target_timeout_at"] <= stamp:
                    continue  # the timer moves it on
                if task["sid"] in refused and refused[task["sid"]] >= (task["routing_date"] or ""):
                    continue
                if multi_task and task["task_channel_sid"] not in open_channels:
                    continue
                target = _target(op, task)
                pinned = only_worker(op, task, target)
                if pinned is not None and pinned != worker_sid:
                    continue
                if target is not None and target.expression is not None:
                    context["task"] = attributes(task["attributes"])
                    context.setdefault("taskrouter", taskrouter_context(moment))
                    if not target.expression.evaluate(context):
                        continue
                best, best_order = task, order
                break
        finally:
            cursor.close()
    if best is None:
        return False
    transitions.reserve(
        op,
        workspace_sid,
        best["sid"],
        worker_sid,
        Actor.workspace(workspace_sid),
        holds_no_offer=not multi_task,
    )
    queue = reads.task_queue_row(op, best["task_queue_sid"], view=True)
    if queue["max_reserved_workers"] > 1:
        # The other offers of a multi-reservation task go out with this one.
        others, free = _candidates(
            op, workspace_sid, best, queue["max_reserved_workers"] - 1, moment
        )
        for other in others:
            transitions.reserve(
                op,
                workspace_sid,
                best["sid"],
                other,
                Actor.workspace(workspace_sid),
                holds_no_offer=free,
            )
    return True


def _better(
    task: dict[str, Any], order: str, best: dict[str, Any], best_order: str, preferred: str
) -> bool:
    """Whether a worker gets task (from a queue of this task_order) before best.

    Between a FIFO and a LIFO queue, the workspace's PrioritizeQueueOrder names the kind
    served first (the queue-ordering page). Between FIFO tasks: higher priority, then the
    oldest; between LIFO tasks: the newest, whatever the priority.
    """
    if order != best_order:
        return order == preferred
    created = (task["date_created"], task["seq"])
    best_created = (best["date_created"], best["seq"])
    if order == "LIFO":
        return created > best_created
    if task["priority"] != best["priority"]:
        return task["priority"] > best["priority"]
    return created < best_created
