"""A transaction over the sandbox database: query helpers, a row cache, updates held until a
statement could see them, and hooks that run after a successful commit (store/database.py
opens them).
"""

from __future__ import annotations

import functools
import re
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from taskrouter_sandbox.store.schema import DELETED_ALONE, VERSIONED_TABLES


class StoreError(RuntimeError):
    """The database cannot be used as asked (closed, newer schema, misuse of transactions)."""


class StoreBusy(StoreError):
    """A write transaction asked to wait at most so long did not get the write lock in time."""


# The table a write statement names. A DELETE may cascade, and so may a REPLACE (it deletes
# the row in its way), so they are treated as touching every table, except a DELETE from a
# table in DELETED_ALONE. Anything but a read (_READ) is a write: a read transaction refuses
# it (StoreError).
_WRITTEN_TABLE = re.compile(
    r"\s*(?:UPDATE(?:\s+OR\s+\w+)?|(?:INSERT|REPLACE)(?:\s+OR\s+\w+)?\s+INTO)\s+(\w+)",
    re.IGNORECASE,
)
_DELETED_TABLE = re.compile(r"\s*DELETE\s+FROM\s+(\w+)", re.IGNORECASE)
_READ = re.compile(r"\s*(?:SELECT|PRAGMA|EXPLAIN)\b", re.IGNORECASE)
# update() of a task or a reservation waits (Transaction.flush) until a statement that could
# see it runs: one that names its table, or worker_queues (whose free flag the reservations'
# triggers keep), or any but a SELECT, INSERT or UPDATE (a DELETE may cascade). No other
# trigger reads them, and other rows refer to them only by sid, which an update never
# changes. An operation's several updates of one row become one statement.
_DEFERRED_TABLES = frozenset({"tasks", "reservations"})
_SEES_DEFERRED = re.compile(r"\b(?:tasks|reservations|worker_queues)\b", re.IGNORECASE)
_BLIND = re.compile(r"\s*(?:SELECT|INSERT|UPDATE)\b", re.IGNORECASE)
# A statement that may change what columns a statement's text yields.
_DDL = re.compile(r"\s*(?:ALTER|CREATE|DROP)\b", re.IGNORECASE)
# Statement texts a store keeps what it knows of (the engine runs a few hundred).
_MAX_STATEMENTS = 2048
# What a cached row is counted as beside its attributes (RowCache.weight), in bytes.
ROW_WEIGHT = 2048


class _Statement:
    """What a transaction needs to know of one statement's text, worked out once per store:
    whether it only reads, the table it writes (None: unknown, or every table a DELETE may
    cascade to), whether held updates must be written before it, and its row factory."""

    __slots__ = ("ddl", "factory", "flushes", "read", "written")

    def __init__(self, sql: str) -> None:
        self.read, self.written, self.flushes, self.ddl = _classified(sql)
        # Per store: the column names it keeps are those of the store's own schema.
        self.factory = _row_factory()


@functools.lru_cache(maxsize=_MAX_STATEMENTS)
def _classified(sql: str) -> tuple[bool, str | None, bool, bool]:
    """What a statement's text says of itself, the same for every store: whether it only
    reads, the table it writes, whether held updates must be written before it, whether it is
    DDL. Kept for the process, since a fresh sandbox (a test's fixture) runs the same hundred
    texts again."""
    written = _WRITTEN_TABLE.match(sql)
    table = None
    if written:
        # The verbs before the table's name: REPLACE, or OR REPLACE after any of them.
        if "REPLACE" not in written.group(0)[: written.start(1)].upper():
            table = written.group(1).lower()
    else:
        deleted = _DELETED_TABLE.match(sql)
        if deleted and deleted.group(1).lower() in DELETED_ALONE:
            table = deleted.group(1).lower()
    return (
        bool(_READ.match(sql)),
        table,
        bool(_SEES_DEFERRED.search(sql) or not _BLIND.match(sql)),
        bool(_DDL.match(sql)),
    )


