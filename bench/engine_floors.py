"""What benchmark 3's engine run counts and compares itself with: the WAL pages its commits
write (WalFrames), and two floors over the rows it added (write_floor, indexed_floor).
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from taskrouter_sandbox.store import Store


class WalFrames:
    """The WAL frames (pages) a store's commits write, counted from the WAL index: its header,
    at the start of the -shm file, holds mxFrame, the frames in the log, as a native 32-bit
    integer at byte 16 (SQLite's walformat.html). A commit adds its pages to it; the first
    commit after a checkpoint has copied the whole log back starts the log again from frame 1.
    count() after every write call (at most one commit each) adds up the frames written since
    the last, with the store's own checkpoints left as they are."""

    def __init__(self, database: str) -> None:
        self._shm = os.open(database + "-shm", os.O_RDONLY)
        self._last = self._max_frame()
        self.frames = 0

    def _max_frame(self) -> int:
        return int.from_bytes(os.pread(self._shm, 4, 16), sys.byteorder)

    def count(self) -> None:
        now = self._max_frame()
        self.frames += now - self._last if now >= self._last else now
        self._last = now

    def close(self) -> None:
        os.close(self._shm)


# The rows a reservation's lifecycle adds, which the floor writes again.
FLOOR_TABLES = ("tasks", "reservations", "events")


def write_floor(store: Store, last_seq: Mapping[str, int], scratch: Path) -> tuple[float, int]:
    """(seconds, events) to write again the task, reservation and event rows the run added
    (seq past last_seq[table]) to tables with no index or constraint, all in one transaction,
    each event's data JSON-encoded anew: the least any engine keeping the same records spends
    on them, with routing, reads and updates left out. Reading the rows back is not timed."""
    connection = sqlite3.connect(scratch / "floor.sqlite3", isolation_level=None)
    seconds, events = 0.0, 0
    try:
        # The store's own settings: WAL, no fsync.
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = OFF")
        connection.execute("BEGIN IMMEDIATE")
        with store.read() as tx:
            for table in FLOOR_TABLES:
                cursor = tx.execute(
                    f"SELECT * FROM {table} WHERE seq > ? ORDER BY seq", (last_seq[table],)
                )
                columns = [column[0] for column in cursor.description]
                connection.execute(f"CREATE TABLE {table} ({', '.join(columns)})")
                insert = f"INSERT INTO {table} VALUES ({', '.join('?' * len(columns))})"
                data = columns.index("event_data") if table == "events" else None
                # In slices, so the rows of a large run never sit in memory all at once.
                while rows := cursor.fetchmany(2000):
                    values = [tuple(row.values()) for row in rows]
                    payloads = [] if data is None else [json.loads(row[data]) for row in values]
                    started = time.perf_counter()
                    if data is not None:
                        values = [
                            (*row[:data], json.dumps(payload), *row[data + 1 :])
                            for row, payload in zip(values, payloads, strict=True)
                        ]
                        events += len(values)
                    connection.executemany(insert, values)
                    seconds += time.perf_counter() - started
        started = time.perf_counter()
        connection.execute("COMMIT")
        return seconds + time.perf_counter() - started, events
    finally:
        connection.close()


def indexed_floor(
    store: Store, last_seq: Mapping[str, int], scratch: Path, transactions: int
) -> float:
    """Seconds to write again the same task, reservation and event rows, as stored, into a
    fresh store's schema (every index and trigger, its pragmas), in `transactions`
    transactions (the engine's write calls: three per reservation) that each take an even
    share of each table's rows in order: what the records and their indexes cost with a
    commit per call, before any routing, read or update. Reading the rows is not timed."""
    from taskrouter_sandbox.store import Store as FloorStore
    from taskrouter_sandbox.store.database import WAL_CHECKPOINT_PAGES

    database = scratch / "indexed-floor.sqlite3"
    FloorStore(str(database)).close()
    connection = sqlite3.connect(database, isolation_level=None)
    seconds = 0.0
    try:
        connection.execute("PRAGMA synchronous = OFF")
        connection.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
        # Foreign keys stay off (the raw connection's default): the rows they name (the
        # workspace, its workers) are not copied.
        with store.read() as tx:
            streams = []
            for table in FLOOR_TABLES:
                total = tx.scalar(f"SELECT count(*) FROM {table} WHERE seq > ?", (last_seq[table],))
                cursor = tx.connection.cursor()
                cursor.row_factory = None
                cursor.execute(
                    f"SELECT * FROM {table} WHERE seq > ? ORDER BY seq", (last_seq[table],)
                )
                columns = ", ".join(column[0] for column in cursor.description)
                marks = ", ".join("?" * len(cursor.description))
                streams.append((f"INSERT INTO {table} ({columns}) VALUES ({marks})", cursor, total))
            for index in range(transactions):
                shares = [
                    (
                        insert,
                        cursor.fetchmany(
                            total * (index + 1) // transactions - total * index // transactions
                        ),
                    )
                    for insert, cursor, total in streams
                ]
                started = time.perf_counter()
                connection.execute("BEGIN IMMEDIATE")
                for insert, rows in shares:
                    if rows:
                        connection.executemany(insert, rows)
                connection.execute("COMMIT")
                seconds += time.perf_counter() - started
        return seconds
    finally:
        connection.close()
