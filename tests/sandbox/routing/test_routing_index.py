"""The free flag of worker_queues: right after every change that can touch it, read through its
index, and a new task's cost independent of how many busy members its queue has.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from taskrouter_sandbox import store as store_module
from taskrouter_sandbox.clock import ManualClock
from taskrouter_sandbox.domain.values import Paging
from taskrouter_sandbox.engine import Engine
from taskrouter_sandbox.routing.matching import _SINGLE_TASK_CANDIDATES
from taskrouter_sandbox.seed import ENGLISH_QUEUE, SPANISH_QUEUE, ensure_seeded
from taskrouter_sandbox.store import Store

ACCOUNT_SID = "AC" + "b" * 32


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def engine(clock: ManualClock) -> Iterator[Engine]:
    store = Store(":memory:")
    yield Engine(store, clock, ACCOUNT_SID)
    store.close()


def free_flags(store: Store) -> dict[tuple[str, str], int]:
    with store.read() as tx:
        return {
            (row["task_queue_sid"], row["worker_sid"]): row["free"]
            for row in tx.all("SELECT task_queue_sid, worker_sid, free FROM worker_queues")
        }


def recomputed(store: Store) -> dict[tuple[str, str], int]:
    """What free must be, from the workers' own rows and their reservations: available and
    not waiting to answer an offer (an accepted task leaves it to the worker's activity)."""
    with store.read() as tx:
        return {
            (row["task_queue_sid"], row["worker_sid"]): row["free"]
            for row in tx.all(
                "SELECT wq.task_queue_sid, wq.worker_sid, (k.available AND NOT EXISTS ("
                " SELECT 1 FROM reservations r WHERE r.worker_sid = k.sid"
                " AND r.reservation_status = 'pending')) AS free"
                " FROM worker_queues wq JOIN workers k ON k.sid = wq.worker_sid"
            )
        }


class Floor:
    """One workspace: Idle/Busy activities, workers by name, queues by name. Single-tasking
    (the free flag's case) unless a test asks for multitasking, Twilio's default."""

    def __init__(
        self,
        engine: Engine,
        clock: ManualClock,
        *,
        multi_task_enabled: bool = False,
        **workspace: Any,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.sid = engine.create_workspace(
            "Index floor", multi_task_enabled=multi_task_enabled, **workspace
        )["sid"]
        self.activities = {
            row["friendly_name"]: row["sid"]
            for row in engine.list_activities(self.sid, Paging()).rows
        }
        for name, available in (("Idle", True), ("Busy", False)):
            self.activities[name] = engine.create_activity(self.sid, name, available=available)[
                "sid"
            ]
        self.workers: dict[str, str] = {}
        self.queues: dict[str, str] = {}
        self.workflow_sid = ""

    def add_worker(self, name: str, attributes: dict[str, Any], activity: str = "Idle") -> str:
        self.workers[name] = self.engine.create_worker(
            self.sid,
            name,
            activity_sid=self.activities[activity],
            attributes=json.dumps(attributes),
        )["sid"]
        self.clock.advance(1)
        return self.workers[name]

    def add_queue(self, name: str, target_workers: str, **options: Any) -> str:
        self.queues[name] = self.engine.create_task_queue(
            self.sid, name, target_workers=target_workers, **options
        )["sid"]
        return self.queues[name]

    def route_all_to(self, queue: str) -> None:
        configuration = {"task_routing": {"filters": [], "default_filter": {"queue": queue}}}
        self.workflow_sid = self.engine.create_workflow(
            self.sid, "Flow", json.dumps(configuration), task_reservation_timeout=60
        )["sid"]

    def task(self) -> str:
        return self.engine.create_task(self.sid, attributes="{}", workflow_sid=self.workflow_sid)[
            "sid"
        ]

    def reservation(self, task_sid: str, status: str = "pending") -> dict[str, Any]:
        (row,) = [
            row
            for row in self.engine.list_reservations(self.sid, Paging(), task_sid=task_sid).rows
            if row["reservation_status"] == status
        ]
        return row

    def free(self, name: str, queue: str) -> int:
        return free_flags(self.engine.store)[(self.queues[queue], self.workers[name])]


def check(floor: Floor) -> None:
    store = floor.engine.store
    assert free_flags(store) == recomputed(store)


def test_the_free_flag_stays_right_through_every_change(engine: Engine, clock: ManualClock) -> None:
    floor = Floor(engine, clock)
    # No reservation or assignment activity: a worker holding a pending offer stays available,
    # so only the free flag keeps it from a second offer.
    everyone = floor.add_queue("Everyone", "1==1")
    floor.add_queue("French", 'languages HAS "fr"')
    floor.route_all_to(everyone)
    floor.add_worker("Ann", {"languages": ["en"]})
    floor.add_worker("Ben", {"languages": ["fr"]}, "Offline")
    check(floor)
    assert floor.free("Ann", "Everyone") == 1 and floor.free("Ben", "French") == 0

    first = floor.task()  # reserve
    check(floor)
    assert floor.free("Ann", "Everyone") == 0
    engine.update_reservation(
        floor.sid, floor.reservation(first)["sid"], reservation_status="accepted"
    )
    check(floor)
    assert floor.free("Ann", "Everyone") == 1  # assigned, and her activity (Idle) is available
    engine.update_task(floor.sid, first, assignment_status="wrapping")
    check(floor)
    assert floor.free("Ann", "Everyone") == 1  # wrapping holds nothing
    engine.update_task(floor.sid, first, assignment_status="completed")
    check(floor)

    second = floor.task()
    reservation = floor.reservation(second)
    assert floor.free("Ann", "Everyone") == 0
    engine.update_reservation(floor.sid, reservation["sid"], reservation_status="rejected")
    check(floor)
    # Ann rejected it and is not offered it again: she is free, the task waits.
    assert floor.free("Ann", "Everyone") == 1

    # Activity changes: Ben comes online and takes the waiting task; Ann goes offline.
    engine.update_worker(floor.sid, floor.workers["Ben"], activity_sid=floor.activities["Idle"])
    check(floor)
    assert floor.free("Ben", "Everyone") == 0 and floor.free("Ben", "French") == 0
    engine.update_worker(floor.sid, floor.workers["Ann"], activity_sid=floor.activities["Offline"])
    check(floor)
    assert floor.free("Ann", "Everyone") == 0

    # Reservation timeout: the workspace's timeout activity (Offline) takes Ben out.
    clock.advance(61)
    engine.fire_due()
    check(floor)
    assert floor.free("Ben", "Everyone") == 0
    engine.update_worker(floor.sid, floor.workers["Ben"], activity_sid=floor.activities["Idle"])
    check(floor)

    # Attribute change: Ann joins French while holding nothing, keeps her flag in each queue.
    engine.update_worker(floor.sid, floor.workers["Ann"], activity_sid=floor.activities["Idle"])
    engine.update_worker(floor.sid, floor.workers["Ann"], attributes='{"languages": ["fr"]}')
    check(floor)
    assert floor.free("Ann", "French") == floor.free("Ann", "Everyone")

    # Cancel a task with a pending reservation, and delete one holding a pending reservation.
    for ending in ("cancel", "delete"):
        task_sid = floor.task()
        holder = floor.reservation(task_sid)["worker_sid"]
        assert free_flags(engine.store)[(everyone, holder)] == 0
        if ending == "cancel":
            engine.update_task(floor.sid, task_sid, assignment_status="canceled")
        else:
            engine.delete_task(floor.sid, task_sid)
        check(floor)
        assert free_flags(engine.store)[(everyone, holder)] == 1

    # A queue's target_workers change rebuilds its memberships with the right flags.
    engine.update_worker(floor.sid, floor.workers["Ben"], activity_sid=floor.activities["Busy"])
    engine.update_task_queue(floor.sid, floor.queues["French"], target_workers="1==1")
    check(floor)
    assert floor.free("Ben", "French") == 0 and floor.free("Ann", "French") == 1

    # Deleting a worker takes its rows with it; the others stay right.
    engine.delete_worker(floor.sid, floor.workers["Ben"])
    check(floor)
    assert all(worker != floor.workers["Ben"] for _, worker in free_flags(engine.store))


def test_a_rescinded_offer_frees_its_worker(engine: Engine, clock: ManualClock) -> None:
    floor = Floor(engine, clock)
    everyone = floor.add_queue("Everyone", "1==1", max_reserved_workers=2)
    floor.route_all_to(everyone)
    floor.add_worker("Ann", {})
    floor.add_worker("Ben", {})
    task_sid = floor.task()
    assert floor.free("Ann", "Everyone") == 0 and floor.free("Ben", "Everyone") == 0
    reservations = engine.list_reservations(floor.sid, Paging(), task_sid=task_sid).rows
    engine.update_reservation(floor.sid, reservations[0]["sid"], reservation_status="accepted")
    check(floor)
    accepted = reservations[0]["worker_sid"]
    other = next(sid for sid in floor.workers.values() if sid != accepted)
    flags = free_flags(engine.store)
    # The other offer was rescinded; the accepted one leaves its worker to its activity (Idle).
    assert flags[(everyone, accepted)] == 1 and flags[(everyone, other)] == 1


def test_single_tasking_candidates_read_the_free_index_in_idle_order(engine: Engine) -> None:
    with engine.store.read() as tx:
        plan = [
            row["detail"]
            for row in tx.all(
                "EXPLAIN QUERY PLAN " + _SINGLE_TASK_CANDIDATES + " ORDER BY wq.idle_since,"
                " wq.worker_sid",
                ("WQ" + "0" * 32,),
            )
        ]
    assert any("worker_queues_free" in step for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan


def _steps_to_route_a_task(floor: Floor) -> int:
    """SQLite virtual machine steps spent creating and routing one task."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    with floor.engine.store.transaction() as tx:
        tx.connection.set_progress_handler(count, 1)
        try:
            floor.task()
        finally:
            tx.connection.set_progress_handler(None, 1)
    return steps


def _route_with_busy_members(busy: int) -> int:
    """Steps to route one task to the one free member of a queue with `busy` busy members."""
    store = Store(":memory:")
    try:
        floor = Floor(Engine(store, ManualClock(), ACCOUNT_SID), ManualClock())
        everyone = floor.add_queue("Everyone", "1==1")
        floor.route_all_to(everyone)
        for index in range(busy):
            floor.add_worker(f"Agent {index}", {})
            floor.task()  # each agent holds one, staying available (no reservation activity)
        floor.add_worker("Last", {})
        steps = _steps_to_route_a_task(floor)
        with store.read() as tx:
            held = tx.scalar(
                "SELECT count(*) FROM reservations WHERE worker_sid = ?"
                " AND reservation_status = 'pending'",
                (floor.workers["Last"],),
            )
        assert held == 1
        return steps
    finally:
        store.close()


def test_a_new_task_costs_the_same_however_many_members_are_busy() -> None:
    few, many = _route_with_busy_members(10), _route_with_busy_members(200)
    # Scanning the busy members would cost about 20x more with 200 than with 10.
    assert many < few * 1.5, (few, many)


def test_a_file_from_before_the_free_flag_gets_it(tmp_path: Path) -> None:
    database = str(tmp_path / "before.sqlite3")
    store = Store(database)
    engine = Engine(store, ManualClock(), ACCOUNT_SID)
    seeded = ensure_seeded(engine)
    ws = seeded.workspace_sid
    engine.update_worker(ws, seeded.worker_sids["Bob"], activity_sid=seeded.activity_sids["Idle"])
    with store.transaction() as tx:
        for trigger in (
            "worker_queues_free_born",
            "worker_queues_free_moved",
            "reservations_hold",
            "reservations_hold_changed",
            "reservations_hold_deleted",
        ):
            tx.execute(f"DROP TRIGGER {trigger}")
        tx.execute("DROP INDEX worker_queues_free")
        tx.execute("ALTER TABLE worker_queues DROP COLUMN free")
    store.close()

    store = Store(database)
    engine = Engine(store, ManualClock(), ACCOUNT_SID)
    try:
        flags = free_flags(store)
        assert flags == recomputed(store)
        assert flags[(seeded.task_queue_sids[ENGLISH_QUEUE], seeded.worker_sids["Bob"])] == 1
        task = engine.create_task(ws, attributes='{"selected_language": "en"}')
        assert engine.get_task(ws, task["sid"])["assignment_status"] == "reserved"
        assert free_flags(store) == recomputed(store)
    finally:
        store.close()


def _make_schema_version_2(store: Store) -> None:
    """Turn a file into what version 2 left: its free triggers, where an accepted reservation
    held its worker as a pending one does, the flags they wrote, and its version number."""
    held_now = "= " + store_module.schema._HELD
    version_2_held = "IN ('pending', 'accepted')"
    with store.transaction() as tx:
        for trigger in store_module.schema._FREE_TRIGGERS:
            tx.execute(f"DROP TRIGGER {trigger}")
        for statement in store_module.schema._ROUTING_INDEXES:
            if "CREATE TRIGGER" in statement:
                tx.execute(statement.replace(held_now, version_2_held))
        tx.execute(
            "UPDATE worker_queues SET free = "
            + store_module.FREE_VALUE.replace(held_now, version_2_held)
        )
        tx.set_setting("schema_version", "2")


def test_a_version_2_file_stops_holding_workers_with_an_accepted_task(tmp_path: Path) -> None:
    database = str(tmp_path / "version2.sqlite3")
    store = Store(database)
    engine = Engine(store, ManualClock(), ACCOUNT_SID)
    seeded = ensure_seeded(engine)
    ws, alice = seeded.workspace_sid, seeded.worker_sids["Alice"]
    spanish = seeded.task_queue_sids[SPANISH_QUEUE]
    engine.update_worker(ws, alice, activity_sid=seeded.activity_sids["Idle"])
    first = engine.create_task(ws, attributes='{"selected_language": "es"}')["sid"]
    (reservation,) = engine.list_reservations(ws, Paging(), task_sid=first).rows
    engine.update_reservation(ws, reservation["sid"], reservation_status="accepted")
    # Never completed: the quickstart's second part moves Alice back to an available activity.
    engine.update_worker(ws, alice, activity_sid=seeded.activity_sids["Idle"])
    _make_schema_version_2(store)
    assert free_flags(store)[(spanish, alice)] == 0
    store.close()

    store = Store(database)
    engine = Engine(store, ManualClock(), ACCOUNT_SID)
    try:
        with store.read() as tx:
            assert tx.setting("schema_version") == str(store_module.SCHEMA_VERSION)
            triggers = tx.all("SELECT sql FROM sqlite_master WHERE type = 'trigger'")
        # The free-flag triggers, and the row-version (ETag) ones, one per versioned table.
        expected = len(store_module.schema._FREE_TRIGGERS) + len(
            store_module.schema.VERSIONED_TABLES
        )
        assert len(triggers) == expected
        assert not any("accepted" in row["sql"] for row in triggers)
        assert free_flags(store) == recomputed(store)
        assert free_flags(store)[(spanish, alice)] == 1
        second = engine.create_task(ws, attributes='{"selected_language": "es"}')["sid"]
        (offer,) = engine.list_reservations(ws, Paging(), task_sid=second).rows
        assert (offer["worker_sid"], offer["reservation_status"]) == (alice, "pending")
        # The new triggers hold her while the offer waits for its answer.
        assert free_flags(store)[(spanish, alice)] == 0
        assert free_flags(store) == recomputed(store)
    finally:
        store.close()


# -- rows read once per transaction ----------------------------------------------------------


def test_a_cached_row_is_read_once_patched_by_updates_and_dropped_by_other_writes(
    engine: Engine, clock: ManualClock
) -> None:
    floor = Floor(engine, clock)
    everyone = floor.add_queue("Everyone", "1==1")
    floor.route_all_to(everyone)
    task_sid = floor.task()
    loads: list[str] = []

    def read(tx: Any) -> dict[str, Any] | None:
        def load() -> dict[str, Any] | None:
            loads.append(task_sid)
            return tx.one(
                "SELECT t.*, q.friendly_name AS queue_name FROM tasks t"
                " LEFT JOIN task_queues q ON q.sid = t.task_queue_sid WHERE t.sid = ?",
                (task_sid,),
            )

        return tx.cached(
            "tasks",
            task_sid,
            load,
            joins=frozenset({"task_queues"}),
            keys=frozenset({"task_queue_sid"}),
        )

    with engine.store.transaction() as tx:
        first = read(tx)
        assert first is not None and first["priority"] == 0
        first["priority"] = 99  # a copy: the cache does not see it
        assert read(tx)["priority"] == 0 and len(loads) == 1

        tx.update("tasks", task_sid, {"priority": 5, "reason": None})
        assert read(tx)["priority"] == 5 and len(loads) == 1  # patched, not read again
        tx.update("workers", "WK" + "0" * 32, {"attributes": "{}"})  # unrelated
        assert len(loads) == 1

        tx.update("tasks", task_sid, {"ignore_capacity": True})  # SQLite returns 1, not True
        assert read(tx)["ignore_capacity"] == 1 and len(loads) == 2

        tx.execute("UPDATE tasks SET priority = priority + 1 WHERE sid = ?", (task_sid,))
        assert read(tx)["priority"] == 6 and len(loads) == 3

        tx.update("task_queues", everyone, {"friendly_name": "Renamed"})
        assert read(tx)["queue_name"] == "Renamed" and len(loads) == 4

        read(tx)
        other = floor.add_queue("Other", "1==1")  # an insert into a joined table
        read(tx)
        assert len(loads) == 5
        tx.update("tasks", task_sid, {"task_queue_sid": other})
        assert read(tx)["queue_name"] == "Other"

        count = len(loads)
        tx.execute("DELETE FROM task_queues WHERE sid = ?", ("WQ" + "0" * 32,))
        read(tx)
        assert len(loads) == count + 1  # any delete may cascade: everything is read again
        tx.delete("tasks", task_sid)
        assert read(tx) is None
    with engine.store.transaction() as tx:
        assert tx.scalar("SELECT count(*) FROM tasks WHERE sid = ?", (task_sid,)) == 0
