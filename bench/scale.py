"""Benchmark 3: many tasks over many workers, mixed languages and priorities, routed and accepted
by the engine alone (Python API, store on a temporary file) and end to end (REST and callbacks).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import queue
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from twilio.rest import Client

from bench.common import REPO_ROOT, BenchError, Report, Row, cpu_seconds, number
from bench.engine_floors import engine_run
from bench.live import (
    BenchWorkspace,
    SandboxAccount,
    build_workspace,
    client_for,
    sandbox_server,
    task_attributes,
)
from bench.receiver import CallbackReceiver

if TYPE_CHECKING:
    pass

# Issue 18 section 3: the engine alone at both sizes, and the server's CPU end to end.
TARGET_ENGINE_RATE = 1000.0
TARGET_SERVER_CPU_MS = 8.0
TARGET_END_TO_END_SECONDS = 90.0
TARGET_MEMORY_MB = 300.0
# 10x the work should cost about 10x the time; well past that means worse than linear.
TARGET_SIZE_RATIO = 15.0
RESULT_MARK = "BENCH_RESULT "
# REST client threads of the end-to-end harness (creating and completing tasks).
CLIENT_THREADS = 8


@dataclass(frozen=True)
class Size:
    """(tasks, workers) for the smaller and the larger run."""

    small: tuple[int, int] = (1000, 100)
    large: tuple[int, int] = (10_000, 1000)
    end_to_end: bool = True


FULL = Size()
SMOKE = Size(small=(40, 4), large=(200, 20))


@dataclass(frozen=True)
class Run:
    tasks: int
    workers: int
    seconds: float
    peak_memory_mb: float

    @property
    def rate(self) -> float:
        return self.tasks / self.seconds


@dataclass(frozen=True)
class EndToEndRun(Run):
    # CPU time used during the run by the server's processes and by this process (the
    # twilio clients creating and completing tasks, and the callback receiver).
    server_cpu_seconds: float
    harness_cpu_seconds: float

    def per_reservation_ms(self, seconds: float) -> float:
        return seconds / self.tasks * 1e3


@dataclass(frozen=True)
class EngineRun(Run):
    create_seconds: float
    # write_floor over the run's rows: the events among them and the seconds it took.
    events: int
    floor_seconds: float
    # The engine process's CPU time over the timed part, the statements its transactions ran
    # (BEGIN and COMMIT included) and the WAL frames (pages) their commits wrote.
    cpu_seconds: float = 0.0
    statements: int = 0
    wal_pages: int = 0
    # indexed_floor over the same rows: the seconds it took.
    indexed_floor_seconds: float = 0.0
    # A timed run (statement_times.py): the seconds its statements took, and the kinds that
    # took longest as (kind, statements, seconds).
    statement_seconds: float = 0.0
    heaviest: tuple[tuple[str, int, float], ...] = ()

    def us_per_reservation(self, seconds: float) -> float:
        return seconds / self.tasks * 1e6

    @property
    def indexed_floor_us(self) -> float:
        return self.indexed_floor_seconds / self.tasks * 1e6

    @property
    def cpu_rate(self) -> float:
        """Reservations per second of the engine process's own CPU time."""
        return self.tasks / self.cpu_seconds if self.cpu_seconds else 0.0

    def per_reservation(self, count: int) -> float:
        return count / self.tasks

    @property
    def floor_us(self) -> float:
        """The floor per reservation, in microseconds."""
        return self.floor_seconds / self.tasks * 1e6


# -- the engine alone (runs in a child process, so its peak memory is its own) ----------------


