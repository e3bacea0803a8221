"""Time at the desk, moved by the sandbox's clock instead of waited for: a ticket nobody
answers for times out of its reservation (Twilio: the Reservation times out after the
Workflow's TaskReservationTimeout, the Worker moves to the Workspace's TimeoutActivity and
the Task is available for other workers), and a ticket the frontline does not take within its
target's timeout escalates to the next target, the specialists ("Lifecycle of a Task: Timeout
evaluation")."""

from __future__ import annotations

import json

import pytest

from support_desk import events_seen

pytestmark = pytest.mark.taskrouter_sandbox(seed="empty")


def test_a_ticket_left_for_review_times_out_and_is_offered_to_the_next_agent(desk):
    desk.set_activity("Ana", "Available")
    desk.set_activity("Ben", "Available")
    task = desk.open_ticket(skill="billing", manual_review=True)

    (first_offer,) = desk.assignment_callbacks()
    # The desk answers {} to a ticket for review: no instruction, the reservation waits.
    assert json.loads(first_offer.answer) == {}
    assert first_offer.instruction is None
    assert first_offer.params["WorkerSid"] == desk.agents["Ben"]
    (reservation,) = desk.reservations(task.sid)
    assert reservation.reservation_status == "pending"

    desk.sandbox.clock.advance(desk.reservation_timeout - 1)
    assert desk.workspace.tasks(task.sid).reservations(
        reservation.sid
    ).fetch().reservation_status == ("pending")

    desk.sandbox.clock.advance(1)
    timed_out, offered_again = desk.reservations(task.sid)
    assert (timed_out.sid, timed_out.reservation_status) == (reservation.sid, "timeout")
    # Ben goes to the workspace's timeout activity (Offline in a new workspace), and the
    # ticket is available for other workers: Ana, still available, is offered it. (It stays
    # in the frontline target, whose timeout has not passed: the sandbox's README says why.)
    workspace = desk.workspace.fetch()
    assert workspace.timeout_activity_name == "Offline"
    assert desk.activity_of("Ben") == workspace.timeout_activity_name
    assert (offered_again.worker_sid, offered_again.reservation_status) == (
        desk.agents["Ana"],
        "pending",
    )
    assert [c.params["WorkerSid"] for c in desk.assignment_callbacks()] == [
        desk.agents["Ben"],
        desk.agents["Ana"],
    ]
    assert "reservation.timeout" in desk.sandbox.event_types


def test_a_ticket_the_frontline_does_not_take_escalates_to_the_specialists(desk):
    desk.set_activity("Sam", "Available")  # the frontline has not come in yet
    task = desk.open_ticket(skill="refunds")

    waiting = desk.workspace.tasks(task.sid).fetch()
    assert (waiting.assignment_status, waiting.task_queue_sid) == (
        "pending",
        desk.queues["Frontline"],
    )
    assert desk.assignment_callbacks() == []

    desk.sandbox.clock.advance(desk.frontline_timeout - 1)
    assert desk.workspace.tasks(task.sid).fetch().task_queue_sid == desk.queues["Frontline"]
    assert desk.assignment_callbacks() == []

    desk.sandbox.clock.advance(1)
    (callback,) = desk.assignment_callbacks()
    assert callback.params["TaskQueueSid"] == desk.queues["Specialists"]
    assert callback.params["WorkerSid"] == desk.agents["Sam"]
    assert (json.loads(callback.answer), callback.instruction) == (
        {"instruction": "accept"},
        "accept",
    )
    assigned = desk.workspace.tasks(task.sid).fetch()
    assert (assigned.assignment_status, assigned.task_queue_sid) == (
        "assigned",
        desk.queues["Specialists"],
    )
    (reservation,) = desk.reservations(task.sid)
    assert (reservation.worker_sid, reservation.reservation_status) == (
        desk.agents["Sam"],
        "accepted",
    )
    # The desk's event callback saw the ticket enter one queue, then the other.
    entered = [
        event["TaskQueueSid"]
        for event in events_seen(desk.app)
        if event["EventType"] == "task-queue.entered" and event.get("TaskSid") == task.sid
    ]
    assert entered == [desk.queues["Frontline"], desk.queues["Specialists"]]
