"""The record of assignment callbacks received, kept in a small SQLite file in the instance folder.

Every server process writes to the same file, through one writer thread of its own, so the page
lists callbacks whichever worker got them and a callback never waits on the file.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import weakref
from collections import deque
from collections.abc import Mapping
from contextlib import closing, suppress
from datetime import UTC, datetime
from pathlib import Path

from flask import Flask

from taskrouter_sandbox.store import make_private_directory, make_private_file, tighten_if_present

EXTENSION_KEY = "callback_log"
FILENAME = "callbacks.sqlite3"
DEFAULT_KEEP = 200
# Rows waiting for the writer: enough for bursts, small enough that a stuck file costs little
# memory (a row holds at most two attribute strings of MAX_ATTRIBUTES_LENGTH).
DEFAULT_QUEUE_SIZE = 1_000
MAX_BATCH = 500
# After a write the writer rests this long before the next, so that under a burst of callbacks
# it commits one transaction for many rows instead of one per row; a lone callback is written
# at once.
BATCH_INTERVAL_SECONDS = 0.02
# Only the writer thread waits on a locked file, so it may wait as long as a reader would.
WRITE_TIMEOUT_SECONDS = 5.0
# How long the page waits for this process's queued rows before showing what is in the file.
FLUSH_TIMEOUT_SECONDS = 2.0
CLOSE_TIMEOUT_SECONDS = 5.0
# Under overload, one warning a second says how many rows were dropped, not one per row.
DROP_WARNING_INTERVAL_SECONDS = 1.0

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
_INSERT = (
    f"INSERT INTO assignment_callbacks ({', '.join(FIELDS)}) "
    f"VALUES ({', '.join(f':{name}' for name in FIELDS)})"
)
_TRIM = (
    "DELETE FROM assignment_callbacks WHERE id <= "
    "(SELECT id FROM assignment_callbacks ORDER BY id DESC LIMIT 1 OFFSET ?)"
)

_logger = logging.getLogger(__name__)


def utc_now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _clip(value: object, limit: int) -> str | None:
    if value is None:
        return None
    return str(value)[:limit]


def _row(fields: Mapping[str, object]) -> dict[str, str | None]:
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


class _ProcessWriter:
    """One process's queue and the thread draining it into the file, a batch per transaction.

    It belongs to the process that made it (pid): a forked child makes its own, since the
    thread does not survive fork and the rows queued before it are the parent's to write.
    """

    def __init__(
        self,
        path: Path,
        keep: int,
        queue_size: int,
        max_batch: int,
        logger: logging.Logger,
    ) -> None:
        self.pid = os.getpid()
        self.path = path
        self.keep = keep
        self.queue_size = queue_size
        self.max_batch = max_batch
        self.logger = logger
        self.batches = 0
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._written = threading.Condition(self._lock)
        self._rows: deque[dict[str, str | None]] = deque()
        # Rows accepted into the queue, and rows the writer has finished with (written or not).
        self._queued = 0
        self._done = 0
        self.stopping = False
        self._dropped = 0
        self._last_drop_warning = float("-inf")
        self.thread = threading.Thread(
            target=self._run, name=f"callback-log-writer-{self.pid}", daemon=True
        )
        self.thread.start()

    def put(self, row: dict[str, str | None]) -> bool:
        with self._lock:
            if self.stopping:
                self._note_drop("the callback log is closed")
                return False
            if len(self._rows) >= self.queue_size:
                self._note_drop(f"its queue holds {self.queue_size} rows the writer has not taken")
                return False
            self._rows.append(row)
            self._queued += 1
            self._work.notify()
        return True

    def _note_drop(self, reason: str) -> None:
        # Called with the lock held; logging here is rare (once a second at most).
        self._dropped += 1
        now = time.monotonic()
        if now - self._last_drop_warning >= DROP_WARNING_INTERVAL_SECONDS:
            self.logger.warning(
                "Dropped %d callback record(s) for %s: %s", self._dropped, self.path, reason
            )
            self._dropped = 0
            self._last_drop_warning = now

    def flush(self, timeout: float) -> bool:
        """Wait until the rows queued before this call are written; False on timeout."""
        with self._lock:
            target = self._queued
            return self._written.wait_for(lambda: self._done >= target, timeout)

    def close(self, timeout: float = CLOSE_TIMEOUT_SECONDS) -> None:
        """Write what is queued and stop the thread (in the process that started it only)."""
        if self.pid != os.getpid():
            # A forked child's copy: its thread and queue are the parent's, and its lock may
            # have been held at the fork.
            return
        with self._lock:
            self.stopping = True
            self._work.notify()
        if threading.current_thread() is not self.thread:
            self.thread.join(timeout)

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        try:
            while True:
                with self._lock:
                    while not self._rows and not self.stopping:
                        self._work.wait()
                    if not self._rows:
                        return
                    batch = [
                        self._rows.popleft() for _ in range(min(len(self._rows), self.max_batch))
                    ]
                connection = self._write(connection, batch)
                with self._lock:
                    self._done += len(batch)
                    self._written.notify_all()
                    resting = not self.stopping
                if resting:
                    time.sleep(BATCH_INTERVAL_SECONDS)
        finally:
            if connection is not None:
                connection.close()

    def _write(
        self, connection: sqlite3.Connection | None, batch: list[dict[str, str | None]]
    ) -> sqlite3.Connection | None:
        """Insert the batch and trim in one transaction; the connection to reuse, if any."""
        try:
            if connection is None:
                connection = _connect(self.path, WRITE_TIMEOUT_SECONDS)
                # NORMAL is durable across a crash of this process in WAL mode; a power cut may
                # lose the last callbacks, which the record can afford.
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.executemany(_INSERT, batch)
                connection.execute(_TRIM, (self.keep,))
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
            self.batches += 1
            return connection
        except Exception as exc:
            # Nobody waits on this thread: say what was lost and start afresh with the next batch
            # (the file may have been replaced or repaired meanwhile).
            self.logger.warning(
                "Could not record %d callback(s) in %s: %s", len(batch), self.path, exc
            )
            if connection is not None:
                with suppress(sqlite3.Error):
                    connection.close()
            return None


class CallbackLog:
    """Bounded, newest-first record of callbacks; record() queues, a writer thread writes."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        keep: int = DEFAULT_KEEP,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        max_batch: int = MAX_BATCH,
        logger: logging.Logger | None = None,
    ) -> None:
        if keep < 1:
            raise ValueError("keep must be at least 1")
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.path = Path(path)
        self.keep = keep
        self.queue_size = queue_size
        self.max_batch = max_batch
        self.logger = logger or _logger
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
        self._writer: _ProcessWriter | None = None
        self._finalizer: weakref.finalize | None = None
        self._writer_lock = threading.Lock()
        # The writer lock guards only the swap below; a child gets a fresh one in case another
        # thread held it at the fork.
        reference = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _reset_writer_lock(reference))

    def _current_writer(self, start: bool) -> _ProcessWriter | None:
        writer = self._writer
        if writer is not None and writer.pid == os.getpid() and not writer.stopping:
            return writer
        if not start:
            return writer if writer is not None and writer.pid == os.getpid() else None
        with self._writer_lock:
            writer = self._writer
            if writer is None or writer.pid != os.getpid() or writer.stopping:
                writer = _ProcessWriter(
                    self.path, self.keep, self.queue_size, self.max_batch, self.logger
                )
                self._writer = writer
                # Writes what is queued when the log is dropped or the interpreter exits.
                self._finalizer = weakref.finalize(self, writer.close)
        return writer

    def record(self, fields: Mapping[str, object]) -> bool:
        """Queue one callback for this process's writer; False if it had to be dropped.

        Never touches the file and never blocks: the writer inserts it and trims to the
        newest `keep` rows in one transaction with whatever else is queued.
        """
        writer = self._current_writer(start=True)
        assert writer is not None
        return writer.put(_row(fields))

    def flush(self, timeout: float = FLUSH_TIMEOUT_SECONDS) -> bool:
        """Wait for this process's writer to finish what was queued before the call."""
        writer = self._current_writer(start=False)
        return writer is None or writer.flush(timeout)

    def close(self) -> None:
        """Write what is queued and stop this process's writer (record() starts a new one)."""
        finalizer = self._finalizer
        if finalizer is not None:
            finalizer()

    @property
    def batches(self) -> int:
        """Transactions this process's writer has committed."""
        writer = self._current_writer(start=False)
        return writer.batches if writer is not None else 0

    def recent(
        self,
        limit: int = 20,
        *,
        workspace_sid: str | None = None,
        workflow_sid: str | None = None,
    ) -> list[dict[str, str | None]]:
        """The newest callbacks first, as plain dicts of FIELDS, this process's included.

        With workspace_sid, only that workspace's: a callback from a wiped or other workspace
        is not this one's to answer. A row recorded without its workspace counts as the
        workspace's when it came from workflow_sid, the workspace's configured workflow.
        """
        if not self.flush():
            self.logger.warning(
                "Showing the callback log without this process's newest callbacks: "
                "the writer did not finish within %.0f s",
                FLUSH_TIMEOUT_SECONDS,
            )
        columns = ", ".join(FIELDS)
        where, params = "", {"limit": limit}
        if workspace_sid is not None:
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


def _reset_writer_lock(reference: weakref.ref[CallbackLog]) -> None:
    log = reference()
    if log is not None:
        log._writer_lock = threading.Lock()


def init_app(app: Flask) -> None:
    """Open the callback log (CALLBACK_LOG_PATH, or a file in the instance folder)."""
    path = app.config.get("CALLBACK_LOG_PATH") or os.path.join(app.instance_path, FILENAME)
    keep = int(app.config.get("CALLBACK_LOG_KEEP", DEFAULT_KEEP))
    app.extensions[EXTENSION_KEY] = CallbackLog(path, keep=keep, logger=app.logger)
