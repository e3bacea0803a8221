"""The console page's guide: where the newest task stands in the quickstart's lifecycle, the one
action that moves it on, and why nothing can when nothing can.

Pure functions of the state console_state.py reads, so every case is testable without a server.
"""

from __future__ import annotations

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
