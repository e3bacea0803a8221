"""The console state's statistics: each queue's live figures (waiting tasks, the longest wait,
available and eligible workers) and the workspace's figures for the last hour, read through
the twilio library's statistics resources, from a Twilio account (mocked at the HTTP level)
and from the local sandbox with its clock moved by hand.
"""

from __future__ import annotations

import pytest
import requests

from taskrouter_quickstart.console_state import StateCache
from taskrouter_sandbox.clock import ManualClock
from tests.contract import load_contract
from tests.test_console_page import (
    STATE_READS,
    mock_workspace,
    page_of,
    queue_real_time_json,
    task_queue_json,
    workspace_cumulative_json,
    workspace_url,
)

SPANISH_QUEUE = "Customer Care Requests - Spanish"
ENGLISH_QUEUE = "Customer Care Requests - English"
NO_WAITS = {"avg": 0, "min": 0, "max": 0, "total": 0}


def test_state_shows_each_queues_live_figures_and_the_last_hour(
    client, sids, upstream, task_json, reservation_json
):
    """REST API: TaskQueue Statistics (TaskQueue RealTime Statistics): a queue's tasks by
    status, the age and SID of its longest waiting task, its workers `available` and those
    eligible "independent of their Activity state". REST API: Workspace Statistics: the
    cumulative figures over `Minutes` (15 by default; the page asks for 60)."""
    mock_workspace(sids, upstream, task_json, reservation_json)

    state = client.get("/console/state").get_json()

    assert (state["queue_statistics_error"], state["cumulative_statistics_error"]) == (None, None)
    # Waiting is not yet accepted: the one reserved task counts (its counts came as strings).
    assert state["queue_statistics"] == [
        {
            "sid": sids.task_queue,
            "friendly_name": SPANISH_QUEUE,
            "waiting": 1,
            "pending": 0,
            "reserved": 1,
            "longest_waiting_age": 42,
            "longest_waiting_sid": sids.task,
            "available_workers": 1,
            "eligible_workers": 1,
        }
    ]
    assert state["cumulative_statistics"] == {
        "minutes": 60,
        "start_time": "2024-05-14T13:27:01Z",
        "end_time": "2024-05-14T14:27:01Z",
        "tasks_created": 1,
        "tasks_completed": 0,
        "tasks_canceled": 0,
        "tasks_deleted": 0,
        "tasks_moved": 0,
        "tasks_timed_out_in_workflow": 0,
        "reservations_created": 2,
        "reservations_accepted": 0,
        "reservations_rejected": 1,
        "reservations_timed_out": 0,
        "reservations_canceled": 0,
        "reservations_rescinded": 0,
        "avg_task_acceptance_time": 0,
        "wait_duration_until_accepted": NO_WAITS,
        "wait_duration_until_canceled": NO_WAITS,
    }


@pytest.fixture(scope="module")
def contract() -> dict:
    return load_contract()


def test_the_mocked_statistics_and_their_queries_are_the_contracts(
    contract, client, sids, upstream, task_json, reservation_json
):
    """The answers mocked above hold every field of Twilio's schemas and no other, and each
    statistics request names only parameters the TaskRouter v1 description lists."""
    schemas = contract["components"]["schemas"]
    for name, resource in [
        ("taskrouter.v1.workspace.task_queue", task_queue_json(sids)),
        (
            "taskrouter.v1.workspace.task_queue.task_queue_real_time_statistics",
            queue_real_time_json(sids),
        ),
        (
            "taskrouter.v1.workspace.workspace_cumulative_statistics",
            workspace_cumulative_json(sids),
        ),
    ]:
        assert set(resource) == set(schemas[name]["properties"]), name

    mock_workspace(sids, upstream, task_json, reservation_json)
    client.get("/console/state")
    paths = {
        f"{workspace_url(sids)}/TaskQueues": "/v1/Workspaces/{WorkspaceSid}/TaskQueues",
        f"{workspace_url(sids)}/TaskQueues/{sids.task_queue}/RealTimeStatistics": (
            "/v1/Workspaces/{WorkspaceSid}/TaskQueues/{TaskQueueSid}/RealTimeStatistics"
        ),
        f"{workspace_url(sids)}/CumulativeStatistics": (
            "/v1/Workspaces/{WorkspaceSid}/CumulativeStatistics"
        ),
    }
    read = 0
    for call in upstream.calls:
        path, _, query = call.request.url.partition("?")
        if path not in paths:
            continue
        read += 1
        operation = contract["paths"][paths[path]]["get"]
        names = {parameter["name"] for parameter in operation["parameters"]}
        assert {pair.split("=")[0] for pair in query.split("&") if pair} <= names, path
    assert read == 3


