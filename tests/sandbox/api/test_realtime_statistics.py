"""RealTimeStatistics through the official twilio library: the workspace, a task queue (one,
and up to 50 in bulk), a workflow and the workers, for a scripted day of tasks and workers.

Twilio's pages behind these tests:
- "REST API: Workspace Statistics" (Workspace RealTime Statistics): LongestTaskWaitingSid and
  Age, TotalTasks, TotalWorkers ("in the workspace"), TasksByStatus, ActivityStatistics ("a
  breakdown of Workers by Activity"), and TaskChannel: "Filter real-time statistics by
  TaskChannel. Takes in a Unique Name ... or a TaskChannelSid".
- "REST API: TaskQueue Statistics" (TaskQueue RealTime Statistics): total_eligible_workers
  "eligible for Tasks in the TaskQueue, independent of their Activity state",
  total_available_workers "with an `available` status ... may already have active
  interactions", longest_relative_task_age_in_queue "based on the time when the Task entered
  the TaskQueue"; and "Bulk retrieval of TaskQueue RealTime Statistics": POST QueueSids, "less
  than 1 or exceeds 50" is a 400, "invalid TaskQueueSIDs" a 400, SIDs "not part of this
  account ... with zero values for all statistics".
- "Workflow Statistics Resource" (realtime: longest waiting task, tasks_by_status, total_tasks)
  and "Worker Statistics Resource" (Workers RealTime Statistics: activity_statistics,
  total_workers, TaskChannel).
The OpenAPI examples show tasks_by_status as the four statuses of a live task (reserved,
pending, assigned, wrapping), each present at zero.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from tests.sandbox.conftest import Live, assert_error_body, routing, twilio_error

ZERO_STATUSES = {"pending": 0, "reserved": 0, "assigned": 0, "wrapping": 0}


class QueueSids:
    """The bulk endpoint's JSON body: the twilio library sends body.to_dict() as JSON."""

    def __init__(self, *sids: str, key: str = "QueueSids") -> None:
        self.body = {key: list(sids)}

    def to_dict(self) -> dict[str, Any]:
        return self.body


def _activities(statistics: list[dict[str, Any]]) -> dict[str, int]:
    return {item["friendly_name"]: item["workers"] for item in statistics}


class Day:
    """A workspace played through the script of test_the_scripted_day (see there)."""

    def __init__(self, live: Live) -> None:
        self.live = live
        workspace = live.new_workspace("Statistics day")
        self.sid = workspace.sid
        self.context = live.v1.workspaces(workspace.sid)
        activities = {a.friendly_name: a for a in self.context.activities.list()}
        self.available = activities["Available"]
        self.offline = activities["Offline"]

        def worker(name: str, languages: list[str], activity: Any) -> Any:
            return self.context.workers.create(
                friendly_name=name,
                attributes=json.dumps({"languages": languages}),
                activity_sid=activity.sid,
            )

        self.ann = worker("Ann", ["en"], self.available)
        self.bob = worker("Bob", ["en"], self.offline)
        self.cy = worker("Cy", ["fr"], self.available)
        self.english = self.context.task_queues.create(
            friendly_name="English", target_workers="languages HAS 'en'"
        )
        self.french = self.context.task_queues.create(
            friendly_name="French", target_workers="languages HAS 'fr'"
        )
        self.workflow = self.context.workflows.create(
            friendly_name="By language",
            configuration=routing(
                ("language == 'en'", self.english.sid), ("language == 'fr'", self.french.sid)
            ),
        )

    def task(self, language: str, **fields: Any) -> Any:
        return self.context.tasks.create(
            attributes=json.dumps({"language": language}),
            workflow_sid=self.workflow.sid,
            **fields,
        )

    def reservation(self, task: Any) -> Any:
        (reservation,) = self.context.tasks(task.sid).reservations.list(
            reservation_status="pending"
        )
        return self.context.tasks(task.sid).reservations(reservation.sid)

    def realtime(self, **params: Any) -> Any:
        return self.context.real_time_statistics().fetch(**params)

    def queue(self, queue: Any, **params: Any) -> Any:
        return self.context.task_queues(queue.sid).real_time_statistics().fetch(**params)


@pytest.fixture
def day(live: Live) -> Day:
    return Day(live)


