"""A transaction's updates of tasks and reservations wait until a statement could see them:
one UPDATE per row, the version moved on once per update, nothing lost at commit or seen
after a rollback, and the reservations' free flag current before worker_queues is read.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest

from taskrouter_sandbox.clock import ManualClock
from taskrouter_sandbox.domain.values import Paging
from taskrouter_sandbox.engine import Engine
from taskrouter_sandbox.seed import Seeded, ensure_seeded
from taskrouter_sandbox.state import reads
from taskrouter_sandbox.state.operation import Operation
from taskrouter_sandbox.store import Store, StoreError

ACCOUNT_SID = "AC" + "d" * 32


@pytest.fixture
def engine() -> Iterator[Engine]:
    store = Store(":memory:")
    yield Engine(store, ManualClock(), ACCOUNT_SID)
    store.close()


def _task(engine: Engine) -> tuple[Seeded, str]:
    seeded = ensure_seeded(engine)
    # No worker is available in the seed: the task stays pending, offered to nobody.
    task = engine.create_task(seeded.workspace_sid, attributes='{"selected_language": "fr"}')
    return seeded, task["sid"]


def test_several_updates_of_a_task_become_one_statement_seen_by_the_next_read(
    engine: Engine,
) -> None:
    _, sid = _task(engine)
    with engine.store.read() as tx:
        version = tx.scalar("SELECT version FROM tasks WHERE sid = ?", (sid,))
    with engine.store.transaction() as tx:
        before = tx.statements
        tx.update("tasks", sid, {"priority": 3})
        tx.update("tasks", sid, {"priority": 4, "reason": "later"})
        tx.execute("SELECT 1 FROM activities LIMIT 1")  # cannot see tasks: still waiting
        assert tx.statements == before + 1
        row = tx.one("SELECT priority, reason, version FROM tasks WHERE sid = ?", (sid,))
        # The read ran after one UPDATE: the later values win, the version moved on twice.
        assert tx.statements == before + 3
        assert (row["priority"], row["reason"], row["version"]) == (4, "later", version + 2)


def test_waiting_updates_are_written_at_commit_and_dropped_on_rollback(engine: Engine) -> None:
    _, sid = _task(engine)
    with engine.store.transaction() as tx:
        tx.update("tasks", sid, {"priority": 7})
    with engine.store.read() as tx:
        assert tx.scalar("SELECT priority FROM tasks WHERE sid = ?", (sid,)) == 7
    with pytest.raises(RuntimeError), engine.store.transaction() as tx:
        tx.update("tasks", sid, {"priority": 9})
        raise RuntimeError("rolled back")
    with engine.store.read() as tx:
        assert tx.scalar("SELECT priority FROM tasks WHERE sid = ?", (sid,)) == 7


def test_a_delete_writes_what_waits_first(engine: Engine) -> None:
    seeded, sid = _task(engine)
    with engine.store.transaction() as tx:
        ran: list[str] = []
        tx.connection.set_trace_callback(ran.append)
        try:
            tx.update("tasks", sid, {"priority": 5})
            # A delete names no task here, but it may cascade to one: the update goes first.
            tx.execute("DELETE FROM alerts WHERE sid = ?", ("NO" + "0" * 32,))
        finally:
            tx.connection.set_trace_callback(None)
        # (A trigger's statements are traced too.)
        held = [i for i, statement in enumerate(ran) if statement.startswith("UPDATE tasks")]
        [delete] = [i for i, statement in enumerate(ran) if statement.startswith("DELETE")]
        assert held and held[0] < delete
        tx.execute("DELETE FROM tasks WHERE sid = ?", (sid,))
        assert tx.scalar("SELECT count(*) FROM tasks WHERE sid = ?", (sid,)) == 0
    assert engine.get_workspace(seeded.workspace_sid)["sid"] == seeded.workspace_sid


def test_a_held_update_that_fails_when_written_fails_its_whole_transaction(
    engine: Engine,
) -> None:
    seeded = ensure_seeded(engine)
    first, second = (
        engine.create_task(seeded.workspace_sid, attributes='{"selected_language": "fr"}')["sid"]
        for _ in range(2)
    )
    with pytest.raises(StoreError, match="roll back"), engine.store.transaction() as tx:
        op = Operation(tx, engine.clock, ACCOUNT_SID)
        status = reads.task_row(op, first)["assignment_status"]
        tx.update("tasks", first, {"assignment_status": None})  # NOT NULL: fails when written
        tx.update("tasks", second, {"priority": 9})
        # The error surfaces at the statement that needs the updates written.
        with pytest.raises(sqlite3.IntegrityError):
            tx.one("SELECT sid FROM tasks WHERE sid = ?", (second,))
        # The cached row does not keep the value that was never written.
        assert reads.task_row(op, first)["assignment_status"] == status
    # A caller that caught the error commits nothing of the transaction, not half of it.
    with engine.store.read() as tx:
        assert tx.scalar("SELECT priority FROM tasks WHERE sid = ?", (second,)) == 0
        assert tx.scalar("SELECT assignment_status FROM tasks WHERE sid = ?", (first,)) == status


def test_update_or_ignore_and_insert_or_replace_name_the_table_they_write(
    engine: Engine,
) -> None:
    _, sid = _task(engine)
    with engine.store.transaction() as tx:
        op = Operation(tx, engine.clock, ACCOUNT_SID)
        reads.task_row(op, sid)
        tx.execute("UPDATE OR IGNORE tasks SET priority = 7 WHERE sid = ?", (sid,))
        assert reads.task_row(op, sid)["priority"] == 7


def test_a_column_another_connection_adds_reaches_the_rows_read(tmp_path) -> None:
    # A newer server upgrading the file while this one runs: a `*` then reads one more column.
    path = str(tmp_path / "sandbox.sqlite3")
    store = Store(path)
    try:
        with store.read() as tx:
            assert "note" not in tx.all("SELECT * FROM settings")[0]
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("ALTER TABLE settings ADD COLUMN note TEXT")
        other.close()
        with store.read() as tx:
            assert tx.all("SELECT * FROM settings")[0]["note"] is None
    finally:
        store.close()


def test_a_reservation_update_reaches_the_free_flag_before_worker_queues_is_read(
    engine: Engine,
) -> None:
    seeded = ensure_seeded(engine)
    ws = seeded.workspace_sid
    bob = seeded.worker_sids["Bob"]
    engine.update_worker(ws, bob, activity_sid=seeded.activity_sids["Idle"])
    task = engine.create_task(ws, attributes='{"selected_language": "en"}')
    reservation = engine.list_reservations(ws, Paging(), task_sid=task["sid"]).rows[0]
    with engine.store.transaction() as tx:
        # Available in every queue, but held by the pending offer.
        tx.execute("UPDATE worker_queues SET available = 1 WHERE worker_sid = ?", (bob,))
        assert tx.scalar("SELECT max(free) FROM worker_queues WHERE worker_sid = ?", (bob,)) == 0
        tx.update("reservations", reservation["sid"], {"reservation_status": "accepted"})
        # The trigger on the reservation's status has run by the time this reads the flag.
        assert tx.scalar("SELECT min(free) FROM worker_queues WHERE worker_sid = ?", (bob,)) == 1


def test_a_cached_row_follows_a_write_to_a_table_it_joins(engine: Engine) -> None:
    seeded = ensure_seeded(engine)
    sid = engine.create_task(seeded.workspace_sid, attributes='{"selected_language": "es"}')["sid"]
    with engine.store.transaction() as tx:
        op = Operation(tx, engine.clock, ACCOUNT_SID)
        queue_sid = reads.task_row(op, sid)["task_queue_sid"]
        # A column of the queue the task's row does not show: the cached row stays.
        tx.update("task_queues", queue_sid, {"max_reserved_workers": 2})
        before = tx.statements
        reads.task_row(op, sid)
        assert tx.statements == before
        # The queue's name, which the task's row shows: read again.
        tx.update("task_queues", queue_sid, {"friendly_name": "Renamed"})
        assert reads.task_row(op, sid)["task_queue_friendly_name"] == "Renamed"
        tx.execute("UPDATE task_queues SET friendly_name = 'Raw' WHERE sid = ?", (queue_sid,))
        assert reads.task_row(op, sid)["task_queue_friendly_name"] == "Raw"
