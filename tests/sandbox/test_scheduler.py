"""Tests for sandbox.scheduler: when tick runs, and which process runs it.

A fake clock drives the deadlines and wake() replaces waiting, so no test sleeps for a
timeout; leader election is checked in one process and across real processes.
"""

from __future__ import annotations

import logging
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from taskrouter_sandbox.scheduler import Scheduler

REPO_ROOT = Path(__file__).resolve().parents[2]
LONG_POLL = 30.0  # far longer than any test: only wake() or a due deadline can cause a tick


class Timers:
    """A tiny timer table on a fake clock, shaped like the engine's tick."""

    def __init__(self) -> None:
        self.now = 0.0
        self.deadlines: dict[str, float] = {}
        self.fired: list[str] = []
        self.calls = 0
        self._changed = threading.Condition()

    def add(self, name: str, at: float) -> None:
        with self._changed:
            self.deadlines[name] = at

    def advance(self, seconds: float) -> None:
        with self._changed:
            self.now += seconds

    def tick(self, batch: int | None = None) -> float | None:
        """Fire what is due (at most `batch` of it) and return the delay to the next one."""
        with self._changed:
            self.calls += 1
            due = sorted((at, name) for name, at in self.deadlines.items() if at <= self.now)
            for _, name in due[:batch]:
                self.fired.append(name)
                del self.deadlines[name]
            self._changed.notify_all()
            if not self.deadlines:
                return None
            return min(self.deadlines.values()) - self.now

    def wait_for(self, predicate, timeout: float = 10.0) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: predicate(self), timeout), (
                f"condition not met: calls={self.calls} fired={self.fired}"
            )


@pytest.fixture
def schedulers():
    made: list[Scheduler] = []

    def make(tick, **kwargs) -> Scheduler:
        kwargs.setdefault("lock_path", None)
        scheduler = Scheduler(tick, **kwargs)
        made.append(scheduler)
        return scheduler

    yield make
    for scheduler in made:
        assert scheduler.stop(5.0)


def test_wake_ticks_at_once_and_fires_what_the_fake_clock_made_due(schedulers):
    timers = Timers()
    scheduler = schedulers(timers.tick, poll_interval=LONG_POLL)
    scheduler.start()
    timers.wait_for(lambda t: t.calls == 1)

    timers.add("WR1 reservation timeout", at=120.0)
    scheduler.wake()
    timers.wait_for(lambda t: t.calls == 2)
    assert timers.fired == []

    timers.advance(120.0)
    started = time.monotonic()
    scheduler.wake()
    timers.wait_for(lambda t: t.fired == ["WR1 reservation timeout"])
    # Without the wake the next tick would be LONG_POLL away.
    assert time.monotonic() - started < LONG_POLL / 3


def test_a_deadline_after_the_planned_tick_wakes_nothing_a_sooner_one_does(schedulers):
    timers = Timers()
    scheduler = schedulers(timers.tick, poll_interval=LONG_POLL)
    scheduler.start()
    timers.wait_for(lambda t: t.calls == 1)
    # The thread plans its next tick just after the first one returns.
    deadline = time.monotonic() + 10
    while scheduler._next_tick == math.inf and time.monotonic() < deadline:
        time.sleep(0.001)

    # The next tick is LONG_POLL away; a deadline after it is learnt then.
    timers.add("WR1 reservation timeout", at=2 * LONG_POLL)
    scheduler.wake(2 * LONG_POLL)
    time.sleep(0.2)
    assert timers.calls == 1

    timers.add("WT1 task TTL", at=0.5)
    scheduler.wake(0.5)
    timers.wait_for(lambda t: t.calls == 2)
    timers.advance(0.5)
    scheduler.wake(0.0)
    timers.wait_for(lambda t: t.fired == ["WT1 task TTL"])


