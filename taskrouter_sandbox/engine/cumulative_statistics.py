"""Cumulative statistics: what happened over a window, counted from the event log.

Every figure is read from the events table (the events the Events list shows), so it agrees
with what a client would count from /Events itself: tasks entered, completed, canceled,
deleted and moved; reservations created, accepted, rejected, timed out, canceled and
rescinded; how long tasks waited until accepted or canceled; how long workers stayed in each
activity. The counts and waits read one index range per event type (scope, event_type,
event_date, then the waits each event carries: store/schema.py's _EVENT_WAIT_INDEXES) and no
event row, so their cost grows with the window's events of the scope, not the whole history.

The window (Twilio's TaskQueue Statistics page): Minutes, or StartDate and/or EndDate, never
both; without any, the last 15 minutes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from taskrouter_sandbox.clock import epoch_ms, to_storage, to_twilio
from taskrouter_sandbox.domain.errors import EngineError
from taskrouter_sandbox.domain.validation import DEFAULT_EVENT_MINUTES, MAX_EVENT_MINUTES
from taskrouter_sandbox.engine import channels
from taskrouter_sandbox.engine.operations import Operations
from taskrouter_sandbox.state import reads
from taskrouter_sandbox.state.operation import Operation
from taskrouter_sandbox.store import STATISTICS_EVENTS

# The event each count is read from (Twilio's event types, taskrouter_sandbox/state/events.py).
_TASK_COUNTS = {
    "tasks_created": "task.created",
    "tasks_completed": "task.completed",
    "tasks_canceled": "task.canceled",
    "tasks_deleted": "task.deleted",
    "tasks_moved": "task-queue.moved",
    "tasks_timed_out_in_workflow": "workflow.timeout",
}
_RESERVATION_COUNTS = {
    "reservations_created": "reservation.created",
    "reservations_accepted": "reservation.accepted",
    "reservations_rejected": "reservation.rejected",
    "reservations_timed_out": "reservation.timeout",
    "reservations_canceled": "reservation.canceled",
    "reservations_rescinded": "reservation.rescinded",
}
_ACCEPTED, _CANCELED = "reservation.accepted", "task.canceled"
_WORKER_HISTORY = ("worker.activity.update", "worker.created", "worker.deleted")
MAX_THRESHOLDS = 100


@dataclass(frozen=True)
class Window:
    """The interval the figures cover, and the TaskChannel (unique name) they keep to."""

    start: datetime
    end: datetime
    task_channel: str | None
    thresholds: tuple[int, ...] | None

    def rendered(self) -> dict[str, Any]:
        return {
            "start_time": to_twilio(to_storage(self.start)),
            "end_time": to_twilio(to_storage(self.end)),
        }


@dataclass(frozen=True)
class _Scope:
    """Which events count: the workspace's, or those naming one queue, workflow or worker."""

    workspace_sid: str
    column: str | None = None
    sid: str | None = None
    # Only the events of the workers this picks (Workers /Statistics' filters).
    workers: _Workers | None = None

    def where(self, window: Window, event_types: tuple[str, ...]) -> tuple[str, list[Any]]:
        # Each type's range of the scope's (column, event_type, event_date, channel, waits)
        # index, read without the rows. A queue's, workflow's or worker's SID names one of the
        # workspace's (the caller checked), so the workspace needs no clause of its own.
        if self.column is not None:
            clauses, params = [f"{self.column} = ?"], [self.sid]
        else:
            clauses, params = ["workspace_sid = ?"], [self.workspace_sid]
        clauses += ["event_date >= ?", "event_date <= ?"]
        params += [to_storage(window.start), to_storage(window.end)]
        if self.workers is not None:
            clauses.append(f"worker_sid IN ({self.workers.select})")
            params += self.workers.params
        if window.task_channel is not None:
            clauses.append("task_channel_unique_name = ?")
            params.append(window.task_channel)
        # The scope indexes hold only these types, and say so in these words.
        clauses += [f"event_type IN ({', '.join('?' for _ in event_types)})", STATISTICS_EVENTS]
        params += event_types
        return " WHERE " + " AND ".join(clauses), params


@dataclass(frozen=True)
class _Workers:
    """The workers of the workspace some filters pick, as a SELECT of their SIDs."""

    select: str
    params: tuple[Any, ...]