def _row_factory() -> Callable[[sqlite3.Cursor, tuple], dict[str, Any]]:
    """A row factory for one statement's text: its column names read from the first row's
    cursor description, then kept (one execute per row read is the engine's usual case, and
    each execute makes a new description)."""
    names: tuple[str, ...] | None = None

    def make(cursor: sqlite3.Cursor, row: tuple) -> dict[str, Any]:
        nonlocal names
        if names is None or len(names) != len(row):
            # Read again when the width changes: another connection (a newer server
            # upgrading the file) may have added a column to a table a `*` reads.
            names = tuple(column[0] for column in cursor.description)
        # The widths were compared just above: strict's own check would cost a fifth more.
        return dict(zip(names, row, strict=False))

    return make


@dataclass
class _CachedRow:
    row: dict[str, Any]
    # Tables whose rows the cached row's joined columns come from, and the row's own
    # columns those joins follow: a write to either makes the joined columns stale.
    joins: frozenset[str]
    keys: frozenset[str]
    # The columns of the joined tables the row shows (empty: not said, any column counts):
    # an update() of a joined row that leaves them alone keeps the cached row.
    joined: frozenset[str] = frozenset()


class RowCache:
    """The rows Transaction.cached keeps, with the indexes that say which a write may have
    changed. A read transaction has its own; a store's write transactions share one from each
    to the next (Store._transaction says when it is still true), so an operation reads again
    only what the last ones changed by raw SQL or deleted."""

    __slots__ = ("joined_into", "of_table", "rows", "seen", "weight")

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], _CachedRow] = {}
        # The keys of the cached rows by their table, and by each table they join and the
        # joined columns they show: a write drops what it may have changed without looking
        # at every cached row (an operation offering 800 tasks caches 800 reservations).
        self.of_table: dict[str, set[tuple[str, str]]] = {}
        self.joined_into: dict[str, dict[frozenset[str], set[tuple[str, str]]]] = {}
        # What the store last saw of the database when it kept these (Store._transaction).
        self.seen: object = None
        # About the bytes the rows kept since the last clear() hold (a row's attributes, up
        # to 16 KB, and 2 KB for the rest), never lowered when one is dropped: the store
        # starts again past a bound (Store._transaction).
        self.weight = 0

    def clear(self) -> None:
        self.rows.clear()
        self.of_table.clear()
        self.joined_into.clear()
        self.weight = 0


