"""The standalone server killed under a connected Worker SDK desk (twilio-taskrouter 2.1.1,
unmodified) and started again on the same port and database: the desk reconnects by itself and
carries on.

Followed: the reconnect page (https://www.twilio.com/docs/taskrouter/js-sdk-v2/reconnect: on a
close the SDK emits `disconnected` and, its reconnect flag set, tries again after a backoff of
at least 0.8 s; "once the connection is reestablished, the latest state (for example, pending
tasks) is fetched from the backend").
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

from taskrouter_sandbox.eventbridge.tokens import mint
from tests.sandbox.test_standalone import Running, standalone
from tests.worker_sdk import SdkWorker, require_worker_sdk

# The SDK's own backoff before each attempt, real time: 0.8 to 1 s after a close; the server's
# start (a subprocess importing flask and twilio) comes on top.
RECONNECTED_WITHIN = 20


def _desk_options(server: Running) -> dict[str, str]:
    bridge = f"{server.base_url}/v1/wschannels"
    return {"ebServer": bridge, "wsServer": "ws" + bridge.removeprefix("http")}


def _alice(server: Running) -> str:
    workspace = server.client().taskrouter.v1.workspaces(server.exports["TWILIO_WORKSPACE_SID"])
    (alice,) = workspace.workers.list(friendly_name="Alice")
    return alice.sid


def test_the_sdk_reconnects_to_a_restarted_server_and_carries_on(tmp_path: Path) -> None:
    require_worker_sdk()
    database = str(tmp_path / "sandbox.sqlite3")
    with standalone(tmp_path, "--quiet", "--database", database) as first:
        exports = first.exports
        alice = _alice(first)
        token = mint(
            exports["TWILIO_ACCOUNT_SID"],
            exports["TWILIO_API_KEY"],
            exports["TWILIO_API_SECRET"],
            exports["TWILIO_WORKSPACE_SID"],
            alice,
        )
        port = first.base_url.rsplit(":", 1)[1]
        desk = SdkWorker(token, **_desk_options(first))
        try:
            desk.wait_for("ready")
            desk.set_activity("Idle")
            first.process.send_signal(signal.SIGKILL)
            first.process.wait(10)
            desk.wait_for("disconnected")
            killed = time.monotonic()
            with standalone(tmp_path, "--quiet", "--database", database, "--port", port) as second:
                assert second.base_url == first.base_url
                assert second.exports["TWILIO_API_KEY"] == exports["TWILIO_API_KEY"]
                ready = desk.wait_for("ready", timeout=RECONNECTED_WITHIN)["worker"]
                assert time.monotonic() - killed < RECONNECTED_WITHIN
                # Killed, the first server set nobody offline: Alice is as she was.
                assert ready["activity"]["name"] == "Idle"
                workspace = second.client().taskrouter.v1.workspaces(
                    exports["TWILIO_WORKSPACE_SID"]
                )
                task = workspace.tasks.create(
                    workflow_sid=exports["TWILIO_WORKFLOW_SID"],
                    attributes='{"selected_language": "es"}',
                )
                offered = desk.wait_for("reservationCreated")["reservation"]
                assert offered["task"]["sid"] == task.sid
                assert desk.reservation(offered["sid"], "accept")["status"] == "accepted"
                reservation = workspace.tasks(task.sid).reservations(offered["sid"]).fetch()
                assert reservation.reservation_status == "accepted"
                assert workspace.workers(alice).fetch().activity_name == "Busy"
                desk.close()
                status, stderr = second.stop()
                assert status == 0, stderr
                assert "Traceback" not in stderr, stderr
        finally:
            desk.close()
