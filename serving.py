"""What only the process that serves does: point the local sandbox's workflow at itself, say
how to reach it, and follow a `flask sandbox reset` made while it runs.

Creating the app changes nothing shared: every `flask` command and every create_app() in a
script or test builds an app too, and none of them may take the sandbox's callbacks from the
server that is running. `flask run` (make run) and gunicorn are recognised here; tests that
serve an app themselves call start() with the address they bound.
"""

from __future__ import annotations

import logging
import os
import shlex
from dataclasses import dataclass

import click
from flask import Flask, current_app, request

import config
import taskrouter
from config import ConfigError
from sandbox.engine import Engine, NotFound

logger = logging.getLogger(__name__)

# Which workers and activities the walkthrough's shell variables name, in print order.
_WALKTHROUGH_ACTIVITIES = ("Offline", "Idle", "Busy", "Reserved")


@dataclass(frozen=True)
class Serving:
    """How this process serves: `flask run` knows its address, gunicorn's --bind is unread."""

    server: str
    host: str | None = None
    port: int | None = None


def detect() -> Serving | None:
    """How this process is about to serve, or None when it only builds the app."""
    context = click.get_current_context(silent=True)
    if context is not None and context.info_name == "run":
        return Serving(
            "flask run",
            str(context.params.get("host") or "127.0.0.1"),
            int(context.params.get("port") or 5000),
        )
    if _under_gunicorn():
        # An app cannot read gunicorn's --bind: HOST and PORT must name it (the README says
        # so), and the first request checks that they do (_check_bound_port).
        return Serving("gunicorn")
    return None


def _under_gunicorn() -> bool:
    return os.environ.get("SERVER_SOFTWARE", "").startswith("gunicorn")


def start(app: Flask) -> None:
    """Serve: claim the sandbox's callbacks, name SIDs that do not exist, print the values."""
    if app.config["BACKEND"] == "sandbox":
        _claim_callbacks(app)
        app.before_request(_follow_reset)
    _name_missing_sids(app)
    app.before_request(_check_bound_port)
    if not app.testing:
        click.echo(walkthrough(app), err=True)


def _server_pid() -> int:
    # A gunicorn worker is one of several behind its master, which outlives them all.
    if _under_gunicorn():
        return os.getppid()
    return os.getpid()


def _claim_callbacks(app: Flask) -> None:
    """Point the sandbox's workflow at this server, unless another live server has it."""
    box = app.extensions["sandbox"]
    url = app.config["SANDBOX_CALLBACK_URL"]
    pid = _server_pid()
    seeded = box.seeded
    current = box.engine.get_workflow(seeded.workspace_sid, seeded.workflow_sid)[
        "assignment_callback_url"
    ]
    holder = box.server()
    if (
        holder is not None
        and holder.callback_url != url
        and holder.callback_url == current
        and holder.pid != pid
        and holder.alive()
    ):
        raise ConfigError(
            f"another server (pid {holder.pid}) is using this sandbox and receives its "
            f"callbacks at {holder.callback_url}: stop it first, or give this server its own "
            "INSTANCE_PATH or SANDBOX_DATABASE"
        )
    if holder is None or holder.callback_url != url or not holder.alive():
        box.record_server(url, pid)
    if current != url:
        box.engine.update_workflow(
            seeded.workspace_sid, seeded.workflow_sid, assignment_callback_url=url
        )
        if current:
            logger.warning(
                "The sandbox workflow's Assignment Callback URL was %s; it now calls this "
                "server at %s",
                current,
                url,
            )


