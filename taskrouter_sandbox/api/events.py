"""A workspace's events."""

from __future__ import annotations

from flask import Response

from taskrouter_sandbox.api.context import engine, list_url, render
from taskrouter_sandbox.api.params import query
from taskrouter_sandbox.api.rendering import fetched, list_body


def list_events(workspace_sid: str) -> Response:
    params = query()
    paging = params.paging()
    result = engine().list_events(
        workspace_sid,
        paging,
        event_type=params.text("EventType"),
        task_sid=params.text("TaskSid"),
        worker_sid=params.text("WorkerSid"),
        reservation_sid=params.text("ReservationSid"),
        task_queue_sid=params.text("TaskQueueSid"),
        workflow_sid=params.text("WorkflowSid"),
        task_channel=params.text("TaskChannel"),
        sid=params.text("Sid"),
        minutes=params.integer("Minutes"),
        start_date=params.date("StartDate"),
        end_date=params.date("EndDate"),
    )
    renderer = render()
    records = [renderer.event(row) for row in result.rows]
    return fetched(list_body("events", result, paging, records, list_url()))


def fetch_event(workspace_sid: str, sid: str) -> Response:
    return fetched(render().event(engine().get_event(workspace_sid, sid)))
