"""`flask taskrouter status`'s queue figures (waiting tasks, longest wait, available and
eligible workers), read through the twilio library's TaskQueue RealTimeStatistics resource:
against a Twilio account mocked with `responses` (answers shaped as TaskRouter's v1
description, exact requests asserted) and against the local sandbox, its time moved by a
ManualClock.

The pages followed: "REST API: TaskQueue Statistics" (TaskQueue RealTime Statistics: the
longest waiting task's age and SID, tasks by status, `total_available_workers` "in the
TaskQueue with an available status", `total_eligible_workers` "independent of their
Activity state") and Flex's "Real-Time Queues View" (waiting tasks are those "waiting to be
handled", apart from the active ones being handled).
"""

from __future__ import annotations

import json

import pytest

from taskrouter_sandbox.clock import ManualClock
from taskrouter_sandbox.seed import ENGLISH_QUEUE, SPANISH_QUEUE
from tests.contract import load_contract
from tests.test_cli import (
    Account,
    answer_queue_figures,
    invoke,
    list_answer,
    sid,
    twilio_error,
)

HEADER = (
    "  QUEUE                             WAITING  LONGEST WAIT  AVAILABLE WORKERS  ELIGIBLE WORKERS"
)
WAITING_TASK = sid("WT", 7)


@pytest.fixture
def account(sids) -> Account:
    return Account(sids)


def answer_the_rest_of_status(upstream, account: Account) -> None:
    """An account with no workers and no tasks: status's other requests."""
    ws = account.workspace_url
    list_answer(upstream, "workers", f"{ws}/Workers", [])
    list_answer(upstream, "tasks", f"{ws}/Tasks", [])
    upstream.get(f"{ws}/Workflows/{account.workflow_sid}", json=account.workflow())


def queue_table(stdout: str) -> list[str]:
    """The lines of the Queues table: its header and one row per queue."""
    lines = stdout.splitlines()
    start = lines.index("Queues (real-time statistics)") + 1
    end = lines.index("", start)
    return lines[start:end]


# -- against a Twilio account -------------------------------------------------------------


def test_waiting_counts_pending_and_reserved_tasks_not_accepted_ones(app, upstream, account):
    """Flex's Real-Time Queues View: waiting tasks are those not yet handled; an assigned or
    wrapping task is active. TaskQueue Statistics' example quotes the counts as strings."""
    answer_the_rest_of_status(upstream, account)
    answer_queue_figures(
        upstream,
        account,
        **{
            SPANISH_QUEUE: {
                "tasks_by_status": {"pending": "2", "reserved": "3", "assigned": "4"},
                "longest_task_waiting_age": 125,
                "longest_task_waiting_sid": WAITING_TASK,
                "total_tasks": 9,
                "total_available_workers": 1,
                "total_eligible_workers": 6,
            },
            ENGLISH_QUEUE: {
                "tasks_by_status": {"reserved": 0, "pending": 0, "assigned": 1, "wrapping": 2},
                "total_tasks": 3,
                "total_eligible_workers": 2,
            },
        },
    )

    result = invoke(app, "status")

    assert result.exit_code == 0, result.output
    assert queue_table(result.stdout) == [
        HEADER,
        f"  {SPANISH_QUEUE}  5        2m 05s        1                  6",
        # Nothing waiting: age 0 and no SID, shown as no wait rather than "0s".
        f"  {ENGLISH_QUEUE}  0        -             0                  2",
    ]


def test_a_workspace_without_queues_says_none(app, upstream, account):
    answer_the_rest_of_status(upstream, account)
    list_answer(upstream, "task_queues", f"{account.workspace_url}/TaskQueues", [])

    result = invoke(app, "status")

    assert result.exit_code == 0, result.output
    assert queue_table(result.stdout) == ["  (none)"]


def test_statistics_refused_is_one_line_and_exit_1(app, upstream, account):
    ws = account.workspace_url
    answer_the_rest_of_status(upstream, account)
    list_answer(upstream, "task_queues", f"{ws}/TaskQueues", [account.task_queue(SPANISH_QUEUE)])
    queue_sid = account.task_queue_sids[SPANISH_QUEUE]
    upstream.get(
        f"{ws}/TaskQueues/{queue_sid}/RealTimeStatistics",
        status=403,
        json=twilio_error(403, 20403, "Forbidden"),
    )

    result = invoke(app, "status")

    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: TaskRouter refused to fetch the real-time statistics of task queue {queue_sid} "
        f"({SPANISH_QUEUE}): Unable to fetch record: Forbidden "
        "(HTTP 403, Twilio error 20403, https://www.twilio.com/docs/errors/20403)\n"
    )
    assert result.stdout == ""


