"""A workspace's task queues."""

from __future__ import annotations

from typing import Any

from flask import Response

from taskrouter_sandbox.api.context import engine, list_url, render
from taskrouter_sandbox.api.params import Params, form, query
from taskrouter_sandbox.api.rendering import created, deleted, fetched, list_body
from taskrouter_sandbox.domain.validation import QUEUE_ORDERS


def list_task_queues(workspace_sid: str) -> Response:
    params = query()
    paging = params.paging()
    result = engine().list_task_queues(
        workspace_sid,
        paging,
        friendly_name=params.text("FriendlyName"),
        evaluate_worker_attributes=params.text("EvaluateWorkerAttributes"),
        worker_sid=params.text("WorkerSid"),
        ordering=params.text("Ordering"),
    )
    renderer = render()
    records = [renderer.task_queue(row) for row in result.rows]
    return fetched(list_body("task_queues", result, paging, records, list_url()))


def _queue_fields(params: Params) -> dict[str, Any]:
    return {
        "target_workers": params.text("TargetWorkers"),
        "max_reserved_workers": params.integer("MaxReservedWorkers"),
        "task_order": params.choice("TaskOrder", QUEUE_ORDERS),
        "reservation_activity_sid": params.text("ReservationActivitySid"),
        "assignment_activity_sid": params.text("AssignmentActivitySid"),
    }


def create_task_queue(workspace_sid: str) -> Response:
    params = form()
    row = engine().create_task_queue(
        workspace_sid, params.text("FriendlyName", required=True), **_queue_fields(params)
    )
    return created(render().task_queue(row))


def fetch_task_queue(workspace_sid: str, sid: str) -> Response:
    return fetched(render().task_queue(engine().get_task_queue(workspace_sid, sid)))


def update_task_queue(workspace_sid: str, sid: str) -> Response:
    params = form()
    row = engine().update_task_queue(
        workspace_sid, sid, friendly_name=params.text("FriendlyName"), **_queue_fields(params)
    )
    return fetched(render().task_queue(row))


def delete_task_queue(workspace_sid: str, sid: str) -> Response:
    engine().delete_task_queue(workspace_sid, sid)
    return deleted()
