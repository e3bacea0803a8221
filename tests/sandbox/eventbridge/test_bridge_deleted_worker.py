"""A worker deleted over REST while its desk is connected: when the desk then closes its socket,
setWorkerOfflineIfDisconnected finds no worker to set Offline, and that is no error of the
sandbox's (no traceback in its log).

Followed: the SDK's Worker option setWorkerOfflineIfDisconnected
(https://twilio.github.io/twilio-taskrouter.js/Worker.html, default true: the worker is set
Offline when its connection ends) and TaskRouter's Worker resource
(https://www.twilio.com/docs/taskrouter/api/worker: DELETE removes the worker).
"""

from __future__ import annotations

import json
import logging
import time

import pytest

from taskrouter_sandbox.testing import TaskRouterSandbox
from tests.sandbox.eventbridge.test_bridge_sockets import WAIT, box, connect

__all__ = ["box"]


def test_closing_the_socket_of_a_deleted_worker_logs_no_error(
    box: TaskRouterSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    ws = connect(box, "Bob")
    assert json.loads(ws.receive(timeout=WAIT))["event_type"] == "init"
    box.workspace.workers(box.workers["Bob"]).delete()
    hub = box.app.extensions["eventbridge"]
    ws.close()
    deadline = time.monotonic() + WAIT
    while any(b.hub.sockets(box.workers["Bob"]) for b in hub.values()):
        assert time.monotonic() < deadline, "the bridge still holds Bob's socket"
        time.sleep(0.05)
    time.sleep(0.2)  # the socket's thread runs setWorkerOfflineIfDisconnected after it lets go
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
