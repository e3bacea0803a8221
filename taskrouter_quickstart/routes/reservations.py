"""/accept_reservation and /reject_reservation: answer a pending Reservation over REST.

This is step 4 of the quickstart, for when the assignment callback answered `{}`.
Parameters come in the query string, a form, or a JSON object body.
"""

from __future__ import annotations

from flask import Blueprint, jsonify

from taskrouter_quickstart.routes import (
    ApiError,
    BodyField,
    accepts_body,
    check_sid,
    parameter,
    require_sid,
)
from taskrouter_quickstart.security import control_required
from taskrouter_quickstart.taskrouter import current_taskrouter

bp = Blueprint("reservations", __name__)

# The same fields for both views, so accept names WorkerActivitySid in its own refusal.
RESERVATION_FIELDS = (
    BodyField("TaskSid", aliases=("task_sid",)),
    BodyField("ReservationSid", aliases=("reservation_sid",)),
    BodyField("WorkerActivitySid", aliases=("worker_activity_sid",)),
)


def _update_reservation(reservation_status: str, worker_activity_allowed: bool):
    task_sid = require_sid("TaskSid", ("task_sid",), "WT")
    reservation_sid = require_sid("ReservationSid", ("reservation_sid",), "WR")
    worker_activity_sid = parameter("WorkerActivitySid", "worker_activity_sid")
    if worker_activity_sid is not None:
        if not worker_activity_allowed:
            raise ApiError(
                400,
                "invalid_parameter",
                "WorkerActivitySid applies to /reject_reservation only",
            )
        check_sid("WorkerActivitySid", worker_activity_sid, "WA")

    reservation = current_taskrouter().update_reservation(
        task_sid,
        reservation_sid,
        reservation_status,
        worker_activity_sid=worker_activity_sid,
    )
    return jsonify(
        {
            "task_sid": reservation.task_sid,
            "reservation_sid": reservation.sid,
            "reservation_status": reservation.reservation_status,
            "worker_sid": reservation.worker_sid,
            "worker_name": reservation.worker_name,
        }
    )


@bp.route("/accept-reservation", methods=("GET", "POST"))
@bp.route("/accept_reservation", methods=("GET", "POST"))
@control_required
@accepts_body(*RESERVATION_FIELDS)
def accept_reservation():
    return _update_reservation("accepted", worker_activity_allowed=False)


@bp.route("/reject-reservation", methods=("GET", "POST"))
@bp.route("/reject_reservation", methods=("GET", "POST"))
@control_required
@accepts_body(*RESERVATION_FIELDS)
def reject_reservation():
    """Reject; the optional WorkerActivitySid moves the worker (e.g. Offline) at the same time."""
    return _update_reservation("rejected", worker_activity_allowed=True)
