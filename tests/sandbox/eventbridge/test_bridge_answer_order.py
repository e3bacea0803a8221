"""The event bridge answers a worker's call before it sends the events the call set off.

At Twilio a worker made available gets its reservation (and its move to the Reserved activity)
after the answer to the call that made it available; Twilio's Worker SDK applies that answer
to its Worker (Activity.setAsCurrent() sets worker.activity from it), so an event that overtook
the answer would be undone and the desk would show Idle while TaskRouter has the worker
Reserved. One thread watches both sockets, the SDK's call and its websocket, as the browser
does: loopback hands each socket its bytes as they are written, so a websocket message seen
while the call's answer is not yet readable was sent before it.
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import time
from urllib.parse import urlsplit

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, RejectConnection, Request, TextMessage

pytestmark = pytest.mark.taskrouter_sandbox(transport="http")

DEADLINE = 10.0


@pytest.fixture
def bridged(taskrouter_sandbox):
    """The test's sandbox, served over HTTP."""
    return taskrouter_sandbox


class RawSocket:
    """The SDK's websocket, read only when the test asks (wsproto frames, no reader thread)."""

    def __init__(self, ws_server: str, token: str) -> None:
        parts = urlsplit(ws_server)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=DEADLINE)
        self.ws = WSConnection(ConnectionType.CLIENT)
        # Nothing to write when it closes: the test's sandbox closes right after.
        target = (
            f"{parts.path}?token={token}&closeExistingSessions=false"
            "&setWorkerOfflineIfDisconnected=false"
        )
        self.sock.sendall(self.ws.send(Request(host=parts.netloc, target=target)))
        self.messages: list[str] = []
        self.received = b""  # every byte, as it came
        while not any(isinstance(event, AcceptConnection) for event in self._read()):
            pass

    def _read(self) -> list[object]:
        data = self.sock.recv(65536)
        assert data, "the bridge closed the socket"
        self.received += data
        self.ws.receive_data(data)
        events = list(self.ws.events())
        refused = [event for event in events if isinstance(event, RejectConnection)]
        assert not refused, f"the bridge refused the socket: HTTP {refused[0].status_code}"
        self.messages += [event.data for event in events if isinstance(event, TextMessage)]
        return events

    def read_available(self) -> None:
        self._read()

    def read_events(self) -> list[object]:
        return self._read()

    def events(self) -> list[dict]:
        # A heartbeat is a blank message.
        return [json.loads(message) for message in self.messages if message.strip()]

    def close(self) -> None:
        self.sock.close()


def test_a_worker_made_available_gets_the_answer_before_its_reservation(bridged):
    sandbox = bridged
    bridge = sandbox.event_bridge
    token = sandbox.worker_token("Alice", ttl=60)
    websocket = RawSocket(bridge["wsServer"], token)
    try:
        deadline = time.monotonic() + DEADLINE
        while not any(event["event_type"] == "init" for event in websocket.events()):
            assert time.monotonic() < deadline, "no init message"
            websocket.read_available()
        websocket.messages.clear()
        sandbox.workspace.tasks.create(
            workflow_sid=sandbox.workflow_sid, attributes='{"selected_language": "es"}'
        )

        # Activity.setAsCurrent() for Idle, as the SDK sends it to ebServer.
        parts = urlsplit(bridge["ebServer"])
        call = http.client.HTTPConnection(parts.hostname, parts.port, timeout=DEADLINE)
        envelope = {
            "url": f"Workspaces/{sandbox.workspace_sid}/Workers/{sandbox.workers['Alice']}",
            "method": "POST",
            "params": {"ActivitySid": sandbox.activities["Idle"]},
            "token": token,
        }
        call.request(
            "POST",
            parts.path,
            body=json.dumps(envelope),
            headers={"Content-Type": "application/json", "apiVersion": "v1"},
        )
        readable: list = []
        while call.sock not in readable:
            assert time.monotonic() < deadline, "the call was not answered"
            readable, _, _ = select.select([call.sock, websocket.sock], [], [], DEADLINE)
            if websocket.sock in readable and call.sock not in readable:
                websocket.read_available()
                assert websocket.events() == [], "an event came before the call's answer"
        answer = call.getresponse()
        assert answer.status == 200
        assert json.loads(answer.read())["payload"]["activity_name"] == "Idle"
        call.close()
        # Nor at once after it: the SDK is still taking the answer in (Hub.ANSWER_GAP).
        readable, _, _ = select.select([websocket.sock], [], [], 0)
        if readable:
            websocket.read_available()
        assert websocket.events() == [], "an event came at once after the call's answer"

        # Then what the call set off: Alice reserved for the waiting task, and Reserved.
        def set_off() -> set[str]:
            return {
                "reservation.created"
                if event["event_type"] == "reservation.created"
                else event["payload"].get("activity_name")
                for event in websocket.events()
            }

        while not {"reservation.created", "Reserved"} <= set_off():
            assert time.monotonic() < deadline, websocket.messages
            websocket.read_available()
    finally:
        websocket.close()