TOO_MANY_REQUESTS = {"code": 20429, "message": "Too Many Requests", "more_info": "", "status": 429}


def test_a_refused_queue_statistics_call_leaves_the_lists_and_the_last_hour(
    client, sids, upstream, task_json, reservation_json
):
    """A statistics call refused (here Twilio's 429, error 20429 Too Many Requests): the page
    keeps its lists and the other figures, and names the failure where the figures would be."""
    mock_workspace(sids, upstream, task_json, reservation_json, statistics=False)
    upstream.get(
        f"{workspace_url(sids)}/TaskQueues", json=page_of("task_queues", [task_queue_json(sids)])
    )
    upstream.get(
        f"{workspace_url(sids)}/TaskQueues/{sids.task_queue}/RealTimeStatistics",
        status=429,
        json=TOO_MANY_REQUESTS,
    )
    upstream.get(
        f"{workspace_url(sids)}/CumulativeStatistics", json=workspace_cumulative_json(sids)
    )

    response = client.get("/console/state")

    assert response.status_code == 200
    state = response.get_json()
    assert [worker["friendly_name"] for worker in state["workers"]] == ["Alice", "Bob"]
    assert state["queue_statistics"] is None
    assert state["queue_statistics_error"] == "Unable to fetch record: Too Many Requests"
    assert state["cumulative_statistics"]["tasks_created"] == 1
    assert state["cumulative_statistics_error"] is None
    assert len(upstream.calls) == STATE_READS


def test_a_refused_last_hour_leaves_the_queues(client, sids, upstream, task_json, reservation_json):
    mock_workspace(sids, upstream, task_json, reservation_json, statistics=False)
    upstream.get(
        f"{workspace_url(sids)}/TaskQueues", json=page_of("task_queues", [task_queue_json(sids)])
    )
    upstream.get(
        f"{workspace_url(sids)}/TaskQueues/{sids.task_queue}/RealTimeStatistics",
        json=queue_real_time_json(sids),
    )
    upstream.get(f"{workspace_url(sids)}/CumulativeStatistics", status=429, json=TOO_MANY_REQUESTS)

    state = client.get("/console/state").get_json()

    assert [queue["waiting"] for queue in state["queue_statistics"]] == [1]
    assert state["queue_statistics_error"] is None
    assert state["cumulative_statistics"] is None
    assert state["cumulative_statistics_error"] == "Unable to fetch record: Too Many Requests"


def test_an_unreachable_statistics_call_is_named_too(
    client, sids, upstream, task_json, reservation_json
):
    """Nothing answers the statistics calls (none registered): each part names the failure."""
    mock_workspace(sids, upstream, task_json, reservation_json, statistics=False)

    state = client.get("/console/state").get_json()

    assert state["queue_statistics"] is None
    assert state["queue_statistics_error"].startswith(
        "Could not reach TaskRouter at https://taskrouter.twilio.com to read the queues' "
        "real-time statistics"
    )
    assert state["cumulative_statistics_error"].startswith(
        "Could not reach TaskRouter at https://taskrouter.twilio.com to read the workspace's "
        "last hour"
    )


def test_tasks_by_status_missing_or_unreadable_count_as_none_waiting(
    client, sids, upstream, task_json, reservation_json
):
    """A queue with no task at all: Twilio's example omits statuses it has nothing for."""
    mock_workspace(sids, upstream, task_json, reservation_json, statistics=False)
    upstream.get(
        f"{workspace_url(sids)}/TaskQueues", json=page_of("task_queues", [task_queue_json(sids)])
    )
    upstream.get(
        f"{workspace_url(sids)}/TaskQueues/{sids.task_queue}/RealTimeStatistics",
        json=queue_real_time_json(
            sids,
            tasks_by_status={"reserved": None},
            longest_task_waiting_age=0,
            longest_task_waiting_sid=None,
        ),
    )
    upstream.get(
        f"{workspace_url(sids)}/CumulativeStatistics", json=workspace_cumulative_json(sids)
    )

    [queue] = client.get("/console/state").get_json()["queue_statistics"]

    assert (queue["waiting"], queue["pending"], queue["reserved"]) == (0, 0, 0)
    assert (queue["longest_waiting_age"], queue["longest_waiting_sid"]) == (0, None)


