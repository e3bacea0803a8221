"""Benchmark 2: one task at a time through the sandbox under gunicorn, from the REST create to
`assigned` (the reservation.accepted event reaching the receiver), the callback answering accept.
"""

from __future__ import annotations

import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import BenchError, Report, Row, percentile
from bench.live import (
    SandboxAccount,
    build_workspace,
    client_for,
    sandbox_server,
    task_attributes,
)
from bench.receiver import CallbackReceiver

TARGET_P50_MS = 20.0
TARGET_P99_MS = 100.0
ASSIGN_TIMEOUT = 10.0


@dataclass(frozen=True)
class Size:
    tasks: int = 500
    warmup: int = 20


FULL = Size()
SMOKE = Size(tasks=5, warmup=1)


def run(size: Size = FULL) -> Report:
    account = SandboxAccount.make()
    rng = random.Random(2)
    with tempfile.TemporaryDirectory(prefix="bench-lifecycle-") as scratch_dir:
        server, described = sandbox_server(Path(scratch_dir), account)
        receiver = CallbackReceiver(account.auth_token)
        with receiver, server:
            server.start()
            server.wait_ready()
            client = client_for(server.url, account)
            workspace = build_workspace([client], receiver.url, workers=1, polyglot=True)
            ws = client.taskrouter.v1.workspaces(workspace.workspace_sid)
            totals: list[float] = []
            creates: list[float] = []
            callbacks: list[float] = []
            for index in range(size.warmup + size.tasks):
                attributes, priority = task_attributes(index, rng)
                started = time.perf_counter()
                task = ws.tasks.create(
                    attributes=attributes, workflow_sid=workspace.workflow_sid, priority=priority
                )
                created = time.perf_counter()
                assigned = receiver.wait_assigned(task.sid, ASSIGN_TIMEOUT)
                if index == 0:
                    fetched = ws.tasks(task.sid).fetch()
                    if fetched.assignment_status != "assigned":
                        raise BenchError(f"task {task.sid} is {fetched.assignment_status}")
                # Frees the only worker for the next task (outside the timing).
                ws.tasks(task.sid).update(assignment_status="completed", reason="benchmark")
                if index >= size.warmup:
                    totals.append(assigned - started)
                    creates.append(created - started)
                    callbacks.append(receiver.called_at[task.sid] - started)
            bad_signatures = receiver.bad_signatures
            server.stop()
    if bad_signatures:
        raise BenchError(f"{bad_signatures} callbacks carried a bad X-Twilio-Signature")
    return _report(totals, creates, callbacks, size, described)


def _report(
    totals: list[float], creates: list[float], callbacks: list[float], size: Size, described: str
) -> Report:
    p50, p99 = percentile(totals, 50) * 1000, percentile(totals, 99) * 1000
    report = Report("2. Sandbox lifecycle", "create to assigned", "the create call alone")
    report.add(
        Row(
            "p50",
            p50,
            "ms",
            percentile(creates, 50) * 1000,
            target=f"< {TARGET_P50_MS:g} ms",
            met=p50 < TARGET_P50_MS,
            headline=True,
        ),
        Row(
            "p99",
            p99,
            "ms",
            percentile(creates, 99) * 1000,
            target=f"< {TARGET_P99_MS:g} ms",
            met=p99 < TARGET_P99_MS,
            headline=True,
        ),
    )
    report.notes += [
        f"{size.tasks} tasks one after another (after {size.warmup} untimed), each created with "
        "the twilio library over REST; one eligible worker (speaking every language), "
        "Available; the workflow's assignment callback answers accept; the task is completed "
        "after each (untimed) to free the worker.",
        "Assigned is observed through an event callback receiver (workspace EventCallbackUrl, "
        "EventsFilter reservation.accepted), not by polling; the receiver checks every "
        "X-Twilio-Signature.",
        "Median stages: the assignment callback reaches the receiver "
        f"{percentile(callbacks, 50) * 1000:.1f} ms after the create starts, the accepted "
        f"event {(percentile(totals, 50) - percentile(callbacks, 50)) * 1000:.1f} ms later.",
        f"Sandbox server: {described}.",
    ]
    return report
