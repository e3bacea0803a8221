"""Recording TaskRouter events: the row kept for the Events list and, when the workspace asks
for it, the event callback published after commit."""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from taskrouter_sandbox.clock import epoch_ms, from_storage, to_storage
from taskrouter_sandbox.domain.validation import new_sid
from taskrouter_sandbox.domain.values import Actor, EventCallback
from taskrouter_sandbox.state import reads
from taskrouter_sandbox.state.operation import Operation
from taskrouter_sandbox.store import Transaction

# An event's columns as `record` builds its row, the same in `events` and `event_journal`.
_EVENT_COLUMNS = (
    "sid, workspace_sid, event_type, event_date, event_date_ms, resource_type, resource_sid,"
    " actor_type, actor_sid, description, event_data, task_sid, worker_sid, reservation_sid,"
    " task_queue_sid, workflow_sid, task_channel_unique_name, source, source_ip_address,"
    " wait_seconds, queue_wait_seconds"
)
_JOURNAL_INSERT = (
    f"INSERT INTO event_journal ({_EVENT_COLUMNS})"
    f" VALUES ({', '.join('?' for _ in _EVENT_COLUMNS.split(','))})"
)
# The events after which a task's wait is counted (the cumulative statistics' waits until
# accepted and until canceled); their wait columns are NULL on every other event.
_ACCEPTED, _CANCELED = "reservation.accepted", "task.canceled"


def _data_encoder() -> Callable[[dict[str, str]], str]:
    """json.dumps for an event's data (a flat dict of strings), with dumps' defaults: the same
    C encoder dumps builds on every call (json.encoder.JSONEncoder.iterencode), built once,
    without the circular-reference check a flat dict of strings cannot need."""
    make = json.encoder.c_make_encoder
    if make is None:  # no C accelerator: dumps itself
        return json.dumps
    encode = make(
        None,  # markers: no circular check
        json.encoder.JSONEncoder().default,
        json.encoder.encode_basestring_ascii,  # ensure_ascii
        None,  # indent
        ": ",
        ", ",
        False,  # sort_keys
        False,  # skipkeys
        True,  # allow_nan
    )
    return lambda data: "".join(encode(data, 0))


_encode_data = _data_encoder()


def record(
    op: Operation,
    workspace_sid: str,
    event_type: str,
    resource_type: str,
    resource_sid: str,
    description: str,
    fields: Mapping[str, Any],
    actor: Actor | None = None,
) -> str:
    """Store one event (and queue its callback when the workspace asks for it)."""
    moment = op.now()
    # Worked out once for the row, the data and the waits.
    moment_ms = epoch_ms(moment)
    # The account when no actor is named (no Actor built for it).
    actor_type, actor_sid = (
        ("account", op.account_sid) if actor is None else (actor.type, actor.sid)
    )
    event_sid = new_sid("EV")
    data: dict[str, str] = {
        "Sid": event_sid,
        "EventType": event_type,
        "AccountSid": op.account_sid,
        "WorkspaceSid": workspace_sid,
        "WorkspaceName": _workspace_name(op, workspace_sid),
        "EventDescription": description,
        "ResourceType": resource_type,
        "ResourceSid": resource_sid,
        "Timestamp": str(int(moment.timestamp())),
        "TimestampMs": str(moment_ms),
    }
    for name, value in fields.items():
        if value is None:
            continue
        data[name] = value if isinstance(value, str) else json.dumps(value)
    wait = queue_wait = None
    if event_type in (_ACCEPTED, _CANCELED):
        wait = _seconds_since(moment_ms, data.get("TaskDateCreated"))
        if event_type == _ACCEPTED:
            queue_wait = _seconds_since(moment_ms, data.get("TaskQueueEnteredDate"))
    # Written together when the operation ends (flush): one prepared statement for the eight
    # or so events of a routed reservation.
    op.events.append(
        (
            event_sid,
            workspace_sid,
            event_type,
            to_storage(moment),
            moment_ms,
            resource_type,
            resource_sid,
            actor_type,
            actor_sid,
            description,
            _encode_data(data),
            data.get("TaskSid"),
            data.get("WorkerSid"),
            data.get("ReservationSid"),
            data.get("TaskQueueSid"),
            data.get("WorkflowSid"),
            data.get("TaskChannelUniqueName"),
            "sandbox",
            None,
            wait,
            queue_wait,
        )
    )
    callback = _event_callback(op, workspace_sid)
    if callback is not None and (not callback[1] or event_type in callback[1]):
        # data is not changed after this: the callback's params are it, not a copy.
        op.publish(EventCallback(callback[0], data))
    return event_sid


