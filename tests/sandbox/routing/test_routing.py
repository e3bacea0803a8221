"""Routing in the engine alone, on a ManualClock: filters, targets, order, eligibility.

Every test builds its own in-memory store; nothing sleeps, timers fire through fire_due().
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from taskrouter_sandbox.clock import ManualClock
from taskrouter_sandbox.domain.errors import EngineError
from taskrouter_sandbox.domain.lifecycle import TARGET_TIMEOUT_REASON, TTL_REASON
from taskrouter_sandbox.domain.values import AssignmentCallback, Paging
from taskrouter_sandbox.domain.workflow import parse_order_by
from taskrouter_sandbox.engine import Engine
from taskrouter_sandbox.seed import ensure_seeded
from taskrouter_sandbox.store import Store

ACCOUNT_SID = "AC" + "a" * 32


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def engine(clock: ManualClock) -> Iterator[Engine]:
    store = Store(":memory:")
    yield Engine(store, clock, ACCOUNT_SID)
    store.close()


@dataclass
class Floor:
    """A single-tasking workspace: Offline/Idle/Reserved/Busy, queues by name, workers by name."""

    engine: Engine
    clock: ManualClock
    sid: str
    activities: dict[str, str]
    queues: dict[str, str]
    workers: dict[str, str]
    workflow_sid: str | None = None

    def worker(self, name: str) -> dict[str, Any]:
        return self.engine.get_worker(self.sid, self.workers[name])

    def activity(self, name: str) -> str:
        return self.worker(name)["activity_name"]

    def add_worker(self, name: str, attributes: dict[str, Any], activity: str = "Offline") -> str:
        row = self.engine.create_worker(
            self.sid,
            name,
            activity_sid=self.activities[activity],
            attributes=json.dumps(attributes),
        )
        self.workers[name] = row["sid"]
        return row["sid"]

    def add_queue(self, name: str, target_workers: str = "1==1", **options: Any) -> str:
        row = self.engine.create_task_queue(
            self.sid,
            name,
            target_workers=target_workers,
            reservation_activity_sid=self.activities["Reserved"],
            assignment_activity_sid=self.activities["Busy"],
            **options,
        )
        self.queues[name] = row["sid"]
        return row["sid"]

    def workflow(self, configuration: dict[str, Any], **options: Any) -> str:
        row = self.engine.create_workflow(self.sid, "Flow", json.dumps(configuration), **options)
        self.workflow_sid = row["sid"]
        return row["sid"]

    def set(self, name: str, activity: str, *, advance: float = 1) -> None:
        """Move a worker, then let a second pass so idle times differ."""
        self.engine.update_worker(
            self.sid, self.workers[name], activity_sid=self.activities[activity]
        )
        self.clock.advance(advance)

    def task(self, attributes: dict[str, Any] | None = None, **options: Any) -> str:
        options.setdefault("workflow_sid", self.workflow_sid)
        row = self.engine.create_task(self.sid, attributes=json.dumps(attributes or {}), **options)
        return row["sid"]

    def status(self, task_sid: str) -> str:
        return self.engine.get_task(self.sid, task_sid)["assignment_status"]

    def reservations(self, task_sid: str) -> list[dict[str, Any]]:
        return self.engine.list_reservations(self.sid, Paging(), task_sid=task_sid).rows

    def pending(self, task_sid: str) -> list[str]:
        """Names of the workers holding a pending reservation of the task."""
        names = {sid: name for name, sid in self.workers.items()}
        return [
            names[r["worker_sid"]]
            for r in self.reservations(task_sid)
            if r["reservation_status"] == "pending"
        ]

    def only_reservation(self, task_sid: str) -> dict[str, Any]:
        (reservation,) = self.reservations(task_sid)
        return reservation

    def events(self, **filters: Any) -> list[str]:
        rows = self.engine.list_events(self.sid, Paging(page_size=1000), **filters).rows
        return [row["event_type"] for row in reversed(rows)]


def _floor(
    engine: Engine, clock: ManualClock, *, multi_task_enabled: bool = False, **workspace: Any
) -> Floor:
    """A workspace for these tests: single-tasking, as the quickstart's, unless a test asks
    for multitasking (Twilio's default for a new workspace)."""
    sid = engine.create_workspace("Floor", multi_task_enabled=multi_task_enabled, **workspace)[
        "sid"
    ]
    activities = {
        row["friendly_name"]: row["sid"] for row in engine.list_activities(sid, Paging()).rows
    }
    for name, available in (("Idle", True), ("Reserved", False), ("Busy", False)):
        activities[name] = engine.create_activity(sid, name, available=available)["sid"]
    return Floor(engine, clock, sid, activities, {}, {})


def _one_queue(floor: Floor, **queue: Any) -> str:
    queue_sid = floor.add_queue("Everyone", **queue)
    floor.workflow({"task_routing": {"filters": [], "default_filter": {"queue": queue_sid}}})
    return queue_sid


# -- the quickstart ---------------------------------------------------------------------


def test_quickstart_lifecycle_and_bob_never_gets_spanish(
    engine: Engine, clock: ManualClock
) -> None:
    seeded = ensure_seeded(engine)
    ws = seeded.workspace_sid
    alice, bob = seeded.worker_sids["Alice"], seeded.worker_sids["Bob"]
    engine.update_worker(ws, bob, activity_sid=seeded.activity_sids["Idle"])
    task = engine.create_task(ws, attributes='{"selected_language": "es"}')
    assert task["assignment_status"] == "pending"
    assert task["task_queue_friendly_name"] == "Customer Care Requests - Spanish"
    # Bob is idle but does not speak Spanish: nothing is offered.
    assert engine.get_task(ws, task["sid"])["assignment_status"] == "pending"
    assert engine.list_reservations(ws, Paging(), worker_sid=bob).rows == []

    clock.advance(5)
    updated = engine.update_worker(ws, alice, activity_sid=seeded.activity_sids["Idle"])
    assert updated["activity_name"] == "Idle"  # the answer shows the change asked for
    (reservation,) = engine.list_reservations(ws, Paging(), task_sid=task["sid"]).rows
    assert reservation["reservation_status"] == "pending"
    assert reservation["worker_sid"] == alice and reservation["worker_name"] == "Alice"
    assert engine.get_task(ws, task["sid"])["assignment_status"] == "reserved"
    assert engine.get_worker(ws, alice)["activity_name"] == "Reserved"
    # The seeded workflow's Task Reservation Timeout is 1200 s.
    assert engine.next_deadline() == pytest.approx(1200)

    engine.update_reservation(ws, reservation["sid"], reservation_status="accepted")
    assert engine.get_task(ws, task["sid"])["assignment_status"] == "assigned"
    assert engine.get_worker(ws, alice)["activity_name"] == "Busy"

    english = engine.create_task(ws, attributes='{"selected_language": "en"}')
    (offer,) = engine.list_reservations(ws, Paging(), task_sid=english["sid"]).rows
    assert offer["worker_sid"] == bob
    # Spanish tasks keep waiting for Alice while Bob is free again.
    engine.update_reservation(ws, offer["sid"], reservation_status="rejected")
    spanish = engine.create_task(ws, attributes='{"selected_language": "es"}')
    assert engine.get_task(ws, spanish["sid"])["assignment_status"] == "pending"
    assert all(
        r["task_sid"] != spanish["sid"]
        for r in engine.list_reservations(ws, Paging(), worker_sid=bob).rows
    )


@pytest.mark.parametrize("first_task_ends_in", ["assigned", "wrapping"])
def test_single_tasking_availability_follows_the_activity_not_the_assigned_task(
    engine: Engine, clock: ManualClock, first_task_ends_in: str
) -> None:
    """Twilio's Activity resource: an available activity means the worker can be assigned new
    tasks. The quickstart's second part: Alice, her first task assigned and never completed,
    goes Offline, a task is created, she goes Idle and is reserved for it at once."""
    seeded = ensure_seeded(engine)
    ws, alice = seeded.workspace_sid, seeded.worker_sids["Alice"]
    idle, offline = seeded.activity_sids["Idle"], seeded.activity_sids["Offline"]
    engine.update_worker(ws, alice, activity_sid=idle)
    first = engine.create_task(ws, attributes='{"selected_language": "es"}')["sid"]
    (reservation,) = engine.list_reservations(ws, Paging(), task_sid=first).rows
    engine.update_reservation(ws, reservation["sid"], reservation_status="accepted")
    if first_task_ends_in == "wrapping":
        engine.update_task(ws, first, assignment_status="wrapping")
    assert engine.get_worker(ws, alice)["activity_name"] == "Busy"

    clock.advance(5)
    engine.update_worker(ws, alice, activity_sid=offline)
    second = engine.create_task(ws, attributes='{"selected_language": "es"}')["sid"]
    assert engine.get_task(ws, second)["assignment_status"] == "pending"
    clock.advance(5)
    engine.update_worker(ws, alice, activity_sid=idle)
    (offer,) = engine.list_reservations(ws, Paging(), task_sid=second).rows
    assert (offer["worker_sid"], offer["reservation_status"]) == (alice, "pending")
    assert engine.get_task(ws, second)["assignment_status"] == "reserved"
    assert engine.get_worker(ws, alice)["activity_name"] == "Reserved"
    engine.update_reservation(ws, offer["sid"], reservation_status="accepted")
    assert engine.get_task(ws, second)["assignment_status"] == "assigned"
    assert engine.get_task(ws, first)["assignment_status"] == first_task_ends_in
    assert engine.get_worker(ws, alice)["activity_name"] == "Busy"

    # Already available with an assigned task, she is offered a new task as it is created.
    engine.update_worker(ws, alice, activity_sid=idle)
    third = engine.create_task(ws, attributes='{"selected_language": "es"}')["sid"]
    assert engine.get_task(ws, third)["assignment_status"] == "reserved"


def test_single_tasking_a_pending_offer_holds_even_an_available_worker(
    engine: Engine, clock: ManualClock
) -> None:
    """The Workspace resource: in single-tasking a worker receives a new reservation only when
    the previous one is done with; an offer still waiting for its answer is not."""
    floor = _floor(engine, clock)
    floor.add_worker("Ann", {}, "Idle")
    _one_queue(floor)
    first = floor.task()
    assert floor.pending(first) == ["Ann"] and floor.activity("Ann") == "Reserved"
    # Moved to an available activity while the offer waits (no RejectPendingReservations).
    floor.set("Ann", "Idle")
    second = floor.task()
    assert floor.status(second) == "pending" and floor.pending(first) == ["Ann"]
    with pytest.raises(EngineError, match="already holds a pending reservation"):
        engine.reserve(floor.sid, second, floor.workers["Ann"])
    engine.update_reservation(
        floor.sid, floor.only_reservation(first)["sid"], reservation_status="rejected"
    )
    assert floor.pending(second) == ["Ann"]  # the offer answered, her activity decides


def test_events_of_a_routed_task(engine: Engine, clock: ManualClock) -> None:
    floor = _floor(engine, clock)
    floor.add_worker("Ann", {})
    _one_queue(floor)
    task_sid = floor.task()
    floor.set("Ann", "Idle")
    reservation = floor.only_reservation(task_sid)
    engine.update_reservation(floor.sid, reservation["sid"], reservation_status="accepted")
    assert floor.events(task_sid=task_sid) == [
        "task.created",
        "workflow.entered",
        "task-queue.entered",
        "reservation.created",
        "reservation.accepted",
    ]
    assert floor.events(worker_sid=floor.workers["Ann"], event_type="worker.activity.update") == [
        "worker.activity.update",  # Offline -> Idle
        "worker.activity.update",  # Idle -> Reserved
        "worker.activity.update",  # Reserved -> Busy
    ]
    rows = engine.list_events(
        floor.sid, Paging(), worker_sid=floor.workers["Ann"], event_type="worker.activity.update"
    ).rows
    data = json.loads(rows[0]["event_data"])
    assert data["WorkerPreviousActivityName"] == "Reserved"
    assert data["WorkerActivityName"] == "Busy"


# -- workflow filters and targets ------------------------------------------------------


def test_first_matching_filter_wins_and_no_match_without_default_cancels(
    engine: Engine, clock: ManualClock
) -> None:
    floor = _floor(engine, clock)
    vip, rest = floor.add_queue("VIP"), floor.add_queue("Rest")
    floor.workflow(
        {
            "task_routing": {
                "filters": [
                    {"expression": "vip == true", "targets": [{"queue": vip}]},
                    {
                        "filter_friendly_name": "All",
                        "expression": "1==1",
                        "targets": [{"queue": rest}],
                    },
                ]
            }
        }
    )
    assert engine.get_task(floor.sid, floor.task({"vip": True}))["task_queue_sid"] == vip
    assert engine.get_task(floor.sid, floor.task({"vip": False}))["task_queue_sid"] == rest

    floor.workflow(
        {"task_routing": {"filters": [{"expression": "x == 1", "targets": [{"queue": vip}]}]}}
    )
    lost = engine.get_task(floor.sid, floor.task({"x": 2}))
    assert lost["assignment_status"] == "canceled"
    assert "did not match any filter" in lost["reason"]

    floor.workflow(
        {
            "task_routing": {
                "filters": [{"expression": "x == 1", "targets": [{"queue": vip}]}],
                "default_filter": {"queue": rest},
            }
        }
    )
    assert engine.get_task(floor.sid, floor.task({"x": 2}))["task_queue_sid"] == rest


def test_target_expression_and_priority_override(engine: Engine, clock: ManualClock) -> None:
    floor = _floor(engine, clock)
    queue = floor.add_queue("Support")
    floor.add_worker("Junior", {"level": 1}, "Idle")
    floor.add_worker("Senior", {"level": 9}, "Idle")
    floor.workflow(
        {
            "task_routing": {
                "filters": [
                    {
                        "expression": "1==1",
                        "targets": [
                            {
                                "queue": queue,
                                "expression": "worker.level >= task.needed",
                                "priority": 7,
                            }
                        ],
                    }
                ]
            }
        }
    )
    task_sid = floor.task({"needed": 5}, priority=1)
    assert floor.pending(task_sid) == ["Senior"]
    assert engine.get_task(floor.sid, task_sid)["priority"] == 7
    assert "workflow.target-matched" in floor.events(task_sid=task_sid)


def test_target_timeouts_move_the_task_then_cancel_it(engine: Engine, clock: ManualClock) -> None:
    floor = _floor(engine, clock)
    first, second = floor.add_queue("First"), floor.add_queue("Second", "team == 'b'")
    floor.workflow(
        {
            "task_routing": {
                "filters": [
                    {
                        "expression": "1==1",
                        "targets": [
                            {"queue": first, "timeout": 30},
                            {"queue": second, "timeout": 90},
                        ],
                    }
                ]
            }
        }
    )
    task_sid = floor.task()
    assert engine.get_task(floor.sid, task_sid)["task_queue_sid"] == first
    assert engine.next_deadline() == pytest.approx(30)
    clock.advance(29)
    assert engine.fire_due() == pytest.approx(1)
    assert engine.get_task(floor.sid, task_sid)["task_queue_sid"] == first
    clock.advance(1)
    engine.fire_due()
    moved = engine.get_task(floor.sid, task_sid)
    assert moved["task_queue_sid"] == second and moved["assignment_status"] == "pending"
    # Only passing the final step fires workflow.timeout (Lifecycle of a Task: Workflows and
    # Assignment); a step's timeout just moves the task to the next step.
    assert floor.events(task_sid=task_sid)[-3:] == [
        "workflow.target-matched",
        "task-queue.moved",
        "task-queue.entered",
    ]
    assert "workflow.timeout" not in floor.events(task_sid=task_sid)

    # A worker of the second target's queue is offered it while it waits there.
    floor.add_worker("Bea", {"team": "b"}, "Idle")
    reservation = floor.only_reservation(task_sid)
    engine.update_reservation(floor.sid, reservation["sid"], reservation_status="rejected")
    # The second target's 90 s count from the first one's deadline: it ends at age 120.
    clock.advance(89)
    engine.fire_due()
    assert engine.get_task(floor.sid, task_sid)["assignment_status"] == "pending"
    clock.advance(1)
    engine.fire_due()
    canceled = engine.get_task(floor.sid, task_sid)
    assert canceled["assignment_status"] == "canceled"
    assert canceled["reason"] == TARGET_TIMEOUT_REASON
    assert floor.events(task_sid=task_sid)[-2:] == ["workflow.timeout", "task.canceled"]


def test_skip_if_skips_a_target_without_available_workers(
    engine: Engine, clock: ManualClock
) -> None:
    floor = _floor(engine, clock)
    experts, everyone = floor.add_queue("Experts", "expert == true"), floor.add_queue("All")
    floor.add_worker("Gen", {}, "Idle")
    floor.workflow(
        {
            "task_routing": {
                "filters": [
                    {
                        "expression": "1==1",
                        "targets": [
                            {"queue": experts, "skip_if": "workers.available == 0"},
                            {"queue": everyone},
                        ],
                    }
                ]
            }
        }
    )
    task_sid = floor.task()
    assert engine.get_task(floor.sid, task_sid)["task_queue_sid"] == everyone
    assert floor.pending(task_sid) == ["Gen"]
    floor.add_worker("Exa", {"expert": True}, "Idle")
    expert_task = floor.task()
    assert engine.get_task(floor.sid, expert_task)["task_queue_sid"] == experts
    assert floor.pending(expert_task) == ["Exa"]


def test_order_by_on_worker_attributes(engine: Engine, clock: ManualClock) -> None:
    floor = _floor(engine, clock)
    queue = floor.add_queue("Q")
    for name, level in (("Low", 1), ("High", 8), ("Mid", 4)):
        floor.add_worker(name, {"level": level}, "Idle")
        clock.advance(1)
    floor.workflow(
        {
            "task_routing": {
                "filters": [
                    {
                        "expression": "1==1",
                        "targets": [{"queue": queue, "order_by": "worker.level DESC"}],
                    }
                ]
            }
        }
    )
    assert floor.pending(floor.task()) == ["High"]
    assert floor.pending(floor.task()) == ["Mid"]
    assert parse_order_by("worker.a, worker.b.c DESC") == ((("a",), False), (("b", "c"), True))
    for bad in ("level DESC", "worker.level SIDEWAYS", "worker. ASC", "worker.a b c"):
        with pytest.raises(ValueError):
            parse_order_by(bad)


def test_bad_order_by_is_refused_in_the_configuration(engine: Engine, clock: ManualClock) -> None:
    floor = _floor(engine, clock)
    queue = floor.add_queue("Q")
    bad = {
        "task_routing": {
            "filters": [
                {"expression": "1==1", "targets": [{"queue": queue, "order_by": "level DESC"}]}
            ]
        }
    }
    with pytest.raises(EngineError, match="order_by") as caught:
        floor.workflow(bad)
    assert caught.value.status == 400 and caught.value.code == 20001


# -- order -------------------------------------------------------------------------------


def test_priority_first_then_fifo(engine: Engine, clock: ManualClock) -> None:
    floor = _floor(engine, clock)
    floor.add_worker("Ann", {})
    _one_queue(floor)
    old_low = floor.task(priority=1)
    clock.advance(1)
    high = floor.task(priority=5)
    clock.advance(1)
    new_low = floor.task(priority=1)
    taken = []
    for _ in range(3):
        floor.set("Ann", "Idle")
        (reservation,) = engine.list_reservations(
            floor.sid, Paging(), worker_sid=floor.workers["Ann"], reservation_status="pending"
        ).rows
        taken.append(reservation["task_sid"])
        engine.update_reservation(floor.sid, reservation["sid"], reservation_status="accepted")
        engine.update_task(floor.sid, reservation["task_sid"], assignment_status="completed")
    assert taken == [high, old_low, new_low]


def test_lifo_queue_offers_the_newest_task(engine: Engine, clock: ManualClock) -> None:
    floor = _floor(engine, clock)
    floor.add_worker("Ann", {})
    _one_queue(floor, task_order="LIFO")
    older = floor.task()
    clock.advance(1)
    newer = floor.task()
    floor.set("Ann", "Idle")
    assert floor.pending(newer) == ["Ann"] and floor.pending(older) == []


def test_the_worker_idle_longest_is_offered_first(engine: Engine, clock: ManualClock) -> None:
    floor = _floor(engine, clock)
    for name in ("Ann", "Ben", "Cat"):
        floor.add_worker(name, {})
    _one_queue(floor)
    floor.set("Ben", "Idle")
    floor.set("Cat", "Idle")
    floor.set("Ann", "Idle")
    assert [floor.pending(floor.task()) for _ in range(3)] == [["Ben"], ["Cat"], ["Ann"]]


def test_worker_becoming_available_picks_the_best_task_across_its_queues(
    engine: Engine, clock: ManualClock
) -> None:
    floor = _floor(engine, clock)
    sales, support = floor.add_queue("Sales"), floor.add_queue("Support")
    floor.add_worker("Ann", {})
    floor.workflow(
        {
            "task_routing": {
                "filters": [
                    {"expression": "kind == 'sales'", "targets": [{"queue": sales}]},
                    {"expression": "kind == 'support'", "targets": [{"queue": support}]},
                ]
            }
        }
    )
    first_sales = floor.task({"kind": "sales"})
    clock.advance(1)
    urgent_support = floor.task({"kind": "support"}, priority=3)
    floor.set("Ann", "Idle")
    assert floor.pending(urgent_support) == ["Ann"] and floor.pending(first_sales) == []


# -- reservation lifecycle ------------------------------------------------------------


def test_reservation_timeout_moves_worker_to_timeout_activity_and_reroutes(
    engine: Engine, clock: ManualClock
) -> None:
    floor = _floor(engine, clock)
    floor.add_worker("Ann", {}, "Idle")
    clock.advance(1)
    floor.add_worker("Ben", {})
    _one_queue(floor)
    floor.workflow(
        {"task_routing": {"filters": [], "default_filter": {"queue": floor.queues["Everyone"]}}},
        task_reservation_timeout=60,
    )
    task_sid = floor.task()
    assert floor.pending(task_sid) == ["Ann"]
    assert engine.next_deadline() == pytest.approx(60)
    clock.advance(59)
    engine.fire_due()
    assert floor.pending(task_sid) == ["Ann"]
    floor.set("Ben", "Idle", advance=0)  # Ben is free but the task is still Ann's to answer
    clock.advance(1)
    engine.fire_due()
    first, second = floor.reservations(task_sid)
    assert first["reservation_status"] == "timeout"
    assert floor.activity("Ann") == "Offline"  # the workspace's timeout activity
    assert second["worker_sid"] == floor.workers["Ben"]
    assert second["reservation_status"] == "pending"
    assert floor.status(task_sid) == "reserved"
    assert "reservation.timeout" in floor.events(reservation_sid=first["sid"])
    # Ann, back to Idle, is not offered the task she let time out.
    engine.update_reservation(floor.sid, second["sid"], reservation_status="rejected")
    floor.set("Ann", "Idle")
    assert floor.pending(task_sid) == []
    assert floor.status(task_sid) == "pending"


def test_task_ttl_cancels_with_reason(engine: Engine, clock: ManualClock) -> None:
    floor = _floor(engine, clock)
    floor.add_worker("Ann", {})
    _one_queue(floor)
    waiting = floor.task(timeout=100)
    floor.set("Ann", "Idle", advance=0)
    offered = floor.task(timeout=50)  # nobody free: Ann holds `waiting`
    assert floor.status(waiting) == "reserved" and floor.status(offered) == "pending"
    assert engine.next_deadline() == pytest.approx(50)
    clock.advance(100)
    assert engine.fire_due() is None
    for task_sid in (waiting, offered):
        task = engine.get_task(floor.sid, task_sid)
        assert task["assignment_status"] == "canceled"
        assert task["reason"] == TTL_REASON
    (reservation,) = floor.reservations(waiting)
    assert reservation["reservation_status"] == "canceled"
    assert floor.activity("Ann") == "Idle"


def test_reject_without_activity_offers_the_task_to_someone_else(
    engine: Engine, clock: ManualClock
) -> None:
    floor = _floor(engine, clock)
    floor.add_worker("Ann", {}, "Idle")
    clock.advance(1)
    floor.add_worker("Ben", {}, "Idle")
    _one_queue(floor)
    task_sid = floor.task()
    assert floor.pending(task_sid) == ["Ann"]
    reservation = floor.only_reservation(task_sid)
    engine.update_reservation(floor.sid, reservation["sid"], reservation_status="rejected")
    assert floor.activity("Ann") == "Idle"
    assert floor.pending(task_sid) == ["Ben"]
    other = floor.pending(floor.task())
    assert other == ["Ann"]  # Ann is free again for other tasks


def test_reject_with_an_activity(engine: Engine, clock: ManualClock) -> None:
    floor = _floor(engine, clock)
    floor.add_worker("Ann", {}, "Idle")
    _one_queue(floor)
    task_sid = floor.task()
    reservation = floor.only_reservation(task_sid)
    engine.update_reservation(
        floor.sid,
        reservation["sid"],
        reservation_status="rejected",
        worker_activity_sid=floor.activities["Offline"],
    )
    assert floor.activity("Ann") == "Offline"
    assert floor.status(task_sid) == "pending"


def test_multi_reservation_first_accept_wins(engine: Engine, clock: ManualClock) -> None:
    floor = _floor(engine, clock)
    for name in ("Ann", "Ben", "Cat"):
        floor.add_worker(name, {}, "Idle")
        clock.advance(1)
    _one_queue(floor, max_reserved_workers=2)
    task_sid = floor.task()
    assert floor.pending(task_sid) == ["Ann", "Ben"]
    ann, ben = floor.reservations(task_sid)
    engine.update_reservation(floor.sid, ben["sid"], reservation_status="accepted")
    statuses = [r["reservation_status"] for r in floor.reservations(task_sid)]
    assert statuses == ["rescinded", "accepted"]
    assert floor.activity("Ann") == "Idle" and floor.activity("Ben") == "Busy"
    with pytest.raises(EngineError) as caught:
        engine.update_reservation(floor.sid, ann["sid"], reservation_status="accepted")
    assert caught.value.status == 410
    assert floor.events(reservation_sid=ann["sid"])[-1] == "reservation.rescinded"
    # Cat, idle since the start, comes before Ann, idle since her offer was rescinded.
    assert floor.pending(floor.task()) == ["Cat", "Ann"]


def test_accepting_twice_is_refused_in_twilios_words(engine: Engine, clock: ManualClock) -> None:
    floor = _floor(engine, clock)
    floor.add_worker("Ann", {}, "Idle")
    _one_queue(floor)
    reservation = floor.only_reservation(floor.task())
    engine.update_reservation(floor.sid, reservation["sid"], reservation_status="accepted")
    with pytest.raises(EngineError) as caught:
        engine.update_reservation(floor.sid, reservation["sid"], reservation_status="accepted")
    assert caught.value.message == (
        f"Reservation {reservation['sid']} is already in state [accepted] and cannot be "
        "updated to [accepted]"
    )
    assert caught.value.status == 400


def test_cancel_and_complete_free_the_worker_for_the_next_task(
    engine: Engine, clock: ManualClock
) -> None:
    floor = _floor(engine, clock)
    floor.add_worker("Ann", {}, "Idle")
    queue = floor.add_queue("Plain")  # no reservation or assignment activity
    engine.update_task_queue(floor.sid, queue, target_workers="1==1")
    floor.workflow({"task_routing": {"filters": [], "default_filter": {"queue": queue}}})
    with engine.store.transaction() as tx:
        tx.execute(
            "UPDATE task_queues SET reservation_activity_sid = NULL,"
            " assignment_activity_sid = NULL WHERE sid = ?",
            (queue,),
        )
    first, second, third = floor.task(), floor.task(), floor.task()
    assert floor.pending(first) == ["Ann"] and floor.status(second) == "pending"
    engine.update_task(floor.sid, first, assignment_status="canceled", reason="caller hung up")
    assert floor.only_reservation(first)["reservation_status"] == "canceled"
    assert floor.pending(second) == ["Ann"]
    reservation = floor.only_reservation(second)
    engine.update_reservation(floor.sid, reservation["sid"], reservation_status="accepted")
    # No assignment activity leaves Ann Idle: her activity, not the assigned task, decides.
    assert floor.status(second) == "assigned" and floor.pending(third) == ["Ann"]
    fourth = floor.task()
    assert floor.status(fourth) == "pending"  # an offer waiting for its answer holds her
    engine.update_task(floor.sid, second, assignment_status="wrapping")
    assert floor.only_reservation(second)["reservation_status"] == "wrapping"
    engine.update_task(floor.sid, third, assignment_status="canceled")
    assert floor.pending(fourth) == ["Ann"]  # wrapping up does not hold her back either


def test_worker_attribute_and_queue_changes_update_membership(
    engine: Engine, clock: ManualClock
) -> None:
    floor = _floor(engine, clock)
    queue = floor.add_queue("French", "languages HAS 'fr'")
    floor.add_worker("Ann", {"languages": ["en"]}, "Idle")
    floor.workflow({"task_routing": {"filters": [], "default_filter": {"queue": queue}}})
    task_sid = floor.task()
    assert floor.status(task_sid) == "pending"
    engine.update_worker(floor.sid, floor.workers["Ann"], attributes='{"languages": ["fr"]}')
    assert floor.pending(task_sid) == ["Ann"]

    other = floor.add_queue("German", "languages HAS 'de'")
    floor.add_worker("Ben", {"languages": ["en"]}, "Idle")
    direct = engine.create_task(floor.sid, attributes="{}", task_queue_sid=other)["sid"]
    assert floor.status(direct) == "pending"
    engine.update_task_queue(floor.sid, other, target_workers="languages HAS 'en'")
    assert floor.pending(direct) == ["Ben"]
    with engine.store.read() as tx:
        members = tx.all("SELECT worker_sid FROM worker_queues WHERE task_queue_sid = ?", (queue,))
    assert [m["worker_sid"] for m in members] == [floor.workers["Ann"]]


def test_multi_tasking_holds_one_reservation_per_channel(
    engine: Engine, clock: ManualClock
) -> None:
    floor = _floor(engine, clock, multi_task_enabled=True)
    floor.add_worker("Ann", {}, "Idle")
    _one_queue(floor)
    voice = floor.task(task_channel="voice")
    chat = floor.task(task_channel="chat")
    second_voice = floor.task(task_channel="voice")
    assert floor.pending(voice) == ["Ann"] and floor.pending(chat) == ["Ann"]
    assert floor.status(second_voice) == "pending"
    assert floor.activity("Ann") == "Idle"  # multi-tasking workers keep their activity
    engine.update_task(floor.sid, voice, assignment_status="canceled")
    assert floor.pending(second_voice) == ["Ann"]


def test_multi_tasking_availability_is_the_activity_and_the_channels_capacity(
    engine: Engine, clock: ManualClock
) -> None:
    """Multitasking: an available activity, and capacity left on the task's channel (1 per
    channel here): an accepted task fills its channel's capacity as a pending offer does."""
    floor = _floor(engine, clock, multi_task_enabled=True)
    floor.add_worker("Ann", {}, "Idle")
    _one_queue(floor)
    voice = floor.task(task_channel="voice")
    engine.update_reservation(
        floor.sid, floor.only_reservation(voice)["sid"], reservation_status="accepted"
    )
    assert floor.status(voice) == "assigned" and floor.activity("Ann") == "Idle"
    second_voice = floor.task(task_channel="voice")
    assert floor.status(second_voice) == "pending"  # the voice channel is full
    floor.set("Ann", "Offline")
    floor.set("Ann", "Idle")
    assert floor.status(second_voice) == "pending"  # an available activity adds no capacity
    with pytest.raises(EngineError, match="channel"):
        engine.reserve(floor.sid, second_voice, floor.workers["Ann"])

    floor.set("Ann", "Offline")
    chat = floor.task(task_channel="chat")
    assert floor.status(chat) == "pending"  # capacity, but an unavailable activity
    floor.set("Ann", "Idle")
    assert floor.pending(chat) == ["Ann"]

    engine.update_task(floor.sid, voice, assignment_status="wrapping")
    engine.update_task(floor.sid, voice, assignment_status="completed")
    assert floor.pending(second_voice) == ["Ann"]


def test_updating_attributes_places_the_task_again(engine: Engine, clock: ManualClock) -> None:
    floor = _floor(engine, clock)
    spanish, english = floor.add_queue("es", "lang == 'es'"), floor.add_queue("en", "lang == 'en'")
    floor.add_worker("Eve", {"lang": "en"}, "Idle")
    floor.workflow(
        {
            "task_routing": {
                "filters": [
                    {"expression": "lang == 'es'", "targets": [{"queue": spanish}]},
                    {"expression": "lang == 'en'", "targets": [{"queue": english}]},
                ]
            }
        }
    )
    task_sid = floor.task({"lang": "es"})
    assert floor.status(task_sid) == "pending"
    engine.update_task(floor.sid, task_sid, attributes='{"lang": "en"}')
    assert engine.get_task(floor.sid, task_sid)["task_queue_sid"] == english
    assert floor.pending(task_sid) == ["Eve"]


# -- assignment callbacks and alerts --------------------------------------------------


def test_assignment_callback_effect_carries_twilios_parameters(
    engine: Engine, clock: ManualClock
) -> None:
    floor = _floor(engine, clock)
    floor.add_worker("Ann", {"skill": 1})
    queue = _one_queue(floor)
    engine.update_workflow(
        floor.sid, floor.workflow_sid, assignment_callback_url="https://example.com/assign"
    )
    published: list[Any] = []
    engine.subscribe(published.extend)
    task_sid = floor.task({"a": 1}, priority=2)
    clock.advance(7)
    floor.set("Ann", "Idle")
    (callback,) = [e for e in published if isinstance(e, AssignmentCallback)]
    reservation = floor.only_reservation(task_sid)
    assert callback.params == {
        "AccountSid": ACCOUNT_SID,
        "WorkspaceSid": floor.sid,
        "WorkflowSid": floor.workflow_sid,
        "TaskQueueSid": queue,
        "WorkerSid": floor.workers["Ann"],
        "WorkerAttributes": '{"skill": 1}',
        "TaskSid": task_sid,
        "TaskAttributes": '{"a": 1}',
        "TaskAge": "7",
        "TaskPriority": "2",
        "ReservationSid": reservation["sid"],
        "Timestamp": str(int((clock.now()).timestamp()) - 1),
    }


def test_deadline_listeners_hear_of_new_deadlines_after_commit(
    engine: Engine, clock: ManualClock
) -> None:
    floor = _floor(engine, clock)
    floor.add_worker("Ann", {})
    _one_queue(floor)
    woken: list[int] = []
    due: list[float] = []

    def listener(due_in: float) -> None:
        with engine.store.read() as tx:  # runs after commit: the new rows are visible
            woken.append(tx.scalar("SELECT count(*) FROM tasks"))
        due.append(due_in)

    engine.on_deadline(listener)
    floor.task()  # a TTL
    assert woken == [1]
    engine.update_worker(floor.sid, floor.workers["Ann"], attributes='{"x": 1}')
    assert woken == [1]  # nothing timed
    floor.set("Ann", "Idle")  # a reservation timeout
    assert woken == [1, 1]
    with pytest.raises(EngineError), engine.store.transaction():
        floor.task()
        raise EngineError("rolled back")
    assert woken == [1, 1]  # a rolled-back deadline wakes nobody
    # Each is told how far off its soonest deadline is: the TTL, then the reservation's.
    assert due == [86400.0, 120.0]
    engine.remove_deadline_listener(listener)
    floor.task()
    assert woken == [1, 1]
