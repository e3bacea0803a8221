"""Benchmark 8: a Flex-sized workspace at flat cost. 7,500 online workers over 500 task queues
with skills, languages and teams in their attributes, a workflow of filters routing by the
task's attributes, and 1,000, 10,000 then 100,000 pending tasks; at each size, through the
sandbox under gunicorn with the twilio library: the time to route a new task to an idle
worker, and the time to place a worker who goes idle, p50 and p99, and the server's memory.

The workspace is built by the engine in process on the database file (bench/flex_workspace.py,
as the statistics benchmark plays its database); the server is stopped while it grows and
started again over the same file for each size's measurements.
"""

from __future__ import annotations

import functools
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.common import BenchError, Report, Row, percentile
from bench.flex_workspace import COPY_SPREAD, FULL, SMOKE, Builder, Built, Size
from bench.live import SandboxAccount, client_for, sandbox_server

__all__ = ["FULL", "SMOKE", "Size", "run"]

# The targets: p50 at the largest size within this many times p50 at the smallest,
# for both decisions, and the server's memory below this at the largest.
TARGET_RATIO = 2.0
TARGET_MEMORY_MB = 1024.0
# -- the decisions, timed through the server -------------------------------------------------


@dataclass
class Measured:
    """One size's timings (ms) and what the server used."""

    pending: int
    routed: list[float]
    placed: list[float]
    grow_seconds: float
    memory_mb: float = float("nan")
    largest_process_mb: float = float("nan")


def _until_offered(look: Callable[[], list], tries: int = 20) -> list:
    """The reservations look() lists, once there are some (routing runs inside the operation
    that made it possible, before its commit, so the first look finds them)."""
    for _ in range(tries):
        found = look()
        if found:
            return found
        time.sleep(0.001)
    return []


def measure(
    scratch: Path, account: SandboxAccount, built: Built, size: Size, offset: int
) -> tuple[list[float], list[float], float, float]:
    """Serve the file and time both decisions; returns (routed, placed, memory, largest)."""
    server, _ = sandbox_server(scratch, account)
    with server:
        server.start()
        server.wait_ready()
        ws = client_for(server.url, account).taskrouter.v1.workspaces(built.workspace)
        routed: list[float] = []
        for index, (workflow, attributes) in enumerate(built.quiet_tasks):
            started = time.perf_counter()
            task = ws.tasks.create(attributes=attributes, workflow_sid=workflow)
            offers = _until_offered(ws.tasks(task.sid).reservations.list)
            elapsed = (time.perf_counter() - started) * 1000
            if not offers:
                raise BenchError(f"a task for an idle team was not offered ({task.sid})")
            # The offer is withdrawn with the task: its worker is free again (untimed).
            ws.tasks(task.sid).update(assignment_status="canceled", reason="benchmark")
            if index >= size.warmup:
                routed.append(elapsed)
        placed: list[float] = []
        missed = 0
        for index in range(size.samples + size.warmup):
            worker = ws.workers(built.pool[(offset + index) % len(built.pool)])
            started = time.perf_counter()
            worker.update(activity_sid=built.available)
            offers = _until_offered(
                functools.partial(worker.reservations.list, reservation_status="pending")
            )
            elapsed = (time.perf_counter() - started) * 1000
            if len(offers) != 1:
                # Nothing in its queues it could take (its languages): not a placement.
                missed += 1
                continue
            # Back offline, its offer rejected: the task waits in its queue again.
            worker.update(activity_sid=built.offline, reject_pending_reservations=True)
            if index >= size.warmup:
                placed.append(elapsed)
        if missed * 10 > size.samples:
            raise BenchError(f"{missed} workers going idle were offered no task")
        memory = server.peak_memory_mb()
        server.stop()
    return routed, placed, memory[1], memory[0]


def run(size: Size = FULL) -> Report:
    account = SandboxAccount.make()
    results: list[Measured] = []
    wall = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-flex-") as scratch_dir:
        scratch = Path(scratch_dir)
        builder = Builder(scratch / "sandbox.sqlite3", account.account_sid, size)
        try:
            built = builder.build()
            for position, pending in enumerate(size.pending):
                grow_seconds = builder.grow(built, pending)
                routed, placed, memory, largest = measure(
                    scratch, account, built, size, position * (size.samples + size.warmup)
                )
                results.append(Measured(pending, routed, placed, grow_seconds, memory, largest))
        finally:
            builder.close()
    return _report(size, built, results, time.perf_counter() - wall)


