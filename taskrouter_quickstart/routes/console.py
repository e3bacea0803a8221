"""The console a person uses: the page at /, its live state as JSON, the controls it adds
(worker activity, cancel/complete a task) and the health check for load balancers (/healthz).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from flask import Blueprint, current_app, jsonify, render_template, request, url_for

from taskrouter_quickstart import callback_log, console_guide, console_state
from taskrouter_quickstart.routes import (
    ApiError,
    BodyField,
    accepts_body,
    desk,
    invalid_parameter,
    parameter,
    require_sid,
)
from taskrouter_quickstart.security import NON_ACTING_METHODS, control_required, is_loopback_host
from taskrouter_quickstart.taskrouter import current_taskrouter
from taskrouter_quickstart.worker_login import TWILIO_EVENT_BRIDGE

bp = Blueprint("console", __name__)

RECENT_CALLBACKS = 20
# The page loads only its own script and style sheet: no inline code can run on it.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Against a Twilio account the desks' Worker SDK talks to Twilio's event bridge (the sandbox's
# bridge is this server: 'self').
_TWILIO_BRIDGE_HOST = urlsplit(TWILIO_EVENT_BRIDGE).netloc
TWILIO_CONTENT_SECURITY_POLICY = (
    f"{CONTENT_SECURITY_POLICY}; "
    f"connect-src 'self' https://{_TWILIO_BRIDGE_HOST} wss://{_TWILIO_BRIDGE_HOST}"
)
TASK_OUTCOMES = {"canceled": "Canceled on the console page", "completed": "Completed"}
MAX_REASON_LENGTH = 255
# The actions whose effect the page must show at its next poll, not a cache period later.
ACTIONS = frozenset(
    {
        "tasks.create_task",
        "reservations.accept_reservation",
        "reservations.reject_reservation",
        "console.update_worker",
        "console.update_task",
    }
)


@bp.record_once
def _init(setup_state) -> None:
    app = setup_state.app
    console_state.init_app(app)
    # A log shared by several hosts (Redis) says when another process recorded a callback:
    # the next poll then shows it at once, not a cache period later.
    app.extensions[callback_log.EXTENSION_KEY].on_change(console_state.state_cache(app).invalidate)


@bp.after_app_request
def _forget_state_after_action(response):
    # An OPTIONS answered without acting changed nothing the page shows.
    acted = request.method not in NON_ACTING_METHODS
    if request.endpoint in ACTIONS and acted and response.status_code < 400:
        console_state.state_cache(current_app).invalidate()
    return response


def _callback_url() -> str:
    # This server's own callback URL, to paste into a workflow; the page shows the URL the
    # workflow really calls from the live state, read from the workflow itself.
    public_base_url = current_app.config.get("PUBLIC_BASE_URL")
    if public_base_url:
        return f"{public_base_url}/assignment_callback"
    return url_for("assignment.assignment_callback", _external=True)


def _with_actions(row: dict[str, str | None]) -> dict[str, object]:
    # No link carries the token: a browser holds it as a cookie (token_cookie.py).
    task_sid = row.get("task_sid") or ""
    reservation_sid = row.get("reservation_sid") or ""
    actionable = (
        row.get("answer") == "{}"
        and re.fullmatch(r"WT[0-9a-fA-F]{32}", task_sid) is not None
        and re.fullmatch(r"WR[0-9a-fA-F]{32}", reservation_sid) is not None
    )
    links = {}
    if actionable:
        for action, endpoint in (
            ("accept", "reservations.accept_reservation"),
            ("reject", "reservations.reject_reservation"),
        ):
            arguments = {"TaskSid": task_sid, "ReservationSid": reservation_sid}
            links[action] = url_for(endpoint, _external=True, **arguments)
    return {**row, "links": links}


def _workspace_filter(taskrouter) -> dict[str, str | None]:
    # Callbacks from a wiped workspace (after `flask sandbox reset`) are not this one's.
    if taskrouter is None or not taskrouter.workspace_sid:
        return {}
    return {"workspace_sid": taskrouter.workspace_sid, "workflow_sid": taskrouter.workflow_sid}


@bp.get("/")
@control_required(read_only=True)
def index():
    settings = current_app.config
    taskrouter = current_app.extensions.get("taskrouter")
    log = current_app.extensions[callback_log.EXTENSION_KEY]
    try:
        rows = log.recent(RECENT_CALLBACKS, **_workspace_filter(taskrouter))
        callbacks = [_with_actions(row) for row in rows]
        log_error = None
    except callback_log.READ_ERRORS as exc:
        callbacks, log_error = [], str(exc)

    callback_url = _callback_url()
    callback_host = callback_url.split("://", 1)[-1].split("/", 1)[0]
    response = current_app.make_response(
        render_template(
            "console.html",
            mode=settings["ASSIGNMENT_MODE"],
            taskrouter=taskrouter,
            backend=settings["BACKEND"],
            account_sid=settings.get("TWILIO_ACCOUNT_SID"),
            api_key=settings.get("TWILIO_API_KEY"),
            taskrouter_base_url=settings["TASKROUTER_BASE_URL"],
            validate_signatures=settings["VALIDATE_SIGNATURES"],
            control_token_set=bool(settings.get("CONTROL_TOKEN")),
            callback_url=callback_url,
            callback_url_is_local=is_loopback_host(callback_host),
            create_task_url=url_for("tasks.create_task"),
            guide_steps=console_guide.GUIDE_STEPS,
            cumulative_minutes=console_state.CUMULATIVE_MINUTES,
            urls={
                "create_task": url_for("tasks.create_task"),
                "state": url_for("console.state"),
                "update_worker": url_for("console.update_worker"),
                "update_task": url_for("console.update_task"),
                "accept": url_for("reservations.accept_reservation"),
                "reject": url_for("reservations.reject_reservation"),
                "desk_token": url_for("desk.token"),
                "desk_sdk": url_for("desk.sdk"),
            },
            desk_sdk_installed=desk.sdk_path(current_app) is not None,
            desk_how_to_enable=desk.HOW_TO_ENABLE,
            callbacks=callbacks,
            log_error=log_error,
        )
    )
    response.headers["Content-Security-Policy"] = (
        CONTENT_SECURITY_POLICY
        if settings["BACKEND"] == "sandbox"
        else TWILIO_CONTENT_SECURITY_POLICY
    )
    # The page may carry the control token in its links: keep it out of shared caches.
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/console/state")
@control_required(read_only=True)
def state():
    """Workers, tasks, reservations, events, alerts, callbacks and statistics, for the page."""
    app = current_app._get_current_object()
    settings = app.config
    log = app.extensions[callback_log.EXTENSION_KEY]
    body = console_state.state_cache(app).get(
        lambda: console_state.build_state(
            current_taskrouter(), log, settings["BACKEND"], settings["ASSIGNMENT_MODE"]
        )
    )
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/update_worker")
@control_required
# Its parameters from a form or a JSON object; any other body is a 400, not ignored.
@accepts_body(
    BodyField("WorkerSid", aliases=("worker_sid",)),
    BodyField("ActivitySid", aliases=("activity_sid",)),
)
def update_worker():
    """Move a Worker to another Activity (Alice Offline, Alice Idle), on Twilio or the sandbox."""
    worker_sid = require_sid("WorkerSid", ("worker_sid",), "WK")
    activity_sid = require_sid("ActivitySid", ("activity_sid",), "WA")
    worker = current_taskrouter().update_worker_activity(worker_sid, activity_sid)
    return jsonify(
        {
            "worker_sid": worker.sid,
            "friendly_name": worker.friendly_name,
            "activity_sid": worker.activity_sid,
            "activity_name": worker.activity_name,
            "available": worker.available,
        }
    )


@bp.post("/update_task")
@control_required
@accepts_body(
    BodyField("TaskSid", aliases=("task_sid",)),
    BodyField("AssignmentStatus", aliases=("assignment_status",)),
    BodyField("Reason", aliases=("reason",)),
)
def update_task():
    """Cancel a pending or reserved Task, or complete an assigned one."""
    task_sid = require_sid("TaskSid", ("task_sid",), "WT")
    assignment_status = parameter("AssignmentStatus", "assignment_status")
    if assignment_status is None or assignment_status == "":
        raise ApiError(400, "missing_parameter", "AssignmentStatus is required")
    if assignment_status not in TASK_OUTCOMES:
        raise invalid_parameter("AssignmentStatus", "must be canceled or completed")
    reason = parameter("Reason", "reason")
    if reason is None or not reason.strip():
        reason = TASK_OUTCOMES[assignment_status]
    elif len(reason) > MAX_REASON_LENGTH:
        raise invalid_parameter("Reason", f"must be at most {MAX_REASON_LENGTH} characters")
    task = current_taskrouter().update_task_status(task_sid, assignment_status, reason)
    return jsonify(
        {
            "task_sid": task.sid,
            "assignment_status": task.assignment_status,
            "reason": task.reason,
        }
    )


@bp.get("/healthz")
def healthz():
    return {"status": "ok"}