def engine_child(
    *sizes: tuple[int, int],
    memory: tuple[int, int] | None = None,
    timed: tuple[tuple[int, int], ...] = (),
) -> list[EngineRun]:
    """engine_run for each (tasks, workers) in one fresh interpreter, smallest first; with
    memory, one more run of that size on Store(":memory:"); then a run of each size in timed
    with its statements timed (in that order, after the others in the list)."""
    import subprocess

    argv = [f"{tasks}:{workers}" for tasks, workers in sizes]
    if memory is not None:
        argv += ["--memory", f"{memory[0]}:{memory[1]}"]
        sizes = (*sizes, memory)
    for tasks, workers in timed:
        argv += ["--timed", f"{tasks}:{workers}"]
    sizes = (*sizes, *timed)
    completed = subprocess.run(
        [sys.executable, "-m", "bench.scale", *argv],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=900,
        check=False,
    )
    results = [
        json.loads(line[len(RESULT_MARK) :])
        for line in completed.stdout.splitlines()
        if line.startswith(RESULT_MARK)
    ]
    if completed.returncode != 0 or len(results) != len(sizes):
        raise BenchError(f"the engine benchmark failed:\n{completed.stderr[-3000:]}")
    return [
        EngineRun(
            tasks,
            workers,
            result["seconds"],
            result["peak_memory_mb"],
            create_seconds=result["create_seconds"],
            events=result["events"],
            floor_seconds=result["floor_seconds"],
            cpu_seconds=result["cpu_seconds"],
            statements=result["statements"],
            wal_pages=result["wal_pages"],
            indexed_floor_seconds=result["indexed_floor_seconds"],
            statement_seconds=result["statement_seconds"],
            heaviest=tuple(tuple(entry) for entry in result["heaviest"]),
        )
        for (tasks, workers), result in zip(sizes, results, strict=True)
    ]


# -- end to end ------------------------------------------------------------------------------


def end_to_end_runs(*sizes: tuple[int, int], seed: int = 13) -> list[EndToEndRun]:
    """The sandbox under gunicorn, one workspace per (tasks, workers), smallest first; tasks
    created over REST by CLIENT_THREADS threads; the callback answers accept; on each
    reservation.accepted event the task is completed over REST, freeing its worker.
    Timed from the first create to the last accepted event."""
    rng = random.Random(seed)
    account = SandboxAccount.make()
    runs: list[EndToEndRun] = []
    jobs: queue.PriorityQueue[tuple[int, int, Callable[[Client], None] | None]] = (
        queue.PriorityQueue()
    )
    order = itertools.count()
    failures: list[BaseException] = []

    def worker_loop(client: Client) -> None:
        while True:
            _, _, job = jobs.get()
            if job is None:
                return
            try:
                job(client)
            except Exception as exc:
                failures.append(exc)

    with tempfile.TemporaryDirectory(prefix="bench-scale-") as scratch_dir:
        server, _ = sandbox_server(Path(scratch_dir), account)

        def complete(params: Mapping[str, str]) -> None:
            workspace_sid, task_sid = params["WorkspaceSid"], params["TaskSid"]

            def run(client: Client) -> None:
                client.taskrouter.v1.workspaces(workspace_sid).tasks(task_sid).update(
                    assignment_status="completed", reason="benchmark"
                )

            # Completions go first, so freed workers are offered the backlog promptly.
            jobs.put((0, next(order), run))

        receiver = CallbackReceiver(account.auth_token, on_assigned=complete)
        with receiver, server:
            server.start()
            server.wait_ready()
            clients = [client_for(server.url, account) for _ in range(CLIENT_THREADS)]
            threads = [
                threading.Thread(target=worker_loop, args=(client,), name=f"bench-client-{i}")
                for i, client in enumerate(clients)
            ]
            try:
                for thread in threads:
                    thread.start()
                assigned_before = 0
                for tasks, workers in sizes:
                    workspace = build_workspace(clients, receiver.url, workers)
                    specs = [task_attributes(index, rng) for index in range(tasks)]
                    server_cpu, harness_cpu = server.cpu_seconds(), cpu_seconds(os.getpid())
                    started = time.perf_counter()
                    for attributes, priority in specs:
                        jobs.put((1, next(order), _creator(workspace, attributes, priority)))
                    last = receiver.wait_count(
                        assigned_before + tasks, timeout=max(120.0, tasks * 0.05)
                    )
                    assigned_before += tasks
                    runs.append(
                        EndToEndRun(
                            tasks,
                            workers,
                            last - started,
                            server.peak_memory_mb()[1],
                            server_cpu_seconds=server.cpu_seconds() - server_cpu,
                            harness_cpu_seconds=cpu_seconds(os.getpid()) - harness_cpu,
                        )
                    )
                    if failures:
                        break
            finally:
                for _ in threads:
                    jobs.put((2, next(order), None))
                for thread in threads:
                    thread.join(60)
            server.stop()
        if failures:
            raise BenchError(f"{len(failures)} REST calls failed, the first: {failures[0]!r}")
        if receiver.bad_signatures:
            raise BenchError(f"{receiver.bad_signatures} callbacks had a bad signature")
    return runs


