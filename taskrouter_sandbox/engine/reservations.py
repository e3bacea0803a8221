"""Reservations: a task offered to a worker. Fetch and list (under a task or a worker),
reserve (routing's step, also callable directly), update (accept, reject, wrap up, complete,
or an instruction), and apply what an assignment callback answered."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from taskrouter_sandbox.domain.errors import EngineError, NotFound
from taskrouter_sandbox.domain.lifecycle import (
    INSTRUCTIONS,
    RESERVATION_STATUSES,
    check_reservation_request,
    instruction_target,
)
from taskrouter_sandbox.domain.validation import attributes as parse_attributes
from taskrouter_sandbox.domain.validation import new_sid
from taskrouter_sandbox.domain.values import (
    ALERT_INVALID_INSTRUCTION,
    Actor,
    Alert,
    AssignmentOutcome,
    Paging,
)
from taskrouter_sandbox.domain.versions import check_if_match
from taskrouter_sandbox.engine import alerts
from taskrouter_sandbox.engine.listing import paged
from taskrouter_sandbox.engine.operations import Operations
from taskrouter_sandbox.state import events, reads, transitions
from taskrouter_sandbox.state.operation import Operation
from taskrouter_sandbox.store import Order, Page

logger = logging.getLogger(__name__)


def get_reservation(
    ops: Operations,
    workspace_sid: str,
    sid: str,
    *,
    task_sid: str | None = None,
    worker_sid: str | None = None,
) -> dict[str, Any]:
    with ops.read() as op:
        return _scoped(op, workspace_sid, sid, task_sid, worker_sid)


def _scoped(
    op: Operation,
    workspace_sid: str,
    sid: str,
    task_sid: str | None,
    worker_sid: str | None,
) -> dict[str, Any]:
    """A reservation under its task's or worker's path (else NotFound)."""
    if task_sid is not None:
        reads.task(op, workspace_sid, task_sid)
    if worker_sid is not None:
        reads.worker(op, workspace_sid, worker_sid)
    reservation = reads.reservation(op, workspace_sid, sid)
    if (task_sid is not None and reservation["task_sid"] != task_sid) or (
        worker_sid is not None and reservation["worker_sid"] != worker_sid
    ):
        owner = task_sid or worker_sid
        raise NotFound(f"Reservation {sid} does not belong to {owner}")
    return reservation


def list_reservations(
    ops: Operations,
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
    with ops.read() as op:
        where, params = ["r.workspace_sid = ?"], [workspace_sid]
        if task_sid is not None:
            reads.task(op, workspace_sid, task_sid)
            where.append("r.task_sid = ?")
            params.append(task_sid)
        if worker_sid is not None:
            reads.worker(op, workspace_sid, worker_sid)
            where.append("r.worker_sid = ?")
            params.append(worker_sid)
        if task_sid is None and worker_sid is None:
            reads.workspace(op, workspace_sid)
        if filter_worker_sid is not None:
            where.append("r.worker_sid = ?")
            params.append(filter_worker_sid)
        if reservation_status is not None:
            where.append("r.reservation_status = ?")
            params.append(reservation_status)
        return paged(
            op.tx,
            paging,
            select=reads.RESERVATION_SELECT,
            where=where,
            params=params,
            order=[Order("r.seq", "seq")],
        )


def reserve(
    ops: Operations,
    workspace_sid: str,
    task_sid: str,
    worker_sid: str,
    *,
    actor: Actor | None = None,
) -> dict[str, Any]:
    """Offer a pending task to an eligible worker (transitions.reserve), in its own operation."""
    with ops.write() as op:
        sid = transitions.reserve(
            op, workspace_sid, task_sid, worker_sid, actor or Actor.workspace(workspace_sid)
        )
        return reads.reservation(op, workspace_sid, sid)


def update_reservation(
    ops: Operations,
    workspace_sid: str,
    sid: str,
    *,
    task_sid: str | None = None,
    worker_sid: str | None = None,
    reservation_status: str | None = None,
    worker_activity_sid: str | None = None,
    instruction: str | None = None,
    instruction_params: Mapping[str, Any] | None = None,
    if_match: str | None = None,
) -> dict[str, Any]:
    """Accept, reject, wrap up or complete a reservation, or give it an instruction
    (only if if_match, an If-Match header, names its current ETag, when given).

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
    if instruction is not None:
        flag = INSTRUCTIONS[instruction].accept_parameter
        target = instruction_target(instruction, bool(flag and params.get(flag)))
    with ops.write() as op:
        reservation = _scoped(op, workspace_sid, sid, task_sid, worker_sid)
        check_if_match(if_match, reservation["version"], f"Reservation {sid}")
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
            activity = reads.referenced_activity(
                op, workspace_sid, worker_activity_sid, "WorkerActivitySid"
            )
        if instruction is not None:
            if status != "pending":
                raise EngineError(
                    f"Reservation {sid} is already in state [{status}] and cannot be given "
                    f"the instruction [{instruction}]"
                )
            _record_instruction(op, reservation, {"instruction": instruction, **params})
        if target is None:
            return reads.reservation(op, workspace_sid, sid)
        check_reservation_request(sid, status, target)
        if target == "accepted":
            transitions.accept(op, reservation)
        elif target == "rejected":
            transitions.reject(op, reservation, activity)
        elif target == "wrapping":
            transitions.wrap_task(op, workspace_sid, reservation["task_sid"])
        else:
            transitions.finish_task(op, workspace_sid, reservation["task_sid"], "completed", None)
        return reads.reservation(op, workspace_sid, sid)


