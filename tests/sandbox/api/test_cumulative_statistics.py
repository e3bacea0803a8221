"""Cumulative statistics through the official twilio library: a scripted scenario played with
the ManualClock, every figure asserted to the second, and every bad parameter refused.

Twilio's pages behind these tests: "TaskQueue Statistics" (api/taskqueue-statistics: Minutes
"Defaults to 15 minutes", "Minutes cannot be used in combination with StartDate and EndDate",
TaskChannel takes a unique name or a TaskChannelSid, SplitByWaitTime "5,30" splits "tasks
canceled or accepted before or after" each threshold; wait_duration_until_accepted "based on the
time when the Tasks were created", wait_duration_in_queue_until_accepted on "the time when the
Tasks entered the TaskQueue"), "Workspace Statistics", "Workflow Statistics" and "Worker
Statistics" (the same window; activity_durations: "the minimum, average, maximum, and total
time (in seconds) that Workers spent in each Activity"), and the OpenAPI examples of each
CumulativeStatistics resource (the {avg, min, max, total} objects and the split_by_wait_time
shape {"5": {"above": {...}, "below": {...}}}).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from taskrouter_sandbox.engine.cumulative_statistics import Window, _Scope
from taskrouter_sandbox.store import Store
from tests.sandbox.conftest import Live, assert_error_body, routing, twilio_error

NO_WAIT = {"avg": 0, "min": 0, "max": 0, "total": 0}


class Scenario:
    """One workspace's scripted day; t(n) is n seconds after it began."""

    def __init__(self, live: Live) -> None:
        self.live = live
        self.start = live.clock.now()
        workspace = live.new_workspace("Statistics", multi_task_enabled=False)
        self.workspace_sid = workspace.sid
        self.context = live.v1.workspaces(workspace.sid)
        self.activities = {a.friendly_name: a.sid for a in self.context.activities.list()}
        self.queue = self.context.task_queues.create(friendly_name="Support")
        self.workflow = self.context.workflows.create(
            friendly_name="Support",
            configuration=routing(("1==1", self.queue.sid)),
            task_reservation_timeout=60,
        )
        self.workers = {
            name: self.context.workers.create(friendly_name=name) for name in ("Ann", "Bob", "Cat")
        }

    def at(self, seconds: int) -> None:
        """Move the clock to t(seconds), firing what falls due on the way."""
        target = self.start + timedelta(seconds=seconds)
        self.live.clock.advance((target - self.live.clock.now()).total_seconds())
        self.live.sandbox.engine.fire_due()

    def t(self, seconds: int) -> datetime:
        return self.start + timedelta(seconds=seconds)

    def move(self, name: str, activity: str) -> None:
        self.context.workers(self.workers[name].sid).update(activity_sid=self.activities[activity])

    def task(self) -> Any:
        return self.context.tasks.create(
            workflow_sid=self.workflow.sid, attributes=json.dumps({"type": "support"})
        )

    def pending_reservation(self, task_sid: str) -> Any:
        (reservation,) = self.context.tasks(task_sid).reservations.list(
            reservation_status="pending"
        )
        return reservation

    def play(self) -> None:
        """Ann, Bob and Cat start Offline. A is reserved at 20 s and accepted at 50 s (30 s),
        then completed; B, created at 60 s, is rejected by Ann (to Offline), times out on Bob
        (60 s, to the workspace's timeout activity), is offered to Cat and canceled at 150 s
        (90 s old); C is created at 160 s, offered to Cat, and deleted at 170 s. The figures
        are read at 180 s."""
        self.at(10)
        self.move("Ann", "Available")
        self.at(20)
        task_a = self.task()
        reservation = self.pending_reservation(task_a.sid)
        self.at(50)
        self.context.tasks(task_a.sid).reservations(reservation.sid).update(
            reservation_status="accepted"
        )
        self.at(55)
        self.context.tasks(task_a.sid).update(assignment_status="completed")
        self.at(60)
        self.task_b = self.task()
        reservation = self.pending_reservation(self.task_b.sid)
        assert reservation.worker_sid == self.workers["Ann"].sid
        self.at(70)
        self.context.tasks(self.task_b.sid).reservations(reservation.sid).update(
            reservation_status="rejected", worker_activity_sid=self.activities["Offline"]
        )
        self.at(80)
        self.move("Bob", "Available")
        assert self.pending_reservation(self.task_b.sid).worker_sid == self.workers["Bob"].sid
        self.at(140)  # Bob's reservation times out (the workflow's 60 s): Bob goes Offline.
        self.at(145)
        self.move("Cat", "Available")
        assert self.pending_reservation(self.task_b.sid).worker_sid == self.workers["Cat"].sid
        self.at(150)
        self.context.tasks(self.task_b.sid).update(
            assignment_status="canceled", reason="caller hung up"
        )
        self.at(160)
        task_c = self.task()
        self.at(170)
        self.context.tasks(task_c.sid).delete()
        self.at(180)


