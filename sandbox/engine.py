"""The sandbox's TaskRouter behaviour: validation, state machines, task placement and events.

Pure Python over the store (no Flask, no HTTP); time comes from an injected clock.

Far over 600 lines, with one Engine class for every resource: the sandbox's planned
restructure splits it into one module per TaskRouter resource behind a thin Engine facade,
with every status write in one place. Doing that in one coherent step, with no change in
behaviour, is safer than moving pieces out while features still land in it.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sandbox import expressions, jsonlimits, outbox
from sandbox.clock import Clock, to_storage
from sandbox.routing import DUE_BATCH, TTL_REASON, Router, parse_order_by
from sandbox.store import InvalidPageToken, Order, Page, Store, Transaction, page

logger = logging.getLogger(__name__)

# -- limits and enums (from Twilio's TaskRouter v1 description) ---------------------------

MAX_FRIENDLY_NAME = 64
MAX_ATTRIBUTES = 16384
MAX_CONFIGURATION = 65536
MAX_PRIORITY = 2**31 - 1
DEFAULT_TASK_TIMEOUT = 86400
MAX_TASK_TIMEOUT = 1_209_600
DEFAULT_RESERVATION_TIMEOUT = 120
MAX_RESERVATION_TIMEOUT = 86400
MAX_RESERVED_WORKERS = 50
MAX_EVENT_MINUTES = 43200
DEFAULT_EVENT_MINUTES = 15
MAX_REJECTIONS = 1000

TASK_STATUSES = ("pending", "reserved", "assigned", "canceled", "completed", "wrapping")
ACTIVE_TASK_STATUSES = ("pending", "reserved", "assigned", "wrapping")
FINAL_TASK_STATUSES = ("canceled", "completed")
RESERVATION_STATUSES = (
    "pending",
    "accepted",
    "rejected",
    "timeout",
    "canceled",
    "rescinded",
    "wrapping",
    "completed",
)
QUEUE_ORDERS = ("FIFO", "LIFO")
TEMPLATES = ("NONE", "FIFO")
INSTRUCTIONS = ("accept", "reject", "dequeue", "call", "redirect", "conference")
# Roots a workflow target's expression may name: it sees the task and the candidate worker.
TARGET_EXPRESSION_ROOTS = frozenset({"task", "worker", "taskrouter", "workers"})

DEFAULT_ACTIVITIES = (("Offline", False), ("Available", True), ("Unavailable", False))
DEFAULT_TASK_CHANNELS = (
    ("Default", "default"),
    ("Voice", "voice"),
    ("SMS", "sms"),
    ("Chat", "chat"),
    ("Video", "video"),
    ("Email", "email"),
)

SID_PATTERN = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$")
_TRUE_WORDS = frozenset({"true", "1", "yes"})


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def is_sid(value: object, prefix: str) -> bool:
    return isinstance(value, str) and bool(SID_PATTERN.match(value)) and value[:2] == prefix


def truthy(value: str) -> bool:
    """Twilio's reading of Available-style flags: true, 1 or yes; anything else is false."""
    return value.strip().lower() in _TRUE_WORDS


# -- errors and effects -------------------------------------------------------------------


class EngineError(Exception):
    """A request TaskRouter refuses: a bad parameter or a state change that is not allowed."""

    def __init__(self, message: str, *, status: int = 400, code: int = 20001) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


class NotFound(EngineError):
    """A SID in the path that does not exist (in this workspace)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=404, code=20404)


@dataclass(frozen=True)
class EventCallback:
    """A workspace event to POST to its event_callback_url once the change is committed."""

    url: str
    params: dict[str, str]


@dataclass(frozen=True)
class AssignmentCallback:
    """A new reservation to POST to the workflow's assignment_callback_url after commit."""

    reservation_sid: str
    url: str
    fallback_url: str | None
    params: dict[str, str]


Effect = EventCallback | AssignmentCallback


@dataclass(frozen=True)
class Change:
    """Something routing may need to look at again, noted during a transaction."""

    kind: str
    workspace_sid: str
    sid: str


@dataclass(frozen=True)
class Paging:
    page_size: int = 50
    page_number: int = 0
    page_token: str | None = None


@dataclass(frozen=True)
class Actor:
    """Who caused an event: the account over REST, or the workspace itself (timers, routing)."""

    type: str
    sid: str


@dataclass(frozen=True)
class _Alert:
    """An alert the engine raises itself, shaped like dispatch.Alert."""

    code: int
    level: str
    message: str
    url: str


