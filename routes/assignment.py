"""The Workflow's Assignment Callback: TaskRouter asks what to do with a new Reservation.

It answers at once by ASSIGNMENT_MODE, makes no REST call, and records the callback for the page.
"""

from __future__ import annotations

import json
import re
import sqlite3

from flask import Blueprint, Response, current_app, request

import callback_log
from security import signature_required

bp = Blueprint("assignment", __name__)

# `{}` leaves the reservation pending for /accept_reservation; accept assigns the task at once.
ANSWERS = {
    "manual": "{}",
    "accept": json.dumps({"instruction": "accept"}),
}

# Callback parameter -> (record field, SID prefix)
SID_PARAMETERS = {
    "ReservationSid": ("reservation_sid", "WR"),
    "TaskSid": ("task_sid", "WT"),
    "WorkerSid": ("worker_sid", "WK"),
    "TaskQueueSid": ("task_queue_sid", "WQ"),
    "WorkflowSid": ("workflow_sid", "WW"),
}
ATTRIBUTE_PARAMETERS = {
    "TaskAttributes": "task_attributes",
    "WorkerAttributes": "worker_attributes",
}


def _problems(values) -> list[str]:
    problems = []
    for name, (_, prefix) in SID_PARAMETERS.items():
        value = values.get(name)
        if value is None:
            problems.append(f"{name} missing")
        elif not re.fullmatch(rf"{prefix}[0-9a-fA-F]{{32}}", value):
            problems.append(f"{name} is not {prefix} + 32 hex")
    for name in ATTRIBUTE_PARAMETERS:
        value = values.get(name)
        if value is None:
            problems.append(f"{name} missing")
            continue
        if len(value) > callback_log.MAX_ATTRIBUTES_LENGTH:
            problems.append(f"{name} too long")
            continue
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            parsed = None
        if not isinstance(parsed, dict):
            problems.append(f"{name} is not a JSON object")
    return problems


def _for_log(value: str | None) -> str:
    # Values come from the request: keep the log one line per callback whatever they hold.
    if value is None:
        return "-"
    if re.fullmatch(r"[A-Za-z0-9]{1,64}", value):
        return value
    return repr(value[:64])


@bp.route("/assignment_callback", methods=("GET", "POST"))
@signature_required
def assignment_callback():
    answer = ANSWERS[current_app.config["ASSIGNMENT_MODE"]]
    # A GET callback carries its parameters in the query string.
    values = request.values
    problems = _problems(values)
    if problems:
        current_app.logger.warning(
            "Assignment callback is malformed (%s); answering %s anyway",
            "; ".join(problems),
            answer,
        )
    current_app.logger.info(
        "Assignment callback ReservationSid=%s TaskSid=%s WorkerSid=%s TaskQueueSid=%s answer=%s",
        *(_for_log(values.get(name)) for name in SID_PARAMETERS if name != "WorkflowSid"),
        answer,
    )

    record = {field: values.get(name) for name, (field, _) in SID_PARAMETERS.items()}
    record.update({field: values.get(name) for name, field in ATTRIBUTE_PARAMETERS.items()})
    record["answer"] = answer
    log = current_app.extensions[callback_log.EXTENSION_KEY]
    try:
        log.record(record)
    except (sqlite3.Error, OSError) as exc:
        # The answer matters more than the record: TaskRouter is waiting on it.
        current_app.logger.warning("Could not record the callback in %s: %s", log.path, exc)

    return Response(answer, status=200, mimetype="application/json")
