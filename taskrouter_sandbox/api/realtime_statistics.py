"""RealTimeStatistics of a workspace, a task queue (one, or up to 50 in bulk), a workflow and
the workers: the engine's figures inside each resource's envelope (account, workspace, URL)."""

from __future__ import annotations

from typing import Any

from flask import Response, request

from taskrouter_sandbox.api.context import current_sandbox, engine, urls
from taskrouter_sandbox.api.errors import ApiError
from taskrouter_sandbox.api.params import Params, form, query
from taskrouter_sandbox.api.rendering import fetched
from taskrouter_sandbox.jsonlimits import TooDeep
from taskrouter_sandbox.jsonlimits import loads as json_loads

# The bulk body's list: the page's table names it QueueSids, its curl example queueSids.
BULK_KEYS = ("QueueSids", "queueSids")


def _task_channel(params: Params) -> str | None:
    return params.text("TaskChannel")


def _envelope(workspace_sid: str, *parts: str) -> dict[str, Any]:
    return {
        "account_sid": current_sandbox().account_sid,
        "workspace_sid": workspace_sid,
        "url": urls().child(workspace_sid, *parts),
    }


def fetch_workspace_statistics(workspace_sid: str) -> Response:
    figures = engine().workspace_realtime_statistics(
        workspace_sid, task_channel=_task_channel(query())
    )
    return fetched({**_envelope(workspace_sid, "RealTimeStatistics"), **figures})


def fetch_task_queue_statistics(workspace_sid: str, sid: str) -> Response:
    figures = engine().task_queue_realtime_statistics(
        workspace_sid, sid, task_channel=_task_channel(query())
    )
    return fetched(
        {
            **_envelope(workspace_sid, "TaskQueues", sid, "RealTimeStatistics"),
            "task_queue_sid": sid,
            **figures,
        }
    )


def fetch_workflow_statistics(workspace_sid: str, sid: str) -> Response:
    figures = engine().workflow_realtime_statistics(
        workspace_sid, sid, task_channel=_task_channel(query())
    )
    return fetched(
        {
            **_envelope(workspace_sid, "Workflows", sid, "RealTimeStatistics"),
            "workflow_sid": sid,
            **figures,
        }
    )


def fetch_workers_statistics(workspace_sid: str) -> Response:
    figures = engine().workers_realtime_statistics(
        workspace_sid, task_channel=_task_channel(query())
    )
    return fetched({**_envelope(workspace_sid, "Workers", "RealTimeStatistics"), **figures})


def create_bulk_task_queue_statistics(workspace_sid: str) -> Response:
    data = engine().task_queues_bulk_realtime_statistics(workspace_sid, _bulk_queue_sids())
    return fetched(
        {
            **_envelope(workspace_sid, "TaskQueues", "RealTimeStatistics"),
            "task_queue_data": data,
            "task_queue_response_count": len(data),
        }
    )


def _bulk_queue_sids() -> list[Any]:
    """The SIDs asked for: a JSON body's QueueSids array (what the twilio libraries send),
    or for a form post the QueueSids parameter, repeated or comma-separated."""
    if not request.is_json:
        return form().strings("QueueSids") or []
    try:
        body = json_loads(request.get_data())
    except TooDeep as error:
        raise ApiError(400, 20001, f"The JSON body {error}") from None
    except ValueError as error:
        raise ApiError(400, 20001, f"The body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise ApiError(400, 20001, "The JSON body must be an object with a QueueSids array")
    present = [key for key in BULK_KEYS if key in body]
    if len(present) != 1:
        raise ApiError(
            400,
            20001,
            "The JSON body must hold QueueSids, an array of TaskQueue SIDs"
            if not present
            else "Give QueueSids once, not both QueueSids and queueSids",
        )
    sids = body[present[0]]
    if not isinstance(sids, list):
        raise ApiError(400, 20001, "QueueSids must be an array of TaskQueue SIDs")
    return sids
