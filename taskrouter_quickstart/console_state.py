"""What the console page shows, read through the app's one twilio client, and the short cache
that lets many open pages share one set of REST calls.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from datetime import datetime

from flask import Flask

from taskrouter_quickstart import callback_log
from taskrouter_quickstart.console_guide import derive_guide
from taskrouter_quickstart.taskrouter import WAITING_TASK_STATUSES, TaskRouter, TaskRouterError

EXTENSION_KEY = "console_state"
# Pages poll every half second (POLL_MS in static/console.js); a state half that old at most
# lets several open pages share the REST calls and still shows a change within a second.
CACHE_SECONDS = 0.25
TASKS_SHOWN = 20
WORKERS_SHOWN = 50
# Reservation outcomes come from the events, which TaskRouter lists newest first.
EVENTS_READ = 50
EVENTS_SHOWN = 15
RECENT_RESERVATIONS_SHOWN = 10
ALERTS_SHOWN = 10
# Alerts come for every workspace of the account: read more to still show ten of this one's.
ALERTS_READ = 50
CALLBACKS_SHOWN = 20
# One real-time statistics call per queue: the quickstart has two, a busy workspace many.
QUEUES_SHOWN = 20
# The workspace's cumulative figures cover the last hour (TaskRouter's default is 15 minutes).
CUMULATIVE_MINUTES = 60
CUMULATIVE_COUNTS = (
    "tasks_created",
    "tasks_completed",
    "tasks_canceled",
    "tasks_deleted",
    "tasks_moved",
    "tasks_timed_out_in_workflow",
    "reservations_created",
    "reservations_accepted",
    "reservations_rejected",
    "reservations_timed_out",
    "reservations_canceled",
    "reservations_rescinded",
    "avg_task_acceptance_time",
)
WAIT_FIGURES = ("avg", "min", "max", "total")

RESERVATION_OUTCOMES = {
    "reservation.accepted": "accepted",
    "reservation.rejected": "rejected",
    "reservation.timeout": "timeout",
    "reservation.canceled": "canceled",
    "reservation.rescinded": "rescinded",
    "reservation.completed": "completed",
    "reservation.wrapup": "wrapping",
}


def iso(value: object) -> str | None:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return None if value is None else str(value)


def is_sid(value: object, prefix: str) -> bool:
    return isinstance(value, str) and re.fullmatch(rf"{prefix}[0-9a-fA-F]{{32}}", value) is not None


def _activities(workspace) -> list[dict[str, object]]:
    return [
        {
            "sid": activity.sid,
            "friendly_name": activity.friendly_name,
            "available": activity.available,
        }
        for activity in workspace.activities.list(limit=50)
    ]


def _workers(workspace) -> list[dict[str, object]]:
    return [
        {
            "sid": worker.sid,
            "friendly_name": worker.friendly_name,
            "activity_sid": worker.activity_sid,
            "activity_name": worker.activity_name,
            "available": worker.available,
            "date_status_changed": iso(worker.date_status_changed),
        }
        for worker in workspace.workers.list(limit=WORKERS_SHOWN)
    ]


def _tasks(workspace) -> list[dict[str, object]]:
    return [
        {
            "sid": task.sid,
            "assignment_status": task.assignment_status,
            "task_queue_sid": task.task_queue_sid,
            "task_queue_friendly_name": task.task_queue_friendly_name,
            "priority": task.priority,
            "age": task.age,
            "reason": task.reason,
            "date_created": iso(task.date_created),
        }
        for task in workspace.tasks.list(ordering="DateCreated:desc", limit=TASKS_SHOWN)
    ]


def _pending_reservations(workspace, workers) -> list[dict[str, object]]:
    pending = []
    for worker in workers:
        for reservation in workspace.workers(worker["sid"]).reservations.list(
            reservation_status="pending", limit=20
        ):
            pending.append(
                {
                    "sid": reservation.sid,
                    "task_sid": reservation.task_sid,
                    "worker_sid": reservation.worker_sid,
                    "worker_name": reservation.worker_name,
                    "date_created": iso(reservation.date_created),
                }
            )
    pending.sort(key=lambda reservation: reservation["date_created"] or "", reverse=True)
    return pending


def _events(workspace) -> list[dict[str, object]]:
    events = []
    for event in workspace.events.list(limit=EVENTS_READ, page_size=EVENTS_READ):
        data = event.event_data if isinstance(event.event_data, dict) else {}
        events.append(
            {
                "sid": event.sid,
                "event_type": event.event_type,
                "event_date": iso(event.event_date),
                "description": event.description,
                "resource_type": event.resource_type,
                "resource_sid": event.resource_sid,
                "data": {
                    name: data.get(name)
                    for name in ("reservation_sid", "task_sid", "worker_sid", "worker_name")
                },
            }
        )
    return events


def _recent_reservations(events) -> list[dict[str, object]]:
    recent = []
    for event in events:
        outcome = RESERVATION_OUTCOMES.get(event["event_type"])
        if outcome is None:
            continue
        data = event["data"]
        recent.append(
            {
                "sid": data["reservation_sid"] or event["resource_sid"],
                "task_sid": data["task_sid"],
                "worker_name": data["worker_name"],
                "reservation_status": outcome,
                "date": event["event_date"],
            }
        )
    return recent[:RECENT_RESERVATIONS_SHOWN]


def _alerts(client, workspace_sid: str | None) -> list[dict[str, object]]:
    alerts = [
        {
            "sid": alert.sid,
            "date_created": iso(alert.date_created),
            "log_level": alert.log_level,
            "error_code": alert.error_code,
            "alert_text": alert.alert_text,
            "resource_sid": alert.resource_sid,
            # The URL that failed: for a callback alert, the one the workflow called.
            "url": alert.request_url,
        }
        for alert in client.monitor.v1.alerts.list(limit=ALERTS_READ)
        # A wiped workspace's alerts would describe callbacks this page no longer shows.
        if alert.service_sid in (None, workspace_sid)
    ]
    return alerts[:ALERTS_SHOWN]


def _workflow(workspace, workflow_sid: str | None) -> dict[str, object] | None:
    """The URLs the workflow really calls, which may differ from this server's own."""
    if not workflow_sid:
        return None
    workflow = workspace.workflows(workflow_sid).fetch()
    return {
        "sid": workflow.sid,
        "friendly_name": workflow.friendly_name,
        "assignment_callback_url": workflow.assignment_callback_url or None,
        "fallback_assignment_callback_url": workflow.fallback_assignment_callback_url or None,
    }


