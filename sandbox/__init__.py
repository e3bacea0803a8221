"""A local TaskRouter v1: the REST resources, the routing engine and its callbacks.

It knows nothing of the quickstart server in routes/; app.py mounts it at /sandbox.
"""

from __future__ import annotations

import os
import re
import secrets
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from sandbox.api import create_blueprint
from sandbox.clock import Clock, SystemClock
from sandbox.engine import Engine
from sandbox.seed import Seeded, ensure_seeded
from sandbox.store import MEMORY, Store

__all__ = ["Sandbox", "create_app", "init_app"]

ACCOUNT_SID_PATTERN = re.compile(r"^AC[0-9a-fA-F]{32}$")
_CREDENTIAL_SETTINGS = ("account_sid", "auth_token")


class Sandbox:
    """One sandbox: its store, engine, credentials and the SIDs of the seeded workspace."""

    def __init__(
        self,
        database: str,
        *,
        account_sid: str | None = None,
        auth_token: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        if account_sid is not None and not ACCOUNT_SID_PATTERN.match(account_sid):
            raise ValueError(
                f"SANDBOX_ACCOUNT_SID {account_sid!r} is not an account SID (AC + 32 hex digits)"
            )
        if auth_token is not None and not auth_token.strip():
            raise ValueError("SANDBOX_AUTH_TOKEN must not be empty")
        self.clock: Clock = clock or SystemClock()
        self.store = Store(database)
        self._pinned = (account_sid, auth_token)
        self.account_sid, self.auth_token = self._credentials()
        self.engine = Engine(self.store, self.clock, self.account_sid)
        self.seeded: Seeded = ensure_seeded(self.engine)

    def _credentials(self, regenerate: bool = False) -> tuple[str, str]:
        """Pinned credentials win; otherwise generated once and kept in the database."""
        with self.store.transaction() as tx:
            account_sid = tx.setting("account_sid")
            auth_token = tx.setting("auth_token")
            if regenerate or account_sid is None or auth_token is None:
                account_sid = "AC" + secrets.token_hex(16)
                auth_token = secrets.token_hex(16)
                tx.set_setting("account_sid", account_sid)
                tx.set_setting("auth_token", auth_token)
        pinned_sid, pinned_token = self._pinned
        return pinned_sid or account_sid, pinned_token or auth_token

    def reset(self, *, new_credentials: bool = False) -> Seeded:
        """Wipe every resource and event, then seed the quickstart workspace again."""
        with self.store.transaction() as tx:
            Store.wipe(tx, keep_settings=() if new_credentials else _CREDENTIAL_SETTINGS)
            self.account_sid, self.auth_token = self._credentials(regenerate=new_credentials)
            self.engine.account_sid = self.account_sid
            self.seeded = ensure_seeded(self.engine)
        return self.seeded

    def describe(self, base_url: str) -> str:
        """What a person needs to point curl or the twilio library at this sandbox."""
        lines = [
            "TaskRouter sandbox",
            f"  base URL    {base_url}   (client.taskrouter.base_url)",
            f"  account SID {self.account_sid}",
            f"  auth token  {self.auth_token}",
            f"  database    {self.store.database}",
            "Seeded quickstart workspace:",
            *self.seeded.describe(),
        ]
        return "\n".join(lines)

    def close(self) -> None:
        self.store.close()


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
    sandbox.reset(new_credentials=new_credentials)
    click.echo("Sandbox reset.")
    click.echo(f"  account SID {sandbox.account_sid}")
    click.echo(f"  auth token  {sandbox.auth_token}")
    for line in sandbox.seeded.describe():
        click.echo(line)


def init_app(app: Flask, url_prefix: str = "/sandbox") -> Sandbox:
    """Open (and on first start seed) the sandbox and serve its API under url_prefix.

    Settings: SANDBOX_DATABASE (default instance/sandbox.sqlite3, ":memory:" allowed),
    SANDBOX_ACCOUNT_SID / SANDBOX_AUTH_TOKEN (default: generated once, kept in the database),
    SANDBOX_CLOCK (an object with now() in UTC; default the system clock).
    """
    database = app.config.get("SANDBOX_DATABASE") or os.path.join(
        app.instance_path, "sandbox.sqlite3"
    )
    if database != MEMORY:
        directory = os.path.dirname(os.path.abspath(database))
        os.makedirs(directory, exist_ok=True)
    sandbox = Sandbox(
        database,
        account_sid=app.config.get("SANDBOX_ACCOUNT_SID") or None,
        auth_token=app.config.get("SANDBOX_AUTH_TOKEN") or None,
        clock=app.config.get("SANDBOX_CLOCK"),
    )
    url_prefix = url_prefix.rstrip("/")
    app.register_blueprint(create_blueprint(sandbox, url_prefix), url_prefix=url_prefix or None)
    app.cli.add_command(sandbox_cli)
    app.extensions["sandbox"] = sandbox
    return sandbox


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """The sandbox on its own, at the root: `flask --app sandbox run` serves /v1/Workspaces."""
    app = Flask(__name__, instance_relative_config=True, static_folder=None)
    if test_config is None:
        for name in ("SANDBOX_DATABASE", "SANDBOX_ACCOUNT_SID", "SANDBOX_AUTH_TOKEN"):
            if os.environ.get(name):
                app.config[name] = os.environ[name]
    else:
        app.config.from_mapping(test_config)
    sandbox = init_app(app, url_prefix="")
    if not app.config.get("TESTING"):
        click.echo(sandbox.describe(_served_at()), err=True)
    return app


def _served_at() -> str:
    """The base URL `flask run` is about to serve (its --host/--port, else the defaults)."""
    context = click.get_current_context(silent=True)
    params = context.params if context is not None else {}
    host = params.get("host") or os.environ.get("FLASK_RUN_HOST") or "127.0.0.1"
    port = params.get("port") or os.environ.get("FLASK_RUN_PORT") or 5000
    scheme = "https" if params.get("cert") else "http"
    return f"{scheme}://{host}:{port}"
