"""Every write of a task's, a reservation's or a worker's status, by name.

Each status write goes through _move_task, _move_reservation or move_worker, which check it
against domain/lifecycle.py's tables (a write they do not allow is a bug: InvalidTransition).
What happens on each move lives here: the reservation offered (reserve), answered (accept,
reject), timed out, rescinded, canceled or completed with its task (finish_task), the task
wrapped up, expired, or returned to pending, and the worker moved between activities.
When each happens is the caller's: the engine's resources, routing, and the timers.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from taskrouter_sandbox import expressions
from taskrouter_sandbox.clock import from_storage, to_storage
from taskrouter_sandbox.domain import lifecycle
from taskrouter_sandbox.domain.errors import EngineError, InvalidTransition
from taskrouter_sandbox.domain.validation import DEFAULT_RESERVATION_TIMEOUT, attributes, new_sid
from taskrouter_sandbox.domain.values import Actor, AssignmentCallback
from taskrouter_sandbox.state import events, membership, outbox, reads
from taskrouter_sandbox.state.operation import Operation


def _move_task(op: Operation, task_sid: str, current: str, target: str, **values: Any) -> None:
    if target not in lifecycle.TASK_TRANSITIONS[current]:
        raise InvalidTransition(
            f"task {task_sid}: {current} -> {target} is not a move a task makes"
        )
    op.tx.update(
        "tasks", task_sid, {"assignment_status": target, **values, "date_updated": op.stamp()}
    )


def _move_reservation(op: Operation, reservation_sid: str, current: str, target: str) -> None:
    if target not in lifecycle.RESERVATION_TRANSITIONS[current]:
        raise InvalidTransition(
            f"reservation {reservation_sid}: {current} -> {target} is not a move a reservation "
            "makes"
        )
    op.tx.update(
        "reservations",
        reservation_sid,
        {"reservation_status": target, "date_updated": op.stamp()},
    )


# -- new rows ---------------------------------------------------------------------------


def insert_task(op: Operation, row: dict[str, Any], names: dict[str, Any]) -> None:
    """A new task: pending, ready for its workflow. names: its joined names as
    reads.TASK_SELECT shows them (its queue's, workflow's and channel's), with which the row
    as stored is cached for the rest of the operation."""
    stored = op.tx.insert("tasks", {**row, "assignment_status": "pending"}, returning=True)
    reads.seed_task(op, {**stored, **names})


def insert_worker(op: Operation, row: dict[str, Any], activity: dict[str, Any]) -> None:
    """A new worker in its first activity."""
    op.tx.insert(
        "workers",
        {
            **row,
            "activity_sid": activity["sid"],
            "available": activity["available"],
            "date_status_changed": row["date_created"],
        },
    )


# -- workers ----------------------------------------------------------------------------


def move_worker(
    op: Operation,
    worker: dict[str, Any],
    activity: dict[str, Any],
    actor: Actor | None = None,
) -> None:
    """Move a worker to an activity, stamping date_status_changed and recording it."""
    if worker["activity_sid"] == activity["sid"]:
        return
    moment = op.now()
    stamp = to_storage(moment)
    op.tx.update(
        "workers",
        worker["sid"],
        {
            "activity_sid": activity["sid"],
            "available": activity["available"],
            "date_status_changed": stamp,
            "date_updated": stamp,
        },
    )
    membership.worker_moved(op, worker["sid"], activity["available"], stamp)
    spent = moment - from_storage(worker["date_status_changed"])
    # The worker row as it now stands, without reading it back.
    fields = events.worker_event_fields(
        worker, activity["sid"], activity["friendly_name"], activity["available"]
    )
    fields.update(
        {
            "WorkerPreviousActivitySid": worker["activity_sid"],
            "WorkerPreviousActivityName": worker["activity_name"],
            "WorkerTimeInPreviousActivity": str(int(spent.total_seconds())),
            "WorkerTimeInPreviousActivityMs": str(int(spent.total_seconds() * 1000)),
        }
    )
    events.record(
        op,
        worker["workspace_sid"],
        "worker.activity.update",
        "worker",
        worker["sid"],
        f"Worker {worker['friendly_name']} updated to {activity['friendly_name']} Activity",
        fields,
        actor,
    )
    op.route_again("worker.activity.update", worker["workspace_sid"], worker["sid"])


def count_worker_change(op: Operation, worker_sid: str) -> None:
    """Move the worker's version on by one for a change that leaves its own fields alone: a
    reservation offered to it, a channel's capacity or availability. Twilio's Worker SDK counts
    each of those events as one version of the worker (the events carry no worker), and sends
    that count back as If-Match."""
    op.tx.update("workers", worker_sid, {"date_updated": op.stamp()})


def release_worker(op: Operation, reservation: dict[str, Any], actor: Actor | None = None) -> None:
    """Give a worker back the activity it had before a reservation that ended unaccepted.

    Only when it still sits in the queue's reservation activity: a worker that moved on
    in the meantime keeps where it went.
    """
    previous = reservation["worker_previous_activity_sid"]
    if previous is None:
        return
    worker = reads.worker_by_sid(op, reservation["worker_sid"])
    queue = reads.task_queue_row(op, reservation["task_queue_sid"], view=True)
    if worker is None or queue is None:
        return
    if worker["activity_sid"] != queue["reservation_activity_sid"]:
        return
    activity = reads.activity_by_sid(op, previous)
    if activity is not None:
        move_worker(op, worker, activity, actor)


# -- reservations -----------------------------------------------------------------------


def reserve(
    op: Operation,
    workspace_sid: str,
    task_sid: str,
    worker_sid: str,
    actor: Actor,
    *,
    holds_no_offer: bool = False,
) -> str:
    """Offer a pending task to an eligible worker: the step routing takes for each match.

    Creates the pending reservation, marks the task reserved, moves a single-tasking
    worker to the queue's reservation activity and queues the assignment callback.
    Returns the reservation's SID. holds_no_offer: the caller has just found, in this
    operation, that the worker holds no pending reservation at all (routing's free
    members, or its own check), so neither check of one is made again.
    """
    tx = op.tx
    workspace = reads.workspace_row(op, workspace_sid)
    task = reads.task(op, workspace_sid, task_sid)
    worker = reads.worker(op, workspace_sid, worker_sid)
    if task["assignment_status"] not in ("pending", "reserved"):
        raise EngineError(f"Task {task_sid} is {task['assignment_status']} and cannot be reserved")
    if task["task_queue_sid"] is None:
        raise EngineError(f"Task {task_sid} is in no TaskQueue")
    # A task routed to one worker with IgnoreCapacity (true by default there) skips the
    # availability and capacity checks below.
    heeds_capacity = not lifecycle.ignores_capacity(task)
    if heeds_capacity and not worker["available"]:
        raise EngineError(
            f"Worker {worker['friendly_name']} is not available ({worker['activity_name']})"
        )
    if not holds_no_offer and tx.scalar(
        "SELECT 1 FROM reservations WHERE task_sid = ? AND worker_sid = ?"
        " AND reservation_status = 'pending'",
        (task_sid, worker_sid),
    ):
        raise EngineError(
            f"Worker {worker['friendly_name']} already holds a pending reservation "
            f"for task {task_sid}"
        )
    # Single-tasking: only an unanswered offer holds the worker (routing/__init__.py says why).
    if (
        heeds_capacity
        and not workspace["multi_task_enabled"]
        and not holds_no_offer
        and tx.scalar(
            "SELECT 1 FROM reservations WHERE worker_sid = ? AND reservation_status = 'pending'",
            (worker_sid,),
        )
    ):
        raise EngineError(
            f"Worker {worker['friendly_name']} already holds a pending reservation "
            "in a single-tasking workspace"
        )
    # Multi-tasking: the worker's channel for the task is available and has room left.
    if heeds_capacity and workspace["multi_task_enabled"]:
        channel = tx.one(
            reads.WORKER_CHANNEL_SELECT + " WHERE wc.worker_sid = ? AND wc.task_channel_sid IS ?",
            (worker_sid, task["task_channel_sid"]),
        )
        if channel is None or not channel["available"]:
            raise EngineError(
                f"Worker {worker['friendly_name']} is not available on task channel "
                f"{task['task_channel_unique_name']}"
            )
        if channel["assigned_tasks"] >= channel["capacity"]:
            raise EngineError(
                f"Worker {worker['friendly_name']} has no capacity left on task channel "
                f"{task['task_channel_unique_name']} ({channel['assigned_tasks']} of "
                f"{channel['capacity']} taken)"
            )
    queue = reads.task_queue(op, workspace_sid, task["task_queue_sid"])
    if not expressions.parse(queue["target_workers"]).evaluate(attributes(worker["attributes"])):
        raise EngineError(
            f"Worker {worker['friendly_name']} does not match TaskQueue "
            f"{queue['friendly_name']}'s target workers ({queue['target_workers']})"
        )
    workflow = (
        None if task["workflow_sid"] is None else reads.workflow_row(op, task["workflow_sid"])
    )
    timeout = workflow["task_reservation_timeout"] if workflow else DEFAULT_RESERVATION_TIMEOUT
    moment = op.now()
    stamp = to_storage(moment)
    sid = new_sid("WR")
    stored = tx.insert(
        "reservations",
        {
            "sid": sid,
            "workspace_sid": workspace_sid,
            "task_sid": task_sid,
            "worker_sid": worker_sid,
            "reservation_status": "pending",
            "task_queue_sid": queue["sid"],
            "workflow_sid": task["workflow_sid"],
            "worker_previous_activity_sid": worker["activity_sid"],
            "timeout_at": to_storage(moment + timedelta(seconds=timeout)),
            "date_created": stamp,
            "date_updated": stamp,
        },
        returning=True,
    )
    reads.seed_reservation(op, {**stored, "worker_name": worker["friendly_name"]})
    _move_task(op, task_sid, task["assignment_status"], "reserved")
    op.deadline_at(moment + timedelta(seconds=timeout))
    events.record_reservation(op, sid, "reservation.created", "created", actor)
    count_worker_change(op, worker_sid)
    if not workspace["multi_task_enabled"] and queue["reservation_activity_sid"]:
        activity = reads.activity_by_sid(op, queue["reservation_activity_sid"])
        move_worker(op, worker, activity, actor)
    if workflow and workflow["assignment_callback_url"]:
        # Read before the offer: a reservation changes neither attributes nor age.
        callback = AssignmentCallback(
            reservation_sid=sid,
            url=workflow["assignment_callback_url"],
            fallback_url=workflow["fallback_assignment_callback_url"],
            params={
                "AccountSid": op.account_sid,
                "WorkspaceSid": workspace_sid,
                "WorkflowSid": workflow["sid"],
                "TaskQueueSid": queue["sid"],
                "WorkerSid": worker_sid,
                "WorkerAttributes": worker["attributes"],
                "TaskSid": task_sid,
                "TaskAttributes": task["attributes"],
                "TaskAge": str(task["age"]),
                "TaskPriority": str(task["priority"]),
                "ReservationSid": sid,
                "Timestamp": str(int(moment.timestamp())),
            },
        )
        # Owed from this commit on, crash or not: a restart sends it (state/outbox.py).
        outbox.record(tx, callback, op.callback_owner, stamp)
        op.publish(callback)
    op.route_again("reservation.created", workspace_sid, sid)
    return sid


def accept(op: Operation, reservation: dict[str, Any]) -> None:
    """The worker takes the task: the task is assigned, the other offers rescinded."""
    workspace_sid = reservation["workspace_sid"]
    task_sid = reservation["task_sid"]
    _move_reservation(op, reservation["sid"], reservation["reservation_status"], "accepted")
    _move_task(op, task_sid, reads.task_status(op, task_sid), "assigned")
    events.record_reservation(op, reservation["sid"], "reservation.accepted", "accepted")
    for other in op.tx.all(
        reads.RESERVATION_SELECT
        + " WHERE r.task_sid = ? AND r.reservation_status = 'pending' AND r.sid != ?",
        (task_sid, reservation["sid"]),
    ):
        reads.seed_reservation(op, other)
        _move_reservation(op, other["sid"], other["reservation_status"], "rescinded")
        events.record_reservation(op, other["sid"], "reservation.rescinded", "rescinded")
        release_worker(op, other)
        op.route_again("reservation.rescinded", workspace_sid, other["sid"])
    workspace = reads.workspace_row(op, workspace_sid)
    queue = reads.task_queue_row(op, reservation["task_queue_sid"], view=True)
    if not workspace["multi_task_enabled"] and queue and queue["assignment_activity_sid"]:
        worker = reads.worker(op, workspace_sid, reservation["worker_sid"])
        activity = reads.activity_by_sid(op, queue["assignment_activity_sid"])
        move_worker(op, worker, activity)
    op.route_again("reservation.accepted", workspace_sid, reservation["sid"])


def reject(op: Operation, reservation: dict[str, Any], activity: dict[str, Any] | None) -> None:
    """The worker declines: it moves to activity (else back to where it was), and the task
    returns to pending once no offer of it is left, canceled at the rejection limit."""
    workspace_sid = reservation["workspace_sid"]
    _move_reservation(op, reservation["sid"], reservation["reservation_status"], "rejected")
    events.record_reservation(op, reservation["sid"], "reservation.rejected", "rejected")
    if activity is not None:
        worker = reads.worker(op, workspace_sid, reservation["worker_sid"])
        move_worker(op, worker, activity)
    else:
        release_worker(op, reservation)
    task_sid = reservation["task_sid"]
    op.tx.execute(
        "UPDATE tasks SET rejection_count = rejection_count + 1 WHERE sid = ?", (task_sid,)
    )
    task = op.tx.one(
        "SELECT assignment_status, rejection_count FROM tasks WHERE sid = ?", (task_sid,)
    )
    if task["assignment_status"] == "reserved" and not _offers_left(op, task_sid):
        _move_task(op, task_sid, "reserved", "pending")
        if task["rejection_count"] >= lifecycle.MAX_REJECTIONS:
            finish_task(
                op,
                workspace_sid,
                task_sid,
                "canceled",
                lifecycle.REJECTED_REASON,
                Actor.workspace(workspace_sid),
            )
    op.route_again("reservation.rejected", workspace_sid, reservation["sid"])


def time_out_reservation(op: Operation, reservation_sid: str, stamp: str) -> None:
    """A pending reservation past task_reservation_timeout: the worker goes to the
    workspace's timeout activity and the task back to routing."""
    reservation = reads.reservation_row(op, reservation_sid)
    if (
        reservation is None
        or reservation["reservation_status"] != "pending"
        or reservation["timeout_at"] > stamp
    ):
        return
    workspace_sid = reservation["workspace_sid"]
    actor = Actor.workspace(workspace_sid)
    _move_reservation(op, reservation_sid, "pending", "timeout")
    events.record_reservation(op, reservation_sid, "reservation.timeout", "timed out", actor)
    workspace = reads.workspace_row(op, workspace_sid)
    if workspace["timeout_activity_sid"]:
        worker = reads.worker(op, workspace_sid, reservation["worker_sid"])
        activity = reads.activity_by_sid(op, workspace["timeout_activity_sid"])
        move_worker(op, worker, activity, actor)
    else:
        release_worker(op, reservation, actor)
    task_sid = reservation["task_sid"]
    offers_left = _offers_left(op, task_sid)
    status = reads.task_status(op, task_sid)
    if status == "reserved" and not offers_left:
        _move_task(op, task_sid, "reserved", "pending")
    op.route_again("reservation.timeout", workspace_sid, reservation_sid)


def _offers_left(op: Operation, task_sid: str) -> int:
    return op.tx.scalar(
        "SELECT count(*) FROM reservations WHERE task_sid = ? AND reservation_status = 'pending'",
        (task_sid,),
    )


# -- tasks ------------------------------------------------------------------------------


def wrap_task(op: Operation, workspace_sid: str, task_sid: str) -> None:
    """The task's work is done and its worker wraps up: task and accepted offer wrapping."""
    _move_task(op, task_sid, reads.task_status(op, task_sid), "wrapping")
    for reservation in op.tx.all(
        reads.RESERVATION_SELECT + " WHERE r.task_sid = ? AND r.reservation_status = 'accepted'",
        (task_sid,),
    ):
        reads.seed_reservation(op, reservation)
        _move_reservation(op, reservation["sid"], "accepted", "wrapping")
        events.record_reservation(op, reservation["sid"], "reservation.wrapup", "wrapping up")
        op.route_again("reservation.wrapup", workspace_sid, reservation["sid"])
    events.record(
        op,
        workspace_sid,
        "task.wrapup",
        "task",
        task_sid,
        f"Task {task_sid} wrapping up",
        events.task_fields(op, task_sid),
    )


def finish_task(
    op: Operation,
    workspace_sid: str,
    task_sid: str,
    status: str,
    reason: str | None,
    actor: Actor | None = None,
) -> None:
    """Cancel or complete a task, ending its reservations the way TaskRouter does: a pending
    offer is canceled (its worker released), an accepted or wrapping one completed."""
    _move_task(op, task_sid, reads.task_status(op, task_sid), status, reason=reason)
    for reservation in op.tx.all(
        reads.RESERVATION_SELECT
        + f" WHERE r.task_sid = ? AND r.reservation_status IN ({reads.OPEN_RESERVATIONS})",
        (task_sid,),
    ):
        reads.seed_reservation(op, reservation)
        if reservation["reservation_status"] == "pending":
            _move_reservation(op, reservation["sid"], "pending", "canceled")
            events.record_reservation(
                op, reservation["sid"], "reservation.canceled", "canceled", actor
            )
            release_worker(op, reservation, actor)
            op.route_again("reservation.canceled", workspace_sid, reservation["sid"])
        else:
            _move_reservation(
                op, reservation["sid"], reservation["reservation_status"], "completed"
            )
            events.record_reservation(
                op, reservation["sid"], "reservation.completed", "completed", actor
            )
            op.route_again("reservation.completed", workspace_sid, reservation["sid"])
    fields = events.task_fields(op, task_sid)
    if status == "canceled":
        fields["TaskCanceledReason"] = reason
        description = f"Task {task_sid} canceled" + (f": {reason}" if reason else "")
    else:
        fields["TaskCompletedReason"] = reason
        description = f"Task {task_sid} completed" + (f": {reason}" if reason else "")
    events.record(op, workspace_sid, f"task.{status}", "task", task_sid, description, fields, actor)
    op.route_again(f"task.{status}", workspace_sid, task_sid)


def expire_task(op: Operation, task_sid: str, stamp: str) -> None:
    """A pending or reserved task past its TTL (Timeout) is canceled."""
    task = op.tx.one(
        "SELECT workspace_sid, assignment_status, timeout_at FROM tasks WHERE sid = ?",
        (task_sid,),
    )
    if (
        task is None
        or task["assignment_status"] not in ("pending", "reserved")
        or task["timeout_at"] > stamp
    ):
        return
    workspace_sid = task["workspace_sid"]
    finish_task(
        op,
        workspace_sid,
        task_sid,
        "canceled",
        lifecycle.TTL_REASON,
        Actor.workspace(workspace_sid),
    )
