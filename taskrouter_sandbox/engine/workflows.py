"""Workflows: the routing document (filters, targets, default filter), its assignment
callback and reservation timeout; create, fetch, list, update (re-evaluating tasks), delete."""

from __future__ import annotations

from typing import Any

from taskrouter_sandbox.domain import validation as check
from taskrouter_sandbox.domain.errors import EngineError
from taskrouter_sandbox.domain.validation import (
    DEFAULT_RESERVATION_TIMEOUT,
    MAX_RESERVATION_TIMEOUT,
    new_sid,
)
from taskrouter_sandbox.domain.values import Paging
from taskrouter_sandbox.domain.workflow import check_configuration
from taskrouter_sandbox.engine.listing import paged
from taskrouter_sandbox.engine.operations import Operations
from taskrouter_sandbox.routing import placement
from taskrouter_sandbox.state import events, reads
from taskrouter_sandbox.state.operation import Operation
from taskrouter_sandbox.store import Order, Page


def get_workflow(ops: Operations, workspace_sid: str, sid: str) -> dict[str, Any]:
    with ops.read() as op:
        return reads.workflow(op, workspace_sid, sid)


def list_workflows(
    ops: Operations, workspace_sid: str, paging: Paging, *, friendly_name: str | None = None
) -> Page:
    with ops.read() as op:
        reads.workspace(op, workspace_sid)
        where, params = ["f.workspace_sid = ?"], [workspace_sid]
        if friendly_name is not None:
            where.append("f.friendly_name = ?")
            params.append(friendly_name)
        return paged(
            op.tx,
            paging,
            select=reads.WORKFLOW_SELECT,
            where=where,
            params=params,
            order=[Order("f.seq", "seq")],
        )


def _configuration(op: Operation, workspace_sid: str, text: object) -> str:
    def is_queue(queue_sid: str) -> bool:
        return bool(
            op.tx.scalar(
                "SELECT 1 FROM task_queues WHERE sid = ? AND workspace_sid = ?",
                (queue_sid, workspace_sid),
            )
        )

    return check_configuration(text, workspace_sid, is_queue)


def create_workflow(
    ops: Operations,
    workspace_sid: str,
    friendly_name: str,
    configuration: str,
    *,
    assignment_callback_url: str | None = None,
    fallback_assignment_callback_url: str | None = None,
    task_reservation_timeout: int | None = None,
) -> dict[str, Any]:
    with ops.write() as op:
        return add(
            op,
            workspace_sid,
            friendly_name,
            configuration,
            assignment_callback_url=assignment_callback_url,
            fallback_assignment_callback_url=fallback_assignment_callback_url,
            task_reservation_timeout=task_reservation_timeout,
        )


def add(
    op: Operation,
    workspace_sid: str,
    friendly_name: str,
    configuration: str,
    *,
    assignment_callback_url: str | None = None,
    fallback_assignment_callback_url: str | None = None,
    task_reservation_timeout: int | None = None,
) -> dict[str, Any]:
    """create_workflow inside an operation already open (a workspace's template)."""
    check.text(friendly_name, "FriendlyName")
    assignment_callback_url = check.url(assignment_callback_url, "AssignmentCallbackUrl")
    fallback_assignment_callback_url = check.url(
        fallback_assignment_callback_url, "FallbackAssignmentCallbackUrl"
    )
    timeout = check.integer(
        DEFAULT_RESERVATION_TIMEOUT
        if task_reservation_timeout is None
        else task_reservation_timeout,
        "TaskReservationTimeout",
        1,
        MAX_RESERVATION_TIMEOUT,
    )
    reads.workspace(op, workspace_sid)
    _configuration(op, workspace_sid, configuration)
    stamp = op.stamp()
    sid = new_sid("WW")
    op.tx.insert(
        "workflows",
        {
            "sid": sid,
            "workspace_sid": workspace_sid,
            "friendly_name": friendly_name,
            "configuration": configuration,
            "assignment_callback_url": assignment_callback_url,
            "fallback_assignment_callback_url": fallback_assignment_callback_url,
            "task_reservation_timeout": timeout,
            "document_content_type": "application/json",
            "date_created": stamp,
            "date_updated": stamp,
        },
    )
    events.record(
        op,
        workspace_sid,
        "workflow.created",
        "workflow",
        sid,
        f"Workflow {friendly_name} created",
        {"WorkflowSid": sid, "WorkflowName": friendly_name},
    )
    return reads.workflow(op, workspace_sid, sid)


def update_workflow(
    ops: Operations,
    workspace_sid: str,
    sid: str,
    *,
    friendly_name: str | None = None,
    configuration: str | None = None,
    assignment_callback_url: str | None = None,
    fallback_assignment_callback_url: str | None = None,
    task_reservation_timeout: int | None = None,
    re_evaluate_tasks: bool = False,
) -> dict[str, Any]:
    """An empty string clears a callback URL; re_evaluate_tasks re-places pending tasks."""
    with ops.write() as op:
        workflow = reads.workflow(op, workspace_sid, sid)
        values: dict[str, Any] = {}
        if friendly_name is not None:
            values["friendly_name"] = check.text(friendly_name, "FriendlyName")
        if configuration is not None:
            values["configuration"] = _configuration(op, workspace_sid, configuration)
        if assignment_callback_url is not None:
            values["assignment_callback_url"] = check.url(
                assignment_callback_url, "AssignmentCallbackUrl"
            )
        if fallback_assignment_callback_url is not None:
            values["fallback_assignment_callback_url"] = check.url(
                fallback_assignment_callback_url, "FallbackAssignmentCallbackUrl"
            )
        if task_reservation_timeout is not None:
            values["task_reservation_timeout"] = check.integer(
                task_reservation_timeout, "TaskReservationTimeout", 1, MAX_RESERVATION_TIMEOUT
            )
        if values:
            values["date_updated"] = op.stamp()
            op.tx.update("workflows", sid, values)
            name = values.get("friendly_name", workflow["friendly_name"])
            events.record(
                op,
                workspace_sid,
                "workflow.updated",
                "workflow",
                sid,
                f"Workflow {name} updated",
                {"WorkflowSid": sid, "WorkflowName": name},
            )
            op.route_again("workflow.updated", workspace_sid, sid)
        if re_evaluate_tasks:
            for task in op.tx.all(
                "SELECT sid FROM tasks WHERE workflow_sid = ? AND assignment_status = 'pending'"
                " ORDER BY seq",
                (sid,),
            ):
                placement.place(op, workspace_sid, task["sid"])
                op.route_again("task.placed", workspace_sid, task["sid"])
        return reads.workflow(op, workspace_sid, sid)


def delete_workflow(ops: Operations, workspace_sid: str, sid: str) -> None:
    with ops.write() as op:
        workflow = reads.workflow(op, workspace_sid, sid)
        active = op.tx.scalar(
            "SELECT count(*) FROM tasks WHERE workflow_sid = ?"
            f" AND assignment_status IN ({reads.ACTIVE_TASKS})",
            (sid,),
        )
        if active:
            raise EngineError(
                f"Workflow {sid} ({workflow['friendly_name']}) cannot be deleted: "
                f"{active} active task(s) use it"
            )
        op.tx.delete("workflows", sid)
        events.record(
            op,
            workspace_sid,
            "workflow.deleted",
            "workflow",
            sid,
            f"Workflow {workflow['friendly_name']} deleted",
            {"WorkflowSid": sid, "WorkflowName": workflow["friendly_name"]},
        )
