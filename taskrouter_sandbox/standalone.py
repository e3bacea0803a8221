"""The sandbox served alone, for a client in any language: `taskrouter-sandbox` (or
`python -m taskrouter_sandbox`) serves /v1 and the control API (/control/...) on one port.

stdout gets the lines to paste into a shell (the one place the auth token is printed, as
`make run` prints it); stderr the log. SIGTERM or SIGINT stops it: no new connections, the
queued callbacks delivered, exit status 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import signal
import socket
import sqlite3
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from types import FrameType
from typing import NoReturn
from urllib.parse import urlsplit

from werkzeug.serving import get_sockaddr, make_server, select_address_family

from taskrouter_sandbox import create_app
from taskrouter_sandbox.clock import Clock, ManualClock, ShiftedClock
from taskrouter_sandbox.eventbridge import views as eventbridge
from taskrouter_sandbox.runtime import ACCOUNT_SID_PATTERN, Sandbox
from taskrouter_sandbox.seed import SEEDS
from taskrouter_sandbox.store import MEMORY

PROG = "taskrouter-sandbox"
DEFAULT_PORT = 5001
# How long a stop waits for the callbacks still queued (Sandbox.stop).
STOP_TIMEOUT = 10.0

logger = logging.getLogger("taskrouter_sandbox.standalone")


def _account_sid(value: str) -> str:
    if not ACCOUNT_SID_PATTERN.match(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not an account SID (AC + 32 hex digits)")
    return value


def _auth_token(value: str) -> str:
    if not value.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return value


def _port(value: str) -> int:
    if not value.isdigit() or not 0 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a port (0 to 65535; 0 picks a free one)"
        )
    return int(value)


def _callback_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"{value!r} is not an http:// or https:// URL")
    return value


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad option is one line on stderr (not the usage too), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (--help lists the options)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        description="Serve a local TaskRouter v1 REST API (and its control API at /control) "
        "for the twilio library in any language.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (127.0.0.1)")
    parser.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, help=f"port ({DEFAULT_PORT}; 0: a free one)"
    )
    parser.add_argument(
        "--database",
        metavar="FILE",
        default=MEMORY,
        help="SQLite file that keeps the state across restarts (default: in memory)",
    )
    parser.add_argument(
        "--seed",
        choices=SEEDS,
        default="quickstart",
        help="the workspace a new sandbox starts with (quickstart)",
    )
    parser.add_argument(
        "--account-sid",
        type=_account_sid,
        help="pin the account SID (else SANDBOX_ACCOUNT_SID, else generated)",
    )
    parser.add_argument(
        "--auth-token",
        type=_auth_token,
        help="pin the auth token (else SANDBOX_AUTH_TOKEN, else generated)",
    )
    parser.add_argument(
        "--clock",
        choices=("system", "manual"),
        default="system",
        help="system: real time that POST /control/clock/advance moves forward; "
        "manual: stands still until advanced (system)",
    )
    parser.add_argument(
        "--callback-url",
        type=_callback_url,
        metavar="URL",
        help="the quickstart workflow's Assignment Callback URL",
    )
    parser.add_argument("--quiet", action="store_true", help="no access log")
    return parser


def parse_options(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = build_parser()
    options = parser.parse_args(argv)
    # The environment is checked as the options are, and named when it is wrong.
    for name, option, check in (
        ("SANDBOX_ACCOUNT_SID", "account_sid", _account_sid),
        ("SANDBOX_AUTH_TOKEN", "auth_token", _auth_token),
    ):
        if getattr(options, option) is None and os.environ.get(name):
            try:
                setattr(options, option, check(os.environ[name]))
            except argparse.ArgumentTypeError as error:
                parser.error(f"{name}: {error}")
    if options.callback_url and options.seed == "empty":
        parser.error("--callback-url: the empty seed has no workflow to call back from")
    return options


def make_clock(kind: str) -> Clock:
    # A manual clock starts at the real time, so that dates read as today's.
    return ManualClock(datetime.now(UTC)) if kind == "manual" else ShiftedClock()


def base_url(host: str, port: int) -> str:
    """The URL a client on this machine uses: a wildcard address is reached at loopback."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def export_lines(sandbox: Sandbox, url: str) -> list[str]:
    """The environment a client needs, under the names the quickstart server reads."""
    values = {
        "TWILIO_ACCOUNT_SID": sandbox.account_sid,
        "TWILIO_AUTH_TOKEN": sandbox.auth_token,
        "TASKROUTER_BASE_URL": url,
        "TWILIO_WORKSPACE_SID": sandbox.seeded.workspace_sid,
    }
    if sandbox.seeded.workflow_sid:
        values["TWILIO_WORKFLOW_SID"] = sandbox.seeded.workflow_sid
    # The API key that signs workers' access tokens for the Worker SDK (AccessToken with a
    # TaskRouterGrant, from any twilio library).
    values["TWILIO_API_KEY"] = sandbox.api_key_sid
    values["TWILIO_API_SECRET"] = sandbox.api_key_secret
    lines = [f"export {name}={shlex.quote(value)}" for name, value in values.items()]
    bridge = f"{url}{eventbridge.PATH}"
    lines.append(
        f"# Worker SDK: new Worker(token, {{ebServer: '{bridge}', "
        f"wsServer: '{bridge.replace('http', 'ws', 1)}'}})"
    )
    # Last: readers of these lines stop at it.
    lines.append(
        f"# control API: {url}/control (clock, clock/advance, settle, reset, seed, "
        "callbacks), basic auth as for /v1"
    )
    return lines