def _report(size: Size, built: Built, results: list[Measured], wall: float) -> Report:
    first, last = results[0], results[-1]
    report = Report(
        "8. Flex-sized workspace",
        f"{built.workers:,} workers / {built.queues} queues, pending tasks as labelled",
        f"{first.pending:,} pending",
    )
    full = size == FULL
    for name, key in (("new task routed", "routed"), ("idle worker placed", "placed")):
        low = getattr(first, key)
        for result in results[1:]:
            values = getattr(result, key)
            p50 = percentile(values, 50)
            is_last = result is last
            report.add(
                Row(
                    f"{name}: p50 at {result.pending:,} pending",
                    p50,
                    "ms",
                    percentile(low, 50),
                    target=f"ratio <= {TARGET_RATIO:g}" if is_last else "",
                    met=(p50 <= TARGET_RATIO * percentile(low, 50)) if is_last and full else None,
                    headline=is_last,
                ),
                Row(
                    f"{name}: p99 at {result.pending:,} pending",
                    percentile(values, 99),
                    "ms",
                    percentile(low, 99),
                ),
            )
    report.add(
        Row(
            f"server peak memory at {last.pending:,} pending (all processes)",
            last.memory_mb,
            "MB",
            first.memory_mb,
            target=f"< {TARGET_MEMORY_MB:g} MB",
            met=last.memory_mb < TARGET_MEMORY_MB if full else None,
            headline=True,
        )
    )
    figures = "; ".join(
        f"{result.pending:,} pending: routed p50 {percentile(result.routed, 50):.1f} / p99 "
        f"{percentile(result.routed, 99):.1f} ms, placed p50 {percentile(result.placed, 50):.1f}"
        f" / p99 {percentile(result.placed, 99):.1f} ms, server {result.memory_mb:.0f} MB "
        f"(largest process {result.largest_process_mb:.0f} MB)"
        for result in results
    )
    report.notes += [
        f"Workspace: {built.workers:,} workers (team, three skills, one to three languages, "
        f'level) over {built.queues} queues (`team == "tNN" AND skills HAS "skill"`), '
        f"{built.workflows} workflows of {built.filters} filters in all routing by the task's "
        "team and skill; each filter's first target asks for "
        "`task.language IN worker.languages` for 2 hours, its second takes any member at "
        f"priority 20. The pending tasks wait in the queues of {size.teams - size.quiet_teams}"
        " teams whose workers are Busy (an unavailable activity, the queues' assignment "
        f"activity) or Offline; {size.quiet_teams} teams' workers are idle and their queues "
        "empty.",
        f"Each figure over {size.samples} samples (after {size.warmup} untimed) with the "
        "twilio library over REST, one at a time, each until the reservation shows in a "
        "Reservations list (two calls: routing runs inside the operation, before its commit, "
        "so the first list finds it). New task routed: a task created for an idle team, then "
        "its Reservations listed (then canceled, untimed). Idle worker placed: an Offline "
        "worker of a busy team updated to Available, then its pending Reservations listed: "
        "the best task of its queues (then Offline again rejecting it, untimed).",
        "Per size: " + figures + ".",
        f"Built by the engine in process (not timed): setup {built.seconds['setup']:.1f} s, "
        f"{built.workers:,} workers {built.seconds['workers']:.0f} s, pending tasks "
        + ", ".join(f"to {result.pending:,} in {result.grow_seconds:.0f} s" for result in results)
        + f". The engine created the first {min(size.engine_tasks, last.pending):,} "
        f"({size.batch} operations per transaction); past them each task is a copy of one of "
        "those, its row and its four events with new SIDs and ticket numbers, dated up to "
        f"{COPY_SPREAD // 60} minutes earlier and language and priority drawn afresh (so a "
        "queue's tasks are not runs of one original's copies), made by SQL "
        "in one transaction, since the engine took 332 s (3.7 ms a task) for the 90,000 "
        "more of the first run. Whole benchmark: "
        f"{wall:.0f} s.",
        "Server memory: VmHWM summed over the gunicorn processes, which are restarted for "
        "each size.",
    ]
    return report


if __name__ == "__main__":
    from bench.common import print_report

    print_report(run(SMOKE))
