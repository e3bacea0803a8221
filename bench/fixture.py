"""Benchmark 6: the pytest fixture (taskrouter_sandbox.testing.TaskRouterSandbox), in process
and over HTTP: what a test pays to get a fresh sandbox and close it, and one
create/reserve/accept round trip through it with the twilio library.

The round trip: a task is created while no worker is available, Alice goes idle, the
sandbox offers her the task and calls back an app served in process (serve_callbacks), which
answers accept; the test reads the task assigned. Each figure is the wall time of the test's
own lines, callbacks and their outcomes included (the client settles after every request).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, jsonify

from bench.common import BenchError, Report, Row, percentile
from taskrouter_sandbox.testing import TaskRouterSandbox
from taskrouter_sandbox.testing.harness import TRANSPORTS

# What the issue asks: "setting up a fixture and doing a create/reserve/accept round trip
# costs milliseconds".
TARGET_SETUP_MS = 10.0
TARGET_ROUND_TRIP_MS = 10.0


@dataclass(frozen=True)
class Size:
    setups: int = 200
    round_trips: int = 200
    warmup: int = 10


FULL = Size()
SMOKE = Size(setups=3, round_trips=3, warmup=1)


def _accepting_app() -> Flask:
    app = Flask("bench_fixture_callbacks")

    @app.post("/assignment")
    def assignment() -> object:
        return jsonify(instruction="accept")

    return app


def _timed(step: Callable[[], object], count: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        step()
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        step()
        samples.append((time.perf_counter() - started) * 1000.0)
    return samples


def setup_and_close(transport: str) -> None:
    TaskRouterSandbox(transport=transport).close()  # type: ignore[arg-type]


def round_trips(transport: str, size: Size) -> list[float]:
    with TaskRouterSandbox(transport=transport) as sandbox:  # type: ignore[arg-type]
        origin = sandbox.serve_callbacks(_accepting_app())
        workspace = sandbox.workspace
        workspace.workflows(sandbox.workflow_sid).update(
            assignment_callback_url=origin + "/assignment"
        )
        alice = workspace.workers(sandbox.workers["Alice"])
        idle, offline = sandbox.activities["Idle"], sandbox.activities["Offline"]
        attributes = json.dumps({"selected_language": "es"})
        assigned: list[str] = []

        def round_trip() -> None:
            task = workspace.tasks.create(workflow_sid=sandbox.workflow_sid, attributes=attributes)
            alice.update(activity_sid=idle)
            assigned.append(workspace.tasks(task.sid).fetch().assignment_status)

        def tidy() -> None:
            for task in workspace.tasks.list(assignment_status=["assigned"]):
                task.update(assignment_status="completed")
            alice.update(activity_sid=offline)

        samples = []
        for index in range(size.warmup + size.round_trips):
            started = time.perf_counter()
            round_trip()
            elapsed = (time.perf_counter() - started) * 1000.0
            tidy()
            if index >= size.warmup:
                samples.append(elapsed)
    if set(assigned) != {"assigned"}:
        raise BenchError(f"round trips over {transport} ended {sorted(set(assigned))}")
    return samples


def run(size: Size = FULL) -> Report:
    setups = {
        t: _timed(lambda t=t: setup_and_close(t), size.setups, size.warmup) for t in TRANSPORTS
    }
    trips = {t: round_trips(t, size) for t in TRANSPORTS}
    return _report(size, setups, trips)


def _report(size: Size, setups: dict[str, list[float]], trips: dict[str, list[float]]) -> Report:
    report = Report(
        "6. Fixture",
        "TaskRouterSandbox in process (transport wsgi)",
        "the same over HTTP (transport http)",
    )
    full = size == FULL
    setup_p50 = percentile(setups["wsgi"], 50)
    trip_p50 = percentile(trips["wsgi"], 50)
    report.add(
        Row(
            "setup + close, p50",
            setup_p50,
            "ms",
            percentile(setups["http"], 50),
            target=f"< {TARGET_SETUP_MS:g} ms",
            met=setup_p50 < TARGET_SETUP_MS if full else None,
            headline=True,
        ),
        Row(
            "setup + close, p95",
            percentile(setups["wsgi"], 95),
            "ms",
            percentile(setups["http"], 95),
        ),
        Row(
            "create/reserve/accept round trip, p50",
            trip_p50,
            "ms",
            percentile(trips["http"], 50),
            target=f"< {TARGET_ROUND_TRIP_MS:g} ms",
            met=trip_p50 < TARGET_ROUND_TRIP_MS if full else None,
            headline=True,
        ),
        Row(
            "create/reserve/accept round trip, p95",
            percentile(trips["wsgi"], 95),
            "ms",
            percentile(trips["http"], 95),
        ),
    )
    report.notes += [
        f"Setup + close: {size.setups} fresh quickstart sandboxes one after another (after "
        f"{size.warmup} untimed), each made and closed by TaskRouterSandbox(transport=...): "
        "the database with its schema and seeded workspace, the delivery thread, and for http "
        "a server on a free port.",
        f"Round trip: {size.round_trips} in one sandbox (after {size.warmup} untimed): create "
        "a task, Alice goes idle, the in-process callback app answers accept, fetch the task "
        "(assigned); completing it and Alice going offline again are not timed.",
    ]
    return report


if __name__ == "__main__":
    from bench.common import print_report

    print_report(run())
