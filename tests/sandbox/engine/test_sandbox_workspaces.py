"""Workspaces, Activities and TaskChannels through the official twilio library.

Each test makes its own workspace on the module's live sandbox.
"""

from __future__ import annotations

import pytest

from tests.sandbox.conftest import Live, assert_error_body, list_error, twilio_error


def test_create_fetch_update_list_delete_workspace(live: Live) -> None:
    created = live.new_workspace(
        "Support",
        event_callback_url="https://example.com/events",
        events_filter="task.created,task.canceled",
        multi_task_enabled=True,
        prioritize_queue_order="LIFO",
    )
    assert created.sid.startswith("WS") and len(created.sid) == 34
    assert created.account_sid == live.sandbox.account_sid
    assert created.friendly_name == "Support"
    assert created.default_activity_name == "Offline"
    assert created.timeout_activity_name == "Offline"
    assert created.multi_task_enabled is True
    assert created.prioritize_queue_order == "LIFO"
    assert created.events_filter == "task.created,task.canceled"
    assert created.url == f"{live.base_url}/v1/Workspaces/{created.sid}"
    assert created.links["tasks"] == f"{created.url}/Tasks"

    fetched = live.v1.workspaces(created.sid).fetch()
    assert fetched.sid == created.sid and fetched.date_created == created.date_created

    available = next(
        a
        for a in live.v1.workspaces(created.sid).activities.list()
        if a.friendly_name == "Available"
    )
    updated = live.v1.workspaces(created.sid).update(
        friendly_name="Support 2",
        default_activity_sid=available.sid,
        event_callback_url="",
        multi_task_enabled=False,
    )
    assert updated.friendly_name == "Support 2"
    assert updated.default_activity_sid == available.sid
    assert updated.default_activity_name == "Available"
    assert updated.event_callback_url is None
    assert updated.multi_task_enabled is False

    names = [w.friendly_name for w in live.v1.workspaces.list(friendly_name="Support 2")]
    assert names == ["Support 2"]

    assert live.v1.workspaces(created.sid).delete() is True
    with twilio_error(404, 20404, f"/v1/Workspaces/{created.sid}"):
        live.v1.workspaces(created.sid).fetch()


def test_new_workspace_has_twilio_defaults(live: Live) -> None:
    workspace = live.new_workspace()
    activities = live.v1.workspaces(workspace.sid).activities.list()
    assert [(a.friendly_name, a.available) for a in activities] == [
        ("Offline", False),
        ("Available", True),
        ("Unavailable", False),
    ]
    channels = [c.unique_name for c in live.v1.workspaces(workspace.sid).task_channels.list()]
    assert channels == ["default", "voice", "sms", "chat", "video", "email"]
    assert live.v1.workspaces(workspace.sid).task_queues.list() == []
    assert live.v1.workspaces(workspace.sid).workflows.list() == []


def test_fifo_template_adds_queue_and_workflow(live: Live) -> None:
    workspace = live.new_workspace(template="FIFO")
    queues = live.v1.workspaces(workspace.sid).task_queues.list()
    workflows = live.v1.workspaces(workspace.sid).workflows.list()
    assert [q.friendly_name for q in queues] == ["Sample Queue"]
    assert [w.friendly_name for w in workflows] == ["Default Fifo Workflow"]
    task = live.v1.workspaces(workspace.sid).tasks.create(attributes="{}")
    assert task.task_queue_sid == queues[0].sid


def test_delete_workspace_deletes_everything_in_it(live: Live) -> None:
    workspace = live.new_workspace(template="FIFO")
    context = live.v1.workspaces(workspace.sid)
    worker = context.workers.create(friendly_name="Zoe")
    task = context.tasks.create(attributes="{}")
    context.delete()
    with live.sandbox.store.read() as tx:
        for table in ("activities", "workers", "tasks", "task_queues", "workflows", "events"):
            count = tx.scalar(
                f"SELECT count(*) FROM {table} WHERE workspace_sid = ?", (workspace.sid,)
            )
            assert count == 0, table
    with twilio_error(404, 20404):
        context.workers(worker.sid).fetch()
    with twilio_error(404, 20404):
        context.tasks(task.sid).fetch()


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"friendly_name": ""}, "FriendlyName"),
        ({"friendly_name": "x" * 65}, "FriendlyName"),
        ({"friendly_name": "ok", "event_callback_url": "not a url"}, "EventCallbackUrl"),
        ({"friendly_name": "ok", "event_callback_url": "ftp://example.com/x"}, "EventCallbackUrl"),
        ({"friendly_name": "ok", "template": "LIFO"}, "Template"),
        ({"friendly_name": "ok", "prioritize_queue_order": "RANDOM"}, "PrioritizeQueueOrder"),
    ],
)
def test_create_workspace_rejects_bad_input(live: Live, fields: dict, fragment: str) -> None:
    before = len(live.v1.workspaces.list())
    with twilio_error(400, 20001, fragment):
        live.v1.workspaces.create(**fields)
    assert len(live.v1.workspaces.list()) == before


