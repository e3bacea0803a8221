"""Alerts: what went wrong with a callback (Twilio's debugger codes), kept for the console
and served like Monitor's /v1/Alerts."""

from __future__ import annotations

from typing import Any

from taskrouter_sandbox.domain import validation as check
from taskrouter_sandbox.domain.errors import EngineError, NotFound
from taskrouter_sandbox.domain.values import ALERT_LEVELS, Alert, Paging
from taskrouter_sandbox.engine.listing import paged
from taskrouter_sandbox.engine.operations import Operations
from taskrouter_sandbox.state import reads
from taskrouter_sandbox.state.alerts import insert
from taskrouter_sandbox.store import Order, Page


def record_alert(ops: Operations, alert: Alert, workspace_sid: str | None = None) -> None:
    """Keep an alert for the console; event deliveries land here."""
    with ops.write() as op:
        insert(op, workspace_sid, alert, None)


def list_alerts(
    ops: Operations, workspace_sid: str | None, limit: int = 50
) -> list[dict[str, Any]]:
    """Newest first: the workspace's alerts plus those tied to no workspace (event
    deliveries); with workspace_sid None, every alert."""
    check.integer(limit, "Limit", 1, 1000)
    with ops.read() as op:
        if workspace_sid is None:
            return op.tx.all("SELECT * FROM alerts ORDER BY seq DESC LIMIT ?", (limit,))
        reads.workspace(op, workspace_sid)
        return op.tx.all(
            "SELECT * FROM alerts WHERE workspace_sid = ? OR workspace_sid IS NULL"
            " ORDER BY seq DESC LIMIT ?",
            (workspace_sid, limit),
        )


def get_alert(ops: Operations, sid: str) -> dict[str, Any]:
    with ops.read() as op:
        row = op.tx.one("SELECT * FROM alerts WHERE sid = ?", (sid,))
    if row is None:
        raise NotFound(f"Alert {sid} not found")
    return row


def page_alerts(ops: Operations, paging: Paging, *, log_level: str | None = None) -> Page:
    """Every alert, newest first, paged like the REST lists (Monitor's /v1/Alerts)."""
    if log_level is not None and log_level not in ALERT_LEVELS:
        raise EngineError(f"LogLevel must be error or warning, got {log_level!r}")
    where, params = [], []
    if log_level is not None:
        where.append("al.level = ?")
        params.append(log_level)
    with ops.read() as op:
        return paged(
            op.tx,
            paging,
            select="SELECT al.* FROM alerts al",
            where=where,
            params=params,
            order=[Order("al.seq", "seq", True)],
        )
