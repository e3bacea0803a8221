"""Queue ordering through the twilio library: FIFO, LIFO, and PrioritizeQueueOrder between them.

Twilio's "Queue Ordering" page (queue-ordering-last-first-out-lifo): a LIFO TaskQueue routes
the most recent task first and, unlike FIFO, "does not consider the Task priority"; a worker
shared between LIFO and FIFO queues gets the kind its workspace's PrioritizeQueueOrder names
first. The Task Queue resource's "Task assignment precedence": in a FIFO queue higher
priority first, then the oldest.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.sandbox.conftest import Live


class Floor:
    """A single-tasking workspace with one worker, Offline until the test lets it take tasks."""

    def __init__(self, live: Live, **workspace: Any) -> None:
        self.live = live
        created = live.new_workspace("Ordering", multi_task_enabled=False, **workspace)
        self.workspace = live.v1.workspaces(created.sid)
        self.activities = {a.friendly_name: a.sid for a in self.workspace.activities.list()}
        self.worker = self.workspace.workers.create(
            friendly_name="Ann", activity_sid=self.activities["Offline"]
        )

    def queue(self, name: str, task_order: str) -> str:
        return self.workspace.task_queues.create(friendly_name=name, task_order=task_order).sid

    def workflow(self, routes: dict[str, str]) -> str:
        """Tasks go to routes[kind], kind being the task's "kind" attribute."""
        filters = [
            {"expression": f'kind == "{kind}"', "targets": [{"queue": queue}]}
            for kind, queue in routes.items()
        ]
        configuration = json.dumps({"task_routing": {"filters": filters}})
        return self.workspace.workflows.create(
            friendly_name="Router", configuration=configuration
        ).sid

    def task(self, workflow_sid: str, kind: str, priority: int = 0) -> str:
        """A task, created one second after the previous one."""
        self.live.clock.advance(1)
        return self.workspace.tasks.create(
            workflow_sid=workflow_sid, attributes=json.dumps({"kind": kind}), priority=priority
        ).sid

    def offers(self, count: int) -> list[str]:
        """The tasks Ann is offered, in order, accepting each (a single-tasking worker left in
        an available activity is offered the next task once it accepts)."""
        self.workspace.workers(self.worker.sid).update(activity_sid=self.activities["Available"])
        taken = []
        for _ in range(count):
            (pending,) = self.workspace.workers(self.worker.sid).reservations.list(
                reservation_status="pending"
            )
            taken.append(pending.task_sid)
            pending.update(reservation_status="accepted")
        return taken


def test_lifo_queue_offers_the_newest_task_whatever_its_priority(live: Live) -> None:
    """Queue Ordering: LIFO routes the most recent task first and, unlike FIFO, does not
    consider the task's priority."""
    floor = Floor(live)
    queue = floor.queue("Leads", "LIFO")
    workflow = floor.workflow({"lead": queue})
    urgent_old = floor.task(workflow, "lead", priority=100)
    middle = floor.task(workflow, "lead", priority=50)
    newest = floor.task(workflow, "lead", priority=0)
    assert floor.offers(3) == [newest, middle, urgent_old]


def test_fifo_queue_offers_higher_priority_then_the_oldest(live: Live) -> None:
    """Task Queue resource, Task assignment precedence: higher priority first regardless of
    age, then the oldest among equal priorities."""
    floor = Floor(live)
    queue = floor.queue("Calls", "FIFO")
    workflow = floor.workflow({"call": queue})
    old_low = floor.task(workflow, "call", priority=0)
    high = floor.task(workflow, "call", priority=5)
    new_low = floor.task(workflow, "call", priority=0)
    assert floor.offers(3) == [high, old_low, new_low]


@pytest.mark.parametrize("prioritize", ["FIFO", "LIFO"])
def test_prioritize_queue_order_names_the_kind_of_queue_served_first(
    live: Live, prioritize: str
) -> None:
    """Queue Ordering: a worker shared between FIFO and LIFO queues gets the tasks of the
    kind PrioritizeQueueOrder names first, each queue in its own order."""
    floor = Floor(live, prioritize_queue_order=prioritize)
    fifo, lifo = floor.queue("F", "FIFO"), floor.queue("L", "LIFO")
    workflow = floor.workflow({"f": fifo, "l": lifo})
    f1 = floor.task(workflow, "f")
    l1 = floor.task(workflow, "l")
    f2 = floor.task(workflow, "f")
    l2 = floor.task(workflow, "l")
    fifo_order, lifo_order = [f1, f2], [l2, l1]
    expected = fifo_order + lifo_order if prioritize == "FIFO" else lifo_order + fifo_order
    assert floor.offers(4) == expected


def test_prioritize_queue_order_wins_over_priority_between_kinds(live: Live) -> None:
    """The kind PrioritizeQueueOrder names comes first even against a higher-priority task
    of the other kind (LIFO queues do not weigh priority at all)."""
    floor = Floor(live, prioritize_queue_order="LIFO")
    fifo, lifo = floor.queue("F", "FIFO"), floor.queue("L", "LIFO")
    workflow = floor.workflow({"f": fifo, "l": lifo})
    urgent_fifo = floor.task(workflow, "f", priority=100)
    lifo_task = floor.task(workflow, "l", priority=0)
    assert floor.offers(2) == [lifo_task, urgent_fifo]


def test_a_lifo_queue_newly_open_to_a_worker_offers_it_the_newest_task(live: Live) -> None:
    """When a queue's TargetWorkers change lets an available worker in, the newest of its
    waiting LIFO tasks is the one offered."""
    floor = Floor(live)
    queue = floor.queue("Leads", "LIFO")
    floor.workspace.task_queues(queue).update(target_workers="1 == 2")
    workflow = floor.workflow({"lead": queue})
    floor.task(workflow, "lead", priority=10)
    newest = floor.task(workflow, "lead", priority=0)
    floor.workspace.workers(floor.worker.sid).update(activity_sid=floor.activities["Available"])
    assert floor.workspace.workers(floor.worker.sid).reservations.list() == []
    floor.workspace.task_queues(queue).update(target_workers="1 == 1")
    (offer,) = floor.workspace.workers(floor.worker.sid).reservations.list()
    assert offer.task_sid == newest
