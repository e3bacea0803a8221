"""A socket whose feed cannot start (the newest event unreadable: the store closing, the
database locked) is not left registered: the hub forgets it, as it does any closed socket."""

from __future__ import annotations

import time
from typing import Any

import pytest

from taskrouter_sandbox.eventbridge.hub import Hub
from taskrouter_sandbox.eventbridge.tokens import Grant
from taskrouter_sandbox.store import StoreError

WORKER_SID = "WK" + "1" * 32


class _Socket:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, message: str) -> None:
        self.sent.append(message)

    def receive(self, timeout: float | None = None) -> Any:
        raise AssertionError("the socket is never read when its feed fails to start")

    def close(self, *args: Any, **kwargs: Any) -> None:
        pass


def test_a_socket_whose_feed_cannot_start_is_not_left_registered() -> None:
    def unreadable() -> int:
        raise StoreError("the sandbox store is closed")

    hub = Hub(None, lambda seq, limit=500: [], unreadable)  # type: ignore[arg-type]
    grant = Grant("AC" + "e" * 32, "WS" + "2" * 32, WORKER_SID, int(time.time()) + 3600)
    with pytest.raises(StoreError):
        hub.serve(_Socket(), grant, close_existing=False, offline_if_gone=False)
    assert hub.sockets(WORKER_SID) == 0
