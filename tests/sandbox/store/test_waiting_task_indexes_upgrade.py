"""Schema version 8: the task indexes that routing, the timers and the real-time statistics'
longest waits read hold only the waiting tasks (pending, reserved), and a queue's tasks are
listed through tasks_queue. A version 7 file opens with them rebuilt so, its tasks, lists,
statistics and deadlines the same as before."""

from __future__ import annotations

import re
from pathlib import Path

from taskrouter_sandbox import store as store_module
from taskrouter_sandbox.clock import ManualClock
from taskrouter_sandbox.domain.values import Paging
from taskrouter_sandbox.engine import Engine
from taskrouter_sandbox.store import Store
from taskrouter_sandbox.store.schema import QUEUED_WAITING_TASKS, WAITING_TASKS
from tests.sandbox.conftest import accept_and_complete, one_queue_floor

ACCOUNT_SID = "AC" + "9" * 32

# Each index as version 7 wrote it: every task, whatever its status.
VERSION_7 = {
    "tasks_ttl": "tasks (assignment_status, timeout_at)",
    "tasks_fifo": "tasks (task_queue_sid, assignment_status, priority DESC, date_created, seq)",
    "tasks_newest": "tasks (task_queue_sid, assignment_status, date_created, seq)",
    "tasks_waiting_since": "tasks (task_queue_sid, assignment_status,"
    " coalesce(virtual_start_time, date_created), seq)",
    "tasks_in_queue_since": "tasks (task_queue_sid, assignment_status,"
    " task_queue_entered_date, seq)",
}


def _figures(engine: Engine, ws: str, queue: str, flow: str) -> tuple:
    def sids(**filters: object) -> list[str]:
        return [t["sid"] for t in engine.list_tasks(ws, Paging(), **filters).rows]

    return (
        sids(),
        sids(task_queue_sid=queue),
        sids(assignment_status=["pending"]),
        sids(assignment_status=["assigned", "completed"]),
        engine.workspace_realtime_statistics(ws),
        engine.task_queue_realtime_statistics(ws, queue),
        engine.workflow_realtime_statistics(ws, flow),
    )


def test_a_version_7_file_gets_the_waiting_task_indexes(tmp_path: Path) -> None:
    database = str(tmp_path / "version7.sqlite3")
    clock = ManualClock()
    store = Store(database)
    try:
        engine = Engine(store, clock, ACCOUNT_SID)
        ws, queue, flow, _ = one_queue_floor(engine)
        # One completed, one reserved (Ann's offer), two pending behind it.
        first = engine.create_task(ws, attributes="{}", workflow_sid=flow)["sid"]
        accept_and_complete(engine, ws, first)
        for _ in range(3):
            engine.create_task(ws, attributes="{}", workflow_sid=flow, timeout=600)
        clock.advance(5)
        before = _figures(engine, ws, queue, flow)
        deadline = engine.fire_due()
        with store.transaction() as tx:
            for index, definition in VERSION_7.items():
                tx.execute(f"DROP INDEX {index}")
                tx.execute(f"CREATE INDEX {index} ON {definition}")
            tx.execute("DROP INDEX tasks_queue")
            tx.set_setting("schema_version", "7")
        with store.read() as tx:
            assert tx.scalar("SELECT count(*) FROM tasks INDEXED BY tasks_ttl") == 4
    finally:
        store.close()

    store = Store(database)
    try:
        with store.read() as tx:
            assert tx.setting("schema_version") == str(store_module.SCHEMA_VERSION)
            for index in VERSION_7:
                term = WAITING_TASKS if index == "tasks_ttl" else QUEUED_WAITING_TASKS
                sql = re.sub(
                    r"\s+", " ", tx.scalar("SELECT sql FROM sqlite_master WHERE name = ?", (index,))
                )
                assert sql.endswith(f"WHERE {term}"), sql
                # The completed task is in none of them; the three waiting ones in each.
                held = tx.scalar(f"SELECT count(*) FROM tasks INDEXED BY {index} WHERE {term}")
                assert held == 3, index
            assert tx.scalar("SELECT count(*) FROM sqlite_master WHERE name = 'tasks_queue'")
        engine = Engine(store, clock, ACCOUNT_SID)
        assert _figures(engine, ws, queue, flow) == before
        assert engine.fire_due() == deadline
    finally:
        store.close()


def test_the_queries_name_the_waiting_statuses_their_indexes_hold() -> None:
    # A status bound as a parameter proves nothing to SQLite: these plans must keep their index.
    store = Store(":memory:")
    try:
        with store.read() as tx:
            for sql, index in (
                (
                    "SELECT sid FROM tasks WHERE assignment_status = 'reserved'"
                    " AND timeout_at <= ? ORDER BY timeout_at",
                    "tasks_ttl",
                ),
                (
                    "SELECT min(timeout_at) FROM tasks WHERE assignment_status = 'pending'",
                    "tasks_ttl",
                ),
                (
                    "SELECT sid FROM tasks t WHERE t.workspace_sid = ? AND t.task_queue_sid = ?"
                    " AND t.assignment_status = 'pending'"
                    " ORDER BY coalesce(t.virtual_start_time, t.date_created), t.seq LIMIT 1",
                    "tasks_waiting_since",
                ),
                (
                    "SELECT sid FROM tasks t WHERE t.workspace_sid = ? AND t.task_queue_sid = ?"
                    " AND t.assignment_status = 'reserved'"
                    " ORDER BY t.task_queue_entered_date, t.seq LIMIT 1",
                    "tasks_in_queue_since",
                ),
            ):
                plan = " ".join(
                    row["detail"]
                    for row in tx.all(f"EXPLAIN QUERY PLAN {sql}", (None,) * sql.count("?"))
                )
                assert f"INDEX {index} " in plan, (sql, plan)
    finally:
        store.close()