@pytest.mark.parametrize(
    "tasks_by_status",
    ["pending", {"pending": None}, {"pending": [1]}, {"reserved": "many"}, {"pending": True}],
)
def test_statistics_that_are_not_taskrouter_json_are_one_line(
    app, upstream, account, tasks_by_status
):
    ws = account.workspace_url
    answer_the_rest_of_status(upstream, account)
    list_answer(upstream, "task_queues", f"{ws}/TaskQueues", [account.task_queue(SPANISH_QUEUE)])
    queue_sid = account.task_queue_sids[SPANISH_QUEUE]
    upstream.get(
        f"{ws}/TaskQueues/{queue_sid}/RealTimeStatistics",
        json=account.queue_statistics(SPANISH_QUEUE, tasks_by_status=tasks_by_status),
    )

    result = invoke(app, "status")

    assert result.exit_code == 1
    assert result.stderr == (
        "Error: TaskRouter at https://taskrouter.twilio.com answered with something that is "
        f"not TaskRouter JSON while trying to fetch the real-time statistics of task queue "
        f"{queue_sid} ({SPANISH_QUEUE}) (check TASKROUTER_BASE_URL)\n"
    )
    assert "Traceback" not in result.output


def test_status_requests_exist_in_the_contract(app, upstream, account, sent_form):
    """Every request status makes is a GET of a path TaskRouter's v1 description lists,
    with query parameters it names (RealTimeStatistics without TaskChannel: all channels)."""
    contract = load_contract()
    answer_the_rest_of_status(upstream, account)
    answer_queue_figures(upstream, account)

    result = invoke(app, "status")

    assert result.exit_code == 0, result.output
    templates = {
        f"{account.workspace_url}/Workers": "/v1/Workspaces/{WorkspaceSid}/Workers",
        f"{account.workspace_url}/Tasks": "/v1/Workspaces/{WorkspaceSid}/Tasks",
        f"{account.workspace_url}/Workflows/{account.workflow_sid}": (
            "/v1/Workspaces/{WorkspaceSid}/Workflows/{Sid}"
        ),
        f"{account.workspace_url}/TaskQueues": "/v1/Workspaces/{WorkspaceSid}/TaskQueues",
        **{
            f"{account.workspace_url}/TaskQueues/{queue_sid}/RealTimeStatistics": (
                "/v1/Workspaces/{WorkspaceSid}/TaskQueues/{TaskQueueSid}/RealTimeStatistics"
            )
            for queue_sid in account.task_queue_sids.values()
        },
    }
    for call in upstream.calls:
        path, _, query = call.request.url.partition("?")
        operation = contract["paths"][templates[path]]["get"]
        assert call.request.method == "GET"
        names = {parameter["name"] for parameter in operation.get("parameters", [])}
        assert {pair.split("=")[0] for pair in query.split("&") if pair} <= names, path
    answered = upstream.calls[-1].response.json()
    schema = contract["components"]["schemas"][
        "taskrouter.v1.workspace.task_queue.task_queue_real_time_statistics"
    ]
    assert set(answered) == set(schema["properties"])


# -- against the local sandbox -------------------------------------------------------------


def test_queue_figures_on_the_sandbox_to_the_second(live_app):
    """The seeded quickstart played with the clock moved by hand: a Spanish task nobody can
    take, an English task Bob accepts, and Carol idle with nothing to take."""
    clock = ManualClock()
    server = live_app({"SANDBOX_CLOCK": clock, "SANDBOX_START_THREADS": False})
    workflow_sid = server.sandbox.seeded.workflow_sid
    tasks = server.workspace.tasks
    spanish = tasks.create(
        workflow_sid=workflow_sid, attributes=json.dumps({"selected_language": "es"})
    )
    clock.advance(10)
    english = tasks.create(
        workflow_sid=workflow_sid, attributes=json.dumps({"selected_language": "en"})
    )
    clock.advance(30)
    # Bob (English only) is reserved for the English task at once, and accepts it.
    server.set_activity("Bob", "Idle")
    (reservation,) = tasks(english.sid).reservations.list(reservation_status="pending")
    tasks(english.sid).reservations(reservation.sid).update(reservation_status="accepted")
    server.workspace.workers.create(
        friendly_name="Carol",
        attributes=json.dumps({"languages": ["en"]}),
        activity_sid=server.activities["Idle"],
    )
    clock.advance(20)

    result = invoke(server.app, "status")

    assert result.exit_code == 0, result.output
    assert queue_table(result.stdout) == [
        HEADER,
        # Alice speaks Spanish but is Offline; the task has waited 60 s.
        f"  {SPANISH_QUEUE}  1        1m 00s        0                  1",
        # The accepted task is no longer waiting; Carol is the available one of the three.
        f"  {ENGLISH_QUEUE}  0        -             1                  3",
    ]
    assert spanish.task_queue_friendly_name == SPANISH_QUEUE

    # Alice comes online: she is reserved for the Spanish task, which still waits (reserved
    # is not accepted) while she, now Reserved, is no longer available to either queue.
    server.set_activity("Alice", "Idle")
    clock.advance(5)

    later = invoke(server.app, "status")

    assert later.exit_code == 0, later.output
    assert queue_table(later.stdout)[1:] == [
        f"  {SPANISH_QUEUE}  1        1m 05s        0                  1",
        f"  {ENGLISH_QUEUE}  0        -             1                  3",
    ]
