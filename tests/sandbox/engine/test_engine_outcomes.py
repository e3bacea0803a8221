"""Assignment callback answers applied by the engine, and the alerts it keeps.

The outcomes are built as the Dispatcher builds them; no HTTP here (see test_lifecycle.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from taskrouter_sandbox.callbacks import interpret_assignment_answer
from taskrouter_sandbox.clock import ManualClock
from taskrouter_sandbox.domain.errors import EngineError
from taskrouter_sandbox.domain.values import (
    ALERT_INVALID_JSON,
    ALERT_NO_INSTRUCTION,
    Alert,
    AssignmentOutcome,
    Paging,
)
from taskrouter_sandbox.engine import Engine
from taskrouter_sandbox.seed import Seeded, ensure_seeded
from taskrouter_sandbox.store import SCHEMA_VERSION, Store

ACCOUNT_SID = "AC" + "b" * 32
URL = "https://example.com/assignment_callback"


@pytest.fixture
def engine() -> Iterator[Engine]:
    store = Store(":memory:")
    yield Engine(store, ManualClock(), ACCOUNT_SID)
    store.close()


def _offer(engine: Engine) -> tuple[Seeded, dict[str, Any]]:
    """The quickstart up to step 3: a Spanish task, Alice Idle, a pending reservation."""
    seeded = ensure_seeded(engine)
    ws = seeded.workspace_sid
    task = engine.create_task(ws, attributes='{"selected_language": "es"}')
    engine.update_worker(ws, seeded.worker_sids["Alice"], activity_sid=seeded.activity_sids["Idle"])
    (reservation,) = engine.list_reservations(ws, Paging(), task_sid=task["sid"]).rows
    return seeded, reservation


def _outcome(
    reservation_sid: str, status: int, content_type: str, body: bytes
) -> AssignmentOutcome:
    answer = interpret_assignment_answer(status, content_type, body, url=URL)
    return AssignmentOutcome(
        reservation_sid=reservation_sid,
        instruction=answer.instruction,
        accept=answer.accept,
        reject=answer.reject,
        activity_sid=answer.activity_sid,
        params=answer.params,
        alerts=answer.alerts,
        url_used=URL,
        status_code=status,
        elapsed_ms=1.0,
    )


def _status(engine: Engine, seeded: Seeded, reservation: dict[str, Any]) -> tuple[str, str, str]:
    ws = seeded.workspace_sid
    return (
        engine.get_reservation(ws, reservation["sid"])["reservation_status"],
        engine.get_task(ws, reservation["task_sid"])["assignment_status"],
        engine.get_worker(ws, reservation["worker_sid"])["activity_name"],
    )


def test_accept_instruction_assigns_the_task(engine: Engine) -> None:
    seeded, reservation = _offer(engine)
    engine.apply_assignment_outcome(
        _outcome(reservation["sid"], 200, "application/json", b'{"instruction": "accept"}')
    )
    assert _status(engine, seeded, reservation) == ("accepted", "assigned", "Busy")
    stored = engine.get_reservation(seeded.workspace_sid, reservation["sid"])["instruction"]
    assert json.loads(stored) == {"instruction": "accept"}
    assert engine.list_alerts(seeded.workspace_sid) == []


def test_empty_answer_leaves_the_reservation_pending(engine: Engine) -> None:
    seeded, reservation = _offer(engine)
    for body in (b"", b"{}"):
        engine.apply_assignment_outcome(_outcome(reservation["sid"], 200, "application/json", body))
    assert _status(engine, seeded, reservation) == ("pending", "reserved", "Reserved")
    assert engine.list_alerts(seeded.workspace_sid) == []


def test_reject_with_an_activity_sid(engine: Engine) -> None:
    seeded, reservation = _offer(engine)
    offline = seeded.activity_sids["Offline"]
    body = json.dumps({"instruction": "reject", "activity_sid": offline}).encode()
    engine.apply_assignment_outcome(_outcome(reservation["sid"], 200, "application/json", body))
    assert _status(engine, seeded, reservation) == ("rejected", "pending", "Offline")


def test_reject_naming_another_workspaces_activity_alerts_and_keeps_the_activity(
    engine: Engine,
) -> None:
    seeded, reservation = _offer(engine)
    stranger = "WA" + "9" * 32
    body = json.dumps({"instruction": "reject", "activity_sid": stranger}).encode()
    engine.apply_assignment_outcome(_outcome(reservation["sid"], 200, "application/json", body))
    # Released to the activity Alice had before the offer, and not offered it again.
    assert _status(engine, seeded, reservation) == ("rejected", "pending", "Idle")
    (alert,) = engine.list_alerts(seeded.workspace_sid)
    assert alert["code"] == 55555 and stranger in alert["message"]
    assert alert["reservation_sid"] == reservation["sid"]


def test_telephony_instructions_accept_and_are_recorded(engine: Engine) -> None:
    seeded, reservation = _offer(engine)
    body = json.dumps({"instruction": "dequeue", "from": "+15550100"}).encode()
    engine.apply_assignment_outcome(_outcome(reservation["sid"], 200, "application/json", body))
    assert _status(engine, seeded, reservation)[0] == "accepted"
    stored = engine.get_reservation(seeded.workspace_sid, reservation["sid"])["instruction"]
    assert json.loads(stored)["instruction"] == "dequeue"


@pytest.mark.parametrize(
    ("content_type", "body", "code"),
    [
        ("application/json", b'{"hello": 1}', ALERT_NO_INSTRUCTION),
        ("application/json", b"{not json", ALERT_INVALID_JSON),
        ("application/json", b'{"instruction": "teleport"}', 55555),
        ("text/html", b"<html></html>", 40000),
    ],
)
def test_bad_answers_become_alerts_and_leave_it_pending(
    engine: Engine, content_type: str, body: bytes, code: int
) -> None:
    seeded, reservation = _offer(engine)
    engine.apply_assignment_outcome(_outcome(reservation["sid"], 200, content_type, body))
    assert _status(engine, seeded, reservation)[0] == "pending"
    alerts = engine.list_alerts(seeded.workspace_sid)
    assert [a["code"] for a in alerts] == [code]
    assert alerts[0]["url"] == URL and alerts[0]["reservation_sid"] == reservation["sid"]


def test_an_answer_for_a_reservation_no_longer_pending_is_ignored(engine: Engine) -> None:
    seeded, reservation = _offer(engine)
    engine.update_reservation(
        seeded.workspace_sid, reservation["sid"], reservation_status="accepted"
    )
    engine.apply_assignment_outcome(
        _outcome(reservation["sid"], 200, "application/json", b'{"instruction": "reject"}')
    )
    assert _status(engine, seeded, reservation) == ("accepted", "assigned", "Busy")
    # An unknown reservation is ignored too (it may have been deleted meanwhile).
    engine.apply_assignment_outcome(
        _outcome("WR" + "0" * 32, 200, "application/json", b'{"instruction": "accept"}')
    )


def test_alerts_list_newest_first_with_unattributed_ones(engine: Engine) -> None:
    seeded, reservation = _offer(engine)
    engine.record_alert(Alert(11200, "error", "event callback failed", "https://x.test/events"))
    engine.apply_assignment_outcome(
        _outcome(reservation["sid"], 200, "application/json", b'{"a": 1}')
    )
    alerts = engine.list_alerts(seeded.workspace_sid)
    assert [a["code"] for a in alerts] == [ALERT_NO_INSTRUCTION, 11200]
    assert alerts[1]["workspace_sid"] is None
    assert len(engine.list_alerts(seeded.workspace_sid, limit=1)) == 1
    assert len(engine.list_alerts(None)) == 2
    for limit in (0, 1001):
        with pytest.raises(EngineError, match="Limit") as caught:
            engine.list_alerts(seeded.workspace_sid, limit=limit)
        assert caught.value.status == 400
    with pytest.raises(EngineError) as missing:
        engine.list_alerts("WS" + "0" * 32)
    assert missing.value.status == 404


def test_fire_due_reports_the_next_deadline(engine: Engine) -> None:
    store = engine.store
    assert engine.fire_due() is None  # nothing anywhere yet
    seeded, reservation = _offer(engine)
    assert engine.fire_due() == pytest.approx(1200)  # the seeded reservation timeout
    engine.clock.advance(1200)  # type: ignore[attr-defined]
    engine.fire_due()
    assert _status(engine, seeded, reservation) == ("timeout", "pending", "Offline")
    with store.read() as tx:
        ttl = tx.scalar("SELECT timeout_at FROM tasks WHERE sid = ?", (reservation["task_sid"],))
    assert ttl is not None
    assert engine.fire_due() == pytest.approx(86400 - 1200)


def test_a_database_from_before_routing_is_upgraded(tmp_path: Any) -> None:
    """Schema version 1 files lack the routing columns and memberships: both appear."""
    database = str(tmp_path / "old.sqlite3")
    store = Store(database)
    engine = Engine(store, ManualClock(), ACCOUNT_SID)
    seeded = ensure_seeded(engine)
    with store.transaction() as tx:
        for index in ("tasks_fifo", "tasks_newest", "tasks_target_timeout"):
            tx.execute(f"DROP INDEX {index}")
        # An older version's LIFO index, ordered by priority first: the upgrade drops it.
        tx.execute(
            "CREATE INDEX tasks_lifo"
            " ON tasks (task_queue_sid, assignment_status, priority, date_created, seq)"
        )
        for column in ("filter_index", "target_timeout_at", "routing_date"):
            tx.execute(f"ALTER TABLE tasks DROP COLUMN {column}")
        # Nor had they row versions (ETags) or the triggers moving them.
        for table in ("tasks", "workers", "reservations"):
            tx.execute(f"DROP TRIGGER {table}_version")
            tx.execute(f"ALTER TABLE {table} DROP COLUMN version")
        tx.execute("DROP TABLE worker_queues")
        tx.execute("DROP TABLE alerts")
        tx.set_setting("schema_version", "1")
    store.close()

    store = Store(database)
    engine = Engine(store, ManualClock(), ACCOUNT_SID)
    engine.ensure_routing_state()
    with store.read() as tx:
        assert tx.setting("schema_version") == str(SCHEMA_VERSION)
        columns = {row["name"] for row in tx.all("PRAGMA table_info(tasks)")}
        assert {"filter_index", "target_timeout_at", "routing_date"} <= columns
        indexes = {row["name"] for row in tx.all("PRAGMA index_list(tasks)")}
        assert {"tasks_fifo", "tasks_newest"} <= indexes and "tasks_lifo" not in indexes
        members = tx.scalar("SELECT count(*) FROM worker_queues")
    assert members == 3  # Alice in both queues, Bob in the English one
    ws = seeded.workspace_sid
    task = engine.create_task(ws, attributes='{"selected_language": "es"}')
    engine.update_worker(ws, seeded.worker_sids["Alice"], activity_sid=seeded.activity_sids["Idle"])
    reserved = engine.get_task(ws, task["sid"])
    assert reserved["assignment_status"] == "reserved"
    assert reserved["version"] > task["version"]  # the version trigger is back
    store.close()