@pytest.fixture
def played(live: Live) -> Scenario:
    scenario = Scenario(live)
    scenario.play()
    return scenario


RESERVATIONS = {
    # A to Ann; B to Ann, Bob and Cat; C to Cat (deleted with it, pending).
    "reservations_created": 5,
    "reservations_accepted": 1,
    "reservations_rejected": 1,
    "reservations_timed_out": 1,
    "reservations_canceled": 1,
    "reservations_rescinded": 0,
}


def _reservations(statistics: Any) -> dict[str, int]:
    return {name: getattr(statistics, name) for name in RESERVATIONS}


def test_the_workspace_counts_what_happened_in_the_last_15_minutes(played: Scenario) -> None:
    """Workspace Statistics: cumulative figures default to the last 15 minutes; the wait until
    accepted counts from the task's creation (A: 20 s -> 50 s), until canceled likewise
    (B: 60 s -> 150 s)."""
    statistics = played.context.cumulative_statistics().fetch()
    assert statistics.account_sid == played.live.sandbox.account_sid
    assert statistics.workspace_sid == played.workspace_sid
    assert statistics.url == f"{played.live.base_url}/v1/Workspaces/{played.workspace_sid}" + (
        "/CumulativeStatistics"
    )
    assert statistics.end_time == played.t(180)
    assert statistics.start_time == played.t(180) - timedelta(minutes=15)
    assert (
        statistics.tasks_created,
        statistics.tasks_completed,
        statistics.tasks_canceled,
        statistics.tasks_deleted,
        statistics.tasks_moved,
        statistics.tasks_timed_out_in_workflow,
    ) == (3, 1, 1, 1, 0, 0)
    assert _reservations(statistics) == RESERVATIONS
    assert statistics.avg_task_acceptance_time == 30
    assert statistics.wait_duration_until_accepted == {"avg": 30, "min": 30, "max": 30, "total": 30}
    assert statistics.wait_duration_until_canceled == {"avg": 90, "min": 90, "max": 90, "total": 90}
    assert statistics.split_by_wait_time is None


