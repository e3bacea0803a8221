"""A worker's socket whose client has stopped reading (a frozen tab, a suspended laptop, a
network that dropped the peer without a reset) must not hold up the other workers' events nor
the sandbox's stop.

Followed: Twilio's reconnect page for the Worker SDK
(https://www.twilio.com/docs/taskrouter/js-sdk-v2/reconnect): a desk that hears nothing for
30 s drops its socket and reconnects by itself, so the event bridge may give up on a socket it
cannot write to; what one worker's desk does never reaches another worker's.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
import time
from urllib.parse import urlencode, urlsplit

from taskrouter_sandbox.testing import TaskRouterSandbox
from tests.sandbox.eventbridge.test_bridge_sockets import box, connect, next_event

__all__ = ["box"]

# Enough 16 KB attribute updates to fill the loopback's buffers (tcp_wmem's 4 MB at most).
UPDATES = 400


def _stalled_socket(box: TaskRouterSandbox, worker: str) -> socket.socket:
    """A websocket that completes its handshake and then never reads again."""
    url = urlsplit(box.event_bridge["wsServer"])
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect((url.hostname, url.port))
    query = urlencode({"token": box.worker_token(worker), "closeExistingSessions": "false"})
    key = base64.b64encode(os.urandom(16)).decode()
    raw.sendall(
        (
            f"GET {url.path}?{query} HTTP/1.1\r\nHost: {url.netloc}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += raw.recv(1)
    assert answer.startswith(b"HTTP/1.1 101"), answer
    return raw


def _grow(box: TaskRouterSandbox, number: int) -> None:
    """One worker.attributes.update of about 16 KB for Alice's socket."""
    attributes = json.dumps({"languages": ["en", "es"], "notes": f"{number:04d}" + "x" * 16000})
    box.sandbox.engine.update_worker(box.workspace_sid, box.workers["Alice"], attributes=attributes)


def _feed_caught_up(box: TaskRouterSandbox) -> None:
    """Until the feed has taken every event (or is stuck sending one), within 5 s."""
    deadline = time.monotonic() + 5
    last = box.sandbox.engine.last_event()
    hub = box.app.extensions["eventbridge"]
    while time.monotonic() < deadline and all(b.hub._seen < last for b in hub.values()):
        time.sleep(0.05)


def test_a_client_that_stopped_reading_does_not_hold_up_another_workers_events(
    box: TaskRouterSandbox,
) -> None:
    bob = connect(box, "Bob")
    next_event(bob, "init")
    stalled = _stalled_socket(box, "Alice")
    try:
        workers = box.workspace.workers
        for number in range(UPDATES):
            _grow(box, number)
        started = time.monotonic()
        workers(box.workers["Bob"]).update(activity_sid=box.activities["Idle"])
        event = next_event(bob, "worker.activity.update", timeout=10)
        assert event["payload"]["activity_name"] == "Idle"
        assert time.monotonic() - started < 5
    finally:
        stalled.close()
        bob.close()


def test_the_sandbox_stops_with_a_client_that_stopped_reading() -> None:
    sandbox = TaskRouterSandbox(transport="http")
    stalled = _stalled_socket(sandbox, "Alice")
    for number in range(UPDATES):
        _grow(sandbox, number)
    _feed_caught_up(sandbox)
    closing = threading.Thread(target=sandbox.close, daemon=True)
    closing.start()
    closing.join(10)
    stopped = not closing.is_alive()
    stalled.close()  # unblocks a stuck close, so the test run goes on either way
    closing.join(10)
    assert stopped, "closing the sandbox hung on a socket whose client stopped reading"
