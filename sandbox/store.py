"""SQLite persistence for the sandbox: the schema, connections, transactions and keyset paging.

The database is the single source of truth, shared by every thread and process that opens it.
Over 600 lines: the schema and its migrations, connections, private file modes and paging.
The planned restructure keeps this the persistence boundary and moves the schema to its
own module then.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
import re
import sqlite3
import stat
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from sandbox import jsonlimits

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 3
MEMORY = ":memory:"

# The database holds the sandbox's auth token and the callback URLs (with any ?token= in them),
# the lock files beside it say which process serves it: only their owner may read them. The
# modes are given to each file as it is made, not through the process's umask, which other
# code in the process relies on. SQLite gives a database's -wal and -shm files the mode of the
# database file itself, so they follow.
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIRECTORY_MODE = 0o700


def private_opener(path: str | os.PathLike[str], flags: int) -> int:
    """os.open for a file only its owner may read: made 0600, and tightened if it is not.

    A file made by an older version is 0644: left so, it would keep the credentials readable to
    every local user after an upgrade. It is only ever this server's own file, so dropping the
    group and other bits takes nothing away that the server gave on purpose. Usable as the
    opener of open(), for the lock files; never for a database (see make_private_file).
    """
    fd = os.open(path, flags, PRIVATE_FILE_MODE)
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if mode & 0o077:
            os.fchmod(fd, mode & 0o700)
    except PermissionError:
        # Another user's file that this one may open: only its owner can change its mode.
        logger.warning("%s is readable by others and only its owner can change that", path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def make_private_file(path: str | os.PathLike[str]) -> None:
    """Create a database file 0600 if it is missing, else tighten it (as private_opener does).

    An existing database is never opened here: closing any descriptor of a file drops every
    POSIX lock this process holds on it, the locks SQLite's connections in other threads rely
    on (https://www.sqlite.org/howtocorrupt.html, section 2.2); chmod needs no descriptor. Only
    a file this call has just made, which no connection can have locked yet, is closed.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE_MODE)
    except FileExistsError:
        tighten_if_present(path)
    else:
        os.close(fd)