def test_the_scripted_day(live: Live, day: Day) -> None:
    """Every real-time figure, to the second, while tasks arrive, wait, are reserved,
    accepted, wrapped, completed and canceled, and workers change activity."""
    start = live.clock.now()
    # t+0: an English call reserves Ann at once (Bob, the other English worker, is offline).
    call = day.task("en")
    # t+10: an English call at priority 5 that began a minute before TaskRouter saw it
    # (VirtualStartTime): Ann is full, so it waits in the queue.
    live.clock.advance(10)
    urgent = day.task("en", priority=5, virtual_start_time=live.clock.now() - timedelta(minutes=1))
    # t+30: Ann accepts the first call; a French chat reserves Cy.
    live.clock.advance(20)
    day.reservation(call).update(reservation_status="accepted")
    chat = day.task("fr", task_channel="chat")
    # t+45: the statistics.
    live.clock.advance(15)
    assert live.clock.now() == start + timedelta(seconds=45)

    workspace = day.realtime()
    assert workspace.account_sid == live.sandbox.account_sid
    assert workspace.workspace_sid == day.sid
    assert workspace.url == f"{live.base_url}/v1/Workspaces/{day.sid}/RealTimeStatistics"
    assert workspace.tasks_by_status == {"pending": 1, "reserved": 1, "assigned": 1, "wrapping": 0}
    assert workspace.total_tasks == 3
    assert workspace.tasks_by_priority == {"5": 1, "0": 2}
    # The longest waiting task is the one not yet accepted that started first: `urgent`,
    # whose age counts from its virtual start, 60 s before its creation at t+10.
    assert (workspace.longest_task_waiting_sid, workspace.longest_task_waiting_age) == (
        urgent.sid,
        95,
    )
    assert day.context.tasks(urgent.sid).fetch().age == 95
    assert workspace.total_workers == 3
    assert _activities(workspace.activity_statistics) == {
        "Offline": 1,
        "Available": 2,
        "Unavailable": 0,
    }
    assert [a["sid"] for a in workspace.activity_statistics] == [
        a.sid for a in day.context.activities.list()
    ]

    english = day.queue(day.english)
    assert english.task_queue_sid == day.english.sid
    assert english.workspace_sid == day.sid
    assert english.url == (
        f"{live.base_url}/v1/Workspaces/{day.sid}/TaskQueues/{day.english.sid}/RealTimeStatistics"
    )
    assert english.tasks_by_status == {"pending": 1, "reserved": 0, "assigned": 1, "wrapping": 0}
    assert english.total_tasks == 2
    assert english.tasks_by_priority == {"5": 1, "0": 1}
    assert (english.longest_task_waiting_sid, english.longest_task_waiting_age) == (urgent.sid, 95)
    # In the queue since its creation at t+10: 35 s, whatever its virtual start.
    assert english.longest_relative_task_sid_in_queue == urgent.sid
    assert english.longest_relative_task_age_in_queue == 35
    # Ann and Bob are eligible, Ann alone available (busy with a call, still Available).
    assert (english.total_eligible_workers, english.total_available_workers) == (2, 1)
    assert _activities(english.activity_statistics) == {
        "Offline": 1,
        "Available": 1,
        "Unavailable": 0,
    }

    french = day.queue(day.french)
    assert french.tasks_by_status == {"pending": 0, "reserved": 1, "assigned": 0, "wrapping": 0}
    assert (french.longest_task_waiting_sid, french.longest_task_waiting_age) == (chat.sid, 15)
    assert (
        french.longest_relative_task_sid_in_queue,
        french.longest_relative_task_age_in_queue,
    ) == (
        chat.sid,
        15,
    )
    assert (french.total_eligible_workers, french.total_available_workers) == (1, 1)

    workflow = day.context.workflows(day.workflow.sid).real_time_statistics().fetch()
    assert workflow.workflow_sid == day.workflow.sid
    assert workflow.workspace_sid == day.sid
    assert workflow.url == (
        f"{live.base_url}/v1/Workspaces/{day.sid}/Workflows/{day.workflow.sid}/RealTimeStatistics"
    )
    assert workflow.tasks_by_status == workspace.tasks_by_status
    assert workflow.total_tasks == 3
    assert (workflow.longest_task_waiting_sid, workflow.longest_task_waiting_age) == (
        urgent.sid,
        95,
    )

    workers = day.context.workers.real_time_statistics().fetch()
    assert workers.url == f"{live.base_url}/v1/Workspaces/{day.sid}/Workers/RealTimeStatistics"
    assert workers.total_workers == 3
    assert workers.activity_statistics == workspace.activity_statistics

    # t+45: Bob comes online; Ann completes the first call, so the urgent one reserves her.
    day.context.workers(day.bob.sid).update(activity_sid=day.available.sid)
    day.context.tasks(call.sid).update(assignment_status="completed", reason="done")
    live.clock.advance(5)
    after = day.realtime()
    assert after.tasks_by_status == {"pending": 0, "reserved": 2, "assigned": 0, "wrapping": 0}
    assert after.total_tasks == 2
    assert after.tasks_by_priority == {"5": 1, "0": 1}
    assert (after.longest_task_waiting_sid, after.longest_task_waiting_age) == (urgent.sid, 100)
    assert _activities(after.activity_statistics) == {
        "Offline": 0,
        "Available": 3,
        "Unavailable": 0,
    }
    english = day.queue(day.english)
    assert (english.total_eligible_workers, english.total_available_workers) == (2, 2)

    # t+50: Ann accepts and wraps the urgent call; the chat is canceled. Nothing waits now.
    day.reservation(urgent).update(reservation_status="accepted")
    day.context.tasks(urgent.sid).update(assignment_status="wrapping")
    day.context.tasks(chat.sid).update(assignment_status="canceled", reason="hung up")
    live.clock.advance(30)
    final = day.realtime()
    assert final.tasks_by_status == {"pending": 0, "reserved": 0, "assigned": 0, "wrapping": 1}
    assert final.total_tasks == 1
    assert final.tasks_by_priority == {"5": 1}
    assert (final.longest_task_waiting_sid, final.longest_task_waiting_age) == (None, 0)
    french = day.queue(day.french)
    assert french.tasks_by_status == ZERO_STATUSES
    assert (french.total_tasks, french.tasks_by_priority) == (0, {})
    assert (
        french.longest_relative_task_sid_in_queue,
        french.longest_relative_task_age_in_queue,
    ) == (
        None,
        0,
    )


