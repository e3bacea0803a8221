"""Fixtures for the tests of taskrouter_sandbox.testing and its pytest plugin.

pytester (pytest's own fixture for running pytest on generated test files) is enabled for
this folder only: a pytest_plugins list is refused outside the top-level conftest, so it is
registered when this conftest is, and the rest of the suite never loads it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask, Response, jsonify, request
from twilio.request_validator import RequestValidator

from taskrouter_sandbox.testing import TaskRouterSandbox
from taskrouter_sandbox.testing.harness import TRANSPORTS

ENGLISH = "Customer Care Requests - English"
SPANISH = "Customer Care Requests - Spanish"


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("pytester"):
        config.pluginmanager.import_plugin("pytester")


@pytest.fixture(params=TRANSPORTS)
def sandbox(request: pytest.FixtureRequest) -> Iterator[TaskRouterSandbox]:
    """A quickstart sandbox in each transport: in-process (wsgi) and over real HTTP."""
    with TaskRouterSandbox(transport=request.param) as running:
        yield running


@dataclass
class CallbackApp:
    """A Flask app answering assignment and event callbacks as the code under test would,
    checking each signature with twilio's RequestValidator over request.url and request.form.

    answer(form) returns the assignment callback's Flask answer; every request is kept.
    """

    auth_token: str
    answer: Callable[[dict[str, str]], Any] = lambda form: jsonify(instruction="accept")
    received: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def build(self) -> Flask:
        app = Flask("callback_app_under_test")
        validator = RequestValidator(self.auth_token)

        def record(kind: str) -> dict[str, str]:
            form = request.form.to_dict()
            signature = request.headers.get("X-Twilio-Signature", "")
            with self.lock:
                self.received.append(
                    {
                        "kind": kind,
                        "url": request.url,
                        "form": form,
                        "headers": dict(request.headers),
                        "valid": validator.validate(request.url, form, signature),
                    }
                )
            return form

        @app.post("/assignment")
        def assignment() -> Any:
            return self.answer(record("assignment"))

        @app.post("/fallback")
        def fallback() -> Any:
            record("fallback")
            return jsonify(instruction="accept")

        @app.post("/events")
        def events() -> Any:
            record("event")
            return Response(status=204)

        return app

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        with self.lock:
            return [item for item in self.received if item["kind"] == kind]


def answering(
    sandbox: TaskRouterSandbox,
    answer: Callable[[dict[str, str]], Any] | None = None,
    *,
    reservation_timeout: int | None = None,
    fallback: bool = False,
) -> CallbackApp:
    """Serve a CallbackApp for the seeded workflow's assignment callbacks (and its fallback)."""
    app = CallbackApp(sandbox.auth_token)
    if answer is not None:
        app.answer = answer
    origin = sandbox.serve_callbacks(app.build())
    update: dict[str, Any] = {"assignment_callback_url": origin + "/assignment"}
    if fallback:
        update["fallback_assignment_callback_url"] = origin + "/fallback"
    if reservation_timeout is not None:
        update["task_reservation_timeout"] = reservation_timeout
    sandbox.workspace.workflows(sandbox.workflow_sid).update(**update)
    return app


def go_idle(sandbox: TaskRouterSandbox, *names: str) -> None:
    for name in names:
        sandbox.workspace.workers(sandbox.workers[name]).update(
            activity_sid=sandbox.activities["Idle"]
        )


def create_task(sandbox: TaskRouterSandbox, language: str = "en", **kwargs: Any) -> Any:
    return sandbox.workspace.tasks.create(
        workflow_sid=kwargs.pop("workflow_sid", sandbox.workflow_sid),
        attributes=json.dumps({"selected_language": language}),
        **kwargs,
    )


def live_threads() -> set[threading.Thread]:
    return set(threading.enumerate())


def wait_for_threads(
    before: set[threading.Thread], deadline_s: float = 5.0
) -> set[threading.Thread]:
    """The threads started since before that are still alive once deadline_s has passed
    (a closed server's thread takes a poll interval to notice, a delivery thread is told to
    stop and not waited for)."""
    deadline = time.monotonic() + deadline_s
    while True:
        left = live_threads() - before
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.02)
