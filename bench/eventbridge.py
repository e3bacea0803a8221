"""Benchmark 7: the event bridge. A task created over REST reaches a connected worker through
Twilio's own Worker SDK (twilio-taskrouter, unmodified, in Node.js) as `reservationCreated`.

The standalone server (`python -m taskrouter_sandbox --port 0 --database FILE`, system clock)
serves the quickstart workspace; bench/eventbridge_worker.js connects as Alice with a token
minted from the API key the server exports, goes Idle, and for each task times, on Node's
monotonic clock, the REST create (twilio-node) and the SDK's `reservationCreated`, then accepts
and completes through the SDK and goes Idle again before the next.

Twice: with the REST create served by the process that holds Alice's websocket, and by a
second standalone server over the same database file (as two gunicorn workers would be), whose
commits the first learns of only by looking at the events table.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.common import REPO_ROOT, BenchError, Report, Row, Server, percentile
from bench.live import SandboxAccount, client_for
from taskrouter_sandbox.eventbridge import hub

TARGET_P99_MS = 100.0
WORKER_SCRIPT = Path(__file__).resolve().parent / "eventbridge_worker.js"
NODE_MODULES = REPO_ROOT / ".cache" / "node" / "node_modules"
# The SDK and twilio-node as tests/node/package-lock.json pins them (`make test` installs them).
NODE_PACKAGES = ("twilio", "twilio-taskrouter")
EXPORTS_TIMEOUT = 30.0
# Beyond the tasks themselves (a few ms each): Node's start and the SDK's connection.
NODE_TIMEOUT_BASE = 60.0
NODE_TIMEOUT_PER_TASK = 1.0


@dataclass(frozen=True)
class Size:
    tasks: int = 200
    warmup: int = 20


FULL = Size()
SMOKE = Size(tasks=3, warmup=1)


@dataclass(frozen=True)
class Sample:
    """One task, in ms from just before the REST create: its answer read, the event emitted."""

    create: float
    event: float

    @property
    def after_answer(self) -> float:
        """From the create's answer to the event; negative when the event came first."""
        return self.event - self.create


