"""Debugger alerts written inside an operation: what went wrong with a callback (the engine
applying an answer) and what routing meets that TaskRouter reports as an error (a known
worker who is not there)."""

from __future__ import annotations

from taskrouter_sandbox.domain.validation import new_sid
from taskrouter_sandbox.domain.values import Alert
from taskrouter_sandbox.state.operation import Operation


def insert(
    op: Operation, workspace_sid: str | None, alert: Alert, reservation_sid: str | None
) -> None:
    op.tx.insert(
        "alerts",
        {
            "sid": new_sid("NO"),
            "workspace_sid": workspace_sid,
            "code": int(alert.code),
            "level": alert.level,
            "message": alert.message,
            "url": alert.url,
            "reservation_sid": reservation_sid,
            "date_created": op.stamp(),
        },
    )
