"""A workspace's workflows (the routing configuration documents)."""

from __future__ import annotations

from flask import Response

from taskrouter_sandbox.api.context import engine, list_url, render
from taskrouter_sandbox.api.params import form, query
from taskrouter_sandbox.api.rendering import created, deleted, fetched, list_body


def list_workflows(workspace_sid: str) -> Response:
    params = query()
    paging = params.paging()
    result = engine().list_workflows(
        workspace_sid, paging, friendly_name=params.text("FriendlyName")
    )
    renderer = render()
    records = [renderer.workflow(row) for row in result.rows]
    return fetched(list_body("workflows", result, paging, records, list_url()))


def create_workflow(workspace_sid: str) -> Response:
    params = form()
    row = engine().create_workflow(
        workspace_sid,
        params.text("FriendlyName", required=True),
        params.text("Configuration", required=True),
        assignment_callback_url=params.text("AssignmentCallbackUrl"),
        fallback_assignment_callback_url=params.text("FallbackAssignmentCallbackUrl"),
        task_reservation_timeout=params.integer("TaskReservationTimeout"),
    )
    return created(render().workflow(row))


def fetch_workflow(workspace_sid: str, sid: str) -> Response:
    return fetched(render().workflow(engine().get_workflow(workspace_sid, sid)))


def update_workflow(workspace_sid: str, sid: str) -> Response:
    params = form()
    row = engine().update_workflow(
        workspace_sid,
        sid,
        friendly_name=params.text("FriendlyName"),
        configuration=params.text("Configuration"),
        assignment_callback_url=params.text("AssignmentCallbackUrl"),
        fallback_assignment_callback_url=params.text("FallbackAssignmentCallbackUrl"),
        task_reservation_timeout=params.integer("TaskReservationTimeout"),
        re_evaluate_tasks=bool(params.boolean("ReEvaluateTasks")),
    )
    return fetched(render().workflow(row))


def delete_workflow(workspace_sid: str, sid: str) -> Response:
    engine().delete_workflow(workspace_sid, sid)
    return deleted()
