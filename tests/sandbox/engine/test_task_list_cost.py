"""What a Task list filtered by queue and status reads: the queue's tasks in those statuses,
not every task the queue ever held (a queue's history of completed and canceled tasks grows
without bound; the tasks waiting in it do not)."""

from __future__ import annotations

import json
import secrets

from taskrouter_sandbox.clock import ManualClock
from taskrouter_sandbox.domain.values import Paging
from taskrouter_sandbox.engine import Engine
from taskrouter_sandbox.store import Store
from tests.sandbox.conftest import routing


def _steps_to_list(history: int, **filters) -> tuple[int, int]:
    """(SQLite virtual machine steps, rows) of one Task list of a queue holding three pending
    tasks after `history` canceled ones."""
    store = Store(":memory:")
    try:
        engine = Engine(store, ManualClock(), "AC" + secrets.token_hex(16))
        ws = engine.create_workspace("History", multi_task_enabled=False)["sid"]
        queue = engine.create_task_queue(ws, "Everyone", target_workers="1==1")["sid"]
        flow = engine.create_workflow(ws, "Flow", configuration=routing(default=queue))["sid"]
        for index in range(history + 3):
            task = engine.create_task(ws, attributes=json.dumps({"n": index}), workflow_sid=flow)
            if index < history:
                engine.update_task(ws, task["sid"], assignment_status="canceled", reason="old")
        steps = 0

        def count() -> int:
            nonlocal steps
            steps += 1
            return 0

        with store.read() as tx:
            tx.connection.set_progress_handler(count, 1)
            try:
                rows = engine.list_tasks(ws, Paging(), task_queue_sid=queue, **filters).rows
            finally:
                tx.connection.set_progress_handler(None, 1)
        return steps, len(rows)
    finally:
        store.close()


def test_a_queues_pending_tasks_cost_the_same_whatever_its_history() -> None:
    few, listed_few = _steps_to_list(10, assignment_status=["pending"])
    many, listed_many = _steps_to_list(400, assignment_status=["pending"])
    assert listed_few == listed_many == 3
    # Walking the queue's history would cost about 30x more with 400 than with 10.
    assert many < few * 1.5, (few, many)


def test_a_queues_tasks_in_several_statuses_cost_the_same_whatever_its_history() -> None:
    few, _ = _steps_to_list(10, assignment_status=["pending", "reserved", "assigned"])
    many, _ = _steps_to_list(400, assignment_status=["pending", "reserved", "assigned"])
    assert many < few * 1.5, (few, many)
