"""Workspaces: create (with Twilio's default activities and task channels), fetch, list,
update, delete (with everything in them)."""

from __future__ import annotations

import json
from typing import Any

from taskrouter_sandbox.domain import validation as check
from taskrouter_sandbox.domain.errors import EngineError
from taskrouter_sandbox.domain.validation import (
    DEFAULT_ACTIVITIES,
    DEFAULT_TASK_CHANNELS,
    QUEUE_ORDERS,
    TEMPLATES,
    new_sid,
)
from taskrouter_sandbox.domain.values import Paging
from taskrouter_sandbox.engine import activities, channels, queues, workflows
from taskrouter_sandbox.engine.listing import paged
from taskrouter_sandbox.engine.operations import Operations
from taskrouter_sandbox.state import events, reads
from taskrouter_sandbox.store import Order, Page

UPDATABLE = frozenset(
    {
        "friendly_name",
        "default_activity_sid",
        "timeout_activity_sid",
        "event_callback_url",
        "events_filter",
        "multi_task_enabled",
        "prioritize_queue_order",
    }
)


def get_workspace(ops: Operations, workspace_sid: str) -> dict[str, Any]:
    with ops.read() as op:
        return reads.workspace(op, workspace_sid)


def list_workspaces(ops: Operations, paging: Paging, *, friendly_name: str | None = None) -> Page:
    with ops.read() as op:
        where, params = [], []
        if friendly_name is not None:
            where.append("w.friendly_name = ?")
            params.append(friendly_name)
        return paged(
            op.tx,
            paging,
            select=reads.WORKSPACE_SELECT,
            where=where,
            params=params,
            order=[Order("w.seq", "seq")],
        )


def create_workspace(
    ops: Operations,
    friendly_name: str,
    *,
    event_callback_url: str | None = None,
    events_filter: str | None = None,
    multi_task_enabled: bool = True,
    prioritize_queue_order: str = "FIFO",
    template: str | None = None,
) -> dict[str, Any]:
    """A workspace with Twilio's default activities and task channels (and FIFO template)."""
    check.text(friendly_name, "FriendlyName")
    event_callback_url = check.url(event_callback_url, "EventCallbackUrl")
    if prioritize_queue_order not in QUEUE_ORDERS:
        raise EngineError("PrioritizeQueueOrder must be FIFO or LIFO")
    template = (template or "NONE").upper()
    if template not in TEMPLATES:
        raise EngineError(f"Template must be NONE or FIFO, got {template!r}")
    with ops.write() as op:
        stamp = op.stamp()
        workspace_sid = new_sid("WS")
        op.tx.insert(
            "workspaces",
            {
                "sid": workspace_sid,
                "friendly_name": friendly_name,
                "event_callback_url": event_callback_url,
                "events_filter": events_filter or None,
                "multi_task_enabled": int(bool(multi_task_enabled)),
                "prioritize_queue_order": prioritize_queue_order,
                "date_created": stamp,
                "date_updated": stamp,
            },
        )
        activity_sids = [
            activities.add(op, workspace_sid, name, available=available)["sid"]
            for name, available in DEFAULT_ACTIVITIES
        ]
        op.tx.update(
            "workspaces",
            workspace_sid,
            {"default_activity_sid": activity_sids[0], "timeout_activity_sid": activity_sids[0]},
        )
        op.forget_workspace(workspace_sid)
        for name, unique_name in DEFAULT_TASK_CHANNELS:
            channels.add(op, workspace_sid, name, unique_name)
        if template == "FIFO":
            queue = queues.add(op, workspace_sid, "Sample Queue")
            workflows.add(
                op,
                workspace_sid,
                "Default Fifo Workflow",
                json.dumps(
                    {"task_routing": {"filters": [], "default_filter": {"queue": queue["sid"]}}}
                ),
            )
        return reads.workspace(op, workspace_sid)


def update_workspace(ops: Operations, workspace_sid: str, **changes: Any) -> dict[str, Any]:
    """Accepts friendly_name, default_activity_sid, timeout_activity_sid,
    event_callback_url, events_filter, multi_task_enabled, prioritize_queue_order."""
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise TypeError(f"update_workspace() got unexpected fields {sorted(unknown)}")
    with ops.write() as op:
        reads.workspace(op, workspace_sid)
        values: dict[str, Any] = {}
        if changes.get("friendly_name") is not None:
            values["friendly_name"] = check.text(changes["friendly_name"], "FriendlyName")
        for key, parameter in (
            ("default_activity_sid", "DefaultActivitySid"),
            ("timeout_activity_sid", "TimeoutActivitySid"),
        ):
            if changes.get(key) is not None:
                activity = reads.referenced_activity(op, workspace_sid, changes[key], parameter)
                values[key] = activity["sid"]
        if changes.get("event_callback_url") is not None:
            values["event_callback_url"] = check.url(
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
            values["date_updated"] = op.stamp()
            op.tx.update("workspaces", workspace_sid, values)
            op.forget_workspace(workspace_sid)
            op.route_again("workspace.updated", workspace_sid, workspace_sid)
        return reads.workspace(op, workspace_sid)


def delete_workspace(ops: Operations, workspace_sid: str) -> None:
    """Deletes the workspace and everything in it."""
    with ops.write() as op:
        reads.workspace(op, workspace_sid)
        events.flush(op)  # so that the events go with the rest
        for table in ("events", "reservations", "tasks", "workflows", "workers"):
            op.tx.execute(f"DELETE FROM {table} WHERE workspace_sid = ?", (workspace_sid,))
        for table in ("task_queues", "task_channels", "activities"):
            op.tx.execute(f"DELETE FROM {table} WHERE workspace_sid = ?", (workspace_sid,))
        op.tx.delete("workspaces", workspace_sid)
        op.forget_workspace(workspace_sid)
