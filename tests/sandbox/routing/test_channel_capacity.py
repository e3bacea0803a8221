"""Routing a multitasking workspace by its workers' channels, through the twilio library.

Twilio's pages: "Worker Channel Resource" (workers receive reservations in parallel for each
task type until the channel's configured capacity is reached; Capacity 0 means no new
reservations; Available false prevents new tasks of that channel), "Multitasking" (e.g. a
worker handling at most 1 voice call and up to 3 chat requests; a worker can be made
unavailable for one channel without setting its capacity to 0; the worker stays in an
available activity).
"""

from __future__ import annotations

from typing import Any

import pytest

from taskrouter_sandbox.domain.errors import EngineError
from tests.sandbox.conftest import Live, routing


class Floor:
    """A multitasking workspace (Twilio's default), one queue for everyone, worker Ann."""

    def __init__(self, live: Live) -> None:
        workspace = live.new_workspace("Channels floor")
        assert workspace.multi_task_enabled is True
        self.context = live.v1.workspaces(workspace.sid)
        (self.available,) = self.context.activities.list(friendly_name="Available")
        queue = self.context.task_queues.create(friendly_name="Everyone", target_workers="1==1")
        self.context.workflows.create(
            friendly_name="Flow", configuration=routing(default=queue.sid)
        )
        self.ann = self.add_worker("Ann")

    def add_worker(self, name: str) -> str:
        return self.context.workers.create(friendly_name=name, activity_sid=self.available.sid).sid

    def channel(self, unique_name: str, worker_sid: str | None = None) -> Any:
        return self.context.workers(worker_sid or self.ann).worker_channels(unique_name)

    def task(self, channel: str) -> str:
        return self.context.tasks.create(attributes="{}", task_channel=channel).sid

    def status(self, task_sid: str) -> str:
        return self.context.tasks(task_sid).fetch().assignment_status

    def offered_to(self, task_sid: str) -> list[str]:
        return [
            r.worker_sid
            for r in self.context.tasks(task_sid).reservations.list()
            if r.reservation_status == "pending"
        ]

    def accept(self, task_sid: str) -> None:
        (offer,) = [
            r
            for r in self.context.tasks(task_sid).reservations.list()
            if r.reservation_status == "pending"
        ]
        self.context.tasks(task_sid).reservations(offer.sid).update(reservation_status="accepted")

    def complete(self, task_sid: str) -> None:
        self.context.tasks(task_sid).update(assignment_status="completed")


def test_chat_capacity_three_holds_three_chat_tasks_at_once(live: Live) -> None:
    """Multitasking: "a maximum of 1 Voice call and up to 3 Chat requests"; the fourth chat
    waits until one of the three is done, and voice has its own capacity meanwhile."""
    floor = Floor(live)
    floor.channel("chat").update(capacity=3)
    chats = [floor.task("chat") for _ in range(4)]
    assert [floor.offered_to(sid) for sid in chats[:3]] == [[floor.ann]] * 3
    assert floor.status(chats[3]) == "pending"
    floor.accept(chats[0])
    floor.accept(chats[1])
    assert floor.status(chats[3]) == "pending"  # accepted tasks still take up the capacity
    voice = floor.task("voice")
    assert floor.offered_to(voice) == [floor.ann]
    floor.complete(chats[0])
    assert floor.offered_to(chats[3]) == [floor.ann]
    second_voice = floor.task("voice")
    assert floor.status(second_voice) == "pending"  # voice capacity 1, taken


def test_a_worker_whose_voice_channel_is_unavailable_gets_chat_but_not_voice(live: Live) -> None:
    """Worker Channel Resource: Available false prevents the worker from receiving new tasks of
    that channel; marking it available again restores it, and the waiting call is offered."""
    floor = Floor(live)
    floor.channel("voice").update(available=False)
    voice = floor.task("voice")
    chat = floor.task("chat")
    assert floor.status(voice) == "pending"
    assert floor.offered_to(chat) == [floor.ann]
    bob = floor.add_worker("Bob")
    assert floor.offered_to(voice) == [bob]  # Bob's voice channel is on
    floor.accept(voice)
    second = floor.task("voice")
    assert floor.status(second) == "pending"  # Bob's voice capacity is taken, Ann's is off
    floor.channel("voice").update(available=True)
    assert floor.offered_to(second) == [floor.ann]


