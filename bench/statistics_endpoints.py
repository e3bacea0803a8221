"""Benchmark 5: the statistics endpoints on a large workspace, read with the twilio library from
the sandbox under gunicorn: a cumulative call over a window holding 100,000 events (with as
many more before it), and a real-time call on a queue holding 10,000 pending tasks and 1,000
workers.

The database is played beforehand by the engine itself on a ManualClock, so every event is one
the sandbox really records (task lifecycles with their reservations, accepted or canceled),
dated where the window needs it; the server then opens that file with the system clock.
"""

from __future__ import annotations

import json
import math
import random
import secrets
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import BenchError, Report, Row, percentile
from bench.live import SandboxAccount, client_for, sandbox_server

TARGET_CUMULATIVE_MS = 200.0
TARGET_REALTIME_MS = 50.0
# The cumulative call reads the last WINDOW_MINUTES; its events are played inside them, a few
# minutes clear of both ends, and the history HISTORY_DAYS before.
WINDOW_MINUTES = 60
HISTORY_DAYS = 3
# The real-time queue's workers: this many Available (each holding one reservation, in a
# single-tasking workspace), the others Offline or Unavailable.
AVAILABLE_SHARE = 10
TASK_RESERVATION_TIMEOUT = 86_400  # the most a workflow allows: no offer times out meanwhile


@dataclass(frozen=True)
class Size:
    window_events: int = 100_000
    history_events: int = 100_000
    pending_tasks: int = 10_000
    workers: int = 1000
    calls: int = 20
    warmup: int = 3


FULL = Size()
SMOKE = Size(window_events=600, history_events=300, pending_tasks=60, workers=20, calls=3)


@dataclass(frozen=True)
class Played:
    """What the engine played: the SIDs the calls read and what their figures must show."""

    busy_workspace: str  # the cumulative call's workspace
    window_events: int
    history_events: int
    lifecycles: int
    queue_workspace: str  # the real-time call's workspace
    queue: str
    empty_queue: str  # the same workspace's queue that selects no worker and holds no task
    pending_tasks: int
    workers: int
    build_seconds: float


# -- the database, played by the engine -----------------------------------------------------


