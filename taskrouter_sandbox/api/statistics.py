"""The combined Statistics of a workspace, a TaskQueue (one, or the list of them), a Workflow
and the Workers: the `cumulative` figures over the window beside the `realtime` ones of now."""

from __future__ import annotations

from typing import Any

from flask import Response

from taskrouter_sandbox.api.context import current_sandbox, engine, list_url
from taskrouter_sandbox.api.cumulative_statistics import window_parameters
from taskrouter_sandbox.api.params import query
from taskrouter_sandbox.api.rendering import fetched, list_body


def _answer(body: dict[str, Any]) -> Response:
    return fetched({"account_sid": current_sandbox().account_sid, **body, "url": list_url()})


def fetch_workspace_statistics(workspace_sid: str) -> Response:
    window = window_parameters()
    cumulative = engine().workspace_cumulative_statistics(workspace_sid, **window)
    realtime = engine().workspace_realtime_statistics(
        workspace_sid, task_channel=window["task_channel"]
    )
    return _answer({"cumulative": cumulative, "realtime": realtime, "workspace_sid": workspace_sid})


def _queue_statistics(workspace_sid: str, sid: str, window: dict[str, Any]) -> dict[str, Any]:
    return {
        "cumulative": engine().task_queue_cumulative_statistics(workspace_sid, sid, **window),
        "realtime": engine().task_queue_realtime_statistics(
            workspace_sid, sid, task_channel=window["task_channel"]
        ),
        "task_queue_sid": sid,
        "workspace_sid": workspace_sid,
    }


def fetch_task_queue_statistics(workspace_sid: str, task_queue_sid: str) -> Response:
    return _answer(_queue_statistics(workspace_sid, task_queue_sid, window_parameters()))


def list_task_queues_statistics(workspace_sid: str) -> Response:
    """The Statistics of each queue on the page (FriendlyName filters as the TaskQueues list's
    does), every entry over the same window; no url of their own, as Twilio's schema."""
    params = query()
    paging = params.paging()
    window = window_parameters()
    result = engine().list_task_queues(
        workspace_sid, paging, friendly_name=params.text("FriendlyName")
    )
    account_sid = current_sandbox().account_sid
    # The cumulative parts of the whole page in one snapshot, so they share one window.
    cumulative = engine().task_queues_cumulative_statistics(
        workspace_sid, [row["sid"] for row in result.rows], **window
    )
    records = [
        {
            "account_sid": account_sid,
            "cumulative": cumulative[row["sid"]],
            "realtime": engine().task_queue_realtime_statistics(
                workspace_sid, row["sid"], task_channel=window["task_channel"]
            ),
            "task_queue_sid": row["sid"],
            "workspace_sid": workspace_sid,
        }
        for row in result.rows
    ]
    return fetched(list_body("task_queues_statistics", result, paging, records, list_url()))


def fetch_workflow_statistics(workspace_sid: str, workflow_sid: str) -> Response:
    window = window_parameters()
    return _answer(
        {
            "cumulative": engine().workflow_cumulative_statistics(
                workspace_sid, workflow_sid, **window
            ),
            "realtime": engine().workflow_realtime_statistics(
                workspace_sid, workflow_sid, task_channel=window["task_channel"]
            ),
            "workflow_sid": workflow_sid,
            "workspace_sid": workspace_sid,
        }
    )


def fetch_workers_statistics(workspace_sid: str) -> Response:
    """TaskQueueSid, TaskQueueName and FriendlyName pick the workers of both parts."""
    params = query()
    window = window_parameters(split=False)
    picked = {
        "task_queue_sid": params.text("TaskQueueSid"),
        "task_queue_name": params.text("TaskQueueName"),
        "friendly_name": params.text("FriendlyName"),
    }
    realtime = engine().workers_realtime_statistics(
        workspace_sid, task_channel=window["task_channel"], **picked
    )
    cumulative = engine().workers_cumulative_statistics(workspace_sid, **window, **picked)
    return _answer({"cumulative": cumulative, "realtime": realtime, "workspace_sid": workspace_sid})
