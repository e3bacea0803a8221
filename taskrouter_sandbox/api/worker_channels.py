"""A worker's channels: its capacity and availability on each task channel."""

from __future__ import annotations

from flask import Response

from taskrouter_sandbox.api.context import engine, list_url, render
from taskrouter_sandbox.api.params import form, query
from taskrouter_sandbox.api.rendering import fetched, list_body


def list_worker_channels(workspace_sid: str, worker_sid: str) -> Response:
    paging = query().paging()
    result = engine().list_worker_channels(workspace_sid, worker_sid, paging)
    renderer = render()
    records = [renderer.worker_channel(row) for row in result.rows]
    return fetched(list_body("channels", result, paging, records, list_url()))


def fetch_worker_channel(workspace_sid: str, worker_sid: str, sid: str) -> Response:
    row = engine().get_worker_channel(workspace_sid, worker_sid, sid)
    return fetched(render().worker_channel(row))


def update_worker_channel(workspace_sid: str, worker_sid: str, sid: str) -> Response:
    params = form()
    row = engine().update_worker_channel(
        workspace_sid,
        worker_sid,
        sid,
        capacity=params.integer("Capacity"),
        available=params.boolean("Available"),
    )
    return fetched(render().worker_channel(row))
