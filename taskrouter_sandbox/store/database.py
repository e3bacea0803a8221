"""The sandbox database's connections and transactions.

The database is the single source of truth, shared by every thread and process that opens it:
for a file, a connection per thread for reads (in WAL mode: they take no lock) and one for the
process's writes, one writer at a time; one locked connection for :memory:. The write
transactions keep the rows they read for the next ones (RowCache) for as long as no other
process has written.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
import urllib.parse
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from taskrouter_sandbox.store import behind
from taskrouter_sandbox.store.behind import Batch, Batches, HookRuns
from taskrouter_sandbox.store.files import make_private_file, tighten_if_present
from taskrouter_sandbox.store.schema import (
    _COLUMNS,
    _FREE_TRIGGERS,
    _ROUTING_INDEXES,
    _SCHEMA,
    EVENT_WAITS_BACKFILL,
    FREE_VALUE,
    REBUILT_IN,
    REBUILT_INDEXES,
    RESOURCE_TABLES,
    SCHEMA_VERSION,
    WORKER_CHANNELS_BACKFILL,
)
from taskrouter_sandbox.store.transaction import (
    RowCache,
    StoreBusy,
    StoreError,
    Transaction,
    _Statement,
)

__all__ = ["MEMORY", "WAL_CHECKPOINT_PAGES", "Store", "StoreBusy", "StoreError", "Transaction"]

logger = logging.getLogger(__name__)

MEMORY = ":memory:"
# WAL pages between automatic checkpoints (see Store._open).
WAL_CHECKPOINT_PAGES = 10_000
# The page cache of a file store's writer connection, in KiB (SQLite's default is 2,000, which
# 10,000 tasks' index leaves outgrow: each miss is a read of the page from the WAL or the file).
# Engine alone, 10,000 tasks: 72 page reads per reservation with the default, 16 with 64 MiB.
# Filled only as pages are used; the readers' connections keep SQLite's default.
WRITER_CACHE_KB = 32 * 1024
# What the rows the write transactions keep for the next ones may hold, about (RowCache.weight):
# past it the cache starts again empty, which costs a read of each row the next operations use.
MAX_CACHED_BYTES = 32 * 1024 * 1024


# The column names of the last cursor description seen (one per statement executed, shared
# by its rows): a row is then one dict(zip(...)) instead of a walk over the description.
_last_columns: tuple[Any, tuple[str, ...]] = ((), ())


def _dict_row(cursor: sqlite3.Cursor, row: tuple) -> dict[str, Any]:
    global _last_columns
    description = cursor.description
    seen, names = _last_columns
    if seen is not description:
        names = tuple(column[0] for column in description)
        _last_columns = (description, names)
    return dict(zip(names, row, strict=True))


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


def _existing_file(path: str) -> str:
    """A URI for the database file that SQLite opens only if it is there (mode=rw)."""
    return f"file:{urllib.parse.quote(os.path.abspath(path))}?mode=rw"


def _use_wal(connection: sqlite3.Connection, busy_timeout_ms: int) -> None:
    # Switching a new file to WAL takes an exclusive lock and SQLite answers "database is
    # locked" at once, without the busy timeout, while another process does the same: retry
    # for as long as the busy timeout allows.
    deadline = time.monotonic() + busy_timeout_ms / 1000
    while True:
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def _hold_across_fork(reference: weakref.ref[Store]) -> None:
    """Before fork(): commit the open batch and keep the write lock until the fork is done, so
    that no batch is open across it (the child would inherit SQLite's record that this
    process holds the database's write lock, and find the file locked for good)."""
    store = reference()
    if store is None or store.closed or store._batches is None:
        return
    # No checkpoint under way: the child would inherit its connection in the middle of one.
    store._batches.pause_checkpoints()
    current = store.current_transaction()
    if current is not None and current.write:
        return  # forking inside its own write transaction: nothing more can be done here
    store._write_lock.acquire()
    store._held_for_fork = True
    with contextlib.suppress(StoreError):  # logged; lost either way
        store._fork_hooks = store._batches.commit()


def _release_after_fork(reference: weakref.ref[Store]) -> None:
    store = reference()
    if store is not None and store._batches is not None:
        store._batches.resume_checkpoints()
    if store is not None and store._held_for_fork:
        store._held_for_fork = False
        hooks, store._fork_hooks = store._fork_hooks, []
        store._release(hooks)


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
    store._writer = None
    # The parent's batch and hooks are the parent's.
    store._held_for_fork = False
    store._fork_hooks = []
    store._hooks = HookRuns()
    if store._batches is not None:
        store._batches.forked()
    store._rows = RowCache()
    store._local = threading.local()
    store._holders_lock = threading.Lock()
    # A thread of the parent may have held it at the fork; it never releases it here.
    store._write_lock = threading.Lock()
    store._holders = weakref.WeakSet()


class Store:
    """The sandbox database: for a file, a connection per thread for reads and one for this
    process's writes; one locked one for :memory:.

    copy_of (in-memory stores only): start as a copy of that store's database, made with
    sqlite3's backup in a fraction of a millisecond; the schema check after it then finds
    nothing to do. Test harnesses make many sandboxes, and creating the schema is most of an
    empty one's cost.

    commit_behind_ms (file stores): how long a write transaction may wait for its commit,
    shared with the next ones (store/behind.py; COMMIT_BEHIND_MS when None); 0 commits each
    as it ends.
    """

    def __init__(
        self,
        database: str,
        *,
        busy_timeout_ms: int = 5000,
        copy_of: Store | None = None,
        commit_behind_ms: float | None = None,
    ) -> None:
        self.database = database
        self.busy_timeout_ms = busy_timeout_ms
        self._memory = database == MEMORY
        self._local = threading.local()
        self._holders: weakref.WeakSet[_ConnectionHolder] = weakref.WeakSet()
        self._holders_lock = threading.Lock()
        self._closed = False
        # Statement text -> what is known of it, for every connection of this store (one
        # schema): Transaction._statement.
        self._known: dict[str, _Statement] = {}
        # Statements the transactions of this store have run, BEGIN and COMMIT included
        # (added up as each ends, without a lock: a count for the benchmark, not a ledger).
        self.statements = 0
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
        self._checkpoint_holder: _ConnectionHolder | None = None
        # A file store's connection for this process's write transactions (one at a time,
        # _write_lock): one connection, so that PRAGMA data_version on it changes only when
        # another process has committed, which is when the cached rows may be stale.
        self._writer: _ConnectionHolder | None = None
        self._rows = RowCache()
        # Commit behind (store/behind.py): a file store's Batches (which make no batch with
        # commit_behind_ms=0, nor for the schema check below); None for :memory:. And the
        # runs of the after-commit hooks, which sync() waits for.
        self._batches: Batches | None = None
        self._hooks = HookRuns()
        self._held_for_fork = False
        self._fork_hooks: list[Callable[[], None]] = []
        self._inherited: list[sqlite3.Connection] = []
        if self._memory:
            self._shared = self._open()
        if copy_of is not None:
            if not self._memory or copy_of._shared is None:
                raise ValueError("only an in-memory store copies another in-memory store")
            with copy_of._memory_lock:
                copy_of._shared.connection.backup(self._shared.connection)
        if not self._memory:
            # No batch for the schema below (delay 0), but its BEGIN is marked on the writers
            # file like any other, so that another process's batch lets it in.
            self._batches = Batches(self, database, 0.0)
        _create_schema(self)
        if self._batches is not None:
            if commit_behind_ms is None:
                commit_behind_ms = behind.COMMIT_BEHIND_MS
            self._batches.delay_ms = commit_behind_ms
            # From the next commit on: a store opened and left (a CLI command, a server's
            # parent before it forks its workers) starts no thread.
            self._batches.checkpoints = True
            # A SQLite connection must not cross fork(): a forked server worker opens its own.
            # Nor may an open batch (_hold_across_fork).
            reference = weakref.ref(self)
            os.register_at_fork(
                before=lambda: _hold_across_fork(reference),
                after_in_parent=lambda: _release_after_fork(reference),
                after_in_child=lambda: _forget_connections(reference),
            )

    # -- connections -------------------------------------------------------------------

    def _open(self, *, existing: bool = False) -> _ConnectionHolder:
        if not self._memory and self.database and not self._made_private:
            # Made private before SQLite makes it (with the umask's 0644), once: before this
            # store's first connection, so that no lock of its own is at stake.
            make_private_file(self.database)
            for suffix in ("-wal", "-shm"):
                tighten_if_present(self.database + suffix)
            self._made_private = True
        connection = sqlite3.connect(
            _existing_file(self.database) if existing else self.database,
            uri=existing,
            timeout=self.busy_timeout_ms / 1000,
            isolation_level=None,
            check_same_thread=False,
            # The engine runs a few hundred distinct statements (routing's, the updates of
            # each column set, the listings' filters); sqlite3's default keeps 128 prepared.
            cached_statements=512,
        )
        connection.row_factory = _dict_row
        connection.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
        connection.execute("PRAGMA foreign_keys = ON")
        # A statement's or a savepoint's journal (every operation of a batch after its first
        # runs in a savepoint) kept in memory rather than spilled to a temporary file.
        connection.execute("PRAGMA temp_store = MEMORY")
        if not self._memory:
            _use_wal(connection, self.busy_timeout_ms)
            # A sandbox's data is disposable (`flask sandbox reset`): skip the fsyncs. A crash
            # of the server loses nothing (the OS holds the writes); only an OS crash or a
            # power cut could. Measured: a routed reservation costs about 40% less.
            connection.execute("PRAGMA synchronous = OFF")
            # Checkpoint every 10,000 WAL pages (about 40 MB), not SQLite's 1,000: a routed
            # reservation's commits write about 150-180 pages, many of them the same hot pages
            # again (index leaves, the event table's last page), which one checkpoint copies
            # back once. Measured on the engine alone, 1,000 tasks, three runs each way:
            # 5.27 s of CPU on average against 4.76 s.
            # The store's checkpoint thread (store/checkpoints.py) usually checkpoints well
            # before: this is for when it cannot keep up.
            connection.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
        holder = _ConnectionHolder(connection)
        with self._holders_lock:
            self._holders.add(holder)
        return holder

    def _connection(self, write: bool = False) -> sqlite3.Connection:
        if self._closed:
            raise StoreError("the sandbox store is closed")
        if self._shared is not None:
            return self._shared.connection
        if write:
            if self._writer is None:
                self._writer = self._open()
                self._writer.connection.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KB}")
            return self._writer.connection
        holder = getattr(self._local, "holder", None)
        if holder is None:
            holder = self._open()
            self._local.holder = holder
        return holder.connection

    def checkpoint_connection(self) -> sqlite3.Connection:
        """The checkpoint thread's own connection (store/checkpoints.py), closed with the
        store's others (after the thread has stopped) and forgotten in a forked child. Opened
        on the file as it is: a file removed meanwhile is not made anew, empty, beside the
        old WAL."""
        if self._closed:
            raise StoreError("the sandbox store is closed")
        self._checkpoint_holder = self._open(existing=True)
        return self._checkpoint_holder.connection

    def close(self) -> None:
        """Commit what is behind, close every connection this store opened; further use raises
        StoreError."""
        current = self.current_transaction()
        if current is not None and current.write and not self._closed:
            raise StoreError("the store cannot close inside its own write transaction")
        # Taken so that no write (nor the committer's commit) is under way while the
        # connections close: one closed under a running statement crashes the process.
        self._write_lock.acquire()
        hooks: list[Callable[[], None]] = []
        try:
            if not self._closed and self._batches is not None:
                with contextlib.suppress(StoreError):  # logged by Batches.lose
                    hooks = self._batches.commit()
            self._closed = True
            if self._batches is not None:
                self._batches.close()
        finally:
            self._release(hooks)
        with self._holders_lock:
            holders = list(self._holders)
            self._holders.clear()
        for holder in holders:
            holder.close()

    @property
    def closed(self) -> bool:
        return self._closed

    # -- transactions ------------------------------------------------------------------

    def transaction(self, *, wait_ms: int | None = None) -> AbstractContextManager[Transaction]:
        """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error); nested calls join the open one.
        wait_ms: StoreBusy when the write lock (this process's, then the database's) is not
        had within about that long, instead of waiting up to the busy timeout."""
        return self._transaction(write=True, wait_ms=wait_ms)

    def read(self) -> AbstractContextManager[Transaction]:
        """A consistent snapshot for reads; inside a write transaction it joins that one."""
        return self._transaction(write=False)

    @property
    def commit_behind_ms(self) -> float:
        """How long a write may wait for its commit (store/behind.py); 0: none waits."""
        return 0.0 if self._batches is None else self._batches.delay_ms

    def sync(self) -> None:
        """Commit this process's write transactions still behind (store/behind.py) and return
        once their after-commit hooks have run (and those other threads are running); nothing
        to do when none is. Inside this thread's own write transaction it does nothing: that
        one commits when it ends. StoreError when this thread's last write was lost (its
        commit failed, here or in another thread)."""
        self.commit_now()
        self._hooks.wait()
        number = getattr(self._local, "batch", None)
        if number is not None:
            self._local.batch = None
            if self._batches is not None and number in self._batches.lost:
                raise StoreError("the database failed to commit this thread's last write")

    def commit_now(self) -> None:
        """sync() without waiting for other threads' hooks: what a read needs, and the
        committer thread."""
        batches = self._batches
        if batches is None or batches.open is None:
            return
        current = self.current_transaction()
        if current is not None and current.write:
            return
        self._write_lock.acquire()
        hooks: list[Callable[[], None]] = []
        try:
            if not self._closed:
                hooks = batches.commit()
        finally:
            self._release(hooks)

    def forget_rows(self) -> None:
        """Drop the rows the write transactions keep (they hold writes that were lost)."""
        self._rows.clear()

    def _release(self, hooks: list[Callable[[], None]]) -> None:
        """Release the write lock, then run the hooks of what committed holding it (handed
        over first, so that a sync() in another thread waits for them)."""
        if hooks:
            self._hooks.hand_over()
        self._write_lock.release()
        if hooks:
            self._hooks.run(hooks)

    def current_transaction(self) -> Transaction | None:
        """The transaction this thread has open on this store, if any."""
        return getattr(self._local, "transaction", None)

    @contextmanager
    def _transaction(self, write: bool, wait_ms: int | None = None) -> Iterator[Transaction]:
        current: Transaction | None = getattr(self._local, "transaction", None)
        if current is not None:
            if write and not current.write:
                raise StoreError("cannot start a write transaction inside a read transaction")
            yield current
            return
        batches = self._batches if self.commit_behind_ms else None
        if not write and batches is not None and batches.open:
            # This process's writes behind would not be in another connection's snapshot.
            self.commit_now()
        # A file store's reads take no lock (WAL gives each its own snapshot), beyond the
        # commit above of this process's writes behind.
        lock = self._memory_lock if self._memory else self._write_lock if write else None
        if lock is not None and not lock.acquire(timeout=-1 if wait_ms is None else wait_ms / 1000):
            raise StoreBusy(f"the write lock was not free within {wait_ms} ms")
        cache = self._rows if write else None
        hooks: list[Callable[[], None]] = []
        # BEGIN and COMMIT, or SAVEPOINT and RELEASE (a batch's COMMIT counts on its own).
        begun = 2
        try:
            connection = self._connection(write)
            # Joining the batch behind: it holds the database's write lock, so nothing else
            # has written since its BEGIN and the cached rows are current.
            batch = batches.open if write and batches is not None else None
            if batch is None:
                self._begin(connection, write, wait_ms)
            else:
                connection.execute("SAVEPOINT operation")
            try:
                if cache is not None and not self._memory and batch is None:
                    # Holding the write lock, so nothing else commits until this ends: the
                    # version now says whether another connection (another process) has
                    # written since the last (or checkpointed with TRUNCATE, or vacuumed).
                    seen = (connection, connection.execute("PRAGMA data_version").fetchone())
                    begun += 1
                    if seen != cache.seen:
                        cache.clear()
                        cache.seen = seen
                tx = Transaction(connection, write, self._known, cache)
                self._local.transaction = tx
                yield tx
                self._local.transaction = None
                tx.flush()
                if batch is not None:
                    connection.execute("RELEASE operation")
                elif not write or batches is None:
                    connection.execute("COMMIT")
                    if write and self._batches is not None:
                        self._batches.committed()
            except BaseException:
                self._local.transaction = None
                self._roll_back(connection, cache, batch)
                raise
            if cache is not None and cache.weight > MAX_CACHED_BYTES:
                cache.clear()
            if not write or batches is None:
                hooks = tx._after_commit
            else:
                self._local.batch, hooks = batches.ended(connection, tx._after_commit)
                begun -= batch is None  # its COMMIT is the batch's
            # Waited for by sync() only where writes commit behind.
            counted = bool(hooks) and batches is not None
            if counted:
                self._hooks.hand_over()
        finally:
            if lock is not None:
                lock.release()
        self.statements += tx.statements + begun
        if hooks:
            self._hooks.run(hooks, counted=counted)

    def _begin(self, connection: sqlite3.Connection, write: bool, wait_ms: int | None) -> None:
        if write and self._batches is not None:
            # Marked on the writers file while it may wait, so that another process's batch
            # commits for it (store/behind.py).
            with self._batches.beginning():
                self._begin_unmarked(connection, write, wait_ms)
            return
        self._begin_unmarked(connection, write, wait_ms)

    def _begin_unmarked(
        self, connection: sqlite3.Connection, write: bool, wait_ms: int | None
    ) -> None:
        if wait_ms is None or self._memory:
            connection.execute("BEGIN IMMEDIATE" if write else "BEGIN DEFERRED")
            return
        # The busy timeout is the connection's: shortened for this BEGIN only (the process's
        # write lock is held, so no other transaction of this process uses the connection).
        connection.execute(f"PRAGMA busy_timeout = {int(wait_ms)}")
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            if "locked" in str(error) or "busy" in str(error):
                raise StoreBusy(f"the database stayed locked for {wait_ms} ms") from error
            raise
        finally:
            connection.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")

    def _roll_back(
        self, connection: sqlite3.Connection, cache: RowCache | None, batch: Batch | None
    ) -> None:
        """Undo a failed transaction: alone when it joined a batch (Batches.undo)."""
        if cache is not None:
            # The rolled-back writes had patched the rows it keeps.
            cache.clear()
        if batch is not None and self._batches is not None:
            self._batches.undo(connection)
        elif connection.in_transaction:
            connection.execute("ROLLBACK")

    # -- schema and maintenance ------------------------------------------------------

    @staticmethod
    def wipe(tx: Transaction, *, keep_settings: Sequence[str] = ()) -> None:
        """Delete every resource and every setting except schema_version and keep_settings."""
        for table in RESOURCE_TABLES:
            tx.execute(f"DELETE FROM {table}")
        kept = ("schema_version", *keep_settings)
        marks = ", ".join("?" for _ in kept)
        tx.execute(f"DELETE FROM settings WHERE key NOT IN ({marks})", kept)


