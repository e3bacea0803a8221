"""WorkerChannels through the official twilio library: list, fetch (by SID or the task
channel's unique name), update Capacity and Available, their events and their errors.

Twilio's pages behind these tests: "Worker Channel Resource" (api/worker-channel: one channel
per task channel of the worker, fetched by WorkerChannelSid or WorkerChannelUniqueName, its
fields, Capacity and Available), the Workspace resource (MultiTaskEnabled, default true) and
the Worker resource's links.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.sandbox.conftest import Live, list_error, routing, twilio_error

DEFAULT_CHANNELS = ["default", "voice", "sms", "chat", "video", "email"]


def _worker(live: Live, **workspace: Any) -> tuple[Any, Any]:
    """A workspace context and one Available worker in it."""
    context = live.v1.workspaces(live.new_workspace(**workspace).sid)
    (available,) = context.activities.list(friendly_name="Available")
    return context, context.workers.create(friendly_name="Ann", activity_sid=available.sid)


def test_a_new_workspace_is_multitasking_unless_asked_otherwise(live: Live) -> None:
    """Workspace resource, MultiTaskEnabled: "all workspaces should be created as
    multi-tasking. The default is `true`"; false still makes a single-tasking one."""
    assert live.new_workspace().multi_task_enabled is True
    assert live.new_workspace(multi_task_enabled=False).multi_task_enabled is False
    # The quickstart's workspace stays single-tasking, as the quickstart builds it.
    assert live.seeded_workspace.fetch().multi_task_enabled is False


def test_every_worker_has_one_channel_per_task_channel_at_twilios_defaults(live: Live) -> None:
    """Worker Channel Resource: a worker's capacity per task channel; the OpenAPI examples show
    a new one at configured_capacity 1, available, no task, 100% free."""
    context, worker = _worker(live)
    task_channels = {c.unique_name: c.sid for c in context.task_channels.list()}
    channels = context.workers(worker.sid).worker_channels.list()
    assert [c.task_channel_unique_name for c in channels] == DEFAULT_CHANNELS
    for channel in channels:
        assert channel.sid.startswith("WC") and len(channel.sid) == 34
        assert channel.account_sid == live.sandbox.account_sid
        assert channel.workspace_sid == context._solution["sid"]
        assert channel.worker_sid == worker.sid
        assert channel.task_channel_sid == task_channels[channel.task_channel_unique_name]
        assert channel.configured_capacity == 1
        assert channel.available is True
        assert channel.assigned_tasks == 0
        assert channel.available_capacity_percentage == 100
        assert channel.date_created == channel.date_updated == worker.date_created
        assert channel.url == f"{worker.url}/Channels/{channel.sid}"


def test_fetch_by_sid_or_by_the_task_channels_unique_name(live: Live) -> None:
    """Worker Channel Resource: "Returns a single Worker Channel resource identified by either
    WorkerChannelUniqueName or WorkerChannelSid"."""
    context, worker = _worker(live)
    channels = context.workers(worker.sid).worker_channels
    chat = next(c for c in channels.list() if c.task_channel_unique_name == "chat")
    assert channels(chat.sid).fetch().sid == chat.sid
    by_name = channels("chat").fetch()
    assert (by_name.sid, by_name.task_channel_sid) == (chat.sid, chat.task_channel_sid)


def test_the_worker_links_to_its_channels(live: Live) -> None:
    """The Worker resource's OpenAPI example: links.channels and links.worker_channels name
    the worker's Channels list."""
    context, worker = _worker(live)
    fetched = context.workers(worker.sid).fetch()
    assert fetched.links["channels"] == f"{worker.url}/Channels"
    assert fetched.links["worker_channels"] == f"{worker.url}/Channels"
    listed = live.http("GET", f"/v1/Workspaces/{worker.workspace_sid}/Workers").json()
    assert listed["workers"][0]["links"]["channels"] == f"{worker.url}/Channels"
    assert live.http("GET", fetched.links["channels"].removeprefix(live.base_url)).ok


def test_task_channels_created_later_reach_every_worker_and_leave_with_them(live: Live) -> None:
    """A worker has a channel for every task channel of its workspace, however they came."""
    context, worker = _worker(live)
    later = context.workers.create(friendly_name="Bo")
    fax = context.task_channels.create(friendly_name="Fax", unique_name="fax")
    for sid in (worker.sid, later.sid):
        names = [c.task_channel_unique_name for c in context.workers(sid).worker_channels.list()]
        assert names == [*DEFAULT_CHANNELS, "fax"]
    context.task_channels(fax.sid).delete()
    names = [c.task_channel_unique_name for c in context.workers(sid).worker_channels.list()]
    assert names == DEFAULT_CHANNELS
    context.workers(later.sid).delete()
    with twilio_error(404, 20404):
        context.workers(later.sid).worker_channels("chat").fetch()


def test_update_capacity_and_available(live: Live) -> None:
    """Worker Channel Resource, update: Capacity ("TaskRouter creates reservations for Tasks
    of this TaskChannel type up to the specified capacity") and Available."""
    context, worker = _worker(live)
    channels = context.workers(worker.sid).worker_channels
    before = channels("chat").fetch()
    live.clock.advance(5)
    updated = channels("chat").update(capacity=3)
    assert (updated.configured_capacity, updated.available) == (3, True)
    assert updated.available_capacity_percentage == 100
    assert updated.date_updated == before.date_updated + timedelta(seconds=5)
    assert updated.date_created == before.date_created
    off = channels(before.sid).update(available=False)
    # Switched off: no capacity available, the configured capacity kept for when it is back.
    assert (off.configured_capacity, off.available, off.available_capacity_percentage) == (
        3,
        False,
        0,
    )
    back = channels(before.sid).update(available=True, capacity=0)
    assert (back.configured_capacity, back.available, back.available_capacity_percentage) == (
        0,
        True,
        0,
    )
    assert channels("chat").fetch().configured_capacity == 0
    # The other channels are untouched.
    assert channels("voice").fetch().configured_capacity == 1