def test_nothing_scheduled_means_no_tick_until_woken(schedulers):
    timers = Timers()
    scheduler = schedulers(timers.tick, poll_interval=LONG_POLL)
    scheduler.start()
    timers.wait_for(lambda t: t.calls == 1)
    scheduler.wake()
    timers.wait_for(lambda t: t.calls == 2)
    assert scheduler.stop(5.0)
    assert timers.calls == 2


def test_a_deadline_sooner_than_the_poll_interval_is_kept_without_wake(schedulers):
    calls: list[float] = []
    done = threading.Event()

    def tick() -> float | None:
        calls.append(time.monotonic())
        if len(calls) >= 5:
            done.set()
            return None
        return 0.01

    scheduler = schedulers(tick, poll_interval=LONG_POLL)
    scheduler.start()
    assert done.wait(3.0)
    assert len(calls) == 5


def test_a_far_deadline_still_polls_every_poll_interval(schedulers):
    # Another process may commit an earlier deadline, which only polling can notice.
    calls: list[float] = []
    done = threading.Event()

    def tick() -> float | None:
        calls.append(time.monotonic())
        if len(calls) >= 5:
            done.set()
        return 3600.0

    scheduler = schedulers(tick, poll_interval=0.01)
    scheduler.start()
    assert done.wait(3.0)


def test_a_deadline_already_due_ticks_again_immediately(schedulers):
    # A tick that works in batches returns 0 (or less) while more is overdue.
    timers = Timers()
    timers.add("WT1 ttl", at=10.0)
    timers.add("WT2 ttl", at=20.0)
    timers.advance(30.0)
    scheduler = schedulers(lambda: timers.tick(batch=1), poll_interval=LONG_POLL)
    scheduler.start()
    timers.wait_for(lambda t: t.fired == ["WT1 ttl", "WT2 ttl"])
    assert timers.calls == 2


def test_an_exception_in_tick_is_logged_and_the_thread_carries_on(schedulers, caplog):
    calls: list[int] = []
    done = threading.Event()

    def tick() -> float | None:
        calls.append(1)
        if len(calls) <= 2:
            raise RuntimeError("database is locked")
        done.set()
        return None

    scheduler = schedulers(tick, poll_interval=0.01)
    with caplog.at_level(logging.ERROR, logger="taskrouter_sandbox.scheduler"):
        scheduler.start()
        assert done.wait(3.0)
    failures = [r for r in caplog.records if r.getMessage() == "scheduler tick failed; carrying on"]
    assert len(failures) == 2
    assert "database is locked" in caplog.text
    assert scheduler.running


def test_once_what_it_ticks_for_is_gone_the_thread_ends_quietly(schedulers, caplog, tmp_path):
    # A sandbox whose store was closed without stop(): no failed tick logged every poll.
    gone = threading.Event()
    ticks: list[int] = []
    scheduler = schedulers(
        lambda: ticks.append(1),
        poll_interval=0.01,
        lock_path=tmp_path / "timers.lock",
        gone=gone.is_set,
    )
    with caplog.at_level(logging.DEBUG, logger="taskrouter_sandbox.scheduler"):
        scheduler.start()
        deadline = time.monotonic() + 3
        while not ticks:
            assert time.monotonic() < deadline, "the scheduler never ticked"
            time.sleep(0.01)
        gone.set()
        deadline = time.monotonic() + 3
        while scheduler.running:
            assert time.monotonic() < deadline, "the thread went on"
            time.sleep(0.01)
    assert not scheduler.is_leader
    assert "tick failed" not in caplog.text


def test_stop_ends_the_thread_and_a_scheduler_starts_once(schedulers):
    timers = Timers()
    scheduler = schedulers(timers.tick, poll_interval=LONG_POLL)
    assert not scheduler.running
    scheduler.start()
    timers.wait_for(lambda t: t.calls == 1)
    assert scheduler.running
    with pytest.raises(RuntimeError, match="already started"):
        scheduler.start()
    assert scheduler.stop(5.0)
    assert not scheduler.running
    assert scheduler.stop(5.0)  # stopping twice is harmless


