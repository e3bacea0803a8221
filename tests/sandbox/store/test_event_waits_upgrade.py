"""A database file from before the events carried their waits (schema version 4) opens with
each accepted reservation's and canceled task's wait filled in from the event's JSON, the
indexes the cumulative statistics read, and the same figures as before the upgrade."""

from __future__ import annotations

from pathlib import Path

from taskrouter_sandbox import store as store_module
from taskrouter_sandbox.clock import ManualClock
from taskrouter_sandbox.domain.values import Paging
from taskrouter_sandbox.engine import Engine
from taskrouter_sandbox.store import Store
from taskrouter_sandbox.store.schema import _EVENT_WAIT_INDEXES
from tests.sandbox.conftest import routing

ACCOUNT_SID = "AC" + "d" * 32
WAIT_INDEXES = ("events_type_waits", "events_queue_type_waits", "events_workflow_type_waits")


def _play(engine: Engine, clock: ManualClock) -> tuple[str, str]:
    """One task accepted after 30 s, another canceled after 50 s; (workspace, queue)."""
    ws = engine.create_workspace("Old floor", multi_task_enabled=False)["sid"]
    queue = engine.create_task_queue(ws, "Everyone", target_workers="1==1")["sid"]
    flow = engine.create_workflow(ws, "Flow", configuration=routing(default=queue))["sid"]
    available = engine.list_activities(ws, Paging(), friendly_name="Available").rows[0]
    worker = engine.create_worker(ws, "Ann", activity_sid=available["sid"])["sid"]
    first = engine.create_task(ws, attributes="{}", workflow_sid=flow)["sid"]
    second = engine.create_task(ws, attributes="{}", workflow_sid=flow)["sid"]
    clock.advance(30)
    (offer,) = engine.list_reservations(ws, Paging(), worker_sid=worker).rows
    engine.update_reservation(ws, offer["sid"], task_sid=first, reservation_status="accepted")
    clock.advance(20)
    engine.update_task(ws, second, assignment_status="canceled", reason="gone")
    return ws, queue


def test_a_version_4_file_gets_the_waits_of_its_events(tmp_path: Path) -> None:
    database = str(tmp_path / "version4.sqlite3")
    clock = ManualClock()
    store = Store(database)
    try:
        engine = Engine(store, clock, ACCOUNT_SID)
        ws, queue = _play(engine, clock)
        before = engine.task_queue_cumulative_statistics(ws, queue, split_by_wait_time="40")
        # Strip what version 5 added: the wait columns and their indexes; version 4's own
        # index put back.
        with store.transaction() as tx:
            for name in WAIT_INDEXES:
                tx.execute(f"DROP INDEX {name}")
            tx.execute("ALTER TABLE events DROP COLUMN wait_seconds")
            tx.execute("ALTER TABLE events DROP COLUMN queue_wait_seconds")
            tx.execute(
                "CREATE INDEX events_type_date"
                " ON events (workspace_sid, event_type, event_date, task_channel_unique_name)"
            )
            tx.set_setting("schema_version", "4")
    finally:
        store.close()

    store = Store(database)
    try:
        engine = Engine(store, clock, ACCOUNT_SID)
        with store.read() as tx:
            assert tx.setting("schema_version") == str(store_module.SCHEMA_VERSION)
            names = {row["name"] for row in tx.all("SELECT name FROM sqlite_master")}
            waits = tx.all(
                "SELECT event_type, wait_seconds, queue_wait_seconds FROM events"
                " WHERE wait_seconds IS NOT NULL ORDER BY seq"
            )
        assert set(WAIT_INDEXES) <= names and "events_type_date" not in names
        assert len(_EVENT_WAIT_INDEXES) == len(WAIT_INDEXES)
        assert waits == [
            {"event_type": "reservation.accepted", "wait_seconds": 30, "queue_wait_seconds": 30},
            {"event_type": "task.canceled", "wait_seconds": 50, "queue_wait_seconds": None},
        ]
        after = engine.task_queue_cumulative_statistics(ws, queue, split_by_wait_time="40")
        assert after == before
        assert after["wait_duration_until_canceled"]["max"] == 50
    finally:
        store.close()