def test_capacity_and_availability_changes_are_events(live: Live) -> None:
    """Event types worker.capacity.update and worker.channel.availability.update, with the
    worker's fields and the channel's."""
    context, worker = _worker(live)
    channels = context.workers(worker.sid).worker_channels
    chat = channels("chat").update(capacity=2)
    channels("chat").update(available=False)
    channels("chat").update(capacity=2, available=False)  # no change, no event
    (capacity,) = context.events.list(event_type="worker.capacity.update")
    (availability,) = context.events.list(event_type="worker.channel.availability.update")
    for event in (capacity, availability):
        assert event.resource_type == "worker" and event.resource_sid == worker.sid
        data = event.event_data
        assert data["worker_sid"] == worker.sid and data["worker_name"] == "Ann"
        assert data["worker_channel_sid"] == chat.sid
        assert data["task_channel_sid"] == chat.task_channel_sid
        assert data["task_channel_unique_name"] == "chat"
        assert data["worker_channel_capacity"] == "2"
    assert capacity.event_data["worker_channel_previous_capacity"] == "1"
    assert capacity.event_data["worker_channel_available"] == "true"
    assert availability.event_data["worker_channel_available"] == "false"
    assert availability.event_data["worker_channel_available_capacity"] == "0"
    assert [e.event_type for e in context.events.list(task_channel="chat")][:2] == [
        "worker.channel.availability.update",
        "worker.capacity.update",
    ]


def test_assigned_tasks_counts_the_channels_offers_and_accepted_tasks(live: Live) -> None:
    """assigned_tasks, "the total number of Tasks assigned to Worker for the TaskChannel type",
    and the percentage of capacity left, as tasks come and go."""
    context, worker = _worker(live)
    queue = context.task_queues.create(friendly_name="Everyone", target_workers="1==1")
    context.workflows.create(friendly_name="Flow", configuration=routing(default=queue.sid))
    channels = context.workers(worker.sid).worker_channels
    channels("chat").update(capacity=4)
    first = context.tasks.create(attributes="{}", task_channel="chat")
    context.tasks.create(attributes="{}", task_channel="chat")
    chat = channels("chat").fetch()
    assert (chat.assigned_tasks, chat.available_capacity_percentage) == (2, 50)
    (offer,) = context.tasks(first.sid).reservations.list()
    context.tasks(first.sid).reservations(offer.sid).update(reservation_status="accepted")
    assert channels("chat").fetch().assigned_tasks == 2
    context.tasks(first.sid).update(assignment_status="completed")
    chat = channels("chat").fetch()
    assert (chat.assigned_tasks, chat.available_capacity_percentage) == (1, 75)
    assert channels("voice").fetch().assigned_tasks == 0


def test_bad_updates_are_refused_with_twilios_error(live: Live) -> None:
    """Every bad Capacity or Available is a 400 naming the parameter, and nothing changes."""
    context, worker = _worker(live)
    channels = context.workers(worker.sid).worker_channels
    for capacity in (-1, 1001):
        with twilio_error(400, 20001, "Capacity must be between 0 and 1000"):
            channels("chat").update(capacity=capacity)
    path = f"/v1/Workspaces/{worker.workspace_sid}/Workers/{worker.sid}/Channels/chat"
    for data, message in (
        ({"Capacity": "three"}, "Parameter Capacity must be an integer"),
        ({"Capacity": "2.5"}, "Parameter Capacity must be an integer"),
        ({"Capacity": ["2", "3"]}, "Parameter Capacity was given 2 times"),
        ({"Available": "maybe"}, "Parameter Available must be true or false"),
    ):
        response = live.http("POST", path, data=data)
        assert response.status_code == 400, response.text
        body = response.json()
        assert body["code"] == 20001 and message in body["message"], body
    chat = channels("chat").fetch()
    assert (chat.configured_capacity, chat.available) == (1, True)


def test_unknown_workers_and_channels_are_404s(live: Live) -> None:
    context, worker = _worker(live)
    other, stranger = _worker(live)
    missing = "WK" + "0" * 32
    with twilio_error(404, 20404, missing):
        context.workers(missing).worker_channels("chat").fetch()
    with list_error(404, 20404, missing):
        context.workers(missing).worker_channels.list()
    # A worker of another workspace is not found in this one.
    with twilio_error(404, 20404, stranger.sid):
        context.workers(stranger.sid).worker_channels("chat").update(capacity=2)
    channels = context.workers(worker.sid).worker_channels
    # Twilio's 404 names the requested resource.
    for sid in ("WC" + "0" * 32, "carrier-pigeon"):
        with twilio_error(404, 20404, f"/Channels/{sid} was not found"):
            channels(sid).fetch()
        with twilio_error(404, 20404, f"/Channels/{sid} was not found"):
            channels(sid).update(capacity=2)
    # Another worker's channel SID is not this worker's.
    theirs = other.workers(stranger.sid).worker_channels("chat").fetch()
    with twilio_error(404, 20404):
        channels(theirs.sid).fetch()


def test_worker_channels_answer_only_get_and_post(live: Live) -> None:
    _, worker = _worker(live)
    base = f"/v1/Workspaces/{worker.workspace_sid}/Workers/{worker.sid}/Channels"
    assert live.http("POST", base).status_code == 405
    response = live.http("DELETE", f"{base}/chat")
    assert response.status_code == 405 and response.headers["Allow"] == "GET, POST"
