"""A database file from before WorkerChannels (schema version 3) opens with a channel for
every worker and task channel, at Twilio's defaults, and routes by them."""

from __future__ import annotations

from pathlib import Path

from taskrouter_sandbox import store as store_module
from taskrouter_sandbox.clock import ManualClock
from taskrouter_sandbox.domain.values import Paging
from taskrouter_sandbox.engine import Engine
from taskrouter_sandbox.store import Store
from taskrouter_sandbox.store.schema import VERSIONED_TABLES
from tests.sandbox.conftest import routing

ACCOUNT_SID = "AC" + "c" * 32


def _version_3_file(database: str) -> tuple[str, list[str]]:
    """A multitasking workspace with two workers, written and then stripped of what came after
    version 3 (the worker_channels table, the row versions and their triggers, the LIFO index
    that ignores priority, with version 3's own LIFO index put back) and stamped version 3."""
    store = Store(database)
    try:
        engine = Engine(store, ManualClock(), ACCOUNT_SID)
        ws = engine.create_workspace("Old floor", multi_task_enabled=True)["sid"]
        queue = engine.create_task_queue(ws, "Everyone", target_workers="1==1")["sid"]
        engine.create_workflow(ws, "Flow", configuration=routing(default=queue))
        available = engine.list_activities(ws, Paging(), friendly_name="Available").rows[0]
        workers = [
            engine.create_worker(ws, name, activity_sid=available["sid"])["sid"]
            for name in ("Ann", "Bo")
        ]
        with store.transaction() as tx:
            tx.execute("DROP TABLE worker_channels")
            for table in VERSIONED_TABLES:
                tx.execute(f"DROP TRIGGER {table}_version")
                tx.execute(f"ALTER TABLE {table} DROP COLUMN version")
            tx.execute("DROP INDEX tasks_newest")
            tx.execute(
                "CREATE INDEX tasks_lifo"
                " ON tasks (task_queue_sid, assignment_status, priority, date_created, seq)"
            )
            tx.set_setting("schema_version", "3")
    finally:
        store.close()
    return ws, workers


def test_a_version_3_file_gets_a_channel_per_worker_and_task_channel(tmp_path: Path) -> None:
    database = str(tmp_path / "version3.sqlite3")
    ws, (ann, bo) = _version_3_file(database)
    store = Store(database)
    try:
        engine = Engine(store, ManualClock(), ACCOUNT_SID)
        with store.read() as tx:
            assert tx.setting("schema_version") == str(store_module.SCHEMA_VERSION)
            indexes = {row["name"] for row in tx.all("SELECT name FROM sqlite_master")}
            assert "tasks_newest" in indexes and "tasks_lifo" not in indexes
            assert {f"{table}_version" for table in VERSIONED_TABLES} <= indexes
        # The rows written before the upgrade have versions, and If-Match applies to them.
        assert engine.get_worker(ws, ann)["version"] == 0
        engine.update_worker(ws, ann, attributes='{"upgraded": true}', if_match='"0"')
        assert engine.get_worker(ws, ann)["version"] == 1
        task_channels = engine.list_task_channels(ws, Paging()).rows
        for worker in (ann, bo):
            rows = engine.list_worker_channels(ws, worker, Paging()).rows
            assert [row["task_channel_sid"] for row in rows] == [c["sid"] for c in task_channels]
            for row in rows:
                assert row["sid"].startswith("WC") and len(row["sid"]) == 34
                assert (row["capacity"], row["available"], row["assigned_tasks"]) == (1, 1, 0)
        # Routing reads them at once: capacity 1 per channel, as before the upgrade.
        engine.update_worker_channel(ws, ann, "chat", capacity=2)
        chats = [engine.create_task(ws, attributes="{}", task_channel="chat") for _ in range(3)]
        holders = [
            [
                r["worker_sid"]
                for r in engine.list_reservations(ws, Paging(), task_sid=t["sid"]).rows
            ]
            for t in chats
        ]
        assert sorted(holder for (holder,) in holders) == sorted([ann, ann, bo])
    finally:
        store.close()


def test_opening_a_current_file_again_adds_no_channels(tmp_path: Path) -> None:
    database = str(tmp_path / "current.sqlite3")
    store = Store(database)
    engine = Engine(store, ManualClock(), ACCOUNT_SID)
    ws = engine.create_workspace("Floor")["sid"]
    worker = engine.create_worker(ws, "Ann")["sid"]
    before = engine.list_worker_channels(ws, worker, Paging()).rows
    store.close()
    store = Store(database)
    try:
        engine = Engine(store, ManualClock(), ACCOUNT_SID)
        assert engine.list_worker_channels(ws, worker, Paging()).rows == before
    finally:
        store.close()
