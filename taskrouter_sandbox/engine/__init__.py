"""The engine: every TaskRouter operation on the sandbox, one module per resource.

workspaces, activities, channels, workers, worker_channels, queues, workflows, tasks,
reservations, events and alerts hold the REST operations, realtime_statistics the figures
of the RealTimeStatistics resources; timers.py fires the deadlines;
operations.py runs each operation in one transaction and publishes its effects after commit.
`Engine` is a thin facade that binds them to one store and clock under today's method
names. Imports routing, state, store and domain below it; nothing here imports the HTTP face.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from taskrouter_sandbox.clock import Clock
from taskrouter_sandbox.domain.values import Effect
from taskrouter_sandbox.engine import (
    activities,
    alerts,
    channels,
    cumulative_statistics,
    events,
    queues,
    realtime_statistics,
    reservations,
    tasks,
    timers,
    worker_channels,
    workers,
    workflows,
    workspaces,
)
from taskrouter_sandbox.engine.operations import Operations
from taskrouter_sandbox.store import Store


def _bound(function: Callable[..., Any]) -> Any:
    """function(operations, ...) as an Engine method."""

    @functools.wraps(function)
    def method(self: Engine, *args: Any, **kwargs: Any) -> Any:
        return function(self.operations, *args, **kwargs)

    return method


class Engine:
    """Every change to the sandbox, each in one transaction that also records its events."""

    def __init__(self, store: Store, clock: Clock, account_sid: str) -> None:
        self.operations = Operations(store, clock, account_sid)

    store = property(lambda self: self.operations.store)
    clock = property(lambda self: self.operations.clock)

    @property
    def account_sid(self) -> str:
        return self.operations.account_sid

    @account_sid.setter
    def account_sid(self, account_sid: str) -> None:
        # A reset with new credentials: events and callbacks name the new account.
        self.operations.account_sid = account_sid

    @property
    def callback_owner(self) -> str | None:
        """The outbox owner whose dispatcher sends this process's assignment callbacks."""
        return self.operations.callback_owner

    @callback_owner.setter
    def callback_owner(self, owner: str | None) -> None:
        self.operations.callback_owner = owner

    # -- who hears of committed operations --------------------------------------------

    def subscribe(self, callback: Callable[[list[Effect]], None]) -> None:
        """callback(effects) runs after each committed change that produced effects."""
        self.operations.subscribers.append(callback)

    def unsubscribe(self, callback: Callable[[list[Effect]], None]) -> None:
        self.operations.subscribers.remove(callback)

    def on_deadline(self, callback: Callable[[float], None]) -> None:
        """callback(seconds to the soonest deadline it set) runs after each committed change
        that set a deadline (scheduler.wake)."""
        self.operations.deadline_listeners.append(callback)

    def remove_deadline_listener(self, callback: Callable[[float], None]) -> None:
        self.operations.deadline_listeners.remove(callback)

    def on_commit(self, callback: Callable[[], None]) -> None:
        """callback() runs after each committed write operation."""
        self.operations.commit_listeners.append(callback)

    def remove_commit_listener(self, callback: Callable[[], None]) -> None:
        self.operations.commit_listeners.remove(callback)

    @property
    def subscribers(self) -> tuple[Callable[[list[Effect]], None], ...]:
        return tuple(self.operations.subscribers)

    @property
    def deadline_listeners(self) -> tuple[Callable[[float], None], ...]:
        return tuple(self.operations.deadline_listeners)

    # -- the resources ------------------------------------------------------------------

    get_workspace = _bound(workspaces.get_workspace)
    list_workspaces = _bound(workspaces.list_workspaces)
    create_workspace = _bound(workspaces.create_workspace)
    update_workspace = _bound(workspaces.update_workspace)
    delete_workspace = _bound(workspaces.delete_workspace)

    get_activity = _bound(activities.get_activity)
    list_activities = _bound(activities.list_activities)
    create_activity = _bound(activities.create_activity)
    update_activity = _bound(activities.update_activity)
    delete_activity = _bound(activities.delete_activity)

    get_task_channel = _bound(channels.get_task_channel)
    list_task_channels = _bound(channels.list_task_channels)
    create_task_channel = _bound(channels.create_task_channel)
    update_task_channel = _bound(channels.update_task_channel)
    delete_task_channel = _bound(channels.delete_task_channel)
    get_worker_channel = _bound(worker_channels.get_worker_channel)
    list_worker_channels = _bound(worker_channels.list_worker_channels)
    update_worker_channel = _bound(worker_channels.update_worker_channel)

    get_worker = _bound(workers.get_worker)
    list_workers = _bound(workers.list_workers)
    create_worker = _bound(workers.create_worker)
    update_worker = _bound(workers.update_worker)
    delete_worker = _bound(workers.delete_worker)

    get_task_queue = _bound(queues.get_task_queue)
    list_task_queues = _bound(queues.list_task_queues)
    create_task_queue = _bound(queues.create_task_queue)
    update_task_queue = _bound(queues.update_task_queue)
    delete_task_queue = _bound(queues.delete_task_queue)
    ensure_routing_state = _bound(queues.ensure_memberships)

    get_workflow = _bound(workflows.get_workflow)
    list_workflows = _bound(workflows.list_workflows)
    create_workflow = _bound(workflows.create_workflow)
    update_workflow = _bound(workflows.update_workflow)
    delete_workflow = _bound(workflows.delete_workflow)

    get_task = _bound(tasks.get_task)
    list_tasks = _bound(tasks.list_tasks)
    create_task = _bound(tasks.create_task)
    update_task = _bound(tasks.update_task)
    delete_task = _bound(tasks.delete_task)

    get_reservation = _bound(reservations.get_reservation)
    list_reservations = _bound(reservations.list_reservations)
    reserve = _bound(reservations.reserve)
    update_reservation = _bound(reservations.update_reservation)
    apply_assignment_outcome = _bound(reservations.apply_assignment_outcome)

    get_event = _bound(events.get_event)
    list_events = _bound(events.list_events)
    events_after = _bound(events.events_after)
    last_event = _bound(events.last_event)

    # cumulative statistics (taskrouter_sandbox/engine/cumulative_statistics.py)
    workspace_cumulative_statistics = _bound(cumulative_statistics.workspace)
    task_queue_cumulative_statistics = _bound(cumulative_statistics.task_queue)
    task_queues_cumulative_statistics = _bound(cumulative_statistics.task_queues)
    workflow_cumulative_statistics = _bound(cumulative_statistics.workflow)
    workers_cumulative_statistics = _bound(cumulative_statistics.workers)
    worker_cumulative_statistics = _bound(cumulative_statistics.worker)

    record_alert = _bound(alerts.record_alert)
    list_alerts = _bound(alerts.list_alerts)
    get_alert = _bound(alerts.get_alert)
    page_alerts = _bound(alerts.page_alerts)

    # -- real-time statistics (what the workspace, a queue, a workflow, its workers hold now)
    workspace_realtime_statistics = _bound(realtime_statistics.workspace)
    task_queue_realtime_statistics = _bound(realtime_statistics.task_queue)
    task_queues_bulk_realtime_statistics = _bound(realtime_statistics.task_queues_bulk)
    workflow_realtime_statistics = _bound(realtime_statistics.workflow)
    workers_realtime_statistics = _bound(realtime_statistics.workers)

    fire_due = _bound(timers.fire_due)
    next_deadline = _bound(timers.next_deadline)
    earliest_deadline = _bound(timers.earliest_deadline)
