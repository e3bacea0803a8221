"""A file store checkpoints its WAL in a thread of its own (store/checkpoints.py): after
commits, while the writes go on, never across a fork, and ending with its store."""

from __future__ import annotations

import gc
import itertools
import os
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskrouter_sandbox.store import Store, behind, checkpoints, database
from taskrouter_sandbox.store.checkpoints import Checkpointer

# The WAL index's header (the -shm file): mxFrame, the WAL's last valid frame, at byte 16;
# nBackfill, the frames copied back into the database, at byte 96 (after the header's two
# copies), both in the machine's byte order.
_MAX_FRAME, _BACKFILLED = 16, 96


@pytest.fixture(autouse=True)
def _no_automatic_checkpoint(monkeypatch):
    """The writer never checkpoints itself: whatever is copied back, the thread copied."""
    monkeypatch.setattr(database, "WAL_CHECKPOINT_PAGES", 10**9)


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "checkpoints.sqlite3")


@pytest.fixture
def store(path: str) -> Iterator[Store]:
    opened = Store(path, commit_behind_ms=0)
    yield opened
    opened.close()


def _frames(path: str) -> tuple[int, int]:
    """(the WAL's frames, how many of them are back in the database file)."""
    header = Path(path + "-shm").read_bytes()[:100]

    def word(offset: int) -> int:
        return int.from_bytes(header[offset : offset + 4], sys.byteorder)

    return word(_MAX_FRAME), word(_BACKFILLED)


_written = itertools.count()


def _write(store: Store, count: int) -> None:
    """count commits, each of a new setting (a setting written again unchanged writes no page)."""
    for _ in range(count):
        with store.transaction() as tx:
            tx.set_setting(f"key-{os.getpid()}-{next(_written)}", "x" * 500)


def _checkpointed(path: str, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frames, backfilled = _frames(path)
        if frames and backfilled == frames:
            return True
        time.sleep(0.02)
    return False


def _settled(store: Store) -> Checkpointer:
    """Its checkpointer, once the checkpoint under way (if any) has let go of the WAL."""
    checkpointer = store._batches._checkpointer
    assert checkpointer is not None
    checkpointer.pause()
    checkpointer.resume()
    return checkpointer


def test_the_thread_copies_the_wal_back_after_commits(store: Store, path: str):
    _write(store, 50)
    assert _checkpointed(path), _frames(path)


def test_a_copied_wal_starts_again_from_its_beginning(store: Store, path: str):
    _write(store, 50)
    assert _checkpointed(path)
    written, _ = _frames(path)
    _settled(store)
    _write(store, 1)
    # Without the checkpoint the new commit's frames would follow the others.
    assert _frames(path)[0] < written


def test_checkpoints_wait_at_least_their_interval(monkeypatch, store: Store, path: str):
    monkeypatch.setattr(checkpoints, "CHECKPOINT_SECONDS", 0.3)
    started = time.monotonic()
    while time.monotonic() - started < 1.0:
        _write(store, 1)
        time.sleep(0.005)
    checkpointer = store._batches._checkpointer
    assert checkpointer is not None
    # About 1.0 / 0.3 of them: far fewer than the commits, at least two.
    assert 2 <= checkpointer.runs <= 5


def test_no_checkpoint_runs_while_a_fork_is_under_way(store: Store, path: str):
    _write(store, 5)
    assert _checkpointed(path)
    checkpointer = store._batches._checkpointer
    runs = checkpointer.runs
    database._hold_across_fork(lambda: store)  # what os.fork() runs before forking
    try:
        assert not checkpointer.running.acquire(blocking=False)
        checkpointer.committed()
        time.sleep(checkpoints.CHECKPOINT_SECONDS + 0.2)
        assert checkpointer.runs == runs
    finally:
        database._release_after_fork(lambda: store)
    _write(store, 5)
    assert _checkpointed(path)
    assert checkpointer.runs > runs


def test_a_forked_child_checkpoints_with_a_thread_of_its_own(store: Store, path: str):
    _write(store, 5)
    assert _checkpointed(path)
    parents = _settled(store)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            _write(store, 50)
            own = store._batches._checkpointer
            fresh = own is not None and own is not parents and own._thread.is_alive()
            code = 0 if fresh and _checkpointed(path) and own.runs >= 1 else 3
        finally:
            os._exit(code)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    _write(store, 5)
    with store.read() as tx:
        # The parent's writes and the child's, none lost.
        assert tx.scalar("SELECT count(*) FROM settings WHERE key LIKE 'key-%'") == 60


def test_a_store_opened_and_left_starts_no_thread(path: str):
    opened = Store(path, commit_behind_ms=0)  # its schema committed
    try:
        assert opened._batches._checkpointer is None
    finally:
        opened.close()


def test_the_thread_ends_with_its_store(path: str):
    opened = Store(path, commit_behind_ms=0)
    _write(opened, 5)
    thread = opened._batches._checkpointer._thread
    assert thread.is_alive()
    opened.close()
    assert not thread.is_alive()


def test_the_thread_ends_when_its_store_is_dropped_unclosed(path: str):
    opened = Store(path, commit_behind_ms=0)
    _write(opened, 5)
    assert _checkpointed(path)
    thread = opened._batches._checkpointer._thread
    del opened
    gc.collect()
    thread.join(checkpoints.IDLE_CHECK_SECONDS * 5)
    assert not thread.is_alive()


def test_a_removed_database_is_not_made_anew_by_the_thread(store: Store, path: str):
    _write(store, 1)  # the thread started, its connection not yet opened
    store._batches._checkpointer.pause()
    try:
        for suffix in ("", "-wal", "-shm"):
            Path(path + suffix).unlink()
    finally:
        store._batches._checkpointer.resume()
    time.sleep(checkpoints.CHECKPOINT_SECONDS + 0.3)
    assert not Path(path).exists()


def test_a_thread_that_cannot_start_loses_no_write(monkeypatch, store: Store, path: str):
    def refused(*args, **kwargs):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(behind, "Checkpointer", refused)
    _write(store, 3)  # committed, not failed
    with sqlite3.connect(path) as other:
        assert other.execute("SELECT count(*) FROM settings WHERE key LIKE 'key-%'").fetchone()[0]