def _creator(workspace: BenchWorkspace, attributes: str, priority: int) -> Callable[[Client], None]:
    def create(client: Client) -> None:
        client.taskrouter.v1.workspaces(workspace.workspace_sid).tasks.create(
            attributes=attributes, workflow_sid=workspace.workflow_sid, priority=priority
        )

    return create


# -- the report ------------------------------------------------------------------------------


def run(size: Size = FULL) -> Report:
    engine_small, engine_large, engine_memory, timed_small, timed_large = engine_child(
        size.small, size.large, memory=size.small, timed=(size.small, size.large)
    )
    e2e_small = e2e_large = None
    if size.end_to_end:
        e2e_small, e2e_large = end_to_end_runs(size.small, size.large)
    report = _report(size, engine_small, engine_large, e2e_small, e2e_large, engine_memory)
    _where_the_time_goes(report, timed_small, timed_large)
    return report


def _sizes(run: Run) -> str:
    return f"{run.tasks:,} tasks / {run.workers:,} workers"


def _report(
    size: Size,
    engine_small: EngineRun,
    engine_large: EngineRun,
    e2e_small: EndToEndRun | None,
    e2e_large: EndToEndRun | None,
    engine_memory: EngineRun | None = None,
) -> Report:
    report = Report("3. Sandbox scale", _sizes(engine_large), _sizes(engine_small))
    size_factor = engine_large.tasks / engine_small.tasks
    ratio_target = TARGET_SIZE_RATIO * size_factor / 10
    engine_ratio = engine_large.seconds / engine_small.seconds
    report.add(
        Row(
            "engine: time to route and accept all",
            engine_large.seconds,
            "s",
            engine_small.seconds,
            target=f"ratio about {size_factor:g} (< {ratio_target:g})",
            met=engine_ratio < ratio_target,
        ),
        Row(
            "engine: reservations/s",
            engine_large.rate,
            "1/s",
            engine_small.rate,
            target=f">= {TARGET_ENGINE_RATE:,.0f} (both)",
            met=min(engine_large.rate, engine_small.rate) >= TARGET_ENGINE_RATE,
            headline=True,
        ),
        Row(
            "engine: reservations per second of its CPU time",
            engine_large.cpu_rate,
            "1/s",
            engine_small.cpu_rate,
            target=f">= {TARGET_ENGINE_RATE:,.0f} (both)",
            met=min(engine_large.cpu_rate, engine_small.cpu_rate) >= TARGET_ENGINE_RATE,
        ),
    )
    if engine_memory is not None:
        report.add(
            Row(
                f"engine on :memory: (no disk), {engine_memory.tasks:,} tasks: reservations/s",
                engine_memory.rate,
                "1/s",
                engine_small.rate,
                peer_name="file store, same size",
            )
        )
    report.add(
        Row(
            "engine: statements",
            engine_large.per_reservation(engine_large.statements),
            "per reservation",
            engine_small.per_reservation(engine_small.statements),
        ),
        Row(
            "engine: WAL pages written",
            engine_large.per_reservation(engine_large.wal_pages),
            "per reservation",
            engine_small.per_reservation(engine_small.wal_pages),
        ),
        Row(
            "engine floor: writing a reservation's rows and events",
            engine_large.floor_us,
            "us",
            engine_small.floor_us,
        ),
        Row(
            "engine floor with the store's indexes, a commit per engine call",
            engine_large.indexed_floor_us,
            "us",
            engine_small.indexed_floor_us,
        ),
        Row(
            "engine process: peak memory",
            engine_large.peak_memory_mb,
            "MB",
            engine_small.peak_memory_mb,
        ),
    )
    if e2e_small is not None and e2e_large is not None:
        e2e_ratio = e2e_large.seconds / e2e_small.seconds
        report.add(
            Row(
                "end to end: time to route and accept all",
                e2e_large.seconds,
                "s",
                e2e_small.seconds,
                target=f"< {TARGET_END_TO_END_SECONDS:g} s (large)",
                met=e2e_large.seconds < TARGET_END_TO_END_SECONDS
                if size == FULL
                else e2e_ratio < ratio_target,
                headline=True,
            ),
            Row("end to end: reservations/s", e2e_large.rate, "1/s", e2e_small.rate),
            Row(
                "end to end: server CPU per reservation",
                e2e_large.per_reservation_ms(e2e_large.server_cpu_seconds),
                "ms",
                e2e_small.per_reservation_ms(e2e_small.server_cpu_seconds),
                target=f"<= {TARGET_SERVER_CPU_MS:g} ms (large)",
                met=e2e_large.per_reservation_ms(e2e_large.server_cpu_seconds)
                <= TARGET_SERVER_CPU_MS,
            ),
            Row(
                "end to end: harness CPU per reservation",
                e2e_large.per_reservation_ms(e2e_large.harness_cpu_seconds),
                "ms",
                e2e_small.per_reservation_ms(e2e_small.harness_cpu_seconds),
            ),
            Row(
                "end to end: server peak memory",
                e2e_large.peak_memory_mb,
                "MB",
                e2e_small.peak_memory_mb,
                target=f"< {TARGET_MEMORY_MB:g} MB",
                met=e2e_large.peak_memory_mb < TARGET_MEMORY_MB,
                headline=True,
            ),
        )
        report.notes.append(
            f"End to end costs {e2e_large.seconds / engine_large.seconds:.1f}x the engine alone "
            f"at the larger size ({e2e_small.seconds / engine_small.seconds:.1f}x at the smaller); "
            f"10x the work cost {e2e_ratio:.1f}x end to end and {engine_ratio:.1f}x in the engine."
        )
        cores = os.cpu_count() or 1
        budget_ms = cores * TARGET_END_TO_END_SECONDS / e2e_large.tasks * 1e3
        server_ms = e2e_large.per_reservation_ms(e2e_large.server_cpu_seconds)
        harness_ms = e2e_large.per_reservation_ms(e2e_large.harness_cpu_seconds)
        engine_ms = engine_large.seconds / engine_large.tasks * 1e3
        report.notes.append(
            f"End-to-end CPU: {TARGET_END_TO_END_SECONDS:g} s for {e2e_large.tasks:,} "
            f"reservations on {cores} cores leaves {budget_ms:.1f} ms of CPU per reservation for "
            f"the server and the harness together. The server used {server_ms:.1f} ms (its "
            f"engine alone, single-threaded in the engine run, took {engine_ms:.1f} ms of wall "
            f"time) and the harness {harness_ms:.1f} ms: two twilio REST calls and two "
            "callbacks received per reservation."
        )
    budget_us = 1e6 / TARGET_ENGINE_RATE
    report.notes.append(
        f"Engine floor: {TARGET_ENGINE_RATE:,.0f} reservations/s leaves {budget_us:g} us for "
        f"each. A reservation's lifecycle here adds a task row, a reservation row and "
        f"{engine_large.events / engine_large.tasks:.1f} events. Writing those rows again to "
        f"tables with no index, every row of the run in one transaction, each event's data "
        f"JSON-encoded anew, took {engine_large.floor_us:.0f} us per reservation "
        f"({engine_large.floor_us / budget_us:.2f}x the budget; {engine_small.floor_us:.0f} us "
        "at the smaller size), with no routing, no read and no update: a floor under any "
        "engine that keeps the same records. The same rows as stored, written into the store's "
        "own schema (every index and trigger) in a transaction per engine call (three per "
        f"reservation), each taking an even share of the rows: {engine_large.indexed_floor_us:.0f}"
        f" us per reservation ({engine_small.indexed_floor_us:.0f} us at the smaller size), "
        "the floor under this schema with a commit per call."
    )
    report.notes += [
        "Workers speak one to three of en/es/fr/de (every language covered); tasks pick a "
        "language and a priority (0, 5 or 10) at random; one queue per language, a workflow "
        "filter per language; workers stay Available and are single-tasking, so each is offered "
        "the next task when its task is completed.",
        "Engine alone: a child process drives taskrouter_sandbox.engine.Engine over a Store on a "
        "temporary file, no HTTP; it creates every task, then answers each offer the way an accept "
        "callback does (apply_assignment_outcome) and completes the task; "
        f"creating the {engine_large.tasks:,} tasks took {engine_large.create_seconds:.2f} s of "
        "the total. "
        "Its peak memory is the child's ru_maxrss.",
        "End to end: the sandbox under gunicorn; "
        f"{CLIENT_THREADS} twilio clients in threads create the tasks over REST and complete "
        "each task when the receiver gets its reservation.accepted event; the callback answers "
        "accept. Timed from the first create to the last accepted event. Server peak memory is "
        "the sum of VmHWM over the gunicorn master and workers.",
        f"Rates: engine {number(engine_large.rate)} and {number(engine_small.rate)} "
        "reservations/s at the two sizes; per second of the engine process's own CPU time "
        f"{number(engine_large.cpu_rate)} and {number(engine_small.cpu_rate)} (on a shared "
        "machine the wall-clock rate also counts the other work's turns).",
        *(
            [
                f"Engine on :memory:: the same run at {engine_memory.tasks:,} tasks on "
                'Store(":memory:"), no disk at all, did '
                f"{number(engine_memory.rate)} reservations/s against "
                f"{number(engine_small.rate)} on the file store: what the engine's own "
                "statements and Python cost, apart from storage."
            ]
            if engine_memory is not None
            else []
        ),
        "Engine counts: statements are those the engine's transactions ran, BEGIN and COMMIT "
        "included, an executemany counting each row (triggers' statements not counted); WAL "
        "pages are the frames its commits wrote, read from the WAL index's frame count after "
        "every call, with the store's own checkpoints (every 10,000 pages). Per reservation: "
        f"{engine_large.per_reservation(engine_large.statements):.1f} statements and "
        f"{engine_large.per_reservation(engine_large.wal_pages):.0f} pages at the larger size "
        f"({engine_small.per_reservation(engine_small.statements):.1f} and "
        f"{engine_small.per_reservation(engine_small.wal_pages):.0f} at the smaller).",
    ]
    return report