def test_the_queue_and_the_workflow_count_their_own_tasks(played: Scenario) -> None:
    """TaskQueue Statistics and Workflow Statistics: tasks entered into the queue (or the
    workflow), the wait in the queue until accepted (A entered at 20 s, accepted at 50 s)."""
    queue = played.context.task_queues(played.queue.sid).cumulative_statistics().fetch()
    assert (queue.task_queue_sid, queue.workspace_sid) == (played.queue.sid, played.workspace_sid)
    assert queue.url == f"{played.queue.url}/CumulativeStatistics"
    assert (
        queue.tasks_entered,
        queue.tasks_completed,
        queue.tasks_canceled,
        queue.tasks_deleted,
        queue.tasks_moved,
    ) == (3, 1, 1, 1, 0)
    assert _reservations(queue) == RESERVATIONS
    assert queue.avg_task_acceptance_time == 30
    assert queue.wait_duration_until_accepted == {"avg": 30, "min": 30, "max": 30, "total": 30}
    assert queue.wait_duration_in_queue_until_accepted == {
        "avg": 30,
        "min": 30,
        "max": 30,
        "total": 30,
    }
    assert queue.wait_duration_until_canceled == {"avg": 90, "min": 90, "max": 90, "total": 90}

    flow = played.context.workflows(played.workflow.sid).cumulative_statistics().fetch()
    assert (flow.workflow_sid, flow.url) == (
        played.workflow.sid,
        f"{played.workflow.url}/CumulativeStatistics",
    )
    assert (
        flow.tasks_entered,
        flow.tasks_completed,
        flow.tasks_canceled,
        flow.tasks_deleted,
        flow.tasks_moved,
        flow.tasks_timed_out_in_workflow,
    ) == (3, 1, 1, 1, 0, 0)
    assert _reservations(flow) == RESERVATIONS
    assert flow.wait_duration_until_canceled["total"] == 90


def test_split_by_wait_time_counts_each_side_of_each_threshold(played: Scenario) -> None:
    """TaskQueue Statistics, SplitByWaitTime "5,30": tasks canceled and reservations accepted
    before or after each threshold (A accepted after 30 s, B canceled after 90 s; a wait equal
    to the threshold is within it)."""
    statistics = (
        played.context.task_queues(played.queue.sid)
        .cumulative_statistics()
        .fetch(split_by_wait_time="100,20,30")
    )

    def side(canceled: int, accepted: int) -> dict[str, int]:
        return {"tasks_canceled": canceled, "reservations_accepted": accepted}

    assert statistics.split_by_wait_time == {
        "20": {"above": side(1, 1), "below": side(0, 0)},
        "30": {"above": side(1, 0), "below": side(0, 1)},
        "100": {"above": side(0, 0), "below": side(1, 1)},
    }


def test_start_and_end_date_cut_the_window(played: Scenario) -> None:
    """Workspace Statistics, StartDate and EndDate: only what happened between them, both
    included (B created at 60 s, its reservations at 60 s and 80 s, Ann's rejection at 70 s)."""
    statistics = played.context.cumulative_statistics().fetch(
        start_date=played.t(60), end_date=played.t(100)
    )
    assert (statistics.start_time, statistics.end_time) == (played.t(60), played.t(100))
    assert (statistics.tasks_created, statistics.tasks_completed) == (1, 0)
    assert _reservations(statistics) == {
        **dict.fromkeys(RESERVATIONS, 0),
        "reservations_created": 2,
        "reservations_rejected": 1,
    }
    assert statistics.wait_duration_until_accepted == NO_WAIT

    later = played.context.cumulative_statistics().fetch(start_date=played.t(100))
    assert (later.start_time, later.end_time) == (played.t(100), played.t(180))
    assert (later.tasks_created, later.tasks_canceled, later.tasks_deleted) == (1, 1, 1)
    assert (later.reservations_created, later.reservations_timed_out) == (2, 1)

    recent = played.context.cumulative_statistics().fetch(minutes=1)
    assert recent.start_time == played.t(120)
    assert (recent.tasks_created, recent.tasks_canceled, recent.tasks_deleted) == (1, 1, 1)


def test_task_channel_keeps_to_one_channel(played: Scenario) -> None:
    """TaskQueue Statistics, TaskChannel: a unique name or a TaskChannelSid; the scenario's
    tasks are on the default channel."""
    queue = played.context.task_queues(played.queue.sid).cumulative_statistics()
    assert queue.fetch(task_channel="voice").tasks_entered == 0
    assert queue.fetch(task_channel="default").tasks_entered == 3
    (default,) = [c for c in played.context.task_channels.list() if c.unique_name == "default"]
    assert queue.fetch(task_channel=default.sid).reservations_created == 5


def _durations(statistics: Any) -> dict[str, dict[str, int]]:
    found = {}
    for item in statistics:
        assert set(item) == {"sid", "friendly_name", "avg", "min", "max", "total"}
        found[item["friendly_name"]] = {k: item[k] for k in ("avg", "min", "max", "total")}
    return found