class Transaction:
    """One open transaction: query helpers and hooks that run after a successful commit."""

    def __init__(
        self,
        connection: sqlite3.Connection,
        write: bool,
        known: dict[str, _Statement] | None = None,
        cache: RowCache | None = None,
    ) -> None:
        # Never written through directly: the row cache would not know (a store's write
        # transactions keep it from one to the next, and their own commits do not move the
        # data_version that tells them another connection has written).
        self.connection = connection
        self.write = write
        # Statement text -> what is known of it, shared by the store's transactions.
        self._known = {} if known is None else known
        self._after_commit: list[Callable[[], None]] = []
        self._cache = RowCache() if cache is None else cache
        # The cache's own dicts, changed in place (never rebound): the lookups below are
        # the engine's most frequent.
        self._rows = self._cache.rows
        self._of_table = self._cache.of_table
        self._joined_into = self._cache.joined_into
        # Statements run through this transaction (an executemany counts each row), which
        # Store.statements adds up after it ends: the benchmark reports them per reservation.
        self.statements = 0
        # (table, sid) -> [the values its update() calls set, how many calls]: not yet written.
        self._pending: dict[tuple[str, str], list[Any]] = {}
        # The error a held update met when written: the transaction can only roll back.
        self.failed: BaseException | None = None

    def flush(self) -> None:
        """Write the updates still waiting, one UPDATE per row, in the order the rows were
        first updated (each row's version moved on once per update() call, as if each had
        been its own statement)."""
        if self.failed is not None:
            raise StoreError("an earlier held update failed: the transaction must roll back")
        pending, self._pending = self._pending, {}
        try:
            for (table, sid), (values, calls) in pending.items():
                assignments = ", ".join(f"{column} = ?" for column in values)
                self.statements += 1
                self.connection.execute(
                    f"UPDATE {table} SET {assignments}, version = version + ? WHERE sid = ?",
                    (*values.values(), calls, sid),
                )
        except BaseException as error:
            # The statement that set this off is not the one that failed, and the updates
            # after it are lost: a caller catching the error must not commit the rest (the
            # store rolls back at the end), and the cached rows hold the values not written.
            self.failed = error
            self._clear_rows()
            raise

    def _statement(self, sql: str) -> _Statement:
        statement = self._known.get(sql)
        if statement is None:
            if len(self._known) >= _MAX_STATEMENTS:
                self._known.clear()  # texts built with values in them: keep it bounded
            statement = self._known[sql] = _Statement(sql)
        return statement

    def cached(
        self,
        table: str,
        sid: str,
        load: Callable[[], dict[str, Any] | None],
        *,
        joins: frozenset[str] = frozenset(),
        keys: frozenset[str] = frozenset(),
        joined: frozenset[str] = frozenset(),
        view: bool = False,
    ) -> dict[str, Any] | None:
        """A copy of table's row sid as load() reads it (a fresh dict each time: the cache
        keeps it), read once and then kept: by a write transaction for the store's next ones
        too (RowCache). view: the cached dict itself, no copy, for a caller that only reads
        it at once (never changes it, never keeps it past the next write or the transaction).

        Routing reads the same task and reservation many times in one operation. update()
        patches a cached row with the values it writes; any other write that could touch it
        (to its table by raw SQL, to a table in joins, to one of the keys its joins follow,
        any delete) drops it, so the next call reads it again. An update() of a row of a
        table in joins drops it only when it writes one of the joined columns (when given).
        """
        entry = self._rows.get((table, sid))
        # Kept by an earlier transaction, the row may have been read by another SELECT: a
        # caller that joins other tables reads its own (state/reads.py has one per table).
        if entry is None or entry.joins != joins or entry.keys != keys:
            row = load()
            if row is None:
                return None
            entry = _CachedRow(row, joins, keys, joined)
            self._keep((table, sid), entry)
        return entry.row if view else dict(entry.row)

    def seed(
        self,
        table: str,
        sid: str,
        row: dict[str, Any],
        *,
        joins: frozenset[str] = frozenset(),
        keys: frozenset[str] = frozenset(),
        joined: frozenset[str] = frozenset(),
    ) -> None:
        """Cache a row read (or written) just now in this transaction, as cached() would
        have loaded it: the next cached() of it reads nothing."""
        if self.write:
            self._keep((table, sid), _CachedRow(dict(row), joins, keys, joined))

    def _forget(
        self, table: str | None, sid: str | None = None, columns: frozenset[str] | None = None
    ) -> None:
        """Drop cached rows a write to table (row sid, or any row; columns, when known) may
        have changed; a table of None drops everything."""
        if not self._rows:
            return
        if table is None:
            self._clear_rows()
            return
        if sid is None:
            doomed = list(self._of_table.get(table, ()))
        else:
            doomed = [(table, sid)] if (table, sid) in self._rows else []
        for joined, keys in self._joined_into.get(table, {}).items():
            if columns is None or not joined or not joined.isdisjoint(columns):
                doomed += keys
        for key in doomed:
            self._drop(key)

    def _drop(self, key: tuple[str, str]) -> None:
        entry = self._rows.pop(key, None)
        if entry is not None:
            self._of_table[key[0]].discard(key)
            for other in entry.joins:
                self._joined_into[other][entry.joined].discard(key)

    def _keep(self, key: tuple[str, str], entry: _CachedRow) -> None:
        self._drop(key)
        attributes = entry.row.get("attributes")
        self._cache.weight += ROW_WEIGHT + (len(attributes) if type(attributes) is str else 0)
        self._rows[key] = entry
        self._of_table.setdefault(key[0], set()).add(key)
        for other in entry.joins:
            self._joined_into.setdefault(other, {}).setdefault(entry.joined, set()).add(key)

    def _clear_rows(self) -> None:
        self._cache.clear()

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        # The known statement's lookup inline: the engine runs about 28 per reservation.
        statement = self._known.get(sql) or self._statement(sql)
        if self._pending and statement.flushes:
            self.flush()
        if not statement.read:
            self._require_write()
            if self._rows:
                self._forget(statement.written)
            if statement.ddl:
                self._known.clear()
        self.statements += 1
        cursor = self.connection.cursor()
        cursor.row_factory = statement.factory
        return cursor.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._require_write()
        statement = self._statement(sql)
        if self._pending and statement.flushes:
            self.flush()
        self._forget(statement.written)
        self.statements += len(rows)
        self.connection.executemany(sql, rows)

    def one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> dict[str, Any] | None:
        return self.execute(sql, params).fetchone()

    def all(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        return self.execute(sql, params).fetchall()

    def scalar(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        row = self.execute(sql, params).fetchone()
        return None if row is None else next(iter(row.values()))

    def insert(
        self, table: str, values: dict[str, Any], *, returning: bool = False
    ) -> dict[str, Any] | None:
        """INSERT a row; returning: the whole row as stored (its defaults filled in), from
        the same statement (RETURNING *)."""
        self._require_write()
        if self._pending and table in _DEFERRED_TABLES:
            self.flush()
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        self.statements += 1
        sql = f"INSERT INTO {table} ({columns}) VALUES ({marks})"
        if returning:
            sql += " RETURNING *"
        cursor = self.connection.execute(sql, tuple(values.values()))
        # Every row fetched, so the statement is done before the next one.
        rows = cursor.fetchall() if returning else None
        if self._rows:
            self._forget(table, values.get("sid"))
        return rows[0] if rows else None

    def update(
        self,
        table: str,
        sid: str,
        values: dict[str, Any],
        *,
        joined: dict[str, Any] | None = None,
    ) -> None:
        """UPDATE table's row sid with values (and its version, for a versioned table).
        joined: the new values of a cached row's joined columns that values' keys change
        (a task's queue name with its task_queue_sid), so the cached row stays."""
        self._require_write()
        if not values:
            return
        if table in _DEFERRED_TABLES and "version" not in values:
            waiting = self._pending.get((table, sid))
            if waiting is None:
                self._pending[(table, sid)] = [dict(values), 1]
            else:
                waiting[0].update(values)
                waiting[1] += 1
            if self._rows:
                self._patch(table, sid, values, joined)
            return
        if self._pending and table in _DEFERRED_TABLES:
            self.flush()
        assignments = ", ".join(f"{column} = ?" for column in values)
        if table in VERSIONED_TABLES and "version" not in values:
            # The version moves on here, so the row's version trigger (which would write the
            # row a second time) finds it moved and does nothing.
            assignments += ", version = version + 1"
        self.statements += 1
        self.connection.execute(
            f"UPDATE {table} SET {assignments} WHERE sid = ?", (*values.values(), sid)
        )
        if self._rows:
            self._patch(table, sid, values, joined)

    def _patch(
        self, table: str, sid: str, values: dict[str, Any], joined: dict[str, Any] | None
    ) -> None:
        key = (table, sid)
        entry = self._rows.get(key)
        keep = entry is not None and (joined is not None or entry.keys.isdisjoint(values))
        if keep:
            for value in values.values():
                # Only what SQLite hands back unchanged; a bool would come back as an integer.
                if value is not None and (
                    isinstance(value, bool) or not isinstance(value, str | int | float)
                ):
                    keep = False
                    break
        # What _forget(table, sid, columns) drops: the row itself (unless it is patched and
        # kept, below) and the rows joining table whose joined columns values may change.
        doomed = [] if keep or entry is None else [key]
        joined_into = self._joined_into.get(table)
        if joined_into:
            for columns, keys in joined_into.items():
                if not columns or not columns.isdisjoint(values):
                    doomed += keys
        for other in doomed:
            if other != key or not keep:
                self._drop(other)
        if not keep or entry is None:
            return
        entry.row.update(values)
        if joined:
            entry.row.update(joined)
        if table in VERSIONED_TABLES and "version" in entry.row and "version" not in values:
            # The row's version trigger has just moved it on by one.
            entry.row["version"] += 1

    def delete(self, table: str, sid: str) -> None:
        self._require_write()
        self.flush()
        self.statements += 1
        self.connection.execute(f"DELETE FROM {table} WHERE sid = ?", (sid,))
        # Foreign keys cascade: anything cached may be gone, unless nothing refers to it.
        self._forget(table if table in DELETED_ALONE else None)

    def setting(self, key: str) -> str | None:
        return self.scalar("SELECT value FROM settings WHERE key = ?", (key,))

    def set_setting(self, key: str, value: str) -> None:
        self._require_write()
        self.statements += 1
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
