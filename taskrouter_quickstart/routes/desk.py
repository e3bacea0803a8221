"""The agents' desks on the console page: Twilio's Worker SDK (twilio-taskrouter) for the browser
at /desk/twilio-taskrouter.js, and POST /desk/token, a worker's login for it.

The SDK is the npm package's browser build, bundled with the packages it requires by `make run`
into .cache/desk (the Makefile's DESK rule; the DESK_SDK_PATH config key may point elsewhere).
Without it the page's desks say how to get it.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask, current_app, jsonify, request, send_file

from taskrouter_quickstart.config import ConfigError
from taskrouter_quickstart.routes import (
    ApiError,
    BodyField,
    Kind,
    accepts_body,
    check_sid,
    integer_parameter,
    parameter,
)
from taskrouter_quickstart.security import control_required
from taskrouter_quickstart.taskrouter import current_taskrouter
from taskrouter_quickstart.worker_login import DEFAULT_TTL, MAX_TTL, worker_login

bp = Blueprint("desk", __name__)

SDK_URL = "/desk/twilio-taskrouter.js"
# Where `make run` bundles the package (the Makefile's DESK folder), beside app.py.
DEFAULT_SDK_PATH = Path(__file__).resolve().parents[2] / ".cache/desk/twilio-taskrouter.js"
HOW_TO_ENABLE = (
    "install npm (Node.js), then run `make run`: it installs Twilio's Worker SDK "
    "(twilio-taskrouter) into .cache/desk"
)
MAX_NAME_LENGTH = 255


@bp.record_once
def _init(setup_state) -> None:
    setup_state.app.config.setdefault("DESK_SDK_PATH", str(DEFAULT_SDK_PATH))


def sdk_path(app: Flask) -> Path | None:
    """The SDK's browser build when it is installed, else None."""
    path = Path(app.config["DESK_SDK_PATH"])
    return path if path.is_file() else None


@bp.get(SDK_URL)
def sdk():
    path = sdk_path(current_app)
    if path is None:
        raise ApiError(
            404,
            "desk_sdk_not_installed",
            f"Twilio's Worker SDK is not installed at {current_app.config['DESK_SDK_PATH']}: "
            f"{HOW_TO_ENABLE}",
        )
    # Conditional and cached as the static files are: a new install changes its ETag.
    return send_file(path, mimetype="text/javascript", max_age=0)


def _worker_by_name(name: str):
    taskrouter = current_taskrouter()
    with taskrouter.upstream("list the workers"):
        workers = taskrouter.workspace.workers.list()
    # TaskRouter compares friendly names without regard to case.
    wanted = name.casefold()
    chosen = next((w for w in workers if (w.friendly_name or "").casefold() == wanted), None)
    if chosen is None:
        known = ", ".join(w.friendly_name for w in workers) or "none"
        raise ApiError(
            404,
            "unknown_worker",
            f"No worker named {name!r} in workspace {taskrouter.workspace_sid} "
            f"(its workers: {known})",
        )
    return chosen


def _worker_by_sid(sid: str):
    taskrouter = current_taskrouter()
    # A worker of another workspace, or none, is TaskRouter's 404 naming the SID.
    with taskrouter.upstream(f"fetch worker {sid}"):
        return taskrouter.workspace.workers(sid).fetch()


def _chosen_worker():
    sid = parameter("WorkerSid", "worker_sid")
    name = parameter("WorkerName", "worker_name")
    if sid and name:
        raise ApiError(
            400, "invalid_parameter", "WorkerSid and WorkerName were both given: send one of them"
        )
    if sid:
        return _worker_by_sid(check_sid("WorkerSid", sid, "WK"))
    if name and name.strip():
        if len(name) > MAX_NAME_LENGTH:
            raise ApiError(
                400,
                "invalid_parameter",
                f"WorkerName must be at most {MAX_NAME_LENGTH} characters",
            )
        return _worker_by_name(name.strip())
    raise ApiError(
        400, "missing_parameter", "WorkerSid (WK...) or WorkerName (such as Alice) is required"
    )


@bp.post("/desk/token")
@control_required
@accepts_body(
    BodyField("WorkerSid", aliases=("worker_sid",)),
    BodyField("WorkerName", aliases=("worker_name",)),
    BodyField("Ttl", Kind.WHOLE_NUMBER, ("ttl",)),
)
def token():
    """A worker's access token for the Worker SDK and the event bridge to hand it:
    {"token", "ebServer", "wsServer", "workerSid", "workspaceSid", "workerName"}; Ttl, the
    token's lifetime in seconds, is an hour unless given."""
    ttl = integer_parameter("Ttl", ("ttl",), 1, MAX_TTL)
    worker = _chosen_worker()
    try:
        # The bridge as the browser reaches this server (through ngrok: its https URL).
        login = worker_login(current_app, worker.sid, request.url_root, ttl or DEFAULT_TTL)
    except ConfigError as exc:
        raise ApiError(503, "not_configured", str(exc)) from None
    response = jsonify({**login, "workerName": worker.friendly_name})
    # A token is a credential: no cache keeps it.
    response.headers["Cache-Control"] = "no-store"
    return response