def _where_the_time_goes(report: Report, small: EngineRun, large: EngineRun) -> None:
    """The timed runs' rows and note: SQLite's part of a reservation and the rest."""

    def rest_us(run: EngineRun) -> float:
        return run.us_per_reservation(run.seconds - run.statement_seconds)

    report.add(
        Row(
            "engine, statements timed: SQLite's part",
            large.us_per_reservation(large.statement_seconds),
            "us per reservation",
            small.us_per_reservation(small.statement_seconds),
        ),
        Row(
            "engine, statements timed: the rest (its Python, waits for the lock)",
            rest_us(large),
            "us per reservation",
            rest_us(small),
        ),
    )

    def heaviest(run: EngineRun) -> str:
        return ", ".join(
            f"{name} {run.us_per_reservation(seconds):.0f} us ({calls / run.tasks:.2f})"
            for name, calls, seconds in run.heaviest
        )

    report.notes.append(
        f"Where the engine's time goes: a further run of each size with every statement its "
        "store's connections execute timed around the call (bench/statement_times.py; the "
        f"checkpoint thread's left out), at {number(large.rate)} and {number(small.rate)} "
        f"reservations/s. At {TARGET_ENGINE_RATE:,.0f} reservations/s a reservation has "
        f"{1e6 / TARGET_ENGINE_RATE:g} us; at the larger size SQLite took "
        f"{large.us_per_reservation(large.statement_seconds):.0f} us of it and the rest "
        f"{rest_us(large):.0f} us (at the smaller "
        f"{small.us_per_reservation(small.statement_seconds):.0f} and {rest_us(small):.0f}). "
        f"The heaviest statements per reservation (how many), larger size: {heaviest(large)}; "
        f"smaller: {heaviest(small)}."
    )