def apply_assignment_outcome(ops: Operations, outcome: AssignmentOutcome) -> None:
    """Apply what an assignment callback answered.

    Its alerts are recorded whatever happens; the instruction applies only while the
    reservation is still pending (it may have been accepted over REST, or timed out).
    """
    with ops.write() as op:
        reservation = reads.reservation_row(op, outcome.reservation_sid)
        if reservation is None:
            logger.info(
                "assignment callback answer for unknown reservation %s ignored",
                outcome.reservation_sid,
            )
            return
        workspace_sid = reservation["workspace_sid"]
        for alert in outcome.alerts:
            alerts.insert(op, workspace_sid, alert, reservation["sid"])
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
            _record_instruction(
                op, reservation, {"instruction": outcome.instruction, **outcome.params}
            )
        if outcome.accept:
            transitions.accept(op, reservation)
        elif outcome.reject:
            activity = None
            if outcome.activity_sid:
                activity = op.tx.one(
                    reads.ACTIVITY_SELECT + " WHERE a.sid = ? AND a.workspace_sid = ?",
                    (outcome.activity_sid, workspace_sid),
                )
                if activity is None:
                    alerts.insert(
                        op,
                        workspace_sid,
                        Alert(
                            ALERT_INVALID_INSTRUCTION,
                            "error",
                            f"reject instruction names activity_sid {outcome.activity_sid}, "
                            f"which is not an Activity of workspace {workspace_sid}; the "
                            "worker keeps its activity",
                            outcome.url_used,
                        ),
                        reservation["sid"],
                    )
            transitions.reject(op, reservation, activity)


def _record_instruction(
    op: Operation, reservation: dict[str, Any], instruction: dict[str, Any]
) -> None:
    """Keep the instruction a pending reservation was given, and add to its task what that
    instruction documents it adds: dequeue and call place a call to the worker and add its
    SID to the task's attributes as worker_call_sid (a new call replaces an older one's)."""
    op.tx.update(
        "reservations",
        reservation["sid"],
        {"instruction": json.dumps(instruction, default=str)},
    )
    if not INSTRUCTIONS[instruction["instruction"]].calls_worker:
        return
    workspace_sid, task_sid = reservation["workspace_sid"], reservation["task_sid"]
    task = reads.task(op, workspace_sid, task_sid)
    attributes = {**parse_attributes(task["attributes"]), "worker_call_sid": new_sid("CA")}
    op.tx.update(
        "tasks", task_sid, {"attributes": json.dumps(attributes), "date_updated": op.stamp()}
    )
    events.record(
        op,
        workspace_sid,
        "task.updated",
        "task",
        task_sid,
        f"Task {task_sid} updated",
        events.task_fields(op, task_sid),
    )
