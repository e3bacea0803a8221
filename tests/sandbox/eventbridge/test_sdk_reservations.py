"""The quickstart from the agent's chair: reservations made by REST reach Twilio's Worker SDK
(twilio-taskrouter 2.1.1, unmodified), which accepts, rejects, wraps and completes them.

Followed: the SDK's Reservation (https://twilio.github.io/twilio-taskrouter.js/Reservation.html:
accept(), reject({activitySid}), complete(), wrap(); events accepted, rejected, timeout,
canceled, completed, wrapup) and Task (Task.html: complete(reason), wrapUp({reason}),
setAttributes(); events completed, wrapup, canceled, updated); TaskRouter's Task Reservation
resource (https://www.twilio.com/docs/taskrouter/api/reservations: ReservationStatus accepted,
rejected with WorkerActivitySid, wrapping, completed; a reservation not handled within the
workflow's TaskReservationTimeout times out) and the task lifecycle
(https://www.twilio.com/docs/taskrouter/lifecycle-task-state: reserved -> assigned on accept,
back to pending on reject or timeout; a single reservation at a time, the next worker offered
after a rejection).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from twilio.base.exceptions import TwilioRestException

from taskrouter_sandbox.seed import ENGLISH_QUEUE, TASK_RESERVATION_TIMEOUT
from taskrouter_sandbox.testing import TaskRouterSandbox
from tests.sandbox.eventbridge.conftest import OpenDesk
from tests.sandbox.eventbridge.desks import activity_of, create_task, set_activity
from tests.worker_sdk import SdkError, SdkWorker

pytestmark = pytest.mark.taskrouter_sandbox(transport="http")


def _offer(box: TaskRouterSandbox, desk: SdkWorker, worker: str, language: str) -> dict[str, Any]:
    """The worker goes Idle over REST and a task is created: the reservation the desk gets."""
    set_activity(box, worker, "Idle")
    desk.wait_for("activityUpdated", lambda e: e["worker"]["activity"]["name"] == "Idle")
    task = create_task(box, language)
    created = desk.wait_for("reservationCreated")["reservation"]
    assert created["task"]["sid"] == task.sid
    return created


def _rest_reservation(box: TaskRouterSandbox, task_sid: str, sid: str) -> Any:
    return box.workspace.tasks(task_sid).reservations(sid).fetch()


def _accepted(box: TaskRouterSandbox, desk: SdkWorker, worker: str) -> dict[str, Any]:
    reservation = _offer(box, desk, worker, "es" if worker == "Alice" else "en")
    desk.reservation(reservation["sid"], "accept")
    desk.wait_for("reservation.accepted")
    return reservation


def test_the_sdk_accepts_a_reservation_made_by_rest_and_completes_its_task(
    taskrouter_sandbox: TaskRouterSandbox, desks: OpenDesk
) -> None:
    box = taskrouter_sandbox
    desk = desks("Alice")
    offered = _offer(box, desk, "Alice", "es")
    assert offered["status"] == "pending"
    assert offered["workerSid"] == box.workers["Alice"]
    assert offered["timeout"] == TASK_RESERVATION_TIMEOUT
    assert offered["task"]["status"] == "reserved"
    assert offered["task"]["attributes"] == {"selected_language": "es"}
    assert offered["task"]["queueName"] == "Customer Care Requests - Spanish"
    # The queue's reservation activity, as REST shows it and as the desk is told.
    assert desk.wait_for("activityUpdated")["worker"]["activity"]["name"] == "Reserved"

    answer = desk.reservation(offered["sid"], "accept")
    assert answer["status"] == "accepted"
    accepted = desk.wait_for("reservation.accepted")["reservation"]
    assert (accepted["sid"], accepted["task"]["status"]) == (offered["sid"], "assigned")
    task_sid = offered["task"]["sid"]
    assert _rest_reservation(box, task_sid, offered["sid"]).reservation_status == "accepted"
    assert box.workspace.tasks(task_sid).fetch().assignment_status == "assigned"
    assert activity_of(box, "Alice") == "Busy"  # the queue's assignment activity
    assert desk.wait_for("activityUpdated")["worker"]["activity"]["name"] == "Busy"

    done = desk.task(offered["sid"], "complete", "resolved over the phone")
    assert (done["status"], done["reason"]) == ("completed", "resolved over the phone")
    completed = desk.wait_for("task.completed")["task"]
    assert (completed["sid"], completed["status"]) == (task_sid, "completed")
    assert desk.wait_for("reservation.completed")["reservation"]["status"] == "completed"
    task = box.workspace.tasks(task_sid).fetch()
    assert (task.assignment_status, task.reason) == ("completed", "resolved over the phone")
    assert _rest_reservation(box, task_sid, offered["sid"]).reservation_status == "completed"
    assert desk.state()["reservations"] == []


def test_reservation_complete_completes_the_task(
    taskrouter_sandbox: TaskRouterSandbox, desks: OpenDesk
) -> None:
    box = taskrouter_sandbox
    desk = desks("Alice")
    reservation = _accepted(box, desk, "Alice")
    assert desk.reservation(reservation["sid"], "complete")["status"] == "completed"
    assert desk.wait_for("reservation.completed")["reservation"]["sid"] == reservation["sid"]
    task_sid = reservation["task"]["sid"]
    assert _rest_reservation(box, task_sid, reservation["sid"]).reservation_status == "completed"
    assert box.workspace.tasks(task_sid).fetch().assignment_status == "completed"


def test_reservation_wrap_puts_reservation_and_task_in_wrapping_until_completed(
    taskrouter_sandbox: TaskRouterSandbox, desks: OpenDesk
) -> None:
    box = taskrouter_sandbox
    desk = desks("Bob")
    reservation = _accepted(box, desk, "Bob")
    task_sid = reservation["task"]["sid"]
    assert desk.reservation(reservation["sid"], "wrap")["status"] == "wrapping"
    assert desk.wait_for("reservation.wrapup")["reservation"]["status"] == "wrapping"
    assert desk.wait_for("task.wrapup")["task"]["status"] == "wrapping"
    assert _rest_reservation(box, task_sid, reservation["sid"]).reservation_status == "wrapping"
    assert box.workspace.tasks(task_sid).fetch().assignment_status == "wrapping"
    desk.task(reservation["sid"], "complete", "wrapped up")
    assert desk.wait_for("task.completed")["task"]["reason"] == "wrapped up"
    assert box.workspace.tasks(task_sid).fetch().assignment_status == "completed"


def test_task_wrap_up_moves_the_task_to_wrapping_with_its_reason(
    taskrouter_sandbox: TaskRouterSandbox, desks: OpenDesk
) -> None:
    box = taskrouter_sandbox
    desk = desks("Alice")
    reservation = _accepted(box, desk, "Alice")
    task_sid = reservation["task"]["sid"]
    wrapping = desk.task(reservation["sid"], "wrapUp", {"reason": "call ended"})
    assert wrapping["status"] == "wrapping"
    assert desk.wait_for("task.wrapup")["task"]["status"] == "wrapping"
    assert box.workspace.tasks(task_sid).fetch().assignment_status == "wrapping"
    desk.task(reservation["sid"], "complete", "notes written")
    desk.wait_for("task.completed")
    assert box.workspace.tasks(task_sid).fetch().assignment_status == "completed"


def test_task_set_attributes_reaches_rest(
    taskrouter_sandbox: TaskRouterSandbox, desks: OpenDesk
) -> None:
    box = taskrouter_sandbox
    desk = desks("Alice")
    reservation = _accepted(box, desk, "Alice")
    attributes = {"selected_language": "es", "notes": "wants a callback"}
    assert desk.task(reservation["sid"], "setAttributes", attributes)["attributes"] == attributes
    task = box.workspace.tasks(reservation["task"]["sid"]).fetch()
    assert json.loads(task.attributes) == attributes
    assert desk.wait_for("task.updated")["task"]["attributes"] == attributes


def test_a_rejected_english_task_goes_on_to_bob(
    taskrouter_sandbox: TaskRouterSandbox, desks: OpenDesk
) -> None:
    box = taskrouter_sandbox
    alice, bob = desks("Alice"), desks("Bob")
    offered = _offer(box, alice, "Alice", "en")
    set_activity(box, "Bob", "Idle")  # the task is Alice's alone while her offer stands
    bob.wait_for("activityUpdated")
    assert alice.reservation(offered["sid"], "reject")["status"] == "rejected"
    assert alice.wait_for("reservation.rejected")["reservation"]["sid"] == offered["sid"]
    task_sid = offered["task"]["sid"]
    to_bob = bob.wait_for("reservationCreated")["reservation"]
    assert (to_bob["task"]["sid"], to_bob["workerSid"]) == (task_sid, box.workers["Bob"])
    assert _rest_reservation(box, task_sid, offered["sid"]).reservation_status == "rejected"
    assert box.workspace.tasks(task_sid).fetch().assignment_status == "reserved"
    # Without WorkerActivitySid the worker goes back to the activity it had before the offer.
    assert activity_of(box, "Alice") == "Idle"
    assert alice.state()["reservations"] == []
    bob.reservation(to_bob["sid"], "accept")
    bob.wait_for("reservation.accepted")
    assert box.workspace.tasks(task_sid).fetch().assignment_status == "assigned"


def test_reject_with_an_activity_sid_moves_the_worker_there(
    taskrouter_sandbox: TaskRouterSandbox, desks: OpenDesk
) -> None:
    box = taskrouter_sandbox
    desk = desks("Alice")
    offered = _offer(box, desk, "Alice", "es")
    offline = box.activities["Offline"]
    desk.reservation(offered["sid"], "reject", activitySid=offline)
    desk.wait_for("reservation.rejected")
    assert (
        desk.wait_for("activityUpdated", lambda e: e["worker"]["activity"]["sid"] == offline)[
            "worker"
        ]["activity"]["name"]
        == "Offline"
    )
    assert activity_of(box, "Alice") == "Offline"
    # Nobody else speaks Spanish: the task waits, pending.
    assert box.workspace.tasks(offered["task"]["sid"]).fetch().assignment_status == "pending"


def test_a_reservation_left_past_its_timeout_reaches_the_sdk_as_timeout(
    taskrouter_sandbox: TaskRouterSandbox, desks: OpenDesk
) -> None:
    box = taskrouter_sandbox
    desk = desks("Alice")
    offered = _offer(box, desk, "Alice", "es")
    box.clock.advance(TASK_RESERVATION_TIMEOUT + 1)
    timed_out = desk.wait_for("reservation.timeout")["reservation"]
    assert (timed_out["sid"], timed_out["status"]) == (offered["sid"], "timeout")
    task_sid = offered["task"]["sid"]
    assert _rest_reservation(box, task_sid, offered["sid"]).reservation_status == "timeout"
    # The workspace's timeout activity (Offline in the quickstart's).
    assert activity_of(box, "Alice") == "Offline"
    assert desk.wait_for("activityUpdated", lambda e: e["worker"]["activity"]["name"] == "Offline")
    assert desk.state()["reservations"] == []


def test_a_task_canceled_over_rest_reaches_the_sdk_as_canceled(
    taskrouter_sandbox: TaskRouterSandbox, desks: OpenDesk
) -> None:
    box = taskrouter_sandbox
    desk = desks("Alice")
    offered = _offer(box, desk, "Alice", "es")
    task_sid = offered["task"]["sid"]
    box.workspace.tasks(task_sid).update(assignment_status="canceled", reason="caller hung up")
    canceled = desk.wait_for("reservation.canceled")["reservation"]
    assert (canceled["sid"], canceled["status"]) == (offered["sid"], "canceled")
    assert _rest_reservation(box, task_sid, offered["sid"]).reservation_status == "canceled"
    assert desk.state()["reservations"] == []


def test_the_other_offer_of_a_task_accepted_elsewhere_is_rescinded(
    taskrouter_sandbox: TaskRouterSandbox, desks: OpenDesk
) -> None:
    """Multi-reservation (a queue's MaxReservedWorkers above 1): the task is offered to both,
    the first to accept gets it and the other's reservation is rescinded."""
    box = taskrouter_sandbox
    box.workspace.task_queues(box.task_queues[ENGLISH_QUEUE]).update(max_reserved_workers=2)
    alice, bob = desks("Alice"), desks("Bob")
    set_activity(box, "Alice", "Idle")
    set_activity(box, "Bob", "Idle")
    task = create_task(box, "en")
    to_alice = alice.wait_for("reservationCreated")["reservation"]
    to_bob = bob.wait_for("reservationCreated")["reservation"]
    assert to_alice["task"]["sid"] == to_bob["task"]["sid"] == task.sid
    bob.reservation(to_bob["sid"], "accept")
    rescinded = alice.wait_for("reservation.rescinded")["reservation"]
    assert (rescinded["sid"], rescinded["status"]) == (to_alice["sid"], "rescinded")
    assert _rest_reservation(box, task.sid, to_alice["sid"]).reservation_status == "rescinded"
    assert alice.state()["reservations"] == []


def test_a_call_rest_refuses_is_the_sdks_rejected_promise_with_rests_message(
    taskrouter_sandbox: TaskRouterSandbox, desks: OpenDesk
) -> None:
    """Completing a task that is only reserved: TaskRouter refuses (a task completes once
    assigned or wrapping), and the SDK's promise is rejected with the API's own message."""
    box = taskrouter_sandbox
    desk = desks("Alice")
    offered = _offer(box, desk, "Alice", "es")
    with pytest.raises(SdkError) as refused:
        desk.task(offered["sid"], "complete", "too early")
    task = box.workspace.tasks(offered["task"]["sid"])
    with pytest.raises(TwilioRestException) as over_rest:
        task.update(assignment_status="completed", reason="too early")
    # twilio-python puts its own words before the API's message; the SDK its own.
    message = over_rest.value.msg.removeprefix("Unable to update record: ")
    assert refused.value.name == "REQUEST_INVALID"
    assert refused.value.message == f"Request failed with status code 400. {message}"
    assert task.fetch().assignment_status == "reserved"
