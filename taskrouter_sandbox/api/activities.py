"""A workspace's activities (what a worker is doing, and whether it takes tasks)."""

from __future__ import annotations

from flask import Response

from taskrouter_sandbox.api.context import engine, list_url, render
from taskrouter_sandbox.api.errors import ApiError
from taskrouter_sandbox.api.params import form, query
from taskrouter_sandbox.api.rendering import created, deleted, fetched, list_body


def list_activities(workspace_sid: str) -> Response:
    params = query()
    paging = params.paging()
    result = engine().list_activities(
        workspace_sid,
        paging,
        friendly_name=params.text("FriendlyName"),
        available=params.flag("Available"),
    )
    renderer = render()
    records = [renderer.activity(row) for row in result.rows]
    return fetched(list_body("activities", result, paging, records, list_url()))


def create_activity(workspace_sid: str) -> Response:
    params = form()
    row = engine().create_activity(
        workspace_sid,
        params.text("FriendlyName", required=True),
        available=bool(params.flag("Available")),
    )
    return created(render().activity(row))


def fetch_activity(workspace_sid: str, sid: str) -> Response:
    return fetched(render().activity(engine().get_activity(workspace_sid, sid)))


def update_activity(workspace_sid: str, sid: str) -> Response:
    params = form()
    if params.has("Available"):
        raise ApiError(
            400, 20001, "Parameter Available cannot be changed after an Activity is created"
        )
    row = engine().update_activity(workspace_sid, sid, friendly_name=params.text("FriendlyName"))
    return fetched(render().activity(row))


def delete_activity(workspace_sid: str, sid: str) -> Response:
    engine().delete_activity(workspace_sid, sid)
    return deleted()
