"""Twilio's Worker SDK (twilio-taskrouter 2.1.1, unmodified) connecting to the sandbox: what a
desk holds once it is `ready`, its channels, and the sockets it opens.

The Worker class (https://twilio.github.io/twilio-taskrouter.js/Worker.html): `ready` once the
worker is loaded, with its activity, the workspace's activities, its channels and its pending
reservations; Channel (Channel.html): capacityUpdated and availabilityUpdated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from taskrouter_sandbox.testing import TaskRouterSandbox
from tests.sandbox.eventbridge.conftest import OpenDesk
from tests.sandbox.eventbridge.desks import create_task, set_activity

pytestmark = pytest.mark.taskrouter_sandbox(transport="http")


def test_ready_brings_the_worker_its_activity_the_activities_and_its_attributes(
    taskrouter_sandbox: TaskRouterSandbox, desks: OpenDesk
) -> None:
    box = taskrouter_sandbox
    worker = desks("Alice").state()
    assert worker["sid"] == box.workers["Alice"]
    assert worker["name"] == "Alice"
    assert worker["workspaceSid"] == box.workspace_sid
    assert worker["activity"] == {
        "sid": box.activities["Offline"],
        "name": "Offline",
        "available": False,
    }
    assert worker["attributes"] == {"languages": ["en", "es"]}
    assert {a["name"]: (a["sid"], a["available"]) for a in worker["activities"]} == {
        activity.friendly_name: (activity.sid, activity.available)
        for activity in box.workspace.activities.list()
    }
    assert worker["reservations"] == []


def test_the_channels_are_the_workers_worker_channels(
    taskrouter_sandbox: TaskRouterSandbox, desks: OpenDesk
) -> None:
    box = taskrouter_sandbox
    channels = desks("Bob").state()["channels"]
    rest = box.workspace.workers(box.workers["Bob"]).worker_channels.list()
    assert channels and len(channels) == len(rest)
    assert sorted(channels, key=lambda c: c["sid"]) == [
        {
            "sid": channel.sid,
            "taskChannelUniqueName": channel.task_channel_unique_name,
            "capacity": channel.configured_capacity,
            "available": channel.available,
            "assignedTasks": channel.assigned_tasks,
            "availableCapacityPercentage": channel.available_capacity_percentage,
        }
        for channel in sorted(rest, key=lambda c: c.sid)
    ]


def test_a_channel_changed_over_rest_reaches_its_capacity_and_availability_events(
    taskrouter_sandbox: TaskRouterSandbox, desks: OpenDesk
) -> None:
    box = taskrouter_sandbox
    desk = desks("Bob")
    chat = next(c for c in desk.state()["channels"] if c["taskChannelUniqueName"] == "chat")
    channels = box.workspace.workers(box.workers["Bob"]).worker_channels
    channels(chat["sid"]).update(capacity=3)
    updated = desk.wait_for("channel.capacityUpdated")["channel"]
    assert (updated["sid"], updated["capacity"]) == (chat["sid"], 3)
    channels(chat["sid"]).update(available=False)
    updated = desk.wait_for("channel.availabilityUpdated")["channel"]
    assert (updated["sid"], updated["available"]) == (chat["sid"], False)
    assert {c["sid"]: c["available"] for c in desk.state()["channels"]}[chat["sid"]] is False


def test_a_reservation_pending_before_the_desk_connects_is_loaded_with_ready(
    taskrouter_sandbox: TaskRouterSandbox, desks: OpenDesk
) -> None:
    # The reconnect page: once connected, "the latest state (for example, pending tasks) is
    # fetched from the backend".
    box = taskrouter_sandbox
    set_activity(box, "Alice", "Idle")
    task = create_task(box, "es")
    (reservation,) = box.workspace.tasks(task.sid).reservations.list()
    held = desks("Alice").state()["reservations"]
    assert [(r["sid"], r["status"], r["task"]["sid"]) for r in held] == [
        (reservation.sid, "pending", task.sid)
    ]
    assert held[0]["task"]["attributes"] == {"selected_language": "es"}


@pytest.fixture
def upgrades(taskrouter_sandbox: TaskRouterSandbox) -> Iterator[list[str]]:
    """The path of every websocket upgrade the sandbox's server is asked for, while the test
    runs (the app is given back as it was)."""
    app = taskrouter_sandbox.app
    served = app.wsgi_app
    seen: list[str] = []

    def recording(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("HTTP_UPGRADE", "").lower() == "websocket":
            seen.append(environ["PATH_INFO"])
        return served(environ, start_response)

    app.wsgi_app = recording  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        app.wsgi_app = served  # type: ignore[method-assign]


def test_the_sdk_opens_no_graphql_socket_unless_asked(
    taskrouter_sandbox: TaskRouterSandbox, desks: OpenDesk, upgrades: list[str]
) -> None:
    """The SDK's GraphQL subscriptions (metrics, useGraphQL) are off by default: the Worker is
    built on the event bridge's signaling alone, and its only sockets are wschannels', so the
    sandbox need not answer GraphQL."""
    desk = desks("Alice")
    set_activity(taskrouter_sandbox, "Alice", "Idle")
    desk.wait_for("activityUpdated")
    worker = desk.state()
    assert worker["graphQLSignaling"] is False
    assert worker["sockets"] == [worker["sockets"][0]]
    assert worker["sockets"][0].startswith(taskrouter_sandbox.event_bridge["wsServer"] + "?")
    assert upgrades == ["/v1/wschannels"]
