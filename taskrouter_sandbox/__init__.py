"""A local TaskRouter v1 as a Flask extension: init_app mounts a Sandbox's REST API on an app,
create_app serves one on its own, and `flask sandbox reset` starts it afresh.

The house, top to bottom (imports run downwards only; tests/test_architecture.py checks it):
api (the HTTP face) -> engine (one module per resource, behind the Engine facade) -> routing
(which worker gets which task) -> state (inside one transaction: reads, events, memberships,
every status write) -> store (SQLite) and domain (pure rules and values). runtime.py holds the
Sandbox, callbacks/ delivers callbacks, scheduler.py runs the timers; testing/ and
pytest_plugin.py serve other projects' tests, standalone.py the taskrouter-sandbox command. It
knows nothing of the quickstart server (taskrouter_quickstart/), whose app.py mounts it at
/sandbox.
"""

from __future__ import annotations

import os
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from taskrouter_sandbox.api import create_blueprint
from taskrouter_sandbox.eventbridge import views as eventbridge
from taskrouter_sandbox.runtime import Sandbox
from taskrouter_sandbox.store import MEMORY, make_private_directory

__all__ = ["Sandbox", "create_app", "init_app"]


sandbox_cli = AppGroup("sandbox", help="The local TaskRouter sandbox.")


@sandbox_cli.command("reset")
@click.option(
    "--new-credentials",
    is_flag=True,
    help="Also generate a new account SID and auth token (unless pinned in the config).",
)
def reset_command(new_credentials: bool) -> None:
    """Wipe the sandbox database and seed the quickstart workspace again."""
    sandbox: Sandbox = current_app.extensions["sandbox"]
    server = sandbox.running_server()
    if server is not None and new_credentials:
        # Its REST client and callback signatures use the credentials it started with.
        raise click.ClickException(
            f"a server (pid {server.pid}) is serving this sandbox: stop it before "
            "--new-credentials (a plain reset it follows while it runs)"
        )
    seeded = sandbox.reset(new_credentials=new_credentials)
    # The new workflow calls back the server that serves the sandbox, as the old one did.
    callback_url = server.callback_url if server else current_app.config.get("SANDBOX_CALLBACK_URL")
    if callback_url and seeded.workflow_sid:
        sandbox.engine.update_workflow(
            seeded.workspace_sid, seeded.workflow_sid, assignment_callback_url=callback_url
        )
    # As shell lines: the walkthrough's variables in another terminal name the wiped SIDs.
    click.echo(
        f"Sandbox reset (account {sandbox.account_sid}). The new quickstart workspace, "
        "for the README's walkthrough:"
    )
    for line in seeded.exports():
        click.echo(line)
    if callback_url:
        click.echo(f"  assignment callback {callback_url}")
    if server is not None:
        click.echo(f"The running server (pid {server.pid}) uses them from its next request.")
    elif new_credentials:
        click.echo("New credentials: the server prints them when it starts (make run).")


def init_app(app: Flask, url_prefix: str = "/sandbox") -> Sandbox:
    """Open (and on first start seed) the sandbox and serve its API under url_prefix.

    Settings: SANDBOX_DATABASE (default instance/sandbox.sqlite3, ":memory:" allowed),
    SANDBOX_ACCOUNT_SID / SANDBOX_AUTH_TOKEN (default: generated once, kept in the database),
    SANDBOX_CLOCK (an object with now() in UTC; default the system clock),
    SANDBOX_SEED ("quickstart", the default, or "empty": the workspace a new database gets),
    SANDBOX_START_THREADS (default True: callback delivery and timers start with the first
    request this process serves; False leaves Engine.fire_due to the caller, as tests do).
    """
    database = app.config.get("SANDBOX_DATABASE") or os.path.join(
        app.instance_path, "sandbox.sqlite3"
    )
    if database != MEMORY:
        directory = os.path.dirname(os.path.abspath(database))
        make_private_directory(directory)
    sandbox = Sandbox(
        database,
        account_sid=app.config.get("SANDBOX_ACCOUNT_SID") or None,
        auth_token=app.config.get("SANDBOX_AUTH_TOKEN") or None,
        clock=app.config.get("SANDBOX_CLOCK"),
        seed=app.config.get("SANDBOX_SEED") or "quickstart",
    )
    url_prefix = url_prefix.rstrip("/")
    api = create_blueprint(sandbox, url_prefix)
    app.register_blueprint(api, url_prefix=url_prefix or None)
    eventbridge.init_app(app, sandbox, url_prefix, f"{api.name}_eventbridge")
    app.cli.add_command(sandbox_cli)
    app.extensions["sandbox"] = sandbox
    if app.config.get("SANDBOX_START_THREADS", True):
        # Not at import or factory time: a forking server must start them in each worker.
        app.before_request(sandbox.start)
    return sandbox


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """The sandbox on its own, at the root: `flask --app taskrouter_sandbox run` serves
    /v1/Workspaces."""
    app = Flask(__name__, instance_relative_config=True, static_folder=None)
    if test_config is None:
        for name in ("SANDBOX_DATABASE", "SANDBOX_ACCOUNT_SID", "SANDBOX_AUTH_TOKEN"):
            if os.environ.get(name):
                app.config[name] = os.environ[name]
    else:
        app.config.from_mapping(test_config)
    sandbox = init_app(app, url_prefix="")
    served_at = _served_at()
    # Only the process that serves prints the credentials, not every other
    # `flask --app taskrouter_sandbox` command.
    if served_at is not None and not app.config.get("TESTING"):
        click.echo(sandbox.describe(served_at), err=True)
    return app


def _served_at() -> str | None:
    """The base URL `flask run` is about to serve (its --host/--port, else the defaults), or
    None when this process is not `flask run`."""
    context = click.get_current_context(silent=True)
    if context is None or context.info_name != "run":
        return None
    params = context.params
    host = params.get("host") or os.environ.get("FLASK_RUN_HOST") or "127.0.0.1"
    port = params.get("port") or os.environ.get("FLASK_RUN_PORT") or 5000
    scheme = "https" if params.get("cert") else "http"
    return f"{scheme}://{host}:{port}"
