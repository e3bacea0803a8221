"""A task routed straight to one worker, and its IgnoreCapacity, through the twilio library.

Twilio's Task resource: IgnoreCapacity "can only be used when the RoutingTarget field is set
to a Worker SID"; true, 1 or yes route the task "to the Worker without respecting their
capacity and availability", any other value enforces them; it "is true when the RoutingTarget
is set to a Worker SID" unless given.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.sandbox.conftest import Live, routing, twilio_error


class Floor:
    """A workspace with one queue for everyone and workers Ann and Bob."""

    def __init__(self, live: Live, *, multi_task_enabled: bool) -> None:
        workspace = live.new_workspace("Direct floor", multi_task_enabled=multi_task_enabled)
        self.context = live.v1.workspaces(workspace.sid)
        activities = {a.friendly_name: a.sid for a in self.context.activities.list()}
        self.available, self.offline = activities["Available"], activities["Offline"]
        queue = self.context.task_queues.create(friendly_name="Everyone", target_workers="1==1")
        self.context.workflows.create(
            friendly_name="Flow", configuration=routing(default=queue.sid)
        )
        self.ann = self.worker("Ann", self.available)
        self.bob = self.worker("Bob", self.available)

    def worker(self, name: str, activity_sid: str) -> str:
        return self.context.workers.create(friendly_name=name, activity_sid=activity_sid).sid

    def task(self, **options: Any) -> Any:
        return self.context.tasks.create(attributes="{}", task_channel="chat", **options)

    def fill_ann(self) -> None:
        """Ann's one chat, taken by a task routed to her while she has room."""
        first = self.task(routing_target=self.ann, ignore_capacity=False)
        assert self.offered_to(first.sid) == [self.ann]

    def offered_to(self, task_sid: str) -> list[str]:
        return [
            r.worker_sid
            for r in self.context.tasks(task_sid).reservations.list()
            if r.reservation_status == "pending"
        ]


def test_a_full_channel_still_takes_a_task_routed_to_its_worker(live: Live) -> None:
    """IgnoreCapacity's default with a RoutingTarget is true: Ann's one chat is full, yet the
    task routed to her is offered to her, not to Bob who has room."""
    floor = Floor(live, multi_task_enabled=True)
    floor.fill_ann()
    direct = floor.task(routing_target=floor.ann)
    assert direct.ignore_capacity is True
    assert floor.offered_to(direct.sid) == [floor.ann]


@pytest.mark.parametrize("value", ["false", "no", "0", "anything"])
def test_ignore_capacity_other_than_true_enforces_capacity(live: Live, value: str) -> None:
    """Any value other than true, 1 or yes enforces the worker's capacity: the task waits."""
    floor = Floor(live, multi_task_enabled=True)
    floor.fill_ann()
    direct = floor.task(routing_target=floor.ann, ignore_capacity=value)
    assert direct.ignore_capacity is False
    assert floor.offered_to(direct.sid) == []
    assert floor.context.tasks(direct.sid).fetch().assignment_status == "pending"


@pytest.mark.parametrize("value", ["true", "1", "yes", "True"])
def test_ignore_capacity_true_1_or_yes(live: Live, value: str) -> None:
    floor = Floor(live, multi_task_enabled=True)
    floor.fill_ann()
    direct = floor.task(routing_target=floor.ann, ignore_capacity=value)
    assert direct.ignore_capacity is True
    assert floor.offered_to(direct.sid) == [floor.ann]


def test_an_unavailable_worker_is_offered_a_task_routed_to_them(live: Live) -> None:
    """Availability is not respected either: Cy is offline and still offered the task, in a
    single-tasking workspace too."""
    floor = Floor(live, multi_task_enabled=False)
    cy = floor.worker("Cy", floor.offline)
    direct = floor.task(routing_target=cy)
    assert floor.offered_to(direct.sid) == [cy]
    enforced = floor.task(routing_target=cy, ignore_capacity=False)
    assert floor.offered_to(enforced.sid) == []


def test_ignore_capacity_needs_a_routing_target(live: Live) -> None:
    floor = Floor(live, multi_task_enabled=True)
    with twilio_error(400, 20001, "IgnoreCapacity can only be used when RoutingTarget"):
        floor.task(ignore_capacity=True)


def test_a_task_without_routing_target_shows_no_ignore_capacity(live: Live) -> None:
    floor = Floor(live, multi_task_enabled=True)
    assert floor.task().ignore_capacity is None
