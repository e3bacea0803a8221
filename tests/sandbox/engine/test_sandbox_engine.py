"""The engine on its own (no Flask, no HTTP): one transaction per operation, its seams.

Routing hooks into Operations.settle and the published effects; these tests pin both down.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from taskrouter_sandbox.clock import ManualClock
from taskrouter_sandbox.domain.errors import EngineError, NotFound
from taskrouter_sandbox.domain.values import EventCallback, Paging
from taskrouter_sandbox.engine import Engine
from taskrouter_sandbox.seed import ensure_seeded
from taskrouter_sandbox.state.operation import Operation, RoutingHint
from taskrouter_sandbox.store import Store

ACCOUNT_SID = "AC" + "c" * 32


class RecordingEngine(Engine):
    """Notes every settle call (where routing runs), and can be told to fail inside it."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.calls: list[list[RoutingHint]] = []
        self.fail = False
        self.operations.settle = self._settle

    def _settle(self, op: Operation) -> None:
        self.calls.append(list(op.hints))
        if self.fail:
            raise RuntimeError("routing failed")


@pytest.fixture
def engine() -> Iterator[RecordingEngine]:
    store = Store(":memory:")
    yield RecordingEngine(store, ManualClock(), ACCOUNT_SID)
    store.close()


def _count(engine: Engine, table: str) -> int:
    with engine.store.read() as tx:
        return tx.scalar(f"SELECT count(*) FROM {table}")


def test_after_change_runs_once_per_operation_with_its_changes(engine: RecordingEngine) -> None:
    workspace = engine.create_workspace("W", template="FIFO")
    assert len(engine.calls) == 1  # nested creates joined the one transaction
    engine.calls.clear()
    task = engine.create_task(workspace["sid"], attributes="{}")
    assert engine.calls == [[RoutingHint("task.created", workspace["sid"], task["sid"])]]
    engine.calls.clear()
    worker = engine.create_worker(workspace["sid"], "Ann")
    available = engine.list_activities(workspace["sid"], Paging(), available=True).rows[0]
    engine.calls.clear()
    engine.update_worker(workspace["sid"], worker["sid"], activity_sid=available["sid"])
    assert engine.calls == [
        [RoutingHint("worker.activity.update", workspace["sid"], worker["sid"])]
    ]


def test_a_failure_inside_the_transaction_undoes_the_whole_operation(
    engine: RecordingEngine,
) -> None:
    workspace = engine.create_workspace("W", template="FIFO")
    tasks, events = _count(engine, "tasks"), _count(engine, "events")
    published: list[Any] = []
    engine.subscribe(published.extend)
    engine.fail = True
    with pytest.raises(RuntimeError, match="routing failed"):
        engine.create_task(workspace["sid"], attributes="{}")
    assert (_count(engine, "tasks"), _count(engine, "events")) == (tasks, events)
    assert published == []


def test_effects_are_published_once_after_commit(engine: RecordingEngine) -> None:
    workspace = engine.create_workspace(
        "W", template="FIFO", event_callback_url="https://example.com/events"
    )
    published: list[list[Any]] = []
    engine.subscribe(published.append)
    with engine.store.transaction():
        engine.create_task(workspace["sid"], attributes="{}")
        engine.create_task(workspace["sid"], attributes="{}")
        assert published == []  # nothing leaves before the commit
    assert len(published) == 2
    assert all(isinstance(effect, EventCallback) for batch in published for effect in batch)
    assert [e.params["EventType"] for e in published[0]] == [
        "task.created",
        "workflow.entered",
        "task-queue.entered",
    ]


def test_a_failing_subscriber_does_not_undo_the_change(engine: RecordingEngine) -> None:
    workspace = engine.create_workspace("W", event_callback_url="https://example.com/events")

    def broken(effects: list[Any]) -> None:
        raise RuntimeError("dispatcher down")

    engine.subscribe(broken)
    worker = engine.create_worker(workspace["sid"], "Ann")
    assert engine.get_worker(workspace["sid"], worker["sid"])["friendly_name"] == "Ann"


def test_events_filter_limits_callbacks_not_events(engine: RecordingEngine) -> None:
    workspace = engine.create_workspace(
        "W",
        template="FIFO",
        event_callback_url="https://example.com/events",
        events_filter="task.canceled",
    )
    published: list[Any] = []
    engine.subscribe(published.extend)
    task = engine.create_task(workspace["sid"], attributes="{}")
    engine.update_task(workspace["sid"], task["sid"], assignment_status="canceled", reason="x")
    assert [e.params["EventType"] for e in published] == ["task.canceled"]
    assert published[0].params["TaskCanceledReason"] == "x"
    stored = engine.list_events(workspace["sid"], Paging(), task_sid=task["sid"]).rows
    assert [row["event_type"] for row in stored] == [
        "task.canceled",
        "task-queue.entered",
        "workflow.entered",
        "task.created",
    ]


def test_event_data_holds_callback_fields(engine: RecordingEngine) -> None:
    workspace = engine.create_workspace("Floor", template="FIFO")
    task = engine.create_task(workspace["sid"], attributes='{"a": 1}', priority=4)
    row = engine.list_events(workspace["sid"], Paging(), event_type="task.created").rows[0]
    data = json.loads(row["event_data"])
    assert data["TaskSid"] == task["sid"]
    assert data["TaskAttributes"] == '{"a": 1}'
    assert data["TaskPriority"] == "4"
    assert data["TaskAssignmentStatus"] == "pending"
    assert data["WorkspaceName"] == "Floor"
    assert data["AccountSid"] == ACCOUNT_SID
    assert data["EventType"] == "task.created"
    assert all(isinstance(value, str) for value in data.values())


def test_task_ttl_deadline_and_routing_columns_are_stored(engine: RecordingEngine) -> None:
    workspace = engine.create_workspace("W", template="FIFO")
    task = engine.create_task(workspace["sid"], attributes="{}", timeout=300)
    with engine.store.read() as tx:
        row = tx.one("SELECT * FROM tasks WHERE sid = ?", (task["sid"],))
    assert row["timeout_at"] > row["date_created"]
    assert row["target_index"] == -1  # placed by default_filter
    assert row["target_entered_date"] == row["date_created"]


def test_engine_errors_carry_twilio_status_and_code(engine: RecordingEngine) -> None:
    with pytest.raises(NotFound) as missing:
        engine.get_workspace("WS" + "0" * 32)
    assert (missing.value.status, missing.value.code) == (404, 20404)
    workspace = engine.create_workspace("W")
    with pytest.raises(EngineError) as bad:
        engine.create_worker(workspace["sid"], "Ann", attributes="[]")
    assert (bad.value.status, bad.value.code) == (400, 20001)
    assert "Attributes" in bad.value.message


def test_seed_is_idempotent(engine: RecordingEngine) -> None:
    first = ensure_seeded(engine)
    second = ensure_seeded(engine)
    assert first == second
    assert _count(engine, "workspaces") == 1
