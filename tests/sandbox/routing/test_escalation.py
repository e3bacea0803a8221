"""Escalation through a workflow's targets, through the twilio library on a live sandbox.

Target timeouts are counted in turn along the walk, skip_if is evaluated only when no
reservation is made as a task enters a target, a filter whose targets are all skipped counts
as not matched, and every skip records workflow.skipped. Time moves by the ManualClock only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from taskrouter_sandbox.domain.lifecycle import SKIPPED_REASON, TARGET_TIMEOUT_REASON
from tests.sandbox.conftest import Live, live_sandbox


@pytest.fixture
def fresh() -> Iterator[Live]:
    """A sandbox of its own: these tests move the clock a lot."""
    with live_sandbox() as running:
        yield running


@dataclass
class Floor:
    """A single-tasking workspace with queues Q1..Q4, each selecting its team's workers."""

    live: Live
    sid: str
    context: Any
    activities: dict[str, str]
    queues: dict[str, str]
    workflow_sid: str | None = None

    def workflow(self, filters: list[dict[str, Any]], default: str | None = None, **kw: Any) -> str:
        routing: dict[str, Any] = {"filters": filters}
        if default is not None:
            routing["default_filter"] = {"queue": self.queues[default]}
        flow = self.context.workflows.create(
            friendly_name="Escalation", configuration=json.dumps({"task_routing": routing}), **kw
        )
        self.workflow_sid = flow.sid
        return flow.sid

    def walk(self, *targets: dict[str, Any], **kw: Any) -> str:
        """A workflow of one filter matching every task, with these targets."""
        return self.workflow([{"expression": "1==1", "targets": list(targets)}], **kw)

    def target(self, queue: str, **options: Any) -> dict[str, Any]:
        return {"queue": self.queues[queue], **options}

    def worker(self, name: str, team: str, activity: str = "Offline") -> str:
        return self.context.workers.create(
            friendly_name=name,
            activity_sid=self.activities[activity],
            attributes=json.dumps({"team": team}),
        ).sid

    def task(self, attributes: dict[str, Any] | None = None) -> str:
        return self.context.tasks.create(
            attributes=json.dumps(attributes or {}), workflow_sid=self.workflow_sid
        ).sid

    def queue_of(self, task_sid: str) -> str | None:
        """The name of the queue the task sits in."""
        names = {sid: name for name, sid in self.queues.items()}
        return names.get(self.context.tasks(task_sid).fetch().task_queue_sid)

    def advance_to(self, seconds: float) -> None:
        """Move the clock to `seconds` after the floor was built and fire what is due."""
        self.live.clock.advance(seconds - self.elapsed)
        self.elapsed = seconds
        self.live.sandbox.engine.fire_due()

    def events(self, task_sid: str, event_type: str | None = None) -> list[Any]:
        """The task's events, oldest first."""
        options: dict[str, Any] = {"task_sid": task_sid}
        if event_type is not None:
            options["event_type"] = event_type
        return list(reversed(self.context.events.list(**options)))

    def event_types(self, task_sid: str) -> list[str]:
        return [event.event_type for event in self.events(task_sid)]

    elapsed: float = 0


def _floor(live: Live) -> Floor:
    sid = live.new_workspace("Escalation", multi_task_enabled=False).sid
    context = live.v1.workspaces(sid)
    activities = {a.friendly_name: a.sid for a in context.activities.list()}
    queues = {
        name: context.task_queues.create(
            friendly_name=name, target_workers=f"team == '{name.lower()}'"
        ).sid
        for name in ("Q1", "Q2", "Q3", "Q4")
    }
    return Floor(live, sid, context, activities, queues)


def test_each_target_waits_its_own_timeout_in_turn(fresh: Live) -> None:
    """Lifecycle of a Task: Workflows and Assignment: "A Task will wait in each step for the
    defined timeout ... If the Task hits the step timeout, it will move to the next step."
    So {Q1, 2 s}, {Q2, 2 s}, {Q3} reaches Q2 at 2 s and Q3 at 4 s, never skipping Q2."""
    floor = _floor(fresh)
    floor.workflow(
        [
            {
                "filter_friendly_name": "Escalate",
                "expression": "1==1",
                "targets": [
                    floor.target("Q1", timeout=2),
                    floor.target("Q2", timeout=2),
                    floor.target("Q3"),
                ],
            }
        ]
    )
    task_sid = floor.task()
    assert floor.queue_of(task_sid) == "Q1"
    floor.advance_to(1.9)
    assert floor.queue_of(task_sid) == "Q1"
    floor.advance_to(2)
    assert floor.queue_of(task_sid) == "Q2"
    floor.advance_to(3.9)
    assert floor.queue_of(task_sid) == "Q2"
    floor.advance_to(4)
    assert floor.queue_of(task_sid) == "Q3"
    floor.advance_to(100)
    task = floor.context.tasks(task_sid).fetch()
    assert task.assignment_status == "pending" and floor.queue_of(task_sid) == "Q3"
    matched = floor.events(task_sid, "workflow.target-matched")
    assert [e.event_data["task_queue_sid"] for e in matched] == [
        floor.queues["Q1"],
        floor.queues["Q2"],
        floor.queues["Q3"],
    ]
    assert "workflow.timeout" not in floor.event_types(task_sid)