# -- parameters ---------------------------------------------------------------------------


def window(
    op: Operation,
    workspace_sid: str,
    *,
    minutes: int | None = None,
    start_date: datetime | None = None,
    end_date: datetime | None = None,
    task_channel: str | None = None,
    split_by_wait_time: str | None = None,
) -> Window:
    """The window the parameters describe; each bad one a 400 naming it."""
    if minutes is not None and (start_date is not None or end_date is not None):
        raise EngineError("Minutes cannot be used in combination with StartDate or EndDate")
    if minutes is not None and not 1 <= minutes <= MAX_EVENT_MINUTES:
        raise EngineError(f"Minutes must be between 1 and {MAX_EVENT_MINUTES}, got {minutes}")
    if start_date and end_date and start_date > end_date:
        raise EngineError("StartDate must not be later than EndDate")
    end = end_date or op.now()
    try:
        start = start_date or end - timedelta(minutes=minutes or DEFAULT_EVENT_MINUTES)
    except OverflowError:
        span = minutes or DEFAULT_EVENT_MINUTES
        raise EngineError(
            f"EndDate {to_twilio(to_storage(end))} leaves no {span}-minute window before it"
        ) from None
    if start > end:
        raise EngineError(f"StartDate {to_twilio(to_storage(start))} is later than now")
    return Window(
        start,
        end,
        _channel_name(op, workspace_sid, task_channel),
        _thresholds(split_by_wait_time),
    )


def _channel_name(op: Operation, workspace_sid: str, task_channel: str | None) -> str | None:
    """A TaskChannel SID or unique name as the unique name the events carry."""
    if task_channel is None:
        return None
    return channels.named(op, workspace_sid, task_channel)["unique_name"]


MAX_THRESHOLD = MAX_EVENT_MINUTES * 60
_THRESHOLD_DIGITS = len(str(MAX_THRESHOLD))


