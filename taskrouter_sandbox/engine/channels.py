"""TaskChannels: the kinds of work (voice, chat, ...), addressed by SID or unique name."""

from __future__ import annotations

from typing import Any

from taskrouter_sandbox.domain import validation as check
from taskrouter_sandbox.domain.errors import EngineError, NotFound
from taskrouter_sandbox.domain.validation import is_sid, new_sid
from taskrouter_sandbox.domain.values import Paging
from taskrouter_sandbox.engine.listing import paged
from taskrouter_sandbox.engine.operations import Operations
from taskrouter_sandbox.engine.worker_channels import add_for_task_channel
from taskrouter_sandbox.state import events, reads
from taskrouter_sandbox.state.operation import Operation
from taskrouter_sandbox.store import Order, Page


def get_task_channel(ops: Operations, workspace_sid: str, sid: str) -> dict[str, Any]:
    with ops.read() as op:
        return by_sid_or_name(op, workspace_sid, sid)


def by_sid_or_name(op: Operation, workspace_sid: str, sid_or_name: str) -> dict[str, Any]:
    # Twilio addresses a task channel by SID or by unique name.
    if is_sid(sid_or_name, "TC"):
        return reads.task_channel(op, workspace_sid, sid_or_name)
    reads.workspace(op, workspace_sid)
    row = op.tx.one(
        reads.TASK_CHANNEL_SELECT + " WHERE c.workspace_sid = ? AND c.unique_name = ?",
        (workspace_sid, sid_or_name),
    )
    if row is None:
        raise NotFound(f"TaskChannel {sid_or_name} not found in workspace {workspace_sid}")
    return row


def named(op: Operation, workspace_sid: str, value: str) -> dict:
    """The sid and unique_name of the workspace's TaskChannel that value names by SID or
    unique name (a task's TaskChannel, the statistics' TaskChannel filter); 400 if none."""
    column = "sid" if is_sid(value, "TC") else "unique_name"
    row = op.tx.one(
        f"SELECT sid, unique_name FROM task_channels WHERE {column} = ? AND workspace_sid = ?",
        (value, workspace_sid),
    )
    if row is None:
        raise EngineError(
            f"TaskChannel {value!r} is not a TaskChannel (SID or unique name) of workspace "
            f"{workspace_sid}"
        )
    return row


def resolve(op: Operation, workspace_sid: str, value: str | None) -> str:
    """The SID of the channel a task names by SID or unique name (default: "default")."""
    return named(op, workspace_sid, value or "default")["sid"]


def list_task_channels(ops: Operations, workspace_sid: str, paging: Paging) -> Page:
    with ops.read() as op:
        reads.workspace(op, workspace_sid)
        return paged(
            op.tx,
            paging,
            select=reads.TASK_CHANNEL_SELECT,
            where=["c.workspace_sid = ?"],
            params=[workspace_sid],
            order=[Order("c.seq", "seq")],
        )


def create_task_channel(
    ops: Operations,
    workspace_sid: str,
    friendly_name: str,
    unique_name: str,
    *,
    channel_optimized_routing: bool | None = None,
) -> dict[str, Any]:
    with ops.write() as op:
        return add(
            op,
            workspace_sid,
            friendly_name,
            unique_name,
            channel_optimized_routing=channel_optimized_routing,
        )


def add(
    op: Operation,
    workspace_sid: str,
    friendly_name: str,
    unique_name: str,
    *,
    channel_optimized_routing: bool | None = None,
) -> dict[str, Any]:
    """create_task_channel inside an operation already open (a new workspace's defaults)."""
    check.text(friendly_name, "FriendlyName")
    check.text(unique_name, "UniqueName")
    if is_sid(unique_name, "TC"):
        raise EngineError("UniqueName must not look like a TaskChannel SID")
    reads.workspace(op, workspace_sid)
    if op.tx.scalar(
        "SELECT sid FROM task_channels WHERE workspace_sid = ? AND unique_name = ?",
        (workspace_sid, unique_name),
    ):
        raise EngineError(f"UniqueName {unique_name!r}: a TaskChannel already has it")
    stamp = op.stamp()
    sid = new_sid("TC")
    op.tx.insert(
        "task_channels",
        {
            "sid": sid,
            "workspace_sid": workspace_sid,
            "friendly_name": friendly_name,
            "unique_name": unique_name,
            "channel_optimized_routing": None
            if channel_optimized_routing is None
            else int(channel_optimized_routing),
            "date_created": stamp,
            "date_updated": stamp,
        },
    )
    add_for_task_channel(op, workspace_sid, sid)
    events.record(
        op,
        workspace_sid,
        "task-channel.created",
        "task_channel",
        sid,
        f"TaskChannel {unique_name} created",
        {"TaskChannelSid": sid, "TaskChannelUniqueName": unique_name},
    )
    return reads.task_channel(op, workspace_sid, sid)


def update_task_channel(
    ops: Operations,
    workspace_sid: str,
    sid: str,
    *,
    friendly_name: str | None = None,
    channel_optimized_routing: bool | None = None,
) -> dict[str, Any]:
    with ops.write() as op:
        channel = by_sid_or_name(op, workspace_sid, sid)
        values: dict[str, Any] = {}
        if friendly_name is not None:
            values["friendly_name"] = check.text(friendly_name, "FriendlyName")
        if channel_optimized_routing is not None:
            values["channel_optimized_routing"] = int(channel_optimized_routing)
        if values:
            values["date_updated"] = op.stamp()
            op.tx.update("task_channels", channel["sid"], values)
            events.record(
                op,
                workspace_sid,
                "task-channel.updated",
                "task_channel",
                channel["sid"],
                f"TaskChannel {channel['unique_name']} updated",
                _fields(channel),
            )
        return reads.task_channel(op, workspace_sid, channel["sid"])


def delete_task_channel(ops: Operations, workspace_sid: str, sid: str) -> None:
    with ops.write() as op:
        channel = by_sid_or_name(op, workspace_sid, sid)
        # By the workspace's tasks of each active status (tasks_queue_order): tasks_ttl, which
        # this read once, holds only the waiting ones.
        active = op.tx.scalar(
            "SELECT count(*) FROM tasks WHERE workspace_sid = ? AND task_channel_sid = ?"
            f" AND assignment_status IN ({reads.ACTIVE_TASKS})",
            (workspace_sid, channel["sid"]),
        )
        if active:
            raise EngineError(
                f"TaskChannel {channel['unique_name']} cannot be deleted: {active} active "
                "task(s) use it"
            )
        op.tx.delete("task_channels", channel["sid"])
        events.record(
            op,
            workspace_sid,
            "task-channel.deleted",
            "task_channel",
            channel["sid"],
            f"TaskChannel {channel['unique_name']} deleted",
            _fields(channel),
        )


def _fields(channel: dict[str, Any]) -> dict[str, Any]:
    return {"TaskChannelSid": channel["sid"], "TaskChannelUniqueName": channel["unique_name"]}
