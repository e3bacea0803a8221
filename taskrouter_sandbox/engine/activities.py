"""Activities: a worker's state (Offline, Available, ...); create, fetch, list, rename, delete."""

from __future__ import annotations

from typing import Any

from taskrouter_sandbox.domain import validation as check
from taskrouter_sandbox.domain.errors import EngineError
from taskrouter_sandbox.domain.validation import new_sid
from taskrouter_sandbox.domain.values import Paging
from taskrouter_sandbox.engine.listing import paged
from taskrouter_sandbox.engine.operations import Operations
from taskrouter_sandbox.state import events, reads
from taskrouter_sandbox.state.operation import Operation
from taskrouter_sandbox.store import Order, Page


def get_activity(ops: Operations, workspace_sid: str, sid: str) -> dict[str, Any]:
    with ops.read() as op:
        return reads.activity(op, workspace_sid, sid)


def list_activities(
    ops: Operations,
    workspace_sid: str,
    paging: Paging,
    *,
    friendly_name: str | None = None,
    available: bool | None = None,
) -> Page:
    with ops.read() as op:
        reads.workspace(op, workspace_sid)
        where, params = ["a.workspace_sid = ?"], [workspace_sid]
        if friendly_name is not None:
            where.append("a.friendly_name = ?")
            params.append(friendly_name)
        if available is not None:
            where.append("a.available = ?")
            params.append(int(available))
        return paged(
            op.tx,
            paging,
            select=reads.ACTIVITY_SELECT,
            where=where,
            params=params,
            order=[Order("a.seq", "seq")],
        )


def _check_name(
    op: Operation, workspace_sid: str, friendly_name: str, sid: str | None = None
) -> None:
    clash = op.tx.scalar(
        "SELECT sid FROM activities WHERE workspace_sid = ? AND lower(friendly_name) = ?"
        " AND sid IS NOT ?",
        (workspace_sid, friendly_name.lower(), sid),
    )
    if clash:
        raise EngineError(
            f"FriendlyName {friendly_name!r}: an Activity with that name already exists ({clash})"
        )


def create_activity(
    ops: Operations, workspace_sid: str, friendly_name: str, *, available: bool = False
) -> dict[str, Any]:
    with ops.write() as op:
        return add(op, workspace_sid, friendly_name, available=available)


def add(
    op: Operation, workspace_sid: str, friendly_name: str, *, available: bool = False
) -> dict[str, Any]:
    """create_activity inside an operation already open (a new workspace's defaults)."""
    check.text(friendly_name, "FriendlyName")
    reads.workspace(op, workspace_sid)
    _check_name(op, workspace_sid, friendly_name)
    stamp = op.stamp()
    sid = new_sid("WA")
    op.tx.insert(
        "activities",
        {
            "sid": sid,
            "workspace_sid": workspace_sid,
            "friendly_name": friendly_name,
            "available": int(bool(available)),
            "date_created": stamp,
            "date_updated": stamp,
        },
    )
    events.record(
        op,
        workspace_sid,
        "activity.created",
        "activity",
        sid,
        f"Activity {friendly_name} created",
        {"ActivitySid": sid, "ActivityName": friendly_name},
    )
    return reads.activity(op, workspace_sid, sid)


def update_activity(
    ops: Operations, workspace_sid: str, sid: str, *, friendly_name: str | None = None
) -> dict[str, Any]:
    with ops.write() as op:
        activity = reads.activity(op, workspace_sid, sid)
        if friendly_name is not None and friendly_name != activity["friendly_name"]:
            check.text(friendly_name, "FriendlyName")
            _check_name(op, workspace_sid, friendly_name, sid)
            op.tx.update(
                "activities", sid, {"friendly_name": friendly_name, "date_updated": op.stamp()}
            )
            events.record(
                op,
                workspace_sid,
                "activity.updated",
                "activity",
                sid,
                f"Activity {activity['friendly_name']} renamed to {friendly_name}",
                {"ActivitySid": sid, "ActivityName": friendly_name},
            )
            op.forget_workspace(workspace_sid)  # it names its activities
        return reads.activity(op, workspace_sid, sid)


def delete_activity(ops: Operations, workspace_sid: str, sid: str) -> None:
    with ops.write() as op:
        activity = reads.activity(op, workspace_sid, sid)
        workspace = reads.workspace(op, workspace_sid)
        name = activity["friendly_name"]
        if sid in (workspace["default_activity_sid"], workspace["timeout_activity_sid"]):
            raise EngineError(
                f"Activity {sid} ({name}) is the workspace's default or timeout activity "
                "and cannot be deleted; change DefaultActivitySid/TimeoutActivitySid first"
            )
        workers = op.tx.scalar("SELECT count(*) FROM workers WHERE activity_sid = ?", (sid,))
        if workers:
            raise EngineError(
                f"Activity {sid} ({name}) cannot be deleted: {workers} worker(s) are in it"
            )
        queue = op.tx.scalar(
            "SELECT sid FROM task_queues WHERE reservation_activity_sid = ?"
            " OR assignment_activity_sid = ?",
            (sid, sid),
        )
        if queue:
            raise EngineError(
                f"Activity {sid} ({name}) cannot be deleted: TaskQueue {queue} uses it as "
                "its reservation or assignment activity"
            )
        op.tx.delete("activities", sid)
        events.record(
            op,
            workspace_sid,
            "activity.deleted",
            "activity",
            sid,
            f"Activity {name} deleted",
            {"ActivitySid": sid, "ActivityName": name},
        )
