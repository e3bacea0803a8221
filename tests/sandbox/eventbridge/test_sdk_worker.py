"""The worker's own state both ways between Twilio's Worker SDK (twilio-taskrouter 2.1.1,
unmodified) and REST: activity, attributes, and what its sessions do to it.

Followed: the SDK's Worker (https://twilio.github.io/twilio-taskrouter.js/Worker.html:
activityUpdated and attributesUpdated with the updated Worker, setAttributes(), disconnect(),
createTask(to, from, workflowSid, taskQueueSid) for a task routed to the worker itself; the
option connectActivitySid, "the Activity state of the Worker upon connect";
the options closeExistingSessions, "whether other open sessions of this Worker should be
terminated", and setWorkerOfflineIfDisconnected, default true, "whether the Worker is set
Offline when the connection is terminated") and Activity (Activity.html: setAsCurrent({
rejectPendingReservations})); TaskRouter's Worker resource
(https://www.twilio.com/docs/taskrouter/api/worker: ActivitySid, Attributes,
RejectPendingReservations).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from taskrouter_sandbox.seed import ENGLISH_QUEUE
from taskrouter_sandbox.testing import TaskRouterSandbox
from tests.sandbox.eventbridge.conftest import OpenDesk
from tests.sandbox.eventbridge.desks import activity_of, create_task, set_activity

pytestmark = pytest.mark.taskrouter_sandbox(transport="http")

# How long the server may take to see a socket the SDK closed (milliseconds, in practice).
CLOSE_SEEN_WITHIN = 5.0


def _eventually(check: Callable[[], bool], what: str, within: float = CLOSE_SEEN_WITHIN) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {within} s")
        time.sleep(0.02)


def _sockets(box: TaskRouterSandbox, worker: str) -> int:
    """How many sockets of the worker the sandbox's event bridge holds: the witness of when
    the server has seen a close."""
    (bridge,) = box.app.extensions["eventbridge"].values()
    return bridge.hub.sockets(box.workers[worker])


def test_an_activity_changed_over_rest_reaches_the_sdk(
    taskrouter_sandbox: TaskRouterSandbox, desks: OpenDesk
) -> None:
    box = taskrouter_sandbox
    desk = desks("Alice")
    set_activity(box, "Alice", "Idle")
    updated = desk.wait_for("activityUpdated")["worker"]
    assert updated["activity"] == {"sid": box.activities["Idle"], "name": "Idle", "available": True}
    assert updated["available"] is True
    assert desk.state()["activity"]["name"] == "Idle"


def test_set_as_current_in_the_sdk_moves_the_worker_over_rest(
    taskrouter_sandbox: TaskRouterSandbox, desks: OpenDesk
) -> None:
    box = taskrouter_sandbox
    desk = desks("Bob")
    answer = desk.set_activity("Idle")
    assert answer["activity"]["name"] == "Idle"
    worker = box.workspace.workers(box.workers["Bob"]).fetch()
    assert (worker.activity_sid, worker.available) == (box.activities["Idle"], True)
    desk.set_activity("Offline")
    assert activity_of(box, "Bob") == "Offline"


def test_set_as_current_rejecting_pending_reservations(
    taskrouter_sandbox: TaskRouterSandbox, desks: OpenDesk
) -> None:
    box = taskrouter_sandbox
    desk = desks("Alice")
    desk.set_activity("Idle")
    task = create_task(box, "es")
    offered = desk.wait_for("reservationCreated")["reservation"]
    desk.set_activity("Offline", rejectPendingReservations=True)
    assert desk.wait_for("reservation.rejected")["reservation"]["sid"] == offered["sid"]
    reservation = box.workspace.tasks(task.sid).reservations(offered["sid"]).fetch()
    assert reservation.reservation_status == "rejected"
    assert activity_of(box, "Alice") == "Offline"


def test_set_attributes_in_the_sdk_reaches_rest(
    taskrouter_sandbox: TaskRouterSandbox, desks: OpenDesk
) -> None:
    box = taskrouter_sandbox
    desk = desks("Alice")
    attributes = {"languages": ["en", "es", "fr"], "desk": 7}
    assert desk.command("attributes", attributes=attributes)["attributes"] == attributes
    rest = box.workspace.workers(box.workers["Alice"]).fetch()
    assert json.loads(rest.attributes) == attributes
    assert desk.wait_for("attributesUpdated")["worker"]["attributes"] == attributes


def test_attributes_changed_over_rest_reach_the_sdk(
    taskrouter_sandbox: TaskRouterSandbox, desks: OpenDesk
) -> None:
    box = taskrouter_sandbox
    desk = desks("Bob")
    attributes = {"languages": ["en", "de"]}
    box.workspace.workers(box.workers["Bob"]).update(attributes=json.dumps(attributes))
    assert desk.wait_for("attributesUpdated")["worker"]["attributes"] == attributes
    assert desk.state()["attributes"] == attributes


def test_close_existing_sessions_disconnects_the_other_desk(
    taskrouter_sandbox: TaskRouterSandbox, desks: OpenDesk
) -> None:
    first = desks("Alice")
    second = desks("Alice", closeExistingSessions=True)
    reason = first.wait_for("disconnected")["reason"]
    assert reason == "Another session has connected for this worker, disconnecting current session."
    assert second.state()["sid"] == taskrouter_sandbox.workers["Alice"]
    # Replaced, not gone: the worker keeps its activity.
    assert activity_of(taskrouter_sandbox, "Alice") == "Offline"
    assert not [e for e in second.events if e["event"] in ("disconnected", "error")]


def test_disconnect_sets_the_worker_offline(
    taskrouter_sandbox: TaskRouterSandbox, desks: OpenDesk
) -> None:
    box = taskrouter_sandbox
    desk = desks("Alice")
    desk.set_activity("Idle")
    desk.command("disconnect")
    assert desk.wait_for("disconnected")["reason"] == "SDK Disconnect"
    _eventually(lambda: activity_of(box, "Alice") == "Offline", "Alice is not Offline")


def test_disconnect_keeps_the_activity_with_set_worker_offline_if_disconnected_false(
    taskrouter_sandbox: TaskRouterSandbox, desks: OpenDesk
) -> None:
    box = taskrouter_sandbox
    desk = desks("Alice", setWorkerOfflineIfDisconnected=False)
    desk.set_activity("Idle")
    desk.command("disconnect")
    _eventually(lambda: _sockets(box, "Alice") == 0, "the bridge still holds Alice's socket")
    assert activity_of(box, "Alice") == "Idle"


def test_one_of_two_desks_closing_leaves_the_worker_as_it_is(
    taskrouter_sandbox: TaskRouterSandbox, desks: OpenDesk
) -> None:
    """Offline once the worker's last connection is gone, not while another desk is open."""
    box = taskrouter_sandbox
    staying, leaving = desks("Alice"), desks("Alice")
    staying.set_activity("Idle")
    assert _sockets(box, "Alice") == 2
    leaving.command("disconnect")
    _eventually(lambda: _sockets(box, "Alice") == 1, "the bridge still holds both sockets")
    assert activity_of(box, "Alice") == "Idle"
    set_activity(box, "Alice", "Busy")  # the staying desk still hears of the worker
    staying.wait_for("activityUpdated", lambda e: e["worker"]["activity"]["name"] == "Busy")