def _size(text: str) -> tuple[int, int]:
    tasks, _, workers = text.partition(":")
    try:
        size = int(tasks), int(workers)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not TASKS:WORKERS") from None
    if not 1 <= size[0] <= 1_000_000 or not 1 <= size[1] <= 100_000:
        raise argparse.ArgumentTypeError("tasks must be 1..1,000,000 and workers 1..100,000")
    return size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The engine-alone runs of benchmark 3.")
    parser.add_argument("sizes", nargs="+", type=_size, metavar="TASKS:WORKERS")
    parser.add_argument(
        "--memory",
        type=_size,
        metavar="TASKS:WORKERS",
        help='one more run, last, on Store(":memory:"): no disk at all',
    )
    parser.add_argument(
        "--timed",
        type=_size,
        action="append",
        default=[],
        metavar="TASKS:WORKERS",
        help="runs after the others with every statement timed (bench/statement_times.py)",
    )
    args = parser.parse_args(argv)
    runs = [(size, False, False) for size in args.sizes]
    if args.memory is not None:
        runs.append((args.memory, True, False))
    runs += [(size, False, True) for size in args.timed]
    for (tasks, workers), memory, timed in runs:
        result = engine_run(tasks, workers, memory=memory, timed=timed)
        print(RESULT_MARK + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
