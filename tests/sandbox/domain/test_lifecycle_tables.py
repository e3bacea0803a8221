"""The lifecycle tables (taskrouter_sandbox/domain/lifecycle.py) are whole, and the one writer of
statuses (taskrouter_sandbox/state/transitions.py) refuses a move they do not list."""

from __future__ import annotations

import pytest

from taskrouter_sandbox.clock import ManualClock
from taskrouter_sandbox.domain import lifecycle
from taskrouter_sandbox.domain.errors import EngineError, InvalidTransition
from taskrouter_sandbox.engine import Engine
from taskrouter_sandbox.state import transitions
from taskrouter_sandbox.state.operation import Operation
from taskrouter_sandbox.store import Store


@pytest.mark.parametrize(
    ("statuses", "table", "final"),
    [
        (lifecycle.TASK_STATUSES, lifecycle.TASK_TRANSITIONS, lifecycle.FINAL_TASK_STATUSES),
        (
            lifecycle.RESERVATION_STATUSES,
            lifecycle.RESERVATION_TRANSITIONS,
            ("rejected", "timeout", "canceled", "rescinded", "completed"),
        ),
    ],
)
def test_every_status_has_its_moves_and_only_final_ones_have_none(statuses, table, final):
    assert set(table) == set(statuses)
    assert all(targets <= set(statuses) for targets in table.values())
    assert {status for status, targets in table.items() if not targets} == set(final)


def test_what_a_client_may_ask_for_is_drawn_from_the_tables():
    assert lifecycle.task_sources("canceled") == ("pending", "reserved")
    assert lifecycle.task_sources("completed") == ("assigned", "wrapping")
    assert lifecycle.reservation_sources("completed") == ("accepted", "wrapping")
    with pytest.raises(EngineError, match="Cannot complete task WT1 because it is not assigned"):
        lifecycle.check_task_request("WT1", "pending", "completed")
    with pytest.raises(EngineError, match=r"already in state \[rejected\]"):
        lifecycle.check_reservation_request("WR1", "rejected", "accepted")


@pytest.mark.parametrize(
    ("instruction", "flag", "target"),
    [
        ("accept", False, "accepted"),
        ("reject", False, "rejected"),
        ("dequeue", False, "accepted"),
        ("conference", False, "accepted"),
        ("call", False, None),
        ("call", True, "accepted"),
        ("redirect", False, None),
        ("redirect", True, "accepted"),
    ],
)
def test_the_instruction_table(instruction, flag, target):
    assert lifecycle.instruction_target(instruction, flag) == target


def test_the_writer_refuses_a_move_the_tables_do_not_list():
    store = Store(":memory:")
    try:
        engine = Engine(store, ManualClock(), "AC" + "a" * 32)
        workspace = engine.create_workspace("W", template="FIFO")
        task = engine.create_task(workspace["sid"], attributes="{}")
        engine.update_task(workspace["sid"], task["sid"], assignment_status="canceled")
        with store.transaction() as tx, pytest.raises(InvalidTransition, match="canceled -> "):
            op = Operation(tx, engine.clock, engine.account_sid)
            transitions.wrap_task(op, workspace["sid"], task["sid"])
        assert engine.get_task(workspace["sid"], task["sid"])["assignment_status"] == "canceled"
    finally:
        store.close()
