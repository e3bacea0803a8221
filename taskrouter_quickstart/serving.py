"""What only the process that serves does: point the local sandbox's workflow at itself, say
how to reach it, and follow a `flask sandbox reset` made while it runs.

Creating the app changes nothing shared: every `flask` command and every create_app() in a
script or test builds an app too, and none of them may take the sandbox's callbacks from the
server that is running. `flask run` (make run) and gunicorn are recognised here; tests that
serve an app themselves call start() once they have bound their port.
"""

from __future__ import annotations

import os
import shlex
import threading
from collections.abc import Mapping
from dataclasses import dataclass

import click
from flask import Flask, current_app, request
from flask.helpers import get_debug_flag

from taskrouter_quickstart import config, taskrouter
from taskrouter_quickstart.config import ConfigError
from taskrouter_quickstart.routes import ApiError
from taskrouter_sandbox.domain.errors import NotFound
from taskrouter_sandbox.engine import Engine


@dataclass(frozen=True)
class Serving:
    """How this process serves: `flask run` knows its port; gunicorn's --bind is unread."""

    server: str
    host: str | None = None
    port: int | None = None


def detect() -> Serving | None:
    """How this process is about to serve, or None when it only builds the app."""
    context = click.get_current_context(silent=True)
    if context is not None and context.info_name == "run":
        reload = context.params.get("reload")
        if reload is None:
            reload = get_debug_flag()
        if reload and os.environ.get("WERKZEUG_RUN_MAIN") != "true":
            return None  # the reloader's parent only watches files; its child serves
        return Serving(
            "flask run",
            str(context.params.get("host") or "127.0.0.1"),
            int(context.params.get("port") or 5000),
        )
    if _under_gunicorn():
        return Serving("gunicorn")
    return None


def _under_gunicorn() -> bool:
    return os.environ.get("SERVER_SOFTWARE", "").startswith("gunicorn")


def start(app: Flask) -> None:
    """Serve at HOST:PORT, from now on."""
    _follow_resets(app)
    _serve(app)


def _follow_resets(app: Flask) -> None:
    if app.config["BACKEND"] == "sandbox":
        app.extensions["serving_reset_lock"] = threading.Lock()
        app.before_request(_follow_reset)


def _serve(app: Flask) -> None:
    """Claim the sandbox's callbacks, name SIDs that do not exist, and print the
    walkthrough's values when this process is the one that took the sandbox."""
    took_over = True
    if app.config["BACKEND"] == "sandbox":
        took_over = _claim_callbacks(app)
    _name_missing_sids(app)
    if took_over and not app.testing:
        click.echo(walkthrough(app), err=True)


def start_on_first_request(app: Flask) -> None:
    """gunicorn: start once the first request shows the port really bound.

    Nothing before a first request needs the callbacks: a task is created through this
    server, and the sandbox's timers start with a request too.
    """
    started: set[int] = set()
    lock = threading.Lock()

    def start_here() -> None:
        if os.getpid() in started:
            return
        with lock:
            if os.getpid() in started:
                return
            app = current_app._get_current_object()  # type: ignore[attr-defined]
            _follow_bound_port(app, request.environ.get("gunicorn.socket"))
            try:
                _serve(app)
            except ConfigError as exc:
                app.logger.error("%s", exc)
                raise ApiError(503, "another_server", str(exc)) from None
            started.add(os.getpid())

    # Before _follow_reset, which must not run ahead of the claim.
    app.before_request(start_here)
    _follow_resets(app)


def _follow_bound_port(app: Flask, sock) -> None:
    """Use the port gunicorn really bound when PORT says another one: the sandbox's server
    calls itself and is called back there (a Twilio account needs no own port)."""
    if app.config["BACKEND"] != "sandbox":
        return
    try:
        address = sock.getsockname() if sock is not None else None
    except OSError:
        return
    if not isinstance(address, tuple) or address[1] == int(app.config.get("PORT") or 5000):
        return  # a unix socket, or PORT already right
    app.logger.warning(
        "gunicorn is bound to port %s but PORT is %s: this server uses %s (set PORT=%s to say so)",
        address[1],
        app.config.get("PORT"),
        address[1],
        address[1],
    )
    app.config["PORT"] = str(address[1])
    local_url = config.local_base_url(app.config)
    app.config["TASKROUTER_BASE_URL"] = f"{local_url}/sandbox"
    app.config["SANDBOX_CALLBACK_URL"] = (
        f"{app.config['PUBLIC_BASE_URL'] or local_url}/assignment_callback"
    )
    taskrouter.init_app(app)


