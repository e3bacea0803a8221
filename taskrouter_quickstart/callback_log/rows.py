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


def utc_now_iso() -> str:
    # time's strftime over gmtime: a third of what datetime's costs, on every callback.
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _clip(value: object, limit: int) -> str | None:
    if value is None:
        return None
    return str(value)[:limit]


def make_row(fields: Mapping[str, object]) -> Row:
    return {
        "received_at": _clip(fields.get("received_at") or utc_now_iso(), 32),
        "workspace_sid": _clip(fields.get("workspace_sid"), MAX_SID_LENGTH),
        "reservation_sid": _clip(fields.get("reservation_sid"), MAX_SID_LENGTH),
        "task_sid": _clip(fields.get("task_sid"), MAX_SID_LENGTH),
        "worker_sid": _clip(fields.get("worker_sid"), MAX_SID_LENGTH),
        "task_queue_sid": _clip(fields.get("task_queue_sid"), MAX_SID_LENGTH),
        "workflow_sid": _clip(fields.get("workflow_sid"), MAX_SID_LENGTH),
        "task_attributes": _clip(fields.get("task_attributes"), MAX_ATTRIBUTES_LENGTH),
        "worker_attributes": _clip(fields.get("worker_attributes"), MAX_ATTRIBUTES_LENGTH),
        "answer": _clip(fields.get("answer") or "", MAX_ATTRIBUTES_LENGTH),
    }


def in_workspace(row: Mapping[str, object], workspace_sid: str, workflow_sid: str | None) -> bool:
    """The page's filter: the workspace's rows, and rows recorded without a workspace (by an
    older version) that came from its configured workflow."""
    if row.get("workspace_sid") is not None:
        return row.get("workspace_sid") == workspace_sid
    return workflow_sid is not None and row.get("workflow_sid") == workflow_sid