def test_workers_time_in_each_activity(played: Scenario) -> None:
    """Workers Statistics, activity_durations: per Activity the minimum, average, maximum and
    total seconds of the workers' stays in it within the window. Offline: Ann 0-10 s and
    70-180 s, Bob 0-80 s and 140-180 s (his timeout), Cat 0-145 s; Available: Ann 10-70 s,
    Bob 80-140 s, Cat 145-180 s."""
    statistics = played.context.workers.cumulative_statistics().fetch()
    assert statistics.workspace_sid == played.workspace_sid
    assert statistics.url == f"{played.live.base_url}/v1/Workspaces/{played.workspace_sid}" + (
        "/Workers/CumulativeStatistics"
    )
    assert (statistics.start_time, statistics.end_time) == (
        played.t(180) - timedelta(minutes=15),
        played.t(180),
    )
    assert _reservations(statistics) == RESERVATIONS
    assert [item["sid"] for item in statistics.activity_durations] == list(
        played.activities.values()
    )
    assert _durations(statistics.activity_durations) == {
        "Offline": {"avg": 77, "min": 10, "max": 145, "total": 385},
        "Available": {"avg": 51, "min": 35, "max": 60, "total": 155},
        "Unavailable": NO_WAIT,
    }
    window = played.context.workers.cumulative_statistics().fetch(
        start_date=played.t(60), end_date=played.t(100)
    )
    assert _durations(window.activity_durations) == {
        "Offline": {"avg": 30, "min": 20, "max": 40, "total": 90},
        "Available": {"avg": 15, "min": 10, "max": 20, "total": 30},
        "Unavailable": NO_WAIT,
    }


def test_one_workers_statistics(played: Scenario) -> None:
    """Worker Statistics (/Workers/{sid}/Statistics): one worker's cumulative reservations and
    activity durations. Bob: Offline 0-80 s and 140-180 s, Available 80-140 s, one
    reservation that timed out."""
    bob = played.workers["Bob"]
    statistics = played.context.workers(bob.sid).statistics().fetch()
    assert (statistics.worker_sid, statistics.workspace_sid) == (bob.sid, played.workspace_sid)
    assert statistics.url == f"{bob.url}/Statistics"
    cumulative = statistics.cumulative
    assert cumulative["reservations_created"] == 1
    assert cumulative["reservations_timed_out"] == 1
    assert cumulative["reservations_accepted"] == cumulative["reservations_rejected"] == 0
    assert _durations(cumulative["activity_durations"]) == {
        "Offline": {"avg": 60, "min": 40, "max": 80, "total": 120},
        "Available": {"avg": 60, "min": 60, "max": 60, "total": 60},
        "Unavailable": NO_WAIT,
    }
    start = played.t(180) - timedelta(minutes=15)
    assert cumulative["start_time"] == start.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert cumulative["end_time"] == played.t(180).strftime("%Y-%m-%dT%H:%M:%SZ")
    ann = played.context.workers(played.workers["Ann"].sid).statistics().fetch(minutes=15)
    assert ann.cumulative["reservations_created"] == 2
    assert ann.cumulative["reservations_accepted"] == ann.cumulative["reservations_rejected"] == 1


