"""The record of assignment callbacks received, kept in a small SQLite file in the instance folder.

Every server process writes to the same file, so the page lists callbacks whichever worker got them.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

from flask import Flask

EXTENSION_KEY = "callback_log"
FILENAME = "callbacks.sqlite3"
DEFAULT_KEEP = 200
# The callback must answer TaskRouter within 5 s; a locked file is not worth waiting on.
WRITE_TIMEOUT_SECONDS = 1.0

FIELDS = (
    "received_at",
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

_SCHEMA = """
CREATE TABLE IF NOT EXISTS assignment_callbacks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at TEXT NOT NULL,
    reservation_sid TEXT,
    task_sid TEXT,
    worker_sid TEXT,
    task_queue_sid TEXT,
    workflow_sid TEXT,
    task_attributes TEXT,
    worker_attributes TEXT,
    answer TEXT NOT NULL
)
"""


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _clip(value: object, limit: int) -> str | None:
    if value is None:
        return None
    return str(value)[:limit]


class CallbackLog:
    """Bounded, newest-first record of callbacks, one short connection per operation."""

    def __init__(self, path: str | os.PathLike[str], keep: int = DEFAULT_KEEP) -> None:
        if keep < 1:
            raise ValueError("keep must be at least 1")
        self.path = Path(path)
        self.keep = keep
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect(timeout=5.0)) as connection:
            # WAL lets the page read while another worker writes.
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(_SCHEMA)

    def _connect(self, timeout: float = WRITE_TIMEOUT_SECONDS) -> sqlite3.Connection:
        # Autocommit mode, so the transactions below are exactly the BEGIN ... COMMIT written.
        connection = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        connection.row_factory = sqlite3.Row
        return connection

    def record(self, fields: Mapping[str, object]) -> None:
        """Insert one callback and trim to the newest `keep` rows in the same transaction."""
        row = {
            "received_at": _clip(fields.get("received_at") or utc_now_iso(), 32),
            "reservation_sid": _clip(fields.get("reservation_sid"), MAX_SID_LENGTH),
            "task_sid": _clip(fields.get("task_sid"), MAX_SID_LENGTH),
            "worker_sid": _clip(fields.get("worker_sid"), MAX_SID_LENGTH),
            "task_queue_sid": _clip(fields.get("task_queue_sid"), MAX_SID_LENGTH),
            "workflow_sid": _clip(fields.get("workflow_sid"), MAX_SID_LENGTH),
            "task_attributes": _clip(fields.get("task_attributes"), MAX_ATTRIBUTES_LENGTH),
            "worker_attributes": _clip(fields.get("worker_attributes"), MAX_ATTRIBUTES_LENGTH),
            "answer": _clip(fields.get("answer") or "", MAX_ATTRIBUTES_LENGTH),
        }
        columns = ", ".join(FIELDS)
        placeholders = ", ".join(f":{name}" for name in FIELDS)
        with closing(self._connect()) as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.execute(
                    f"INSERT INTO assignment_callbacks ({columns}) VALUES ({placeholders})",
                    row,
                )
                connection.execute(
                    "DELETE FROM assignment_callbacks WHERE id <= "
                    "(SELECT id FROM assignment_callbacks ORDER BY id DESC LIMIT 1 OFFSET ?)",
                    (self.keep,),
                )
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def recent(self, limit: int = 20) -> list[dict[str, str | None]]:
        """The newest callbacks first, as plain dicts of FIELDS."""
        columns = ", ".join(FIELDS)
        with closing(self._connect(timeout=5.0)) as connection:
            rows = connection.execute(
                f"SELECT {columns} FROM assignment_callbacks ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [dict(row) for row in rows]

    def count(self) -> int:
        with closing(self._connect(timeout=5.0)) as connection:
            return int(
                connection.execute("SELECT COUNT(*) FROM assignment_callbacks").fetchone()[0]
            )


def init_app(app: Flask) -> None:
    """Open the callback log (CALLBACK_LOG_PATH, or a file in the instance folder)."""
    path = app.config.get("CALLBACK_LOG_PATH") or os.path.join(app.instance_path, FILENAME)
    keep = int(app.config.get("CALLBACK_LOG_KEEP", DEFAULT_KEEP))
    app.extensions[EXTENSION_KEY] = CallbackLog(path, keep=keep)