def _thresholds(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    items = [item.strip() for item in text.split(",")]
    if not all(item.isascii() and item.isdigit() for item in items) or not items:
        raise EngineError(
            f"SplitByWaitTime must be comma-separated whole seconds such as 5,30, got {text!r}"
        )
    # A threshold longer than the longest window (43200 minutes) splits nothing, and a bound
    # keeps int() and SQLite's 64-bit parameters within reach.
    if any(len(item) > _THRESHOLD_DIGITS or int(item) > MAX_THRESHOLD for item in items):
        raise EngineError(
            f"SplitByWaitTime thresholds must be at most {MAX_THRESHOLD} seconds, got {text!r}"
        )
    values = sorted({int(item) for item in items})
    if len(values) > MAX_THRESHOLDS:
        raise EngineError(f"SplitByWaitTime takes at most {MAX_THRESHOLDS} thresholds")
    return tuple(values)


# -- the figures --------------------------------------------------------------------------


def _counts(op: Operation, scope: _Scope, window: Window, wanted: dict[str, str]) -> dict:
    where, params = scope.where(window, tuple(wanted.values()))
    found = {
        row["event_type"]: row["n"]
        for row in op.tx.all(
            f"SELECT event_type, count(*) AS n FROM events{where} GROUP BY event_type", params
        )
    }
    return {field: found.get(event_type, 0) for field, event_type in wanted.items()}


def durations(values: list[int]) -> dict[str, int]:
    """Twilio's {avg, min, max, total} in whole seconds (avg rounded down); zeros for none."""
    if not values:
        return {"avg": 0, "min": 0, "max": 0, "total": 0}
    total = sum(values)
    return {"avg": total // len(values), "min": min(values), "max": max(values), "total": total}


def _task_figures(
    op: Operation, scope: _Scope, window: Window, task_fields: tuple[str, ...], *, in_queue: bool
) -> dict[str, Any]:
    """Counts, waits and splits in one covering search of the scope's index: each event
    carries its task's wait (wait_seconds, queue_wait_seconds, written with it), so SQLite
    sums them without reading an event row."""
    wanted = {
        **{field: _TASK_COUNTS.get(field) or _ENTERED[scope.column] for field in task_fields},
        **_RESERVATION_COUNTS,
    }
    where, params = scope.where(window, tuple({*wanted.values(), _ACCEPTED, _CANCELED}))
    thresholds = window.thresholds or ()
    splits = "".join(
        f", sum(wait_seconds <= ?) AS below_{index}" for index in range(len(thresholds))
    )
    rows = op.tx.all(
        "SELECT event_type, count(*) AS n, count(wait_seconds) AS waits,"
        " sum(wait_seconds) AS total, min(wait_seconds) AS low, max(wait_seconds) AS high,"
        " count(queue_wait_seconds) AS queued, sum(queue_wait_seconds) AS queued_total,"
        " min(queue_wait_seconds) AS queued_low,"
        f" max(queue_wait_seconds) AS queued_high{splits}"
        f" FROM events{where} GROUP BY event_type",
        [*thresholds, *params],
    )
    found = {row["event_type"]: row for row in rows}
    empty: dict[str, Any] = {"n": 0, "waits": 0, "queued": 0}
    accepted, canceled = found.get(_ACCEPTED, empty), found.get(_CANCELED, empty)
    figures: dict[str, Any] = {
        **window.rendered(),
        **{field: found.get(event_type, empty)["n"] for field, event_type in wanted.items()},
        "avg_task_acceptance_time": _aggregated(accepted, "waits", "total", "low", "high")["avg"],
        "wait_duration_until_accepted": _aggregated(accepted, "waits", "total", "low", "high"),
        "wait_duration_until_canceled": _aggregated(canceled, "waits", "total", "low", "high"),
        "split_by_wait_time": None,
    }
    if window.thresholds is not None:
        figures["split_by_wait_time"] = {
            str(limit): _split(accepted, canceled, f"below_{index}")
            for index, limit in enumerate(window.thresholds)
        }
    if in_queue:
        figures["wait_duration_in_queue_until_accepted"] = _aggregated(
            accepted, "queued", "queued_total", "queued_low", "queued_high"
        )
    return figures


def _aggregated(row: dict[str, Any], count: str, total: str, low: str, high: str) -> dict:
    """Twilio's {avg, min, max, total} from a row's aggregates (avg rounded down)."""
    if not row[count]:
        return durations([])
    return {
        "avg": row[total] // row[count],
        "min": row[low],
        "max": row[high],
        "total": row[total],
    }


def _split(accepted: dict[str, Any], canceled: dict[str, Any], below: str) -> dict[str, Any]:
    """One threshold: tasks canceled and reservations accepted after waiting up to it
    (below) or longer (above)."""
    accepted_below, canceled_below = accepted.get(below) or 0, canceled.get(below) or 0
    return {
        "above": {
            "tasks_canceled": canceled["waits"] - canceled_below,
            "reservations_accepted": accepted["waits"] - accepted_below,
        },
        "below": {"tasks_canceled": canceled_below, "reservations_accepted": accepted_below},
    }


# tasks_entered: into the queue, or into the workflow.
_ENTERED = {"task_queue_sid": "task-queue.entered", "workflow_sid": "workflow.entered"}


# -- the resources ------------------------------------------------------------------------


def workspace(ops: Operations, workspace_sid: str, **parameters: Any) -> dict[str, Any]:
    """The Workspace's CumulativeStatistics figures (without account_sid, url)."""
    with ops.read_events() as op:
        reads.workspace(op, workspace_sid)
        span = window(op, workspace_sid, **parameters)
        fields = (
            "tasks_created",
            "tasks_completed",
            "tasks_canceled",
            "tasks_deleted",
            "tasks_moved",
            "tasks_timed_out_in_workflow",
        )
        return {
            **_task_figures(op, _Scope(workspace_sid), span, fields, in_queue=False),
            "workspace_sid": workspace_sid,
        }


def task_queue(
    ops: Operations, workspace_sid: str, task_queue_sid: str, **parameters: Any
) -> dict[str, Any]:
    """One TaskQueue's CumulativeStatistics figures (without account_sid, url)."""
    with ops.read_events() as op:
        reads.task_queue(op, workspace_sid, task_queue_sid)
        span = window(op, workspace_sid, **parameters)
        return _queue_figures(op, workspace_sid, task_queue_sid, span)


def _queue_figures(
    op: Operation, workspace_sid: str, task_queue_sid: str, span: Window
) -> dict[str, Any]:
    fields = ("tasks_entered", "tasks_completed", "tasks_canceled", "tasks_deleted", "tasks_moved")
    scope = _Scope(workspace_sid, "task_queue_sid", task_queue_sid)
    return {
        **_task_figures(op, scope, span, fields, in_queue=True),
        "task_queue_sid": task_queue_sid,
        "workspace_sid": workspace_sid,
    }


def task_queues(
    ops: Operations, workspace_sid: str, task_queue_sids: list[str], **parameters: Any
) -> dict[str, dict[str, Any]]:
    """Several queues' figures over one window, read in one snapshot (the Statistics list)."""
    with ops.read_events() as op:
        reads.workspace(op, workspace_sid)
        span = window(op, workspace_sid, **parameters)
        return {sid: _queue_figures(op, workspace_sid, sid, span) for sid in task_queue_sids}


def workflow(
    ops: Operations, workspace_sid: str, workflow_sid: str, **parameters: Any
) -> dict[str, Any]:
    """One Workflow's CumulativeStatistics figures (without account_sid, url)."""
    with ops.read_events() as op:
        reads.workflow(op, workspace_sid, workflow_sid)
        span = window(op, workspace_sid, **parameters)
        fields = (
            "tasks_entered",
            "tasks_completed",
            "tasks_canceled",
            "tasks_deleted",
            "tasks_moved",
            "tasks_timed_out_in_workflow",
        )
        scope = _Scope(workspace_sid, "workflow_sid", workflow_sid)
        return {
            **_task_figures(op, scope, span, fields, in_queue=False),
            "workflow_sid": workflow_sid,
            "workspace_sid": workspace_sid,
        }


def workers(
    ops: Operations,
    workspace_sid: str,
    *,
    task_queue_sid: str | None = None,
    task_queue_name: str | None = None,
    friendly_name: str | None = None,
    **parameters: Any,
) -> dict[str, Any]:
    """The Workers CumulativeStatistics figures: reservations and activity durations; the
    filters of Workers /Statistics keep to the workers of one queue, or of one name."""
    with ops.read_events() as op:
        reads.workspace(op, workspace_sid)
        span = window(op, workspace_sid, **parameters)
        picked = _picked_workers(op, workspace_sid, task_queue_sid, task_queue_name, friendly_name)
        scope = _Scope(workspace_sid, workers=picked)
        return {
            **span.rendered(),
            **_counts(op, scope, span, _RESERVATION_COUNTS),
            "activity_durations": _activity_durations(op, workspace_sid, span, None, picked),
            "workspace_sid": workspace_sid,
        }


def _picked_workers(
    op: Operation,
    workspace_sid: str,
    task_queue_sid: str | None,
    task_queue_name: str | None,
    friendly_name: str | None,
) -> _Workers | None:
    """TaskQueueSid or TaskQueueName: the queue's members (its TargetWorkers); FriendlyName:
    the worker of that name, ignoring case as the Workers list does. None: every worker."""
    if task_queue_sid is None and task_queue_name is None and friendly_name is None:
        return None
    select = "SELECT k.sid FROM workers k"
    clauses, params = ["k.workspace_sid = ?"], [workspace_sid]
    if task_queue_sid is not None or task_queue_name is not None:
        column, value = (
            ("sid", task_queue_sid)
            if task_queue_sid is not None
            else ("friendly_name", task_queue_name)
        )
        queue = op.tx.scalar(
            f"SELECT sid FROM task_queues WHERE workspace_sid = ? AND {column} = ?",
            (workspace_sid, value),
        )
        if queue is None:
            name = "TaskQueueSid" if task_queue_sid is not None else "TaskQueueName"
            raise EngineError(f"{name} {value!r} is not a TaskQueue of workspace {workspace_sid}")
        select += " JOIN worker_queues m ON m.worker_sid = k.sid AND m.task_queue_sid = ?"
        params.insert(0, queue)
    if friendly_name is not None:
        clauses.append("k.friendly_name_key = ?")
        params.append(friendly_name.lower())
    return _Workers(f"{select} WHERE {' AND '.join(clauses)}", tuple(params))


def worker(
    ops: Operations, workspace_sid: str, worker_sid: str, **parameters: Any
) -> dict[str, Any]:
    """One worker's cumulative figures (the `cumulative` of /Workers/{sid}/Statistics)."""
    with ops.read_events() as op:
        reads.worker(op, workspace_sid, worker_sid)
        span = window(op, workspace_sid, **parameters)
        scope = _Scope(workspace_sid, "worker_sid", worker_sid)
        return {
            **span.rendered(),
            **_counts(op, scope, span, _RESERVATION_COUNTS),
            "activity_durations": _activity_durations(op, workspace_sid, span, worker_sid),
        }


# -- activity durations -------------------------------------------------------------------


def _activity_durations(
    op: Operation,
    workspace_sid: str,
    span: Window,
    worker_sid: str | None,
    picked: _Workers | None = None,
) -> list[dict[str, Any]]:
    """Per activity of the workspace: each stay of a worker in it, cut to the window.

    A stay is read backwards from the worker's present activity through its activity
    updates since the window began (each names the activity it left), so the walk reads
    only the events from the window's start on, and a worker whose activity did not change
    in the window spent all of it in the activity it has.
    """
    stays: dict[str, list[int]] = {}
    low, high = epoch_ms(span.start), min(epoch_ms(span.end), epoch_ms(op.now()))
    for activity_sid, began, ended in _stays(op, workspace_sid, span, worker_sid, picked):
        began, ended = max(began, low), min(ended, high)
        if ended > began:
            stays.setdefault(activity_sid, []).append((ended - began) // 1000)
    return [
        {
            "sid": row["sid"],
            "friendly_name": row["friendly_name"],
            **durations(stays.get(row["sid"], [])),
        }
        for row in op.tx.all(
            "SELECT sid, friendly_name FROM activities WHERE workspace_sid = ? ORDER BY seq",
            (workspace_sid,),
        )
    ]


def _stays(
    op: Operation,
    workspace_sid: str,
    span: Window,
    worker_sid: str | None,
    picked: _Workers | None,
) -> list[tuple[str, int, int]]:
    """(activity, from ms, to ms) for every stay that reaches into the window or later."""
    clauses = ["workspace_sid = ?", "event_date >= ?"]
    params: list[Any] = [workspace_sid, to_storage(span.start)]
    if worker_sid is not None:
        clauses.insert(0, "worker_sid = ?")
        params.insert(0, worker_sid)
    if picked is not None:
        clauses.append(f"worker_sid IN ({picked.select})")
        params += picked.params
    history = op.tx.all(
        "SELECT worker_sid, event_type, event_date_ms,"
        " json_extract(event_data, '$.WorkerActivitySid') AS activity,"
        " json_extract(event_data, '$.WorkerPreviousActivitySid') AS previous"
        f" FROM events WHERE {' AND '.join(clauses)}"
        f" AND event_type IN ({', '.join('?' for _ in _WORKER_HISTORY)}) AND {STATISTICS_EVENTS}"
        " ORDER BY event_date_ms DESC, seq DESC",
        [*params, *_WORKER_HISTORY],
    )
    present = "SELECT sid, activity_sid FROM workers WHERE workspace_sid = ?"
    present_params: list[Any] = [workspace_sid]
    if worker_sid is not None:
        present += " AND sid = ?"
        present_params.append(worker_sid)
    if picked is not None:
        present += f" AND sid IN ({picked.select})"
        present_params += picked.params
    now = epoch_ms(op.now())
    # Each worker's cursor: the activity it was in until `ms` (None: not there yet).
    cursors: dict[str, tuple[str | None, int]] = {
        row["sid"]: (row["activity_sid"], now) for row in op.tx.all(present, present_params)
    }
    found: list[tuple[str, int, int]] = []
    for event in history:
        sid, moment = event["worker_sid"], event["event_date_ms"]
        activity, until = cursors.get(sid, (None, now))
        if event["event_type"] == "worker.deleted":
            cursors[sid] = (event["activity"], moment)
            continue
        if activity is not None:
            found.append((event["activity"] or activity, moment, until))
        following = event["previous"] if event["event_type"] == "worker.activity.update" else None
        cursors[sid] = (following, moment)
    # What each worker was in when the window began.
    found += [
        (activity, epoch_ms(span.start), until)
        for activity, until in cursors.values()
        if activity is not None
    ]
    return found
