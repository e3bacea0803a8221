"""The page a person uses (GET /) and the health check for load balancers (GET /healthz).

The page shows the settings in use, the Assignment Callback URL and the callbacks received.
"""

from __future__ import annotations

import re
import sqlite3

from flask import Blueprint, current_app, render_template, request, url_for

import callback_log
from security import control_required, is_loopback_host

bp = Blueprint("console", __name__)

RECENT_CALLBACKS = 20


def _callback_url() -> str:
    # The sandbox's workflow already calls this URL; show the one it was given.
    if current_app.config.get("SANDBOX_CALLBACK_URL"):
        return current_app.config["SANDBOX_CALLBACK_URL"]
    public_base_url = current_app.config.get("PUBLIC_BASE_URL")
    if public_base_url:
        return f"{public_base_url}/assignment_callback"
    return url_for("assignment.assignment_callback", _external=True)


def _link_token() -> str | None:
    # Carry the token into the page's links only when the page itself was opened with one.
    tokens = request.args.getlist("token")
    return tokens[0] if len(tokens) == 1 else None


def _with_actions(row: dict[str, str | None], token: str | None) -> dict[str, object]:
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
            if token:
                arguments["token"] = token
            links[action] = url_for(endpoint, _external=True, **arguments)
    return {**row, "links": links}


@bp.get("/")
@control_required(read_only=True)
def index():
    settings = current_app.config
    taskrouter = current_app.extensions.get("taskrouter")
    token = _link_token()
    log = current_app.extensions[callback_log.EXTENSION_KEY]
    try:
        callbacks = [_with_actions(row, token) for row in log.recent(RECENT_CALLBACKS)]
        log_error = None
    except (sqlite3.Error, OSError) as exc:
        callbacks, log_error = [], str(exc)

    callback_url = _callback_url()
    callback_host = callback_url.split("://", 1)[-1].split("/", 1)[0]
    return render_template(
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
        create_task_url=url_for("tasks.create_task", **({"token": token} if token else {})),
        callbacks=callbacks,
        log_error=log_error,
    )


@bp.get("/healthz")
def healthz():
    return {"status": "ok"}
