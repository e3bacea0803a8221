"""What one recorded callback holds, whichever store keeps it, and the limits on its values."""

from __future__ import annotations

import time
from collections.abc import Mapping

DEFAULT_KEEP = 200
FIELDS = (
    "received_at",
    "workspace_sid",
    "reservation_sid",
    "task_sid",
    "worker_sid",
    "task_queue_sid",
    "workflow_sid",
    "task_attributes",
    "worker_attributes",
    "answer",
)
# Only a signed (or, with checks off, anyone's) body reaches here: cap what one row may hold.
MAX_SID_LENGTH = 64
MAX_ATTRIBUTES_LENGTH = 16_384

Row = dict[str, str | None]


class CallbackLogError(Exception):
    """The log's store cannot be read; the message is one line for the page (no secrets)."""


_now_second: tuple[int, str] = (0, "")


def utc_now_iso() -> str:
    # Formatted once a second (time's strftime, a third of datetime's): on every callback.
    global _now_second
    second = int(time.time())
    kept = _now_second  # read once: another thread may replace it meanwhile
    if kept[0] != second:
        kept = _now_second = (second, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second)))
    return kept[1]


# Each field and the most it may hold (the SIDs MAX_SID_LENGTH), in FIELDS' order.
_LONGER = {
    "received_at": 32,
    "task_attributes": MAX_ATTRIBUTES_LENGTH,
    "worker_attributes": MAX_ATTRIBUTES_LENGTH,
    "answer": MAX_ATTRIBUTES_LENGTH,
}
_LIMITS = tuple((name, _LONGER.get(name, MAX_SID_LENGTH)) for name in FIELDS)


def make_row(fields: Mapping[str, object]) -> Row:
    row: Row = {}
    for name, limit in _LIMITS:
        value = fields.get(name)
        if value is not None and (type(value) is not str or len(value) > limit):
            value = str(value)[:limit]
        row[name] = value
    # What the row must hold: the time it was received and an answer (empty when not said).
    if not fields.get("received_at"):
        row["received_at"] = utc_now_iso()
    if not fields.get("answer"):
        row["answer"] = ""
    return row


def in_workspace(row: Mapping[str, object], workspace_sid: str, workflow_sid: str | None) -> bool:
    """The page's filter: the workspace's rows, and rows recorded without a workspace (by an
    older version) that came from its configured workflow."""
    if row.get("workspace_sid") is not None:
        return row.get("workspace_sid") == workspace_sid
    return workflow_sid is not None and row.get("workflow_sid") == workflow_sid
