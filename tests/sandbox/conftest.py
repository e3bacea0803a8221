"""Fixtures for the sandbox tests: a live sandbox on a free port driven by the twilio library.

One server per test module where state allows; tests that need a clean slate make a workspace.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from flask import Flask
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from werkzeug.serving import make_server

from taskrouter_sandbox import Sandbox, init_app
from taskrouter_sandbox.clock import ManualClock
from taskrouter_sandbox.domain.values import Paging
from tests.node_client import NodeClient

PREFIX = "/sandbox"


@dataclass
class Live:
    """A running sandbox: its Flask app, Sandbox object, base URL and a twilio Client."""

    app: Flask
    sandbox: Sandbox
    base_url: str
    client: Client
    clock: ManualClock

    @property
    def v1(self) -> Any:
        return self.client.taskrouter.v1

    @property
    def seeded_workspace(self) -> Any:
        return self.v1.workspaces(self.sandbox.seeded.workspace_sid)

    @property
    def auth(self) -> tuple[str, str]:
        return (self.sandbox.account_sid, self.sandbox.auth_token)

    def http(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """A raw request (for what the twilio library hides: headers, status, bodies)."""
        kwargs.setdefault("auth", self.auth)
        kwargs.setdefault("timeout", 10)
        return requests.request(method, self.base_url + path, **kwargs)

    def new_workspace(self, name: str = "Test workspace", **kwargs: Any) -> Any:
        """A fresh workspace (Twilio's defaults: Offline/Available/Unavailable, channels)."""
        return self.v1.workspaces.create(friendly_name=name, **kwargs)


def make_client(sandbox: Sandbox, base_url: str) -> Client:
    client = Client(
        sandbox.account_sid, sandbox.auth_token, http_client=TwilioHttpClient(timeout=10)
    )
    client.taskrouter.base_url = base_url
    return client


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    """Serve app on 127.0.0.1 at a free port; yields the root URL, shuts down on exit."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="sandbox-test-server"
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def build_app(database: str, clock: ManualClock, **config: Any) -> Flask:
    app = Flask("sandbox_test_app")
    app.config.update(TESTING=True, SANDBOX_DATABASE=database, SANDBOX_CLOCK=clock, **config)
    init_app(app, url_prefix=PREFIX)
    return app


@contextmanager
def live_sandbox(database: str = ":memory:", **config: Any) -> Iterator[Live]:
    """Callback delivery and timers stay off unless a test asks for them
    (SANDBOX_START_THREADS=True): most tests name example.com URLs nobody should call."""
    config.setdefault("SANDBOX_START_THREADS", False)
    clock = config.pop("clock", None) or ManualClock()
    app = build_app(database, clock, **config)
    sandbox: Sandbox = app.extensions["sandbox"]
    try:
        with serve(app) as root:
            base_url = root + PREFIX
            yield Live(app, sandbox, base_url, make_client(sandbox, base_url), clock)
    finally:
        sandbox.close()


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    with live_sandbox() as running:
        yield running


@contextmanager
def twilio_error(status: int, code: int, message: str | None = None) -> Iterator[Any]:
    """Expect a TwilioRestException with this status and code (and message fragment)."""
    with pytest.raises(TwilioRestException) as caught:
        yield caught
    assert caught.value.status == status, caught.value.msg
    assert caught.value.code == code, caught.value.msg
    if message is not None:
        assert message in caught.value.msg, caught.value.msg


@contextmanager
def list_error(status: int, code: int, message: str | None = None) -> Iterator[None]:
    """Expect a failed list call: the twilio library raises a plain TwilioException there,
    carrying the HTTP response, whose body must still be Twilio's error shape."""
    with pytest.raises(TwilioException) as caught:
        yield
    assert not isinstance(caught.value, TwilioRestException)
    response = caught.value.args[1]
    assert response.status_code == status, response.text
    body = json.loads(response.text)
    assert body["code"] == code and body["status"] == status, body
    if message is not None:
        assert message in body["message"], body


def assert_error_body(response: requests.Response, status: int, code: int) -> dict[str, Any]:
    """Twilio's error shape, as JSON, with this status and code."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json"), response.text
    body = response.json()
    assert set(body) == {"code", "message", "more_info", "status"}
    assert body["code"] == code and body["status"] == status
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    assert body["message"]
    return body


def routing(*filters: tuple[str, str], default: str | None = None) -> str:
    """A workflow configuration: filters as (expression, queue_sid) pairs."""
    document: dict[str, Any] = {
        "task_routing": {
            "filters": [
                {
                    "filter_friendly_name": f"filter {index}",
                    "expression": expression,
                    "targets": [{"queue": queue}],
                }
                for index, (expression, queue) in enumerate(filters)
            ]
        }
    }
    if default is not None:
        document["task_routing"]["default_filter"] = {"queue": default}
    return json.dumps(document)


@pytest.fixture(scope="module")
def node(live: Live) -> Iterator[NodeClient]:
    """twilio-node, the independent second client, pointed at the module's live sandbox."""
    client = NodeClient(live.base_url, *live.auth)
    try:
        yield client
    finally:
        client.close()


def one_queue_floor(engine) -> tuple[str, str, str, str]:
    """A workspace of one queue taking everyone, a workflow to it and Ann, Available, for the
    schema upgrade tests to play on: (workspace, queue, workflow, worker) SIDs."""
    ws = engine.create_workspace("Old floor", multi_task_enabled=False)["sid"]
    queue = engine.create_task_queue(ws, "Everyone", target_workers="1==1")["sid"]
    flow = engine.create_workflow(ws, "Flow", configuration=routing(default=queue))["sid"]
    available = engine.list_activities(ws, Paging(), friendly_name="Available").rows[0]
    worker = engine.create_worker(ws, "Ann", activity_sid=available["sid"])["sid"]
    return ws, queue, flow, worker


def accept_and_complete(engine, ws: str, task_sid: str) -> None:
    """Accept the task's one offer and complete the task (the upgrade tests' finished task)."""
    (reservation,) = engine.list_reservations(ws, Paging(), task_sid=task_sid).rows
    engine.update_reservation(ws, reservation["sid"], reservation_status="accepted")
    engine.update_task(ws, task_sid, assignment_status="completed", reason="done")