def _configure_logging(quiet: bool) -> None:
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    # werkzeug's access log names method, path and status: never the Authorization header.
    logging.getLogger("werkzeug").setLevel(logging.WARNING if quiet else logging.INFO)


def _listen(host: str, port: int) -> socket.socket:
    family = select_address_family(host, port)
    listening = socket.socket(family, socket.SOCK_STREAM)
    try:
        # As werkzeug and every server does: a restart may rebind a port just let go of.
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(get_sockaddr(host, port, family))
        listening.listen()
    except OSError:
        listening.close()
        raise
    return listening


def _fail(message: str) -> int:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT; the exit status (2 for bad options, from argparse)."""
    options = parse_options(argv)
    _configure_logging(options.quiet)
    # From the start: a stop asked for while it starts is honoured once it serves.
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        app = create_app(
            {
                "SANDBOX_DATABASE": options.database,
                "SANDBOX_ACCOUNT_SID": options.account_sid,
                "SANDBOX_AUTH_TOKEN": options.auth_token,
                "SANDBOX_CLOCK": make_clock(options.clock),
                "SANDBOX_SEED": options.seed,
                # Started below, once, before the first request rather than with it.
                "SANDBOX_START_THREADS": False,
            }
        )
    except ValueError as error:  # what the Sandbox itself refuses
        return _fail(str(error))
    except sqlite3.DatabaseError as error:
        return _fail(f"{options.database} is not a sandbox database: {error}")
    except OSError as error:
        return _fail(f"cannot open the database {options.database}: {error.strerror or error}")
    sandbox: Sandbox = app.extensions["sandbox"]
    seeded = sandbox.seeded
    if options.callback_url and not seeded.workflow_sid:
        sandbox.close()
        print(
            f"{PROG}: --callback-url: {options.database} has the empty seed, "
            "which has no workflow to call back from",
            file=sys.stderr,
            flush=True,
        )
        return 2
    if seeded.kind != options.seed:
        logger.warning(
            "%s keeps the %s seed it has: --seed %s applies to a new database",
            options.database,
            seeded.kind,
            options.seed,
        )
    try:
        listening = _listen(options.host, options.port)
    except OSError as error:
        sandbox.close()
        return _fail(
            f"cannot serve on {options.host} port {options.port}: {error.strerror or error}"
        )
    with listening:
        # werkzeug serves a socket of its own copy (fd): bound here, a port in use is our
        # one line rather than werkzeug's own message and exit.
        server = make_server(options.host, options.port, app, threaded=True, fd=listening.fileno())
    url = base_url(options.host, server.port)
    if options.callback_url:  # the empty seed, which has no workflow, was refused above
        sandbox.engine.update_workflow(
            seeded.workspace_sid, seeded.workflow_sid, assignment_callback_url=options.callback_url
        )
    sandbox.start()
    serving = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="sandbox-server"
    )
    serving.start()
    print("\n".join(export_lines(sandbox, url)), flush=True)
    logger.info(
        "TaskRouter sandbox serving on %s (database %s, %s clock, %s seed, pid %d)",
        url,
        options.database,
        options.clock,
        seeded.kind,
        os.getpid(),
    )
    try:
        stop.wait()
    finally:
        logger.info("stopping: delivering the queued callbacks")
        eventbridge.close_sockets(app)  # "going away": the Worker SDK reconnects by itself
        server.shutdown()
        serving.join()
        server.server_close()
        sandbox.stop(STOP_TIMEOUT)
        sandbox.close()
    logger.info("stopped")
    return 0
