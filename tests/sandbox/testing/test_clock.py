"""The fixture's clock: advance() fires what falls due at once, each deadline at its own time.

Twilio's pages behind these tests:
- Handling Assignment Callbacks (taskrouter/handle-assignment-callbacks): a reservation stays
  pending until accepted, rejected or timed out, on a reservation timer of the workflow's
  TaskReservationTimeout (120 s by default).
- Lifecycle of a Task: Task state (taskrouter/lifecycle-task-state): a reservation that
  reaches its timeout puts the task back to pending, to be offered again; a task whose
  Timeout (its TTL) passes is canceled.
- Lifecycle of a Task: Timeout evaluation (taskrouter/task-evaluation): a target's timeout
  counts from the task's age, and when it passes the task moves to the next target.
"""

from __future__ import annotations

import json
import math
from datetime import timedelta

import pytest
from flask import jsonify

from taskrouter_sandbox.testing import TaskRouterSandbox
from tests.sandbox.testing.conftest import ENGLISH, SPANISH, answering, create_task, go_idle


def _seconds_since(start, moment) -> float:
    return (moment - start).total_seconds()


def test_advance_120_fires_a_120_second_reservation_timeout(sandbox: TaskRouterSandbox) -> None:
    answering(sandbox, lambda form: jsonify({}), reservation_timeout=120)
    go_idle(sandbox, "Alice")
    task = create_task(sandbox, "es")
    reservations = sandbox.workspace.tasks(task.sid).reservations.list()
    assert [r.reservation_status for r in reservations] == ["pending"]

    sandbox.clock.advance(119)
    assert reservations[0].fetch().reservation_status == "pending"
    sandbox.clock.advance(1)

    reservation = reservations[0].fetch()
    assert reservation.reservation_status == "timeout"
    assert reservation.date_updated == sandbox.clock.now()
    assert sandbox.workspace.tasks(task.sid).fetch().assignment_status == "pending"
    assert "reservation.timeout" in sandbox.event_types


def test_one_advance_fires_each_reservation_timeout_at_its_own_time(
    sandbox: TaskRouterSandbox,
) -> None:
    """Alice's reservation times out at 120 s (she goes to the workspace's timeout activity,
    Offline), the task is offered to Bob at once, and his times out at 240 s."""
    answering(sandbox, lambda form: jsonify({}), reservation_timeout=120)
    go_idle(sandbox, "Alice", "Bob")
    start = sandbox.clock.now()
    task = create_task(sandbox, "en")

    sandbox.clock.advance(300)

    reservations = sorted(
        sandbox.workspace.tasks(task.sid).reservations.list(), key=lambda r: r.date_created
    )
    assert [r.reservation_status for r in reservations] == ["timeout", "timeout"]
    assert [_seconds_since(start, r.date_created) for r in reservations] == [0, 120]
    assert [_seconds_since(start, r.date_updated) for r in reservations] == [120, 240]
    timeouts = [e for e in sandbox.events if e.event_type == "reservation.timeout"]
    assert [_seconds_since(start, e.event_date) for e in timeouts] == [120, 240]
    assert _seconds_since(start, sandbox.clock.now()) == 300
    for worker in ("Alice", "Bob"):
        fetched = sandbox.workspace.workers(sandbox.workers[worker]).fetch()
        assert fetched.activity_name == "Offline"


def test_one_advance_escalates_through_two_target_timeouts(sandbox: TaskRouterSandbox) -> None:
    """No worker is available: the task waits 30 s in its first target's queue, moves to the
    second target's, and 30 s later times out of that one too, with no target left."""
    spanish, english = sandbox.task_queues[SPANISH], sandbox.task_queues[ENGLISH]
    configuration = {
        "task_routing": {
            "filters": [
                {
                    "expression": "1==1",
                    "targets": [
                        {"queue": spanish, "timeout": 30},
                        {"queue": english, "timeout": 30},
                    ],
                }
            ]
        }
    }
    workflow = sandbox.workspace.workflows.create(
        friendly_name="Escalation", configuration=json.dumps(configuration)
    )
    start = sandbox.clock.now()
    task = create_task(sandbox, workflow_sid=workflow.sid)

    sandbox.clock.advance(90)

    moments = [
        (e.event_type, e.event_data.get("task_queue_name"), _seconds_since(start, e.event_date))
        for e in sandbox.events
        if e.event_type in ("task-queue.entered", "task-queue.moved", "workflow.timeout")
    ]
    assert moments == [
        ("task-queue.entered", SPANISH, 0),
        ("task-queue.moved", ENGLISH, 30),
        ("task-queue.entered", ENGLISH, 30),
        ("workflow.timeout", ENGLISH, 60),
    ]
    assert sandbox.workspace.tasks(task.sid).fetch().task_queue_friendly_name == ENGLISH


def test_a_task_whose_ttl_passes_is_canceled(sandbox: TaskRouterSandbox) -> None:
    """Task Timeout: how long a task may live before it is canceled (reason Task TTL
    Exceeded), counted from its creation; no worker is available to take it."""
    start = sandbox.clock.now()
    task = create_task(sandbox, "en", timeout=600)

    sandbox.clock.advance(599)
    assert sandbox.workspace.tasks(task.sid).fetch().assignment_status == "pending"
    sandbox.clock.advance(1)

    fetched = sandbox.workspace.tasks(task.sid).fetch()
    assert fetched.assignment_status == "canceled"
    assert fetched.reason == "Task TTL Exceeded"
    assert _seconds_since(start, fetched.date_updated) == 600
    assert sandbox.event_types[-1] == "task.canceled"


def test_advance_zero_fires_what_is_due_now(sandbox: TaskRouterSandbox) -> None:
    task = create_task(sandbox, "en", timeout=60)
    # The clock moved outside advance(), as a test's own ManualClock could: nothing fires
    # until the sandbox is told.
    sandbox._manual_clock.advance(60)
    assert sandbox.workspace.tasks(task.sid).fetch().assignment_status == "pending"

    moved_to = sandbox.clock.advance(0)

    assert moved_to == sandbox.clock.now()
    assert sandbox.workspace.tasks(task.sid).fetch().assignment_status == "canceled"


def test_advance_returns_the_new_time() -> None:
    with TaskRouterSandbox() as sandbox:
        start = sandbox.clock.now()
        assert sandbox.clock.advance(1.5) == start + timedelta(seconds=1.5)
        assert repr(sandbox.clock).startswith("<SandboxClock ")


@pytest.mark.parametrize(
    ("seconds", "named"),
    [(-1, "-1"), (math.nan, "nan"), (math.inf, "inf"), (-math.inf, "-inf")],
)
def test_advance_refuses_what_is_not_a_move_forward(seconds: float, named: str) -> None:
    with TaskRouterSandbox() as sandbox:
        start = sandbox.clock.now()
        with pytest.raises(ValueError, match="seconds must be a finite number, 0 or more") as e:
            sandbox.clock.advance(seconds)
        assert named in str(e.value)
        assert sandbox.clock.now() == start