def test_task_channel_narrows_tasks_and_workers_by_sid_or_unique_name(live: Live, day: Day) -> None:
    """TaskChannel, by unique name or TaskChannelSid: only that channel's tasks, and only the
    workers whose channel is on (available, with capacity) count."""
    day.task("en")
    chat = day.task("fr", task_channel="chat")
    live.clock.advance(12)
    chat_channel = next(c for c in day.context.task_channels.list() if c.unique_name == "chat")
    # Bob turns chat off; Cy's chat capacity is 0: only Ann can take chats.
    day.context.workers(day.bob.sid).worker_channels("chat").update(available=False)
    day.context.workers(day.cy.sid).worker_channels("chat").update(capacity=0)
    for channel in ("chat", chat_channel.sid):
        statistics = day.realtime(task_channel=channel)
        assert statistics.tasks_by_status == {
            "pending": 0,
            "reserved": 1,
            "assigned": 0,
            "wrapping": 0,
        }
        assert statistics.total_tasks == 1
        assert (statistics.longest_task_waiting_sid, statistics.longest_task_waiting_age) == (
            chat.sid,
            12,
        )
        assert statistics.total_workers == 1
        assert _activities(statistics.activity_statistics) == {
            "Offline": 0,
            "Available": 1,
            "Unavailable": 0,
        }
        workers = day.context.workers.real_time_statistics().fetch(task_channel=channel)
        assert workers.total_workers == 1
    french = day.queue(day.french, task_channel="chat")
    assert french.total_tasks == 1
    assert (french.total_eligible_workers, french.total_available_workers) == (0, 0)
    assert day.queue(day.english, task_channel="chat").total_tasks == 0
    voice = (
        day.context.workflows(day.workflow.sid).real_time_statistics().fetch(task_channel="voice")
    )
    assert (voice.total_tasks, voice.tasks_by_status) == (0, ZERO_STATUSES)
    assert day.realtime(task_channel="default").total_tasks == 1


