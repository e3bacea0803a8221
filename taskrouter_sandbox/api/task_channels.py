"""A workspace's task channels (voice, sms, chat, ...)."""

from __future__ import annotations

from flask import Response

from taskrouter_sandbox.api.context import engine, list_url, render
from taskrouter_sandbox.api.params import form, query
from taskrouter_sandbox.api.rendering import created, deleted, fetched, list_body


def list_task_channels(workspace_sid: str) -> Response:
    paging = query().paging()
    result = engine().list_task_channels(workspace_sid, paging)
    renderer = render()
    records = [renderer.task_channel(row) for row in result.rows]
    return fetched(list_body("channels", result, paging, records, list_url()))


def create_task_channel(workspace_sid: str) -> Response:
    params = form()
    row = engine().create_task_channel(
        workspace_sid,
        params.text("FriendlyName", required=True),
        params.text("UniqueName", required=True),
        channel_optimized_routing=params.boolean("ChannelOptimizedRouting"),
    )
    return created(render().task_channel(row))


def fetch_task_channel(workspace_sid: str, sid: str) -> Response:
    return fetched(render().task_channel(engine().get_task_channel(workspace_sid, sid)))


def update_task_channel(workspace_sid: str, sid: str) -> Response:
    params = form()
    row = engine().update_task_channel(
        workspace_sid,
        sid,
        friendly_name=params.text("FriendlyName"),
        channel_optimized_routing=params.boolean("ChannelOptimizedRouting"),
    )
    return fetched(render().task_channel(row))


def delete_task_channel(workspace_sid: str, sid: str) -> Response:
    engine().delete_task_channel(workspace_sid, sid)
    return deleted()
