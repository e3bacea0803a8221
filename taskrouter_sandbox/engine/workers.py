"""Workers: create, fetch, list (with Twilio's filters), update (activity, attributes, name),
delete. An activity change is a status move: state/transitions.py makes it."""

from __future__ import annotations

from typing import Any

from taskrouter_sandbox import expressions
from taskrouter_sandbox.domain import validation as check
from taskrouter_sandbox.domain.errors import EngineError
from taskrouter_sandbox.domain.validation import attributes as parse_attributes
from taskrouter_sandbox.domain.validation import new_sid
from taskrouter_sandbox.domain.values import Paging
from taskrouter_sandbox.domain.versions import check_if_match
from taskrouter_sandbox.engine import queues
from taskrouter_sandbox.engine.listing import paged, parse_ordering
from taskrouter_sandbox.engine.operations import Operations
from taskrouter_sandbox.engine.worker_channels import add_for_worker
from taskrouter_sandbox.state import events, membership, reads, transitions
from taskrouter_sandbox.state.operation import Operation
from taskrouter_sandbox.store import Page

ORDER_COLUMNS = {
    "datecreated": ("k.date_created", "date_created"),
    "datestatuschanged": ("k.date_status_changed", "date_status_changed"),
}


def get_worker(ops: Operations, workspace_sid: str, sid: str) -> dict[str, Any]:
    with ops.read() as op:
        return reads.worker(op, workspace_sid, sid)


def list_workers(
    ops: Operations,
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
    order = parse_ordering(ordering, ORDER_COLUMNS, "k")
    matchers: list[expressions.Expression] = []
    if target_workers_expression is not None:
        matchers.append(check.expression(target_workers_expression, "TargetWorkersExpression"))
    with ops.read() as op:
        reads.workspace(op, workspace_sid)
        if task_queue_sid is not None or task_queue_name is not None:
            matchers.append(
                expressions.parse(
                    queues.named(op, workspace_sid, sid=task_queue_sid, name=task_queue_name)[
                        "target_workers"
                    ]
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
            worker_attributes = parse_attributes(row["attributes"])
            return all(matcher.evaluate(worker_attributes) for matcher in matchers)

        return paged(
            op.tx,
            paging,
            select=reads.WORKER_SELECT,
            where=where,
            params=params,
            order=order,
            predicate=matches if matchers else None,
        )


def _check_name(
    op: Operation, workspace_sid: str, friendly_name: str, sid: str | None = None
) -> None:
    clash = op.tx.scalar(
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
    ops: Operations,
    workspace_sid: str,
    friendly_name: str,
    *,
    activity_sid: str | None = None,
    attributes: str | None = None,
) -> dict[str, Any]:
    check.text(friendly_name, "FriendlyName")
    attributes = check.json_object("{}" if attributes is None else attributes, "Attributes")
    with ops.write() as op:
        workspace = reads.workspace(op, workspace_sid)
        _check_name(op, workspace_sid, friendly_name)
        if activity_sid is None:
            activity_sid = workspace["default_activity_sid"]
            if activity_sid is None:
                raise EngineError("ActivitySid is required: the workspace has no default activity")
        activity = reads.referenced_activity(op, workspace_sid, activity_sid, "ActivitySid")
        stamp = op.stamp()
        sid = new_sid("WK")
        transitions.insert_worker(
            op,
            {
                "sid": sid,
                "workspace_sid": workspace_sid,
                "friendly_name": friendly_name,
                "friendly_name_key": friendly_name.lower(),
                "attributes": attributes,
                "date_created": stamp,
                "date_updated": stamp,
            },
            activity,
        )
        add_for_worker(op, workspace_sid, sid)
        membership.sync_worker(op, sid)
        events.record(
            op,
            workspace_sid,
            "worker.created",
            "worker",
            sid,
            f"Worker {friendly_name} created",
            events.worker_fields(op, sid),
        )
        op.route_again("worker.created", workspace_sid, sid)
        return reads.worker(op, workspace_sid, sid)


def update_worker(
    ops: Operations,
    workspace_sid: str,
    sid: str,
    *,
    activity_sid: str | None = None,
    attributes: str | None = None,
    friendly_name: str | None = None,
    reject_pending_reservations: bool = False,
    if_match: str | None = None,
) -> dict[str, Any]:
    """if_match: an If-Match header; the update applies only if it names the current ETag."""
    if attributes is not None:
        check.json_object(attributes, "Attributes")
    if friendly_name is not None:
        check.text(friendly_name, "FriendlyName")
    with ops.write() as op:
        worker = reads.worker(op, workspace_sid, sid)
        check_if_match(if_match, worker["version"], f"Worker {sid}")
        activity = None
        if activity_sid is not None:
            activity = reads.referenced_activity(op, workspace_sid, activity_sid, "ActivitySid")
        if reject_pending_reservations:
            if activity is None or activity["available"]:
                raise EngineError(
                    "RejectPendingReservations is only valid together with an ActivitySid "
                    "whose activity is unavailable"
                )
            for reservation in op.tx.all(
                reads.RESERVATION_SELECT
                + " WHERE r.worker_sid = ? AND r.reservation_status = 'pending'",
                (sid,),
            ):
                transitions.reject(op, reservation, activity=None)
            worker = reads.worker(op, workspace_sid, sid)
        if friendly_name is not None and friendly_name != worker["friendly_name"]:
            _check_name(op, workspace_sid, friendly_name, sid)
            op.tx.update(
                "workers",
                sid,
                {
                    "friendly_name": friendly_name,
                    "friendly_name_key": friendly_name.lower(),
                    "date_updated": op.stamp(),
                },
            )
        if attributes is not None and attributes != worker["attributes"]:
            op.tx.update("workers", sid, {"attributes": attributes, "date_updated": op.stamp()})
            membership.sync_worker(op, sid)
            events.record(
                op,
                workspace_sid,
                "worker.attributes.update",
                "worker",
                sid,
                f"Worker {worker['friendly_name']} attributes updated",
                events.worker_fields(op, sid),
            )
            op.route_again("worker.attributes.update", workspace_sid, sid)
        if activity is not None:
            transitions.move_worker(op, reads.worker(op, workspace_sid, sid), activity)
        return reads.worker(op, workspace_sid, sid)


def delete_worker(
    ops: Operations, workspace_sid: str, sid: str, *, if_match: str | None = None
) -> None:
    with ops.write() as op:
        worker = reads.worker(op, workspace_sid, sid)
        check_if_match(if_match, worker["version"], f"Worker {sid}")
        busy = op.tx.scalar(
            "SELECT count(*) FROM reservations WHERE worker_sid = ?"
            f" AND reservation_status IN ({reads.OPEN_RESERVATIONS})",
            (sid,),
        )
        if busy:
            raise EngineError(
                f"Worker {sid} ({worker['friendly_name']}) cannot be deleted while it holds "
                f"{busy} pending or accepted reservation(s)"
            )
        fields = events.worker_fields(op, sid)
        op.tx.delete("workers", sid)
        events.record(
            op,
            workspace_sid,
            "worker.deleted",
            "worker",
            sid,
            f"Worker {worker['friendly_name']} deleted",
            fields,
        )