def node_missing() -> str | None:
    """Why the Worker SDK cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return "Node.js is not installed"
    for package in NODE_PACKAGES:
        if not (NODE_MODULES / package).is_dir():
            return (
                f"{package} is not installed in .cache/node (`make test` installs it with npm ci)"
            )
    return None


# -- the servers ------------------------------------------------------------------------------


def standalone_server(name: str, database: Path, log_path: Path) -> Server:
    """The standalone sandbox on a free port; its port is read from what it prints."""
    argv = [
        sys.executable,
        "-m",
        "taskrouter_sandbox",
        "--port",
        "0",
        "--database",
        os.fspath(database),
        "--quiet",
    ]
    environ = {key: value for key, value in os.environ.items() if not key.startswith("SANDBOX_")}
    return Server(name, argv, 0, {**environ, "PYTHONPATH": os.fspath(REPO_ROOT)}, log_path)


def read_exports(server: Server, timeout: float = EXPORTS_TIMEOUT) -> dict[str, str]:
    """The `export NAME=value` lines the server prints once it serves (its log holds stdout
    and stderr together); sets server.port from TASKROUTER_BASE_URL."""
    assert server.process is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = server.log_path.read_text(encoding="utf-8", errors="replace")
        lines = text.splitlines()
        if any(line.startswith("# Worker SDK") for line in lines):
            exports = {}
            for line in lines:
                if line.startswith("export "):
                    key, _, value = line.removeprefix("export ").partition("=")
                    exports[key] = value.strip("'")
            server.port = int(exports["TASKROUTER_BASE_URL"].rsplit(":", 1)[1])
            return exports
        if server.process.poll() is not None:
            raise BenchError(
                f"{server.name} exited with status {server.process.returncode} while starting:\n"
                f"{server.log_tail()}"
            )
        time.sleep(0.05)
    raise BenchError(f"{server.name} printed no Worker SDK line in {timeout:g} s")


# -- the worker -------------------------------------------------------------------------------


def run_worker(exports: dict[str, str], bridge_url: str, rest_url: str, size: Size) -> list[Sample]:
    """Alice in the Worker SDK, connected to bridge_url, the tasks created through rest_url."""
    account = SandboxAccount(exports["TWILIO_ACCOUNT_SID"], exports["TWILIO_AUTH_TOKEN"])
    workspace = client_for(bridge_url, account).taskrouter.v1.workspaces(
        exports["TWILIO_WORKSPACE_SID"]
    )
    alice = workspace.workers.list(friendly_name="Alice")[0].sid
    idle = workspace.activities.list(friendly_name="Idle")[0].sid
    environ = {
        **os.environ,
        **exports,
        "NODE_PATH": os.fspath(NODE_MODULES),
        "BRIDGE_URL": bridge_url,
        "REST_URL": rest_url,
        "WORKER_SID": alice,
        "IDLE_SID": idle,
        "TASKS": str(size.tasks),
        "WARMUP": str(size.warmup),
    }
    node = shutil.which("node")
    assert node is not None  # run() checked
    timeout = NODE_TIMEOUT_BASE + NODE_TIMEOUT_PER_TASK * (size.tasks + size.warmup)
    try:
        done = subprocess.run(
            [node, os.fspath(WORKER_SCRIPT)],
            cwd=REPO_ROOT,
            env=environ,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"the Worker SDK's run did not end within {timeout:g} s") from exc
    if done.returncode != 0:
        raise BenchError(
            f"the Worker SDK's run failed (status {done.returncode}):\n{done.stderr.strip()}"
        )
    lines = done.stdout.strip().splitlines()
    try:
        samples = json.loads(lines[-1])["samples"]
    except (IndexError, ValueError, KeyError) as exc:
        raise BenchError(f"the Worker SDK's run printed no samples: {done.stdout!r}") from exc
    return [Sample(create=float(s["create"]), event=float(s["event"])) for s in samples]


def run(size: Size = FULL) -> Report:
    missing = node_missing()
    if missing:
        raise BenchError(f"the Worker SDK cannot run: {missing}")
    with tempfile.TemporaryDirectory(prefix="bench-eventbridge-") as scratch_dir:
        scratch = Path(scratch_dir)
        database = scratch / "sandbox.sqlite3"
        holder = standalone_server("the sandbox", database, scratch / "sandbox.log")
        other = standalone_server("a second sandbox process", database, scratch / "other.log")
        with holder, other:
            exports = read_exports(holder.start())
            # Started once the first has made and seeded the database.
            read_exports(other.start())
            same = run_worker(exports, holder.url, holder.url, size)
            apart = run_worker(exports, holder.url, other.url, size)
    return _report(size, same, apart)


# -- the report -------------------------------------------------------------------------------


def _figures(samples: Sequence[Sample], q: float) -> tuple[float, float, float]:
    """(event, create, after answer) at the q-th percentile, each over all samples."""
    return (
        percentile([s.event for s in samples], q),
        percentile([s.create for s in samples], q),
        percentile([s.after_answer for s in samples], q),
    )


def _report(size: Size, same: Sequence[Sample], apart: Sequence[Sample]) -> Report:
    report = Report(
        "7. Event bridge",
        "REST create to the SDK's reservationCreated",
        "the REST create call alone",
    )
    full = size == FULL
    for prefix, samples in (("", same), ("other process: ", apart)):
        for name, q in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100)):
            event, create, _ = _figures(samples, q)
            judged = name == "p99"
            report.add(
                Row(
                    f"{prefix}{name}",
                    event,
                    "ms",
                    create,
                    target=f"< {TARGET_P99_MS:g} ms" if judged else "",
                    met=(event < TARGET_P99_MS if full else None) if judged else None,
                    headline=judged or (name == "p50" and not prefix),
                )
            )
        for name, q in (("p50", 50), ("p99", 99)):
            report.add(
                Row(
                    f"{prefix}create answered to reservationCreated, {name}",
                    _figures(samples, q)[2],
                    "ms",
                )
            )
    report.notes += [
        f"{size.tasks} tasks one after another (after {size.warmup} untimed) for Alice "
        '({"selected_language": "es"}: she alone is eligible), created with twilio-node; '
        "Alice is Twilio's Worker SDK (twilio-taskrouter from .cache/node, unmodified) in the "
        "same Node.js process, connected through ebServer/wsServer with an AccessToken "
        "(TaskRouterGrant) signed with the sandbox's exported API key. Both times are read "
        "on Node's performance.now(); after each, the SDK accepts the reservation, completes "
        "the task and sets Alice Idle again (Activity.setAsCurrent answered), untimed.",
        "`create answered to reservationCreated`: from twilio-node's reading the create's "
        "answer to the SDK's event; negative when the event came first (the event bridge is "
        "woken by the create's commit, which comes before its answer is written).",
        "Other process: a second `python -m taskrouter_sandbox` over the same database file "
        "serves the REST create, as when two gunicorn workers share a sandbox; the process "
        "holding the websocket reads the events table every "
        f"{hub.POLL * 1000:g} ms (eventbridge/hub.py POLL) for commits it did not make.",
        "Servers: `python -m taskrouter_sandbox --port 0 --database <tmp> --quiet`, system "
        "clock, quickstart seed (werkzeug's threaded server).",
    ]
    return report