def test_timeout_evaluation_example_with_a_reservation_timing_out(fresh: Live) -> None:
    """The Timeout Evaluation page's workflow: targets Q1, Q2, Q3 of 10 s each, a 5 s
    reservation timeout, a reservation made at t=3 times out at t=8. Its deadlines: "the
    Queue timeout is now the sum of Q1 and Q2 timeouts: 20 ... based on the current age of
    the Task", so Q2 ends at age 20 and Q3 at 30, where passing the final step fires
    workflow.timeout and cancels the task (Workflows and Assignment). Where the page's
    animation maps the task to Q2 at t=8, the sandbox keeps it in Q1 until Q1's deadline: a
    task waits in a step until matched or until its timeout moves it on (Workflows and
    Assignment), a choice the README's differs section records."""
    floor = _floor(fresh)
    floor.walk(
        floor.target("Q1", timeout=10),
        floor.target("Q2", timeout=10),
        floor.target("Q3", timeout=10),
        task_reservation_timeout=5,
    )
    ann = floor.worker("Ann", "q1")
    task_sid = floor.task()
    floor.advance_to(3)
    floor.context.workers(ann).update(activity_sid=floor.activities["Available"])
    (reservation,) = floor.context.tasks(task_sid).reservations.list()
    assert reservation.worker_sid == ann
    floor.advance_to(8)
    assert floor.context.tasks(task_sid).reservations(
        reservation.sid
    ).fetch().reservation_status == ("timeout")
    task = floor.context.tasks(task_sid).fetch()
    assert task.assignment_status == "pending" and floor.queue_of(task_sid) == "Q1"
    floor.advance_to(10)
    assert floor.queue_of(task_sid) == "Q2"
    floor.advance_to(19.9)
    assert floor.queue_of(task_sid) == "Q2"
    floor.advance_to(20)
    assert floor.queue_of(task_sid) == "Q3"
    floor.advance_to(29.9)
    assert floor.context.tasks(task_sid).fetch().assignment_status == "pending"
    floor.advance_to(30)
    task = floor.context.tasks(task_sid).fetch()
    assert task.assignment_status == "canceled"
    assert task.reason == TARGET_TIMEOUT_REASON
    assert floor.event_types(task_sid)[-2:] == ["workflow.timeout", "task.canceled"]


def test_a_target_passed_while_reserved_is_left_in_turn(fresh: Live) -> None:
    """A task reserved past its targets' deadlines (Timeout Evaluation: deadlines on the
    task's age, 2 s and 2 + 2 s) goes on, once the reservation ends, to the first target whose
    deadline is still ahead."""
    floor = _floor(fresh)
    floor.walk(
        floor.target("Q1", timeout=2),
        floor.target("Q2", timeout=2),
        floor.target("Q3", timeout=10),
        task_reservation_timeout=5,
    )
    floor.worker("Ann", "q1", "Available")
    task_sid = floor.task()
    assert floor.context.tasks(task_sid).fetch().assignment_status == "reserved"
    floor.advance_to(5)  # the reservation times out; Q1 ended at 2, Q2 at 4
    assert floor.queue_of(task_sid) == "Q3"
    floor.advance_to(13.9)
    assert floor.queue_of(task_sid) == "Q3"
    floor.advance_to(14)  # Q3's 10 s count from Q2's deadline
    assert floor.context.tasks(task_sid).fetch().assignment_status == "canceled"