def test_without_a_lock_file_it_is_always_the_leader(schedulers):
    scheduler = schedulers(Timers().tick, lock_path=None)
    assert scheduler.is_leader
    scheduler.start()
    assert scheduler.is_leader


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"tick": 5}, TypeError, "tick must be callable"),
        ({"poll_interval": 0}, ValueError, "poll_interval must be positive"),
        ({"poll_interval": -1.0}, ValueError, "poll_interval must be positive"),
    ],
)
def test_bad_settings_are_refused(kwargs, error, message):
    kwargs = {"tick": Timers().tick, "lock_path": None, **kwargs}
    tick = kwargs.pop("tick")
    with pytest.raises(error, match=message):
        Scheduler(tick, **kwargs)


def test_an_unusable_lock_path_fails_at_start(tmp_path):
    scheduler = Scheduler(Timers().tick, lock_path=tmp_path / "missing" / "timers.lock")
    with pytest.raises(FileNotFoundError):
        scheduler.start()
    assert not scheduler.running


# -- one leader among several ----------------------------------------------------------------


def test_only_the_lock_holder_ticks_and_another_takes_over_when_it_stops(schedulers, tmp_path):
    lock_path = tmp_path / "timers.lock"
    first_timers, second_timers = Timers(), Timers()
    first = schedulers(first_timers.tick, lock_path=lock_path, poll_interval=0.01, name="first")
    second = schedulers(second_timers.tick, lock_path=lock_path, poll_interval=0.01, name="second")

    first.start()
    first_timers.wait_for(lambda t: t.calls >= 1)
    assert first.is_leader
    second.start()
    second.wake()
    # Give the follower many retries: the leader ticks 10 more times meanwhile.
    seen = first_timers.calls
    first_timers.wait_for(lambda t: t.calls >= seen + 10)
    assert not second.is_leader
    assert second_timers.calls == 0

    assert first.stop(5.0)
    assert not first.is_leader
    second_timers.wait_for(lambda t: t.calls >= 1)
    assert second.is_leader


LEADER_SCRIPT = """
import sys
from pathlib import Path
from taskrouter_sandbox.scheduler import Scheduler

ticks = Path(sys.argv[2])

def tick():
    with ticks.open("a") as out:
        out.write("tick\\n")
    return None

scheduler = Scheduler(tick, lock_path=sys.argv[1], poll_interval=0.02)
scheduler.start()
print("started", flush=True)
sys.stdin.read()  # run until the test closes stdin (or kills this process)
scheduler.stop()
"""


def _tick_count(path: Path) -> int:
    return path.read_text().count("tick") if path.exists() else 0


def _wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_one_process_fires_timers_and_another_takes_over_when_it_dies(tmp_path):
    lock_path = tmp_path / "timers.lock"
    ticks = [tmp_path / "first.ticks", tmp_path / "second.ticks"]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    processes: list[subprocess.Popen[str]] = []
    try:
        for path in ticks:
            process = subprocess.Popen(
                [sys.executable, "-c", LEADER_SCRIPT, str(lock_path), str(path)],
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            processes.append(process)
            assert process.stdout is not None
            assert process.stdout.readline() == "started\n"
            if len(processes) == 1:
                _wait_until(lambda: _tick_count(ticks[0]) >= 1)
        first, second = processes

        seen = _tick_count(ticks[0])
        _wait_until(lambda: _tick_count(ticks[0]) >= seen + 10)
        assert not ticks[1].exists()

        first.kill()  # the holder dies without stopping: the kernel drops its lock
        first.wait(5.0)
        _wait_until(lambda: _tick_count(ticks[1]) >= 1)

        assert second.stdin is not None
        second.stdin.close()
        assert second.wait(5.0) == 0
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.wait(5.0)
            for stream in (process.stdin, process.stdout):
                if stream is not None and not stream.closed:
                    stream.close()