@dataclass
class _Pending:
    """What an engine operation collects inside its transaction."""

    effects: list[Effect] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    workspace_names: dict[str, str] = field(default_factory=dict)
    # workspace_sid -> (event_callback_url, events_filter) or None, read once per operation.
    event_callbacks: dict[str, tuple[str, frozenset[str]] | None] = field(default_factory=dict)
    workspaces: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Event rows (in _EVENT_INSERT's column order) not yet written.
    events: list[tuple[Any, ...]] = field(default_factory=list)
    # Seconds to the soonest deadline the operation set, which the timer thread must learn of.
    deadline: float | None = None


# -- queries ------------------------------------------------------------------------------

WORKSPACE_SELECT = (
    "SELECT w.*, da.friendly_name AS default_activity_name,"
    " ta.friendly_name AS timeout_activity_name"
    " FROM workspaces w"
    " LEFT JOIN activities da ON da.sid = w.default_activity_sid"
    " LEFT JOIN activities ta ON ta.sid = w.timeout_activity_sid"
)
ACTIVITY_SELECT = "SELECT a.* FROM activities a"
TASK_CHANNEL_SELECT = "SELECT c.* FROM task_channels c"
WORKER_SELECT = (
    "SELECT k.*, a.friendly_name AS activity_name"
    " FROM workers k JOIN activities a ON a.sid = k.activity_sid"
)
TASK_QUEUE_SELECT = (
    "SELECT q.*, ra.friendly_name AS reservation_activity_name,"
    " aa.friendly_name AS assignment_activity_name"
    " FROM task_queues q"
    " LEFT JOIN activities ra ON ra.sid = q.reservation_activity_sid"
    " LEFT JOIN activities aa ON aa.sid = q.assignment_activity_sid"
)
WORKFLOW_SELECT = "SELECT f.* FROM workflows f"
TASK_SELECT = (
    "SELECT t.*, q.friendly_name AS task_queue_friendly_name,"
    " f.friendly_name AS workflow_friendly_name, c.unique_name AS task_channel_unique_name"
    " FROM tasks t"
    " LEFT JOIN task_queues q ON q.sid = t.task_queue_sid"
    " LEFT JOIN workflows f ON f.sid = t.workflow_sid"
    " LEFT JOIN task_channels c ON c.sid = t.task_channel_sid"
)
RESERVATION_SELECT = (
    "SELECT r.*, k.friendly_name AS worker_name"
    " FROM reservations r JOIN workers k ON k.sid = r.worker_sid"
)
EVENT_SELECT = "SELECT e.* FROM events e"
_EVENT_INSERT = (
    "INSERT INTO events (sid, workspace_sid, event_type, event_date, event_date_ms,"
    " resource_type, resource_sid, actor_type, actor_sid, description, event_data, task_sid,"
    " worker_sid, reservation_sid, task_queue_sid, workflow_sid, task_channel_unique_name,"
    " source, source_ip_address) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# What the joined columns of TASK_SELECT and RESERVATION_SELECT come from (for tx.cached).
_TASK_JOINS = frozenset({"task_queues", "workflows", "task_channels"})
_TASK_JOIN_KEYS = frozenset({"task_queue_sid", "workflow_sid", "task_channel_sid"})
_RESERVATION_JOINS = frozenset({"workers"})
_RESERVATION_JOIN_KEYS = frozenset({"worker_sid"})

_TASK_ORDER_COLUMNS = {
    "datecreated": ("t.date_created", "date_created"),
    "priority": ("t.priority", "priority"),
    "virtualstarttime": ("COALESCE(t.virtual_start_time, t.date_created)", "virtual_start"),
}
_WORKER_ORDER_COLUMNS = {
    "datecreated": ("k.date_created", "date_created"),
    "datestatuschanged": ("k.date_status_changed", "date_status_changed"),
}
_TASK_QUEUE_ORDER_COLUMNS = {
    "datecreated": ("q.date_created", "date_created"),
    "dateupdated": ("q.date_updated", "date_updated"),
}


# -- validation helpers -------------------------------------------------------------------


def _text(value: object, parameter: str, *, limit: int = MAX_FRIENDLY_NAME) -> str:
    if not isinstance(value, str) or not value.strip():
        raise EngineError(f"{parameter} must be a non-empty string")
    if len(value) > limit:
        raise EngineError(f"{parameter} must be at most {limit} characters long")
    return value


def _sid(value: object, prefix: str, parameter: str) -> str:
    if not is_sid(value, prefix):
        raise EngineError(f"{parameter} {value!r} is not a valid SID (expected {prefix} + 32 hex)")
    return value  # type: ignore[return-value]


def _integer(value: object, parameter: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise EngineError(f"{parameter} must be an integer")
    if not low <= value <= high:
        raise EngineError(f"{parameter} must be between {low} and {high}, got {value}")
    return value


def _url(value: object, parameter: str) -> str | None:
    """An absolute http(s) URL, or None for an empty string (which clears the setting)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 2048:
        raise EngineError(f"{parameter} must be an absolute http or https URL")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EngineError(f"{parameter} must be an absolute http or https URL, got {value!r}")
    return value


def _json_object(value: object, parameter: str, *, limit: int = MAX_ATTRIBUTES) -> str:
    if not isinstance(value, str):
        raise EngineError(f"{parameter} must be a JSON object")
    if len(value) > limit:
        raise EngineError(f"{parameter} must be at most {limit} characters long")
    try:
        document = jsonlimits.loads(value)
    except jsonlimits.TooDeep as error:
        raise EngineError(f"{parameter} {error}") from None
    except ValueError as error:
        raise EngineError(f"{parameter} is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise EngineError(f"{parameter} must be a JSON object, not {type(document).__name__}")
    return value


def _expression(source: object, parameter: str) -> expressions.Expression:
    if not isinstance(source, str) or not source.strip():
        raise EngineError(f"{parameter} must be a non-empty expression")
    try:
        return expressions.parse(source)
    except expressions.ExpressionError as error:
        raise EngineError(f"{parameter} is not a valid expression: {error}") from None


def _attributes(text: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    # Validated on the way in; RecursionError only for a row stored before depth was limited.
    except (ValueError, RecursionError):  # pragma: no cover
        return {}
    return document if isinstance(document, dict) else {}


def _ordering(text: str | None, columns: dict[str, tuple[str, str]], alias: str) -> list[Order]:
    """Parse Twilio's `Attribute:asc|desc[,Attribute:dir]` into keyset columns."""
    if text is None or text == "":
        return [Order(f"{alias}.seq", "seq")]
    order: list[Order] = []
    seen: set[str] = set()
    for part in text.split(","):
        attribute, _, direction = part.strip().partition(":")
        key = attribute.strip().lower()
        if key not in columns or direction.strip().lower() not in ("asc", "desc", ""):
            names = ", ".join(sorted(name for name in columns))
            raise EngineError(
                f"Ordering {text!r} is not valid: use Attribute:asc or Attribute:desc "
                f"with Attribute one of {names} (case-insensitive)"
            )
        if key in seen:
            raise EngineError(f"Ordering {text!r} names {attribute.strip()} twice")
        seen.add(key)
        expression, row_field = columns[key]
        order.append(Order(expression, row_field, direction.strip().lower() == "desc"))
    if {"datecreated", "virtualstarttime"} <= seen:
        raise EngineError("Ordering cannot pair DateCreated with VirtualStartTime")
    order.append(Order(f"{alias}.seq", "seq", order[0].descending))
    return order


def _paged(tx: Transaction, paging: Paging, **arguments: Any) -> Page:
    try:
        return page(
            tx,
            page_size=paging.page_size,
            page_number=paging.page_number,
            page_token=paging.page_token,
            **arguments,
        )
    except InvalidPageToken:
        raise EngineError(
            f"PageToken {paging.page_token!r} is not valid for this list (it comes from "
            "another list or ordering, or was altered)"
        ) from None


def from_storage(text: str) -> datetime:
    """A stored date back as an aware datetime; fromisoformat is many times faster than the
    strptime in clock.from_storage, and this runs several times per routed reservation."""
    return datetime.fromisoformat(text)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


# -- the engine ---------------------------------------------------------------------------


class Engine:
    """Every change to the sandbox, each in one transaction that also records its events."""

    def __init__(self, store: Store, clock: Clock, account_sid: str) -> None:
        self.store = store
        self.clock = clock
        self.account_sid = account_sid
        self._subscribers: list[Callable[[list[Effect]], None]] = []
        self._deadline_listeners: list[Callable[[float], None]] = []
        self.router = Router(self)
        # The outbox owner (outbox.Outbox.owner) whose dispatcher sends this process's
        # assignment callbacks; None while no delivery runs here.
        self.callback_owner: str | None = None

    # -- plumbing ------------------------------------------------------------------

    def subscribe(self, callback: Callable[[list[Effect]], None]) -> None:
        """callback(effects) runs after each committed change that produced effects."""
        self._subscribers.append(callback)

    def unsubscribe(self, callback: Callable[[list[Effect]], None]) -> None:
        self._subscribers.remove(callback)

    def on_deadline(self, callback: Callable[[float], None]) -> None:
        """callback(seconds to the soonest deadline it set) runs after each committed change
        that set a deadline (scheduler.wake)."""
        self._deadline_listeners.append(callback)

    def remove_deadline_listener(self, callback: Callable[[float], None]) -> None:
        self._deadline_listeners.remove(callback)

    def _deadline_set(self, tx: Transaction, due: datetime) -> None:
        pending: _Pending = tx.data["engine"]
        due_in = (due - self._now()).total_seconds()
        if pending.deadline is None or due_in < pending.deadline:
            pending.deadline = due_in

    def _wake(self, due_in: float) -> None:
        for callback in list(self._deadline_listeners):
            try:
                callback(due_in)
            except Exception:
                logger.exception("a deadline listener failed")

    def _publish(self, effects: list[Effect]) -> None:
        if not effects:
            return
        for callback in list(self._subscribers):
            try:
                callback(list(effects))
            except Exception:
                logger.exception("an effects subscriber failed")

    @contextmanager
    def _change(self) -> Iterator[Transaction]:
        """One engine operation: joins an open transaction, else opens one.

        The outermost operation runs _after_change before commit and publishes the effects
        collected by every nested operation once the commit has succeeded.
        """
        with self.store.transaction() as tx:
            pending: _Pending | None = tx.data.get("engine")
            if pending is not None:
                yield tx
                return
            pending = _Pending()
            tx.data["engine"] = pending
            try:
                yield tx
                self._after_change(tx, pending.changes)
                self._flush_events(tx)
            finally:
                del tx.data["engine"]
            tx.after_commit(lambda: self._publish(pending.effects))
            due_in = pending.deadline
            if due_in is not None:
                tx.after_commit(lambda: self._wake(due_in))

    def _after_change(self, tx: Transaction, changes: list[Change]) -> None:
        """Where routing runs, inside the same transaction, once per operation."""
        self.router.run(tx, changes)

    @staticmethod
    def _flush_events(tx: Transaction) -> None:
        """Write the events the operation recorded so far, in the order it recorded them."""
        pending: _Pending | None = tx.data.get("engine")
        if pending is not None and pending.events:
            tx.executemany(_EVENT_INSERT, pending.events)
            pending.events.clear()

    def _note(self, tx: Transaction, kind: str, workspace_sid: str, sid: str) -> None:
        tx.data["engine"].changes.append(Change(kind, workspace_sid, sid))

    def _effect(self, tx: Transaction, effect: Effect) -> None:
        tx.data["engine"].effects.append(effect)

    def _now(self) -> datetime:
        return self.clock.now()

    @staticmethod
    def _workspace_actor(workspace_sid: str) -> Actor:
        return Actor("workspace", workspace_sid)

    # -- lookups -------------------------------------------------------------------

    def _workspace(self, tx: Transaction, workspace_sid: str) -> dict[str, Any]:
        # Read once per operation: routing looks a workspace up many times per reservation.
        pending: _Pending | None = tx.data.get("engine")
        if pending is not None and workspace_sid in pending.workspaces:
            return dict(pending.workspaces[workspace_sid])
        row = tx.one(WORKSPACE_SELECT + " WHERE w.sid = ?", (workspace_sid,))
        if row is None:
            raise NotFound(f"Workspace {workspace_sid} not found")
        if pending is not None:
            pending.workspaces[workspace_sid] = dict(row)
        return row

    @staticmethod
    def _forget_workspace(tx: Transaction, workspace_sid: str) -> None:
        """Drop what this operation cached about a workspace whose row just changed."""
        pending: _Pending | None = tx.data.get("engine")
        if pending is not None:
            pending.workspaces.pop(workspace_sid, None)
            pending.workspace_names.pop(workspace_sid, None)
            pending.event_callbacks.pop(workspace_sid, None)

    def _scoped(
        self, tx: Transaction, select: str, alias: str, name: str, workspace_sid: str, sid: str
    ) -> dict[str, Any]:
        self._workspace(tx, workspace_sid)
        row = tx.one(
            f"{select} WHERE {alias}.sid = ? AND {alias}.workspace_sid = ?", (sid, workspace_sid)
        )
        if row is None:
            raise NotFound(f"{name} {sid} not found in workspace {workspace_sid}")
        return row

    def _activity(self, tx: Transaction, workspace_sid: str, sid: str) -> dict[str, Any]:
        return self._scoped(tx, ACTIVITY_SELECT, "a", "Activity", workspace_sid, sid)

    def _worker(self, tx: Transaction, workspace_sid: str, sid: str) -> dict[str, Any]:
        return self._scoped(tx, WORKER_SELECT, "k", "Worker", workspace_sid, sid)

    def _task_queue(self, tx: Transaction, workspace_sid: str, sid: str) -> dict[str, Any]:
        return self._scoped(tx, TASK_QUEUE_SELECT, "q", "TaskQueue", workspace_sid, sid)

    def _workflow(self, tx: Transaction, workspace_sid: str, sid: str) -> dict[str, Any]:
        return self._scoped(tx, WORKFLOW_SELECT, "f", "Workflow", workspace_sid, sid)

    def _task(self, tx: Transaction, workspace_sid: str, sid: str) -> dict[str, Any]:
        self._workspace(tx, workspace_sid)
        task = self._task_row(tx, sid)
        if task is None or task["workspace_sid"] != workspace_sid:
            raise NotFound(f"Task {sid} not found in workspace {workspace_sid}")
        return self._with_age(task)

    @staticmethod
    def _task_row(tx: Transaction, sid: str) -> dict[str, Any] | None:
        """A task with its queue, workflow and channel names, read once per transaction."""
        return tx.cached(
            "tasks",
            sid,
            lambda: tx.one(TASK_SELECT + " WHERE t.sid = ?", (sid,)),
            joins=_TASK_JOINS,
            keys=_TASK_JOIN_KEYS,
        )

    @staticmethod
    def _reservation_row(tx: Transaction, sid: str) -> dict[str, Any] | None:
        """A reservation with its worker's name, read once per transaction."""
        return tx.cached(
            "reservations",
            sid,
            lambda: tx.one(RESERVATION_SELECT + " WHERE r.sid = ?", (sid,)),
            joins=_RESERVATION_JOINS,
            keys=_RESERVATION_JOIN_KEYS,
        )

    def _task_channel(self, tx: Transaction, workspace_sid: str, sid: str) -> dict[str, Any]:
        return self._scoped(tx, TASK_CHANNEL_SELECT, "c", "TaskChannel", workspace_sid, sid)

    def _reservation(self, tx: Transaction, workspace_sid: str, sid: str) -> dict[str, Any]:
        self._workspace(tx, workspace_sid)
        reservation = self._reservation_row(tx, sid)
        if reservation is None or reservation["workspace_sid"] != workspace_sid:
            raise NotFound(f"Reservation {sid} not found in workspace {workspace_sid}")
        return reservation

    def _referenced_activity(
        self, tx: Transaction, workspace_sid: str, sid: object, parameter: str
    ) -> dict[str, Any]:
        """An activity named in a parameter: a bad one is a 400 naming the parameter."""
        _sid(sid, "WA", parameter)
        row = tx.one(
            ACTIVITY_SELECT + " WHERE a.sid = ? AND a.workspace_sid = ?", (sid, workspace_sid)
        )
        if row is None:
            raise EngineError(f"{parameter} {sid} is not an Activity of workspace {workspace_sid}")
        return row

    def _with_age(self, task: dict[str, Any]) -> dict[str, Any]:
        start = task.get("virtual_start_time") or task["date_created"]
        task["age"] = max(0, int((self._now() - from_storage(start)).total_seconds()))
        return task

    # -- events --------------------------------------------------------------------

    def _workspace_name(self, tx: Transaction, workspace_sid: str) -> str:
        names = tx.data["engine"].workspace_names
        if workspace_sid not in names:
            workspace = self._workspace_or_none(tx, workspace_sid)
            names[workspace_sid] = workspace["friendly_name"] if workspace else None
        return names[workspace_sid]

    def _workspace_or_none(self, tx: Transaction, workspace_sid: str) -> dict[str, Any] | None:
        """The operation's cached workspace row (not a copy: callers only read it)."""
        pending: _Pending = tx.data["engine"]
        if workspace_sid not in pending.workspaces:
            try:
                self._workspace(tx, workspace_sid)
            except NotFound:
                return None
        return pending.workspaces[workspace_sid]

    def _record(
        self,
        tx: Transaction,
        workspace_sid: str,
        event_type: str,
        resource_type: str,
        resource_sid: str,
        description: str,
        fields: Mapping[str, Any],
        actor: Actor | None = None,
    ) -> str:
        """Store one event (and queue its callback when the workspace asks for it)."""
        moment = self._now()
        actor = actor or Actor("account", self.account_sid)
        event_sid = new_sid("EV")
        data: dict[str, str] = {
            "Sid": event_sid,
            "EventType": event_type,
            "AccountSid": self.account_sid,
            "WorkspaceSid": workspace_sid,
            "WorkspaceName": self._workspace_name(tx, workspace_sid),
            "EventDescription": description,
            "ResourceType": resource_type,
            "ResourceSid": resource_sid,
            "Timestamp": str(int(moment.timestamp())),
            "TimestampMs": str(_ms(moment)),
        }
        for name, value in fields.items():
            if value is None:
                continue
            data[name] = value if isinstance(value, str) else json.dumps(value)
        # Written together when the operation ends (_flush_events): one prepared statement
        # for the eight or so events of a routed reservation.
        tx.data["engine"].events.append(
            (
                event_sid,
                workspace_sid,
                event_type,
                to_storage(moment),
                _ms(moment),
                resource_type,
                resource_sid,
                actor.type,
                actor.sid,
                description,
                json.dumps(data),
                data.get("TaskSid"),
                data.get("WorkerSid"),
                data.get("ReservationSid"),
                data.get("TaskQueueSid"),
                data.get("WorkflowSid"),
                data.get("TaskChannelUniqueName"),
                "sandbox",
                None,
            )
        )
        callbacks = tx.data["engine"].event_callbacks
        if workspace_sid not in callbacks:
            workspace = self._workspace_or_none(tx, workspace_sid)
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
        callback = callbacks[workspace_sid]
        if callback is not None and (not callback[1] or event_type in callback[1]):
            self._effect(tx, EventCallback(callback[0], dict(data)))
        return event_sid

    def _task_fields(self, tx: Transaction, task_sid: str) -> dict[str, Any]:
        task = self._with_age(self._task_row(tx, task_sid))
        fields = {
            "TaskSid": task["sid"],
            "TaskAttributes": task["attributes"],
            "TaskAge": str(task["age"]),
            "TaskPriority": str(task["priority"]),
            "TaskAssignmentStatus": task["assignment_status"],
            "TaskDateCreated": str(int(from_storage(task["date_created"]).timestamp())),
            "TaskChannelSid": task["task_channel_sid"],
            "TaskChannelUniqueName": task["task_channel_unique_name"],
            "TaskQueueSid": task["task_queue_sid"],
            "TaskQueueName": task["task_queue_friendly_name"],
            "WorkflowSid": task["workflow_sid"],
            "WorkflowName": task["workflow_friendly_name"],
        }
        if task["task_queue_entered_date"]:
            entered = from_storage(task["task_queue_entered_date"])
            fields["TaskQueueEnteredDate"] = str(int(entered.timestamp()))
        return fields

    def _worker_fields(self, tx: Transaction, worker_sid: str) -> dict[str, Any]:
        worker = tx.one(WORKER_SELECT + " WHERE k.sid = ?", (worker_sid,))
        return {
            "WorkerSid": worker["sid"],
            "WorkerName": worker["friendly_name"],
            "WorkerAttributes": worker["attributes"],
            "WorkerActivitySid": worker["activity_sid"],
            "WorkerActivityName": worker["activity_name"],
            "WorkerAvailable": "true" if worker["available"] else "false",
        }

    # -- workspaces ----------------------------------------------------------------

    def get_workspace(self, workspace_sid: str) -> dict[str, Any]:
        with self.store.read() as tx:
            return self._workspace(tx, workspace_sid)

    def list_workspaces(self, paging: Paging, *, friendly_name: str | None = None) -> Page:
        with self.store.read() as tx:
            where, params = [], []
            if friendly_name is not None:
                where.append("w.friendly_name = ?")
                params.append(friendly_name)
            return _paged(
                tx,
                paging,
                select=WORKSPACE_SELECT,
                where=where,
                params=params,
                order=[Order("w.seq", "seq")],
            )

    def create_workspace(
        self,
        friendly_name: str,
        *,
        event_callback_url: str | None = None,
        events_filter: str | None = None,
        multi_task_enabled: bool = False,
        prioritize_queue_order: str = "FIFO",
        template: str | None = None,
    ) -> dict[str, Any]:
        """A workspace with Twilio's default activities and task channels (and FIFO template)."""
        _text(friendly_name, "FriendlyName")
        event_callback_url = _url(event_callback_url, "EventCallbackUrl")
        if prioritize_queue_order not in QUEUE_ORDERS:
            raise EngineError("PrioritizeQueueOrder must be FIFO or LIFO")
        template = (template or "NONE").upper()
        if template not in TEMPLATES:
            raise EngineError(f"Template must be NONE or FIFO, got {template!r}")
        with self._change() as tx:
            now = to_storage(self._now())
            workspace_sid = new_sid("WS")
            tx.insert(
                "workspaces",
                {
                    "sid": workspace_sid,
                    "friendly_name": friendly_name,
                    "event_callback_url": event_callback_url,
                    "events_filter": events_filter or None,
                    "multi_task_enabled": int(bool(multi_task_enabled)),
                    "prioritize_queue_order": prioritize_queue_order,
                    "date_created": now,
                    "date_updated": now,
                },
            )
            activity_sids = [
                self.create_activity(workspace_sid, name, available=available)["sid"]
                for name, available in DEFAULT_ACTIVITIES
            ]
            tx.update(
                "workspaces",
                workspace_sid,
                {
                    "default_activity_sid": activity_sids[0],
                    "timeout_activity_sid": activity_sids[0],
                },
            )
            self._forget_workspace(tx, workspace_sid)
            for name, unique_name in DEFAULT_TASK_CHANNELS:
                self.create_task_channel(workspace_sid, name, unique_name)
            if template == "FIFO":
                queue = self.create_task_queue(workspace_sid, "Sample Queue")
                self.create_workflow(
                    workspace_sid,
                    "Default Fifo Workflow",
                    json.dumps(
                        {
                            "task_routing": {
                                "filters": [],
                                "default_filter": {"queue": queue["sid"]},
                            }
                        }
                    ),
                )
            return self._workspace(tx, workspace_sid)

    def update_workspace(self, workspace_sid: str, **changes: Any) -> dict[str, Any]:
        """Accepts friendly_name, default_activity_sid, timeout_activity_sid,
        event_callback_url, events_filter, multi_task_enabled, prioritize_queue_order."""
        allowed = {
            "friendly_name",
            "default_activity_sid",
            "timeout_activity_sid",
            "event_callback_url",
            "events_filter",
            "multi_task_enabled",
            "prioritize_queue_order",
        }
        unknown = set(changes) - allowed
        if unknown:
            raise TypeError(f"update_workspace() got unexpected fields {sorted(unknown)}")
        with self._change() as tx:
            self._workspace(tx, workspace_sid)
            values: dict[str, Any] = {}
            if changes.get("friendly_name") is not None:
                values["friendly_name"] = _text(changes["friendly_name"], "FriendlyName")
            for key, parameter in (
                ("default_activity_sid", "DefaultActivitySid"),
                ("timeout_activity_sid", "TimeoutActivitySid"),
            ):
                if changes.get(key) is not None:
                    activity = self._referenced_activity(tx, workspace_sid, changes[key], parameter)
                    values[key] = activity["sid"]
            if changes.get("event_callback_url") is not None:
                values["event_callback_url"] = _url(
                    changes["event_callback_url"], "EventCallbackUrl"
                )
            if changes.get("events_filter") is not None:
                values["events_filter"] = changes["events_filter"] or None
            if changes.get("multi_task_enabled") is not None:
                values["multi_task_enabled"] = int(bool(changes["multi_task_enabled"]))
            if changes.get("prioritize_queue_order") is not None:
                if changes["prioritize_queue_order"] not in QUEUE_ORDERS:
                    raise EngineError("PrioritizeQueueOrder must be FIFO or LIFO")
                values["prioritize_queue_order"] = changes["prioritize_queue_order"]
            if values:
                values["date_updated"] = to_storage(self._now())
                tx.update("workspaces", workspace_sid, values)
                self._forget_workspace(tx, workspace_sid)
                self._note(tx, "workspace.updated", workspace_sid, workspace_sid)
            return self._workspace(tx, workspace_sid)

    def delete_workspace(self, workspace_sid: str) -> None:
        """Deletes the workspace and everything in it."""
        with self._change() as tx:
            self._workspace(tx, workspace_sid)
            self._flush_events(tx)  # so that the events go with the rest
            for table in ("events", "reservations", "tasks", "workflows", "workers"):
                tx.execute(f"DELETE FROM {table} WHERE workspace_sid = ?", (workspace_sid,))
            for table in ("task_queues", "task_channels", "activities"):
                tx.execute(f"DELETE FROM {table} WHERE workspace_sid = ?", (workspace_sid,))
            tx.delete("workspaces", workspace_sid)
            self._forget_workspace(tx, workspace_sid)

    # -- activities ----------------------------------------------------------------

    def get_activity(self, workspace_sid: str, sid: str) -> dict[str, Any]:
        with self.store.read() as tx:
            return self._activity(tx, workspace_sid, sid)

    def list_activities(
        self,
        workspace_sid: str,
        paging: Paging,
        *,
        friendly_name: str | None = None,
        available: bool | None = None,
    ) -> Page:
        with self.store.read() as tx:
            self._workspace(tx, workspace_sid)
            where, params = ["a.workspace_sid = ?"], [workspace_sid]
            if friendly_name is not None:
                where.append("a.friendly_name = ?")
                params.append(friendly_name)
            if available is not None:
                where.append("a.available = ?")
                params.append(int(available))
            return _paged(
                tx,
                paging,
                select=ACTIVITY_SELECT,
                where=where,
                params=params,
                order=[Order("a.seq", "seq")],
            )

    def _check_activity_name(
        self, tx: Transaction, workspace_sid: str, friendly_name: str, sid: str | None = None
    ) -> None:
        clash = tx.scalar(
            "SELECT sid FROM activities WHERE workspace_sid = ? AND lower(friendly_name) = ?"
            " AND sid IS NOT ?",
            (workspace_sid, friendly_name.lower(), sid),
        )
        if clash:
            raise EngineError(
                f"FriendlyName {friendly_name!r}: an Activity with that name already exists "
                f"({clash})"
            )

    def create_activity(
        self, workspace_sid: str, friendly_name: str, *, available: bool = False
    ) -> dict[str, Any]:
        _text(friendly_name, "FriendlyName")
        with self._change() as tx:
            self._workspace(tx, workspace_sid)
            self._check_activity_name(tx, workspace_sid, friendly_name)
            now = to_storage(self._now())
            sid = new_sid("WA")
            tx.insert(
                "activities",
                {
                    "sid": sid,
                    "workspace_sid": workspace_sid,
                    "friendly_name": friendly_name,
                    "available": int(bool(available)),
                    "date_created": now,
                    "date_updated": now,
                },
            )
            self._record(
                tx,
                workspace_sid,
                "activity.created",
                "activity",
                sid,
                f"Activity {friendly_name} created",
                {"ActivitySid": sid, "ActivityName": friendly_name},
            )
            return self._activity(tx, workspace_sid, sid)

    def update_activity(
        self, workspace_sid: str, sid: str, *, friendly_name: str | None = None
    ) -> dict[str, Any]:
        with self._change() as tx:
            activity = self._activity(tx, workspace_sid, sid)
            if friendly_name is not None and friendly_name != activity["friendly_name"]:
                _text(friendly_name, "FriendlyName")
                self._check_activity_name(tx, workspace_sid, friendly_name, sid)
                tx.update(
                    "activities",
                    sid,
                    {"friendly_name": friendly_name, "date_updated": to_storage(self._now())},
                )
                self._record(
                    tx,
                    workspace_sid,
                    "activity.updated",
                    "activity",
                    sid,
                    f"Activity {activity['friendly_name']} renamed to {friendly_name}",
                    {"ActivitySid": sid, "ActivityName": friendly_name},
                )
                self._forget_workspace(tx, workspace_sid)  # it names its activities
            return self._activity(tx, workspace_sid, sid)

    def delete_activity(self, workspace_sid: str, sid: str) -> None:
        with self._change() as tx:
            activity = self._activity(tx, workspace_sid, sid)
            workspace = self._workspace(tx, workspace_sid)
            name = activity["friendly_name"]
            if sid in (workspace["default_activity_sid"], workspace["timeout_activity_sid"]):
                raise EngineError(
                    f"Activity {sid} ({name}) is the workspace's default or timeout activity "
                    "and cannot be deleted; change DefaultActivitySid/TimeoutActivitySid first"
                )
            workers = tx.scalar("SELECT count(*) FROM workers WHERE activity_sid = ?", (sid,))
            if workers:
                raise EngineError(
                    f"Activity {sid} ({name}) cannot be deleted: {workers} worker(s) are in it"
                )
            queue = tx.scalar(
                "SELECT sid FROM task_queues WHERE reservation_activity_sid = ?"
                " OR assignment_activity_sid = ?",
                (sid, sid),
            )
            if queue:
                raise EngineError(
                    f"Activity {sid} ({name}) cannot be deleted: TaskQueue {queue} uses it as "
                    "its reservation or assignment activity"
                )
            tx.delete("activities", sid)
            self._record(
                tx,
                workspace_sid,
                "activity.deleted",
                "activity",
                sid,
                f"Activity {name} deleted",
                {"ActivitySid": sid, "ActivityName": name},
            )

    # -- task channels -------------------------------------------------------------

    def get_task_channel(self, workspace_sid: str, sid: str) -> dict[str, Any]:
        with self.store.read() as tx:
            return self._task_channel_by_sid_or_name(tx, workspace_sid, sid)

    def _task_channel_by_sid_or_name(
        self, tx: Transaction, workspace_sid: str, sid_or_name: str
    ) -> dict[str, Any]:
        # Twilio addresses a task channel by SID or by unique name.
        if is_sid(sid_or_name, "TC"):
            return self._task_channel(tx, workspace_sid, sid_or_name)
        self._workspace(tx, workspace_sid)
        row = tx.one(
            TASK_CHANNEL_SELECT + " WHERE c.workspace_sid = ? AND c.unique_name = ?",
            (workspace_sid, sid_or_name),
        )
        if row is None:
            raise NotFound(f"TaskChannel {sid_or_name} not found in workspace {workspace_sid}")
        return row

    def list_task_channels(self, workspace_sid: str, paging: Paging) -> Page:
        with self.store.read() as tx:
            self._workspace(tx, workspace_sid)
            return _paged(
                tx,
                paging,
                select=TASK_CHANNEL_SELECT,
                where=["c.workspace_sid = ?"],
                params=[workspace_sid],
                order=[Order("c.seq", "seq")],
            )

    def create_task_channel(
        self,
        workspace_sid: str,
        friendly_name: str,
        unique_name: str,
        *,
        channel_optimized_routing: bool | None = None,
    ) -> dict[str, Any]:
        _text(friendly_name, "FriendlyName")
        _text(unique_name, "UniqueName")
        if is_sid(unique_name, "TC"):
            raise EngineError("UniqueName must not look like a TaskChannel SID")
        with self._change() as tx:
            self._workspace(tx, workspace_sid)
            if tx.scalar(
                "SELECT sid FROM task_channels WHERE workspace_sid = ? AND unique_name = ?",
                (workspace_sid, unique_name),
            ):
                raise EngineError(f"UniqueName {unique_name!r}: a TaskChannel already has it")
            now = to_storage(self._now())
            sid = new_sid("TC")
            tx.insert(
                "task_channels",
                {
                    "sid": sid,
                    "workspace_sid": workspace_sid,
                    "friendly_name": friendly_name,
                    "unique_name": unique_name,
                    "channel_optimized_routing": None
                    if channel_optimized_routing is None
                    else int(channel_optimized_routing),
                    "date_created": now,
                    "date_updated": now,
                },
            )
            self._record(
                tx,
                workspace_sid,
                "task-channel.created",
                "task_channel",
                sid,
                f"TaskChannel {unique_name} created",
                {"TaskChannelSid": sid, "TaskChannelUniqueName": unique_name},
            )
            return self._task_channel(tx, workspace_sid, sid)

    def update_task_channel(
        self,
        workspace_sid: str,
        sid: str,
        *,
        friendly_name: str | None = None,
        channel_optimized_routing: bool | None = None,
    ) -> dict[str, Any]:
        with self._change() as tx:
            channel = self._task_channel_by_sid_or_name(tx, workspace_sid, sid)
            values: dict[str, Any] = {}
            if friendly_name is not None:
                values["friendly_name"] = _text(friendly_name, "FriendlyName")
            if channel_optimized_routing is not None:
                values["channel_optimized_routing"] = int(channel_optimized_routing)
            if values:
                values["date_updated"] = to_storage(self._now())
                tx.update("task_channels", channel["sid"], values)
                self._record(
                    tx,
                    workspace_sid,
                    "task-channel.updated",
                    "task_channel",
                    channel["sid"],
                    f"TaskChannel {channel['unique_name']} updated",
                    {
                        "TaskChannelSid": channel["sid"],
                        "TaskChannelUniqueName": channel["unique_name"],
                    },
                )
            return self._task_channel(tx, workspace_sid, channel["sid"])

    def delete_task_channel(self, workspace_sid: str, sid: str) -> None:
        with self._change() as tx:
            channel = self._task_channel_by_sid_or_name(tx, workspace_sid, sid)
            active = tx.scalar(
                "SELECT count(*) FROM tasks WHERE task_channel_sid = ?"
                " AND assignment_status IN ('pending', 'reserved', 'assigned', 'wrapping')",
                (channel["sid"],),
            )
            if active:
                raise EngineError(
                    f"TaskChannel {channel['unique_name']} cannot be deleted: {active} active "
                    "task(s) use it"
                )
            tx.delete("task_channels", channel["sid"])
            self._record(
                tx,
                workspace_sid,
                "task-channel.deleted",
                "task_channel",
                channel["sid"],
                f"TaskChannel {channel['unique_name']} deleted",
                {"TaskChannelSid": channel["sid"], "TaskChannelUniqueName": channel["unique_name"]},
            )

    # -- workers -------------------------------------------------------------------

    def get_worker(self, workspace_sid: str, sid: str) -> dict[str, Any]:
        with self.store.read() as tx:
            return self._worker(tx, workspace_sid, sid)

    def _queue_expression(
        self, tx: Transaction, workspace_sid: str, *, sid: str | None, name: str | None
    ) -> expressions.Expression:
        if sid is not None:
            _sid(sid, "WQ", "TaskQueueSid")
            row = tx.one(
                "SELECT target_workers FROM task_queues WHERE sid = ? AND workspace_sid = ?",
                (sid, workspace_sid),
            )
            label = f"TaskQueueSid {sid}"
        else:
            row = tx.one(
                "SELECT target_workers FROM task_queues WHERE friendly_name = ?"
                " AND workspace_sid = ?",
                (name, workspace_sid),
            )
            label = f"TaskQueueName {name!r}"
        if row is None:
            raise EngineError(f"{label} is not a TaskQueue of workspace {workspace_sid}")
        return expressions.parse(row["target_workers"])

    def list_workers(
        self,
        workspace_sid: str,
        paging: Paging,
        *,
        activity_name: str | None = None,
        activity_sid: str | None = None,
        available: bool | None = None,
        friendly_name: str | None = None,
        target_workers_expression: str | None = None,
        task_queue_name: str | None = None,
        task_queue_sid: str | None = None,
        ordering: str | None = None,
    ) -> Page:
        order = _ordering(ordering, _WORKER_ORDER_COLUMNS, "k")
        matchers: list[expressions.Expression] = []
        if target_workers_expression is not None:
            matchers.append(_expression(target_workers_expression, "TargetWorkersExpression"))
        with self.store.read() as tx:
            self._workspace(tx, workspace_sid)
            if task_queue_sid is not None or task_queue_name is not None:
                matchers.append(
                    self._queue_expression(
                        tx, workspace_sid, sid=task_queue_sid, name=task_queue_name
                    )
                )
            where, params = ["k.workspace_sid = ?"], [workspace_sid]
            if activity_name is not None:
                where.append("a.friendly_name = ?")
                params.append(activity_name)
            if activity_sid is not None:
                where.append("k.activity_sid = ?")
                params.append(activity_sid)
            if available is not None:
                where.append("k.available = ?")
                params.append(int(available))
            if friendly_name is not None:
                where.append("k.friendly_name_key = ?")
                params.append(friendly_name.lower())

            def matches(row: dict[str, Any]) -> bool:
                attributes = _attributes(row["attributes"])
                return all(matcher.evaluate(attributes) for matcher in matchers)

            return _paged(
                tx,
                paging,
                select=WORKER_SELECT,
                where=where,
                params=params,
                order=order,
                predicate=matches if matchers else None,
            )

    def _check_worker_name(
        self, tx: Transaction, workspace_sid: str, friendly_name: str, sid: str | None = None
    ) -> None:
        clash = tx.scalar(
            "SELECT sid FROM workers WHERE workspace_sid = ? AND friendly_name_key = ?"
            " AND sid IS NOT ?",
            (workspace_sid, friendly_name.lower(), sid),
        )
        if clash:
            raise EngineError(
                f"FriendlyName {friendly_name!r}: a Worker with that name already exists "
                f"({clash}); worker names are unique in a workspace, ignoring case"
            )

    def create_worker(
        self,
        workspace_sid: str,
        friendly_name: str,
        *,
        activity_sid: str | None = None,
        attributes: str | None = None,
    ) -> dict[str, Any]:
        _text(friendly_name, "FriendlyName")
        attributes = _json_object("{}" if attributes is None else attributes, "Attributes")
        with self._change() as tx:
            workspace = self._workspace(tx, workspace_sid)
            self._check_worker_name(tx, workspace_sid, friendly_name)
            if activity_sid is None:
                activity_sid = workspace["default_activity_sid"]
                if activity_sid is None:
                    raise EngineError(
                        "ActivitySid is required: the workspace has no default activity"
                    )
            activity = self._referenced_activity(tx, workspace_sid, activity_sid, "ActivitySid")
            now = to_storage(self._now())
            sid = new_sid("WK")
            tx.insert(
                "workers",
                {
                    "sid": sid,
                    "workspace_sid": workspace_sid,
                    "friendly_name": friendly_name,
                    "friendly_name_key": friendly_name.lower(),
                    "attributes": attributes,
                    "activity_sid": activity["sid"],
                    "available": activity["available"],
                    "date_status_changed": now,
                    "date_created": now,
                    "date_updated": now,
                },
            )
            self.router.sync_worker(tx, sid)
            self._record(
                tx,
                workspace_sid,
                "worker.created",
                "worker",
                sid,
                f"Worker {friendly_name} created",
                self._worker_fields(tx, sid),
            )
            self._note(tx, "worker.created", workspace_sid, sid)
            return self._worker(tx, workspace_sid, sid)

    def _set_worker_activity(
        self,
        tx: Transaction,
        worker: dict[str, Any],
        activity: dict[str, Any],
        actor: Actor | None = None,
    ) -> None:
        """Move a worker to an activity, stamping date_status_changed and recording it."""
        if worker["activity_sid"] == activity["sid"]:
            return
        now = self._now()
        tx.update(
            "workers",
            worker["sid"],
            {
                "activity_sid": activity["sid"],
                "available": activity["available"],
                "date_status_changed": to_storage(now),
                "date_updated": to_storage(now),
            },
        )
        Router.worker_moved(tx, worker["sid"], activity["available"], to_storage(now))
        spent = now - from_storage(worker["date_status_changed"])
        # The worker row as it now stands, without reading it back.
        fields: dict[str, Any] = {
            "WorkerSid": worker["sid"],
            "WorkerName": worker["friendly_name"],
            "WorkerAttributes": worker["attributes"],
            "WorkerActivitySid": activity["sid"],
            "WorkerActivityName": activity["friendly_name"],
            "WorkerAvailable": "true" if activity["available"] else "false",
        }
        fields.update(
            {
                "WorkerPreviousActivitySid": worker["activity_sid"],
                "WorkerPreviousActivityName": worker["activity_name"],
                "WorkerTimeInPreviousActivity": str(int(spent.total_seconds())),
                "WorkerTimeInPreviousActivityMs": str(int(spent.total_seconds() * 1000)),
            }
        )
        self._record(
            tx,
            worker["workspace_sid"],
            "worker.activity.update",
            "worker",
            worker["sid"],
            f"Worker {worker['friendly_name']} updated to {activity['friendly_name']} Activity",
            fields,
            actor,
        )
        self._note(tx, "worker.activity.update", worker["workspace_sid"], worker["sid"])

    def update_worker(
        self,
        workspace_sid: str,
        sid: str,
        *,
        activity_sid: str | None = None,
        attributes: str | None = None,
        friendly_name: str | None = None,
        reject_pending_reservations: bool = False,
    ) -> dict[str, Any]:
        if attributes is not None:
            _json_object(attributes, "Attributes")
        if friendly_name is not None:
            _text(friendly_name, "FriendlyName")
        with self._change() as tx:
            worker = self._worker(tx, workspace_sid, sid)
            activity = None
            if activity_sid is not None:
                activity = self._referenced_activity(tx, workspace_sid, activity_sid, "ActivitySid")
            if reject_pending_reservations:
                if activity is None or activity["available"]:
                    raise EngineError(
                        "RejectPendingReservations is only valid together with an ActivitySid "
                        "whose activity is unavailable"
                    )
                for reservation in tx.all(
                    RESERVATION_SELECT
                    + " WHERE r.worker_sid = ? AND r.reservation_status = 'pending'",
                    (sid,),
                ):
                    self._reject(tx, reservation, activity=None)
                worker = self._worker(tx, workspace_sid, sid)
            if friendly_name is not None and friendly_name != worker["friendly_name"]:
                self._check_worker_name(tx, workspace_sid, friendly_name, sid)
                tx.update(
                    "workers",
                    sid,
                    {
                        "friendly_name": friendly_name,
                        "friendly_name_key": friendly_name.lower(),
                        "date_updated": to_storage(self._now()),
                    },
                )
            if attributes is not None and attributes != worker["attributes"]:
                tx.update(
                    "workers",
                    sid,
                    {"attributes": attributes, "date_updated": to_storage(self._now())},
                )
                self.router.sync_worker(tx, sid)
                self._record(
                    tx,
                    workspace_sid,
                    "worker.attributes.update",
                    "worker",
                    sid,
                    f"Worker {worker['friendly_name']} attributes updated",
                    self._worker_fields(tx, sid),
                )
                self._note(tx, "worker.attributes.update", workspace_sid, sid)
            if activity is not None:
                self._set_worker_activity(tx, self._worker(tx, workspace_sid, sid), activity)
            return self._worker(tx, workspace_sid, sid)

    def delete_worker(self, workspace_sid: str, sid: str) -> None:
        with self._change() as tx:
            worker = self._worker(tx, workspace_sid, sid)
            busy = tx.scalar(
                "SELECT count(*) FROM reservations WHERE worker_sid = ?"
                " AND reservation_status IN ('pending', 'accepted', 'wrapping')",
                (sid,),
            )
            if busy:
                raise EngineError(
                    f"Worker {sid} ({worker['friendly_name']}) cannot be deleted while it holds "
                    f"{busy} pending or accepted reservation(s)"
                )
            fields = self._worker_fields(tx, sid)
            tx.delete("workers", sid)
            self._record(
                tx,
                workspace_sid,
                "worker.deleted",
                "worker",
                sid,
                f"Worker {worker['friendly_name']} deleted",
                fields,
            )

    # -- task queues ---------------------------------------------------------------

    def get_task_queue(self, workspace_sid: str, sid: str) -> dict[str, Any]:
        with self.store.read() as tx:
            return self._task_queue(tx, workspace_sid, sid)

    def list_task_queues(
        self,
        workspace_sid: str,
        paging: Paging,
        *,
        friendly_name: str | None = None,
        evaluate_worker_attributes: str | None = None,
        worker_sid: str | None = None,
        ordering: str | None = None,
    ) -> Page:
        order = _ordering(ordering, _TASK_QUEUE_ORDER_COLUMNS, "q")
        worker_attributes: dict[str, Any] | None = None
        if evaluate_worker_attributes is not None:
            worker_attributes = _attributes(
                _json_object(evaluate_worker_attributes, "EvaluateWorkerAttributes")
            )
        with self.store.read() as tx:
            self._workspace(tx, workspace_sid)
            if worker_sid is not None:
                _sid(worker_sid, "WK", "WorkerSid")
                worker = tx.one(
                    "SELECT attributes FROM workers WHERE sid = ? AND workspace_sid = ?",
                    (worker_sid, workspace_sid),
                )
                if worker is None:
                    raise EngineError(
                        f"WorkerSid {worker_sid} is not a Worker of workspace {workspace_sid}"
                    )
                worker_attributes = _attributes(worker["attributes"])
            where, params = ["q.workspace_sid = ?"], [workspace_sid]
            if friendly_name is not None:
                where.append("q.friendly_name = ?")
                params.append(friendly_name)

            def matches(row: dict[str, Any]) -> bool:
                return expressions.parse(row["target_workers"]).evaluate(worker_attributes)

            return _paged(
                tx,
                paging,
                select=TASK_QUEUE_SELECT,
                where=where,
                params=params,
                order=order,
                predicate=matches if worker_attributes is not None else None,
            )

    def _queue_values(
        self, tx: Transaction, workspace_sid: str, changes: Mapping[str, Any]
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if changes.get("friendly_name") is not None:
            values["friendly_name"] = _text(changes["friendly_name"], "FriendlyName")
        if changes.get("target_workers") is not None:
            _expression(changes["target_workers"], "TargetWorkers")
            values["target_workers"] = changes["target_workers"]
        if changes.get("max_reserved_workers") is not None:
            values["max_reserved_workers"] = _integer(
                changes["max_reserved_workers"], "MaxReservedWorkers", 1, MAX_RESERVED_WORKERS
            )
        if changes.get("task_order") is not None:
            if changes["task_order"] not in QUEUE_ORDERS:
                raise EngineError(f"TaskOrder must be FIFO or LIFO, got {changes['task_order']!r}")
            values["task_order"] = changes["task_order"]
        for key, parameter in (
            ("reservation_activity_sid", "ReservationActivitySid"),
            ("assignment_activity_sid", "AssignmentActivitySid"),
        ):
            if changes.get(key) is not None:
                values[key] = self._referenced_activity(tx, workspace_sid, changes[key], parameter)[
                    "sid"
                ]
        return values

    def _check_queue_name(
        self, tx: Transaction, workspace_sid: str, friendly_name: str, sid: str | None = None
    ) -> None:
        clash = tx.scalar(
            "SELECT sid FROM task_queues WHERE workspace_sid = ? AND friendly_name = ?"
            " AND sid IS NOT ?",
            (workspace_sid, friendly_name, sid),
        )
        if clash:
            raise EngineError(
                f"FriendlyName {friendly_name!r}: a TaskQueue with that name already exists "
                f"({clash})"
            )

    def create_task_queue(
        self,
        workspace_sid: str,
        friendly_name: str,
        *,
        target_workers: str | None = None,
        max_reserved_workers: int | None = None,
        task_order: str | None = None,
        reservation_activity_sid: str | None = None,
        assignment_activity_sid: str | None = None,
    ) -> dict[str, Any]:
        _text(friendly_name, "FriendlyName")
        with self._change() as tx:
            self._workspace(tx, workspace_sid)
            values = self._queue_values(
                tx,
                workspace_sid,
                {
                    "friendly_name": friendly_name,
                    "target_workers": "1==1" if target_workers is None else target_workers,
                    "max_reserved_workers": 1
                    if max_reserved_workers is None
                    else max_reserved_workers,
                    "task_order": task_order or "FIFO",
                    "reservation_activity_sid": reservation_activity_sid,
                    "assignment_activity_sid": assignment_activity_sid,
                },
            )
            self._check_queue_name(tx, workspace_sid, friendly_name)
            now = to_storage(self._now())
            sid = new_sid("WQ")
            tx.insert(
                "task_queues",
                {
                    "sid": sid,
                    "workspace_sid": workspace_sid,
                    **values,
                    "date_created": now,
                    "date_updated": now,
                },
            )
            self.router.sync_queue(tx, sid)
            self._record(
                tx,
                workspace_sid,
                "task-queue.created",
                "task_queue",
                sid,
                f"TaskQueue {friendly_name} created",
                {
                    "TaskQueueSid": sid,
                    "TaskQueueName": friendly_name,
                    "TaskQueueTargetExpression": values["target_workers"],
                },
            )
            return self._task_queue(tx, workspace_sid, sid)

    def update_task_queue(self, workspace_sid: str, sid: str, **changes: Any) -> dict[str, Any]:
        """Accepts friendly_name, target_workers, max_reserved_workers, task_order,
        reservation_activity_sid, assignment_activity_sid."""
        allowed = {
            "friendly_name",
            "target_workers",
            "max_reserved_workers",
            "task_order",
            "reservation_activity_sid",
            "assignment_activity_sid",
        }
        unknown = set(changes) - allowed
        if unknown:
            raise TypeError(f"update_task_queue() got unexpected fields {sorted(unknown)}")
        with self._change() as tx:
            queue = self._task_queue(tx, workspace_sid, sid)
            values = self._queue_values(tx, workspace_sid, changes)
            if "friendly_name" in values:
                self._check_queue_name(tx, workspace_sid, values["friendly_name"], sid)
            if values:
                values["date_updated"] = to_storage(self._now())
                tx.update("task_queues", sid, values)
                if values.get("target_workers", queue["target_workers"]) != queue["target_workers"]:
                    self.router.sync_queue(tx, sid)
                if values.get("target_workers", queue["target_workers"]) != queue["target_workers"]:
                    self._record(
                        tx,
                        workspace_sid,
                        "task-queue.expression.updated",
                        "task_queue",
                        sid,
                        f"TaskQueue {queue['friendly_name']} target workers expression updated",
                        {
                            "TaskQueueSid": sid,
                            "TaskQueueName": values.get("friendly_name", queue["friendly_name"]),
                            "TaskQueueTargetExpression": values["target_workers"],
                        },
                    )
                self._note(tx, "task-queue.updated", workspace_sid, sid)
            return self._task_queue(tx, workspace_sid, sid)

    def delete_task_queue(self, workspace_sid: str, sid: str) -> None:
        with self._change() as tx:
            queue = self._task_queue(tx, workspace_sid, sid)
            for workflow in tx.all(
                "SELECT sid, friendly_name, configuration FROM workflows WHERE workspace_sid = ?",
                (workspace_sid,),
            ):
                if sid in _configuration_queues(workflow["configuration"]):
                    raise EngineError(
                        f"TaskQueue {sid} ({queue['friendly_name']}) cannot be deleted: "
                        f"Workflow {workflow['sid']} ({workflow['friendly_name']}) routes to it"
                    )
            active = tx.scalar(
                "SELECT count(*) FROM tasks WHERE task_queue_sid = ?"
                " AND assignment_status IN ('pending', 'reserved', 'assigned', 'wrapping')",
                (sid,),
            )
            if active:
                raise EngineError(
                    f"TaskQueue {sid} ({queue['friendly_name']}) cannot be deleted: it holds "
                    f"{active} active task(s)"
                )
            tx.delete("task_queues", sid)
            self._record(
                tx,
                workspace_sid,
                "task-queue.deleted",
                "task_queue",
                sid,
                f"TaskQueue {queue['friendly_name']} deleted",
                {"TaskQueueSid": sid, "TaskQueueName": queue["friendly_name"]},
            )

    # -- workflows -----------------------------------------------------------------

    def get_workflow(self, workspace_sid: str, sid: str) -> dict[str, Any]:
        with self.store.read() as tx:
            return self._workflow(tx, workspace_sid, sid)

    def list_workflows(
        self, workspace_sid: str, paging: Paging, *, friendly_name: str | None = None
    ) -> Page:
        with self.store.read() as tx:
            self._workspace(tx, workspace_sid)
            where, params = ["f.workspace_sid = ?"], [workspace_sid]
            if friendly_name is not None:
                where.append("f.friendly_name = ?")
                params.append(friendly_name)
            return _paged(
                tx,
                paging,
                select=WORKFLOW_SELECT,
                where=where,
                params=params,
                order=[Order("f.seq", "seq")],
            )

    def _validate_configuration(self, tx: Transaction, workspace_sid: str, text: object) -> str:
        """Configuration must be TaskRouter's JSON document, its queues ours, its
        expressions parseable (targets naming only task., worker., taskrouter., workers.)."""
        if not isinstance(text, str) or not text.strip():
            raise EngineError("Configuration must be a JSON document")
        if len(text) > MAX_CONFIGURATION:
            raise EngineError(f"Configuration must be at most {MAX_CONFIGURATION} characters")
        try:
            document = jsonlimits.loads(text)
        except jsonlimits.TooDeep as error:
            raise EngineError(f"Configuration {error}") from None
        except ValueError as error:
            raise EngineError(f"Configuration is not valid JSON: {error}") from None
        if not isinstance(document, dict) or not isinstance(document.get("task_routing"), dict):
            raise EngineError('Configuration must be a JSON object with a "task_routing" object')
        routing = document["task_routing"]
        filters = routing.get("filters", [])
        if not isinstance(filters, list):
            raise EngineError("Configuration task_routing.filters must be an array")

        def queue(value: object, where: str) -> None:
            if not is_sid(value, "WQ"):
                raise EngineError(f"Configuration {where}.queue must be a TaskQueue SID")
            if not tx.scalar(
                "SELECT 1 FROM task_queues WHERE sid = ? AND workspace_sid = ?",
                (value, workspace_sid),
            ):
                raise EngineError(
                    f"Configuration {where}.queue {value} is not a TaskQueue of workspace "
                    f"{workspace_sid}"
                )

        def expression(value: object, where: str) -> expressions.Expression:
            if not isinstance(value, str) or not value.strip():
                raise EngineError(f"Configuration {where} must be a non-empty expression")
            try:
                return expressions.parse(value)
            except expressions.ExpressionError as error:
                raise EngineError(f"Configuration {where} is not valid: {error}") from None

        for index, item in enumerate(filters):
            where = f"task_routing.filters[{index}]"
            if not isinstance(item, dict):
                raise EngineError(f"Configuration {where} must be an object")
            name = item.get("filter_friendly_name", item.get("friendly_name"))
            if name is not None and not isinstance(name, str):
                raise EngineError(f"Configuration {where}.filter_friendly_name must be a string")
            expression(item.get("expression"), f"{where}.expression")
            targets = item.get("targets")
            if not isinstance(targets, list) or not targets:
                raise EngineError(f"Configuration {where}.targets must be a non-empty array")
            for position, target in enumerate(targets):
                here = f"{where}.targets[{position}]"
                if not isinstance(target, dict):
                    raise EngineError(f"Configuration {here} must be an object")
                queue(target.get("queue"), here)
                if "expression" in target:
                    parsed = expression(target["expression"], f"{here}.expression")
                    stray = sorted(parsed.roots - TARGET_EXPRESSION_ROOTS)
                    if stray:
                        raise EngineError(
                            f"Configuration {here}.expression names {', '.join(stray)}: a "
                            "target expression must prefix every name with task. or worker."
                        )
                if "skip_if" in target:
                    expression(target["skip_if"], f"{here}.skip_if")
                for key, low, high in (
                    ("priority", 0, MAX_PRIORITY),
                    ("timeout", 0, MAX_TASK_TIMEOUT),
                ):
                    if key in target:
                        value = target[key]
                        if isinstance(value, bool) or not isinstance(value, int):
                            raise EngineError(f"Configuration {here}.{key} must be an integer")
                        if not low <= value <= high:
                            raise EngineError(
                                f"Configuration {here}.{key} must be between {low} and {high}"
                            )
                if "order_by" in target:
                    if not isinstance(target["order_by"], str):
                        raise EngineError(f"Configuration {here}.order_by must be a string")
                    try:
                        parse_order_by(target["order_by"])
                    except ValueError as error:
                        raise EngineError(f"Configuration {here}.{error}") from None
        default = routing.get("default_filter")
        if default is not None:
            if not isinstance(default, dict):
                raise EngineError("Configuration task_routing.default_filter must be an object")
            queue(default.get("queue"), "task_routing.default_filter")
        return text

    def create_workflow(
        self,
        workspace_sid: str,
        friendly_name: str,
        configuration: str,
        *,
        assignment_callback_url: str | None = None,
        fallback_assignment_callback_url: str | None = None,
        task_reservation_timeout: int | None = None,
    ) -> dict[str, Any]:
        _text(friendly_name, "FriendlyName")
        assignment_callback_url = _url(assignment_callback_url, "AssignmentCallbackUrl")
        fallback_assignment_callback_url = _url(
            fallback_assignment_callback_url, "FallbackAssignmentCallbackUrl"
        )
        timeout = _integer(
            DEFAULT_RESERVATION_TIMEOUT
            if task_reservation_timeout is None
            else task_reservation_timeout,
            "TaskReservationTimeout",
            1,
            MAX_RESERVATION_TIMEOUT,
        )
        with self._change() as tx:
            self._workspace(tx, workspace_sid)
            self._validate_configuration(tx, workspace_sid, configuration)
            now = to_storage(self._now())
            sid = new_sid("WW")
            tx.insert(
                "workflows",
                {
                    "sid": sid,
                    "workspace_sid": workspace_sid,
                    "friendly_name": friendly_name,
                    "configuration": configuration,
                    "assignment_callback_url": assignment_callback_url,
                    "fallback_assignment_callback_url": fallback_assignment_callback_url,
                    "task_reservation_timeout": timeout,
                    "document_content_type": "application/json",
                    "date_created": now,
                    "date_updated": now,
                },
            )
            self._record(
                tx,
                workspace_sid,
                "workflow.created",
                "workflow",
                sid,
                f"Workflow {friendly_name} created",
                {"WorkflowSid": sid, "WorkflowName": friendly_name},
            )
            return self._workflow(tx, workspace_sid, sid)

    def update_workflow(
        self,
        workspace_sid: str,
        sid: str,
        *,
        friendly_name: str | None = None,
        configuration: str | None = None,
        assignment_callback_url: str | None = None,
        fallback_assignment_callback_url: str | None = None,
        task_reservation_timeout: int | None = None,
        re_evaluate_tasks: bool = False,
    ) -> dict[str, Any]:
        """An empty string clears a callback URL; re_evaluate_tasks re-places pending tasks."""
        with self._change() as tx:
            workflow = self._workflow(tx, workspace_sid, sid)
            values: dict[str, Any] = {}
            if friendly_name is not None:
                values["friendly_name"] = _text(friendly_name, "FriendlyName")
            if configuration is not None:
                values["configuration"] = self._validate_configuration(
                    tx, workspace_sid, configuration
                )
            if assignment_callback_url is not None:
                values["assignment_callback_url"] = _url(
                    assignment_callback_url, "AssignmentCallbackUrl"
                )
            if fallback_assignment_callback_url is not None:
                values["fallback_assignment_callback_url"] = _url(
                    fallback_assignment_callback_url, "FallbackAssignmentCallbackUrl"
                )
            if task_reservation_timeout is not None:
                values["task_reservation_timeout"] = _integer(
                    task_reservation_timeout, "TaskReservationTimeout", 1, MAX_RESERVATION_TIMEOUT
                )
            if values:
                values["date_updated"] = to_storage(self._now())
                tx.update("workflows", sid, values)
                self._record(
                    tx,
                    workspace_sid,
                    "workflow.updated",
                    "workflow",
                    sid,
                    f"Workflow {values.get('friendly_name', workflow['friendly_name'])} updated",
                    {
                        "WorkflowSid": sid,
                        "WorkflowName": values.get("friendly_name", workflow["friendly_name"]),
                    },
                )
                self._note(tx, "workflow.updated", workspace_sid, sid)
            if re_evaluate_tasks:
                for task in tx.all(
                    "SELECT sid FROM tasks WHERE workflow_sid = ? AND assignment_status = 'pending'"
                    " ORDER BY seq",
                    (sid,),
                ):
                    self._place_task(tx, workspace_sid, task["sid"])
                    self._note(tx, "task.placed", workspace_sid, task["sid"])
            return self._workflow(tx, workspace_sid, sid)

    def delete_workflow(self, workspace_sid: str, sid: str) -> None:
        with self._change() as tx:
            workflow = self._workflow(tx, workspace_sid, sid)
            active = tx.scalar(
                "SELECT count(*) FROM tasks WHERE workflow_sid = ?"
                " AND assignment_status IN ('pending', 'reserved', 'assigned', 'wrapping')",
                (sid,),
            )
            if active:
                raise EngineError(
                    f"Workflow {sid} ({workflow['friendly_name']}) cannot be deleted: "
                    f"{active} active task(s) use it"
                )
            tx.delete("workflows", sid)
            self._record(
                tx,
                workspace_sid,
                "workflow.deleted",
                "workflow",
                sid,
                f"Workflow {workflow['friendly_name']} deleted",
                {"WorkflowSid": sid, "WorkflowName": workflow["friendly_name"]},
            )

    # -- tasks ---------------------------------------------------------------------

    def get_task(self, workspace_sid: str, sid: str) -> dict[str, Any]:
        with self.store.read() as tx:
            return self._task(tx, workspace_sid, sid)

    def list_tasks(
        self,
        workspace_sid: str,
        paging: Paging,
        *,
        priority: int | None = None,
        assignment_status: list[str] | None = None,
        workflow_sid: str | None = None,
        workflow_name: str | None = None,
        task_queue_sid: str | None = None,
        task_queue_name: str | None = None,
        evaluate_task_attributes: str | None = None,
        routing_target: str | None = None,
        ordering: str | None = None,
        has_addons: bool | None = None,
    ) -> Page:
        order = _ordering(ordering, _TASK_ORDER_COLUMNS, "t")
        matcher = None
        if evaluate_task_attributes is not None:
            matcher = _expression(evaluate_task_attributes, "EvaluateTaskAttributes")
        where, params = ["t.workspace_sid = ?"], [workspace_sid]
        if assignment_status:
            bad = sorted(set(assignment_status) - set(TASK_STATUSES))
            if bad:
                raise EngineError(
                    f"AssignmentStatus {', '.join(bad)} is not valid: use one or more of "
                    + ", ".join(TASK_STATUSES)
                )
            where.append(f"t.assignment_status IN ({', '.join('?' for _ in assignment_status)})")
            params.extend(assignment_status)
        for value, clause in (
            (priority, "t.priority = ?"),
            (workflow_sid, "t.workflow_sid = ?"),
            (workflow_name, "f.friendly_name = ?"),
            (task_queue_sid, "t.task_queue_sid = ?"),
            (task_queue_name, "q.friendly_name = ?"),
            (routing_target, "t.routing_target = ?"),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        if has_addons is not None:
            where.append(
                "(t.addons IS NOT NULL AND t.addons NOT IN ('', '{}'))"
                if has_addons
                else "(t.addons IS NULL OR t.addons IN ('', '{}'))"
            )
        select = TASK_SELECT.replace(
            "SELECT t.*,",
            "SELECT t.*, COALESCE(t.virtual_start_time, t.date_created) AS virtual_start,",
        )
        with self.store.read() as tx:
            self._workspace(tx, workspace_sid)
            result = _paged(
                tx,
                paging,
                select=select,
                where=where,
                params=params,
                order=order,
                predicate=(lambda row: matcher.evaluate(_attributes(row["attributes"])))
                if matcher
                else None,
            )
            for row in result.rows:
                self._with_age(row)
            return result

    def _resolve_channel(self, tx: Transaction, workspace_sid: str, value: str | None) -> str:
        name = value or "default"
        if is_sid(name, "TC"):
            row = tx.one(
                "SELECT sid FROM task_channels WHERE sid = ? AND workspace_sid = ?",
                (name, workspace_sid),
            )
        else:
            row = tx.one(
                "SELECT sid FROM task_channels WHERE unique_name = ? AND workspace_sid = ?",
                (name, workspace_sid),
            )
        if row is None:
            raise EngineError(
                f"TaskChannel {name!r} is not a TaskChannel (SID or unique name) of workspace "
                f"{workspace_sid}"
            )
        return row["sid"]

    def create_task(
        self,
        workspace_sid: str,
        *,
        attributes: str | None = None,
        workflow_sid: str | None = None,
        priority: int | None = None,
        timeout: int | None = None,
        task_channel: str | None = None,
        virtual_start_time: datetime | None = None,
        routing_target: str | None = None,
        ignore_capacity: bool | None = None,
        task_queue_sid: str | None = None,
    ) -> dict[str, Any]:
        """A task in the queue its workflow's first matching filter names (or default_filter).

        With task_queue_sid and no workflow the task goes straight into that queue.
        """
        attributes = _json_object("{}" if attributes is None else attributes, "Attributes")
        if priority is not None:
            _integer(priority, "Priority", 0, MAX_PRIORITY)
        timeout = _integer(
            DEFAULT_TASK_TIMEOUT if timeout is None else timeout, "Timeout", 1, MAX_TASK_TIMEOUT
        )
        if workflow_sid is not None:
            _sid(workflow_sid, "WW", "WorkflowSid")
        if task_queue_sid is not None:
            _sid(task_queue_sid, "WQ", "TaskQueueSid")
        if routing_target is not None:
            _sid(routing_target, "WK", "RoutingTarget")
        with self._change() as tx:
            self._workspace(tx, workspace_sid)
            if workflow_sid is None and task_queue_sid is None:
                workflows = tx.all(
                    "SELECT sid FROM workflows WHERE workspace_sid = ? LIMIT 2", (workspace_sid,)
                )
                if len(workflows) != 1:
                    raise EngineError(
                        "WorkflowSid is required: the workspace has "
                        + ("no workflow" if not workflows else "more than one workflow")
                    )
                workflow_sid = workflows[0]["sid"]
            if workflow_sid is not None and not tx.scalar(
                "SELECT 1 FROM workflows WHERE sid = ? AND workspace_sid = ?",
                (workflow_sid, workspace_sid),
            ):
                raise EngineError(
                    f"WorkflowSid {workflow_sid} is not a Workflow of workspace {workspace_sid}"
                )
            if task_queue_sid is not None and not tx.scalar(
                "SELECT 1 FROM task_queues WHERE sid = ? AND workspace_sid = ?",
                (task_queue_sid, workspace_sid),
            ):
                raise EngineError(
                    f"TaskQueueSid {task_queue_sid} is not a TaskQueue of workspace {workspace_sid}"
                )
            if routing_target is not None and not tx.scalar(
                "SELECT 1 FROM workers WHERE sid = ? AND workspace_sid = ?",
                (routing_target, workspace_sid),
            ):
                raise EngineError(
                    f"RoutingTarget {routing_target} is not a Worker of workspace {workspace_sid}"
                )
            channel_sid = self._resolve_channel(tx, workspace_sid, task_channel)
            moment = self._now()
            now = to_storage(moment)
            sid = new_sid("WT")
            tx.insert(
                "tasks",
                {
                    "sid": sid,
                    "workspace_sid": workspace_sid,
                    "attributes": attributes,
                    "assignment_status": "pending",
                    "priority": priority or 0,
                    "timeout": timeout,
                    "timeout_at": to_storage(moment + timedelta(seconds=timeout)),
                    "workflow_sid": workflow_sid,
                    "task_channel_sid": channel_sid,
                    "virtual_start_time": to_storage(virtual_start_time)
                    if virtual_start_time
                    else None,
                    "routing_target": routing_target,
                    "ignore_capacity": None if ignore_capacity is None else int(ignore_capacity),
                    "addons": "{}",
                    "date_created": now,
                    "date_updated": now,
                },
            )
            self._record(
                tx,
                workspace_sid,
                "task.created",
                "task",
                sid,
                f"Task {sid} created",
                self._task_fields(tx, sid),
            )
            self._deadline_set(tx, moment + timedelta(seconds=timeout))
            if task_queue_sid is not None and workflow_sid is None:
                self._enter_queue(tx, workspace_sid, sid, task_queue_sid, None, None)
            else:
                self._place_task(tx, workspace_sid, sid)
            self._note(tx, "task.created", workspace_sid, sid)
            return self._task(tx, workspace_sid, sid)

    def _place_task(self, tx: Transaction, workspace_sid: str, task_sid: str) -> None:
        """Run a pending task through its workflow (filters, targets, default_filter)."""
        self.router.place(tx, workspace_sid, task_sid)

    def _enter_queue(
        self,
        tx: Transaction,
        workspace_sid: str,
        task_sid: str,
        task_queue_sid: str,
        filter_name: str | None,
        target_index: int | None,
    ) -> None:
        task = self._task_row(tx, task_sid)
        now = to_storage(self._now())
        values = {
            "task_queue_sid": task_queue_sid,
            "workflow_filter_name": filter_name,
            "target_index": target_index,
            "target_entered_date": now,
        }
        if task["task_queue_sid"] == task_queue_sid:
            tx.update("tasks", task_sid, values)
            return
        values["task_queue_entered_date"] = now
        tx.update("tasks", task_sid, values)
        fields = self._task_fields(tx, task_sid)
        queue = tx.one("SELECT target_workers FROM task_queues WHERE sid = ?", (task_queue_sid,))
        fields["TaskQueueTargetExpression"] = queue["target_workers"]
        if task["task_queue_sid"] is not None:
            fields["TaskQueuePreviousSid"] = task["task_queue_sid"]
            self._record(
                tx,
                workspace_sid,
                "task-queue.moved",
                "task",
                task_sid,
                f"Task {task_sid} moved to TaskQueue {fields['TaskQueueName']}",
                fields,
            )
        self._record(
            tx,
            workspace_sid,
            "task-queue.entered",
            "task",
            task_sid,
            f"Task {task_sid} entered TaskQueue {fields['TaskQueueName']}",
            fields,
        )

    def update_task(
        self,
        workspace_sid: str,
        sid: str,
        *,
        assignment_status: str | None = None,
        reason: str | None = None,
        attributes: str | None = None,
        priority: int | None = None,
        task_channel: str | None = None,
        virtual_start_time: datetime | None = None,
    ) -> dict[str, Any]:
        if attributes is not None:
            _json_object(attributes, "Attributes")
        if priority is not None:
            _integer(priority, "Priority", 0, MAX_PRIORITY)
        if assignment_status is not None and assignment_status not in TASK_STATUSES:
            raise EngineError(
                f"AssignmentStatus {assignment_status!r} is not valid: use canceled, wrapping "
                "or completed"
            )
        if reason is not None and len(reason) > 1024:
            raise EngineError("Reason must be at most 1024 characters long")
        with self._change() as tx:
            task = self._task(tx, workspace_sid, sid)
            status = task["assignment_status"]
            if assignment_status is not None:
                self._check_transition(task, assignment_status)
            elif status in FINAL_TASK_STATUSES and (
                attributes is not None
                or priority is not None
                or task_channel is not None
                or virtual_start_time is not None
            ):
                raise EngineError(f"Task {sid} is {status} and can no longer be updated")
            values: dict[str, Any] = {}
            if attributes is not None and attributes != task["attributes"]:
                values["attributes"] = attributes
            if priority is not None and priority != task["priority"]:
                values["priority"] = priority
            if task_channel is not None:
                channel_sid = self._resolve_channel(tx, workspace_sid, task_channel)
                if channel_sid != task["task_channel_sid"]:
                    values["task_channel_sid"] = channel_sid
            if virtual_start_time is not None:
                values["virtual_start_time"] = to_storage(virtual_start_time)
            if reason is not None and assignment_status is None:
                values["reason"] = reason
            if values:
                values["date_updated"] = to_storage(self._now())
                tx.update("tasks", sid, values)
                self._record(
                    tx,
                    workspace_sid,
                    "task.updated",
                    "task",
                    sid,
                    f"Task {sid} updated",
                    self._task_fields(tx, sid),
                )
                self._note(tx, "task.updated", workspace_sid, sid)
                if "attributes" in values and status == "pending":
                    self._place_task(tx, workspace_sid, sid)
            if assignment_status is not None:
                if assignment_status == "wrapping":
                    self._wrap_task(tx, workspace_sid, sid)
                else:
                    self._finish_task(tx, workspace_sid, sid, assignment_status, reason)
            return self._task(tx, workspace_sid, sid)

    @staticmethod
    def _check_transition(task: dict[str, Any], target: str) -> None:
        sid, status = task["sid"], task["assignment_status"]
        if target == "canceled":
            if status not in ("pending", "reserved"):
                raise EngineError(f"Cannot cancel task {sid} because it is not pending or reserved")
        elif target == "completed":
            if status not in ("assigned", "wrapping"):
                raise EngineError(
                    f"Cannot complete task {sid} because it is not assigned or wrapping"
                )
        elif target == "wrapping":
            if status != "assigned":
                raise EngineError(f"Cannot wrap up task {sid} because it is not assigned")
        else:
            raise EngineError(
                f"AssignmentStatus {target} cannot be set over the API: TaskRouter moves a task "
                "to pending, reserved and assigned itself; use canceled, wrapping or completed"
            )

    def _wrap_task(self, tx: Transaction, workspace_sid: str, task_sid: str) -> None:
        now = to_storage(self._now())
        tx.update("tasks", task_sid, {"assignment_status": "wrapping", "date_updated": now})
        for reservation in tx.all(
            RESERVATION_SELECT + " WHERE r.task_sid = ? AND r.reservation_status = 'accepted'",
            (task_sid,),
        ):
            tx.update(
                "reservations",
                reservation["sid"],
                {"reservation_status": "wrapping", "date_updated": now},
            )
            self._record_reservation(tx, reservation["sid"], "reservation.wrapup", "wrapping up")
            self._note(tx, "reservation.wrapup", workspace_sid, reservation["sid"])
        self._record(
            tx,
            workspace_sid,
            "task.wrapup",
            "task",
            task_sid,
            f"Task {task_sid} wrapping up",
            self._task_fields(tx, task_sid),
        )

    def _finish_task(
        self,
        tx: Transaction,
        workspace_sid: str,
        task_sid: str,
        status: str,
        reason: str | None,
        actor: Actor | None = None,
    ) -> None:
        """Cancel or complete a task, ending its reservations the way TaskRouter does."""
        now = to_storage(self._now())
        tx.update(
            "tasks",
            task_sid,
            {"assignment_status": status, "reason": reason, "date_updated": now},
        )
        for reservation in tx.all(
            RESERVATION_SELECT
            + " WHERE r.task_sid = ? AND r.reservation_status IN ('pending', 'accepted',"
            " 'wrapping')",
            (task_sid,),
        ):
            if reservation["reservation_status"] == "pending":
                tx.update(
                    "reservations",
                    reservation["sid"],
                    {"reservation_status": "canceled", "date_updated": now},
                )
                self._record_reservation(
                    tx, reservation["sid"], "reservation.canceled", "canceled", actor
                )
                self._release_worker(tx, reservation, actor)
                self._note(tx, "reservation.canceled", workspace_sid, reservation["sid"])
            else:
                tx.update(
                    "reservations",
                    reservation["sid"],
                    {"reservation_status": "completed", "date_updated": now},
                )
                self._record_reservation(
                    tx, reservation["sid"], "reservation.completed", "completed", actor
                )
                self._note(tx, "reservation.completed", workspace_sid, reservation["sid"])
        fields = self._task_fields(tx, task_sid)
        if status == "canceled":
            fields["TaskCanceledReason"] = reason
            description = f"Task {task_sid} canceled" + (f": {reason}" if reason else "")
        else:
            fields["TaskCompletedReason"] = reason
            description = f"Task {task_sid} completed" + (f": {reason}" if reason else "")
        self._record(
            tx, workspace_sid, f"task.{status}", "task", task_sid, description, fields, actor
        )
        self._note(tx, f"task.{status}", workspace_sid, task_sid)

    def delete_task(self, workspace_sid: str, sid: str) -> None:
        with self._change() as tx:
            task = self._task(tx, workspace_sid, sid)
            for reservation in tx.all(
                RESERVATION_SELECT + " WHERE r.task_sid = ? AND r.reservation_status = 'pending'",
                (sid,),
            ):
                self._release_worker(tx, reservation)
            fields = self._task_fields(tx, sid)
            tx.delete("tasks", sid)
            self._record(
                tx,
                workspace_sid,
                "task.deleted",
                "task",
                sid,
                f"Task {sid} deleted",
                fields,
            )
            self._note(tx, "task.deleted", workspace_sid, task["sid"])

    # -- reservations --------------------------------------------------------------

    def get_reservation(
        self,
        workspace_sid: str,
        sid: str,
        *,
        task_sid: str | None = None,
        worker_sid: str | None = None,
    ) -> dict[str, Any]:
        with self.store.read() as tx:
            return self._scoped_reservation(tx, workspace_sid, sid, task_sid, worker_sid)

    def _scoped_reservation(
        self,
        tx: Transaction,
        workspace_sid: str,
        sid: str,
        task_sid: str | None,
        worker_sid: str | None,
    ) -> dict[str, Any]:
        if task_sid is not None:
            self._task(tx, workspace_sid, task_sid)
        if worker_sid is not None:
            self._worker(tx, workspace_sid, worker_sid)
        reservation = self._reservation(tx, workspace_sid, sid)
        if (task_sid is not None and reservation["task_sid"] != task_sid) or (
            worker_sid is not None and reservation["worker_sid"] != worker_sid
        ):
            owner = task_sid or worker_sid
            raise NotFound(f"Reservation {sid} does not belong to {owner}")
        return reservation

    def list_reservations(
        self,
        workspace_sid: str,
        paging: Paging,
        *,
        task_sid: str | None = None,
        worker_sid: str | None = None,
        reservation_status: str | None = None,
        filter_worker_sid: str | None = None,
    ) -> Page:
        """Reservations of a task or of a worker; filter_worker_sid narrows a task's list."""
        if reservation_status is not None and reservation_status not in RESERVATION_STATUSES:
            raise EngineError(
                f"ReservationStatus {reservation_status!r} is not valid: use one of "
                + ", ".join(RESERVATION_STATUSES)
            )
        with self.store.read() as tx:
            where, params = ["r.workspace_sid = ?"], [workspace_sid]
            if task_sid is not None:
                self._task(tx, workspace_sid, task_sid)
                where.append("r.task_sid = ?")
                params.append(task_sid)
            if worker_sid is not None:
                self._worker(tx, workspace_sid, worker_sid)
                where.append("r.worker_sid = ?")
                params.append(worker_sid)
            if task_sid is None and worker_sid is None:
                self._workspace(tx, workspace_sid)
            if filter_worker_sid is not None:
                where.append("r.worker_sid = ?")
                params.append(filter_worker_sid)
            if reservation_status is not None:
                where.append("r.reservation_status = ?")
                params.append(reservation_status)
            return _paged(
                tx,
                paging,
                select=RESERVATION_SELECT,
                where=where,
                params=params,
                order=[Order("r.seq", "seq")],
            )

    def _record_reservation(
        self,
        tx: Transaction,
        reservation_sid: str,
        event_type: str,
        verb: str,
        actor: Actor | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        reservation = self._reservation_row(tx, reservation_sid)
        fields = {
            **self._task_fields(tx, reservation["task_sid"]),
            **self._worker_fields(tx, reservation["worker_sid"]),
            "ReservationSid": reservation_sid,
            "ReservationStatus": reservation["reservation_status"],
            **(extra or {}),
        }
        self._record(
            tx,
            reservation["workspace_sid"],
            event_type,
            "reservation",
            reservation_sid,
            f"Reservation {reservation_sid} for Worker {reservation['worker_name']} {verb}",
            fields,
            actor,
        )

    def _release_worker(
        self, tx: Transaction, reservation: dict[str, Any], actor: Actor | None = None
    ) -> None:
        """Give a worker back the activity it had before a reservation that ended unaccepted.

        Only when it still sits in the queue's reservation activity: a worker that moved on
        in the meantime keeps where it went.
        """
        previous = reservation["worker_previous_activity_sid"]
        if previous is None:
            return
        worker = tx.one(WORKER_SELECT + " WHERE k.sid = ?", (reservation["worker_sid"],))
        queue = tx.one(
            "SELECT reservation_activity_sid FROM task_queues WHERE sid = ?",
            (reservation["task_queue_sid"],),
        )
        if worker is None or queue is None:
            return
        if worker["activity_sid"] != queue["reservation_activity_sid"]:
            return
        activity = tx.one(ACTIVITY_SELECT + " WHERE a.sid = ?", (previous,))
        if activity is not None:
            self._set_worker_activity(tx, worker, activity, actor)

    def reserve(
        self, workspace_sid: str, task_sid: str, worker_sid: str, *, actor: Actor | None = None
    ) -> dict[str, Any]:
        """Offer a pending task to an eligible worker: the step routing takes for each match.

        Creates the pending reservation, marks the task reserved, moves a single-tasking
        worker to the queue's reservation activity and queues the assignment callback.
        """
        actor = actor or Actor("workspace", workspace_sid)
        with self._change() as tx:
            workspace = self._workspace(tx, workspace_sid)
            task = self._task(tx, workspace_sid, task_sid)
            worker = self._worker(tx, workspace_sid, worker_sid)
            if task["assignment_status"] not in ("pending", "reserved"):
                raise EngineError(
                    f"Task {task_sid} is {task['assignment_status']} and cannot be reserved"
                )
            if task["task_queue_sid"] is None:
                raise EngineError(f"Task {task_sid} is in no TaskQueue")
            if not worker["available"]:
                raise EngineError(
                    f"Worker {worker['friendly_name']} is not available ({worker['activity_name']})"
                )
            if tx.scalar(
                "SELECT 1 FROM reservations WHERE task_sid = ? AND worker_sid = ?"
                " AND reservation_status = 'pending'",
                (task_sid, worker_sid),
            ):
                raise EngineError(
                    f"Worker {worker['friendly_name']} already holds a pending reservation "
                    f"for task {task_sid}"
                )
            # Single-tasking: only an unanswered offer holds the worker (routing.py says why).
            if not workspace["multi_task_enabled"] and tx.scalar(
                "SELECT 1 FROM reservations WHERE worker_sid = ?"
                " AND reservation_status = 'pending'",
                (worker_sid,),
            ):
                raise EngineError(
                    f"Worker {worker['friendly_name']} already holds a pending reservation "
                    "in a single-tasking workspace"
                )
            # Multi-tasking: capacity 1 per task channel, taken by a pending or accepted task.
            if workspace["multi_task_enabled"] and tx.scalar(
                "SELECT 1 FROM reservations r JOIN tasks t ON t.sid = r.task_sid"
                " WHERE r.worker_sid = ? AND r.reservation_status IN ('pending', 'accepted')"
                " AND t.task_channel_sid IS ?",
                (worker_sid, task["task_channel_sid"]),
            ):
                raise EngineError(
                    f"Worker {worker['friendly_name']} has no capacity left on task channel "
                    f"{task['task_channel_unique_name']}"
                )
            queue = self._task_queue(tx, workspace_sid, task["task_queue_sid"])
            if not expressions.parse(queue["target_workers"]).evaluate(
                _attributes(worker["attributes"])
            ):
                raise EngineError(
                    f"Worker {worker['friendly_name']} does not match TaskQueue "
                    f"{queue['friendly_name']}'s target workers ({queue['target_workers']})"
                )
            workflow = tx.one(WORKFLOW_SELECT + " WHERE f.sid = ?", (task["workflow_sid"],))
            timeout = (
                workflow["task_reservation_timeout"] if workflow else DEFAULT_RESERVATION_TIMEOUT
            )
            moment = self._now()
            now = to_storage(moment)
            sid = new_sid("WR")
            tx.insert(
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
                    "date_created": now,
                    "date_updated": now,
                },
            )
            tx.update("tasks", task_sid, {"assignment_status": "reserved", "date_updated": now})
            self._deadline_set(tx, moment + timedelta(seconds=timeout))
            self._record_reservation(tx, sid, "reservation.created", "created", actor)
            if not workspace["multi_task_enabled"] and queue["reservation_activity_sid"]:
                activity = tx.one(
                    ACTIVITY_SELECT + " WHERE a.sid = ?", (queue["reservation_activity_sid"],)
                )
                self._set_worker_activity(tx, worker, activity, actor)
            if workflow and workflow["assignment_callback_url"]:
                # Read before the offer: a reservation changes neither attributes nor age.
                callback = AssignmentCallback(
                    reservation_sid=sid,
                    url=workflow["assignment_callback_url"],
                    fallback_url=workflow["fallback_assignment_callback_url"],
                    params={
                        "AccountSid": self.account_sid,
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
                # Owed from this commit on, crash or not: a restart sends it (outbox.py).
                outbox.record(tx, callback, self.callback_owner, now)
                self._effect(tx, callback)
            self._note(tx, "reservation.created", workspace_sid, sid)
            return self._reservation(tx, workspace_sid, sid)

    def update_reservation(
        self,
        workspace_sid: str,
        sid: str,
        *,
        task_sid: str | None = None,
        worker_sid: str | None = None,
        reservation_status: str | None = None,
        worker_activity_sid: str | None = None,
        instruction: str | None = None,
        instruction_params: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Accept, reject, wrap up or complete a reservation, or give it an instruction.

        Telephony instructions have no calls to act on here: dequeue and conference accept,
        call and redirect accept only with CallAccept/RedirectAccept; each is recorded.
        """
        if reservation_status is not None and instruction is not None:
            raise EngineError("Give either ReservationStatus or Instruction, not both")
        if instruction is not None and instruction not in INSTRUCTIONS:
            raise EngineError(
                f"Instruction {instruction!r} is not valid: use one of " + ", ".join(INSTRUCTIONS)
            )
        if reservation_status is not None and reservation_status not in RESERVATION_STATUSES:
            raise EngineError(
                f"ReservationStatus {reservation_status!r} is not valid: use accepted, "
                "rejected, wrapping or completed"
            )
        params = dict(instruction_params or {})
        target = reservation_status
        if instruction in ("accept", "reject"):
            target = instruction + "ed"
        elif instruction in ("dequeue", "conference"):
            target = "accepted"
        elif instruction == "call":
            target = "accepted" if params.get("CallAccept") else None
        elif instruction == "redirect":
            target = "accepted" if params.get("RedirectAccept") else None
        with self._change() as tx:
            reservation = self._scoped_reservation(tx, workspace_sid, sid, task_sid, worker_sid)
            status = reservation["reservation_status"]
            if status == "rescinded":
                raise EngineError(
                    f"Reservation {sid} has been rescinded: another worker accepted the task",
                    status=410,
                    code=20001,
                )
            activity = None
            if worker_activity_sid is not None:
                if target != "rejected":
                    raise EngineError("WorkerActivitySid applies only when rejecting a reservation")
                activity = self._referenced_activity(
                    tx, workspace_sid, worker_activity_sid, "WorkerActivitySid"
                )
            if instruction is not None:
                if status != "pending":
                    raise EngineError(
                        f"Reservation {sid} is already in state [{status}] and cannot be given "
                        f"the instruction [{instruction}]"
                    )
                tx.update(
                    "reservations",
                    sid,
                    {"instruction": json.dumps({"instruction": instruction, **params})},
                )
            if target is None:
                return self._reservation(tx, workspace_sid, sid)
            allowed = {
                "accepted": ("pending",),
                "rejected": ("pending",),
                "wrapping": ("accepted",),
                "completed": ("accepted", "wrapping"),
            }
            if target not in allowed:
                raise EngineError(
                    f"ReservationStatus {target} cannot be set over the API: use accepted, "
                    "rejected, wrapping or completed"
                )
            if status not in allowed[target]:
                raise EngineError(
                    f"Reservation {sid} is already in state [{status}] and cannot be updated "
                    f"to [{target}]"
                )
            if target == "accepted":
                self._accept(tx, reservation)
            elif target == "rejected":
                self._reject(tx, reservation, activity)
            elif target == "wrapping":
                self._wrap_task(tx, workspace_sid, reservation["task_sid"])
            else:
                self._finish_task(tx, workspace_sid, reservation["task_sid"], "completed", None)
            return self._reservation(tx, workspace_sid, sid)

    def _accept(self, tx: Transaction, reservation: dict[str, Any]) -> None:
        workspace_sid = reservation["workspace_sid"]
        now = to_storage(self._now())
        tx.update(
            "reservations",
            reservation["sid"],
            {"reservation_status": "accepted", "date_updated": now},
        )
        tx.update(
            "tasks", reservation["task_sid"], {"assignment_status": "assigned", "date_updated": now}
        )
        self._record_reservation(tx, reservation["sid"], "reservation.accepted", "accepted")
        for other in tx.all(
            RESERVATION_SELECT
            + " WHERE r.task_sid = ? AND r.reservation_status = 'pending' AND r.sid != ?",
            (reservation["task_sid"], reservation["sid"]),
        ):
            tx.update(
                "reservations",
                other["sid"],
                {"reservation_status": "rescinded", "date_updated": now},
            )
            self._record_reservation(tx, other["sid"], "reservation.rescinded", "rescinded")
            self._release_worker(tx, other)
            self._note(tx, "reservation.rescinded", workspace_sid, other["sid"])
        workspace = self._workspace(tx, workspace_sid)
        queue = tx.one(
            "SELECT assignment_activity_sid FROM task_queues WHERE sid = ?",
            (reservation["task_queue_sid"],),
        )
        if not workspace["multi_task_enabled"] and queue and queue["assignment_activity_sid"]:
            worker = self._worker(tx, workspace_sid, reservation["worker_sid"])
            activity = tx.one(
                ACTIVITY_SELECT + " WHERE a.sid = ?", (queue["assignment_activity_sid"],)
            )
            self._set_worker_activity(tx, worker, activity)
        self._note(tx, "reservation.accepted", workspace_sid, reservation["sid"])

    def _reject(
        self, tx: Transaction, reservation: dict[str, Any], activity: dict[str, Any] | None
    ) -> None:
        workspace_sid = reservation["workspace_sid"]
        now = to_storage(self._now())
        tx.update(
            "reservations",
            reservation["sid"],
            {"reservation_status": "rejected", "date_updated": now},
        )
        self._record_reservation(tx, reservation["sid"], "reservation.rejected", "rejected")
        if activity is not None:
            worker = self._worker(tx, workspace_sid, reservation["worker_sid"])
            self._set_worker_activity(tx, worker, activity)
        else:
            self._release_worker(tx, reservation)
        task_sid = reservation["task_sid"]
        tx.execute(
            "UPDATE tasks SET rejection_count = rejection_count + 1 WHERE sid = ?", (task_sid,)
        )
        task = tx.one(
            "SELECT assignment_status, rejection_count FROM tasks WHERE sid = ?", (task_sid,)
        )
        still_pending = tx.scalar(
            "SELECT count(*) FROM reservations"
            " WHERE task_sid = ? AND reservation_status = 'pending'",
            (task_sid,),
        )
        if task["assignment_status"] == "reserved" and not still_pending:
            tx.update("tasks", task_sid, {"assignment_status": "pending", "date_updated": now})
            if task["rejection_count"] >= MAX_REJECTIONS:
                self._finish_task(
                    tx,
                    workspace_sid,
                    task_sid,
                    "canceled",
                    f"Task rejected {MAX_REJECTIONS} times",
                    Actor("workspace", workspace_sid),
                )
        self._note(tx, "reservation.rejected", workspace_sid, reservation["sid"])

    # -- timers --------------------------------------------------------------------

    def fire_due(self) -> float | None:
        """Fire every reservation timeout, target timeout and task TTL due at clock.now(),
        each in its own transaction; return the seconds until the next deadline (None: none).

        The scheduler's tick: safe to call from any thread or process at any time.
        """
        moment = self._now()
        stamp = to_storage(moment)
        while True:
            with self.store.read() as tx:
                reservations = tx.all(
                    "SELECT sid FROM reservations WHERE reservation_status = 'pending'"
                    " AND timeout_at <= ? ORDER BY timeout_at LIMIT ?",
                    (stamp, DUE_BATCH),
                )
                expired = [
                    row
                    for status in ("pending", "reserved")
                    for row in tx.all(
                        "SELECT sid FROM tasks WHERE assignment_status = ? AND timeout_at <= ?"
                        " ORDER BY timeout_at LIMIT ?",
                        (status, stamp, DUE_BATCH),
                    )
                ]
                moved = tx.all(
                    "SELECT sid FROM tasks WHERE assignment_status = 'pending'"
                    " AND target_timeout_at <= ? ORDER BY target_timeout_at LIMIT ?",
                    (stamp, DUE_BATCH),
                )
            if not (reservations or expired or moved):
                break
            for row in reservations:
                with self._change() as tx:
                    self._time_out_reservation(tx, row["sid"], stamp)
            for row in expired:
                with self._change() as tx:
                    self._expire_task(tx, row["sid"], stamp)
            for row in moved:
                with self._change() as tx:
                    self.router.target_timed_out(tx, row["sid"])
        return self.next_deadline()

    def next_deadline(self) -> float | None:
        """Seconds from clock.now() to the earliest pending deadline (0 if overdue)."""
        with self.store.read() as tx:
            candidates = [
                tx.scalar(
                    "SELECT min(timeout_at) FROM reservations WHERE reservation_status = 'pending'"
                ),
                tx.scalar("SELECT min(timeout_at) FROM tasks WHERE assignment_status = 'pending'"),
                tx.scalar("SELECT min(timeout_at) FROM tasks WHERE assignment_status = 'reserved'"),
                tx.scalar(
                    "SELECT min(target_timeout_at) FROM tasks WHERE assignment_status = 'pending'"
                ),
            ]
        due = [from_storage(value) for value in candidates if value]
        if not due:
            return None
        return max(0.0, (min(due) - self._now()).total_seconds())

    def _time_out_reservation(self, tx: Transaction, reservation_sid: str, stamp: str) -> None:
        """A pending reservation past task_reservation_timeout: the worker goes to the
        workspace's timeout activity and the task back to routing."""
        reservation = self._reservation_row(tx, reservation_sid)
        if (
            reservation is None
            or reservation["reservation_status"] != "pending"
            or reservation["timeout_at"] > stamp
        ):
            return
        workspace_sid = reservation["workspace_sid"]
        actor = self._workspace_actor(workspace_sid)
        now = to_storage(self._now())
        tx.update(
            "reservations", reservation_sid, {"reservation_status": "timeout", "date_updated": now}
        )
        self._record_reservation(tx, reservation_sid, "reservation.timeout", "timed out", actor)
        workspace = self._workspace(tx, workspace_sid)
        if workspace["timeout_activity_sid"]:
            worker = self._worker(tx, workspace_sid, reservation["worker_sid"])
            activity = tx.one(
                ACTIVITY_SELECT + " WHERE a.sid = ?", (workspace["timeout_activity_sid"],)
            )
            self._set_worker_activity(tx, worker, activity, actor)
        else:
            self._release_worker(tx, reservation, actor)
        task_sid = reservation["task_sid"]
        still_pending = tx.scalar(
            "SELECT count(*) FROM reservations"
            " WHERE task_sid = ? AND reservation_status = 'pending'",
            (task_sid,),
        )
        status = (self._task_row(tx, task_sid) or {}).get("assignment_status")
        if status == "reserved" and not still_pending:
            tx.update("tasks", task_sid, {"assignment_status": "pending", "date_updated": now})
        self._note(tx, "reservation.timeout", workspace_sid, reservation_sid)

    def _expire_task(self, tx: Transaction, task_sid: str, stamp: str) -> None:
        task = tx.one(
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
        self._finish_task(
            tx,
            workspace_sid,
            task_sid,
            "canceled",
            TTL_REASON,
            self._workspace_actor(workspace_sid),
        )

    # -- assignment callback answers and alerts ------------------------------------

    def apply_assignment_outcome(self, outcome: Any) -> None:
        """Apply what an assignment callback answered (a dispatch.AssignmentOutcome).

        Its alerts are recorded whatever happens; the instruction applies only while the
        reservation is still pending (it may have been accepted over REST, or timed out).
        """
        with self._change() as tx:
            reservation = self._reservation_row(tx, outcome.reservation_sid)
            if reservation is None:
                logger.info(
                    "assignment callback answer for unknown reservation %s ignored",
                    outcome.reservation_sid,
                )
                return
            workspace_sid = reservation["workspace_sid"]
            for alert in outcome.alerts:
                self._insert_alert(tx, workspace_sid, alert, reservation["sid"])
            status = reservation["reservation_status"]
            if not (outcome.instruction or outcome.accept or outcome.reject):
                return
            if status != "pending":
                logger.info(
                    "assignment callback instruction %s for reservation %s ignored: it is %s",
                    outcome.instruction,
                    reservation["sid"],
                    status,
                )
                return
            if outcome.instruction:
                tx.update(
                    "reservations",
                    reservation["sid"],
                    {
                        "instruction": json.dumps(
                            {"instruction": outcome.instruction, **outcome.params}, default=str
                        )
                    },
                )
            if outcome.accept:
                self._accept(tx, reservation)
            elif outcome.reject:
                activity = None
                if outcome.activity_sid:
                    activity = tx.one(
                        ACTIVITY_SELECT + " WHERE a.sid = ? AND a.workspace_sid = ?",
                        (outcome.activity_sid, workspace_sid),
                    )
                    if activity is None:
                        self._insert_alert(
                            tx,
                            workspace_sid,
                            _Alert(
                                55555,
                                "error",
                                f"reject instruction names activity_sid {outcome.activity_sid}, "
                                f"which is not an Activity of workspace {workspace_sid}; the "
                                "worker keeps its activity",
                                outcome.url_used,
                            ),
                            reservation["sid"],
                        )
                self._reject(tx, reservation, activity)

    def record_alert(self, alert: Any, workspace_sid: str | None = None) -> None:
        """Keep an alert (a dispatch.Alert) for the console; event deliveries land here."""
        with self.store.transaction() as tx:
            self._insert_alert(tx, workspace_sid, alert, None)

    def _insert_alert(
        self, tx: Transaction, workspace_sid: str | None, alert: Any, reservation_sid: str | None
    ) -> None:
        tx.insert(
            "alerts",
            {
                "sid": new_sid("NO"),
                "workspace_sid": workspace_sid,
                "code": int(alert.code),
                "level": alert.level,
                "message": alert.message,
                "url": alert.url,
                "reservation_sid": reservation_sid,
                "date_created": to_storage(self._now()),
            },
        )

    def list_alerts(self, workspace_sid: str | None, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first: the workspace's alerts plus those tied to no workspace (event
        deliveries); with workspace_sid None, every alert."""
        _integer(limit, "Limit", 1, 1000)
        with self.store.read() as tx:
            if workspace_sid is None:
                return tx.all("SELECT * FROM alerts ORDER BY seq DESC LIMIT ?", (limit,))
            self._workspace(tx, workspace_sid)
            return tx.all(
                "SELECT * FROM alerts WHERE workspace_sid = ? OR workspace_sid IS NULL"
                " ORDER BY seq DESC LIMIT ?",
                (workspace_sid, limit),
            )

    def get_alert(self, sid: str) -> dict[str, Any]:
        with self.store.read() as tx:
            row = tx.one("SELECT * FROM alerts WHERE sid = ?", (sid,))
        if row is None:
            raise NotFound(f"Alert {sid} not found")
        return row

    def page_alerts(self, paging: Paging, *, log_level: str | None = None) -> Page:
        """Every alert, newest first, paged like the REST lists (Monitor's /v1/Alerts)."""
        if log_level is not None and log_level not in ("error", "warning"):
            raise EngineError(f"LogLevel must be error or warning, got {log_level!r}")
        where, params = [], []
        if log_level is not None:
            where.append("al.level = ?")
            params.append(log_level)
        with self.store.read() as tx:
            return _paged(
                tx,
                paging,
                select="SELECT al.* FROM alerts al",
                where=where,
                params=params,
                order=[Order("al.seq", "seq", True)],
            )

    def ensure_routing_state(self) -> None:
        """Build worker-to-queue memberships once for a database made before routing."""
        with self.store.transaction() as tx:
            if tx.setting("worker_queues_built") is None:
                self.router.rebuild(tx)
                tx.set_setting("worker_queues_built", "1")

    # -- events --------------------------------------------------------------------

    def get_event(self, workspace_sid: str, sid: str) -> dict[str, Any]:
        with self.store.read() as tx:
            return self._scoped(tx, EVENT_SELECT, "e", "Event", workspace_sid, sid)

    def list_events(
        self,
        workspace_sid: str,
        paging: Paging,
        *,
        event_type: str | None = None,
        task_sid: str | None = None,
        worker_sid: str | None = None,
        reservation_sid: str | None = None,
        task_queue_sid: str | None = None,
        workflow_sid: str | None = None,
        task_channel: str | None = None,
        sid: str | None = None,
        minutes: int | None = None,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
    ) -> Page:
        """Newest first; without Minutes, StartDate or EndDate, the last 15 minutes."""
        if minutes is not None:
            _integer(minutes, "Minutes", 1, MAX_EVENT_MINUTES)
        if start_date and end_date and start_date > end_date:
            raise EngineError("StartDate must not be later than EndDate")
        where, params = ["e.workspace_sid = ?"], [workspace_sid]
        for value, clause in (
            (event_type, "e.event_type = ?"),
            (task_sid, "e.task_sid = ?"),
            (worker_sid, "e.worker_sid = ?"),
            (reservation_sid, "e.reservation_sid = ?"),
            (task_queue_sid, "e.task_queue_sid = ?"),
            (workflow_sid, "e.workflow_sid = ?"),
            (sid, "e.sid = ?"),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        if minutes is None and start_date is None and end_date is None:
            minutes = DEFAULT_EVENT_MINUTES
        if minutes is not None:
            where.append("e.event_date >= ?")
            params.append(to_storage(self._now() - timedelta(minutes=minutes)))
        if start_date is not None:
            where.append("e.event_date >= ?")
            params.append(to_storage(start_date))
        if end_date is not None:
            where.append("e.event_date <= ?")
            params.append(to_storage(end_date))
        with self.store.read() as tx:
            self._workspace(tx, workspace_sid)
            if task_channel is not None:
                if is_sid(task_channel, "TC"):
                    task_channel = (
                        tx.scalar(
                            "SELECT unique_name FROM task_channels WHERE sid = ?", (task_channel,)
                        )
                        or task_channel
                    )
                where.append("e.task_channel_unique_name = ?")
                params.append(task_channel)
            return _paged(
                tx,
                paging,
                select=EVENT_SELECT,
                where=where,
                params=params,
                order=[Order("e.event_date", "event_date", True), Order("e.seq", "seq", True)],
            )


def _configuration_queues(text: str) -> set[str]:
    """Every TaskQueue SID a stored workflow configuration routes to."""
    try:
        routing = json.loads(text).get("task_routing", {})
    except (ValueError, AttributeError):
        return set()
    queues = {
        target.get("queue")
        for item in routing.get("filters", [])
        if isinstance(item, dict)
        for target in item.get("targets", [])
        if isinstance(target, dict)
    }
    default = routing.get("default_filter")
    if isinstance(default, dict):
        queues.add(default.get("queue"))
    queues.discard(None)
    return queues
