"""WorkerChannels: a worker's capacity and availability on each task channel of its workspace.

One per (worker, task channel), made when the second of the two is created and deleted with
either (the foreign keys cascade). Addressed by SID or by the task channel's unique name, as
Twilio's WorkerChannel page allows. In a multitasking workspace routing offers a worker tasks
of a channel while the channel is available and its capacity exceeds the tasks it holds; a
change that may open room routes the worker again.
"""

from __future__ import annotations

from typing import Any

from taskrouter_sandbox.domain.errors import EngineError, NotFound
from taskrouter_sandbox.domain.validation import is_sid
from taskrouter_sandbox.domain.values import Paging
from taskrouter_sandbox.engine.listing import paged
from taskrouter_sandbox.engine.operations import Operations
from taskrouter_sandbox.state import events, reads, transitions
from taskrouter_sandbox.state.operation import Operation
from taskrouter_sandbox.store import Order, Page

# Twilio's default for every channel of a new worker (the OpenAPI examples' configured_capacity).
DEFAULT_CAPACITY = 1
# Twilio documents no upper bound; this one keeps a typo (1e9) from passing as a capacity.
MAX_CAPACITY = 1000

_INSERT = (
    "INSERT INTO worker_channels (sid, workspace_sid, worker_sid, task_channel_sid, capacity,"
    " available, date_created, date_updated)"
    f" SELECT 'WC' || lower(hex(randomblob(16))), :workspace, {{worker}}, {{channel}},"
    f" {DEFAULT_CAPACITY}, 1, :stamp, :stamp"
)


def add_for_worker(op: Operation, workspace_sid: str, worker_sid: str) -> None:
    """A new worker's channels: one per task channel of its workspace."""
    op.tx.execute(
        _INSERT.format(worker=":worker", channel="c.sid")
        + " FROM task_channels c WHERE c.workspace_sid = :workspace ORDER BY c.seq",
        {"workspace": workspace_sid, "worker": worker_sid, "stamp": op.stamp()},
    )


def add_for_task_channel(op: Operation, workspace_sid: str, task_channel_sid: str) -> None:
    """A new task channel's rows: one for every worker of its workspace."""
    op.tx.execute(
        _INSERT.format(worker="k.sid", channel=":channel")
        + " FROM workers k WHERE k.workspace_sid = :workspace ORDER BY k.seq",
        {"workspace": workspace_sid, "channel": task_channel_sid, "stamp": op.stamp()},
    )


def _find(op: Operation, workspace_sid: str, worker_sid: str, sid: str) -> dict[str, Any]:
    worker = reads.worker(op, workspace_sid, worker_sid)
    column = "wc.sid" if is_sid(sid, "WC") else "c.unique_name"
    row = op.tx.one(
        reads.WORKER_CHANNEL_SELECT + f" WHERE wc.worker_sid = ? AND {column} = ?",
        (worker["sid"], sid),
    )
    if row is None:
        raise NotFound(
            f"WorkerChannel {sid} not found for worker {worker_sid} in workspace {workspace_sid}"
        )
    return row


def get_worker_channel(
    ops: Operations, workspace_sid: str, worker_sid: str, sid: str
) -> dict[str, Any]:
    with ops.read() as op:
        return _find(op, workspace_sid, worker_sid, sid)


def list_worker_channels(
    ops: Operations, workspace_sid: str, worker_sid: str, paging: Paging
) -> Page:
    with ops.read() as op:
        reads.worker(op, workspace_sid, worker_sid)
        return paged(
            op.tx,
            paging,
            select=reads.WORKER_CHANNEL_SELECT,
            where=["wc.worker_sid = ?"],
            params=[worker_sid],
            order=[Order("wc.seq", "seq")],
        )


def _check_capacity(capacity: object) -> int:
    if isinstance(capacity, bool) or not isinstance(capacity, int):
        raise EngineError(f"Capacity must be an integer, got {capacity!r}")
    if not 0 <= capacity <= MAX_CAPACITY:
        raise EngineError(f"Capacity must be between 0 and {MAX_CAPACITY}, got {capacity}")
    return capacity


def update_worker_channel(
    ops: Operations,
    workspace_sid: str,
    worker_sid: str,
    sid: str,
    *,
    capacity: int | None = None,
    available: bool | None = None,
) -> dict[str, Any]:
    if capacity is not None:
        _check_capacity(capacity)
    with ops.write() as op:
        channel = _find(op, workspace_sid, worker_sid, sid)
        changes: dict[str, Any] = {}
        if capacity is not None and capacity != channel["capacity"]:
            changes["capacity"] = capacity
        if available is not None and int(available) != channel["available"]:
            changes["available"] = int(available)
        if not changes:
            return channel
        op.tx.update("worker_channels", channel["sid"], {**changes, "date_updated": op.stamp()})
        updated = _find(op, workspace_sid, worker_sid, channel["sid"])
        fields = {**events.worker_fields(op, worker_sid), **_event_fields(updated)}
        name = f"Worker {fields['WorkerName']} channel {updated['task_channel_unique_name']}"
        if "capacity" in changes:
            events.record(
                op,
                workspace_sid,
                "worker.capacity.update",
                "worker",
                worker_sid,
                f"{name} capacity updated to {updated['capacity']}",
                {**fields, "WorkerChannelPreviousCapacity": str(channel["capacity"])},
            )
        if "available" in changes:
            events.record(
                op,
                workspace_sid,
                "worker.channel.availability.update",
                "worker",
                worker_sid,
                f"{name} {'available' if updated['available'] else 'unavailable'}",
                fields,
            )
        for _change in changes:  # capacity, available: one event each
            transitions.count_worker_change(op, worker_sid)
        # More capacity or a channel back on may make room for a waiting task.
        op.route_again("worker.capacity.update", workspace_sid, worker_sid)
        return updated


def available_capacity_percentage(row: dict[str, Any]) -> int:
    """The share of the channel's capacity still free: 0 when it is switched off or full."""
    capacity = row["capacity"]
    if not row["available"] or capacity <= 0:
        return 0
    return max(capacity - row["assigned_tasks"], 0) * 100 // capacity


def _event_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "WorkerChannelSid": row["sid"],
        "TaskChannelSid": row["task_channel_sid"],
        "TaskChannelUniqueName": row["task_channel_unique_name"],
        "WorkerChannelCapacity": str(row["capacity"]),
        "WorkerChannelAvailable": "true" if row["available"] else "false",
        "WorkerChannelAvailableCapacity": str(available_capacity_percentage(row)),
        "WorkerChannelTaskCount": str(row["assigned_tasks"]),
    }
