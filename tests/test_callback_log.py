"""The callback log's SQLite store: a bounded file in the instance folder, shared by every
process, and its writer thread under a locked or broken file.

record() only queues; each process's writer thread writes in batches, and reads flush first.
What both stores promise alike (order, bound, filter, fork, exit) is in
test_callback_log_stores.py, run against this one and Redis.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from flask import Flask

from taskrouter_quickstart import callback_log
from taskrouter_quickstart.callback_log import CallbackLog
from taskrouter_quickstart.callback_log.rows import make_row

ROOT = Path(__file__).resolve().parents[1]


def fields(number: int) -> dict[str, str]:
    return {
        "reservation_sid": f"WR{number:032x}",
        "task_sid": f"WT{number:032x}",
        "worker_sid": "WK" + "5" * 32,
        "task_queue_sid": "WQ" + "6" * 32,
        "workflow_sid": "WW" + "2" * 32,
        "task_attributes": '{"selected_language": "es"}',
        "worker_attributes": '{"languages": ["en", "es"]}',
        "answer": "{}",
    }


def test_file_uses_write_ahead_logging(tmp_path):
    path = tmp_path / "callbacks.sqlite3"
    CallbackLog(path)
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_init_app_puts_the_file_in_the_instance_folder(tmp_path):
    app = Flask("quickstart_test", instance_path=str(tmp_path / "instance"))
    callback_log.init_app(app)
    log = app.extensions[callback_log.EXTENSION_KEY]
    assert log.path == tmp_path / "instance" / callback_log.FILENAME
    assert log.path.exists()


@pytest.fixture
def make_log(tmp_path):
    logs: list[CallbackLog] = []

    def make(**options) -> CallbackLog:
        log = CallbackLog(tmp_path / "callbacks.sqlite3", **options)
        logs.append(log)
        return log

    yield make
    for log in logs:
        log.close()


@pytest.fixture
def write_lock(tmp_path):
    """Hold the file's write lock from another connection, as a busy worker would."""
    connection = sqlite3.connect(tmp_path / "callbacks.sqlite3", isolation_level=None)
    held = []

    class Lock:
        def take(self) -> None:
            connection.execute("BEGIN IMMEDIATE")
            held.append(True)

        def release(self) -> None:
            connection.execute("ROLLBACK")
            held.clear()

    yield Lock()
    if held:
        connection.execute("ROLLBACK")
    connection.close()


def test_record_does_not_open_the_file_on_the_calling_thread(make_log, monkeypatch):
    log = make_log()
    opened_on: list[threading.Thread] = []
    real_connect = sqlite3.connect

    def connect(*args, **kwargs):
        opened_on.append(threading.current_thread())
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(callback_log.sqlite3, "connect", connect)
    assert log.record(fields(1)) is True
    assert log.flush(timeout=10)

    assert opened_on, "the writer never opened the file"
    assert threading.current_thread() not in opened_on
    assert log.count() == 1


def test_record_returns_at_once_while_the_file_is_locked(make_log, write_lock):
    log = make_log()
    write_lock.take()

    started = time.monotonic()
    for number in range(20):
        assert log.record(fields(number)) is True
    # A record() that wrote on the caller's thread would wait out the 5 s busy timeout.
    assert time.monotonic() - started < 2.0
    # The writer is waiting on the lock, so the flush gives up and says so.
    assert log.flush(timeout=0.05) is False

    write_lock.release()
    assert log.flush(timeout=10) is True
    assert log.count() == 20


def test_a_broken_file_is_reported_by_the_writer_not_the_caller(make_log, tmp_path, caplog):
    log = make_log()
    # Another program overwrote the file: only the writer finds out.
    (tmp_path / "callbacks.sqlite3").write_bytes(b"not a database" * 512)
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"callbacks.sqlite3{suffix}").unlink(missing_ok=True)

    assert log.record(fields(1)) is True
    assert log.flush(timeout=10) is True

    [warning] = [r for r in caplog.records if r.getMessage().startswith("Could not record")]
    assert warning.levelno == logging.WARNING
    assert warning.threadName != threading.current_thread().name
    assert "Could not record 1 callback(s)" in warning.getMessage()
    assert "not a database" in warning.getMessage()


def test_the_writer_recovers_once_the_file_is_writable_again(make_log, tmp_path, caplog):
    log = make_log()
    path = tmp_path / "callbacks.sqlite3"
    good = path.read_bytes()
    path.write_bytes(b"not a database" * 512)
    log.record(fields(1))
    assert log.flush(timeout=10)
    assert "Could not record 1 callback(s)" in caplog.text

    path.write_bytes(good)
    log.record(fields(2))
    assert [row["task_sid"] for row in log.recent()] == [f"WT{2:032x}"]


