"""`flask taskrouter create-task | accept | reject | complete`: against a Twilio account mocked
with `responses` (exact requests asserted), and the whole quickstart walked from the command
line against the local sandbox served over real HTTP.
"""

from __future__ import annotations

import json
import re

import pytest

from taskrouter_sandbox.domain.values import Paging
from tests.test_cli import Account, invoke, list_answer, sid, twilio_error

ALICE, BOB = sid("WK", 1), sid("WK", 2)
RESERVATION_ONE, RESERVATION_TWO = sid("WR", 1), sid("WR", 2)
TASK_ONE, TASK_TWO = sid("WT", 1), sid("WT", 2)
ACTIVE = (
    "AssignmentStatus=pending&AssignmentStatus=reserved&AssignmentStatus=assigned"
    "&AssignmentStatus=wrapping&PageSize=1000"
)


@pytest.fixture
def account(sids) -> Account:
    return Account(sids)


@pytest.fixture
def sent(upstream, sent_form):
    """Every request made so far: (method, url, form fields with one value each)."""

    def requests_made():
        return [
            (
                call.request.method,
                call.request.url,
                {name: values[0] for name, values in sent_form(call).items()},
            )
            for call in upstream.calls
        ]

    return requests_made


# -- create-task ----------------------------------------------------------------------------


def test_create_task_defaults_to_spanish_and_prints_the_sid_first(
    app, upstream, account, sent, task_json
):
    upstream.post(f"{account.workspace_url}/Tasks", json=task_json(), status=201)

    result = invoke(app, "create-task")

    assert result.exit_code == 0, result.output
    assert sent() == [
        (
            "POST",
            f"{account.workspace_url}/Tasks",
            {"WorkflowSid": account.workflow_sid, "Attributes": '{"selected_language":"es"}'},
        )
    ]
    task = task_json()
    assert result.stdout.splitlines() == [
        task["sid"],
        "  status      pending",
        "  queue       Customer Care Requests - Spanish",
        '  attributes  {"selected_language": "es"}',
    ]
    assert "worker Alice Idle" in result.stderr


def test_create_task_says_why_taskrouter_canceled_it_at_once(app, upstream, account, task_json):
    reason = "Task did not match any filter of its workflow, which has no default_filter"
    answer = task_json(assignment_status="canceled", reason=reason, task_queue_friendly_name=None)
    upstream.post(f"{account.workspace_url}/Tasks", json=answer, status=201)

    result = invoke(app, "create-task", "--language", "xx")

    assert result.exit_code == 0, result.output
    assert f"note: TaskRouter canceled the task at once: {reason}" in result.stderr


def test_create_task_passes_language_priority_and_timeout(app, upstream, account, sent, task_json):
    answer = task_json(assignment_status="reserved", priority=5, timeout=60)
    upstream.post(f"{account.workspace_url}/Tasks", json=answer, status=201)

    result = invoke(app, "create-task", "--language", "en", "--priority", "5", "--timeout", "60")

    assert result.exit_code == 0, result.output
    (request,) = sent()
    assert request[2] == {
        "WorkflowSid": account.workflow_sid,
        "Attributes": '{"selected_language":"en"}',
        "Priority": "5",
        "Timeout": "60",
    }
    assert result.stdout.splitlines()[1] == "  status      reserved"
    assert result.stderr == ""


def test_create_task_sends_the_attributes_given(app, upstream, account, sent, task_json):
    upstream.post(f"{account.workspace_url}/Tasks", json=task_json(), status=201)

    result = invoke(app, "create-task", "--attributes", '{"selected_language": "es", "vip": true}')

    assert result.exit_code == 0, result.output
    assert sent()[0][2]["Attributes"] == '{"selected_language":"es","vip":true}'


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--language", "en", "--attributes", "{}"],
            "Error: --language and --attributes cannot be used together",
        ),
        (["--attributes", "[1]"], "Invalid value for '--attributes': must be a JSON object"),
        (["--attributes", "{nope"], "Invalid value for '--attributes': must be a JSON object"),
        (["--attributes", '{"a": NaN}'], "Invalid value for '--attributes': must be a JSON"),
        (
            ["--attributes", json.dumps({"a": "x" * 4096})],
            "Invalid value for '--attributes': must be at most 4096 bytes",
        ),
        (["--language", "e s"], "Invalid value for '--language': must be a language code"),
        (["--language", ""], "Invalid value for '--language': must be a language code"),
        (["--priority", "-1"], "Invalid value for '--priority': must be a whole number from 0"),
        (["--priority", "+5"], "Invalid value for '--priority': must be a whole number"),
        (["--priority", str(2**31)], "Invalid value for '--priority': must be a whole number"),
        (["--timeout", "0"], "Invalid value for '--timeout': must be a whole number from 1"),
        (["--timeout", "1209601"], "Invalid value for '--timeout': must be a whole number"),
        (["--priority"], "Error: Option '--priority' requires an argument"),
    ],
)
def test_create_task_refuses_bad_options_before_any_request(app, upstream, args, message):
    result = invoke(app, "create-task", *args)

    assert result.exit_code == 2
    assert message in result.stderr
    assert len(upstream.calls) == 0


