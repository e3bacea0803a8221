"""Workspaces: the top of TaskRouter's tree."""

from __future__ import annotations

from flask import Response

from taskrouter_sandbox.api.context import engine, list_url, render
from taskrouter_sandbox.api.params import form, query
from taskrouter_sandbox.api.rendering import created, deleted, fetched, list_body
from taskrouter_sandbox.domain.validation import QUEUE_ORDERS, TEMPLATES


def list_workspaces() -> Response:
    params = query()
    paging = params.paging()
    result = engine().list_workspaces(paging, friendly_name=params.text("FriendlyName"))
    renderer = render()
    records = [renderer.workspace(row) for row in result.rows]
    return fetched(list_body("workspaces", result, paging, records, list_url()))


def create_workspace() -> Response:
    params = form()
    row = engine().create_workspace(
        params.text("FriendlyName", required=True),
        event_callback_url=params.text("EventCallbackUrl"),
        events_filter=params.text("EventsFilter"),
        # Twilio's default is true (the OpenAPI description of MultiTaskEnabled).
        multi_task_enabled=params.boolean("MultiTaskEnabled") is not False,
        prioritize_queue_order=params.choice("PrioritizeQueueOrder", QUEUE_ORDERS) or "FIFO",
        template=params.choice("Template", TEMPLATES),
    )
    return created(render().workspace(row))


def fetch_workspace(workspace_sid: str) -> Response:
    return fetched(render().workspace(engine().get_workspace(workspace_sid)))


def update_workspace(workspace_sid: str) -> Response:
    params = form()
    row = engine().update_workspace(
        workspace_sid,
        friendly_name=params.text("FriendlyName"),
        default_activity_sid=params.text("DefaultActivitySid"),
        timeout_activity_sid=params.text("TimeoutActivitySid"),
        event_callback_url=params.text("EventCallbackUrl"),
        events_filter=params.text("EventsFilter"),
        multi_task_enabled=params.boolean("MultiTaskEnabled"),
        prioritize_queue_order=params.choice("PrioritizeQueueOrder", QUEUE_ORDERS),
    )
    return fetched(render().workspace(row))


def delete_workspace(workspace_sid: str) -> Response:
    engine().delete_workspace(workspace_sid)
    return deleted()
