"""Cumulative statistics of a workspace, a TaskQueue, a Workflow, its Workers and one Worker:
what happened over a window (Minutes, StartDate, EndDate), counted from the event log."""

from __future__ import annotations

from typing import Any

from flask import Response

from taskrouter_sandbox.api.context import current_sandbox, engine, list_url
from taskrouter_sandbox.api.params import query
from taskrouter_sandbox.api.rendering import fetched


def window_parameters(*, split: bool = True) -> dict[str, Any]:
    """The window and channel parameters every statistics resource takes, typed."""
    params = query()
    found: dict[str, Any] = {
        "minutes": params.integer("Minutes"),
        "start_date": params.date("StartDate"),
        "end_date": params.date("EndDate"),
        "task_channel": params.text("TaskChannel"),
    }
    if split:
        found["split_by_wait_time"] = params.text("SplitByWaitTime")
    return found


def _answer(figures: dict[str, Any]) -> Response:
    return fetched({"account_sid": current_sandbox().account_sid, **figures, "url": list_url()})


def fetch_workspace_cumulative(workspace_sid: str) -> Response:
    return _answer(engine().workspace_cumulative_statistics(workspace_sid, **window_parameters()))


def fetch_task_queue_cumulative(workspace_sid: str, task_queue_sid: str) -> Response:
    figures = engine().task_queue_cumulative_statistics(
        workspace_sid, task_queue_sid, **window_parameters()
    )
    return _answer(figures)


def fetch_workflow_cumulative(workspace_sid: str, workflow_sid: str) -> Response:
    figures = engine().workflow_cumulative_statistics(
        workspace_sid, workflow_sid, **window_parameters()
    )
    return _answer(figures)


def fetch_workers_cumulative(workspace_sid: str) -> Response:
    figures = engine().workers_cumulative_statistics(
        workspace_sid, **window_parameters(split=False)
    )
    return _answer(figures)


def fetch_worker_statistics(workspace_sid: str, worker_sid: str) -> Response:
    """One worker's Statistics: only `cumulative`, as Twilio's WorkerInstanceStatistics."""
    cumulative = engine().worker_cumulative_statistics(
        workspace_sid, worker_sid, **window_parameters(split=False)
    )
    return _answer(
        {"cumulative": cumulative, "worker_sid": worker_sid, "workspace_sid": workspace_sid}
    )