def _create_schema(store: Store) -> None:
    """Create the tables, indexes and triggers missing, and upgrade an older file's."""
    with store.transaction() as tx:
        for statement in _SCHEMA:
            tx.execute(statement)
        stored = tx.setting("schema_version")
        if stored is not None and int(stored) > SCHEMA_VERSION:
            raise StoreError(
                f"the database {store.database} has schema version {stored}, newer than "
                f"this sandbox's {SCHEMA_VERSION}: upgrade the code or use another file"
            )
        upgrading = stored is None or int(stored) < SCHEMA_VERSION
        # Rebuilding the indexes of a big file takes a while: only when they changed.
        rebuilding = stored is None or int(stored) < REBUILT_IN
        recompute_free = rebuilding
        for table, column, declaration in _COLUMNS:
            present = {row["name"] for row in tx.all(f"PRAGMA table_info({table})")}
            if column not in present:
                tx.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
                recompute_free = recompute_free or (table, column) == ("worker_queues", "free")
        if rebuilding:
            for trigger in _FREE_TRIGGERS:
                tx.execute(f"DROP TRIGGER IF EXISTS {trigger}")
            # Before the indexes over the waits are built.
            tx.execute(EVENT_WAITS_BACKFILL)
            for index in REBUILT_INDEXES:
                tx.execute(f"DROP INDEX IF EXISTS {index}")
        for statement in _ROUTING_INDEXES:
            tx.execute(statement)
        if recompute_free:
            # Flags written by an older version's triggers, or none at all (a new column).
            tx.execute(f"UPDATE worker_queues SET free = {FREE_VALUE}")
        if rebuilding:
            tx.execute(WORKER_CHANNELS_BACKFILL)
        if upgrading:
            tx.set_setting("schema_version", str(SCHEMA_VERSION))
