"""Events through the official twilio library: what is recorded, fetch, filters, time windows.

This module moves its own sandbox's clock forward to test the windows.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.sandbox.conftest import Live, assert_error_body, routing, twilio_error


def test_events_record_who_what_and_where(live: Live) -> None:
    workspace = live.new_workspace()
    context = live.v1.workspaces(workspace.sid)
    worker = context.workers.create(friendly_name="Ivy")
    events = context.events.list(worker_sid=worker.sid)
    assert [e.event_type for e in events] == ["worker.created"]
    event = events[0]
    assert event.sid.startswith("EV") and len(event.sid) == 34
    assert event.account_sid == live.sandbox.account_sid
    assert event.workspace_sid == workspace.sid
    assert event.actor_type == "account" and event.actor_sid == live.sandbox.account_sid
    assert event.resource_type == "worker" and event.resource_sid == worker.sid
    assert event.resource_url == worker.url
    assert event.description == "Worker Ivy created"
    assert event.event_date == live.clock.now().replace(microsecond=0)
    assert event.event_date_ms == int(live.clock.now().timestamp() * 1000)
    assert event.url == f"{live.base_url}/v1/Workspaces/{workspace.sid}/Events/{event.sid}"
    data = event.event_data
    assert data["worker_sid"] == worker.sid
    assert data["worker_name"] == "Ivy"
    assert data["worker_activity_name"] == "Offline"
    assert data["workspace_name"] == "Test workspace"
    assert data["event_type"] == "worker.created"

    fetched = context.events(event.sid).fetch()
    assert fetched.sid == event.sid and fetched.event_data == data


def test_event_filters(live: Live) -> None:
    workspace = live.new_workspace()
    context = live.v1.workspaces(workspace.sid)
    queue = context.task_queues.create(friendly_name="Q")
    flow = context.workflows.create(friendly_name="F", configuration=routing(default=queue.sid))
    first = context.tasks.create(attributes="{}", task_channel="voice")
    second = context.tasks.create(attributes="{}")

    def types(**filters: object) -> list[str]:
        return [e.event_type for e in context.events.list(**filters)]

    assert types(task_sid=first.sid) == ["task-queue.entered", "workflow.entered", "task.created"]
    assert types(event_type="task.created") == ["task.created", "task.created"]
    assert types(task_queue_sid=queue.sid, event_type="task-queue.entered") == [
        "task-queue.entered",
        "task-queue.entered",
    ]
    assert len(types(workflow_sid=flow.sid)) == 7  # workflow.created and three per task
    assert types(task_channel="voice") == [
        "task-queue.entered",
        "workflow.entered",
        "task.created",
        "task-channel.created",
    ]
    created = context.events.list(task_sid=second.sid, event_type="task.created")[0]
    assert [e.sid for e in context.events.list(sid=created.sid)] == [created.sid]


def test_event_time_windows(live: Live) -> None:
    workspace = live.new_workspace()
    context = live.v1.workspaces(workspace.sid)
    start = live.clock.now()
    context.workers.create(friendly_name="Early")
    live.clock.advance(20 * 60)
    late = context.workers.create(friendly_name="Late")
    # Without a window TaskRouter shows the last 15 minutes.
    assert [e.resource_sid for e in context.events.list()] == [late.sid]
    assert len(context.events.list(minutes=30, event_type="worker.created")) == 2
    window = context.events.list(
        start_date=start - timedelta(seconds=1),
        end_date=start + timedelta(minutes=1),
        event_type="worker.created",
    )
    assert [e.event_data["worker_name"] for e in window] == ["Early"]


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ({"Minutes": "0"}, "Minutes"),
        ({"Minutes": "43201"}, "Minutes"),
        ({"StartDate": "yesterday"}, "StartDate"),
        ({"EndDate": "2024-13-45T00:00:00Z"}, "EndDate"),
        ({"StartDate": "2024-02-01T00:00:00Z", "EndDate": "2024-01-01T00:00:00Z"}, "StartDate"),
    ],
)
def test_event_list_rejects_bad_windows(live: Live, query: dict, fragment: str) -> None:
    workspace = live.new_workspace()
    response = live.http("GET", f"/v1/Workspaces/{workspace.sid}/Events", params=query)
    assert fragment in assert_error_body(response, 400, 20001)["message"]


def test_unknown_event_is_404(live: Live) -> None:
    workspace = live.new_workspace()
    with twilio_error(404, 20404, f"/Events/EV{'8' * 32}"):
        live.v1.workspaces(workspace.sid).events("EV" + "8" * 32).fetch()
    other = live.new_workspace()
    event = live.v1.workspaces(other.sid).events.list(minutes=60)[0]
    with twilio_error(404, 20404):
        live.v1.workspaces(workspace.sid).events(event.sid).fetch()
