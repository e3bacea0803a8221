"""Reservations, reached under their task or under their worker."""

from __future__ import annotations

from typing import Any

from flask import Response, request

from taskrouter_sandbox.api.context import engine, list_url, render
from taskrouter_sandbox.api.params import Params, form, query
from taskrouter_sandbox.api.rendering import fetched, list_body
from taskrouter_sandbox.domain.lifecycle import RESERVATION_STATUSES
from taskrouter_sandbox.domain.versions import etag


def _reservation_update(params: Params) -> dict[str, Any]:
    instruction_params: dict[str, Any] = {}
    for name in ("CallAccept", "RedirectAccept"):
        value = params.boolean(name)
        if value is not None:
            instruction_params[name] = value
    for name, values in params.source.lists():
        if name not in ("ReservationStatus", "WorkerActivitySid", "Instruction"):
            instruction_params.setdefault(name, values[0] if len(values) == 1 else values)
    return {
        "reservation_status": params.choice("ReservationStatus", RESERVATION_STATUSES),
        "worker_activity_sid": params.text("WorkerActivitySid"),
        "instruction": params.text("Instruction"),
        "instruction_params": instruction_params,
        "if_match": request.headers.get("If-Match"),
    }


def list_task_reservations(workspace_sid: str, task_sid: str) -> Response:
    params = query()
    paging = params.paging()
    result = engine().list_reservations(
        workspace_sid,
        paging,
        task_sid=task_sid,
        reservation_status=params.choice("ReservationStatus", RESERVATION_STATUSES),
        filter_worker_sid=params.text("WorkerSid"),
    )
    renderer = render()
    records = [renderer.reservation(row, under="task") for row in result.rows]
    return fetched(list_body("reservations", result, paging, records, list_url()))


def fetch_task_reservation(workspace_sid: str, task_sid: str, sid: str) -> Response:
    row = engine().get_reservation(workspace_sid, sid, task_sid=task_sid)
    return fetched(render().reservation(row, under="task"), etag(row["version"]))


def update_task_reservation(workspace_sid: str, task_sid: str, sid: str) -> Response:
    row = engine().update_reservation(
        workspace_sid, sid, task_sid=task_sid, **_reservation_update(form())
    )
    return fetched(render().reservation(row, under="task"), etag(row["version"]))


def list_worker_reservations(workspace_sid: str, worker_sid: str) -> Response:
    params = query()
    paging = params.paging()
    result = engine().list_reservations(
        workspace_sid,
        paging,
        worker_sid=worker_sid,
        reservation_status=params.choice("ReservationStatus", RESERVATION_STATUSES),
    )
    renderer = render()
    records = [renderer.reservation(row, under="worker") for row in result.rows]
    return fetched(list_body("reservations", result, paging, records, list_url()))


def fetch_worker_reservation(workspace_sid: str, worker_sid: str, sid: str) -> Response:
    row = engine().get_reservation(workspace_sid, sid, worker_sid=worker_sid)
    return fetched(render().reservation(row, under="worker"), etag(row["version"]))


def update_worker_reservation(workspace_sid: str, worker_sid: str, sid: str) -> Response:
    row = engine().update_reservation(
        workspace_sid, sid, worker_sid=worker_sid, **_reservation_update(form())
    )
    return fetched(render().reservation(row, under="worker"), etag(row["version"]))
