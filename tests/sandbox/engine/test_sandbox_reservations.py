"""Reservations under Tasks and under Workers: list, fetch and every update the API allows.

Workers start Offline; a test offers a task to one of them by making that worker available.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from taskrouter_sandbox.domain.errors import EngineError
from taskrouter_sandbox.domain.values import AssignmentCallback, EventCallback
from tests.sandbox.conftest import Live, assert_error_body, routing, twilio_error


@dataclass
class Floor:
    """A single-tasking workspace with quickstart-like activities, one queue, two workers."""

    sid: str
    context: Any
    activities: dict[str, str]
    queue_sid: str
    workflow_sid: str
    alice: str
    bob: str


def _floor(live: Live, *, max_reserved_workers: int = 1, **workflow: Any) -> Floor:
    sid = live.new_workspace(multi_task_enabled=False).sid
    context = live.v1.workspaces(sid)
    activities = {a.friendly_name: a.sid for a in context.activities.list()}
    for name in ("Reserved", "Busy", "Wrap"):
        activities[name] = context.activities.create(friendly_name=name).sid
    queue = context.task_queues.create(
        friendly_name="Queue",
        reservation_activity_sid=activities["Reserved"],
        assignment_activity_sid=activities["Busy"],
        max_reserved_workers=max_reserved_workers,
    )
    flow = context.workflows.create(
        friendly_name="Flow", configuration=routing(default=queue.sid), **workflow
    )
    alice = context.workers.create(
        friendly_name="Alice", activity_sid=activities["Offline"], attributes='{"lang": "es"}'
    )
    bob = context.workers.create(friendly_name="Bob", activity_sid=activities["Offline"])
    return Floor(sid, context, activities, queue.sid, flow.sid, alice.sid, bob.sid)


def _reserve(live: Live, floor: Floor, worker_sid: str) -> Any:
    """A new task, then the worker made available: routing offers the task to it."""
    task_sid = floor.context.tasks.create(attributes='{"selected_language": "es"}').sid
    assert floor.context.tasks(task_sid).fetch().assignment_status == "pending"
    floor.context.workers(worker_sid).update(activity_sid=floor.activities["Available"])
    (reservation,) = floor.context.tasks(task_sid).reservations.list()
    assert reservation.worker_sid == worker_sid
    return reservation


def test_reserve_then_accept(live: Live) -> None:
    floor = _floor(live)
    reservation = _reserve(live, floor, floor.alice)
    assert reservation.sid.startswith("WR") and len(reservation.sid) == 34
    assert reservation.reservation_status == "pending"
    assert reservation.worker_name == "Alice" and reservation.worker_sid == floor.alice
    task_sid = reservation.task_sid
    assert floor.context.tasks(task_sid).fetch().assignment_status == "reserved"
    assert floor.context.workers(floor.alice).fetch().activity_name == "Reserved"
    assert reservation.url == (
        f"{live.base_url}/v1/Workspaces/{floor.sid}/Tasks/{task_sid}/Reservations/{reservation.sid}"
    )
    assert reservation.links["worker"].endswith(f"/Workers/{floor.alice}")

    listed = floor.context.tasks(task_sid).reservations.list()
    assert [r.sid for r in listed] == [reservation.sid]
    by_worker = floor.context.workers(floor.alice).reservations.list()
    assert [r.sid for r in by_worker] == [reservation.sid]
    via_worker = floor.context.workers(floor.alice).reservations(reservation.sid).fetch()
    assert via_worker.url.endswith(f"/Workers/{floor.alice}/Reservations/{reservation.sid}")

    accepted = (
        floor.context.tasks(task_sid)
        .reservations(reservation.sid)
        .update(reservation_status="accepted")
    )
    assert accepted.reservation_status == "accepted" and accepted.worker_name == "Alice"
    assert floor.context.tasks(task_sid).fetch().assignment_status == "assigned"
    assert floor.context.workers(floor.alice).fetch().activity_name == "Busy"
    types = [e.event_type for e in floor.context.events.list(reservation_sid=reservation.sid)]
    assert types == ["reservation.accepted", "reservation.created"]

    with twilio_error(
        400,
        20001,
        f"Reservation {reservation.sid} is already in state [accepted] and cannot be updated "
        "to [accepted]",
    ):
        floor.context.tasks(task_sid).reservations(reservation.sid).update(
            reservation_status="accepted"
        )


def test_wrap_up_and_complete_through_the_reservation(live: Live) -> None:
    floor = _floor(live)
    reservation = _reserve(live, floor, floor.alice)
    through_worker = floor.context.workers(floor.alice).reservations(reservation.sid)
    through_worker.update(reservation_status="accepted")
    wrapping = through_worker.update(reservation_status="wrapping")
    assert wrapping.reservation_status == "wrapping"
    assert floor.context.tasks(reservation.task_sid).fetch().assignment_status == "wrapping"
    completed = through_worker.update(reservation_status="completed")
    assert completed.reservation_status == "completed"
    task = floor.context.tasks(reservation.task_sid).fetch()
    assert task.assignment_status == "completed"


def test_complete_task_directly_completes_its_reservation(live: Live) -> None:
    floor = _floor(live)
    reservation = _reserve(live, floor, floor.alice)
    floor.context.tasks(reservation.task_sid).reservations(reservation.sid).update(
        reservation_status="accepted"
    )
    floor.context.tasks(reservation.task_sid).update(assignment_status="wrapping")
    assert (
        floor.context.tasks(reservation.task_sid).reservations(reservation.sid).fetch()
    ).reservation_status == "wrapping"
    task = floor.context.tasks(reservation.task_sid).update(
        assignment_status="completed", reason="Done"
    )
    assert task.assignment_status == "completed" and task.reason == "Done"
    final = floor.context.tasks(reservation.task_sid).reservations(reservation.sid).fetch()
    assert final.reservation_status == "completed"


def test_reject_with_an_activity(live: Live) -> None:
    floor = _floor(live)
    reservation = _reserve(live, floor, floor.alice)
    rejected = (
        floor.context.tasks(reservation.task_sid)
        .reservations(reservation.sid)
        .update(reservation_status="rejected", worker_activity_sid=floor.activities["Offline"])
    )
    assert rejected.reservation_status == "rejected"
    assert floor.context.tasks(reservation.task_sid).fetch().assignment_status == "pending"
    assert floor.context.workers(floor.alice).fetch().activity_name == "Offline"


def test_reject_without_an_activity_gives_the_worker_back_its_activity(live: Live) -> None:
    floor = _floor(live)
    reservation = _reserve(live, floor, floor.alice)
    floor.context.workers(floor.alice).reservations(reservation.sid).update(
        reservation_status="rejected"
    )
    assert floor.context.workers(floor.alice).fetch().activity_name == "Available"
    with live.sandbox.store.read() as tx:
        count = tx.scalar(
            "SELECT rejection_count FROM tasks WHERE sid = ?", (reservation.task_sid,)
        )
    assert count == 1


def test_instructions(live: Live) -> None:
    floor = _floor(live)
    dequeued = _reserve(live, floor, floor.alice)
    answer = (
        floor.context.tasks(dequeued.task_sid)
        .reservations(dequeued.sid)
        .update(
            instruction="dequeue", dequeue_from="+15550100", dequeue_post_work_activity_sid=None
        )
    )
    assert answer.reservation_status == "accepted"
    with live.sandbox.store.read() as tx:
        stored = tx.scalar("SELECT instruction FROM reservations WHERE sid = ?", (dequeued.sid,))
    assert json.loads(stored) == {"instruction": "dequeue", "DequeueFrom": "+15550100"}

    called = _reserve(live, floor, floor.bob)
    waiting = (
        floor.context.tasks(called.task_sid)
        .reservations(called.sid)
        .update(instruction="call", call_from="+15550100", call_url="https://example.com/twiml")
    )
    assert waiting.reservation_status == "pending"
    accepted = (
        floor.context.tasks(called.task_sid)
        .reservations(called.sid)
        .update(
            instruction="redirect",
            redirect_call_sid="CA" + "0" * 32,
            redirect_url="https://example.com/twiml",
            redirect_accept=True,
        )
    )
    assert accepted.reservation_status == "accepted"


@pytest.mark.parametrize(
    ("data", "status", "fragment"),
    [
        ({"Instruction": "teleport"}, 400, "Instruction"),
        ({"Instruction": "accept", "ReservationStatus": "accepted"}, 400, "not both"),
        ({"ReservationStatus": "timeout"}, 400, "cannot be set over the API"),
        ({"ReservationStatus": "eaten"}, 400, "ReservationStatus"),
        ({"ReservationStatus": "accepted", "WorkerActivitySid": "WA" + "6" * 32}, 400, "only"),
        ({"ReservationStatus": "rejected", "WorkerActivitySid": "WA" + "6" * 32}, 400, "not an"),
        ({"ReservationStatus": "completed"}, 400, "cannot be updated to [completed]"),
        ({"CallAccept": "sure", "Instruction": "call"}, 400, "CallAccept"),
    ],
)
def test_bad_reservation_updates(live: Live, data: dict, status: int, fragment: str) -> None:
    floor = _floor(live)
    reservation = _reserve(live, floor, floor.alice)
    path = f"/v1/Workspaces/{floor.sid}/Tasks/{reservation.task_sid}/Reservations/{reservation.sid}"
    body = assert_error_body(live.http("POST", path, data=data), status, 20001)
    assert fragment in body["message"]
    assert (
        floor.context.tasks(reservation.task_sid)
        .reservations(reservation.sid)
        .fetch()
        .reservation_status
        == "pending"
    )


def test_accepting_one_reservation_rescinds_the_others(live: Live) -> None:
    floor = _floor(live, max_reserved_workers=2)
    for worker_sid in (floor.alice, floor.bob):
        floor.context.workers(worker_sid).update(activity_sid=floor.activities["Available"])
        live.clock.advance(1)  # Alice has been idle longer: she is offered the task first
    task = floor.context.tasks(floor.context.tasks.create(attributes="{}").sid)
    first = task.reservations.list(worker_sid=floor.alice)[0]
    second = task.reservations.list(worker_sid=floor.bob)[0]
    task.reservations(second.sid).update(reservation_status="accepted")
    assert task.reservations(first.sid).fetch().reservation_status == "rescinded"
    assert floor.context.workers(floor.alice).fetch().activity_name == "Available"
    assert floor.context.workers(floor.bob).fetch().activity_name == "Busy"
    with twilio_error(410, 20001, "rescinded"):
        task.reservations(first.sid).update(reservation_status="accepted")
    statuses = [r.reservation_status for r in task.reservations.list()]
    assert statuses == ["rescinded", "accepted"]
    assert [r.sid for r in task.reservations.list(reservation_status="rescinded")] == [first.sid]
    assert [r.sid for r in task.reservations.list(worker_sid=floor.bob)] == [second.sid]


def test_canceling_a_reserved_task_cancels_its_reservation(live: Live) -> None:
    floor = _floor(live)
    reservation = _reserve(live, floor, floor.alice)
    floor.context.tasks(reservation.task_sid).update(assignment_status="canceled")
    fetched = floor.context.tasks(reservation.task_sid).reservations(reservation.sid).fetch()
    assert fetched.reservation_status == "canceled"
    assert floor.context.workers(floor.alice).fetch().activity_name == "Available"


def test_reject_pending_reservations_when_going_offline(live: Live) -> None:
    floor = _floor(live)
    reservation = _reserve(live, floor, floor.alice)
    worker = floor.context.workers(floor.alice).update(
        activity_sid=floor.activities["Offline"], reject_pending_reservations=True
    )
    assert worker.activity_name == "Offline"
    fetched = floor.context.workers(floor.alice).reservations(reservation.sid).fetch()
    assert fetched.reservation_status == "rejected"
    assert floor.context.tasks(reservation.task_sid).fetch().assignment_status == "pending"


def test_worker_holding_a_reservation_cannot_be_deleted(live: Live) -> None:
    floor = _floor(live)
    _reserve(live, floor, floor.alice)
    with twilio_error(400, 20001, "pending or accepted reservation"):
        floor.context.workers(floor.alice).delete()


def test_reservation_paths_must_match(live: Live) -> None:
    floor = _floor(live)
    reservation = _reserve(live, floor, floor.alice)
    other_task = floor.context.tasks.create(attributes="{}")
    with twilio_error(404, 20404):
        floor.context.tasks(other_task.sid).reservations(reservation.sid).fetch()
    with twilio_error(404, 20404):
        floor.context.workers(floor.bob).reservations(reservation.sid).update(
            reservation_status="accepted"
        )
    with twilio_error(404, 20404):
        floor.context.tasks(reservation.task_sid).reservations("WR" + "7" * 32).fetch()


def test_reserve_checks_eligibility(live: Live) -> None:
    floor = _floor(live)
    engine = live.sandbox.engine
    task = floor.context.tasks.create(attributes="{}")
    with pytest.raises(EngineError, match="not available"):
        engine.reserve(floor.sid, task.sid, floor.bob)
    picky = floor.context.task_queues.create(friendly_name="Picky", target_workers='lang == "fr"')
    direct = floor.context.tasks.create(attributes="{}", task_queue_sid=picky.sid)
    floor.context.workers(floor.alice).update(activity_sid=floor.activities["Available"])
    assert floor.context.tasks(task.sid).fetch().assignment_status == "reserved"
    floor.context.workers(floor.bob).update(activity_sid=floor.activities["Available"])
    with pytest.raises(EngineError, match="does not match"):
        engine.reserve(floor.sid, direct.sid, floor.bob)
    other = floor.context.tasks.create(attributes="{}")
    # Available again while still holding the pending reservation: still not eligible.
    floor.context.workers(floor.alice).update(activity_sid=floor.activities["Available"])
    with pytest.raises(EngineError, match="single-tasking"):
        engine.reserve(floor.sid, other.sid, floor.alice)


def test_effects_are_published_after_commit(live: Live) -> None:
    floor = _floor(
        live,
        assignment_callback_url="https://example.com/assign",
        fallback_assignment_callback_url="https://example.com/fallback",
    )
    live.v1.workspaces(floor.sid).update(
        event_callback_url="https://example.com/events",
        events_filter="reservation.created,task.created",
    )
    published: list[Any] = []
    live.sandbox.engine.subscribe(published.extend)
    try:
        reservation = _reserve(live, floor, floor.alice)
    finally:
        live.sandbox.engine.unsubscribe(published.extend)
    callbacks = [e for e in published if isinstance(e, AssignmentCallback)]
    assert len(callbacks) == 1
    callback = callbacks[0]
    assert callback.reservation_sid == reservation.sid
    assert callback.url == "https://example.com/assign"
    assert callback.fallback_url == "https://example.com/fallback"
    assert set(callback.params) == {
        "AccountSid",
        "WorkspaceSid",
        "WorkflowSid",
        "TaskQueueSid",
        "WorkerSid",
        "WorkerAttributes",
        "TaskSid",
        "TaskAttributes",
        "TaskAge",
        "TaskPriority",
        "ReservationSid",
        "Timestamp",
    }
    assert callback.params["WorkerAttributes"] == '{"lang": "es"}'
    assert all(isinstance(value, str) for value in callback.params.values())
    events = [e for e in published if isinstance(e, EventCallback)]
    assert [e.params["EventType"] for e in events] == ["task.created", "reservation.created"]
    assert {e.url for e in events} == {"https://example.com/events"}
    assert events[1].params["ReservationSid"] == reservation.sid
    assert events[1].params["WorkspaceName"] == "Test workspace"
