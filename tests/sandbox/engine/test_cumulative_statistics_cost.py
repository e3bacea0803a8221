"""What a cumulative call reads: the issue's cost rule (a call over a window holding 100,000
events answers in under 200 ms, growing with the window's events and not the history).

Each query the engine issues against the events table is recorded and its plan read back:
counts, waits and splits come from one covering search of the scope's index, the waits of
the events that carry one (accepted reservations, canceled tasks) stored in its entries, so
no event row is read.
bench/statistics_endpoints.py measures the call itself.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from typing import Any

import pytest

from taskrouter_sandbox.clock import ManualClock
from taskrouter_sandbox.engine import Engine
from taskrouter_sandbox.store import Store
from taskrouter_sandbox.store.database import Transaction

WAIT_EVENTS = {"reservation.accepted", "task.canceled"}
EVENT_TYPE = re.compile(r"[a-z-]+\.[a-z-]+")
SCOPE_INDEXES = {
    "workspace": "events_type_waits",
    "queue": "events_queue_type_waits",
    "workflow": "events_workflow_type_waits",
}


@pytest.fixture
def engine() -> Engine:
    return Engine(Store(":memory:"), ManualClock(), "AC" + secrets.token_hex(16))


def events_queries(
    monkeypatch: pytest.MonkeyPatch, call: Callable[[], Any]
) -> list[tuple[str, list[Any]]]:
    """The (sql, params) of each read of the events table while call() runs."""
    seen: list[tuple[str, list[Any]]] = []
    original = Transaction.all

    def recording(self: Transaction, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        if re.search(r"\bFROM events\b", sql):
            seen.append((sql, list(params)))
        return original(self, sql, params)

    monkeypatch.setattr(Transaction, "all", recording)
    call()
    monkeypatch.undo()
    return seen


@pytest.mark.parametrize("scope", sorted(SCOPE_INDEXES))
def test_counts_and_waits_are_one_covering_search_of_the_scopes_index(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, scope: str
) -> None:
    workspace = engine.create_workspace("Cost")["sid"]
    queue = engine.create_task_queue(workspace, "Q")["sid"]
    workflow = engine.create_workflow(
        workspace,
        "W",
        json.dumps({"task_routing": {"filters": [], "default_filter": {"queue": queue}}}),
        assignment_callback_url="http://127.0.0.1:9/a",
    )["sid"]
    call = {
        "workspace": lambda: engine.workspace_cumulative_statistics(workspace),
        "queue": lambda: engine.task_queue_cumulative_statistics(
            workspace, queue, split_by_wait_time="10,30"
        ),
        "workflow": lambda: engine.workflow_cumulative_statistics(workspace, workflow),
    }[scope]
    queries = events_queries(monkeypatch, call)
    assert len(queries) == 1
    ((sql, params),) = queries
    with engine.store.read() as tx:
        plan = tx.all(f"EXPLAIN QUERY PLAN {sql}", params)
    details = [row["detail"] for row in plan]
    index = SCOPE_INDEXES[scope]
    assert any(d.startswith(f"SEARCH events USING COVERING INDEX {index} ") for d in details)
    assert set(filter(EVENT_TYPE.fullmatch, map(str, params))) >= WAIT_EVENTS