def play(path: Path, size: Size, now: datetime, seed: int = 5) -> Played:
    from taskrouter_sandbox.clock import ManualClock
    from taskrouter_sandbox.domain.values import AssignmentCallback, Paging
    from taskrouter_sandbox.engine import Engine
    from taskrouter_sandbox.store import Store

    started = time.perf_counter()
    rng = random.Random(seed)
    clock = ManualClock(now - timedelta(days=HISTORY_DAYS))
    store = Store(str(path))
    try:
        engine = Engine(store, clock, "AC" + secrets.token_hex(16))
        engine.ensure_routing_state()
        offered: deque[AssignmentCallback] = deque()
        engine.subscribe(
            lambda effects: offered.extend(e for e in effects if isinstance(e, AssignmentCallback))
        )

        def activities(workspace_sid: str) -> dict[str, str]:
            rows = engine.list_activities(workspace_sid, Paging()).rows
            return {row["friendly_name"]: row["sid"] for row in rows}

        def queue_and_workflow(workspace_sid: str, name: str, target: str) -> tuple[str, str]:
            queue = engine.create_task_queue(workspace_sid, name, target_workers=target)["sid"]
            workflow = engine.create_workflow(
                workspace_sid,
                f"{name} workflow",
                json.dumps({"task_routing": {"filters": [], "default_filter": {"queue": queue}}}),
                # Never called: the benchmark answers each offer itself.
                assignment_callback_url="http://127.0.0.1:9/assignment",
                task_reservation_timeout=TASK_RESERVATION_TIMEOUT,
            )["sid"]
            return queue, workflow

        def events_of(workspace_sid: str, since: datetime | None = None) -> int:
            from taskrouter_sandbox.clock import to_storage

            engine.operations.catch_up_events()  # the event journal's rows counted too
            with store.read() as tx:
                return tx.scalar(
                    "SELECT count(*) FROM events WHERE workspace_sid = ? AND event_date >= ?",
                    (workspace_sid, to_storage(since) if since else ""),
                )

        # The cumulative call's workspace: ten agents taking tasks one after another; one task
        # in ten is canceled while offered, the others accepted and completed.
        busy = engine.create_workspace("Busy", multi_task_enabled=False)["sid"]
        _, busy_workflow = queue_and_workflow(busy, "Support", "1 == 1")
        for index in range(10):
            engine.create_worker(busy, f"Agent {index}", activity_sid=activities(busy)["Available"])
        lifecycles = 0

        def lifecycle(step: float) -> None:
            nonlocal lifecycles
            task = engine.create_task(
                busy, attributes='{"type": "support"}', workflow_sid=busy_workflow
            )
            clock.advance(step * rng.uniform(0.2, 1.0))
            if lifecycles % 10 == 9:
                engine.update_task(busy, task["sid"], assignment_status="canceled", reason="bench")
            else:
                store.sync()  # the offer is published once the create commits (store/behind.py)
                offer = offered.pop()
                engine.update_reservation(
                    busy, offer.reservation_sid, task_sid=task["sid"], reservation_status="accepted"
                )
                clock.advance(step * rng.uniform(0.2, 1.0))
                engine.update_task(busy, task["sid"], assignment_status="completed", reason="bench")
            offered.clear()
            lifecycles += 1

        def play_until(
            events: int, since: datetime | None, step: float, per_lifecycle: float
        ) -> int:
            """Lifecycles until `events` events are dated since `since`; counted between
            batches of about half of what is left, since a count reads them all."""
            while (found := events_of(busy, since)) < events:
                for _ in range(max(1, math.ceil((events - found) / per_lifecycle / 2))):
                    lifecycle(step)
            return found

        setup_events = events_of(busy)
        for _ in range(10):
            lifecycle(step=30.0)
        per_lifecycle = (events_of(busy) - setup_events) / lifecycles
        # The history within a day, so the empty hour a day before now stays empty.
        history_step = 86_400 / (size.history_events / per_lifecycle) / 1.5
        history_events = play_until(size.history_events, None, history_step, per_lifecycle)
        if clock.now() > now - timedelta(days=HISTORY_DAYS - 1):
            raise BenchError("the history ran past its day")
        # The window's lifecycles, spread over it with five minutes clear at each end.
        window_start = now - timedelta(minutes=WINDOW_MINUTES - 5)
        clock.set(window_start)
        needed = math.ceil(size.window_events / per_lifecycle)
        step = (WINDOW_MINUTES - 10) * 60 / needed / 1.5
        window_events = play_until(size.window_events, window_start, step, per_lifecycle)
        if clock.now() > now - timedelta(minutes=5):
            raise BenchError("the window's lifecycles ran past the window")

        # The real-time call's workspace: one queue every worker is eligible for, one task more
        # than pending_tasks per Available worker (each holds one reservation), created over
        # the last half hour.
        clock.set(now - timedelta(minutes=35))
        queue_workspace = engine.create_workspace("Queue", multi_task_enabled=False)["sid"]
        names = activities(queue_workspace)
        queue, workflow = queue_and_workflow(queue_workspace, "Support", "1 == 1")
        empty_queue, _ = queue_and_workflow(queue_workspace, "Nobody", "1 == 2")
        available = 0
        for index in range(size.workers):
            if index % AVAILABLE_SHARE == 0:
                activity, available = "Available", available + 1
            else:
                activity = "Offline" if index % 3 else "Unavailable"
            engine.create_worker(
                queue_workspace, f"Agent {index:05d}", activity_sid=names[activity]
            )
        task_step = 30 * 60 / (size.pending_tasks + available)
        for index in range(size.pending_tasks + available):
            engine.create_task(
                queue_workspace,
                attributes=json.dumps({"ticket": index}),
                workflow_sid=workflow,
                priority=rng.choice((0, 0, 0, 5, 10)),
            )
            clock.advance(task_step)
    finally:
        store.close()
    if len(offered) != available:
        raise BenchError(f"{len(offered)} offers for {available} available workers")
    return Played(
        busy,
        window_events,
        history_events,
        lifecycles,
        queue_workspace,
        queue,
        empty_queue,
        size.pending_tasks,
        size.workers,
        time.perf_counter() - started,
    )


# -- the calls, timed --------------------------------------------------------------------------


