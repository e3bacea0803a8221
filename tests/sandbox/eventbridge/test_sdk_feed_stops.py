"""Closing a sandbox stops its event bridge's feed thread before its store closes: a thread
still reading when the store closes its sqlite connection crashes the whole process (a
segmentation fault, seen in test runs)."""

from __future__ import annotations

import threading

from taskrouter_sandbox.testing import taskrouter_sandbox
from tests.worker_sdk import SdkWorker


def _feeds() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "eventbridge-feed"}


def test_the_feed_has_ended_when_the_sandbox_is_closed() -> None:
    before = _feeds()
    box = taskrouter_sandbox(transport="http")
    with box as sandbox, SdkWorker(sandbox.worker_token("Alice"), **sandbox.event_bridge) as desk:
        desk.wait_for("ready")
        (feed,) = _feeds() - before
        # The desk stays connected while the sandbox closes, as a browser's would.
        sandbox.close()
        assert not feed.is_alive()
        # The desk hears the sandbox go away (1001) and tries again, to no server.
        assert desk.wait_for("disconnected")["reason"] == "The sandbox is shutting down"
