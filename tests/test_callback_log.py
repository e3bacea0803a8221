"""The callback log: a bounded SQLite file in the instance folder, shared by every process.

record() only queues; each process's writer thread writes in batches, and reads flush first.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from flask import Flask

from taskrouter_quickstart import callback_log
from taskrouter_quickstart.callback_log import CallbackLog

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


def test_newest_first_and_bounded(tmp_path):
    log = CallbackLog(tmp_path / "callbacks.sqlite3", keep=5)
    for number in range(12):
        log.record(fields(number))

    assert log.count() == 5
    rows = log.recent(limit=10)
    assert [row["task_sid"] for row in rows] == [f"WT{n:032x}" for n in (11, 10, 9, 8, 7)]
    assert set(rows[0]) == set(callback_log.FIELDS)


def test_default_bound_is_200(tmp_path):
    log = CallbackLog(tmp_path / "callbacks.sqlite3")
    for number in range(205):
        log.record(fields(number))
    assert log.count() == 200
    assert log.recent(limit=1)[0]["task_sid"] == f"WT{204:032x}"


def test_file_uses_write_ahead_logging(tmp_path):
    path = tmp_path / "callbacks.sqlite3"
    CallbackLog(path)
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_long_values_are_clipped(tmp_path):
    log = CallbackLog(tmp_path / "callbacks.sqlite3")
    log.record({"task_sid": "W" * 500, "task_attributes": "x" * 100_000, "answer": "{}"})
    [row] = log.recent()
    assert len(row["task_sid"]) == callback_log.MAX_SID_LENGTH
    assert len(row["task_attributes"]) == callback_log.MAX_ATTRIBUTES_LENGTH
    assert row["reservation_sid"] is None


def test_keep_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="keep must be at least 1"):
        CallbackLog(tmp_path / "callbacks.sqlite3", keep=0)


def test_init_app_puts_the_file_in_the_instance_folder(tmp_path):
    app = Flask("quickstart_test", instance_path=str(tmp_path / "instance"))
    callback_log.init_app(app)
    log = app.extensions[callback_log.EXTENSION_KEY]
    assert log.path == tmp_path / "instance" / callback_log.FILENAME
    assert log.path.exists()


def test_records_from_other_processes_are_shared(tmp_path):
    path = tmp_path / "callbacks.sqlite3"
    log = CallbackLog(path)
    writer = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from taskrouter_quickstart.callback_log import CallbackLog
        log = CallbackLog({str(path)!r})
        for number in range(25):
            log.record({{"task_sid": f"WT{{number:032x}}", "answer": "{{}}"}})
        """
    )
    workers = [subprocess.Popen([sys.executable, "-c", writer]) for _ in range(2)]
    for worker in workers:
        assert worker.wait(timeout=60) == 0
    log.record(fields(99))

    assert log.count() == 51
    assert log.recent(limit=1)[0]["task_sid"] == f"WT{99:032x}"


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


def test_recent_sees_every_callback_recorded_before_it(make_log):
    log = make_log()

    def record_many(first: int) -> None:
        for number in range(first, first + 25):
            log.record(fields(number))

    threads = [threading.Thread(target=record_many, args=(n * 25,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    rows = log.recent(limit=200)
    assert len(rows) == 100
    assert {row["task_sid"] for row in rows} == {f"WT{n:032x}" for n in range(100)}


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


def test_a_forked_child_writes_through_its_own_writer(tmp_path):
    if not hasattr(os, "fork"):
        pytest.skip("os.fork is not available on this platform")
    path = tmp_path / "callbacks.sqlite3"
    script = textwrap.dedent(
        f"""
        import json, os, sys
        sys.path.insert(0, {str(ROOT)!r})
        from taskrouter_quickstart.callback_log import CallbackLog
        log = CallbackLog({str(path)!r})
        log.record({{"task_sid": "WT-parent-before-fork", "answer": "{{}}"}})
        assert log.flush(timeout=10)
        pid = os.fork()
        if pid == 0:
            # No flush here: the child's writer must write it when the child exits.
            log.record({{"task_sid": "WT-child", "answer": "{{}}"}})
            sys.exit(0)
        _, status = os.waitpid(pid, 0)
        log.record({{"task_sid": "WT-parent-after-fork", "answer": "{{}}"}})
        rows = log.recent()
        print(json.dumps({{
            "child_exit": os.waitstatus_to_exitcode(status),
            "task_sids": [row["task_sid"] for row in rows],
        }}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["child_exit"] == 0
    assert outcome["task_sids"] == ["WT-parent-after-fork", "WT-child", "WT-parent-before-fork"]


def test_queued_rows_are_written_at_exit(tmp_path):
    path = tmp_path / "callbacks.sqlite3"
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from taskrouter_quickstart.callback_log import CallbackLog
        log = CallbackLog({str(path)!r})
        for number in range(300):
            log.record({{"task_sid": f"WT{{number:032x}}", "answer": "{{}}"}})
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    log = CallbackLog(path, keep=500)
    assert log.count() == 200
    assert log.recent(limit=1)[0]["task_sid"] == f"WT{299:032x}"


def test_close_writes_what_is_queued_and_record_starts_again(make_log):
    log = make_log()
    log.record(fields(1))
    first = log._writer
    log.close()
    assert first is not None and not first.thread.is_alive()
    with sqlite3.connect(log.path) as connection:
        assert connection.execute("SELECT COUNT(*) FROM assignment_callbacks").fetchone()[0] == 1

    assert log.record(fields(2)) is True
    assert log._writer is not first
    assert log.count() == 2


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"queue_size": 0}, "queue_size must be at least 1"),
        ({"max_batch": 0}, "max_batch must be at least 1"),
    ],
)
def test_bad_writer_options_are_refused(tmp_path, option, message):
    with pytest.raises(ValueError, match=message):
        CallbackLog(tmp_path / "callbacks.sqlite3", **option)


def test_init_app_logs_through_the_app_logger(tmp_path):
    app = Flask("quickstart_test", instance_path=str(tmp_path / "instance"))
    callback_log.init_app(app)
    assert app.extensions[callback_log.EXTENSION_KEY].logger is app.logger
