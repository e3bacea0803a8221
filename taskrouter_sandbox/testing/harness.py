"""TaskRouterSandbox: one isolated sandbox for one test, with a twilio Client pointed at it, a
clock the test moves, and the code under test's callback apps served in the same process.

The pytest fixture (taskrouter_sandbox.pytest_plugin) makes one per test; unittest or a script
can use it as a context manager.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal

from flask import Flask
from twilio.http import HttpClient
from twilio.rest import Client
from werkzeug.serving import WSGIRequestHandler, make_server

from taskrouter_sandbox import create_app
from taskrouter_sandbox.clock import ManualClock
from taskrouter_sandbox.domain.values import CallbackDelivery
from taskrouter_sandbox.eventbridge import views as eventbridge
from taskrouter_sandbox.runtime import Sandbox
from taskrouter_sandbox.seed import Seeded
from taskrouter_sandbox.store import MEMORY, Store
from taskrouter_sandbox.testing.transport import (
    AsyncHttpClientAdapter,
    CallbackApps,
    SettlingHttpClient,
    WSGIApp,
    WSGIHttpClient,
)

Transport = Literal["wsgi", "http"]
TRANSPORTS: tuple[Transport, ...] = ("wsgi", "http")
# Where a WSGI-mode sandbox pretends to live: requests never leave the process, but the URLs
# (and the signatures over them) are as real as any.
WSGI_BASE_URL = "http://taskrouter.sandbox.test"
# The origin serve_callbacks gives a callback app unless told otherwise.
DEFAULT_CALLBACK_ORIGIN = "http://app.test"
# How often the http transport's server looks for shutdown(): close() waits up to this long.
SERVER_POLL_INTERVAL = 0.01
# The name create_app's sandbox blueprint has (it serves at the root).
_BLUEPRINT = "sandbox"


class _AppPool:
    """Closed sandboxes' Flask apps, for the next sandboxes of this process to serve from.

    A Flask app costs about 30 ms to build, most of a fresh sandbox's setup: werkzeug
    compiles each of the API's 40-odd routes. The views find their Sandbox through the
    blueprint (api/context.py), so a spent app serves a new Sandbox once both references are
    moved to it. A client kept from a closed sandbox then reaches the new one with the old
    credentials, which it refuses (401), as it refuses any stranger.
    """

    KEPT = 4

    def __init__(self) -> None:
        self._idle: list[tuple[Flask, tuple[Any, ...]]] = []
        self._lock = threading.Lock()

    # Everything of a Flask app a test could add to: its hooks, handlers and processors.
    _HOOKS = (
        "before_request_funcs",
        "after_request_funcs",
        "teardown_request_funcs",
        "teardown_appcontext_funcs",
        "url_value_preprocessors",
        "url_default_functions",
        "template_context_processors",
        "error_handler_spec",
    )

    @classmethod
    def _shape(cls, app: Flask) -> tuple[Any, ...]:
        # An app the test changed (a route, a hook, a handler, a setting, an extension of its
        # own) is not handed to another.
        return (
            len(list(app.url_map.iter_rules())),
            tuple(sorted(app.view_functions)),
            tuple(_described(getattr(app, hook)) for hook in cls._HOOKS),
            tuple(sorted(app.blueprints)),
            tuple(sorted(app.extensions)),
            tuple(sorted((key, repr(value)) for key, value in app.config.items())),
        )

    def take(self) -> Flask | None:
        with self._lock:
            return self._idle.pop()[0] if self._idle else None

    def give_back(self, app: Flask, shape: tuple[Any, ...]) -> None:
        if self._shape(app) != shape:
            return
        with self._lock:
            if len(self._idle) < self.KEPT:
                self._idle.append((app, shape))


def _described(hooks: Any) -> str:
    """Hooks by key (a dict) or in order (a list), as text to compare."""
    return repr(sorted(hooks.items(), key=str) if isinstance(hooks, dict) else hooks)


_APPS = _AppPool()


@functools.cache
def _schema_template() -> Store:
    """An empty in-memory database with the schema, made once per process: each sandbox's
    store starts as a copy of it (Store's copy_of), instead of creating the schema (about 10
    ms). Only the schema is shared: every sandbox seeds its own workspace, with its own
    SIDs, dates and credentials."""
    return Store(MEMORY)


def _sandbox_app(config: dict[str, Any]) -> Flask:
    """A Flask app serving a new Sandbox made from config: a spent one if the pool has it."""
    app = _APPS.take() if config["SANDBOX_DATABASE"] == MEMORY else None
    if app is None:
        return create_app(config)
    database = config["SANDBOX_DATABASE"]
    sandbox = Sandbox(
        database,
        clock=config["SANDBOX_CLOCK"],
        seed=config["SANDBOX_SEED"],
        store=Store(MEMORY, copy_of=_schema_template()),
    )
    app.config.update(config)
    app.extensions["sandbox"] = sandbox
    blueprint = app.blueprints[_BLUEPRINT]
    blueprint.sandbox = sandbox  # type: ignore[attr-defined]
    eventbridge.bind(app, sandbox, f"{_BLUEPRINT}_eventbridge", "")
    return app


class _QuietRequestHandler(WSGIRequestHandler):
    """No access log line per request: a test's output is the test's."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class SandboxClock:
    """The sandbox's time. It stands still until advance() moves it: then every reservation
    timeout, workflow target timeout and task TTL that falls due fires at its own moment, in
    order, with its callbacks delivered, before advance() returns."""

    def __init__(self, sandbox: Sandbox, clock: ManualClock) -> None:
        self._sandbox = sandbox
        self._clock = clock

    def now(self) -> datetime:
        return self._clock.now()

    def advance(self, seconds: float) -> datetime:
        """Move time forward by seconds (0 fires what is due now); the new time."""
        return self._sandbox.advance(seconds)

    def __repr__(self) -> str:
        return f"<SandboxClock {self.now().isoformat()}>"


