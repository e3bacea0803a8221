"""What the console page shows, read through the app's one twilio client, and the short cache
that lets many open pages share one set of REST calls.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import datetime

from flask import Flask

import callback_log
from taskrouter import TaskRouter, TaskRouterError

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
    log: callback_log.CallbackLog,
    worker_names: dict[str, str],
    workspace_sid: str | None,
    workflow_sid: str | None,
):
    try:
        rows = log.recent(CALLBACKS_SHOWN, workspace_sid=workspace_sid, workflow_sid=workflow_sid)
    except (sqlite3.Error, OSError) as exc:
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


# -- the guide: where the newest task stands in the quickstart, and the one next action ----

# The quickstart's lifecycle, drawn as the strip at the top of the page.
GUIDE_STEPS = (
    "Task created",
    "Eligible Worker available",
    "Worker reserved",
    "Reservation accepted",
    "Task assigned",
)
ASSIGNED_STATUSES = ("assigned", "wrapping")
# The quickstart's task: what the page's "Create a task" form sends by default.
QUICKSTART_TASK = {"selected_language": "es"}
REFUSALS = ("reservation.rejected", "reservation.timeout")


def short_sid(sid: str) -> str:
    """A SID short enough for a button on a phone; the page shows it whole elsewhere."""
    return f"{sid[:8]}…" if len(sid) > 10 else sid


def _activity(activities, available: bool, preferred: str) -> dict[str, object] | None:
    matching = [activity for activity in activities if bool(activity["available"]) == available]
    for activity in matching:
        if activity["friendly_name"] == preferred:
            return activity
    return matching[0] if matching else None


def _set_activity(worker, activity) -> dict[str, object]:
    return {
        "kind": "update_worker",
        "label": f"Set {worker['friendly_name']} to {activity['friendly_name']}",
        "fields": {"WorkerSid": worker["sid"], "ActivitySid": activity["sid"]},
    }


def _create_task(label: str) -> dict[str, object]:
    return {"kind": "create_task", "label": label, "fields": dict(QUICKSTART_TASK)}


def _names(workers) -> str:
    names = [worker["friendly_name"] for worker in workers]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _pending_task(guide, task, workers, members, events, activities, backend):
    queue = task["task_queue_friendly_name"] or "its queue"
    if members is None:
        guide["why"] = f"Task {short_sid(task['sid'])} is in no queue: no worker can take it."
        return
    by_sid = {worker["sid"]: worker for worker in workers}
    eligible = [by_sid[sid] for sid in members if sid in by_sid]
    if not eligible:
        guide["why"] = f"Nobody is in {queue}: no worker is eligible for this task."
        return
    available = [worker for worker in eligible if worker["available"]]
    if not available:
        idle = _activity(activities, True, "Idle")
        activity_names = _names(eligible) + (
            f" is {eligible[0]['activity_name']}" if len(eligible) == 1 else " are not available"
        )
        guide["why"] = (
            f"The task waits in {queue}: no eligible worker is available ({activity_names})."
        )
        if idle is not None:
            guide["action"] = _set_activity(eligible[0], idle)
        return
    guide["step"] = 2
    refused_by = {
        event["data"]["worker_sid"]
        for event in events
        if event["event_type"] in REFUSALS and event["data"]["task_sid"] == task["sid"]
    }
    if all(worker["sid"] in refused_by for worker in available):
        who = _names(available)
        offers = "The sandbox" if backend == "sandbox" else "TaskRouter"
        guide["why"] = (
            f"{who} refused this task, its only eligible worker: {offers} does not offer it "
            "again to a worker who refused it until the task is placed afresh."
        )
        guide["action"] = _create_task("Create another task")
        return
    guide["note"] = f"TaskRouter is reserving {_names(available)}."


def _reserved_task(guide, task, pending, alerts, workflow, mode):
    guide["step"] = 3
    reservation = next((r for r in pending if r["task_sid"] == task["sid"]), None)
    if reservation is None:
        guide["note"] = "The reservation is being answered."
        return
    guide["action"] = {
        "kind": "accept",
        "label": f"Accept reservation {short_sid(reservation['sid'])}",
        "sid": reservation["sid"],
        "fields": {"TaskSid": task["sid"], "ReservationSid": reservation["sid"]},
    }
    failed = [alert for alert in alerts if alert["resource_sid"] == reservation["sid"]]
    if failed:
        alert = failed[0]
        where = f" at {alert['url']}" if alert.get("url") else ""
        guide["why"] = (
            f"The Assignment Callback{where} failed ({alert['error_code']}: "
            f"{alert['alert_text']}): accept the reservation here, or fix the callback."
        )
    elif workflow is not None and not workflow["assignment_callback_url"]:
        guide["why"] = (
            "The workflow has no Assignment Callback URL: nobody is told of the reservation, "
            "so it waits until it is accepted here."
        )
    elif mode == "accept":
        guide["note"] = "The callback answers accept: the task is assigned in a moment."
    else:
        guide["note"] = (
            f"{reservation['worker_name'] or 'The worker'} is reserved and the callback "
            "answered {}: the reservation waits for you to accept it over REST."
        )


def _accepted_by(events, task_sid: str) -> str | None:
    """The worker whose reservation of the task was accepted, from the newest events."""
    return next(
        (
            event["data"]["worker_sid"]
            for event in events
            if event["event_type"] == "reservation.accepted"
            and event["data"]["task_sid"] == task_sid
        ),
        None,
    )


def _assigned_task(guide, task, older, workers, events, activities, mode):
    guide["step"] = 5
    guide["part"] = 2
    worker_sid = _accepted_by(events, task["sid"])
    # Part two is the same worker given a task while still holding the first one; another
    # worker's assigned task, or one left from an earlier run with nobody known, is not it.
    if worker_sid is not None and any(
        other["assignment_status"] in ASSIGNED_STATUSES
        and _accepted_by(events, other["sid"]) == worker_sid
        for other in older
    ):
        guide["note"] = (
            "Both parts are done: the worker was given the second task while holding the "
            "first. Complete the tasks below to start again."
        )
        return
    worker = next((w for w in workers if w["sid"] == worker_sid), None)
    if worker is None:
        guide["note"] = "The task is assigned."
        return
    offline = _activity(activities, False, "Offline")
    restart = (
        ""
        if mode == "accept"
        else " Restart with ASSIGNMENT_MODE=accept to have the callback accept it at once."
    )
    if offline is not None and worker["activity_sid"] != offline["sid"]:
        guide["action"] = _set_activity(worker, offline)
        guide["note"] = (
            f"Part two: without completing this task, make {worker['friendly_name']} "
            f"unavailable, then create another task.{restart}"
        )
    else:
        guide["action"] = _create_task("Create another task")
        guide["note"] = (
            f"Part two: {worker['friendly_name']} is unavailable, so the next task waits until "
            f"{worker['friendly_name']} is available again.{restart}"
        )


def derive_guide(
    *,
    mode: str,
    backend: str,
    activities,
    workers,
    tasks,
    pending,
    events,
    alerts,
    workflow,
    queue_members,
) -> dict[str, object]:
    """Where the newest task stands in the lifecycle, the one action that moves it on, and,
    when nothing can move it, why in one line. Derived from the state alone, not a script."""
    guide: dict[str, object] = {
        "steps": list(GUIDE_STEPS),
        "step": 0,
        "part": 1,
        "task_sid": None,
        "task_status": None,
        "action": None,
        "why": None,
        "note": None,
    }
    task = tasks[0] if tasks else None
    status = task["assignment_status"] if task else None
    if task is not None:
        guide["task_sid"], guide["task_status"] = task["sid"], status
    if task is not None and any(
        other["assignment_status"] in ASSIGNED_STATUSES for other in tasks[1:]
    ):
        guide["part"] = 2
    if status in (None, "completed", "canceled"):
        guide["action"] = _create_task("Create a task")
        guide["note"] = (
            "Create the quickstart's task: it waits, pending, until an eligible worker is "
            "available."
        )
    elif status == "pending":
        guide["step"] = 1
        _pending_task(guide, task, workers, queue_members, events, activities, backend)
    elif status == "reserved":
        _reserved_task(guide, task, pending, alerts, workflow, mode)
    elif status in ASSIGNED_STATUSES:
        _assigned_task(guide, task, tasks[1:], workers, events, activities, mode)
    return guide


def build_state(
    taskrouter: TaskRouter, log: callback_log.CallbackLog, backend: str, mode: str
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
