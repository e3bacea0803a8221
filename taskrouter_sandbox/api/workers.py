"""A workspace's workers."""

from __future__ import annotations

from flask import Response, request

from taskrouter_sandbox.api.context import engine, list_url, render
from taskrouter_sandbox.api.params import form, query
from taskrouter_sandbox.api.rendering import created, deleted, fetched, list_body
from taskrouter_sandbox.domain.versions import etag


def list_workers(workspace_sid: str) -> Response:
    params = query()
    paging = params.paging()
    result = engine().list_workers(
        workspace_sid,
        paging,
        activity_name=params.text("ActivityName"),
        activity_sid=params.text("ActivitySid"),
        available=params.flag("Available"),
        friendly_name=params.text("FriendlyName"),
        target_workers_expression=params.text("TargetWorkersExpression"),
        task_queue_name=params.text("TaskQueueName"),
        task_queue_sid=params.text("TaskQueueSid"),
        ordering=params.text("Ordering"),
    )
    renderer = render()
    records = [renderer.worker(row, listed=True) for row in result.rows]
    return fetched(list_body("workers", result, paging, records, list_url()))


def create_worker(workspace_sid: str) -> Response:
    params = form()
    row = engine().create_worker(
        workspace_sid,
        params.text("FriendlyName", required=True),
        activity_sid=params.text("ActivitySid"),
        attributes=params.text("Attributes"),
    )
    return created(render().worker(row), etag(row["version"]))


def fetch_worker(workspace_sid: str, sid: str) -> Response:
    row = engine().get_worker(workspace_sid, sid)
    return fetched(render().worker(row), etag(row["version"]))


def update_worker(workspace_sid: str, sid: str) -> Response:
    params = form()
    row = engine().update_worker(
        workspace_sid,
        sid,
        activity_sid=params.text("ActivitySid"),
        attributes=params.text("Attributes"),
        friendly_name=params.text("FriendlyName"),
        reject_pending_reservations=bool(params.boolean("RejectPendingReservations")),
        if_match=request.headers.get("If-Match"),
    )
    return fetched(render().worker(row), etag(row["version"]))


def delete_worker(workspace_sid: str, sid: str) -> Response:
    engine().delete_worker(workspace_sid, sid, if_match=request.headers.get("If-Match"))
    return deleted()