def test_skip_if_is_not_evaluated_when_a_reservation_is_made_at_once(fresh: Live) -> None:
    """Skipping based on Worker availability: "Skip Timeout will only be evaluated if a Task
    cannot be assigned to a Worker immediately": skip_if 1==1 skips only the task nobody
    could take, and that skip records workflow.skipped."""
    floor = _floor(fresh)
    floor.workflow(
        [
            {
                "expression": "1==1",
                "targets": [floor.target("Q1", skip_if="1==1"), floor.target("Q2")],
            }
        ]
    )
    floor.worker("Ann", "q1", "Available")
    taken = floor.task()
    assert floor.queue_of(taken) == "Q1"
    assert floor.context.tasks(taken).fetch().assignment_status == "reserved"
    assert floor.events(taken, "workflow.skipped") == []

    waiting = floor.task()  # Ann holds the first task's offer
    assert floor.queue_of(waiting) == "Q2"
    assert len(floor.events(waiting, "workflow.skipped")) == 1


@pytest.mark.parametrize(
    ("skip_if", "skipped"),
    [
        ("workers.available == 0", False),  # Ann is available, though the target refuses her
        ("workers.available == 1", True),
        ("workers.unavailable == 2", True),  # Bob and Cy are Offline
        ("workers.unavailable == 3", False),
        ("workers.{Offline} == 2", True),
        ("workers.{Offline} < 2", False),
        ("workers.{Available} == 1 AND workers.{Unavailable} == 0", True),
    ],
)
def test_skip_if_counts_the_queues_workers_by_activity(
    fresh: Live, skip_if: str, skipped: bool
) -> None:
    """Skipping based on Worker availability: workers.available and workers.unavailable
    count the target queue's workers in an Available or Unavailable activity, workers.WAxx
    those in activity WAxx; the step is skipped when the expression is true."""
    floor = _floor(fresh)
    expression = skip_if.format(**floor.activities)
    floor.workflow(
        [
            {
                "expression": "1==1",
                "targets": [
                    floor.target("Q1", expression="worker.team == 'nobody'", skip_if=expression),
                    floor.target("Q2"),
                ],
            }
        ]
    )
    floor.worker("Ann", "q1", "Available")
    floor.worker("Bob", "q1")
    floor.worker("Cy", "q1")
    floor.worker("Di", "q2")  # another queue's worker counts for nothing here
    task_sid = floor.task()
    assert floor.queue_of(task_sid) == ("Q2" if skipped else "Q1")


def test_skipping_every_target_of_a_filter_counts_as_not_matching_it(fresh: Live) -> None:
    """Skipping based on Worker availability: "If a Task skips a filter, it will be evaluated
    as if the Task didn't match the filter expression ... Tasks that skip a named filter still
    qualify for the default_filter": the next matching filter, then default_filter."""
    floor = _floor(fresh)
    floor.workflow(
        [
            {
                "filter_friendly_name": "First",
                "expression": "1==1",
                "targets": [floor.target("Q1", skip_if="workers.available == 0")],
            },
            {
                "filter_friendly_name": "Not matched",
                "expression": "kind == 'other'",
                "targets": [floor.target("Q4")],
            },
            {
                "filter_friendly_name": "Second",
                "expression": "1==1",
                "targets": [floor.target("Q2", skip_if="workers.available == 0")],
            },
        ],
        default="Q3",
    )
    task_sid = floor.task()
    assert floor.queue_of(task_sid) == "Q3"
    skips = floor.events(task_sid, "workflow.skipped")
    assert [e.event_data["workflow_filter_name"] for e in skips] == ["First", "Second"]

    # A worker of the second filter's queue: the task skips only the first filter.
    floor.worker("Bea", "q2", "Available")
    second = floor.task()
    assert floor.queue_of(second) == "Q2"
    assert floor.context.tasks(second).fetch().assignment_status == "reserved"


def test_a_task_that_skips_every_filter_without_default_filter_is_canceled(fresh: Live) -> None:
    """As if it matched no filter (Skipping based on Worker availability), with no
    default_filter to fall to: the task is canceled, naming the skips in its reason."""
    floor = _floor(fresh)
    floor.workflow(
        [{"expression": "1==1", "targets": [floor.target("Q1", skip_if="1==1")]}],
    )
    task_sid = floor.task()
    task = floor.context.tasks(task_sid).fetch()
    assert task.assignment_status == "canceled" and task.reason == SKIPPED_REASON
    types = floor.event_types(task_sid)
    assert "workflow.skipped" in types and "workflow.timeout" not in types