class TaskRouterSandbox:
    """A fresh sandbox: an in-memory TaskRouter v1 and everything a test needs to drive it.

    seed: "quickstart" (Alice, Bob, the Spanish and English queues and the workflow of Twilio's
    quickstart) or "empty" (a new workspace as Twilio makes one). transport: "wsgi" (requests
    handed to the sandbox in this process, no socket) or "http" (a real server on a free
    local port). start: the clock's first moment (default now, to the second).
    """

    def __init__(
        self,
        *,
        seed: str = "quickstart",
        transport: Transport = "wsgi",
        start: datetime | None = None,
        database: str = ":memory:",
    ) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"transport is one of {', '.join(TRANSPORTS)}, not {transport!r}")
        self.transport: Transport = transport
        self._manual_clock = ManualClock(start or datetime.now(UTC).replace(microsecond=0))
        self.started_at = self._manual_clock.now()
        self.app: Flask = _sandbox_app(
            {
                "TESTING": True,
                "SANDBOX_DATABASE": database,
                "SANDBOX_CLOCK": self._manual_clock,
                "SANDBOX_SEED": seed,
                "SANDBOX_START_THREADS": False,
            }
        )
        self._app_shape = _APPS._shape(self.app)
        self.sandbox: Sandbox = self.app.extensions["sandbox"]
        self.clock = SandboxClock(self.sandbox, self._manual_clock)
        self._callback_apps = CallbackApps()
        self.sandbox.local_transport = self._callback_apps
        self.sandbox.start(timers=False)
        self._server: Any = None
        self._server_thread: threading.Thread | None = None
        if transport == "http":
            self.base_url = self._serve()
            self.http_client: HttpClient = SettlingHttpClient(self._settler, timeout=30)
        else:
            self.base_url = WSGI_BASE_URL
            self.http_client = WSGIHttpClient(self.app, settle=self._settler)
        self.client = self.make_client()

    # -- what a test reads ------------------------------------------------------------------

    @property
    def account_sid(self) -> str:
        return self.sandbox.account_sid

    @property
    def auth_token(self) -> str:
        return self.sandbox.auth_token

    @property
    def seeded(self) -> Seeded:
        """The seeded workspace's SIDs (workspace, workflow, activities, workers, queues)."""
        return self.sandbox.seeded

    @property
    def workspace_sid(self) -> str:
        return self.seeded.workspace_sid

    @property
    def workflow_sid(self) -> str | None:
        return self.seeded.workflow_sid

    @property
    def workers(self) -> dict[str, str]:
        """Worker SIDs by name: {"Alice": "WK...", "Bob": "WK..."} in the quickstart."""
        return dict(self.seeded.worker_sids)

    @property
    def activities(self) -> dict[str, str]:
        return dict(self.seeded.activity_sids)

    @property
    def task_queues(self) -> dict[str, str]:
        return dict(self.seeded.task_queue_sids)

    @property
    def workspace(self) -> Any:
        """The twilio client's context for the seeded workspace (.tasks, .workers, ...)."""
        return self.client.taskrouter.v1.workspaces(self.workspace_sid)

    @property
    def events(self) -> list[Any]:
        """The seeded workspace's events since the sandbox began, oldest first (twilio
        EventInstance objects). A plain events.list() holds the last 15 minutes only, as on
        Twilio."""
        return list(reversed(self.workspace.events.list(start_date=self.started_at)))

    @property
    def event_types(self) -> list[str]:
        """The seeded workspace's event types, oldest first: ["task.created", ...]."""
        return [event.event_type for event in self.events]

    @property
    def alerts(self) -> list[Any]:
        """The debugger alerts (a callback that failed, an answer that was not JSON, ...),
        oldest first, as client.monitor.v1.alerts lists them."""
        return list(reversed(self.client.monitor.v1.alerts.list()))

    @property
    def callbacks(self) -> list[CallbackDelivery]:
        """The POSTs the sandbox made to callback URLs (the newest 1000), oldest first, with
        their answers and, for an assignment callback, the instruction TaskRouter read."""
        return list(self.sandbox.deliveries)

    @property
    def assignment_callbacks(self) -> list[CallbackDelivery]:
        """The assignment callbacks of .callbacks (fallback POSTs included), oldest first."""
        return [delivery for delivery in self.callbacks if delivery.kind == "assignment"]

    @property
    def event_callbacks(self) -> list[CallbackDelivery]:
        """The event callbacks of .callbacks, oldest first."""
        return [delivery for delivery in self.callbacks if delivery.kind == "event"]

    @property
    def event_bridge(self) -> dict[str, str]:
        """The Worker SDK's ebServer and wsServer options for this sandbox (transport "http"
        only: the SDK needs a real socket)."""
        if self.transport != "http":
            raise RuntimeError(
                "the Worker SDK needs a real server: use transport='http' "
                "(@pytest.mark.taskrouter_sandbox(transport='http'))"
            )
        url = f"{self.base_url}{eventbridge.PATH}"
        return {"ebServer": url, "wsServer": "ws" + url.removeprefix("http")}

    # -- what a test does -------------------------------------------------------------------

    def worker_token(self, worker: str, *, ttl: int = 3600) -> str:
        """An access token for Twilio's Worker SDK (twilio-taskrouter), as Twilio issues one:
        worker is a name of .workers ("Alice") or a worker's SID; ttl in seconds of real time."""
        worker_sid = self.seeded.worker_sids.get(worker, worker)
        return self.sandbox.worker_token(worker_sid, ttl=ttl)

    def make_client(self) -> Client:
        """A new twilio Client pointed at this sandbox (the code under test can have its own)."""
        return self._client_over(self.http_client)

    def make_async_client(self) -> Client:
        """A twilio Client for the library's *_async methods (fetch_async, create_async, ...),
        pointed at this sandbox and settled like .client."""
        return self._client_over(AsyncHttpClientAdapter(self.http_client))

    def _client_over(self, http_client: HttpClient) -> Client:
        client = Client(self.account_sid, self.auth_token, http_client=http_client)
        client.taskrouter.base_url = self.base_url
        client.monitor.base_url = self.base_url
        return client

    def serve_callbacks(self, app: WSGIApp, origin: str = DEFAULT_CALLBACK_ORIGIN) -> str:
        """Answer callbacks to URLs at origin with app (a Flask app, say) in this process,
        signed as Twilio signs them; the origin, to build the callback URLs from."""
        return self._callback_apps.mount(app, origin)

    def settle(self, timeout: float = 30.0) -> None:
        """Wait for the callbacks in flight and their outcomes. The client does this after
        every request and the clock after every move, so a test rarely needs it."""
        self._wait(timeout, since=0)

    def _settler(self) -> Callable[[], None]:
        # From a mark taken before the request: a request the code under test makes while a
        # callback is being answered waits for what it causes, never for that callback.
        since = self.sandbox.mark()
        return lambda: self._wait(30.0, since=since)

    def _wait(self, timeout: float, *, since: int) -> None:
        if not self.sandbox.settle(timeout, since=since):
            raise TimeoutError(f"callbacks still in flight after {timeout:g} s")

    def close(self) -> None:
        eventbridge.close_sockets(self.app)
        if self._server is not None:
            self._server.shutdown()
            if self._server_thread is not None:
                self._server_thread.join(timeout=10)
            self._server.server_close()
            self._server = None
        if self.sandbox.store.closed:
            return
        self.sandbox.close()
        _APPS.give_back(self.app, self._app_shape)

    def __enter__(self) -> TaskRouterSandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<TaskRouterSandbox {self.transport} {self.base_url} {self.workspace_sid}>"

    def _serve(self) -> str:
        self._server = make_server(
            "127.0.0.1", 0, self.app, threaded=True, request_handler=_QuietRequestHandler
        )
        self._server_thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": SERVER_POLL_INTERVAL},
            name="taskrouter-sandbox-server",
            daemon=True,
        )
        self._server_thread.start()
        return f"http://127.0.0.1:{self._server.server_port}"


@contextmanager
def taskrouter_sandbox(**options: Any) -> Iterator[TaskRouterSandbox]:
    """A TaskRouterSandbox for the length of a with block."""
    with TaskRouterSandbox(**options) as sandbox:
        yield sandbox
