"""The rows a store's write transactions keep for the next ones (RowCache): read once, read
again after another connection (another server process) has committed, after a rollback, a
REPLACE or a DELETE that may cascade, and past the bound; read transactions keep their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from taskrouter_sandbox.clock import ManualClock
from taskrouter_sandbox.domain.errors import EngineError
from taskrouter_sandbox.engine import Engine
from taskrouter_sandbox.seed import ensure_seeded
from taskrouter_sandbox.store import Store, Transaction, database
from taskrouter_sandbox.store.schema import DELETED_ALONE

ACCOUNT_SID = "AC" + "e" * 32


@pytest.fixture
def database_file(tmp_path: Path) -> str:
    return str(tmp_path / "sandbox.sqlite3")


@pytest.fixture
def engine(database_file: str) -> Iterator[Engine]:
    store = Store(database_file)
    yield Engine(store, ManualClock(), ACCOUNT_SID)
    store.close()


def _pending_task(engine: Engine) -> tuple[str, str]:
    seeded = ensure_seeded(engine)
    # The seed's Spanish queue has no available worker: the task stays pending.
    task = engine.create_task(seeded.workspace_sid, attributes='{"selected_language": "es"}')
    return seeded.workspace_sid, task["sid"]


def _counting_reader(task_sid: str) -> tuple[list[str], Any]:
    loads: list[str] = []

    def read(tx: Transaction) -> dict[str, Any] | None:
        def load() -> dict[str, Any] | None:
            loads.append(task_sid)
            return tx.one("SELECT * FROM tasks WHERE sid = ?", (task_sid,))

        return tx.cached("tasks", task_sid, load, joins=frozenset({"none"}))

    return loads, read


def test_the_next_write_transaction_reads_nothing_the_last_one_kept(engine: Engine) -> None:
    _, task_sid = _pending_task(engine)
    loads, read = _counting_reader(task_sid)
    with engine.store.transaction() as tx:
        read(tx)
        tx.update("tasks", task_sid, {"priority": 3})
    with engine.store.transaction() as tx:
        assert read(tx)["priority"] == 3
    assert len(loads) == 1
    with engine.store.read() as tx:
        # A read transaction runs beside the writes, on its own connection: its own cache.
        assert read(tx)["priority"] == 3
    assert len(loads) == 2


def test_a_commit_by_another_process_is_read_again(engine: Engine, database_file: str) -> None:
    workspace_sid, task_sid = _pending_task(engine)
    # The other server process: its own store over the same file.
    other = Engine(Store(database_file), ManualClock(), ACCOUNT_SID)
    try:
        other.update_task(workspace_sid, task_sid, priority=7)
        # This process's write sees the other's change, not the row its last write kept...
        changed = engine.update_task(
            workspace_sid, task_sid, attributes='{"selected_language": "es", "vip": true}'
        )
        assert changed["priority"] == 7
        other.update_task(workspace_sid, task_sid, assignment_status="canceled", reason="gone")
        # ...and acts on the task as it now is: canceled, not the pending task it kept.
        with pytest.raises(EngineError, match="not pending or reserved"):
            engine.update_task(workspace_sid, task_sid, assignment_status="canceled")
    finally:
        other.store.close()
    assert engine.get_task(workspace_sid, task_sid)["assignment_status"] == "canceled"


def test_a_rolled_back_change_is_not_kept(engine: Engine) -> None:
    _, task_sid = _pending_task(engine)
    loads, read = _counting_reader(task_sid)
    with engine.store.transaction() as tx:
        read(tx)
    with pytest.raises(RuntimeError), engine.store.transaction() as tx:
        tx.update("tasks", task_sid, {"priority": 9})
        assert read(tx)["priority"] == 9
        raise RuntimeError("the operation fails")
    with engine.store.transaction() as tx:
        assert read(tx)["priority"] == 0
    assert len(loads) == 2


def test_past_the_bound_the_kept_rows_start_again(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, task_sid = _pending_task(engine)
    loads, read = _counting_reader(task_sid)
    with engine.store.transaction() as tx:
        read(tx)
    # A row counts 2 KB and its attributes (up to 16 KB, Twilio's limit).
    monkeypatch.setattr(database, "MAX_CACHED_BYTES", 4096)
    with engine.store.transaction() as tx:
        assert read(tx) is not None and len(loads) == 1
        tx.cached("settings", "one", lambda: {"key": "one", "attributes": "x" * 100})
    with engine.store.transaction() as tx:
        read(tx)
    assert len(loads) == 2


def test_a_replace_may_cascade_and_a_delete_from_a_table_nothing_refers_to_does_not(
    engine: Engine,
) -> None:
    _, task_sid = _pending_task(engine)
    loads, read = _counting_reader(task_sid)
    with engine.store.transaction() as tx:
        read(tx)
        tx.execute("DELETE FROM owed_callbacks WHERE reservation_sid = 'none'")
        tx.delete("worker_channels", "none")
    with engine.store.transaction() as tx:
        read(tx)
        assert len(loads) == 1
        # REPLACE deletes the row in its way, and what refers to it with ON DELETE CASCADE.
        tx.execute("INSERT OR REPLACE INTO settings (key, value) VALUES ('k', 'v')")
        read(tx)
        assert len(loads) == 2
        tx.execute("DELETE FROM reservations WHERE sid = 'none'")
        read(tx)
        assert len(loads) == 3


def test_the_tables_deleted_alone_are_referred_to_by_no_key_and_watched_by_no_trigger(
    engine: Engine,
) -> None:
    with engine.store.read() as tx:
        tables = [
            row["name"] for row in tx.all("SELECT name FROM sqlite_schema WHERE type = 'table'")
        ]
        referred = {
            key["table"] for table in tables for key in tx.all(f"PRAGMA foreign_key_list({table})")
        }
        triggers = [
            " ".join(row["sql"].split()).upper()
            for row in tx.all("SELECT sql FROM sqlite_schema WHERE type = 'trigger'")
        ]
    assert set(tables) >= DELETED_ALONE
    assert not DELETED_ALONE & referred
    for table in DELETED_ALONE:
        assert not [sql for sql in triggers if f"DELETE ON {table.upper()} " in sql]