# -- against the local sandbox, its clock moved by hand -------------------------------------


def read_state(server) -> dict:
    response = requests.get(f"{server.url}/console/state", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def queues_by_name(state: dict) -> dict[str, dict]:
    return {queue["friendly_name"]: queue for queue in state["queue_statistics"]}


def test_sandbox_figures_follow_a_task_to_the_second(live_app):
    """REST API: TaskQueue Statistics and REST API: Workspace Statistics, read from the
    sandbox: a Spanish task waits 30 s for Alice (the only Spanish speaker, Offline), she
    goes Idle and is reserved, and accepts 10 s later, 40 s after the task was created."""
    clock = ManualClock()
    server = live_app({"SANDBOX_CLOCK": clock})
    # Every read builds afresh: the page's quarter-second cache is not under test here.
    server.app.extensions["console_state"] = StateCache(ttl=0)
    workflow_sid = server.app.config["TWILIO_WORKFLOW_SID"]
    server.set_activity("Alice", "Offline")
    server.set_activity("Bob", "Offline")
    task = server.workspace.tasks.create(
        workflow_sid=workflow_sid, attributes='{"selected_language": "es"}'
    )
    clock.advance(30)

    state = read_state(server)
    assert (state["queue_statistics_error"], state["cumulative_statistics_error"]) == (None, None)
    queues = queues_by_name(state)
    assert set(queues) == {SPANISH_QUEUE, ENGLISH_QUEUE}
    spanish = queues[SPANISH_QUEUE]
    assert (spanish["waiting"], spanish["pending"], spanish["reserved"]) == (1, 1, 0)
    assert (spanish["longest_waiting_age"], spanish["longest_waiting_sid"]) == (30, task.sid)
    assert (spanish["available_workers"], spanish["eligible_workers"]) == (0, 1)
    english = queues[ENGLISH_QUEUE]
    assert (english["waiting"], english["longest_waiting_sid"]) == (0, None)
    assert (english["available_workers"], english["eligible_workers"]) == (0, 2)
    hour = state["cumulative_statistics"]
    assert (hour["tasks_created"], hour["reservations_created"]) == (1, 0)

    # Idle, and at once reserved: the task still waits, now for her answer.
    server.set_activity("Alice", "Idle")
    [reservation] = server.workspace.tasks(task.sid).reservations.list()
    clock.advance(10)
    spanish = queues_by_name(read_state(server))[SPANISH_QUEUE]
    assert (spanish["waiting"], spanish["pending"], spanish["reserved"]) == (1, 0, 1)
    assert spanish["longest_waiting_age"] == 40

    server.workspace.tasks(task.sid).reservations(reservation.sid).update(
        reservation_status="accepted"
    )
    state = read_state(server)
    spanish = queues_by_name(state)[SPANISH_QUEUE]
    assert (spanish["waiting"], spanish["longest_waiting_age"]) == (0, 0)
    hour = state["cumulative_statistics"]
    assert hour["minutes"] == 60
    assert hour["end_time"] == "2024-01-01T09:00:40Z"
    assert hour["start_time"] == "2024-01-01T08:00:40Z"
    assert {
        name: hour[name]
        for name in (
            "tasks_created",
            "tasks_completed",
            "tasks_canceled",
            "reservations_created",
            "reservations_accepted",
            "reservations_rejected",
            "reservations_timed_out",
            "avg_task_acceptance_time",
        )
    } == {
        "tasks_created": 1,
        "tasks_completed": 0,
        "tasks_canceled": 0,
        "reservations_created": 1,
        "reservations_accepted": 1,
        "reservations_rejected": 0,
        "reservations_timed_out": 0,
        "avg_task_acceptance_time": 40,
    }
    assert hour["wait_duration_until_accepted"] == {"avg": 40, "min": 40, "max": 40, "total": 40}
    assert hour["wait_duration_until_canceled"] == NO_WAITS


def test_the_page_has_a_place_for_each_part_and_names_the_window(client, upstream):
    """The page itself, before any poll: the two tables the script fills and the window the
    last hour's figures cover, with no REST call made to draw it."""
    page = client.get("/").get_data(as_text=True)
    for part in ("queue-statistics", "cumulative-statistics"):
        assert f'<table id="{part}"' in page
        assert f'<p id="{part}-problem" class="problem" hidden></p>' in page
    assert "over the workspace's last 60 minutes" in page
    assert len(upstream.calls) == 0
