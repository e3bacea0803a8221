"""Tasks: create (placed by their workflow, or straight into a queue), fetch, list (with
Twilio's filters and orderings), update (attributes, priority, channel, or a status the API
allows: canceled, wrapping, completed), delete."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from taskrouter_sandbox.clock import to_storage
from taskrouter_sandbox.domain import validation as check
from taskrouter_sandbox.domain.errors import EngineError
from taskrouter_sandbox.domain.lifecycle import (
    FINAL_TASK_STATUSES,
    TASK_STATUSES,
    check_task_request,
)
from taskrouter_sandbox.domain.validation import (
    DEFAULT_TASK_TIMEOUT,
    MAX_PRIORITY,
    MAX_REASON,
    MAX_TASK_TIMEOUT,
    new_sid,
)
from taskrouter_sandbox.domain.validation import attributes as parse_attributes
from taskrouter_sandbox.domain.values import Paging
from taskrouter_sandbox.domain.versions import check_if_match
from taskrouter_sandbox.engine import channels
from taskrouter_sandbox.engine.listing import paged, parse_ordering
from taskrouter_sandbox.engine.operations import Operations
from taskrouter_sandbox.routing import placement
from taskrouter_sandbox.state import events, reads, transitions
from taskrouter_sandbox.store import Page

ORDER_COLUMNS = {
    "datecreated": ("t.date_created", "date_created"),
    "priority": ("t.priority", "priority"),
    "virtualstarttime": ("COALESCE(t.virtual_start_time, t.date_created)", "virtual_start"),
}


def get_task(ops: Operations, workspace_sid: str, sid: str) -> dict[str, Any]:
    with ops.read() as op:
        return reads.task(op, workspace_sid, sid)


def list_tasks(
    ops: Operations,
    workspace_sid: str,
    paging: Paging,
    *,
    priority: int | None = None,
    assignment_status: list[str] | None = None,
    workflow_sid: str | None = None,
    workflow_name: str | None = None,
    task_queue_sid: str | None = None,
    task_queue_name: str | None = None,
    evaluate_task_attributes: str | None = None,
    routing_target: str | None = None,
    ordering: str | None = None,
    has_addons: bool | None = None,
) -> Page:
    order = parse_ordering(ordering, ORDER_COLUMNS, "t")
    matcher = None
    if evaluate_task_attributes is not None:
        matcher = check.expression(evaluate_task_attributes, "EvaluateTaskAttributes")
    where, params = ["t.workspace_sid = ?"], [workspace_sid]
    if assignment_status:
        bad = sorted(set(assignment_status) - set(TASK_STATUSES))
        if bad:
            raise EngineError(
                f"AssignmentStatus {', '.join(bad)} is not valid: use one or more of "
                + ", ".join(TASK_STATUSES)
            )
        where.append(f"t.assignment_status IN ({', '.join('?' for _ in assignment_status)})")
        params.extend(assignment_status)
    for value, clause in (
        (priority, "t.priority = ?"),
        (workflow_sid, "t.workflow_sid = ?"),
        (workflow_name, "f.friendly_name = ?"),
        (task_queue_sid, "t.task_queue_sid = ?"),
        (task_queue_name, "q.friendly_name = ?"),
        (routing_target, "t.routing_target = ?"),
    ):
        if value is not None:
            where.append(clause)
            params.append(value)
    if has_addons is not None:
        where.append(
            "(t.addons IS NOT NULL AND t.addons NOT IN ('', '{}'))"
            if has_addons
            else "(t.addons IS NULL OR t.addons IN ('', '{}'))"
        )
    select = reads.TASK_SELECT.replace(
        "SELECT t.*,",
        "SELECT t.*, COALESCE(t.virtual_start_time, t.date_created) AS virtual_start,",
    )
    if assignment_status and task_queue_sid is not None:
        # A queue's tasks in some statuses: tasks_queue_order holds (workspace, status,
        # queue). SQLite would rather read tasks_queue, which is in the list's order but holds
        # no status, and so walk every task the queue ever held.
        select = select.replace(" FROM tasks t", " FROM tasks t INDEXED BY tasks_queue_order", 1)
    with ops.read() as op:
        reads.workspace(op, workspace_sid)
        result = paged(
            op.tx,
            paging,
            select=select,
            where=where,
            params=params,
            order=order,
            predicate=(lambda row: matcher.evaluate(parse_attributes(row["attributes"])))
            if matcher
            else None,
        )
        for row in result.rows:
            reads.with_age(op, row)
        return result


def create_task(
    ops: Operations,
    workspace_sid: str,
    *,
    attributes: str | None = None,
    workflow_sid: str | None = None,
    priority: int | None = None,
    timeout: int | None = None,
    task_channel: str | None = None,
    virtual_start_time: datetime | None = None,
    routing_target: str | None = None,
    ignore_capacity: bool | None = None,
    task_queue_sid: str | None = None,
) -> dict[str, Any]:
    """A task in the queue its workflow's first matching filter names (or default_filter).

    With task_queue_sid and no workflow the task goes straight into that queue.
    """
    attributes = check.json_object("{}" if attributes is None else attributes, "Attributes")
    if priority is not None:
        check.integer(priority, "Priority", 0, MAX_PRIORITY)
    timeout = check.integer(
        DEFAULT_TASK_TIMEOUT if timeout is None else timeout, "Timeout", 1, MAX_TASK_TIMEOUT
    )
    if workflow_sid is not None:
        check.sid(workflow_sid, "WW", "WorkflowSid")
    if task_queue_sid is not None:
        check.sid(task_queue_sid, "WQ", "TaskQueueSid")
    if routing_target is not None:
        check.sid(routing_target, "WK", "RoutingTarget")
    elif ignore_capacity is not None:
        raise EngineError("IgnoreCapacity can only be used when RoutingTarget names a Worker")
    with ops.write() as op:
        tx = op.tx
        reads.workspace(op, workspace_sid)
        if workflow_sid is None and task_queue_sid is None:
            workflows = tx.all(
                "SELECT sid FROM workflows WHERE workspace_sid = ? LIMIT 2", (workspace_sid,)
            )
            if len(workflows) != 1:
                raise EngineError(
                    "WorkflowSid is required: the workspace has "
                    + ("no workflow" if not workflows else "more than one workflow")
                )
            workflow_sid = workflows[0]["sid"]
        workflow = None if workflow_sid is None else reads.workflow_row(op, workflow_sid)
        if workflow_sid is not None and (
            workflow is None or workflow["workspace_sid"] != workspace_sid
        ):
            raise EngineError(
                f"WorkflowSid {workflow_sid} is not a Workflow of workspace {workspace_sid}"
            )
        queue = None if task_queue_sid is None else reads.task_queue_row(op, task_queue_sid)
        if task_queue_sid is not None and (
            queue is None or queue["workspace_sid"] != workspace_sid
        ):
            raise EngineError(
                f"TaskQueueSid {task_queue_sid} is not a TaskQueue of workspace {workspace_sid}"
            )
        if routing_target is not None and not tx.scalar(
            "SELECT 1 FROM workers WHERE sid = ? AND workspace_sid = ?",
            (routing_target, workspace_sid),
        ):
            raise EngineError(
                f"RoutingTarget {routing_target} is not a Worker of workspace {workspace_sid}"
            )
        channel = channels.named(op, workspace_sid, task_channel or "default")
        channel_sid = channel["sid"]
        moment = op.now()
        stamp = to_storage(moment)
        sid = new_sid("WT")
        transitions.insert_task(
            op,
            {
                "sid": sid,
                "workspace_sid": workspace_sid,
                "attributes": attributes,
                "priority": priority or 0,
                "timeout": timeout,
                "timeout_at": to_storage(moment + timedelta(seconds=timeout)),
                "workflow_sid": workflow_sid,
                "task_channel_sid": channel_sid,
                "virtual_start_time": to_storage(virtual_start_time)
                if virtual_start_time
                else None,
                "routing_target": routing_target,
                # The Task resource: IgnoreCapacity is true by default with a RoutingTarget.
                "ignore_capacity": None
                if routing_target is None
                else int(True if ignore_capacity is None else ignore_capacity),
                "addons": "{}",
                "date_created": stamp,
                "date_updated": stamp,
            },
            {
                "task_queue_friendly_name": None,
                "workflow_friendly_name": None if workflow is None else workflow["friendly_name"],
                "task_channel_unique_name": channel["unique_name"],
            },
        )
        events.record(
            op,
            workspace_sid,
            "task.created",
            "task",
            sid,
            f"Task {sid} created",
            events.task_fields(op, sid),
        )
        op.deadline_at(moment + timedelta(seconds=timeout))
        if task_queue_sid is not None and workflow_sid is None:
            placement.enter_queue(op, workspace_sid, sid, task_queue_sid, None, None)
        else:
            placement.place(op, workspace_sid, sid)
        op.route_again("task.created", workspace_sid, sid)
        return reads.task(op, workspace_sid, sid)


def update_task(
    ops: Operations,
    workspace_sid: str,
    sid: str,
    *,
    assignment_status: str | None = None,
    reason: str | None = None,
    attributes: str | None = None,
    priority: int | None = None,
    task_channel: str | None = None,
    virtual_start_time: datetime | None = None,
    if_match: str | None = None,
) -> dict[str, Any]:
    """if_match: an If-Match header; the update applies only if it names the current ETag."""
    if attributes is not None:
        check.json_object(attributes, "Attributes")
    if priority is not None:
        check.integer(priority, "Priority", 0, MAX_PRIORITY)
    if assignment_status is not None and assignment_status not in TASK_STATUSES:
        raise EngineError(
            f"AssignmentStatus {assignment_status!r} is not valid: use canceled, wrapping "
            "or completed"
        )
    if reason is not None and len(reason) > MAX_REASON:
        raise EngineError(f"Reason must be at most {MAX_REASON} characters long")
    with ops.write() as op:
        task = reads.task(op, workspace_sid, sid)
        check_if_match(if_match, task["version"], f"Task {sid}")
        status = task["assignment_status"]
        if assignment_status is not None:
            check_task_request(sid, status, assignment_status)
        elif status in FINAL_TASK_STATUSES and (
            attributes is not None
            or priority is not None
            or task_channel is not None
            or virtual_start_time is not None
        ):
            raise EngineError(f"Task {sid} is {status} and can no longer be updated")
        values: dict[str, Any] = {}
        if attributes is not None and attributes != task["attributes"]:
            values["attributes"] = attributes
        if priority is not None and priority != task["priority"]:
            values["priority"] = priority
        if task_channel is not None:
            channel_sid = channels.resolve(op, workspace_sid, task_channel)
            if channel_sid != task["task_channel_sid"]:
                values["task_channel_sid"] = channel_sid
        if virtual_start_time is not None:
            values["virtual_start_time"] = to_storage(virtual_start_time)
        if reason is not None and assignment_status is None:
            values["reason"] = reason
        if values:
            values["date_updated"] = op.stamp()
            op.tx.update("tasks", sid, values)
            events.record(
                op,
                workspace_sid,
                "task.updated",
                "task",
                sid,
                f"Task {sid} updated",
                events.task_fields(op, sid),
            )
            op.route_again("task.updated", workspace_sid, sid)
            if "attributes" in values and status == "pending":
                placement.place(op, workspace_sid, sid)
        if assignment_status == "wrapping":
            transitions.wrap_task(op, workspace_sid, sid)
        elif assignment_status is not None:
            transitions.finish_task(op, workspace_sid, sid, assignment_status, reason)
        return reads.task(op, workspace_sid, sid)


def delete_task(
    ops: Operations, workspace_sid: str, sid: str, *, if_match: str | None = None
) -> None:
    with ops.write() as op:
        task = reads.task(op, workspace_sid, sid)
        check_if_match(if_match, task["version"], f"Task {sid}")
        for reservation in op.tx.all(
            reads.RESERVATION_SELECT + " WHERE r.task_sid = ? AND r.reservation_status = 'pending'",
            (sid,),
        ):
            transitions.release_worker(op, reservation)
        fields = events.task_fields(op, sid)
        op.tx.delete("tasks", sid)
        events.record(op, workspace_sid, "task.deleted", "task", sid, f"Task {sid} deleted", fields)
        op.route_again("task.deleted", workspace_sid, task["sid"])