def test_queued_rows_are_written_in_batches(make_log, write_lock):
    log = make_log(max_batch=10)
    write_lock.take()
    for number in range(50):
        log.record(fields(number))
    write_lock.release()

    assert log.count() == 50
    # One row per transaction would be 50; the writer takes up to 10 queued rows at a time.
    assert 5 <= log.batches <= 6
    assert [row["task_sid"] for row in log.recent(limit=3)] == [f"WT{n:032x}" for n in (49, 48, 47)]


def test_a_flush_cuts_the_writers_rest_short(make_log, monkeypatch):
    # Between two writes the writer rests, so that a burst is one batch; a reader waiting on
    # the rows (the page) must not wait out the rest.
    monkeypatch.setattr(callback_log.writer, "BATCH_INTERVAL_SECONDS", 30.0)
    log = make_log()
    log.record(fields(1))
    assert log.flush(timeout=10)
    log.record(fields(2))  # queued while the writer rests after row 1
    started = time.monotonic()
    assert log.flush(timeout=10)
    assert time.monotonic() - started < 5
    assert [row["task_sid"] for row in log.recent(limit=2)] == [f"WT{n:032x}" for n in (2, 1)]


def test_closing_the_log_cuts_the_writers_rest_short(make_log, monkeypatch):
    monkeypatch.setattr(callback_log.writer, "BATCH_INTERVAL_SECONDS", 30.0)
    log = make_log()
    log.record(fields(1))
    assert log.flush(timeout=10)
    writer = log._writer
    started = time.monotonic()
    log.close()
    assert not writer.thread.is_alive()
    assert time.monotonic() - started < 5


def test_a_batch_larger_than_keep_is_trimmed_in_its_transaction(make_log, write_lock, tmp_path):
    log = make_log(keep=5)
    write_lock.take()
    for number in range(30):
        log.record(fields(number))
    write_lock.release()

    assert log.count() == 5
    assert log.batches <= 2
    assert [row["task_sid"] for row in log.recent(limit=10)] == [
        f"WT{n:032x}" for n in (29, 28, 27, 26, 25)
    ]


def test_a_full_queue_drops_the_row_with_a_warning(make_log, write_lock, caplog):
    # The writer holds one row while it waits on the lock, the queue two more.
    log = make_log(queue_size=2, max_batch=1)
    write_lock.take()
    assert log.record(fields(0)) is True
    # Once the writer has taken row 0 it waits on the lock, so the queue's room is known.
    deadline = time.monotonic() + 10
    while log._writer._rows and time.monotonic() < deadline:
        time.sleep(0.001)
    accepted = [True] + [log.record(fields(number)) for number in range(1, 6)]

    assert accepted == [True, True, True, False, False, False]
    drops = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Dropped")]
    # Under overload the warnings come once a second, not once per row.
    assert len(drops) == 1
    assert "Dropped 1 callback record(s)" in drops[0]
    assert "queue holds 2 rows" in drops[0]

    write_lock.release()
    assert log.count() == accepted.count(True)


def test_a_pid_change_starts_a_new_writer_with_an_empty_queue(make_log, write_lock, monkeypatch):
    log = make_log()
    write_lock.take()
    log.record(fields(1))
    parent_writer = log._writer
    assert parent_writer is not None

    # As in a forked child: the parent's thread is not ours and its queued row is not ours.
    child_pid = os.getpid() + 100_000
    monkeypatch.setattr(callback_log.os, "getpid", lambda: child_pid)
    assert log.flush(timeout=0) is True
    log.record(fields(2))
    child_writer = log._writer
    assert child_writer is not parent_writer
    assert child_writer.pid == child_pid
    assert child_writer.thread is not parent_writer.thread
    assert child_writer.thread.is_alive()

    write_lock.release()
    assert child_writer.flush(timeout=10)
    assert parent_writer.flush(timeout=10)
    # The parent's row is written once, by the parent's writer; the child's by the child's.
    # Either writer may commit first once the lock is gone.
    assert sorted(row["task_sid"] for row in log.recent()) == [f"WT{n:032x}" for n in (1, 2)]
    assert parent_writer.batches == 1
    assert child_writer.batches == 1
    child_writer.close()
    monkeypatch.undo()
    parent_writer.close()


def test_init_app_logs_through_the_app_logger(tmp_path):
    app = Flask("quickstart_test", instance_path=str(tmp_path / "instance"))
    callback_log.init_app(app)
    assert app.extensions[callback_log.EXTENSION_KEY].logger is app.logger


@pytest.mark.parametrize("sizes", [(1,), (3, 64), (100, 127, 65)])
def test_a_batch_is_stored_whole_and_in_order_whatever_its_size(tmp_path, sizes):
    # The file's writer inserts a batch as multi-row statements of powers of two.
    log = CallbackLog(tmp_path / "callbacks.sqlite3", keep=1000)
    sink = log._make_sink()
    number = 0
    try:
        for size in sizes:
            sink.write([make_row(fields(n)) for n in range(number, number + size)])
            number += size
    finally:
        sink.close()
    rows = log.recent(limit=1000)
    assert [row["task_sid"] for row in rows] == [f"WT{n:032x}" for n in reversed(range(number))]
    log.close()
