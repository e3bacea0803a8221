"""A transaction's updates of tasks and reservations wait until a statement could see them:
one UPDATE per row, the version moved on once per update, nothing lost at commit or seen
after a rollback, and the reservations' free flag current before worker_queues is read.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from taskrouter_sandbox.clock import ManualClock
from taskrouter_sandbox.domain.values import Paging
from taskrouter_sandbox.engine import Engine
from taskrouter_sandbox.seed import Seeded, ensure_seeded
from taskrouter_sandbox.store import Store

ACCOUNT_SID = "AC" + "d" * 32


@pytest.fixture
def engine() -> Iterator[Engine]:
    store = Store(":memory:")
    yield Engine(store, ManualClock(), ACCOUNT_SID)
    store.close()


def _task(engine: Engine) -> tuple[Seeded, str]:
    seeded = ensure_seeded(engine)
    # No worker is available in the seed: the task stays pending, offered to nobody.
    task = engine.create_task(seeded.workspace_sid, attributes='{"selected_language": "fr"}')
    return seeded, task["sid"]


def test_several_updates_of_a_task_become_one_statement_seen_by_the_next_read(
    engine: Engine,
) -> None:
    _, sid = _task(engine)
    with engine.store.read() as tx:
        version = tx.scalar("SELECT version FROM tasks WHERE sid = ?", (sid,))
    with engine.store.transaction() as tx:
        before = tx.statements
        tx.update("tasks", sid, {"priority": 3})
        tx.update("tasks", sid, {"priority": 4, "reason": "later"})
        tx.execute("SELECT 1 FROM activities LIMIT 1")  # cannot see tasks: still waiting
        assert tx.statements == before + 1
        row = tx.one("SELECT priority, reason, version FROM tasks WHERE sid = ?", (sid,))
        # The read ran after one UPDATE: the later values win, the version moved on twice.
        assert tx.statements == before + 3
        assert (row["priority"], row["reason"], row["version"]) == (4, "later", version + 2)


def test_waiting_updates_are_written_at_commit_and_dropped_on_rollback(engine: Engine) -> None:
    _, sid = _task(engine)
    with engine.store.transaction() as tx:
        tx.update("tasks", sid, {"priority": 7})
    with engine.store.read() as tx:
        assert tx.scalar("SELECT priority FROM tasks WHERE sid = ?", (sid,)) == 7
    with pytest.raises(RuntimeError), engine.store.transaction() as tx:
        tx.update("tasks", sid, {"priority": 9})
        raise RuntimeError("rolled back")
    with engine.store.read() as tx:
        assert tx.scalar("SELECT priority FROM tasks WHERE sid = ?", (sid,)) == 7


def test_a_delete_writes_what_waits_first(engine: Engine) -> None:
    seeded, sid = _task(engine)
    with engine.store.transaction() as tx:
        tx.update("tasks", sid, {"priority": 5})
        tx.execute("DELETE FROM tasks WHERE sid = ?", (sid,))
        assert tx.scalar("SELECT count(*) FROM tasks WHERE sid = ?", (sid,)) == 0
    assert engine.get_workspace(seeded.workspace_sid)["sid"] == seeded.workspace_sid


def test_a_reservation_update_reaches_the_free_flag_before_worker_queues_is_read(
    engine: Engine,
) -> None:
    seeded = ensure_seeded(engine)
    ws = seeded.workspace_sid
    bob = seeded.worker_sids["Bob"]
    engine.update_worker(ws, bob, activity_sid=seeded.activity_sids["Idle"])
    task = engine.create_task(ws, attributes='{"selected_language": "en"}')
    reservation = engine.list_reservations(ws, Paging(), task_sid=task["sid"]).rows[0]
    with engine.store.transaction() as tx:
        # Available in every queue, but held by the pending offer.
        tx.execute("UPDATE worker_queues SET available = 1 WHERE worker_sid = ?", (bob,))
        assert tx.scalar("SELECT max(free) FROM worker_queues WHERE worker_sid = ?", (bob,)) == 0
        tx.update("reservations", reservation["sid"], {"reservation_status": "accepted"})
        # The trigger on the reservation's status has run by the time this reads the flag.
        assert tx.scalar("SELECT min(free) FROM worker_queues WHERE worker_sid = ?", (bob,)) == 1