def tighten_if_present(path: str | os.PathLike[str]) -> None:
    """Drop the group and other bits of a file that may exist (a database's -wal or -shm)."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if mode & 0o077:
            os.chmod(path, mode & 0o700)
    except FileNotFoundError:
        return
    except PermissionError:
        logger.warning("%s is readable by others and only its owner can change that", path)


def make_private_directory(path: str | os.PathLike[str]) -> None:
    """Create a folder (and its parents) for these files; the folder itself is made 0700.

    A folder that exists already is left as it is: it may be one the user chose
    (INSTANCE_PATH) and holds other things, and the files made in it are private anyway.
    """
    os.makedirs(path, mode=PRIVATE_DIRECTORY_MODE, exist_ok=True)


# Children before parents: the order in which a wipe empties the tables.
RESOURCE_TABLES = (
    "owed_callbacks",
    "alerts",
    "worker_queues",
    "events",
    "reservations",
    "tasks",
    "workflows",
    "workers",
    "task_queues",
    "task_channels",
    "activities",
    "workspaces",
)

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS workspaces (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        sid TEXT NOT NULL UNIQUE,
        friendly_name TEXT NOT NULL,
        default_activity_sid TEXT,
        timeout_activity_sid TEXT,
        event_callback_url TEXT,
        events_filter TEXT,
        multi_task_enabled INTEGER NOT NULL DEFAULT 0,
        prioritize_queue_order TEXT NOT NULL DEFAULT 'FIFO',
        date_created TEXT NOT NULL,
        date_updated TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS activities (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        sid TEXT NOT NULL UNIQUE,
        workspace_sid TEXT NOT NULL REFERENCES workspaces(sid) ON DELETE CASCADE,
        friendly_name TEXT NOT NULL,
        available INTEGER NOT NULL,
        date_created TEXT NOT NULL,
        date_updated TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS activities_workspace ON activities (workspace_sid, seq)",
    """CREATE TABLE IF NOT EXISTS task_channels (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        sid TEXT NOT NULL UNIQUE,
        workspace_sid TEXT NOT NULL REFERENCES workspaces(sid) ON DELETE CASCADE,
        friendly_name TEXT NOT NULL,
        unique_name TEXT NOT NULL,
        channel_optimized_routing INTEGER,
        date_created TEXT NOT NULL,
        date_updated TEXT NOT NULL,
        UNIQUE (workspace_sid, unique_name)
    )""",
    """CREATE TABLE IF NOT EXISTS workers (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        sid TEXT NOT NULL UNIQUE,
        workspace_sid TEXT NOT NULL REFERENCES workspaces(sid) ON DELETE CASCADE,
        friendly_name TEXT NOT NULL,
        friendly_name_key TEXT NOT NULL,
        attributes TEXT NOT NULL,
        activity_sid TEXT NOT NULL REFERENCES activities(sid),
        available INTEGER NOT NULL,
        date_status_changed TEXT NOT NULL,
        date_created TEXT NOT NULL,
        date_updated TEXT NOT NULL,
        UNIQUE (workspace_sid, friendly_name_key)
    )""",
    "CREATE INDEX IF NOT EXISTS workers_activity ON workers (workspace_sid, activity_sid)",
    # Routing looks for available workers, the one idle the longest first.
    """CREATE INDEX IF NOT EXISTS workers_available
        ON workers (workspace_sid, available, date_status_changed)""",
    """CREATE TABLE IF NOT EXISTS task_queues (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        sid TEXT NOT NULL UNIQUE,
        workspace_sid TEXT NOT NULL REFERENCES workspaces(sid) ON DELETE CASCADE,
        friendly_name TEXT NOT NULL,
        target_workers TEXT NOT NULL,
        reservation_activity_sid TEXT,
        assignment_activity_sid TEXT,
        max_reserved_workers INTEGER NOT NULL DEFAULT 1,
        task_order TEXT NOT NULL DEFAULT 'FIFO',
        date_created TEXT NOT NULL,
        date_updated TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS task_queues_workspace ON task_queues (workspace_sid, seq)",
    """CREATE TABLE IF NOT EXISTS workflows (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        sid TEXT NOT NULL UNIQUE,
        workspace_sid TEXT NOT NULL REFERENCES workspaces(sid) ON DELETE CASCADE,
        friendly_name TEXT NOT NULL,
        configuration TEXT NOT NULL,
        assignment_callback_url TEXT,
        fallback_assignment_callback_url TEXT,
        task_reservation_timeout INTEGER NOT NULL DEFAULT 120,
        document_content_type TEXT NOT NULL DEFAULT 'application/json',
        date_created TEXT NOT NULL,
        date_updated TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS workflows_workspace ON workflows (workspace_sid, seq)",
    # target_index is the position of the workflow target the task sits in (-1 for
    # default_filter); target_entered_date starts that target's timeout; timeout_at is the
    # task's TTL deadline. Routing and timers read them.
    """CREATE TABLE IF NOT EXISTS tasks (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        sid TEXT NOT NULL UNIQUE,
        workspace_sid TEXT NOT NULL REFERENCES workspaces(sid) ON DELETE CASCADE,
        attributes TEXT NOT NULL,
        assignment_status TEXT NOT NULL,
        priority INTEGER NOT NULL DEFAULT 0,
        timeout INTEGER NOT NULL,
        timeout_at TEXT NOT NULL,
        reason TEXT,
        task_queue_sid TEXT,
        task_queue_entered_date TEXT,
        workflow_sid TEXT,
        workflow_filter_name TEXT,
        target_index INTEGER,
        target_entered_date TEXT,
        task_channel_sid TEXT,
        rejection_count INTEGER NOT NULL DEFAULT 0,
        virtual_start_time TEXT,
        ignore_capacity INTEGER,
        routing_target TEXT,
        addons TEXT,
        date_created TEXT NOT NULL,
        date_updated TEXT NOT NULL
    )""",
    # Routing columns added in schema version 2 (older files get them through _COLUMNS).
    """CREATE INDEX IF NOT EXISTS tasks_queue_order
        ON tasks (workspace_sid, assignment_status, task_queue_sid, priority, date_created)""",
    "CREATE INDEX IF NOT EXISTS tasks_workflow ON tasks (workspace_sid, workflow_sid)",
    "CREATE INDEX IF NOT EXISTS tasks_created ON tasks (workspace_sid, date_created)",
    "CREATE INDEX IF NOT EXISTS tasks_ttl ON tasks (assignment_status, timeout_at)",
    """CREATE TABLE IF NOT EXISTS reservations (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        sid TEXT NOT NULL UNIQUE,
        workspace_sid TEXT NOT NULL REFERENCES workspaces(sid) ON DELETE CASCADE,
        task_sid TEXT NOT NULL REFERENCES tasks(sid) ON DELETE CASCADE,
        worker_sid TEXT NOT NULL REFERENCES workers(sid) ON DELETE CASCADE,
        reservation_status TEXT NOT NULL,
        task_queue_sid TEXT,
        workflow_sid TEXT,
        worker_previous_activity_sid TEXT,
        timeout_at TEXT,
        instruction TEXT,
        date_created TEXT NOT NULL,
        date_updated TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS reservations_task ON reservations (task_sid, reservation_status)",
    """CREATE INDEX IF NOT EXISTS reservations_worker
        ON reservations (worker_sid, reservation_status)""",
    """CREATE INDEX IF NOT EXISTS reservations_timeout
        ON reservations (reservation_status, timeout_at)""",
    """CREATE TABLE IF NOT EXISTS events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        sid TEXT NOT NULL UNIQUE,
        workspace_sid TEXT NOT NULL REFERENCES workspaces(sid) ON DELETE CASCADE,
        event_type TEXT NOT NULL,
        event_date TEXT NOT NULL,
        event_date_ms INTEGER NOT NULL,
        resource_type TEXT NOT NULL,
        resource_sid TEXT NOT NULL,
        actor_type TEXT NOT NULL,
        actor_sid TEXT NOT NULL,
        description TEXT NOT NULL,
        event_data TEXT NOT NULL,
        task_sid TEXT,
        worker_sid TEXT,
        reservation_sid TEXT,
        task_queue_sid TEXT,
        workflow_sid TEXT,
        task_channel_unique_name TEXT,
        source TEXT NOT NULL,
        source_ip_address TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS events_date ON events (workspace_sid, event_date)",
    "CREATE INDEX IF NOT EXISTS events_type ON events (workspace_sid, event_type)",
    "CREATE INDEX IF NOT EXISTS events_task ON events (task_sid)",
    "CREATE INDEX IF NOT EXISTS events_worker ON events (worker_sid)",
    "CREATE INDEX IF NOT EXISTS events_reservation ON events (reservation_sid)",
    # Which workers a queue's target_workers selects, kept current on every worker attribute
    # or target_workers change, with the worker's availability and idle time copied in so
    # routing picks the worker idle the longest from one index.
    # free: available and holding no pending reservation (kept by the triggers below), so a
    # single-tasking queue reads only the workers it could offer a task to.
    """CREATE TABLE IF NOT EXISTS worker_queues (
        task_queue_sid TEXT NOT NULL REFERENCES task_queues(sid) ON DELETE CASCADE,
        worker_sid TEXT NOT NULL REFERENCES workers(sid) ON DELETE CASCADE,
        workspace_sid TEXT NOT NULL,
        available INTEGER NOT NULL,
        idle_since TEXT NOT NULL,
        free INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (task_queue_sid, worker_sid)
    )""",
    """CREATE INDEX IF NOT EXISTS worker_queues_idle
        ON worker_queues (task_queue_sid, available, idle_since, worker_sid)""",
    "CREATE INDEX IF NOT EXISTS worker_queues_worker ON worker_queues (worker_sid)",
    """CREATE TABLE IF NOT EXISTS alerts (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        sid TEXT NOT NULL UNIQUE,
        workspace_sid TEXT REFERENCES workspaces(sid) ON DELETE CASCADE,
        code INTEGER NOT NULL,
        level TEXT NOT NULL,
        message TEXT NOT NULL,
        url TEXT,
        reservation_sid TEXT,
        date_created TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS alerts_workspace ON alerts (workspace_sid, seq)",
    # The outbox of assignment callbacks (sandbox/outbox.py): a row is written in the
    # transaction that creates its reservation and deleted in the one that applies the answer,
    # so a crash in between leaves it for the next start to send. claimed_by names the process
    # sending it (its owner lock file says whether it still runs). A new table needs no
    # schema version: IF NOT EXISTS adds it to an older file, and older code ignores it.
    """CREATE TABLE IF NOT EXISTS owed_callbacks (
        reservation_sid TEXT PRIMARY KEY REFERENCES reservations(sid) ON DELETE CASCADE,
        url TEXT NOT NULL,
        fallback_url TEXT,
        params TEXT NOT NULL,
        created TEXT NOT NULL,
        claimed_by TEXT,
        claimed_at TEXT
    ) WITHOUT ROWID""",
)

# Columns later schema versions added to existing tables: (table, column, declaration).
_COLUMNS = (
    ("tasks", "filter_index", "INTEGER"),
    ("tasks", "target_timeout_at", "TEXT"),
    ("tasks", "routing_date", "TEXT"),
    ("worker_queues", "free", "INTEGER NOT NULL DEFAULT 0"),
)

# Whether a single-tasking worker is free, from its membership row's availability and its
# reservations: only a pending one holds it (why: the single-tasking note in routing.py).
_HELD = "'pending'"
FREE_VALUE = (
    "(worker_queues.available AND NOT EXISTS (SELECT 1 FROM reservations r"
    f" WHERE r.worker_sid = worker_queues.worker_sid AND r.reservation_status = {_HELD}))"
)

# The triggers keeping worker_queues.free. CREATE TRIGGER IF NOT EXISTS keeps an older
# version's text, so a schema upgrade drops them first (version 3: accepted stopped holding).
_FREE_TRIGGERS = (
    "worker_queues_free_born",
    "worker_queues_free_moved",
    "reservations_hold",
    "reservations_hold_changed",
    "reservations_hold_deleted",
)

# Indexes over the added columns and the triggers keeping them, created once they exist.
_ROUTING_INDEXES = (
    # The next task for a worker: highest priority, then oldest (FIFO, read forwards)...
    """CREATE INDEX IF NOT EXISTS tasks_fifo
        ON tasks (task_queue_sid, assignment_status, priority DESC, date_created, seq)""",
    # ... or newest (LIFO, read backwards).
    """CREATE INDEX IF NOT EXISTS tasks_lifo
        ON tasks (task_queue_sid, assignment_status, priority, date_created, seq)""",
    """CREATE INDEX IF NOT EXISTS tasks_target_timeout
        ON tasks (assignment_status, target_timeout_at)""",
    # The free members of a queue in idle order: routing stops at the first that fits, so
    # a new task costs the same with 10 or 10,000 busy members.
    """CREATE INDEX IF NOT EXISTS worker_queues_free
        ON worker_queues (task_queue_sid, free, idle_since, worker_sid)""",
    # worker_queues.free, kept in the database itself so that no code path (cascading
    # deletes included) can leave it stale: a membership row is born and re-stamped with it,
    # and every reservation that starts or stops holding its worker recomputes it.
    f"""CREATE TRIGGER IF NOT EXISTS worker_queues_free_born AFTER INSERT ON worker_queues
        BEGIN UPDATE worker_queues SET free = {FREE_VALUE}
            WHERE task_queue_sid = NEW.task_queue_sid AND worker_sid = NEW.worker_sid; END""",
    f"""CREATE TRIGGER IF NOT EXISTS worker_queues_free_moved
        AFTER UPDATE OF available ON worker_queues
        BEGIN UPDATE worker_queues SET free = {FREE_VALUE}
            WHERE task_queue_sid = NEW.task_queue_sid AND worker_sid = NEW.worker_sid; END""",
    f"""CREATE TRIGGER IF NOT EXISTS reservations_hold AFTER INSERT ON reservations
        WHEN NEW.reservation_status = {_HELD}
        BEGIN UPDATE worker_queues SET free = 0 WHERE worker_sid = NEW.worker_sid AND free; END""",
    f"""CREATE TRIGGER IF NOT EXISTS reservations_hold_changed
        AFTER UPDATE OF reservation_status, worker_sid ON reservations
        WHEN (OLD.reservation_status = {_HELD}) != (NEW.reservation_status = {_HELD})
            OR OLD.worker_sid != NEW.worker_sid
        BEGIN UPDATE worker_queues SET free = {FREE_VALUE}
            WHERE worker_sid IN (OLD.worker_sid, NEW.worker_sid); END""",
    f"""CREATE TRIGGER IF NOT EXISTS reservations_hold_deleted AFTER DELETE ON reservations
        WHEN OLD.reservation_status = {_HELD}
        BEGIN UPDATE worker_queues SET free = {FREE_VALUE}
            WHERE worker_sid = OLD.worker_sid; END""",
)


class StoreError(RuntimeError):
    """The database cannot be used as asked (closed, newer schema, misuse of transactions)."""


class InvalidPageToken(ValueError):
    """A PageToken this store did not issue, or one for another ordering."""


def _dict_row(cursor: sqlite3.Cursor, row: tuple) -> dict[str, Any]:
    return {column[0]: value for column, value in zip(cursor.description, row, strict=True)}


class _ConnectionHolder:
    """Owns one thread's connection and closes it when the thread's locals go away."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def close(self) -> None:
        # Closing twice, or while the interpreter shuts down, is harmless.
        if self.connection is None:  # inherited across fork: never ours to close
            return
        with contextlib.suppress(sqlite3.Error):
            self.connection.close()

    def __del__(self) -> None:
        self.close()


def _forget_connections(reference: weakref.ref[Store]) -> None:
    """In a forked child: drop (never close) the parent's connections, so each thread opens
    its own on next use; closing them here could release locks the parent still holds."""
    store = reference()
    if store is None:
        return
    # Kept alive on purpose: a connection object closes its database when collected, and
    # a close here could checkpoint and remove the WAL the parent is still writing.
    store._inherited.extend(holder.connection for holder in list(store._holders))
    for holder in list(store._holders):
        holder.connection = None  # type: ignore[assignment]
    store._local = threading.local()
    store._holders_lock = threading.Lock()
    # A thread of the parent may have held it at the fork; it never releases it here.
    store._write_lock = threading.Lock()
    store._holders = weakref.WeakSet()


# The table a write statement names; a DELETE may cascade, so it is treated as touching all.
_WRITTEN_TABLE = re.compile(r"\s*(?:UPDATE|INSERT\s+INTO)\s+(\w+)", re.IGNORECASE)
_READ = re.compile(r"\s*(?:SELECT|PRAGMA|EXPLAIN)\b", re.IGNORECASE)


@dataclass
class _CachedRow:
    row: dict[str, Any]
    # Tables whose rows the cached row's joined columns come from, and the row's own
    # columns those joins follow: a write to either makes the joined columns stale.
    joins: frozenset[str]
    keys: frozenset[str]


class Transaction:
    """One open transaction: query helpers and hooks that run after a successful commit."""

    def __init__(self, connection: sqlite3.Connection, write: bool) -> None:
        self.connection = connection
        self.write = write
        # Per-transaction scratch space for callers (the engine keeps its effects here).
        self.data: dict[str, Any] = {}
        self._after_commit: list[Callable[[], None]] = []
        self._rows: dict[tuple[str, str], _CachedRow] = {}

    def cached(
        self,
        table: str,
        sid: str,
        load: Callable[[], dict[str, Any] | None],
        *,
        joins: frozenset[str] = frozenset(),
        keys: frozenset[str] = frozenset(),
    ) -> dict[str, Any] | None:
        """A copy of table's row sid as load() reads it, read once per transaction.

        Routing reads the same task and reservation many times in one operation. update()
        patches a cached row with the values it writes; any other write that could touch it
        (to its table by raw SQL, to a table in joins, to one of the keys its joins follow,
        any delete) drops it, so the next call reads it again.
        """
        entry = self._rows.get((table, sid))
        if entry is None:
            row = load()
            if row is None:
                return None
            entry = self._rows[(table, sid)] = _CachedRow(dict(row), joins, keys)
        return dict(entry.row)

    def _forget(self, table: str | None, sid: str | None = None) -> None:
        """Drop cached rows a write to table (row sid, or any row) may have changed; a
        table of None drops everything."""
        if not self._rows:
            return
        if table is None:
            self._rows.clear()
            return
        for key, entry in list(self._rows.items()):
            if (key[0] == table and (sid is None or key[1] == sid)) or table in entry.joins:
                del self._rows[key]

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        if self._rows and not _READ.match(sql):
            written = _WRITTEN_TABLE.match(sql)
            self._forget(written.group(1).lower() if written else None)
        return self.connection.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._require_write()
        written = _WRITTEN_TABLE.match(sql)
        self._forget(written.group(1).lower() if written else None)
        self.connection.executemany(sql, rows)

    def one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> dict[str, Any] | None:
        return self.connection.execute(sql, params).fetchone()

    def all(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        return self.connection.execute(sql, params).fetchall()

    def scalar(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        row = self.connection.execute(sql, params).fetchone()
        return None if row is None else next(iter(row.values()))

    def insert(self, table: str, values: dict[str, Any]) -> None:
        self._require_write()
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        self.connection.execute(
            f"INSERT INTO {table} ({columns}) VALUES ({marks})", tuple(values.values())
        )
        if self._rows:
            self._forget(table, values.get("sid"))

    def update(self, table: str, sid: str, values: dict[str, Any]) -> None:
        self._require_write()
        if not values:
            return
        assignments = ", ".join(f"{column} = ?" for column in values)
        self.connection.execute(
            f"UPDATE {table} SET {assignments} WHERE sid = ?", (*values.values(), sid)
        )
        if self._rows:
            self._patch(table, sid, values)

    def _patch(self, table: str, sid: str, values: dict[str, Any]) -> None:
        entry = self._rows.get((table, sid))
        self._forget(table, sid)
        if entry is None or entry.keys.intersection(values):
            return
        for value in values.values():
            # Only what SQLite hands back unchanged; a bool would come back as an integer.
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, str | int | float)
            ):
                return
        entry.row.update(values)
        self._rows[(table, sid)] = entry

    def delete(self, table: str, sid: str) -> None:
        self._require_write()
        self.connection.execute(f"DELETE FROM {table} WHERE sid = ?", (sid,))
        # Foreign keys cascade: anything cached may be gone.
        self._forget(None)

    def setting(self, key: str) -> str | None:
        return self.scalar("SELECT value FROM settings WHERE key = ?", (key,))

    def set_setting(self, key: str, value: str) -> None:
        self._require_write()
        self.connection.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run callback once the outermost transaction has committed (never on rollback)."""
        self._after_commit.append(callback)

    def _require_write(self) -> None:
        if not self.write:
            raise StoreError("a read transaction cannot change the database")


class Store:
    """The sandbox database: a connection per thread for files, one locked one for :memory:."""

    def __init__(self, database: str, *, busy_timeout_ms: int = 5000) -> None:
        self.database = database
        self.busy_timeout_ms = busy_timeout_ms
        self._memory = database == MEMORY
        self._local = threading.local()
        self._holders: weakref.WeakSet[_ConnectionHolder] = weakref.WeakSet()
        self._holders_lock = threading.Lock()
        self._closed = False
        # One connection cannot serve two threads' transactions at once; a re-entrant lock
        # serialises them and lets one thread nest transactions.
        self._memory_lock = threading.RLock()
        # A file store's writers in this process queue here rather than in SQLite. SQLite
        # makes a blocked writer sleep and retry (up to 100 ms apart); under load another
        # thread could take the lock every time in between, and the sleeper's change would
        # be lost when the busy timeout ran out (seen once in 30,000 transactions end to
        # end). Here, the next writer starts as soon as the last one ends; SQLite's lock
        # then only arbitrates between server processes, one writer from each at most.
        self._write_lock = threading.Lock()
        # Whether the database file was made private (or tightened, with its -wal and -shm).
        self._made_private = False
        self._shared: _ConnectionHolder | None = None
        self._inherited: list[sqlite3.Connection] = []
        if self._memory:
            self._shared = self._open()
        self._create_schema()
        # A SQLite connection must not cross fork(): a forked server worker opens its own.
        if not self._memory:
            reference = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: _forget_connections(reference))

    # -- connections -------------------------------------------------------------------

    def _open(self) -> _ConnectionHolder:
        if not self._memory and self.database and not self._made_private:
            # Made private before SQLite makes it (with the umask's 0644), once: before this
            # store's first connection, so that no lock of its own is at stake.
            make_private_file(self.database)
            for suffix in ("-wal", "-shm"):
                tighten_if_present(self.database + suffix)
            self._made_private = True
        connection = sqlite3.connect(
            self.database,
            timeout=self.busy_timeout_ms / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        connection.row_factory = _dict_row
        connection.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
        connection.execute("PRAGMA foreign_keys = ON")
        if not self._memory:
            self._use_wal(connection)
            # A sandbox's data is disposable (`flask sandbox reset`): skip the fsyncs. A crash
            # of the server loses nothing (the OS holds the writes); only an OS crash or a
            # power cut could. Measured: a routed reservation costs about 40% less.
            connection.execute("PRAGMA synchronous = OFF")
        holder = _ConnectionHolder(connection)
        with self._holders_lock:
            self._holders.add(holder)
        return holder

    def _use_wal(self, connection: sqlite3.Connection) -> None:
        # Switching a new file to WAL takes an exclusive lock and SQLite answers "database is
        # locked" at once, without the busy timeout, while another process does the same:
        # retry for as long as the busy timeout allows.
        deadline = time.monotonic() + self.busy_timeout_ms / 1000
        while True:
            try:
                connection.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError("the sandbox store is closed")
        if self._shared is not None:
            return self._shared.connection
        holder = getattr(self._local, "holder", None)
        if holder is None:
            holder = self._open()
            self._local.holder = holder
        return holder.connection

    def close(self) -> None:
        """Close every connection this store opened; further use raises StoreError."""
        self._closed = True
        with self._holders_lock:
            holders = list(self._holders)
            self._holders.clear()
        for holder in holders:
            holder.close()

    @property
    def closed(self) -> bool:
        return self._closed

    # -- transactions ------------------------------------------------------------------

    def transaction(self) -> AbstractContextManager[Transaction]:
        """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error); nested calls join the open one."""
        return self._transaction(write=True)

    def read(self) -> AbstractContextManager[Transaction]:
        """A consistent snapshot for reads; inside a write transaction it joins that one."""
        return self._transaction(write=False)

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[Transaction]:
        current: Transaction | None = getattr(self._local, "transaction", None)
        if current is not None:
            if write and not current.write:
                raise StoreError("cannot start a write transaction inside a read transaction")
            yield current
            return
        # A file store's reads take no lock: WAL gives each its own snapshot.
        lock = self._memory_lock if self._memory else self._write_lock if write else None
        if lock is not None:
            lock.acquire()
        try:
            connection = self._connection()
            connection.execute("BEGIN IMMEDIATE" if write else "BEGIN DEFERRED")
            tx = Transaction(connection, write)
            self._local.transaction = tx
            try:
                yield tx
            except BaseException:
                self._local.transaction = None
                connection.execute("ROLLBACK")
                raise
            self._local.transaction = None
            try:
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        finally:
            if lock is not None:
                lock.release()
        for callback in tx._after_commit:
            try:
                callback()
            except Exception:
                logger.exception("after-commit hook failed")

    # -- schema and maintenance ------------------------------------------------------

    def _create_schema(self) -> None:
        with self.transaction() as tx:
            for statement in _SCHEMA:
                tx.execute(statement)
            stored = tx.setting("schema_version")
            if stored is not None and int(stored) > SCHEMA_VERSION:
                raise StoreError(
                    f"the database {self.database} has schema version {stored}, newer than "
                    f"this sandbox's {SCHEMA_VERSION}: upgrade the code or use another file"
                )
            upgrading = stored is None or int(stored) < SCHEMA_VERSION
            recompute_free = upgrading
            for table, column, declaration in _COLUMNS:
                present = {row["name"] for row in tx.all(f"PRAGMA table_info({table})")}
                if column not in present:
                    tx.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
                    recompute_free = recompute_free or (table, column) == ("worker_queues", "free")
            if upgrading:
                for trigger in _FREE_TRIGGERS:
                    tx.execute(f"DROP TRIGGER IF EXISTS {trigger}")
            for statement in _ROUTING_INDEXES:
                tx.execute(statement)
            if recompute_free:
                # Flags written by an older version's triggers, or none at all (a new column).
                tx.execute(f"UPDATE worker_queues SET free = {FREE_VALUE}")
            if upgrading:
                tx.set_setting("schema_version", str(SCHEMA_VERSION))

    @staticmethod
    def wipe(tx: Transaction, *, keep_settings: Sequence[str] = ()) -> None:
        """Delete every resource and every setting except schema_version and keep_settings."""
        for table in RESOURCE_TABLES:
            tx.execute(f"DELETE FROM {table}")
        kept = ("schema_version", *keep_settings)
        marks = ", ".join("?" for _ in kept)
        tx.execute(f"DELETE FROM settings WHERE key NOT IN ({marks})", kept)


# -- keyset paging ---------------------------------------------------------------------


@dataclass(frozen=True)
class Order:
    """One ordering column: the SQL expression, the row field holding it, the direction."""

    expression: str
    field: str
    descending: bool = False


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    next_token: str | None
    previous_token: str | None


def _encode_token(direction: str, key: list[Any]) -> str:
    raw = json.dumps(key, separators=(",", ":")).encode()
    return direction + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str, width: int) -> tuple[str, list[Any]]:
    direction, body = token[:2], token[2:]
    if direction not in ("PA", "PB") or not body:
        raise InvalidPageToken(token)
    try:
        # A key is a flat list of column values: one level, so no crafted token nests deeper.
        key = jsonlimits.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)), 1)
    except (binascii.Error, ValueError, UnicodeDecodeError) as error:
        raise InvalidPageToken(token) from error
    if (
        not isinstance(key, list)
        or len(key) != width
        or not all(isinstance(value, str | int | float) for value in key)
    ):
        raise InvalidPageToken(token)
    return direction, key