def test_a_target_reached_by_a_skip_counts_its_timeout_from_the_skip(fresh: Live) -> None:
    """Q1 times out at 2 s, Q2 is skipped at once (nobody there, skip_if true), so Q3's own
    2 s run from 2 s to 4 s before Q4 (the task waits in each step for its timeout)."""
    floor = _floor(fresh)
    floor.workflow(
        [
            {
                "expression": "1==1",
                "targets": [
                    floor.target("Q1", timeout=2),
                    floor.target("Q2", timeout=30, skip_if="workers.available == 0"),
                    floor.target("Q3", timeout=2),
                    floor.target("Q4"),
                ],
            }
        ]
    )
    task_sid = floor.task()
    floor.advance_to(2)
    assert floor.queue_of(task_sid) == "Q3"
    floor.advance_to(3.9)
    assert floor.queue_of(task_sid) == "Q3"
    floor.advance_to(4)
    assert floor.queue_of(task_sid) == "Q4"


def test_an_attribute_update_restarts_the_walk(fresh: Live) -> None:
    """An attribute update routes a pending task through its workflow again ("A Workflow
    evaluates linearly from top to bottom", Lifecycle of a Task: Workflows and Assignment),
    and each step then waits its own timeout in turn from the update (the README's choice
    for where a new walk's timeouts start)."""
    floor = _floor(fresh)
    floor.workflow(
        [
            {
                "expression": "1==1",
                "targets": [
                    floor.target("Q1", timeout=2),
                    floor.target("Q2", timeout=2),
                    floor.target("Q3"),
                ],
            }
        ]
    )
    task_sid = floor.task()
    floor.advance_to(3)
    assert floor.queue_of(task_sid) == "Q2"
    floor.context.tasks(task_sid).update(attributes='{"updated": true}')
    assert floor.queue_of(task_sid) == "Q1"
    floor.advance_to(4.9)
    assert floor.queue_of(task_sid) == "Q1"
    floor.advance_to(5)
    assert floor.queue_of(task_sid) == "Q2"
    floor.advance_to(7)
    assert floor.queue_of(task_sid) == "Q3"


def test_re_evaluating_tasks_restarts_their_walk(fresh: Live) -> None:
    """Workflow resource, ReEvaluateTasks (OpenAPI: without it "Tasks in the Workflow will not
    be processed through the assignment loop again"): with it the pending task walks the new
    configuration from its first target, whose timeout counts from the update."""
    floor = _floor(fresh)
    flow = floor.workflow(
        [
            {
                "expression": "1==1",
                "targets": [floor.target("Q1", timeout=2), floor.target("Q2")],
            }
        ]
    )
    task_sid = floor.task()
    floor.advance_to(3)
    assert floor.queue_of(task_sid) == "Q2"
    configuration = {
        "task_routing": {
            "filters": [
                {
                    "expression": "1==1",
                    "targets": [floor.target("Q3", timeout=2), floor.target("Q4")],
                }
            ]
        }
    }
    floor.context.workflows(flow).update(
        configuration=json.dumps(configuration), re_evaluate_tasks="true"
    )
    assert floor.queue_of(task_sid) == "Q3"
    floor.advance_to(4.9)
    assert floor.queue_of(task_sid) == "Q3"
    floor.advance_to(5)
    assert floor.queue_of(task_sid) == "Q4"


def test_workflow_skipped_event_fields(fresh: Live) -> None:
    """TaskRouter Events: workflow.skipped is a task event of the workflow, carrying the task,
    its workflow and the skipped target's queue and filter."""
    floor = _floor(fresh)
    flow = floor.workflow(
        [
            {
                "filter_friendly_name": "Experts first",
                "expression": "kind == 'question'",
                "targets": [
                    floor.target("Q1", expression="worker.team == 'q1'", skip_if="1==1"),
                    floor.target("Q2"),
                ],
            }
        ]
    )
    task_sid = floor.task({"kind": "question"})
    (skipped,) = floor.events(task_sid, "workflow.skipped")
    assert skipped.resource_type == "task" and skipped.resource_sid == task_sid
    assert skipped.actor_type == "workspace" and skipped.actor_sid == floor.sid
    data = skipped.event_data
    assert data["task_sid"] == task_sid
    assert data["workflow_sid"] == flow and data["workflow_name"] == "Escalation"
    assert data["task_queue_sid"] == floor.queues["Q1"]
    assert data["task_queue_name"] == "Q1"
    assert data["workflow_filter_name"] == "Experts first"
    assert data["workflow_filter_expression"] == "kind == 'question'"
    assert data["workflow_filter_target_expression"] == "worker.team == 'q1'"
    assert data["task_attributes"] == '{"kind": "question"}'
    # The skip comes after the task entered the step, and before it matched the next one.
    types = floor.event_types(task_sid)
    at = types.index("workflow.skipped")
    assert types[at - 1] == "task-queue.entered"
    assert types[at + 1] == "workflow.target-matched"
