"""The callback log in a small SQLite file in the instance folder: the embedded default.

Every server process writes to the same file, through one writer thread of its own, so the page
lists callbacks whichever worker got them and a callback never waits on the file.
"""

from __future__ import annotations

import logging
import operator
import os
import sqlite3
from contextlib import closing, suppress
from pathlib import Path

from taskrouter_quickstart.callback_log.rows import DEFAULT_KEEP, FIELDS, Row
from taskrouter_quickstart.callback_log.writer import DEFAULT_QUEUE_SIZE, MAX_BATCH, QueuedLog
from taskrouter_sandbox.store import make_private_directory, make_private_file, tighten_if_present

FILENAME = "callbacks.sqlite3"
# Only the writer thread waits on a locked file, so it may wait as long as a reader would.
WRITE_TIMEOUT_SECONDS = 5.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS assignment_callbacks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at TEXT NOT NULL,
    workspace_sid TEXT,
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
# Files made before the page filtered callbacks by workspace lack this column: it is added on
# open, and their old rows keep NULL there (the page then matches them by their workflow).
_ADDED_COLUMNS = (("workspace_sid", "TEXT"),)
_ROW_MARKS = f"({', '.join('?' for _ in FIELDS)})"
# A batch goes in as a few multi-row INSERTs of powers of two rows (a batch of 20: 16 rows,
# then 4): sqlite3 releases and takes back the GIL around every statement it steps, and
# executemany steps one per row, each time waiting for the request threads to let go. At most
# 64 rows a statement: 640 values, within the 999 an older SQLite binds.
_INSERT_SIZES = (64, 32, 16, 8, 4, 2, 1)
_INSERTS = {
    size: f"INSERT INTO assignment_callbacks ({', '.join(FIELDS)}) VALUES "
    + ", ".join([_ROW_MARKS] * size)
    for size in _INSERT_SIZES
}
# A row's values in FIELDS order: binding by position spares sqlite3 a lookup by name (and
# the name's str made for it) for every value of every row.
_VALUES = operator.itemgetter(*FIELDS)
_TRIM = (
    "DELETE FROM assignment_callbacks WHERE id <= "
    "(SELECT id FROM assignment_callbacks ORDER BY id DESC LIMIT 1 OFFSET ?)"
)


def _migrate(connection: sqlite3.Connection) -> None:
    """Add the columns a file made by an older version lacks, once, whoever opens it first."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        present = {
            row["name"] for row in connection.execute("PRAGMA table_info(assignment_callbacks)")
        }
        for name, kind in _ADDED_COLUMNS:
            if name not in present:
                connection.execute(f"ALTER TABLE assignment_callbacks ADD COLUMN {name} {kind}")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _connect(path: Path, timeout: float) -> sqlite3.Connection:
    # Autocommit mode, so the transactions below are exactly the BEGIN ... COMMIT written.
    connection = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    connection.row_factory = sqlite3.Row
    return connection


class _FileSink:
    """One writer thread's connection to the file, opened at its first batch."""

    def __init__(self, path: Path, keep: int) -> None:
        self.path = path
        self.keep = keep
        self.connection: sqlite3.Connection | None = None

    def write(self, batch: list[Row]) -> None:
        """Insert the batch and trim in one transaction."""
        if self.connection is None:
            self.connection = _connect(self.path, WRITE_TIMEOUT_SECONDS)
            # NORMAL is durable across a crash of this process in WAL mode; a power cut may
            # lose the last callbacks, which the record can afford.
            self.connection.execute("PRAGMA journal_mode=WAL")
            self.connection.execute("PRAGMA synchronous=NORMAL")
        connection = self.connection
        connection.execute("BEGIN IMMEDIATE")
        try:
            start = 0
            for size in _INSERT_SIZES:
                while len(batch) - start >= size:
                    rows = batch[start : start + size]
                    connection.execute(_INSERTS[size], [v for row in rows for v in _VALUES(row)])
                    start += size
            connection.execute(_TRIM, (self.keep,))
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def discard(self) -> None:
        # The file may have been replaced or repaired: the next batch opens it again.
        if self.connection is not None:
            with suppress(sqlite3.Error):
                self.connection.close()
        self.connection = None

    def close(self) -> None:
        self.discard()


class CallbackLog(QueuedLog):
    """The callbacks in an SQLite file, newest first, at most `keep` of them."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        keep: int = DEFAULT_KEEP,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        max_batch: int = MAX_BATCH,
        logger: logging.Logger | None = None,
    ) -> None:
        super().__init__(keep, queue_size=queue_size, max_batch=max_batch, logger=logger)
        self.path = Path(path)
        self.where = str(self.path)
        # The instance folder, made 0700 when this makes it. The rows carry the tasks' and
        # workers' attributes (a caller's data): the file is made 0600 before SQLite makes it
        # (with the umask's 0644), and its -wal and -shm take their mode from it; a file an
        # older version made readable is tightened. Once, here, before any connection to it:
        # see make_private_file.
        make_private_directory(self.path.parent)
        make_private_file(self.path)
        for suffix in ("-wal", "-shm"):
            tighten_if_present(f"{self.path}{suffix}")
        # Opened here, on the caller's thread, so a bad path is a start-up error.
        with closing(_connect(self.path, timeout=5.0)) as connection:
            # WAL lets the page read while another worker writes.
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(_SCHEMA)
            _migrate(connection)

    def _make_sink(self) -> _FileSink:
        return _FileSink(self.path, self.keep)

    def recent(
        self,
        limit: int = 20,
        *,
        workspace_sid: str | None = None,
        workflow_sid: str | None = None,
    ) -> list[Row]:
        """The newest callbacks first, as plain dicts of FIELDS, this process's included.

        With workspace_sid, only that workspace's (rows.in_workspace): a callback from a wiped
        or other workspace is not this one's to answer.
        """
        self._flush_for_reading()
        columns = ", ".join(FIELDS)
        where, params = "", {"limit": limit}
        if workspace_sid is not None:
            # rows.in_workspace, in SQL.
            where = (
                "WHERE workspace_sid = :workspace_sid"
                " OR (workspace_sid IS NULL AND workflow_sid = :workflow_sid)"
            )
            params.update(workspace_sid=workspace_sid, workflow_sid=workflow_sid)
        with closing(_connect(self.path, timeout=5.0)) as connection:
            rows = connection.execute(
                f"SELECT {columns} FROM assignment_callbacks {where} ORDER BY id DESC LIMIT :limit",
                params,
            ).fetchall()
        return [dict(row) for row in rows]

    def count(self) -> int:
        self.flush()
        with closing(_connect(self.path, timeout=5.0)) as connection:
            return int(
                connection.execute("SELECT COUNT(*) FROM assignment_callbacks").fetchone()[0]
            )