def test_create_task_refused_by_taskrouter_keeps_its_code(app, upstream, account):
    error = twilio_error(400, 20001, "Workflow is not active")
    upstream.post(f"{account.workspace_url}/Tasks", status=400, json=error)

    result = invoke(app, "create-task")

    assert result.exit_code == 1
    assert result.stderr == (
        "Error: TaskRouter refused to create the task: Unable to create record: Workflow is "
        "not active (HTTP 400, "
        "Twilio error 20001, https://www.twilio.com/docs/errors/20001)\n"
    )
    assert result.stdout == ""


# -- accept, reject ---------------------------------------------------------------------------


def answer_pending(upstream, account, task_json, reservation_json, count=1):
    """`count` reserved tasks, each with one pending reservation (Alice's, then Bob's)."""
    ws = account.workspace_url
    tasks = [task_json(sid=sid("WT", n), assignment_status="reserved") for n in (1, 2)][:count]
    list_answer(upstream, "tasks", f"{ws}/Tasks", tasks)
    for n, (worker_sid, name) in enumerate(((ALICE, "Alice"), (BOB, "Bob"))[:count], 1):
        pending = reservation_json(
            sid=sid("WR", n),
            task_sid=sid("WT", n),
            worker_sid=worker_sid,
            worker_name=name,
            reservation_status="pending",
        )
        list_answer(upstream, "reservations", f"{ws}/Tasks/{sid('WT', n)}/Reservations", [pending])


def test_accept_without_a_sid_accepts_the_only_pending_reservation(
    app, upstream, account, sent, task_json, reservation_json
):
    answer_pending(upstream, account, task_json, reservation_json)
    reservation_url = f"{account.workspace_url}/Tasks/{TASK_ONE}/Reservations/{RESERVATION_ONE}"
    accepted = reservation_json(sid=RESERVATION_ONE, task_sid=TASK_ONE, worker_sid=ALICE)
    upstream.post(reservation_url, json=accepted)

    result = invoke(app, "accept")

    assert result.exit_code == 0, result.output
    ws = account.workspace_url
    assert sent() == [
        ("GET", f"{ws}/Tasks?{ACTIVE}", {}),
        ("GET", f"{ws}/Tasks/{TASK_ONE}/Reservations?ReservationStatus=pending&PageSize=1000", {}),
        ("POST", reservation_url, {"ReservationStatus": "accepted"}),
    ]
    assert result.stdout == (
        f"Reservation {RESERVATION_ONE} accepted\n  task    {TASK_ONE}\n  worker  Alice\n"
    )


def test_accept_with_several_pending_lists_them_and_changes_nothing(
    app, upstream, account, sent, task_json, reservation_json
):
    answer_pending(upstream, account, task_json, reservation_json, count=2)

    result = invoke(app, "accept")

    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0] == (
        f"Error: 2 reservations are pending in workspace {account.workspace_sid}: name the one "
        f"to accept, e.g. `flask --app app taskrouter accept {RESERVATION_ONE}`"
    )
    assert lines[1] == f"  SID{' ' * 33}TASK{' ' * 32}WORKER  AGE"
    assert re.fullmatch(rf"  {RESERVATION_ONE}  {TASK_ONE}  Alice   \d+d \d\dh", lines[2])
    assert re.fullmatch(rf"  {RESERVATION_TWO}  {TASK_TWO}  Bob     \d+d \d\dh", lines[3])
    assert len(lines) == 4
    assert all(method == "GET" for method, _, _ in sent())