def _server_pid() -> int:
    # A gunicorn worker is one of several behind its master, which outlives them all.
    if _under_gunicorn():
        return os.getppid()
    return os.getpid()


def _claim_callbacks(app: Flask) -> bool:
    """Point the sandbox's workflow at this server, unless another running server has it.

    True when this process took the sandbox over, False when it joins a server already
    serving it at the same URL (another gunicorn worker).
    """
    box = app.extensions["sandbox"]
    url = app.config["SANDBOX_CALLBACK_URL"]
    seeded = box.seeded
    current = box.engine.get_workflow(seeded.workspace_sid, seeded.workflow_sid)[
        "assignment_callback_url"
    ]
    running = box.running_server()
    if running is not None and running.callback_url != url and running.callback_url == current:
        raise ConfigError(
            f"another server (pid {running.pid}) is using this sandbox and receives its "
            f"callbacks at {running.callback_url}: stop it first, or give this server its own "
            "INSTANCE_PATH or SANDBOX_DATABASE"
        )
    joined = running is not None and running.callback_url == url
    box.serve(url, running.pid if joined else _server_pid())
    if current != url:
        box.engine.update_workflow(
            seeded.workspace_sid, seeded.workflow_sid, assignment_callback_url=url
        )
        if current:
            app.logger.warning(
                "The sandbox workflow's Assignment Callback URL was %s; it now calls this "
                "server at %s",
                current,
                url,
            )
    return not joined


def _follow_reset() -> None:
    """After `flask sandbox reset` in another process, use the new workspace's SIDs."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    lock = app.extensions["serving_reset_lock"]
    if not lock.acquire(blocking=False):
        return  # another request of this process is following it already
    try:
        seeded = app.extensions["sandbox"].reload_seeded()
        if seeded is None:
            return
        if not app.config.get("SANDBOX_SEEDED_SIDS"):
            _name_missing_sids(app)  # configured SIDs are kept, and may be gone now
            return
        app.config.update(
            TWILIO_WORKSPACE_SID=seeded.workspace_sid, TWILIO_WORKFLOW_SID=seeded.workflow_sid
        )
        taskrouter.init_app(app)
        app.logger.info("The sandbox was reset: now using workspace %s", seeded.workspace_sid)
    finally:
        lock.release()


def _name_missing_sids(app: Flask) -> None:
    """One clear line for a configured workspace or workflow SID the backend does not have."""
    settings = app.config
    if settings["BACKEND"] == "sandbox":
        missing = _missing_in_sandbox(app.extensions["sandbox"].engine, settings)
    else:
        missing = _missing_on_twilio(app)
    if missing:
        app.logger.error(
            "%s does not exist on %s: check .env (flask taskrouter setup prints the SIDs)",
            " and ".join(missing),
            settings["TASKROUTER_BASE_URL"],
        )


def _missing_in_sandbox(engine: Engine, settings: Mapping[str, object]) -> list[str]:
    workspace_sid = str(settings["TWILIO_WORKSPACE_SID"])
    try:
        engine.get_workspace(workspace_sid)
    except NotFound:
        return [f"TWILIO_WORKSPACE_SID={workspace_sid}"]
    try:
        engine.get_workflow(workspace_sid, str(settings["TWILIO_WORKFLOW_SID"]))
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
                app.logger.info("Could not check %s at start: %s", name, exc)
            break
    return missing


def walkthrough(app: Flask) -> str:
    """The values the README's walkthrough uses, as lines a shell can paste."""
    settings = app.config
    lines = [f"Serving on {config.local_base_url(settings)} ({settings['BACKEND']} backend)"]
    if settings["BACKEND"] != "sandbox":
        return "\n".join(lines)
    box = app.extensions["sandbox"]
    values = {
        "APP": config.local_base_url(settings),
        "TR": settings["TASKROUTER_BASE_URL"],
        "AC": box.account_sid,
        "TOKEN": box.auth_token,
    }
    if settings.get("SANDBOX_SEEDED_SIDS"):
        sids = box.seeded.exports()
    else:
        sids = [
            f"export WS={settings['TWILIO_WORKSPACE_SID']}",
            f"export WW={settings['TWILIO_WORKFLOW_SID']}",
        ]
    lines += [
        "Local TaskRouter sandbox; paste these into another terminal for the README's walkthrough:",
        *(f"export {name}={shlex.quote(str(value))}" for name, value in values.items()),
        *sids,
        f"Assignment callback: {settings['SANDBOX_CALLBACK_URL']}",
        f"Sandbox database: {box.store.database}",
    ]
    return "\n".join(lines)