def _queue_members(workspace, tasks) -> list[str] | None:
    """The workers eligible for the newest task when it waits in a queue; else None.

    One call, and only while the task is pending: it is what the guide needs to name the
    worker to make available, and TaskRouter evaluates the queue's target expression itself.
    """
    if not tasks or tasks[0]["assignment_status"] != "pending" or not tasks[0]["task_queue_sid"]:
        return None
    return [
        worker.sid
        for worker in workspace.workers.list(
            task_queue_sid=tasks[0]["task_queue_sid"], limit=WORKERS_SHOWN
        )
    ]


def _callbacks(
    log: callback_log.QueuedLog,
    worker_names: dict[str, str],
    workspace_sid: str | None,
    workflow_sid: str | None,
):
    try:
        rows = log.recent(CALLBACKS_SHOWN, workspace_sid=workspace_sid, workflow_sid=workflow_sid)
    except callback_log.READ_ERRORS as exc:
        return [], f"The callback log could not be read: {exc}"
    callbacks = []
    for row in rows:
        callbacks.append(
            {
                "received_at": row["received_at"],
                "reservation_sid": row["reservation_sid"],
                "task_sid": row["task_sid"],
                "worker_sid": row["worker_sid"],
                "worker_name": worker_names.get(row["worker_sid"] or ""),
                "task_queue_sid": row["task_queue_sid"],
                "answer": row["answer"],
                # Only a pending answer with well-formed SIDs gets Accept/Reject buttons.
                "actionable": row["answer"] == "{}"
                and is_sid(row["task_sid"], "WT")
                and is_sid(row["reservation_sid"], "WR"),
            }
        )
    return callbacks, None


# -- the statistics: each queue's live figures and the workspace's last hour ---------------


def _count(value: object) -> int:
    # TaskRouter's examples write counts as strings ({"pending": "1"}); the sandbox as numbers.
    # Unlike `flask taskrouter status`, the page reads an odd count as 0 and stays up.
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _queue_statistics(workspace) -> list[dict[str, object]]:
    """Each queue's live figures, from its RealTimeStatistics resource."""
    queues = []
    for queue in workspace.task_queues.list(limit=QUEUES_SHOWN):
        realtime = workspace.task_queues(queue.sid).real_time_statistics().fetch()
        by_status = realtime.tasks_by_status or {}
        queues.append(
            {
                "sid": queue.sid,
                "friendly_name": queue.friendly_name,
                "waiting": sum(_count(by_status.get(status)) for status in WAITING_TASK_STATUSES),
                **{status: _count(by_status.get(status)) for status in WAITING_TASK_STATUSES},
                "longest_waiting_age": realtime.longest_task_waiting_age or 0,
                "longest_waiting_sid": realtime.longest_task_waiting_sid,
                "available_workers": realtime.total_available_workers or 0,
                "eligible_workers": realtime.total_eligible_workers or 0,
            }
        )
    return queues


def _wait(figures: object) -> dict[str, int]:
    figures = figures if isinstance(figures, dict) else {}
    return {name: _count(figures.get(name)) for name in WAIT_FIGURES}