@pytest.mark.parametrize(
    ("tasks", "reason"),
    [
        (
            [{"assignment_status": "pending"}],
            f"no worker is available for the waiting tasks ({TASK_ONE} in Customer Care "
            "Requests - Spanish); make one available, e.g. "
            "`flask --app app taskrouter worker Alice Idle`",
        ),
        (
            [{"assignment_status": "assigned"}],
            f"task {TASK_ONE} is already assigned (its reservation was accepted, or the "
            "Assignment Callback answered accept); finish it with "
            "`flask --app app taskrouter complete`",
        ),
        ([], "no task is waiting; create one with `flask --app app taskrouter create-task`"),
    ],
    ids=["no-worker", "already-assigned", "no-task"],
)
def test_accept_with_none_pending_says_why(app, upstream, account, task_json, tasks, reason):
    records = [task_json(sid=TASK_ONE, **fields) for fields in tasks]
    list_answer(upstream, "tasks", f"{account.workspace_url}/Tasks", records)

    result = invoke(app, "accept")

    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: No reservation is pending in workspace {account.workspace_sid}: {reason}\n"
    )


def test_accept_a_reservation_sid_finds_its_task_through_the_workers(
    app, upstream, account, sent, reservation_json
):
    ws = account.workspace_url
    list_answer(
        upstream, "workers", f"{ws}/Workers", [account.worker("Bob"), account.worker("Alice")]
    )
    list_answer(upstream, "reservations", f"{ws}/Workers/{BOB}/Reservations", [])
    alices = [
        reservation_json(sid=RESERVATION_TWO, task_sid=TASK_TWO, reservation_status="timeout"),
        reservation_json(sid=RESERVATION_ONE, task_sid=TASK_ONE, reservation_status="pending"),
    ]
    list_answer(upstream, "reservations", f"{ws}/Workers/{ALICE}/Reservations", alices)
    reservation_url = f"{ws}/Tasks/{TASK_ONE}/Reservations/{RESERVATION_ONE}"
    upstream.post(reservation_url, json=reservation_json(sid=RESERVATION_ONE, task_sid=TASK_ONE))

    result = invoke(app, "accept", RESERVATION_ONE)

    assert result.exit_code == 0, result.output
    assert sent() == [
        ("GET", f"{ws}/Workers?PageSize=1000", {}),
        ("GET", f"{ws}/Workers/{BOB}/Reservations?PageSize=1000", {}),
        ("GET", f"{ws}/Workers/{ALICE}/Reservations?PageSize=1000", {}),
        ("POST", reservation_url, {"ReservationStatus": "accepted"}),
    ]
    assert result.stdout.splitlines()[:2] == [
        f"Reservation {RESERVATION_ONE} accepted",
        f"  task    {TASK_ONE}",
    ]


def test_accept_an_unknown_reservation_sid(app, upstream, account):
    ws = account.workspace_url
    list_answer(upstream, "workers", f"{ws}/Workers", [account.worker("Alice")])
    list_answer(upstream, "reservations", f"{ws}/Workers/{ALICE}/Reservations", [])

    result = invoke(app, "accept", RESERVATION_ONE)

    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: No reservation {RESERVATION_ONE} in workspace {account.workspace_sid} (none of "
        "its workers Alice has it); `flask --app app taskrouter status` lists the pending ones\n"
    )


def test_accept_a_reservation_no_longer_pending_keeps_twilios_code_and_the_hint(
    app, upstream, account, reservation_json
):
    ws = account.workspace_url
    list_answer(upstream, "workers", f"{ws}/Workers", [account.worker("Alice")])
    timed_out = reservation_json(
        sid=RESERVATION_ONE, task_sid=TASK_ONE, reservation_status="timeout"
    )
    list_answer(upstream, "reservations", f"{ws}/Workers/{ALICE}/Reservations", [timed_out])
    error = twilio_error(400, 20001, "Reservation is not pending")
    upstream.post(f"{ws}/Tasks/{TASK_ONE}/Reservations/{RESERVATION_ONE}", status=400, json=error)

    result = invoke(app, "accept", RESERVATION_ONE)

    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(
        f"Error: TaskRouter refused to accept reservation {RESERVATION_ONE}: Unable to update "
        "record: Reservation is not pending. The reservation is no longer pending: it may have "
        "timed out"
    )
    assert result.stderr.endswith(
        "(HTTP 400, Twilio error 20001, https://www.twilio.com/docs/errors/20001)\n"
    )


def test_reject_moves_the_worker_to_the_activity_named(
    app, upstream, account, sent, task_json, reservation_json
):
    ws = account.workspace_url
    list_answer(upstream, "activities", f"{ws}/Activities", account.activities())
    answer_pending(upstream, account, task_json, reservation_json)
    reservation_url = f"{ws}/Tasks/{TASK_ONE}/Reservations/{RESERVATION_ONE}"
    rejected = reservation_json(
        sid=RESERVATION_ONE, task_sid=TASK_ONE, reservation_status="rejected"
    )
    upstream.post(reservation_url, json=rejected)

    result = invoke(app, "reject", "--activity", "offline")

    assert result.exit_code == 0, result.output
    assert sent()[-1] == (
        "POST",
        reservation_url,
        {"ReservationStatus": "rejected", "WorkerActivitySid": account.activity_sids["Offline"]},
    )
    assert result.stdout == (
        f"Reservation {RESERVATION_ONE} rejected\n"
        f"  task    {TASK_ONE}\n"
        "  worker  Alice, moved to Offline\n"
    )