def test_bulk_retrieval_answers_each_queue_asked_for(live: Live, day: Day) -> None:
    """Bulk retrieval: one entry per TaskQueueSID in the order given, with Twilio's listed
    attributes; a SID of no queue here answers zeros; the count says how many."""
    waiting = day.task("en")
    live.clock.advance(7)
    elsewhere = live.v1.workspaces(live.new_workspace("Elsewhere").sid).task_queues.create(
        friendly_name="Theirs"
    )
    bulk = day.context.task_queues.bulk_real_time_statistics.create(
        body=QueueSids(day.french.sid, day.english.sid, elsewhere.sid)
    )
    assert bulk.account_sid == live.sandbox.account_sid
    assert bulk.workspace_sid == day.sid
    assert bulk.url == f"{live.base_url}/v1/Workspaces/{day.sid}/TaskQueues/RealTimeStatistics"
    assert bulk.task_queue_response_count == 3
    french, english, theirs = bulk.task_queue_data
    assert [french["task_queue_sid"], english["task_queue_sid"], theirs["task_queue_sid"]] == [
        day.french.sid,
        day.english.sid,
        elsewhere.sid,
    ]
    assert set(english) == {
        "task_queue_sid",
        "total_available_workers",
        "total_eligible_workers",
        "total_tasks",
        "longest_task_waiting_age",
        "longest_task_waiting_sid",
        "tasks_by_status",
        "tasks_by_priority",
        "activity_statistics",
    }
    single = day.queue(day.english)
    for name in set(english) - {"task_queue_sid"}:
        assert english[name] == getattr(single, name), name
    assert (english["longest_task_waiting_sid"], english["longest_task_waiting_age"]) == (
        waiting.sid,
        7,
    )
    assert english["tasks_by_status"]["reserved"] == 1
    assert french["total_tasks"] == 0 and french["total_eligible_workers"] == 1
    # Not part of this workspace: zero values for all statistics.
    assert theirs["total_tasks"] == theirs["total_eligible_workers"] == 0
    assert theirs["total_available_workers"] == theirs["longest_task_waiting_age"] == 0
    assert theirs["longest_task_waiting_sid"] is None
    assert theirs["tasks_by_status"] == ZERO_STATUSES and theirs["tasks_by_priority"] == {}
    assert set(_activities(theirs["activity_statistics"]).values()) == {0}


def test_bulk_retrieval_reads_the_pages_curl_body_and_a_form(live: Live, day: Day) -> None:
    """The page's curl example sends {"queueSids": [...]}; a form post names QueueSids."""
    path = f"/v1/Workspaces/{day.sid}/TaskQueues/RealTimeStatistics"
    as_curl = live.http("POST", path, json={"queueSids": [day.english.sid, day.english.sid]})
    assert as_curl.status_code == 200, as_curl.text
    # A SID given twice is answered once.
    assert [d["task_queue_sid"] for d in as_curl.json()["task_queue_data"]] == [day.english.sid]
    as_form = live.http("POST", path, data={"QueueSids": [day.english.sid, day.french.sid]})
    assert as_form.status_code == 200, as_form.text
    assert as_form.json()["task_queue_response_count"] == 2


def test_the_engine_counts_workers_by_queue_and_name_for_workers_statistics(
    live: Live, day: Day
) -> None:
    """Workers Statistics' filters (TaskQueueSid, TaskQueueName, FriendlyName), as the
    combined endpoint asks the engine for its realtime part."""
    engine = live.sandbox.engine
    by_queue = engine.workers_realtime_statistics(day.sid, task_queue_sid=day.english.sid)
    assert by_queue["total_workers"] == 2
    assert _activities(by_queue["activity_statistics"]) == {
        "Offline": 1,
        "Available": 1,
        "Unavailable": 0,
    }
    assert (
        engine.workers_realtime_statistics(day.sid, task_queue_name="French")["total_workers"] == 1
    )
    assert engine.workers_realtime_statistics(day.sid, friendly_name="bob")["total_workers"] == 1
    assert engine.workspace_realtime_statistics(day.sid)["total_workers"] == 3


# -- bad requests ----------------------------------------------------------------------------


def _fetches(day: Day) -> dict[str, Any]:
    return {
        "workspace": day.context.real_time_statistics(),
        "task queue": day.context.task_queues(day.english.sid).real_time_statistics(),
        "workflow": day.context.workflows(day.workflow.sid).real_time_statistics(),
        "workers": day.context.workers.real_time_statistics(),
    }