def test_create_workspace_requires_friendly_name(live: Live) -> None:
    response = live.http("POST", "/v1/Workspaces", data={})
    body = assert_error_body(response, 400, 20001)
    assert "FriendlyName" in body["message"]


def test_update_workspace_rejects_unknown_activity(live: Live) -> None:
    workspace = live.new_workspace()
    other = live.new_workspace()
    foreign = live.v1.workspaces(other.sid).activities.list()[0].sid
    with twilio_error(400, 20001, "DefaultActivitySid"):
        live.v1.workspaces(workspace.sid).update(default_activity_sid=foreign)
    with twilio_error(400, 20001, "TimeoutActivitySid"):
        live.v1.workspaces(workspace.sid).update(timeout_activity_sid="WAnot-a-sid")
    response = live.http(
        "POST", f"/v1/Workspaces/{workspace.sid}", data={"MultiTaskEnabled": "maybe"}
    )
    assert "MultiTaskEnabled" in assert_error_body(response, 400, 20001)["message"]


def test_activity_crud(live: Live) -> None:
    workspace = live.v1.workspaces(live.new_workspace().sid)
    lunch = workspace.activities.create(friendly_name="Lunch", available=False)
    assert lunch.sid.startswith("WA") and lunch.available is False
    ready = workspace.activities.create(friendly_name="Ready", available=True)
    assert ready.available is True
    assert workspace.activities(lunch.sid).fetch().friendly_name == "Lunch"
    renamed = workspace.activities(lunch.sid).update(friendly_name="Break")
    assert renamed.friendly_name == "Break" and renamed.available is False
    names = [a.friendly_name for a in workspace.activities.list(available="true")]
    assert names == ["Available", "Ready"]
    assert [a.friendly_name for a in workspace.activities.list(friendly_name="Break")] == ["Break"]
    assert workspace.activities(lunch.sid).delete() is True
    with twilio_error(404, 20404):
        workspace.activities(lunch.sid).fetch()


def test_activity_available_is_fixed_at_creation(live: Live) -> None:
    workspace = live.new_workspace()
    activity = live.v1.workspaces(workspace.sid).activities.create(friendly_name="Desk")
    response = live.http(
        "POST",
        f"/v1/Workspaces/{workspace.sid}/Activities/{activity.sid}",
        data={"Available": "true"},
    )
    body = assert_error_body(response, 400, 20001)
    assert "Available" in body["message"]
    assert live.v1.workspaces(workspace.sid).activities(activity.sid).fetch().available is False


def test_activity_names_are_unique(live: Live) -> None:
    workspace = live.v1.workspaces(live.new_workspace().sid)
    with twilio_error(400, 20001, "already exists"):
        workspace.activities.create(friendly_name="offline")


def test_activity_in_use_cannot_be_deleted(live: Live) -> None:
    workspace = live.v1.workspaces(live.new_workspace().sid)
    activities = {a.friendly_name: a.sid for a in workspace.activities.list()}
    with twilio_error(400, 20001, "default or timeout activity"):
        workspace.activities(activities["Offline"]).delete()
    workspace.workers.create(friendly_name="Ann", activity_sid=activities["Available"])
    with twilio_error(400, 20001, "worker(s) are in it"):
        workspace.activities(activities["Available"]).delete()
    workspace.task_queues.create(
        friendly_name="Q", reservation_activity_sid=activities["Unavailable"]
    )
    with twilio_error(400, 20001, "reservation or assignment activity"):
        workspace.activities(activities["Unavailable"]).delete()


def test_task_channels(live: Live) -> None:
    workspace = live.v1.workspaces(live.new_workspace().sid)
    default = workspace.task_channels("default").fetch()
    assert default.unique_name == "default" and default.sid.startswith("TC")
    assert workspace.task_channels(default.sid).fetch().unique_name == "default"
    custom = workspace.task_channels.create(
        friendly_name="Callbacks", unique_name="callbacks", channel_optimized_routing=True
    )
    assert custom.channel_optimized_routing is True
    updated = workspace.task_channels(custom.sid).update(friendly_name="Call backs")
    assert updated.friendly_name == "Call backs"
    with twilio_error(400, 20001, "UniqueName"):
        workspace.task_channels.create(friendly_name="again", unique_name="callbacks")
    assert workspace.task_channels(custom.sid).delete() is True
    with twilio_error(404, 20404):
        workspace.task_channels("callbacks").fetch()


def test_unknown_workspace_children_are_404(live: Live) -> None:
    missing = live.v1.workspaces("WS" + "0" * 32)
    with list_error(404, 20404, "/v1/Workspaces/WS"):
        missing.activities.list()
    with twilio_error(404, 20404):
        missing.workers.create(friendly_name="x")
    with twilio_error(404, 20404):
        missing.task_channels("default").fetch()