def test_reject_to_an_unknown_activity_lists_the_activities(app, upstream, account, sent):
    list_answer(upstream, "activities", f"{account.workspace_url}/Activities", account.activities())

    result = invoke(app, "reject", "--activity", "Lunch")

    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: No activity named 'Lunch' in workspace {account.workspace_sid} "
        "(its activities: Offline, Idle, Busy, Reserved)\n"
    )
    assert len(sent()) == 1


# -- complete -----------------------------------------------------------------------------------


def test_complete_without_a_sid_completes_the_only_assigned_task(
    app, upstream, account, sent, task_json
):
    ws = account.workspace_url
    tasks = [
        task_json(sid=TASK_ONE, assignment_status="assigned"),
        task_json(sid=TASK_TWO, assignment_status="pending"),
    ]
    list_answer(upstream, "tasks", f"{ws}/Tasks", tasks)
    done = task_json(sid=TASK_ONE, assignment_status="completed", reason="Completed")
    upstream.post(f"{ws}/Tasks/{TASK_ONE}", json=done)

    result = invoke(app, "complete")

    assert result.exit_code == 0, result.output
    assert sent() == [
        ("GET", f"{ws}/Tasks?{ACTIVE}", {}),
        (
            "POST",
            f"{ws}/Tasks/{TASK_ONE}",
            {"AssignmentStatus": "completed", "Reason": "Completed"},
        ),
    ]
    assert result.stdout == f"Task {TASK_ONE} completed (reason: Completed)\n"


def test_complete_a_task_sid_with_a_reason(app, upstream, account, sent, task_json):
    url = f"{account.workspace_url}/Tasks/{TASK_TWO}"
    upstream.post(url, json=task_json(sid=TASK_TWO, assignment_status="completed", reason="Done"))

    result = invoke(app, "complete", TASK_TWO, "--reason", "Done")

    assert result.exit_code == 0, result.output
    assert sent() == [("POST", url, {"AssignmentStatus": "completed", "Reason": "Done"})]


def test_complete_with_several_lists_them(app, upstream, account, sent, task_json):
    tasks = [
        task_json(sid=TASK_ONE, assignment_status="assigned", age=30),
        task_json(sid=TASK_TWO, assignment_status="wrapping", age=90),
    ]
    list_answer(upstream, "tasks", f"{account.workspace_url}/Tasks", tasks)

    result = invoke(app, "complete")

    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("Error: 2 tasks are assigned or wrapping in workspace ")
    assert lines[2:] == [
        f"  {TASK_ONE}  assigned  Customer Care Requests - Spanish  30s",
        f"  {TASK_TWO}  wrapping  Customer Care Requests - Spanish  1m 30s",
    ]
    assert len(sent()) == 1


def test_complete_with_only_a_reserved_task_says_to_accept_first(app, upstream, account, task_json):
    tasks = [task_json(sid=TASK_ONE, assignment_status="reserved")]
    list_answer(upstream, "tasks", f"{account.workspace_url}/Tasks", tasks)

    result = invoke(app, "complete")

    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: No task is assigned or wrapping in workspace {account.workspace_sid}: task "
        f"{TASK_ONE} is reserved; accept its reservation first with "
        "`flask --app app taskrouter accept`\n"
    )


def test_complete_refused_by_taskrouter(app, upstream, account):
    error = twilio_error(400, 20001, f"Cannot complete task {TASK_ONE}: it is pending")
    upstream.post(f"{account.workspace_url}/Tasks/{TASK_ONE}", status=400, json=error)

    result = invoke(app, "complete", TASK_ONE)

    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: TaskRouter refused to complete task {TASK_ONE}: Unable to update record: Cannot "
        f"complete task "
        f"{TASK_ONE}: it is pending (HTTP 400, Twilio error 20001, "
        "https://www.twilio.com/docs/errors/20001)\n"
    )


