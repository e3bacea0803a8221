"""Schema version 7: the event scope indexes hold only the event types the cumulative
statistics read. A version 6 file opens with them rebuilt so, its statistics and Events list
the same as before."""

from __future__ import annotations

import re
from pathlib import Path

from taskrouter_sandbox import store as store_module
from taskrouter_sandbox.clock import ManualClock
from taskrouter_sandbox.domain.values import Paging
from taskrouter_sandbox.engine import Engine, cumulative_statistics
from taskrouter_sandbox.store import Store
from tests.sandbox.conftest import accept_and_complete, one_queue_floor

ACCOUNT_SID = "AC" + "f" * 32

# Each index as version 6 wrote it.
VERSION_6 = {
    "events_type_waits": "events (workspace_sid, event_type, event_date,"
    " task_channel_unique_name, wait_seconds, queue_wait_seconds)",
    "events_queue_type_waits": "events (task_queue_sid, event_type, event_date,"
    " task_channel_unique_name, wait_seconds, queue_wait_seconds)"
    " WHERE task_queue_sid IS NOT NULL",
    "events_workflow_type_waits": "events (workflow_sid, event_type, event_date,"
    " task_channel_unique_name, wait_seconds, queue_wait_seconds)",
    "events_worker_type_date": "events (worker_sid, event_type, event_date,"
    " task_channel_unique_name) WHERE worker_sid IS NOT NULL",
}


def test_every_type_the_statistics_count_is_in_their_indexes() -> None:
    # A type left out of STATISTICS_EVENT_TYPES would count zero: the queries say both terms.
    read = {
        *cumulative_statistics._TASK_COUNTS.values(),
        *cumulative_statistics._RESERVATION_COUNTS.values(),
        *cumulative_statistics._ENTERED.values(),
        cumulative_statistics._ACCEPTED,
        cumulative_statistics._CANCELED,
        *cumulative_statistics._WORKER_HISTORY,
    }
    assert read <= set(store_module.STATISTICS_EVENT_TYPES)


def _figures(engine: Engine, ws: str, queue: str, flow: str, worker: str) -> tuple:
    return (
        engine.workspace_cumulative_statistics(ws),
        engine.task_queue_cumulative_statistics(ws, queue),
        engine.workflow_cumulative_statistics(ws, flow),
        engine.worker_cumulative_statistics(ws, worker),
        engine.workers_cumulative_statistics(ws),
        [e["sid"] for e in engine.list_events(ws, Paging(), event_type="task.created").rows],
        [
            e["sid"]
            for e in engine.list_events(ws, Paging(), event_type="reservation.completed").rows
        ],
    )


def test_a_version_6_file_gets_the_narrower_indexes(tmp_path: Path) -> None:
    database = str(tmp_path / "version6.sqlite3")
    clock = ManualClock()
    store = Store(database)
    try:
        engine = Engine(store, clock, ACCOUNT_SID)
        ws, queue, flow, worker = one_queue_floor(engine)
        first = engine.create_task(ws, attributes="{}", workflow_sid=flow)["sid"]
        engine.create_task(ws, attributes="{}", workflow_sid=flow)
        engine.create_task(ws, attributes="{}", workflow_sid=flow)
        accept_and_complete(engine, ws, first)
        before = _figures(engine, ws, queue, flow, worker)
        with store.transaction() as tx:
            for index, definition in VERSION_6.items():
                tx.execute(f"DROP INDEX {index}")
                tx.execute(f"CREATE INDEX {index} ON {definition}")
            tx.set_setting("schema_version", "6")
    finally:
        store.close()

    store = Store(database)
    try:
        with store.read() as tx:
            assert tx.setting("schema_version") == str(store_module.SCHEMA_VERSION)
            for index in VERSION_6:
                sql = re.sub(
                    r"\s+", " ", tx.scalar("SELECT sql FROM sqlite_master WHERE name = ?", (index,))
                )
                assert f"WHERE {store_module.STATISTICS_EVENTS}" in sql, sql
            # The file holds events the indexes leave out (workflow.target-matched,
            # reservation.completed), which the Events list still finds.
            held = tx.scalar(
                "SELECT count(*) FROM events INDEXED BY events_type_waits"
                f" WHERE workspace_sid = ? AND {store_module.STATISTICS_EVENTS}",
                (ws,),
            )
            assert (
                0 < held < tx.scalar("SELECT count(*) FROM events WHERE workspace_sid = ?", (ws,))
            )
        engine = Engine(store, clock, ACCOUNT_SID)
        assert _figures(engine, ws, queue, flow, worker) == before
    finally:
        store.close()
