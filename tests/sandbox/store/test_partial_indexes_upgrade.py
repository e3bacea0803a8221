"""A database file from before the partial indexes (schema version 5) opens with those indexes
rebuilt partial (leaving out the rows with NULL in their column), still serving the queries
that compare that column, and the same answers as before."""

from __future__ import annotations

from pathlib import Path

from taskrouter_sandbox import store as store_module
from taskrouter_sandbox.clock import ManualClock
from taskrouter_sandbox.engine import Engine
from taskrouter_sandbox.store import Store
from tests.sandbox.conftest import one_queue_floor

ACCOUNT_SID = "AC" + "e" * 32

# Each index as version 5 wrote it, and the column version 6 leaves its NULLs out of.
VERSION_5 = {
    "events_worker_type_date": (
        "events (worker_sid, event_type, event_date, task_channel_unique_name)",
        "worker_sid",
    ),
    "events_queue_type_waits": (
        "events (task_queue_sid, event_type, event_date, task_channel_unique_name,"
        " wait_seconds, queue_wait_seconds)",
        "task_queue_sid",
    ),
    "tasks_target_timeout": ("tasks (assignment_status, target_timeout_at)", "target_timeout_at"),
}


def test_a_version_5_file_gets_its_partial_indexes(tmp_path: Path) -> None:
    database = str(tmp_path / "version5.sqlite3")
    clock = ManualClock()
    store = Store(database)
    try:
        engine = Engine(store, clock, ACCOUNT_SID)
        ws, queue, flow, worker = one_queue_floor(engine)
        engine.create_task(ws, attributes="{}", workflow_sid=flow)
        engine.create_task(ws, attributes="{}", workflow_sid=flow)
        before = (
            engine.worker_cumulative_statistics(ws, worker),
            engine.task_queue_cumulative_statistics(ws, queue),
        )
        deadline = engine.fire_due()
        with store.transaction() as tx:
            for index, (columns, _) in VERSION_5.items():
                tx.execute(f"DROP INDEX {index}")
                tx.execute(f"CREATE INDEX {index} ON {columns}")
            tx.set_setting("schema_version", "5")
        # Version 5's indexes hold every row, those with NULL in the column too.
        with store.read() as tx:
            unset = {
                index: tx.scalar(
                    f"SELECT count(*) FROM {columns.split(' ')[0]} WHERE {column} IS NULL"
                )
                for index, (columns, column) in VERSION_5.items()
            }
        assert all(unset.values()), unset
    finally:
        store.close()

    store = Store(database)
    try:
        with store.read() as tx:
            assert tx.setting("schema_version") == str(store_module.SCHEMA_VERSION)
            for index, (_, column) in VERSION_5.items():
                sql = tx.scalar("SELECT sql FROM sqlite_master WHERE name = ?", (index,))
                assert sql.rstrip().endswith(f"{column} IS NOT NULL"), sql
            # A comparison of the column is served by the partial index without saying IS
            # NOT NULL (the timer's min() says it); the event indexes also keep to the types
            # the statistics read (version 7), which their queries say in the same words.
            for index, (columns, column) in VERSION_5.items():
                table = columns.split(" ")[0]
                types = f" AND {store_module.STATISTICS_EVENTS}" if table == "events" else ""
                plan = tx.all(
                    f"EXPLAIN QUERY PLAN SELECT 1 FROM {table} WHERE {column} = ?{types}", ("x",)
                )
                assert any(index in row["detail"] for row in plan), (index, plan)
        engine = Engine(store, clock, ACCOUNT_SID)
        assert (
            engine.worker_cumulative_statistics(ws, worker),
            engine.task_queue_cumulative_statistics(ws, queue),
        ) == before
        assert engine.fire_due() == deadline
    finally:
        store.close()
