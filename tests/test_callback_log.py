"""The callback log: a bounded SQLite file in the instance folder, shared by every process."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from flask import Flask

import callback_log
from callback_log import CallbackLog

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
        from callback_log import CallbackLog
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