def _cumulative_statistics(workspace) -> dict[str, object]:
    """The workspace's figures over the last CUMULATIVE_MINUTES, from CumulativeStatistics."""
    cumulative = workspace.cumulative_statistics().fetch(minutes=CUMULATIVE_MINUTES)
    return {
        "minutes": CUMULATIVE_MINUTES,
        "start_time": iso(cumulative.start_time),
        "end_time": iso(cumulative.end_time),
        **{name: getattr(cumulative, name) or 0 for name in CUMULATIVE_COUNTS},
        "wait_duration_until_accepted": _wait(cumulative.wait_duration_until_accepted),
        "wait_duration_until_canceled": _wait(cumulative.wait_duration_until_canceled),
    }


def _statistics(taskrouter: TaskRouter) -> dict[str, object]:
    """The queues' live figures and the last hour's, each beside the error that kept it away.

    A failure here (a rate limit, statistics an account cannot read) leaves the lists and
    the other part standing: the page says why the figures are missing instead of going blank.
    """
    statistics: dict[str, object] = {}
    for key, read, action in (
        ("queue_statistics", _queue_statistics, "read the queues' real-time statistics"),
        ("cumulative_statistics", _cumulative_statistics, "read the workspace's last hour"),
    ):
        statistics[key], statistics[f"{key}_error"] = None, None
        try:
            with taskrouter.upstream(action):
                statistics[key] = read(taskrouter.workspace)
        except TaskRouterError as exc:
            statistics[f"{key}_error"] = exc.message
    return statistics


# -- the guide: where the newest task stands in the quickstart, and the one next action ----


# The quickstart's lifecycle, drawn as the strip at the top of the page.
def build_state(
    taskrouter: TaskRouter, log: callback_log.QueuedLog, backend: str, mode: str
) -> dict[str, object]:
    """Everything the page's live lists show, as JSON-ready values."""
    workspace = taskrouter.workspace
    with taskrouter.upstream("read the workspace for the console"):
        activities = _activities(workspace)
        workers = _workers(workspace)
        tasks = _tasks(workspace)
        pending = _pending_reservations(workspace, workers)
        events = _events(workspace)
        workflow = _workflow(workspace, taskrouter.workflow_sid)
        queue_members = _queue_members(workspace, tasks)
    alerts = None
    if backend == "sandbox":
        with taskrouter.upstream("read the sandbox's alerts"):
            alerts = _alerts(taskrouter.client, taskrouter.workspace_sid)
    callbacks, callbacks_error = _callbacks(
        log,
        {worker["sid"]: worker["friendly_name"] for worker in workers},
        taskrouter.workspace_sid,
        taskrouter.workflow_sid,
    )
    statistics = _statistics(taskrouter)
    return {
        "mode": mode,
        "backend": backend,
        "activities": activities,
        "workers": workers,
        "tasks": tasks,
        "pending_reservations": pending,
        "recent_reservations": _recent_reservations(events),
        "events": [
            {name: event[name] for name in ("event_date", "event_type", "description")}
            for event in events[:EVENTS_SHOWN]
        ],
        "alerts": alerts,
        "callbacks": callbacks,
        "callbacks_error": callbacks_error,
        "workflow": workflow,
        **statistics,
        "guide": derive_guide(
            mode=mode,
            backend=backend,
            activities=activities,
            workers=workers,
            tasks=tasks,
            pending=pending,
            events=events,
            alerts=alerts or [],
            workflow=workflow,
            queue_members=queue_members,
        ),
    }


class StateCache:
    """The last state built, reused for CACHE_SECONDS; one build at a time per process.

    A failed build is kept as long, so a TaskRouter outage does not meet one retry per page.
    """

    def __init__(self, ttl: float = CACHE_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._built_at: float | None = None
        self._value: dict[str, object] | None = None
        self._error: TaskRouterError | None = None
        # Bumped by invalidate(); a state built before the bump is not reused after it.
        self._generation = 0
        self._built_generation = -1

    def get(self, build: Callable[[], dict[str, object]]) -> dict[str, object]:
        with self._lock:
            if (
                self._built_at is None
                or self._built_generation != self._generation
                or self.clock() - self._built_at >= self.ttl
            ):
                generation = self._generation
                try:
                    self._value, self._error = build(), None
                except TaskRouterError as exc:
                    self._value, self._error = None, exc
                self._built_at = self.clock()
                self._built_generation = generation
            if self._error is not None:
                raise self._error
            return self._value

    def invalidate(self) -> None:
        """Forget the last state: the next page poll sees an action's effect at once.

        It never waits for a build in progress (an action must not queue behind a page's
        REST calls); that build's state is simply not reused.
        """
        self._generation += 1


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION_KEY] = StateCache()


def state_cache(app: Flask) -> StateCache:
    return app.extensions[EXTENSION_KEY]
