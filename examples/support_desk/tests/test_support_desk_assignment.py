"""The desk's assignment callback against TaskRouter (the local sandbox): what it answers and
what TaskRouter does with the answer, as Twilio's "Handling Assignment Callbacks" page
describes (accept: the reservation is accepted and the task assigned; reject: the reservation
is rejected and the task is offered to another eligible worker)."""

from __future__ import annotations

import json

import pytest
from twilio.request_validator import RequestValidator

from support_desk import events_seen

# A new workspace as Twilio makes one (Offline, Available, Unavailable), which the desk fixture
# (conftest.py) fills with its queues, agents and workflow.
pytestmark = pytest.mark.taskrouter_sandbox(seed="empty")


def test_an_agent_with_the_skill_accepts_and_the_ticket_is_assigned(desk):
    desk.set_activity("Ana", "Available")
    task = desk.open_ticket(skill="billing", subject="Charged twice")

    (callback,) = desk.assignment_callbacks()
    assert callback.status_code == 200
    assert json.loads(callback.answer) == {"instruction": "accept"}
    assert callback.instruction == "accept"
    assert callback.params["WorkerSid"] == desk.agents["Ana"]
    assert json.loads(callback.params["TaskAttributes"])["skill"] == "billing"
    # The create answer shows the task as created (pending); fetched, it has been assigned.
    assert desk.workspace.tasks(task.sid).fetch().assignment_status == "assigned"
    (reservation,) = desk.reservations(task.sid)
    assert reservation.reservation_status == "accepted"
    assert reservation.worker_sid == desk.agents["Ana"]
    # A new workspace is multitasking: the agent's activity stays as it was, and the task
    # takes the default channel's only slot instead.
    assert desk.workspace.fetch().multi_task_enabled is True
    assert desk.activity_of("Ana") == "Available"
    channel = desk.workspace.workers(desk.agents["Ana"]).worker_channels("default").fetch()
    assert (channel.configured_capacity, channel.assigned_tasks) == (1, 1)
    assert channel.available_capacity_percentage == 0


def test_an_agent_without_the_skill_rejects_and_the_next_agent_gets_the_ticket(desk):
    desk.set_activity("Ana", "Available")
    desk.set_activity("Ben", "Available")
    task = desk.open_ticket(skill="billing")

    # Ben, the more senior, is offered it first (the target orders by seniority) and lacks
    # the skill; Ana has it.
    first, second = desk.assignment_callbacks()
    assert (first.params["WorkerSid"], first.instruction) == (desk.agents["Ben"], "reject")
    assert json.loads(first.answer) == {"instruction": "reject"}
    assert (second.params["WorkerSid"], second.instruction) == (desk.agents["Ana"], "accept")
    rejected, accepted = desk.reservations(task.sid)
    assert (rejected.worker_sid, rejected.reservation_status) == (desk.agents["Ben"], "rejected")
    assert (accepted.worker_sid, accepted.reservation_status) == (desk.agents["Ana"], "accepted")
    assert desk.workspace.tasks(task.sid).fetch().assignment_status == "assigned"
    # A reject without an activity_sid leaves the agent's activity as it was.
    assert desk.activity_of("Ben") == "Available"


def test_a_rejecting_agent_moves_to_the_activity_the_answer_names(desk):
    # The desk configured to move an agent who rejects a ticket to Unavailable (the reject
    # instruction's activity_sid), so that they are not offered the next one either.
    desk.app.config["REJECT_ACTIVITY_SID"] = desk.activities["Unavailable"]
    desk.set_activity("Ben", "Available")
    task = desk.open_ticket(skill="billing")

    (callback,) = desk.assignment_callbacks()
    assert json.loads(callback.answer) == {
        "instruction": "reject",
        "activity_sid": desk.activities["Unavailable"],
    }
    (reservation,) = desk.reservations(task.sid)
    assert reservation.reservation_status == "rejected"
    assert desk.activity_of("Ben") == "Unavailable"
    # Nobody else is available: the ticket waits for the next agent.
    assert desk.workspace.tasks(task.sid).fetch().assignment_status == "pending"


def test_the_desk_refuses_a_callback_without_twilios_signature(desk):
    form = {"TaskAttributes": '{"skill": "billing"}', "WorkerAttributes": '{"skills": []}'}
    client = desk.app.test_client()

    unsigned = client.post("/assignment", data=form)
    assert unsigned.status_code == 403
    url = "http://localhost/assignment"
    forged = RequestValidator("not-the-auth-token").compute_signature(url, form)
    refused = client.post("/assignment", data=form, headers={"X-Twilio-Signature": forged})
    assert refused.status_code == 403
    signed = RequestValidator(desk.sandbox.auth_token).compute_signature(url, form)
    answered = client.post("/assignment", data=form, headers={"X-Twilio-Signature": signed})
    assert answered.status_code == 200
    assert answered.get_json() == {"instruction": "reject"}


@pytest.mark.parametrize("field", ["TaskAttributes", "WorkerAttributes"])
def test_the_desk_answers_400_to_attributes_that_are_not_a_json_object(desk, field):
    form = {"TaskAttributes": "{}", "WorkerAttributes": "{}", field: "[1, 2]"}
    url = "http://localhost/assignment"
    signature = RequestValidator(desk.sandbox.auth_token).compute_signature(url, form)
    answer = desk.app.test_client().post(
        "/assignment", data=form, headers={"X-Twilio-Signature": signature}
    )
    assert answer.status_code == 400
    assert answer.get_json() == {"error": f"{field} is not a JSON object"}


def test_the_desk_sees_the_workspace_events_of_an_assignment(desk):
    desk.set_activity("Ana", "Available")
    task = desk.open_ticket(skill="billing")

    seen = [event for event in events_seen(desk.app) if event.get("TaskSid") == task.sid]
    # Each event is a request of its own, and requests can arrive in any order (the sandbox
    # sends them from several threads): each carries its moment, TimestampMs, to order by.
    moments = {event["EventType"]: int(event["TimestampMs"]) for event in seen}
    assert {"task.created", "reservation.created", "reservation.accepted"} <= set(moments)
    assert moments["task.created"] <= moments["reservation.created"]
    assert moments["reservation.created"] <= moments["reservation.accepted"]
    event_callbacks = [c for c in desk.sandbox.callbacks if c.kind == "event"]
    assert event_callbacks and all(c.status_code == 204 for c in event_callbacks)