def _follow_reset() -> None:
    """After `flask sandbox reset` in another process, use the new workspace's SIDs."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    box = app.extensions["sandbox"]
    seeded = box.reload_seeded()
    if seeded is None:
        return
    changed = {}
    if app.config.get("SANDBOX_SEEDED_SIDS"):
        changed = {
            "TWILIO_WORKSPACE_SID": seeded.workspace_sid,
            "TWILIO_WORKFLOW_SID": seeded.workflow_sid,
        }
    app.config.update(changed)
    taskrouter.init_app(app)
    logger.info("The sandbox was reset: now using workspace %s", seeded.workspace_sid)


def _name_missing_sids(app: Flask) -> None:
    """One clear line for a configured workspace or workflow SID the backend does not have."""
    settings = app.config
    missing = []
    if settings["BACKEND"] == "sandbox":
        missing = _missing_in_sandbox(app.extensions["sandbox"].engine, settings)
    else:
        missing = _missing_on_twilio(app)
    if missing:
        logger.error(
            "%s does not exist on %s: check .env (flask taskrouter setup prints the SIDs)",
            " and ".join(missing),
            settings["TASKROUTER_BASE_URL"],
        )


def _missing_in_sandbox(engine: Engine, settings) -> list[str]:
    workspace_sid = settings["TWILIO_WORKSPACE_SID"]
    try:
        engine.get_workspace(workspace_sid)
    except NotFound:
        return [f"TWILIO_WORKSPACE_SID={workspace_sid}"]
    try:
        engine.get_workflow(workspace_sid, settings["TWILIO_WORKFLOW_SID"])
    except NotFound:
        return [f"TWILIO_WORKFLOW_SID={settings['TWILIO_WORKFLOW_SID']}"]
    return []


def _missing_on_twilio(app: Flask) -> list[str]:
    backend = app.extensions[taskrouter.EXTENSION_KEY]
    missing: list[str] = []
    checks = (
        ("TWILIO_WORKSPACE_SID", backend.workspace_sid, lambda: backend.workspace.fetch()),
        ("TWILIO_WORKFLOW_SID", backend.workflow_sid, lambda: backend.workflow.fetch()),
    )
    for name, sid, fetch in checks:
        if not sid:
            continue
        try:
            fetch()
        except Exception as exc:  # unreachable, refused, slow: the first real call will say
            if getattr(exc, "status", None) == 404:
                missing.append(f"{name}={sid}")
            else:
                logger.info("Could not check %s at start: %s", name, exc)
            break
    return missing


def _check_bound_port() -> None:
    """Once per process: say so when the server is bound elsewhere than PORT says."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if app.extensions.get("serving_checked") == os.getpid():
        return
    app.extensions["serving_checked"] = os.getpid()
    sock = request.environ.get("gunicorn.socket") or request.environ.get("werkzeug.socket")
    try:
        bound = sock.getsockname()[1] if sock is not None else None
    except (OSError, IndexError, TypeError):
        return
    if bound is not None and bound != int(app.config.get("PORT") or 5000):
        logger.error(
            "This server is bound to port %s but PORT is %s: it calls its own sandbox and is "
            "called back at %s. Set PORT=%s (gunicorn --bind and PORT must match)",
            bound,
            app.config.get("PORT"),
            config.local_base_url(app.config),
            bound,
        )


def walkthrough(app: Flask) -> str:
    """The values the README's walkthrough uses, as lines a shell can paste."""
    settings = app.config
    lines = [f"Serving on {config.local_base_url(settings)} ({settings['BACKEND']} backend)"]
    if settings["BACKEND"] != "sandbox":
        return "\n".join(lines)
    box = app.extensions["sandbox"]
    seeded = box.seeded
    values = {
        "APP": config.local_base_url(settings),
        "TR": settings["TASKROUTER_BASE_URL"],
        "AC": box.account_sid,
        "TOKEN": box.auth_token,
        "WS": settings["TWILIO_WORKSPACE_SID"],
        "WW": settings["TWILIO_WORKFLOW_SID"],
        **{name.upper(): sid for name, sid in seeded.worker_sids.items()},
        **{
            name.upper(): seeded.activity_sids[name]
            for name in _WALKTHROUGH_ACTIVITIES
            if name in seeded.activity_sids
        },
    }
    lines += [
        "Local TaskRouter sandbox; paste these into another terminal for the README's walkthrough:",
        *(f"export {name}={shlex.quote(str(value))}" for name, value in values.items()),
        f"Assignment callback: {settings['SANDBOX_CALLBACK_URL']}",
        f"Sandbox database: {box.store.database}",
    ]
    return "\n".join(lines)
