"""The two URLs TaskRouter calls: /assignment (the Workflow's AssignmentCallbackUrl) and
/events (the Workspace's EventCallbackUrl). Both refuse a request without a valid
X-Twilio-Signature, as anything reachable from the internet should."""

from __future__ import annotations

import json
from functools import wraps
from typing import Any

from flask import Blueprint, Flask, abort, current_app, jsonify, request
from twilio.request_validator import RequestValidator

webhooks = Blueprint("webhooks", __name__)


def signed_by_twilio(view: Any) -> Any:
    """403 unless the request carries TaskRouter's signature over its URL and form."""

    @wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        validator = RequestValidator(current_app.config["TWILIO_AUTH_TOKEN"])
        signature = request.headers.get("X-Twilio-Signature", "")
        if not validator.validate(request.url, request.form, signature):
            abort(403, "X-Twilio-Signature is missing or does not match")
        return view(*args, **kwargs)

    return checked


def _attributes(field: str) -> dict[str, Any]:
    """A JSON-object form field (TaskAttributes, WorkerAttributes); 400 when it is not one."""
    try:
        value = json.loads(request.form.get(field, "{}"))
    except ValueError:
        abort(400, f"{field} is not JSON")
    if not isinstance(value, dict):
        abort(400, f"{field} is not a JSON object")
    return value


def assignment_answer(
    task: dict[str, Any], worker: dict[str, Any], reject_activity_sid: str | None
) -> dict[str, Any]:
    """The desk's rule: what to tell TaskRouter about offering this ticket to this agent."""
    if task.get("manual_review") is True:
        # No instruction: the reservation stays pending until a supervisor accepts or rejects
        # it through the REST API, or the Workflow's TaskReservationTimeout passes.
        return {}
    skill = task.get("skill")
    skills = worker.get("skills")
    if skill is None or (isinstance(skills, list) and skill in skills):
        return {"instruction": "accept"}
    answer = {"instruction": "reject"}
    if reject_activity_sid:
        answer["activity_sid"] = reject_activity_sid
    return answer


@webhooks.post("/assignment")
@signed_by_twilio
def assignment() -> Any:
    answer = assignment_answer(
        _attributes("TaskAttributes"),
        _attributes("WorkerAttributes"),
        current_app.config.get("REJECT_ACTIVITY_SID"),
    )
    return jsonify(answer)


@webhooks.post("/events")
@signed_by_twilio
def events() -> Any:
    events_seen(current_app).append(request.form.to_dict())
    # As Twilio's event reference asks: 204 No Content, with a JSON content type.
    return "", 204, {"Content-Type": "application/json"}


def events_seen(app: Flask) -> list[dict[str, str]]:
    """The event callbacks app received, oldest first, each its form as sent."""
    return app.extensions["support_desk_events"]


@webhooks.errorhandler(400)
@webhooks.errorhandler(403)
def refused(error: Any) -> Any:
    return jsonify({"error": error.description}), error.code
