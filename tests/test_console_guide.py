"""The page's guide: where the newest task stands in the quickstart's lifecycle, the one next
action, and why nothing can happen when nothing can; plus what the guide reads beside it (the
workflow's real callback URL, alerts with their URL, callbacks of this workspace only).
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing

import pytest
import requests

from taskrouter_quickstart import callback_log
from taskrouter_quickstart.console_guide import derive_guide

OFFLINE = "WA" + "0" * 32
IDLE = "WA" + "1" * 32
BUSY = "WA" + "2" * 32
RESERVED = "WA" + "3" * 32
ALICE = "WK" + "a" * 32
BOB = "WK" + "b" * 32
SPANISH = "WQ" + "5" * 32
FIRST = "WT" + "1" * 32
SECOND = "WT" + "2" * 32
RESERVATION = "WR" + "4" * 32
CALLBACK_URL = "http://127.0.0.1:5000/assignment_callback"

ACTIVITIES = [
    {"sid": OFFLINE, "friendly_name": "Offline", "available": False},
    {"sid": IDLE, "friendly_name": "Idle", "available": True},
    {"sid": BUSY, "friendly_name": "Busy", "available": False},
    {"sid": RESERVED, "friendly_name": "Reserved", "available": False},
]
ACTIVITY_NAMES = {activity["sid"]: activity["friendly_name"] for activity in ACTIVITIES}


def worker(sid: str, name: str, activity: str) -> dict:
    return {
        "sid": sid,
        "friendly_name": name,
        "activity_sid": activity,
        "activity_name": ACTIVITY_NAMES[activity],
        "available": activity == IDLE,
    }


def task(sid: str, status: str) -> dict:
    return {
        "sid": sid,
        "assignment_status": status,
        "task_queue_sid": SPANISH,
        "task_queue_friendly_name": "Customer Care Requests - Spanish",
    }


def event(event_type: str, task_sid: str, worker_sid: str = ALICE) -> dict:
    return {
        "event_type": event_type,
        "data": {"reservation_sid": RESERVATION, "task_sid": task_sid, "worker_sid": worker_sid},
    }


def guide(
    tasks,
    alice=OFFLINE,
    *,
    mode="manual",
    pending=(),
    events=(),
    alerts=(),
    callback_url=CALLBACK_URL,
    members=(ALICE,),
    bob=OFFLINE,
):
    """The guide for a quickstart workspace: Alice alone in the Spanish queue, Bob not."""
    tasks = list(tasks)
    return derive_guide(
        mode=mode,
        backend="sandbox",
        activities=ACTIVITIES,
        workers=[worker(ALICE, "Alice", alice), worker(BOB, "Bob", bob)],
        tasks=tasks,
        pending=list(pending),
        events=list(events),
        alerts=list(alerts),
        workflow={"sid": "WW" + "9" * 32, "assignment_callback_url": callback_url},
        # As console_state reads them: only while the newest task is pending.
        queue_members=(
            list(members) if tasks and tasks[0]["assignment_status"] == "pending" else None
        ),
    )


def pending_reservation(task_sid: str = FIRST) -> dict:
    return {"sid": RESERVATION, "task_sid": task_sid, "worker_sid": ALICE, "worker_name": "Alice"}


def test_with_no_task_the_next_action_creates_the_quickstarts_task():
    result = guide([])
    assert result["step"] == 0
    assert result["part"] == 1
    assert result["action"] == {
        "kind": "create_task",
        "label": "Create a task",
        "fields": {"selected_language": "es"},
    }
    assert result["why"] is None


def test_a_pending_task_whose_worker_is_offline_asks_to_make_that_worker_idle():
    result = guide([task(FIRST, "pending")], alice=OFFLINE, bob=IDLE)
    assert result["step"] == 1
    assert result["action"] == {
        "kind": "update_worker",
        "label": "Set Alice to Idle",
        "fields": {"WorkerSid": ALICE, "ActivitySid": IDLE},
    }
    # Bob is Idle but not in the Spanish queue: he is no help, and the line says so.
    assert result["why"] == (
        "The task waits in Customer Care Requests - Spanish: no eligible worker is available "
        "(Alice is Offline)."
    )


def test_a_pending_task_in_a_queue_without_members_has_no_action_and_says_why():
    result = guide([task(FIRST, "pending")], members=())
    assert result["action"] is None
    assert "Nobody is in Customer Care Requests - Spanish" in result["why"]


def test_a_task_its_only_eligible_worker_rejected_says_so_and_offers_a_new_task():
    result = guide(
        [task(FIRST, "pending")], alice=IDLE, events=[event("reservation.rejected", FIRST)]
    )
    assert result["step"] == 2
    assert result["action"]["kind"] == "create_task"
    assert result["action"]["label"] == "Create another task"
    assert result["why"].startswith("Alice refused this task, its only eligible worker")
    assert "until the task is placed afresh" in result["why"]


def test_a_pending_task_with_its_worker_available_waits_without_an_action():
    result = guide([task(FIRST, "pending")], alice=IDLE)
    assert result["step"] == 2
    assert result["action"] is None
    assert result["why"] is None
    assert "reserving Alice" in result["note"]


def test_a_reserved_task_with_a_pending_reservation_asks_to_accept_it():
    result = guide([task(FIRST, "reserved")], alice=RESERVED, pending=[pending_reservation()])
    assert result["step"] == 3
    assert result["action"] == {
        "kind": "accept",
        "label": f"Accept reservation {RESERVATION[:8]}…",
        "sid": RESERVATION,
        "fields": {"TaskSid": FIRST, "ReservationSid": RESERVATION},
    }
    assert result["why"] is None


def test_a_failed_callback_is_the_reason_named_with_its_url():
    alert = {
        "resource_sid": RESERVATION,
        "error_code": "11200",
        "alert_text": "HTTP 405 from the callback",
        "url": "http://127.0.0.1:5000/healthz",
    }
    result = guide(
        [task(FIRST, "reserved")],
        alice=RESERVED,
        mode="accept",
        pending=[pending_reservation()],
        alerts=[alert],
    )
    assert result["action"]["kind"] == "accept"
    assert result["why"] == (
        "The Assignment Callback at http://127.0.0.1:5000/healthz failed (11200: HTTP 405 from "
        "the callback): accept the reservation here, or fix the callback."
    )


def test_a_workflow_without_a_callback_url_is_the_reason_a_reservation_waits():
    result = guide(
        [task(FIRST, "reserved")],
        alice=RESERVED,
        mode="accept",
        pending=[pending_reservation()],
        callback_url=None,
    )
    assert result["action"]["kind"] == "accept"
    assert result["why"].startswith("The workflow has no Assignment Callback URL")


@pytest.mark.parametrize(
    ("tasks", "alice", "label", "fields"),
    [
        # Part one done: the assigned worker is made unavailable without completing the task.
        ([task(FIRST, "assigned")], BUSY, "Set Alice to Offline", {"ActivitySid": OFFLINE}),
        ([task(FIRST, "assigned")], OFFLINE, "Create another task", {"selected_language": "es"}),
        (
            [task(SECOND, "pending"), task(FIRST, "assigned")],
            OFFLINE,
            "Set Alice to Idle",
            {"ActivitySid": IDLE},
        ),
    ],
)
def test_part_two_is_derived_from_the_assigned_task(tasks, alice, label, fields):
    result = guide(tasks, alice=alice, mode="accept", events=[event("reservation.accepted", FIRST)])
    assert result["part"] == 2
    assert result["action"]["label"] == label
    assert fields.items() <= result["action"]["fields"].items()


def test_in_manual_mode_part_two_says_to_restart_in_accept_mode():
    result = guide(
        [task(FIRST, "assigned")], alice=BUSY, events=[event("reservation.accepted", FIRST)]
    )
    assert "ASSIGNMENT_MODE=accept" in result["note"]
    accept_mode = guide(
        [task(FIRST, "assigned")],
        alice=BUSY,
        mode="accept",
        events=[event("reservation.accepted", FIRST)],
    )
    assert "ASSIGNMENT_MODE" not in accept_mode["note"]


def test_two_assigned_tasks_end_the_quickstart():
    result = guide(
        [task(SECOND, "assigned"), task(FIRST, "assigned")],
        alice=BUSY,
        events=[event("reservation.accepted", SECOND), event("reservation.accepted", FIRST)],
    )
    assert result["step"] == 5
    assert result["action"] is None
    assert result["note"].startswith("Both parts are done")


def test_a_finished_newest_task_starts_over():
    result = guide([task(FIRST, "completed")], alice=IDLE)
    assert result["step"] == 0
    assert result["action"]["label"] == "Create a task"


# -- the callback log keeps each callback's workspace -------------------------------------

OLD_SCHEMA = """
CREATE TABLE assignment_callbacks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at TEXT NOT NULL,
    reservation_sid TEXT,
    task_sid TEXT,
    worker_sid TEXT,
    task_queue_sid TEXT,
    workflow_sid TEXT,
    task_attributes TEXT,
    worker_attributes TEXT,
    answer TEXT NOT NULL
)
"""
WORKSPACE = "WS" + "1" * 32
WIPED_WORKSPACE = "WS" + "0" * 32
WORKFLOW = "WW" + "1" * 32
WIPED_WORKFLOW = "WW" + "0" * 32


def test_a_log_file_from_before_workspaces_is_migrated_and_filtered(tmp_path):
    path = tmp_path / "callbacks.sqlite3"
    with closing(sqlite3.connect(path)) as connection:
        connection.execute(OLD_SCHEMA)
        for task_sid, workflow_sid in ((FIRST, WIPED_WORKFLOW), (SECOND, WORKFLOW)):
            connection.execute(
                "INSERT INTO assignment_callbacks (received_at, task_sid, workflow_sid, answer)"
                " VALUES ('2024-05-14T14:26:54Z', ?, ?, '{}')",
                (task_sid, workflow_sid),
            )
        connection.commit()

    log = callback_log.CallbackLog(path)
    try:
        third = "WT" + "3" * 32
        log.record({"task_sid": third, "workspace_sid": WORKSPACE, "answer": "{}"})
        log.record({"task_sid": "WT" + "4" * 32, "workspace_sid": WIPED_WORKSPACE, "answer": "{}"})
        assert len(log.recent(10)) == 4
        # The old rows have no workspace: the workspace's own workflow vouches for them.
        shown = log.recent(10, workspace_sid=WORKSPACE, workflow_sid=WORKFLOW)
        assert [row["task_sid"] for row in shown] == [third, SECOND]
        assert shown[0]["workspace_sid"] == WORKSPACE
    finally:
        log.close()
    # Opening it again finds the column there already.
    callback_log.CallbackLog(path).close()


def test_the_live_state_shows_what_the_workflow_calls_and_only_this_workspaces_callbacks(
    live_app,
):
    server = live_app()
    workflow_sid = server.app.config["TWILIO_WORKFLOW_SID"]
    workspace_sid = server.app.config["TWILIO_WORKSPACE_SID"]
    log = server.app.extensions["callback_log"]
    # What a workspace wiped by `flask sandbox reset` left in the log, and this one's.
    log.record({"task_sid": FIRST, "workspace_sid": WIPED_WORKSPACE, "answer": "{}"})
    log.record({"task_sid": SECOND, "workflow_sid": WIPED_WORKFLOW, "answer": "{}"})
    log.record({"task_sid": "WT" + "5" * 32, "workspace_sid": workspace_sid, "answer": "{}"})
    # /healthz answers POST with 405: the callback fails with an alert naming that URL.
    failing = f"{server.url}/healthz"
    server.workspace.workflows(workflow_sid).update(assignment_callback_url=failing)
    server.set_activity("Alice", "Idle")
    task = server.workspace.tasks.create(
        workflow_sid=workflow_sid, attributes='{"selected_language": "es"}'
    )

    deadline = time.monotonic() + 10
    while True:
        state = requests.get(f"{server.url}/console/state", timeout=10).json()
        if state["alerts"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)

    assert state["workflow"]["assignment_callback_url"] == failing
    assert [alert["url"] for alert in state["alerts"]] == [failing]
    assert [row["task_sid"] for row in state["callbacks"]] == ["WT" + "5" * 32]
    guide = state["guide"]
    assert guide["task_sid"] == task.sid
    assert guide["action"]["kind"] == "accept"
    assert guide["why"].startswith(f"The Assignment Callback at {failing} failed (11200")


def test_an_older_task_someone_else_holds_is_not_part_two_done():
    """Part two is Alice given a task while she holds her first, not any two assigned tasks."""
    result = guide(
        [task(SECOND, "assigned"), task(FIRST, "assigned")],
        alice=BUSY,
        mode="accept",
        events=[event("reservation.accepted", SECOND), event("reservation.accepted", FIRST, BOB)],
    )
    assert not result["note"].startswith("Both parts are done")
    assert result["action"]["label"] == "Set Alice to Offline"
