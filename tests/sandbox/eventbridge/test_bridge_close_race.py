"""Closing the sandbox while a desk's own close is being handled: setWorkerOfflineIfDisconnected
writes to the sandbox's store from the socket's thread, so closing must wait for it (or skip
it) before the store closes. A write under a closing store crashed a whole test run
(tests/test_desk_browser.py: "Fatal Python error: Segmentation fault" with the socket's thread
in EventBridge._set_offline and another closing the sqlite connection), as a feed still reading
did before (the feed now stops first: Hub.close_all).

The window is widened here by a pause in front of the real setWorkerOfflineIfDisconnected; the
write itself is the sandbox's own.
"""

from __future__ import annotations

import json
import threading
import time

from taskrouter_sandbox.testing import TaskRouterSandbox
from tests.sandbox.eventbridge.test_bridge_sockets import WAIT, connect


def test_closing_the_sandbox_waits_for_a_desk_being_set_offline() -> None:
    box = TaskRouterSandbox(transport="http")
    (bridge,) = box.app.extensions["eventbridge"].values()
    set_offline = bridge.hub.on_gone
    started, finished = threading.Event(), threading.Event()

    def slow_set_offline(grant) -> None:
        started.set()
        time.sleep(0.5)
        try:
            set_offline(grant)
        finally:
            finished.set()

    bridge.hub.on_gone = slow_set_offline
    ws = connect(box, "Alice")
    assert json.loads(ws.receive(timeout=WAIT))["event_type"] == "init"
    ws.close()
    assert started.wait(WAIT), "the desk's close never reached setWorkerOfflineIfDisconnected"
    box.close()
    still_writing = not finished.is_set()
    finished.wait(WAIT)  # let it end before the test does, whatever it met
    assert not still_writing, "the sandbox closed while a desk was still being set Offline"