def timed(call: Callable[[], object], size: Size) -> list[float]:
    """Milliseconds of each of size.calls calls, after size.warmup untimed."""
    for _ in range(size.warmup):
        call()
    times = []
    for _ in range(size.calls):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def run(size: Size = FULL) -> Report:
    account = SandboxAccount.make()
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="bench-statistics-") as scratch_dir:
        scratch = Path(scratch_dir)
        played = play(scratch / "sandbox.sqlite3", size, now)
        server, described = sandbox_server(scratch, account)
        with server:
            server.start()
            server.wait_ready()
            v1 = client_for(server.url, account).taskrouter.v1
            busy = v1.workspaces(played.busy_workspace)
            queues = v1.workspaces(played.queue_workspace).task_queues

            figures = busy.cumulative_statistics().fetch(minutes=WINDOW_MINUTES)
            realtime = queues(played.queue).real_time_statistics().fetch()
            _check(played, figures, realtime)
            # An hour of the same workspace between its history and the window: no events.
            quiet_end = now - timedelta(days=1)
            results = {
                "cumulative": timed(
                    lambda: busy.cumulative_statistics().fetch(minutes=WINDOW_MINUTES), size
                ),
                "cumulative, empty hour": timed(
                    lambda: busy.cumulative_statistics().fetch(
                        start_date=quiet_end - timedelta(hours=1), end_date=quiet_end
                    ),
                    size,
                ),
                "real-time": timed(
                    lambda: queues(played.queue).real_time_statistics().fetch(), size
                ),
                "real-time, empty queue": timed(
                    lambda: queues(played.empty_queue).real_time_statistics().fetch(), size
                ),
            }
            server.stop()
    return _report(size, played, results, described)


def _check(played: Played, figures: object, realtime: object) -> None:
    """The calls count what was played, so the timings are of real answers."""
    created = getattr(figures, "tasks_created", 0)
    if not created or created * 5 > played.window_events:
        raise BenchError(f"the cumulative call counted {created} tasks created in the window")
    by_status = getattr(realtime, "tasks_by_status", {}) or {}
    if by_status.get("pending") != played.pending_tasks:
        raise BenchError(f"the real-time call counted {by_status} tasks by status")
    if getattr(realtime, "total_eligible_workers", None) != played.workers:
        raise BenchError("the real-time call did not count every worker as eligible")


def _report(size: Size, played: Played, results: dict[str, list[float]], described: str) -> Report:
    report = Report(
        "5. Statistics",
        f"{played.window_events:,} events in the window; {played.pending_tasks:,} pending "
        f"tasks / {played.workers:,} workers",
        "nothing to count",
    )
    cumulative, realtime = results["cumulative"], results["real-time"]
    p50 = percentile(cumulative, 50)
    realtime_p50 = percentile(realtime, 50)
    report.add(
        Row(
            f"cumulative: workspace, last {WINDOW_MINUTES} min, p50",
            p50,
            "ms",
            percentile(results["cumulative, empty hour"], 50),
            target=f"< {TARGET_CUMULATIVE_MS:g} ms",
            met=p50 < TARGET_CUMULATIVE_MS if size == FULL else None,
            headline=True,
        ),
        Row(
            "cumulative: slowest call",
            max(cumulative),
            "ms",
            max(results["cumulative, empty hour"]),
        ),
        Row(
            "real-time: queue, p50",
            realtime_p50,
            "ms",
            percentile(results["real-time, empty queue"], 50),
            target=f"< {TARGET_REALTIME_MS:g} ms",
            met=realtime_p50 < TARGET_REALTIME_MS if size == FULL else None,
            headline=True,
        ),
        Row(
            "real-time: slowest call",
            max(realtime),
            "ms",
            max(results["real-time, empty queue"]),
        ),
    )
    report.notes += [
        f"Each figure over {size.calls} calls (after {size.warmup} untimed) with the twilio "
        "library over REST, one at a time: the time the call takes, HTTP included.",
        f"Cumulative: Workspace CumulativeStatistics with Minutes={WINDOW_MINUTES}, the window "
        f"holding {played.window_events:,} events and {played.history_events:,} more "
        f"{HISTORY_DAYS} days before it ({played.lifecycles:,} task lifecycles played by the "
        "engine: created, offered, accepted and completed, or canceled while offered). Its "
        "peer: the same workspace over an empty hour between the two, which the history "
        "does not slow down.",
        f"Real-time: TaskQueue RealTimeStatistics on a queue of {played.workers:,} eligible "
        f"workers (one in {AVAILABLE_SHARE} Available, each holding a reservation) and "
        f"{played.pending_tasks:,} pending tasks. Its peer: a queue of the same workspace "
        "that selects no worker and holds no task.",
        f"The database was played by the engine in {played.build_seconds:.0f} s (not timed).",
        f"Sandbox server: {described}.",
    ]
    return report


if __name__ == "__main__":
    from bench.common import print_report

    print_report(run(SMOKE))