# -- bad parameters -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "query, named",
    [
        ("Minutes=0", "Minutes"),
        ("Minutes=43201", "Minutes"),
        ("Minutes=soon", "Minutes"),
        ("Minutes=5&StartDate=2024-01-01T09:00:00Z", "Minutes"),
        ("Minutes=5&EndDate=2024-01-01T09:00:00Z", "Minutes"),
        ("StartDate=yesterday", "StartDate"),
        ("EndDate=2024-13-01T00:00:00Z", "EndDate"),
        ("StartDate=2024-01-02T00:00:00Z&EndDate=2024-01-01T00:00:00Z", "StartDate"),
        ("TaskChannel=fax", "TaskChannel"),
        ("TaskChannel=TC00000000000000000000000000000000", "TaskChannel"),
        ("SplitByWaitTime=5,soon", "SplitByWaitTime"),
        ("SplitByWaitTime=-5", "SplitByWaitTime"),
        ("SplitByWaitTime=9223372036854775808", "SplitByWaitTime"),
        ("SplitByWaitTime=" + "9" * 5000, "SplitByWaitTime"),
        ("SplitByWaitTime=2592001", "SplitByWaitTime"),
        ("EndDate=0001-01-01T00:00:00Z", "EndDate"),
        ("StartDate=2999-01-01T00:00:00Z", "StartDate"),
        ("SplitByWaitTime=", "SplitByWaitTime"),
    ],
)
def test_bad_parameters_are_400s_naming_them(live: Live, query: str, named: str) -> None:
    """Every statistics resource refuses a bad window, channel or split in Twilio's shape."""
    workspace = live.new_workspace()
    queue = live.v1.workspaces(workspace.sid).task_queues.create(friendly_name="Q")
    paths = [
        f"/v1/Workspaces/{workspace.sid}/CumulativeStatistics",
        f"/v1/Workspaces/{workspace.sid}/TaskQueues/{queue.sid}/CumulativeStatistics",
    ]
    if not query.startswith("SplitByWaitTime"):
        paths.append(f"/v1/Workspaces/{workspace.sid}/Workers/CumulativeStatistics")
    for path in paths:
        body = assert_error_body(live.http("GET", f"{path}?{query}"), 400, 20001)
        assert named in body["message"], body


def test_bad_parameters_through_the_library(live: Live) -> None:
    """The twilio library sees the same 400 (TwilioRestException naming the parameter)."""
    context = live.v1.workspaces(live.new_workspace().sid)
    with twilio_error(400, 20001, "Minutes"):
        context.cumulative_statistics().fetch(minutes=5, start_date=datetime(2024, 1, 1))
    with twilio_error(400, 20001, "TaskChannel"):
        context.workers.cumulative_statistics().fetch(task_channel="fax")


def test_unknown_resources_are_404s(live: Live) -> None:
    """A queue, workflow or worker that is not in the workspace: Twilio's 404."""
    context = live.v1.workspaces(live.new_workspace().sid)
    with twilio_error(404, 20404):
        context.task_queues("WQ" + "0" * 32).cumulative_statistics().fetch()
    with twilio_error(404, 20404):
        context.workflows("WW" + "0" * 32).cumulative_statistics().fetch()
    with twilio_error(404, 20404):
        context.workers("WK" + "0" * 32).statistics().fetch()
    with twilio_error(404, 20404):
        live.v1.workspaces("WS" + "0" * 32).cumulative_statistics().fetch()


# -- the combined Statistics ----------------------------------------------------------------


def test_the_combined_statistics_hold_cumulative_and_realtime(played: Scenario) -> None:
    """Workspace, TaskQueue and Workflow Statistics: `cumulative` as the CumulativeStatistics
    resource answers it over the same window, `realtime` as RealTimeStatistics does now (the
    scenario leaves no active task; of its three workers only Cat is Available)."""
    context, base = played.context, f"{played.live.base_url}/v1/Workspaces/{played.workspace_sid}"
    workspace = context.statistics().fetch(minutes=10)
    assert (workspace.workspace_sid, workspace.url) == (played.workspace_sid, f"{base}/Statistics")
    assert workspace.account_sid == played.live.sandbox.account_sid
    assert workspace.cumulative["tasks_created"] == 3
    alone = played.live.http(
        "GET", f"/v1/Workspaces/{played.workspace_sid}/CumulativeStatistics?Minutes=10"
    ).json()
    assert workspace.cumulative == {
        k: v for k, v in alone.items() if k not in ("account_sid", "url")
    }
    assert workspace.realtime["total_tasks"] == 0
    assert workspace.realtime["total_workers"] == 3

    queue = context.task_queues(played.queue.sid).statistics().fetch(split_by_wait_time="30")
    assert (queue.task_queue_sid, queue.url) == (played.queue.sid, f"{played.queue.url}/Statistics")
    assert queue.cumulative["tasks_entered"] == 3
    assert queue.cumulative["split_by_wait_time"]["30"]["below"]["reservations_accepted"] == 1
    assert queue.realtime["total_eligible_workers"] == 3
    assert queue.realtime["total_available_workers"] == 1

    flow = context.workflows(played.workflow.sid).statistics().fetch()
    assert (flow.workflow_sid, flow.url) == (
        played.workflow.sid,
        f"{played.workflow.url}/Statistics",
    )
    assert flow.cumulative["tasks_entered"] == 3
    assert flow.cumulative["wait_duration_until_canceled"]["max"] == 90
    assert flow.realtime["total_tasks"] == 0


