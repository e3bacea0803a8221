"""bench/eventbridge.py once at a tiny size, so that it cannot rot unnoticed: real standalone
servers, Twilio's Worker SDK in Node.js; figures checked for shape only. And what it refuses."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from bench import eventbridge
from bench.__main__ import BENCHMARKS
from bench.common import BenchError


def test_the_event_bridge_benchmark_times_both_ways_a_task_is_created() -> None:
    missing = eventbridge.node_missing()
    if missing:
        pytest.skip(f"the Worker SDK cannot run: {missing}")
    report = eventbridge.run(eventbridge.SMOKE)
    rows = {row.label: row for row in report.rows}
    for prefix in ("", "other process: "):
        p50, p99, top = (rows[f"{prefix}{name}"] for name in ("p50", "p99", "max"))
        # The event cannot reach the worker before the create call was made.
        assert 0 < p50.value <= p99.value <= top.value
        assert 0 < p50.peer <= p99.peer <= top.peer
        assert p99.target == "< 100 ms" and p99.met is None, "judged at full size only"
        assert f"{prefix}create answered to reservationCreated, p50" in rows
    assert report.title == "7. Event bridge"
    assert any("Worker SDK (twilio-taskrouter" in note for note in report.notes)


def test_python_m_bench_runs_it_by_name() -> None:
    assert BENCHMARKS["eventbridge"]


def test_a_server_that_fails_to_start_is_reported_with_its_log(tmp_path) -> None:
    database = tmp_path / "not-a-database.sqlite3"
    database.write_text("this is not SQLite")
    server = eventbridge.standalone_server("the sandbox", database, tmp_path / "log")
    with server, pytest.raises(BenchError, match="exited with status 1 while starting"):
        eventbridge.read_exports(server.start())


def test_the_worker_script_names_a_bad_count() -> None:
    missing = eventbridge.node_missing()
    if missing:
        pytest.skip(f"the Worker SDK cannot run: {missing}")
    environ = {
        **os.environ,
        "NODE_PATH": os.fspath(eventbridge.NODE_MODULES),
        **{
            name: "x"
            for name in (
                "TWILIO_WORKSPACE_SID",
                "TWILIO_WORKFLOW_SID",
                "WORKER_SID",
                "IDLE_SID",
            )
        },
        "TASKS": "ten",
    }
    done = subprocess.run(
        [shutil.which("node") or "node", os.fspath(eventbridge.WORKER_SCRIPT)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert 'TASKS must be a count (0 or more), not "ten"' in done.stderr
