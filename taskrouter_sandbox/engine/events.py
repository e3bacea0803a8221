"""The Events list: what happened in a workspace, newest first, by type, resource or time."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from taskrouter_sandbox.clock import to_storage
from taskrouter_sandbox.domain import validation as check
from taskrouter_sandbox.domain.errors import EngineError
from taskrouter_sandbox.domain.validation import DEFAULT_EVENT_MINUTES, MAX_EVENT_MINUTES, is_sid
from taskrouter_sandbox.domain.values import Paging
from taskrouter_sandbox.engine.listing import paged
from taskrouter_sandbox.engine.operations import Operations
from taskrouter_sandbox.state import reads
from taskrouter_sandbox.store import Order, Page


def get_event(ops: Operations, workspace_sid: str, sid: str) -> dict[str, Any]:
    with ops.read_events() as op:
        return reads.scoped(op, reads.EVENT_SELECT, "e", "Event", workspace_sid, sid)


def list_events(
    ops: Operations,
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
        check.integer(minutes, "Minutes", 1, MAX_EVENT_MINUTES)
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
        params.append(to_storage(ops.clock.now() - timedelta(minutes=minutes)))
    if start_date is not None:
        where.append("e.event_date >= ?")
        params.append(to_storage(start_date))
    if end_date is not None:
        where.append("e.event_date <= ?")
        params.append(to_storage(end_date))
    with ops.read_events() as op:
        reads.workspace(op, workspace_sid)
        if task_channel is not None:
            if is_sid(task_channel, "TC"):
                task_channel = (
                    op.tx.scalar(
                        "SELECT unique_name FROM task_channels WHERE sid = ?", (task_channel,)
                    )
                    or task_channel
                )
            where.append("e.task_channel_unique_name = ?")
            params.append(task_channel)
        return paged(
            op.tx,
            paging,
            select=reads.EVENT_SELECT,
            where=where,
            params=params,
            order=[Order("e.event_date", "event_date", True), Order("e.seq", "seq", True)],
        )


# The columns a reader of new events (the event bridge) needs, in the order they were written.
_AFTER = (
    "SELECT seq, event_type, workspace_sid, event_data, worker_sid, task_sid, reservation_sid"
    " FROM events WHERE seq > ? ORDER BY seq LIMIT ?"
)


def events_after(ops: Operations, seq: int, limit: int = 500) -> list[dict[str, Any]]:
    """The events written after the one numbered seq (AUTOINCREMENT: never reused), oldest
    first, in every workspace."""
    with ops.read_events() as op:
        return op.tx.all(_AFTER, (seq, limit))


def last_event(ops: Operations) -> int:
    """The seq of the newest event, 0 when there is none: where a reader starts."""
    with ops.read_events() as op:
        return op.tx.scalar("SELECT COALESCE(MAX(seq), 0) FROM events") or 0
