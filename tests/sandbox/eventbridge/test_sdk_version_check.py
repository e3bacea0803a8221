"""The Worker SDK with enableVersionCheck (If-Match on its changes) through events that move a
worker's version without carrying the worker.

Followed: the SDK's Worker (https://twilio.github.io/twilio-taskrouter.js/Worker.html:
enableVersionCheck, "to avoid accidentally overwriting objects with outdated data") and its
event handler (twilio-taskrouter 2.1.1 lib/handlers/TaskRouterEventHandler.js): on
reservation.created, worker.capacity.update and worker.channel.availability.update it bumps
the worker's version by one itself, "because it is incremented in the backend" and the event
carries no worker. TaskRouter's ETag page
(https://www.twilio.com/docs/taskrouter/api-mutation-conflict-resolution): a change with an
If-Match naming the current version applies. So the worker's version must move by one on
each of those events, or the desk's next change is refused with 412 although nothing else
changed the worker.
"""

from __future__ import annotations

import pytest

from taskrouter_sandbox.testing import TaskRouterSandbox
from tests.sandbox.eventbridge.conftest import OpenDesk
from tests.sandbox.eventbridge.desks import create_task

pytestmark = pytest.mark.taskrouter_sandbox(transport="http")


def _version(box: TaskRouterSandbox, worker: str) -> int:
    return box.sandbox.engine.get_worker(box.workspace_sid, box.workers[worker])["version"]


def test_a_channel_capacity_change_moves_the_workers_version_as_the_sdk_counts_it(
    taskrouter_sandbox: TaskRouterSandbox, desks: OpenDesk
) -> None:
    box = taskrouter_sandbox
    desk = desks("Alice", enableVersionCheck=True)
    channels = box.workspace.workers(box.workers["Alice"]).worker_channels
    channels("default").update(capacity=2)
    desk.wait_for("channel.capacityUpdated")
    assert desk.state()["version"] == str(_version(box, "Alice"))
    # The desk's next change, sent with the version it holds, applies.
    desk.command("attributes", attributes={"languages": ["en", "es"], "desk": 1})


def test_a_channel_availability_change_moves_the_workers_version_as_the_sdk_counts_it(
    taskrouter_sandbox: TaskRouterSandbox, desks: OpenDesk
) -> None:
    box = taskrouter_sandbox
    desk = desks("Alice", enableVersionCheck=True)
    box.workspace.workers(box.workers["Alice"]).worker_channels("default").update(available=False)
    desk.wait_for("channel.availabilityUpdated")
    assert desk.state()["version"] == str(_version(box, "Alice"))
    desk.set_activity("Idle")


def test_a_reservation_that_leaves_the_activity_alone_moves_the_workers_version(
    taskrouter_sandbox: TaskRouterSandbox, desks: OpenDesk
) -> None:
    """In a multitasking workspace a reservation does not move the worker to the queue's
    reservation activity: the reservation.created event is the only news the desk gets, and
    the SDK counts it as one version."""
    box = taskrouter_sandbox
    box.workspace.update(multi_task_enabled=True)
    desk = desks("Alice", enableVersionCheck=True)
    desk.set_activity("Idle")
    create_task(box, "es")
    desk.wait_for("reservationCreated")
    assert desk.state()["version"] == str(_version(box, "Alice"))
    desk.command("attributes", attributes={"languages": ["en", "es"], "desk": 2})