def _seconds_since(moment_ms: int, timestamp: str | None) -> int | None:
    """Whole seconds from an event field's Unix timestamp to the event's own (moment_ms, its
    TimestampMs), never below 0; None without the field."""
    if timestamp is None:
        return None
    return max(0, moment_ms // 1000 - int(timestamp))


_JOURNAL_MOVE = (
    f"INSERT INTO events ({_EVENT_COLUMNS}) SELECT {_EVENT_COLUMNS} FROM event_journal ORDER BY seq"
)
_JOURNAL_PENDING = "SELECT seq FROM event_journal LIMIT 1"


def flush(op: Operation) -> None:
    """Write the events the operation recorded so far, in the order it recorded them, to the
    event journal, which move() empties into `events` in the same order."""
    if op.events:
        op.tx.executemany(_JOURNAL_INSERT, op.events)
        op.journaled += 1
        op.events.clear()


def pending(tx: Transaction) -> bool:
    """Whether the journal holds events not yet in `events` (one probe of its first row)."""
    return tx.scalar(_JOURNAL_PENDING) is not None


def move(tx: Transaction) -> int:
    """Copy every journal row into `events`, oldest first, and empty the journal, in the
    caller's write transaction (so neither step can happen without the other). Returns how
    many events it moved."""
    moved = tx.execute(_JOURNAL_MOVE).rowcount
    # Nothing refers to a journal row (schema.DELETED_ALONE): the row cache keeps its rows.
    tx.execute("DELETE FROM event_journal")
    return moved


def _workspace_name(op: Operation, workspace_sid: str) -> str | None:
    names = op.workspace_names
    if workspace_sid not in names:
        workspace = reads.workspace_or_none(op, workspace_sid)
        names[workspace_sid] = workspace["friendly_name"] if workspace else None
    return names[workspace_sid]


def _event_callback(op: Operation, workspace_sid: str) -> tuple[str, frozenset[str]] | None:
    """The workspace's event callback URL and filter, read once per operation."""
    callbacks = op.event_callbacks
    if workspace_sid not in callbacks:
        workspace = reads.workspace_or_none(op, workspace_sid)
        wanted = {
            name.strip()
            for name in ((workspace or {}).get("events_filter") or "").split(",")
            if name.strip()
        }
        callbacks[workspace_sid] = (
            (workspace["event_callback_url"], frozenset(wanted))
            if workspace and workspace["event_callback_url"]
            else None
        )
    return callbacks[workspace_sid]


def task_fields(op: Operation, task_sid: str) -> dict[str, Any]:
    # The cached row itself (read here, never changed or kept).
    task = reads.task_row(op, task_sid, view=True)
    fields = {
        "TaskSid": task["sid"],
        "TaskAttributes": task["attributes"],
        "TaskAge": str(reads.task_age(op, task)),
        "TaskPriority": str(task["priority"]),
        "TaskAssignmentStatus": task["assignment_status"],
        "TaskDateCreated": _unix_seconds(task["date_created"]),
        "TaskChannelSid": task["task_channel_sid"],
        "TaskChannelUniqueName": task["task_channel_unique_name"],
        "TaskQueueSid": task["task_queue_sid"],
        "TaskQueueName": task["task_queue_friendly_name"],
        "WorkflowSid": task["workflow_sid"],
        "WorkflowName": task["workflow_friendly_name"],
    }
    if task["task_queue_entered_date"]:
        fields["TaskQueueEnteredDate"] = _unix_seconds(task["task_queue_entered_date"])
    return fields


@lru_cache(maxsize=4096)
def _unix_seconds(stored: str) -> str:
    """A stored date as an event's whole Unix seconds: a task's dates go into each of the
    eight or so events of its reservation."""
    return str(int(from_storage(stored).timestamp()))


def worker_fields(op: Operation, worker_sid: str) -> dict[str, Any]:
    worker = reads.worker_by_sid(op, worker_sid, view=True)
    return worker_event_fields(
        worker, worker["activity_sid"], worker["activity_name"], worker["available"]
    )


def worker_event_fields(
    worker: Mapping[str, Any], activity_sid: str, activity_name: str, available: int
) -> dict[str, Any]:
    """A worker's event fields in the given activity (the one it is moving to, or its own)."""
    return {
        "WorkerSid": worker["sid"],
        "WorkerName": worker["friendly_name"],
        "WorkerAttributes": worker["attributes"],
        "WorkerActivitySid": activity_sid,
        "WorkerActivityName": activity_name,
        "WorkerAvailable": "true" if available else "false",
    }


def record_reservation(
    op: Operation,
    reservation_sid: str,
    event_type: str,
    verb: str,
    actor: Actor | None = None,
) -> None:
    reservation = reads.reservation_row(op, reservation_sid, view=True)
    fields = {
        **task_fields(op, reservation["task_sid"]),
        **worker_fields(op, reservation["worker_sid"]),
        "ReservationSid": reservation_sid,
        "ReservationStatus": reservation["reservation_status"],
    }
    record(
        op,
        reservation["workspace_sid"],
        event_type,
        "reservation",
        reservation_sid,
        f"Reservation {reservation_sid} for Worker {reservation['worker_name']} {verb}",
        fields,
        actor,
    )
