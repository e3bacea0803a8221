"""A socket the event bridge closes (here at the token's end, code 4002) ends with the close
frame and nothing after it, under werkzeug's server too (flask run, the standalone sandbox, the
fixture), which would otherwise write an HTTP response there: a browser reads those bytes as a
broken frame and reports "Invalid frame header" in its console.
"""

from __future__ import annotations

import time

import pytest
from wsproto.events import CloseConnection

from tests.sandbox.eventbridge import test_bridge_answer_order as answer_order

pytestmark = pytest.mark.taskrouter_sandbox(transport="http")

DEADLINE, RawSocket = answer_order.DEADLINE, answer_order.RawSocket
bridged = answer_order.bridged  # the fixture


def test_a_socket_closed_at_the_tokens_end_carries_nothing_after_its_close_frame(bridged):
    # The token's lifetime is real time, as the SDK's timers are: two seconds.
    token = bridged.worker_token("Alice", ttl=2)
    websocket = RawSocket(bridged.event_bridge["wsServer"], token)
    try:
        closing: list[CloseConnection] = []
        deadline = time.monotonic() + DEADLINE
        while not closing:
            assert time.monotonic() < deadline, websocket.messages
            closing = [e for e in websocket.read_events() if isinstance(e, CloseConnection)]
        assert (closing[0].code, closing[0].reason) == (4002, "Token expired")
        # Then the end of the stream: no byte more after the close frame.
        while chunk := websocket.sock.recv(65536):
            websocket.received += chunk
        assert websocket.received.endswith(b"\x0f\xa2Token expired"), websocket.received[-200:]
    finally:
        websocket.close()