def test_connect_activity_sid_sets_the_activity_on_connect(
    taskrouter_sandbox: TaskRouterSandbox, desks: OpenDesk
) -> None:
    box = taskrouter_sandbox
    desk = desks("Bob", connectActivitySid=box.activities["Idle"])
    desk.wait_for("activityUpdated", lambda e: e["worker"]["activity"]["name"] == "Idle")
    assert activity_of(box, "Bob") == "Idle"


def test_create_task_routes_a_task_to_the_worker_itself(
    taskrouter_sandbox: TaskRouterSandbox, desks: OpenDesk
) -> None:
    """Worker.createTask: a task for this worker (RoutingTarget), its "to" and "from" in the
    attributes as outbound_to and from."""
    box = taskrouter_sandbox
    desk = desks("Alice")
    desk.set_activity("Idle")
    task_sid = desk.command(
        "createTask",
        to="+15550100",
        **{"from": "client:alice"},
        workflowSid=box.workflow_sid,
        taskQueueSid=box.task_queues[ENGLISH_QUEUE],
        options={"attributes": {"selected_language": "en"}},
    )
    task = box.workspace.tasks(task_sid).fetch()
    assert task.routing_target == box.workers["Alice"]
    assert json.loads(task.attributes) == {
        "selected_language": "en",
        "outbound_to": "+15550100",
        "from": "client:alice",
    }
    offered = desk.wait_for("reservationCreated")["reservation"]
    assert (offered["task"]["sid"], offered["workerSid"]) == (task_sid, box.workers["Alice"])