def test_capacity_zero_creates_no_reservations_and_more_capacity_routes_again(
    live: Live,
) -> None:
    """Worker Channel Resource, Capacity: "If the capacity is 0, no new reservations will be
    created"; raising it makes the worker eligible again at once."""
    floor = Floor(live)
    floor.channel("sms").update(capacity=0)
    first, second = floor.task("sms"), floor.task("sms")
    assert floor.status(first) == floor.status(second) == "pending"
    floor.channel("sms").update(capacity=2)
    assert floor.offered_to(first) == floor.offered_to(second) == [floor.ann]


def test_capacity_lowered_below_the_load_keeps_the_tasks_and_offers_no_more(live: Live) -> None:
    """configured_capacity: "TaskRouter will not create any reservations after the assigned
    Tasks for the Worker reaches the value": lowering it leaves what the worker holds, and the
    next offer waits until the load is below the new capacity."""
    floor = Floor(live)
    floor.channel("chat").update(capacity=3)
    held = [floor.task("chat") for _ in range(3)]
    for sid in held:
        floor.accept(sid)
    lowered = floor.channel("chat").update(capacity=1)
    assert (lowered.assigned_tasks, lowered.available_capacity_percentage) == (3, 0)
    assert [floor.status(sid) for sid in held] == ["assigned"] * 3
    waiting = floor.task("chat")
    floor.complete(held[0])
    floor.complete(held[1])
    assert floor.status(waiting) == "pending"  # one held, capacity one
    floor.complete(held[2])
    assert floor.offered_to(waiting) == [floor.ann]


def test_an_unavailable_activity_still_wins_over_channel_capacity(live: Live) -> None:
    """Multitasking: the worker must be in an available activity for TaskRouter to assign
    tasks; channel capacity adds to that, it does not replace it."""
    floor = Floor(live)
    (offline,) = floor.context.activities.list(friendly_name="Offline")
    floor.context.workers(floor.ann).update(activity_sid=offline.sid)
    floor.channel("chat").update(capacity=5)
    chat = floor.task("chat")
    assert floor.status(chat) == "pending"
    floor.context.workers(floor.ann).update(activity_sid=floor.available.sid)
    assert floor.offered_to(chat) == [floor.ann]


def test_a_worker_becoming_available_takes_tasks_up_to_each_channels_capacity(
    live: Live,
) -> None:
    """From the worker's side: an available worker is offered the waiting tasks of each
    channel up to that channel's capacity, in queue order."""
    floor = Floor(live)
    (offline,) = floor.context.activities.list(friendly_name="Offline")
    floor.context.workers(floor.ann).update(activity_sid=offline.sid)
    floor.channel("chat").update(capacity=2)
    chats = [floor.task("chat") for _ in range(3)]
    voices = [floor.task("voice") for _ in range(2)]
    floor.context.workers(floor.ann).update(activity_sid=floor.available.sid)
    assert [floor.status(sid) for sid in chats] == ["reserved", "reserved", "pending"]
    assert [floor.status(sid) for sid in voices] == ["reserved", "pending"]


def test_a_single_tasking_workspace_routes_as_before_whatever_its_channels_say(
    live: Live,
) -> None:
    """The sandbox's choice (README, "Multitasking capacity"): WorkerChannels shape routing
    only where multitasking is on; a single-tasking workspace keeps its one-offer-at-a-time
    rule, and its channels are still listed and updated."""
    context = live.v1.workspaces(live.new_workspace(multi_task_enabled=False).sid)
    (available,) = context.activities.list(friendly_name="Available")
    queue = context.task_queues.create(friendly_name="Everyone", target_workers="1==1")
    context.workflows.create(friendly_name="Flow", configuration=routing(default=queue.sid))
    ann = context.workers.create(friendly_name="Ann", activity_sid=available.sid).sid
    context.workers(ann).worker_channels("chat").update(capacity=0, available=False)
    first = context.tasks.create(attributes="{}", task_channel="chat")
    second = context.tasks.create(attributes="{}", task_channel="voice")
    assert context.tasks(first.sid).fetch().assignment_status == "reserved"
    assert context.tasks(second.sid).fetch().assignment_status == "pending"


def test_a_direct_offer_on_a_channel_switched_off_is_refused(live: Live) -> None:
    """Available false prevents new tasks of the channel, however they would be offered."""
    floor = Floor(live)
    floor.channel("voice").update(available=False)
    voice = floor.task("voice")
    workspace_sid = floor.context._solution["sid"]
    with pytest.raises(EngineError, match="not available on task channel voice"):
        live.sandbox.engine.reserve(workspace_sid, voice, floor.ann)
    floor.channel("voice").update(available=True, capacity=0)
    with pytest.raises(EngineError, match="no capacity left on task channel voice"):
        live.sandbox.engine.reserve(workspace_sid, voice, floor.ann)