def _beyond(order: Sequence[Order], key: list[Any], reverse: bool) -> tuple[str, list[Any]]:
    """SQL for 'rows strictly after key' in the ordering (before it when reverse)."""
    alternatives = []
    params: list[Any] = []
    for index, column in enumerate(order):
        descending = column.descending != reverse
        terms = [f"{order[j].expression} = ?" for j in range(index)]
        terms.append(f"{column.expression} {'<' if descending else '>'} ?")
        params.extend(key[: index + 1])
        alternatives.append("(" + " AND ".join(terms) + ")")
    return "(" + " OR ".join(alternatives) + ")", params


def _order_by(order: Sequence[Order], reverse: bool) -> str:
    return ", ".join(
        f"{column.expression} {'DESC' if column.descending != reverse else 'ASC'}"
        for column in order
    )


def page(
    tx: Transaction,
    *,
    select: str,
    where: Sequence[str],
    params: Sequence[Any],
    order: Sequence[Order],
    page_size: int,
    page_number: int = 0,
    page_token: str | None = None,
    predicate: Callable[[dict[str, Any]], bool] | None = None,
) -> Page:
    """One page of select, keyset-paged on order (whose last column must be unique).

    Tokens carry the boundary row's ordering values, so rows added or removed elsewhere do
    not shift a page. predicate filters in Python what SQL cannot (expressions).
    """
    direction, key = ("PA", None)
    if page_token:
        direction, key = _decode_token(page_token, len(order))
    reverse = direction == "PB"
    conditions = list(where)
    arguments = list(params)
    if key is not None:
        condition, extra = _beyond(order, key, reverse)
        conditions.append(condition)
        arguments.extend(extra)
    sql = select
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    sql += " ORDER BY " + _order_by(order, reverse)
    skip = page_number * page_size if key is None else 0
    wanted = page_size + 1
    rows: list[dict[str, Any]] = []
    cursor = tx.execute(sql, arguments)
    try:
        for row in cursor:
            if predicate is not None and not predicate(row):
                continue
            if skip:
                skip -= 1
                continue
            rows.append(row)
            if len(rows) == wanted:
                break
    finally:
        cursor.close()
    more = len(rows) > page_size
    rows = rows[:page_size]

    def key_of(row: dict[str, Any]) -> list[Any]:
        return [row[column.field] for column in order]

    if reverse:
        rows.reverse()
        has_previous, has_next = more, True
    else:
        has_previous, has_next = key is not None or page_number > 0, more
    return Page(
        rows=rows,
        next_token=_encode_token("PA", key_of(rows[-1])) if rows and has_next else None,
        previous_token=_encode_token("PB", key_of(rows[0])) if rows and has_previous else None,
    )