# -- bad arguments ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["accept", "WR123"], "Invalid value for '[RESERVATION]': 'WR123' must be WR followed"),
        (["accept", TASK_ONE], "must be WR followed by 32 hex characters"),
        (["accept", RESERVATION_ONE, RESERVATION_TWO], "Got unexpected extra argument"),
        (["reject", "x"], "must be WR followed by 32 hex characters"),
        (["reject", "--activity", " "], "Invalid value for '--activity': must not be empty"),
        (["reject", "--activity"], "Option '--activity' requires an argument"),
        (["complete", RESERVATION_ONE], "Invalid value for '[TASK]': "),
        (["complete", "--reason", ""], "Invalid value for '--reason': must not be empty"),
        (["complete", "--reason", "x" * 256], "'--reason': must be at most 255 characters"),
        (["accept", "--activity", "Offline"], "No such option '--activity'"),
    ],
)
def test_bad_arguments_are_usage_errors(app, upstream, args, message):
    result = invoke(app, *args)

    assert result.exit_code == 2
    assert message in result.stderr
    assert len(upstream.calls) == 0


# -- the quickstart against the sandbox, over real HTTP ---------------------------------------


def test_the_quickstart_walked_from_the_command_line_on_the_sandbox(live_app):
    live = live_app()
    app, engine = live.app, live.sandbox.engine
    workspace_sid = live.sandbox.seeded.workspace_sid

    created = invoke(app, "create-task")

    assert created.exit_code == 0, created.output
    task_sid = created.stdout.splitlines()[0]
    assert re.fullmatch(r"WT[0-9a-f]{32}", task_sid)
    assert "  status      pending" in created.stdout.splitlines()
    assert "  queue       Customer Care Requests - Spanish" in created.stdout.splitlines()

    # Everyone is Offline: nothing to accept yet, and the command says why.
    too_early = invoke(app, "accept")

    assert too_early.exit_code == 1
    assert "no worker is available for the waiting tasks" in too_early.stderr
    assert task_sid in too_early.stderr

    moved = invoke(app, "worker", "Alice", "Idle")

    assert moved.exit_code == 0, moved.output
    reserved = invoke(app, "status")

    assert reserved.exit_code == 0, reserved.output
    (pending,) = engine.list_reservations(
        workspace_sid, Paging(page_size=1000), task_sid=task_sid, reservation_status="pending"
    ).rows
    assert re.search(
        rf"^  {pending['sid']}  {task_sid}  Alice   \d+s$", reserved.stdout, re.MULTILINE
    )
    workflow = engine.get_workflow(workspace_sid, live.sandbox.seeded.workflow_sid)
    # Whatever URL the workflow holds (the serving process points it at itself), status shows.
    shown = workflow["assignment_callback_url"] or "none: "
    assert any(
        line.startswith(f"  Assignment Callback URL  {shown}")
        for line in reserved.stdout.splitlines()
    )

    accepted = invoke(app, "accept")

    assert accepted.exit_code == 0, accepted.output
    assert accepted.stdout == (
        f"Reservation {pending['sid']} accepted\n  task    {task_sid}\n  worker  Alice\n"
    )
    assigned = invoke(app, "status")

    assert assigned.exit_code == 0, assigned.output
    assert re.search(
        rf"^  {task_sid}  assigned  Customer Care Requests - Spanish  0 +\d+s$",
        assigned.stdout,
        re.MULTILINE,
    )
    assert "  Alice  Busy      no" in assigned.stdout.splitlines()

    # Accepting again is TaskRouter's refusal, with its code and the hint.
    again = invoke(app, "accept", pending["sid"])

    assert again.exit_code == 1
    assert again.stderr.startswith("Error: TaskRouter refused to accept reservation ")
    assert "Twilio error " in again.stderr
    assert again.stderr.count("\n") == 1

    completed = invoke(app, "complete")

    assert completed.exit_code == 0, completed.output
    assert completed.stdout == f"Task {task_sid} completed (reason: Completed)\n"
    assert engine.get_task(workspace_sid, task_sid)["assignment_status"] == "completed"


@pytest.mark.parametrize("command", ["create-task", "accept", "reject", "complete"])
def test_actions_before_setup_say_what_to_set(make_app, upstream, sids, auth_token, command):
    app = make_app({"TWILIO_ACCOUNT_SID": sids.account, "TWILIO_AUTH_TOKEN": auth_token})

    result = invoke(app, command)

    assert result.exit_code == 1
    assert re.fullmatch(
        r"Error: TWILIO_(WORKSPACE|WORKFLOW)_SID is not set: run `.venv/bin/flask --app app "
        r"taskrouter setup` .*\n",
        result.stderr,
    )
    assert len(upstream.calls) == 0
