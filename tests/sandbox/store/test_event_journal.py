"""Schema version 9: a write operation's events go into the event journal as one row, and move
into `events` in batches; every reader of the events moves what the journal holds first, so a
client answered for an operation sees its events at once, and nothing is lost or doubled."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskrouter_sandbox import store as store_module
from taskrouter_sandbox.clock import ManualClock
from taskrouter_sandbox.domain.values import Paging
from taskrouter_sandbox.engine import Engine
from taskrouter_sandbox.store import Store, StoreError, Transaction
from tests.sandbox.conftest import accept_and_complete, live_sandbox, one_queue_floor, routing

ACCOUNT_SID = "AC" + "e" * 32
# Longer than any test's run: nothing moves but what a reader asks for.
NEVER = 10**9


def _engine(store: Store, clock: ManualClock, move_every: int = NEVER) -> Engine:
    engine = Engine(store, clock, ACCOUNT_SID)
    engine.operations.move_every = move_every
    return engine


@pytest.fixture
def database(tmp_path: Path) -> str:
    return str(tmp_path / "journal.sqlite3")


@pytest.fixture
def store(database: str) -> Iterator[Store]:
    opened = Store(database)
    yield opened
    opened.close()


def _journal(store: Store) -> int:
    with store.read() as tx:
        return tx.scalar("SELECT count(*) FROM event_journal")


def _event_sids(store: Store) -> list[str]:
    with store.read() as tx:
        return [row["sid"] for row in tx.all("SELECT sid FROM events ORDER BY seq")]


def _all_events(engine: Engine, ws: str) -> list[dict]:
    return engine.list_events(ws, Paging(page_size=1000), minutes=60).rows


def test_an_operations_events_are_journaled_then_listed_right_after_its_answer(store):
    clock = ManualClock()
    engine = _engine(store, clock)
    ws, _queue, flow, _worker = one_queue_floor(engine)
    task = engine.create_task(ws, attributes="{}", workflow_sid=flow)["sid"]
    # Still in the journal: nothing has read the events yet.
    assert _journal(store) > 0
    with store.read() as tx:
        assert tx.scalar("SELECT count(*) FROM events") == 0
    types = [event["event_type"] for event in _all_events(engine, ws) if event["task_sid"] == task]
    assert "task.created" in types and "reservation.created" in types
    assert _journal(store) == 0
    # Fetched by SID, and the event bridge's readers see them too.
    created = next(e for e in _all_events(engine, ws) if e["event_type"] == "task.created")
    assert engine.get_event(ws, created["sid"])["sid"] == created["sid"]
    engine.create_task(ws, attributes="{}", workflow_sid=flow)
    assert _journal(store) > 0
    last = engine.last_event()
    assert _journal(store) == 0
    assert last == max(row["seq"] for row in engine.events_after(0, limit=1000))


def test_the_cumulative_statistics_count_events_still_in_the_journal(store):
    clock = ManualClock()
    engine = _engine(store, clock)
    ws, queue, flow, _worker = one_queue_floor(engine)
    task = engine.create_task(ws, attributes="{}", workflow_sid=flow)["sid"]
    accept_and_complete(engine, ws, task)
    assert _journal(store) > 0
    figures = engine.workspace_cumulative_statistics(ws)
    assert figures["tasks_created"] == 1 and figures["tasks_completed"] == 1
    assert engine.task_queue_cumulative_statistics(ws, queue)["reservations_accepted"] == 1


def test_the_journal_moves_every_few_operations_in_their_order(store):
    clock = ManualClock()
    engine = _engine(store, clock, move_every=3)
    ws, _queue, flow, _worker = one_queue_floor(engine)
    for _ in range(5):
        engine.create_task(ws, attributes="{}", workflow_sid=flow)
    # Never more than two operations' events waiting.
    waiting = _journal(store)
    events = list(reversed(_all_events(engine, ws)))
    assert waiting < len(events) / 3
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    created = [e["resource_sid"] for e in events if e["event_type"] == "task.created"]
    with store.read() as tx:
        tasks = [row["sid"] for row in tx.all("SELECT sid FROM tasks ORDER BY seq")]
    assert created == tasks


def test_an_operation_that_rolls_back_leaves_no_journal_row(store):
    clock = ManualClock()
    engine = _engine(store, clock)
    ws, _queue, flow, _worker = one_queue_floor(engine)
    engine.last_event()  # the journal empty
    with pytest.raises(RuntimeError), engine.operations.write() as op:
        op.tx.execute("SELECT 1")
        engine.create_task(ws, attributes="{}", workflow_sid=flow)
        raise RuntimeError("rolled back")
    assert _journal(store) == 0
    assert not [e for e in _all_events(engine, ws) if e["event_type"] == "task.created"]


def test_a_move_that_fails_between_its_two_steps_loses_and_doubles_nothing(store, monkeypatch):
    clock = ManualClock()
    engine = _engine(store, clock)
    ws, _queue, flow, _worker = one_queue_floor(engine)
    for _ in range(3):
        engine.create_task(ws, attributes="{}", workflow_sid=flow)
    waiting = _journal(store)
    assert waiting >= 3
    real = Transaction.execute

    def insert_then_fail(self, sql, params=()):
        cursor = real(self, sql, params)
        if sql.startswith("INSERT INTO events"):
            raise RuntimeError("the mover dies after writing the events, before the delete")
        return cursor

    monkeypatch.setattr(Transaction, "execute", insert_then_fail)
    with pytest.raises(RuntimeError):
        engine.operations.catch_up_events()
    assert _journal(store) == waiting and _event_sids(store) == []
    monkeypatch.undo()
    moved = engine.operations.catch_up_events()
    sids = _event_sids(store)
    assert moved == len(sids) > 0 and len(set(sids)) == len(sids)
    assert _journal(store) == 0 and engine.operations.catch_up_events() == 0


def test_deleting_a_workspace_takes_its_pending_journal_rows_along(store):
    clock = ManualClock()
    engine = _engine(store, clock)
    gone, _queue, flow, _worker = one_queue_floor(engine)
    kept, _queue2, kept_flow, _worker2 = one_queue_floor(engine)
    engine.create_task(gone, attributes="{}", workflow_sid=flow)
    engine.create_task(kept, attributes="{}", workflow_sid=kept_flow)
    with store.read() as tx:
        pending = {row["workspace_sid"] for row in tx.all("SELECT * FROM event_journal")}
    assert pending == {gone, kept}
    engine.delete_workspace(gone)
    with store.read() as tx:
        left = {row["workspace_sid"] for row in tx.all("SELECT * FROM event_journal")}
        assert left == {kept}
    assert [e for e in _all_events(engine, kept) if e["event_type"] == "task.created"]
    with store.read() as tx:
        assert tx.scalar("SELECT count(*) FROM events WHERE workspace_sid = ?", (gone,)) == 0


def test_a_wipe_empties_the_journal(store):
    clock = ManualClock()
    engine = _engine(store, clock)
    ws, _queue, flow, _worker = one_queue_floor(engine)
    engine.create_task(ws, attributes="{}", workflow_sid=flow)
    assert _journal(store) > 0
    with store.transaction() as tx:
        Store.wipe(tx)
    assert _journal(store) == 0 and _event_sids(store) == []


def test_two_stores_over_one_file_each_list_the_others_events(database):
    clock = ManualClock()
    first, second = Store(database), Store(database)
    try:
        one, other = _engine(first, clock), _engine(second, clock)
        ws, _queue, flow, _worker = one_queue_floor(one)
        # Each write committed as the REST API commits one before it answers (the engine's
        # own calls commit behind, store/behind.py).
        by_first = one.create_task(ws, attributes="{}", workflow_sid=flow)["sid"]
        first.sync()
        assert any(e["task_sid"] == by_first for e in _all_events(other, ws))
        by_second = other.create_task(ws, attributes="{}", workflow_sid=flow)["sid"]
        second.sync()
        assert any(e["task_sid"] == by_second for e in _all_events(one, ws))
        sids = _event_sids(first)
        assert len(sids) == len(set(sids)) and _journal(first) == 0
    finally:
        first.close()
        second.close()


def test_a_version_8_file_opens_with_its_events_and_statistics(database):
    clock = ManualClock()
    store = Store(database)
    try:
        engine = _engine(store, clock)
        ws, queue, flow, _worker = one_queue_floor(engine)
        task = engine.create_task(ws, attributes="{}", workflow_sid=flow)["sid"]
        clock.advance(30)
        accept_and_complete(engine, ws, task)
        before = engine.task_queue_cumulative_statistics(ws, queue, split_by_wait_time="40")
        events = _all_events(engine, ws)
        # Version 8 had no journal; its events were all in `events`.
        with store.transaction() as tx:
            tx.execute("DROP TABLE event_journal")
            tx.set_setting("schema_version", "8")
    finally:
        store.close()
    store = Store(database)
    try:
        engine = _engine(store, clock)
        with store.read() as tx:
            assert tx.setting("schema_version") == str(store_module.SCHEMA_VERSION) == "9"
            assert tx.scalar("SELECT count(*) FROM event_journal") == 0
        assert _all_events(engine, ws) == events
        after = engine.task_queue_cumulative_statistics(ws, queue, split_by_wait_time="40")
        assert after == before and after["reservations_accepted"] == 1
        # And the journal works on the upgraded file.
        engine.create_task(ws, attributes="{}", workflow_sid=flow)
        assert len(_all_events(engine, ws)) > len(events)
    finally:
        store.close()


def test_over_http_an_operations_events_are_listed_right_after_its_answer(tmp_path):
    with live_sandbox(str(tmp_path / "http.sqlite3")) as live:
        live.sandbox.engine.operations.move_every = NEVER
        workspace = live.new_workspace("Journal")
        queue = workspace.task_queues.create(friendly_name="All", target_workers="1==1")
        workflow = workspace.workflows.create(
            friendly_name="Flow",
            configuration=routing(default=queue.sid),
        )
        task = workspace.tasks.create(attributes="{}", workflow_sid=workflow.sid)
        listed = workspace.events.list(task_sid=task.sid)
        assert "task.created" in {event.event_type for event in listed}
        figures = workspace.cumulative_statistics().fetch()
        assert figures.tasks_created == 1


def test_a_reader_goes_on_while_another_process_holds_the_write_lock(database):
    clock = ManualClock()
    store = Store(database, busy_timeout_ms=5000)
    try:
        engine = _engine(store, clock)
        ws, _queue, flow, _worker = one_queue_floor(engine)
        task = engine.create_task(ws, attributes="{}", workflow_sid=flow)["sid"]
        # Another process (a reset, an upgrade) holds the write lock for longer than a read
        # may wait: the read answers from what has moved so far instead of failing.
        holding = (
            "import sqlite3, sys\n"
            f"c = sqlite3.connect({database!r}, isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE'); print('held', flush=True)\n"
            "sys.stdin.readline(); c.execute('COMMIT')\n"
        )
        with subprocess.Popen(
            [sys.executable, "-c", holding],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        ) as holder:
            assert holder.stdout is not None and holder.stdin is not None
            try:
                assert holder.stdout.readline().strip() == "held"
                started = time.monotonic()
                listed = _all_events(engine, ws)
                assert time.monotonic() - started < 2.5
                assert task not in {event["task_sid"] for event in listed}
            finally:
                holder.stdin.write("\n")
                holder.stdin.flush()
                holder.wait(10)
        # Once the lock is free, the next read moves the journal first.
        assert task in {event["task_sid"] for event in _all_events(engine, ws)}
        assert _journal(store) == 0
    finally:
        store.close()


def test_events_read_inside_a_read_transaction_with_the_journal_pending_are_refused(store):
    engine = _engine(store, ManualClock())
    ws, _queue, flow, _worker = one_queue_floor(engine)
    engine.create_task(ws, attributes="{}", workflow_sid=flow)
    with store.read(), pytest.raises(StoreError, match="inside a read transaction"):
        _all_events(engine, ws)
    # Outside it, the same read moves the journal and lists the task's events.
    assert _all_events(engine, ws)


def test_the_journal_has_every_column_of_the_events_but_their_own_seq(store):
    # A column added to `events` (schema._COLUMNS) must be added to the journal as well, or
    # move() would leave it empty.
    with store.read() as tx:
        events = [row["name"] for row in tx.all("PRAGMA table_info(events)")]
        journal = [row["name"] for row in tx.all("PRAGMA table_info(event_journal)")]
    assert journal == events
