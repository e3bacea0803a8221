"""/create_task: creates a Task on the configured Workflow, as step 2 of the quickstart.

The default Task is {"selected_language": "es"}; selected_language or Attributes may replace it.
Parameters come in the query string, a form, or a JSON object body such as
{"Attributes": {"selected_language": "en"}, "Priority": 5, "Timeout": 60}.
"""

from __future__ import annotations

import json
import re
from datetime import datetime

from flask import Blueprint, jsonify

from taskrouter_quickstart.routes import (
    ApiError,
    BodyField,
    Kind,
    NumberTooLarge,
    accepts_body,
    finite_float,
    integer_parameter,
    invalid_parameter,
    parameter,
    reject_json_constant,
)
from taskrouter_quickstart.security import control_required
from taskrouter_quickstart.taskrouter import current_taskrouter
from taskrouter_sandbox import jsonlimits

bp = Blueprint("tasks", __name__)

DEFAULT_LANGUAGE = "es"
MAX_ATTRIBUTES_BYTES = 4096
MAX_PRIORITY = 2**31 - 1
# Twilio's TaskRouter v1 description caps a Task's Timeout (TTL) at two weeks.
MAX_TASK_TIMEOUT = 1_209_600
# A language tag such as es, en, pt-BR or zh-Hant-TW.
LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,3}")

CREATE_TASK_FIELDS = (
    BodyField("selected_language"),
    BodyField("Attributes", Kind.JSON_OBJECT, ("attributes",)),
    BodyField("Priority", Kind.WHOLE_NUMBER, ("priority",)),
    BodyField("Timeout", Kind.WHOLE_NUMBER, ("timeout",)),
)


def _attributes() -> dict[str, object]:
    return task_attributes(parameter("selected_language"), parameter("Attributes", "attributes"))


def task_attributes(selected_language: str | None, raw_attributes: str | None) -> dict[str, object]:
    """The Task's attributes from the two ways of giving them, as text; ApiError if bad."""
    if selected_language is not None and raw_attributes is not None:
        raise ApiError(
            400,
            "invalid_parameter",
            "Attributes and selected_language were both given: send one of them "
            '(put "selected_language" inside Attributes)',
        )
    if raw_attributes is not None:
        if len(raw_attributes.encode()) > MAX_ATTRIBUTES_BYTES:
            raise invalid_parameter("Attributes", f"must be at most {MAX_ATTRIBUTES_BYTES} bytes")
        try:
            attributes = jsonlimits.loads(
                raw_attributes, parse_constant=reject_json_constant, parse_float=finite_float
            )
        except jsonlimits.TooDeep as exc:
            raise invalid_parameter(
                "Attributes", f"must be a JSON object nesting at most {exc.limit} levels"
            ) from None
        except NumberTooLarge as exc:
            raise invalid_parameter(
                "Attributes", f"holds a number too large for JSON: {exc}"
            ) from None
        except (ValueError, RecursionError):
            raise invalid_parameter("Attributes", "must be a JSON object") from None
        if not isinstance(attributes, dict):
            raise invalid_parameter("Attributes", "must be a JSON object, not a list or value")
        return attributes
    if selected_language is not None:
        if not LANGUAGE_TAG.fullmatch(selected_language):
            raise invalid_parameter(
                "selected_language", "must be a language code such as es, en or pt-BR"
            )
        return {"selected_language": selected_language}
    return {"selected_language": DEFAULT_LANGUAGE}


def _parsed_attributes(attributes: str | None) -> object:
    try:
        return json.loads(attributes) if attributes is not None else None
    except ValueError:
        return attributes


def _iso(value: object) -> object:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


@bp.route("/create-task", methods=("GET", "POST"))
@bp.route("/create_task", methods=("GET", "POST"))
@control_required
@accepts_body(*CREATE_TASK_FIELDS)
def create_task():
    attributes = _attributes()
    priority = integer_parameter("Priority", ("priority",), 0, MAX_PRIORITY)
    timeout = integer_parameter("Timeout", ("timeout",), 1, MAX_TASK_TIMEOUT)

    task = current_taskrouter().create_task(
        json.dumps(attributes, separators=(",", ":")), priority=priority, timeout=timeout
    )
    answer = {
        "sid": task.sid,
        "assignment_status": task.assignment_status,
        # Why TaskRouter canceled a task at once (no filter of the workflow took it), else null.
        "reason": task.reason,
        "attributes": _parsed_attributes(task.attributes),
        "workflow_sid": task.workflow_sid,
        "workflow_friendly_name": task.workflow_friendly_name,
        "task_queue_sid": task.task_queue_sid,
        "task_queue_friendly_name": task.task_queue_friendly_name,
        "priority": task.priority,
        "timeout": task.timeout,
        "date_created": _iso(task.date_created),
    }
    return jsonify(answer), 201
