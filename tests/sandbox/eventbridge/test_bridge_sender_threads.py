"""Each worker's socket has a sender thread of its own (taskrouter_sandbox/eventbridge/
connection.py); a socket the client closed must take its thread with it, or every desk that
closes or reconnects (the Worker SDK reconnects by itself after each drop:
https://www.twilio.com/docs/taskrouter/js-sdk-v2/reconnect) leaves one more thread behind for
the life of the server."""

from __future__ import annotations

import json
import threading
import time

from taskrouter_sandbox.testing import TaskRouterSandbox
from tests.sandbox.eventbridge.test_bridge_sockets import WAIT, box, connect

__all__ = ["box"]


def _senders(worker_sid: str) -> list[threading.Thread]:
    name = f"eventbridge-send-{worker_sid}"
    return [thread for thread in threading.enumerate() if thread.name == name]


def test_a_socket_the_client_closed_leaves_no_sender_thread_behind(box: TaskRouterSandbox) -> None:
    alice = box.workers["Alice"]
    for _ in range(3):
        ws = connect(box, "Alice", setWorkerOfflineIfDisconnected="false")
        assert json.loads(ws.receive(timeout=WAIT))["event_type"] == "init"
        ws.close()
    deadline = time.monotonic() + WAIT
    while _senders(alice) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _senders(alice) == [], "sender threads of closed sockets are still running"