def test_the_task_queues_statistics_list(played: Scenario) -> None:
    """TaskQueue Statistics, the list: each queue's cumulative and realtime figures, paged,
    FriendlyName filtering it as the TaskQueues list does."""
    other = played.context.task_queues.create(friendly_name="Sales")
    listed = played.context.task_queues.statistics.list(page_size=1)
    assert [entry.task_queue_sid for entry in listed] == [played.queue.sid, other.sid]
    assert [entry.cumulative["tasks_entered"] for entry in listed] == [3, 0]
    assert all(entry.workspace_sid == played.workspace_sid for entry in listed)
    (sales,) = played.context.task_queues.statistics.list(friendly_name="Sales")
    assert sales.task_queue_sid == other.sid
    assert sales.realtime["total_eligible_workers"] == 3


def test_the_workers_statistics(played: Scenario) -> None:
    """Workers Statistics: `cumulative` as Workers CumulativeStatistics, `realtime` the
    workers' activity statistics; FriendlyName ("Only include Workers with friendly_name
    values that match"), TaskQueueSid and TaskQueueName pick the workers of both. Ann:
    Offline 0-10 s and 70-180 s, two reservations."""
    statistics = played.context.workers.statistics().fetch()
    assert statistics.url == (
        f"{played.live.base_url}/v1/Workspaces/{played.workspace_sid}/Workers/Statistics"
    )
    assert statistics.cumulative["reservations_created"] == 5
    assert _durations(statistics.cumulative["activity_durations"])["Available"]["total"] == 155
    assert statistics.realtime["total_workers"] == 3
    ann = played.context.workers.statistics().fetch(friendly_name="ann")
    assert ann.realtime["total_workers"] == 1
    assert ann.cumulative["reservations_created"] == 2
    assert _durations(ann.cumulative["activity_durations"])["Offline"] == {
        "avg": 60,
        "min": 10,
        "max": 110,
        "total": 120,
    }
    members = played.context.workers.statistics().fetch(task_queue_name="Support")
    assert members.cumulative == statistics.cumulative
    by_sid = played.context.workers.statistics().fetch(task_queue_sid=played.queue.sid)
    assert by_sid.realtime["total_workers"] == 3
    assert by_sid.cumulative["reservations_created"] == 5
    with twilio_error(400, 20001, "TaskQueueName"):
        played.context.workers.statistics().fetch(task_queue_name="Nobody")


@pytest.mark.parametrize(
    "column, index",
    [
        (None, "events_type_waits"),
        ("task_queue_sid", "events_queue_type_waits"),
        ("workflow_sid", "events_workflow_type_waits"),
        ("worker_sid", "events_worker_type_date"),
    ],
)
def test_the_counts_read_only_their_index(column: str | None, index: str) -> None:
    """The issue's cost rule: a cumulative call grows with the window's events of the scope,
    not the history; each scope's counts are a covering search of its index."""
    store = Store(":memory:")
    moment = datetime(2024, 1, 1, tzinfo=UTC)
    span = Window(moment, moment + timedelta(minutes=15), "voice", None)
    scope = _Scope("WS" + "0" * 32, column, None if column is None else "XX" + "0" * 32)
    where, params = scope.where(span, ("task.created", "reservation.accepted"))
    with store.read() as tx:
        plan = tx.all(
            "EXPLAIN QUERY PLAN SELECT event_type, count(*) FROM events"
            f"{where} GROUP BY event_type",
            params,
        )
    store.close()
    assert plan[0]["detail"].startswith(f"SEARCH events USING COVERING INDEX {index} ")