def test_an_unknown_task_channel_is_a_400_naming_it(live: Live, day: Day) -> None:
    """TaskChannel names a TaskChannel of the workspace by SID or unique name; anything
    else is refused on every endpoint that takes it."""
    for resource in _fetches(day).values():
        for value in ("carrier-pigeon", "TC" + "0" * 32):
            with twilio_error(400, 20001, "TaskChannel"):
                resource.fetch(task_channel=value)


def test_task_channel_given_twice_is_a_400(live: Live, day: Day) -> None:
    response = live.http(
        "GET",
        f"/v1/Workspaces/{day.sid}/RealTimeStatistics",
        params=[("TaskChannel", "voice"), ("TaskChannel", "chat")],
    )
    assert "TaskChannel" in assert_error_body(response, 400, 20001)["message"]


def test_unknown_resources_are_404s(live: Live, day: Day) -> None:
    context = day.context
    with twilio_error(404, 20404):
        context.task_queues("WQ" + "0" * 32).real_time_statistics().fetch()
    with twilio_error(404, 20404):
        context.workflows("WW" + "0" * 32).real_time_statistics().fetch()
    with twilio_error(404, 20404):
        live.v1.workspaces("WS" + "0" * 32).real_time_statistics().fetch()
    with twilio_error(404, 20404):
        live.v1.workspaces("WS" + "0" * 32).workers.real_time_statistics().fetch()
    with twilio_error(404, 20404):
        live.v1.workspaces("WS" + "0" * 32).task_queues.bulk_real_time_statistics.create(
            body=QueueSids(day.english.sid)
        )


@pytest.mark.parametrize(
    ("sids", "message"),
    [
        ([], "between 1 and 50"),
        ([f"WQ{n:032x}" for n in range(51)], "between 1 and 50"),
        (["WQ123"], "not a valid TaskQueue SID"),
        (["WW" + "0" * 32], "not a valid TaskQueue SID"),
        ([7], "not a valid TaskQueue SID"),
    ],
)
def test_bulk_sids_are_checked_as_twilio_documents(
    live: Live, day: Day, sids: list[Any], message: str
) -> None:
    """Bulk retrieval's Validation: fewer than 1 or more than 50 SIDs, or an invalid one, is
    an HTTP 400."""
    with twilio_error(400, 20001, message):
        day.context.task_queues.bulk_real_time_statistics.create(body=QueueSids(*sids))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not json", "not valid JSON"),
        ("[]", "must be an object"),
        ("{}", "must hold QueueSids"),
        ('{"QueueSids": "WQ"}', "must be an array"),
        ('{"QueueSids": [], "queueSids": []}', "not both"),
        ("[" * 100 + "]" * 100, "nest"),
    ],
)
def test_a_bad_bulk_body_is_a_400_saying_why(live: Live, day: Day, body: str, message: str) -> None:
    response = live.http(
        "POST",
        f"/v1/Workspaces/{day.sid}/TaskQueues/RealTimeStatistics",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    assert message in assert_error_body(response, 400, 20001)["message"]


def test_a_form_post_without_queue_sids_is_a_400(live: Live, day: Day) -> None:
    response = live.http("POST", f"/v1/Workspaces/{day.sid}/TaskQueues/RealTimeStatistics")
    assert "between 1 and 50" in assert_error_body(response, 400, 20001)["message"]


def test_the_methods_each_path_does_not_list_are_405s(live: Live, day: Day) -> None:
    """Bulk retrieval is a POST; the others are fetches (GET)."""
    ws = f"/v1/Workspaces/{day.sid}"
    for method, path, allowed in (
        ("GET", f"{ws}/TaskQueues/RealTimeStatistics", "POST"),
        ("POST", f"{ws}/RealTimeStatistics", "GET"),
        ("POST", f"{ws}/TaskQueues/{day.english.sid}/RealTimeStatistics", "GET"),
        ("DELETE", f"{ws}/Workflows/{day.workflow.sid}/RealTimeStatistics", "GET"),
        ("POST", f"{ws}/Workers/RealTimeStatistics", "GET"),
    ):
        response = live.http(method, path)
        assert_error_body(response, 405, 20004)
        assert response.headers["Allow"] == allowed
