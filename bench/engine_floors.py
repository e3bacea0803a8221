"""Benchmark 3's engine run (engine_run: the engine alone, on a file store or on :memory:) and
what it counts and compares itself with: the WAL pages its commits write (WalFrames), two
floors over the rows it added (write_floor, indexed_floor), and, in a run of its own, the time
its statements took (bench/statement_times.py).
"""

from __future__ import annotations

import json
import os
import random
import resource
import secrets
import sqlite3
import sys
import tempfile
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.common import BenchError
from bench.live import LANGUAGES, task_attributes, worker_languages, workflow_configuration
from bench.statement_times import StatementTimes

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


class NoWal:
    """WalFrames' stand-in for a store with no file (the :memory: run): nothing is counted."""

    frames = 0

    def count(self) -> None:
        pass

    def close(self) -> None:
        pass


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


def _committed(store: Store, offered: deque) -> bool:
    """Whether committing the writes still behind (store/behind.py) published more offers: the
    engine publishes an operation's effects once its commit is done."""
    store.sync()
    return bool(offered)


def engine_run(
    tasks: int, workers: int, seed: int = 11, *, memory: bool = False, timed: bool = False
) -> dict[str, Any]:
    """Create `tasks` tasks with `workers` workers available; accept each offer as an
    assignment callback answering accept would, complete the task to free the worker, until
    every task has been assigned. Returns the timings. memory: the store is Store(":memory:"),
    no disk at all (what the engine's own logic costs), with no WAL count and no floors.
    timed: every statement timed (bench/statement_times.py), no floors; call it last in its
    process, since the connections opened after it stay timed."""
    from taskrouter_sandbox.clock import SystemClock
    from taskrouter_sandbox.domain.values import AssignmentCallback, AssignmentOutcome, Paging
    from taskrouter_sandbox.engine import Engine
    from taskrouter_sandbox.state import outbox
    from taskrouter_sandbox.store import Store

    clock = StatementTimes()
    if timed:
        clock.install()
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as scratch:
        store = Store(":memory:" if memory else str(Path(scratch) / "engine.sqlite3"))
        try:
            engine = Engine(store, SystemClock(), "AC" + secrets.token_hex(16))
            engine.ensure_routing_state()
            workspace_sid = engine.create_workspace("Benchmark", multi_task_enabled=False)["sid"]
            available = engine.list_activities(
                workspace_sid, Paging(), friendly_name="Available"
            ).rows[0]["sid"]
            queue_sids = {
                language: engine.create_task_queue(
                    workspace_sid,
                    f"Language {language}",
                    target_workers=f'languages HAS "{language}"',
                )["sid"]
                for language in LANGUAGES
            }
            workflow_sid = engine.create_workflow(
                workspace_sid,
                "Benchmark workflow",
                workflow_configuration(queue_sids),
                # Never called: this benchmark plays the callback's part itself.
                assignment_callback_url="http://127.0.0.1:9/assignment",
                task_reservation_timeout=600,
            )["sid"]
            for index in range(workers):
                engine.create_worker(
                    workspace_sid,
                    f"Agent {index:05d}",
                    activity_sid=available,
                    attributes=json.dumps({"languages": worker_languages(index, rng)}),
                )
            specs = [task_attributes(index, rng) for index in range(tasks)]

            # The set-up's events out of the journal, so that the floors copy only the run's.
            engine.operations.catch_up_events()
            with store.read() as tx:
                last_seq = {
                    table: tx.scalar(f"SELECT coalesce(max(seq), 0) FROM {table}")
                    for table in FLOOR_TABLES
                }
            wal = NoWal() if memory else WalFrames(store.database)
            offered: deque[AssignmentCallback] = deque()
            engine.subscribe(
                lambda effects: offered.extend(
                    effect for effect in effects if isinstance(effect, AssignmentCallback)
                )
            )
            statements = store.statements
            clock.start()
            started, cpu_started = time.perf_counter(), time.process_time()
            for attributes, priority in specs:
                engine.create_task(
                    workspace_sid,
                    attributes=attributes,
                    workflow_sid=workflow_sid,
                    priority=priority,
                )
                wal.count()
            created = time.perf_counter()
            accepted = 0
            while offered or _committed(store, offered):
                offer = offered.popleft()
                with store.transaction() as tx:
                    outbox.delivered(tx, offer.reservation_sid)
                    engine.apply_assignment_outcome(
                        AssignmentOutcome(
                            reservation_sid=offer.reservation_sid,
                            instruction="accept",
                            accept=True,
                            reject=False,
                            activity_sid=None,
                            params={"instruction": "accept"},
                            alerts=(),
                            url_used=offer.url,
                            status_code=200,
                            elapsed_ms=0.0,
                        )
                    )
                wal.count()
                accepted += 1
                # Frees the worker, which routing offers the head of its queues at once.
                engine.update_task(
                    workspace_sid,
                    offer.params["TaskSid"],
                    assignment_status="completed",
                    reason="benchmark",
                )
                wal.count()
            # The events still in the journal (schema version 9) into `events`, counted in
            # the run: every event is where a reader finds it at the end.
            engine.operations.catch_up_events()
            store.sync()
            wal.count()
            finished, cpu_finished = time.perf_counter(), time.process_time()
            clock.stop()
            wal.close()
            statements = store.statements - statements
            left = engine.list_tasks(
                workspace_sid, Paging(page_size=1), assignment_status=["pending", "reserved"]
            )
            peak_memory_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            floor_seconds = indexed_seconds = 0.0
            events = 0
            if not memory and not timed:
                floor_seconds, events = write_floor(store, last_seq, Path(scratch))
                # One transaction per engine call of the timed part: a create, an accept and a
                # completion per reservation.
                writes = tasks + 2 * accepted
                indexed_seconds = indexed_floor(store, last_seq, Path(scratch), writes)
        finally:
            store.close()
    if accepted != tasks or left.rows:
        raise BenchError(f"the engine assigned {accepted} of {tasks} tasks")
    return {
        "seconds": finished - started,
        "create_seconds": created - started,
        "accepted": accepted,
        "floor_seconds": floor_seconds,
        "indexed_floor_seconds": indexed_seconds,
        "events": events,
        "peak_memory_mb": peak_memory_mb,
        "cpu_seconds": cpu_finished - cpu_started,
        "statements": statements,
        "wal_pages": wal.frames,
        "statement_seconds": clock.seconds,
        "heaviest": clock.heaviest(),
    }