def test_moves_and_workflow_timeouts_are_counted(live: Live) -> None:
    """Workflow Statistics: tasks_moved ("moved from one queue to another") and
    tasks_timed_out_in_workflow ("timed out of their Workflows"). A task nobody takes enters
    Q1 at 0 s, moves to Q2 at 30 s (Q1's timeout) and times out of the workflow at 60 s."""
    context = live.v1.workspaces(live.new_workspace("Escalation").sid)
    first = context.task_queues.create(friendly_name="Q1")
    second = context.task_queues.create(friendly_name="Q2")
    configuration = {
        "task_routing": {
            "filters": [
                {
                    "filter_friendly_name": "all",
                    "expression": "1==1",
                    "targets": [
                        {"queue": first.sid, "timeout": 30},
                        {"queue": second.sid, "timeout": 30},
                    ],
                }
            ]
        }
    }
    flow = context.workflows.create(friendly_name="Up", configuration=json.dumps(configuration))
    context.tasks.create(workflow_sid=flow.sid, attributes="{}")
    for _ in range(2):
        live.clock.advance(30)
        live.sandbox.engine.fire_due()

    workflow = context.workflows(flow.sid).cumulative_statistics().fetch()
    assert (workflow.tasks_entered, workflow.tasks_moved) == (1, 1)
    assert (workflow.tasks_timed_out_in_workflow, workflow.tasks_canceled) == (1, 1)
    assert workflow.wait_duration_until_canceled == {"avg": 60, "min": 60, "max": 60, "total": 60}
    workspace = context.cumulative_statistics().fetch()
    assert (workspace.tasks_moved, workspace.tasks_timed_out_in_workflow) == (1, 1)
    one = context.task_queues(first.sid).cumulative_statistics().fetch()
    two = context.task_queues(second.sid).cumulative_statistics().fetch()
    assert (one.tasks_entered, one.tasks_moved, one.tasks_canceled) == (1, 0, 0)
    assert (two.tasks_entered, two.tasks_moved, two.tasks_canceled) == (1, 1, 1)


def test_a_reservation_rescinded_when_another_is_accepted(live: Live) -> None:
    """TaskQueue resource, MaxReservedWorkers: a task offered to two workers at once; when
    one accepts, the other's reservation is rescinded and counted so."""
    context = live.v1.workspaces(live.new_workspace("Rescind", multi_task_enabled=False).sid)
    (available,) = context.activities.list(friendly_name="Available")
    queue = context.task_queues.create(friendly_name="Both", max_reserved_workers=2)
    flow = context.workflows.create(
        friendly_name="Both", configuration=routing(("1==1", queue.sid))
    )
    for name in ("Ann", "Bob"):
        context.workers.create(friendly_name=name, activity_sid=available.sid)
    task = context.tasks.create(workflow_sid=flow.sid, attributes="{}")
    first, _second = context.tasks(task.sid).reservations.list()
    live.clock.advance(12)
    context.tasks(task.sid).reservations(first.sid).update(reservation_status="accepted")

    statistics = context.task_queues(queue.sid).cumulative_statistics().fetch()
    assert (statistics.reservations_created, statistics.reservations_accepted) == (2, 1)
    assert statistics.reservations_rescinded == 1
    assert statistics.wait_duration_until_accepted == {"avg": 12, "min": 12, "max": 12, "total": 12}
    workers = context.workers.cumulative_statistics().fetch()
    assert (workers.reservations_created, workers.reservations_rescinded) == (2, 1)
