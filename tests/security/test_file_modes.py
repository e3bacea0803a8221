"""The files the server keeps (the sandbox's database and its lock files, the callback log, with
their -wal and -shm) are its owner's alone: 0600, in an instance folder made 0700, whatever the
umask. They hold the sandbox's auth token, the callback URLs (with any ?token= in them) and the
callers' task attributes.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from contextlib import closing
from pathlib import Path

import pytest
import requests

from taskrouter_sandbox.store import make_private_file

PERMISSIVE_UMASK = 0o022


@pytest.fixture(autouse=True)
def permissive_umask():
    # The common default: a file made without an explicit mode would be 0644.
    previous = os.umask(PERMISSIVE_UMASK)
    yield
    os.umask(previous)


def modes(folder: Path) -> dict[str, str]:
    """Every file and folder under folder (itself included), by its path, as an octal mode."""
    found = {".": oct(stat.S_IMODE(folder.stat().st_mode))}
    for path in folder.rglob("*"):
        found[str(path.relative_to(folder))] = oct(stat.S_IMODE(path.stat().st_mode))
    return found


def private(names: set[str]) -> dict[str, str]:
    return {".": "0o700", **{name: "0o600" for name in names}}


def outbox_locks(found: dict[str, str]) -> set[str]:
    """The lock files of the processes delivering callbacks (taskrouter_sandbox/state/outbox.py),
    one each."""
    return {name for name in found if name.startswith("sandbox.sqlite3.callbacks-")}


def test_a_new_sandbox_app_makes_every_file_private(make_app, tmp_path):
    app = make_app(environ={})
    sandbox = app.extensions["sandbox"]
    # As a serving process does: record itself and hold the .server lock; timers take .lock.
    sandbox.serve("http://127.0.0.1:5000/assignment_callback", os.getpid())
    sandbox.start()
    log = app.extensions["callback_log"]
    log.record({"task_sid": "WT" + "0" * 32, "answer": "{}"})
    assert log.flush()

    found = modes(tmp_path / "instance")

    assert len(outbox_locks(found)) == 1
    assert found == private(
        outbox_locks(found)
        | {
            "sandbox.sqlite3",
            "sandbox.sqlite3-wal",
            "sandbox.sqlite3-shm",
            "sandbox.sqlite3-writers",
            "sandbox.sqlite3.lock",
            "sandbox.sqlite3.server",
            "callbacks.sqlite3",
            "callbacks.sqlite3-wal",
            "callbacks.sqlite3-shm",
        }
    )


def test_a_served_sandbox_that_took_a_callback_keeps_every_file_private(live_app, tmp_path):
    live = live_app()
    created = requests.post(f"{live.url}/create_task", timeout=10)
    assert created.status_code == 201, created.text
    task_sid = created.json()["sid"]
    live.set_activity("Alice", "Idle")
    deadline = time.monotonic() + 10
    while not live.callbacks_for(task_sid):
        assert time.monotonic() < deadline, "the assignment callback never arrived"
        time.sleep(0.05)

    found = modes(tmp_path / "live0" / "instance")

    assert len(outbox_locks(found)) == 1
    assert found == private(
        outbox_locks(found)
        | {
            "sandbox.sqlite3",
            "sandbox.sqlite3-wal",
            "sandbox.sqlite3-shm",
            "sandbox.sqlite3-writers",
            "sandbox.sqlite3.lock",
            "sandbox.sqlite3.server",
            "callbacks.sqlite3",
            "callbacks.sqlite3-wal",
            "callbacks.sqlite3-shm",
        }
    )


def test_files_an_older_version_made_readable_are_tightened_when_opened(make_app, tmp_path):
    instance = tmp_path / "instance"
    first = make_app(environ={})
    first.extensions["sandbox"].serve("http://127.0.0.1:5000/assignment_callback", os.getpid())
    first.extensions["sandbox"].start()
    # A second process over the same files keeps the -wal and -shm in place, as a running
    # server does while another opens them.
    for path in instance.iterdir():
        path.chmod(0o644)

    second = make_app(environ={})
    second.extensions["sandbox"].serve("http://127.0.0.1:5000/assignment_callback", os.getpid())
    second.extensions["sandbox"].start()

    found = modes(instance)
    del found["."]  # an existing folder is the user's: left as it is
    assert found == {name: "0o600" for name in found}
    assert {"sandbox.sqlite3-wal", "sandbox.sqlite3-shm", "callbacks.sqlite3"} <= set(found)


def test_an_existing_instance_folder_is_left_as_it_is(make_app, tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir(mode=0o755)

    make_app(environ={})

    assert stat.S_IMODE(instance.stat().st_mode) == 0o755
    assert stat.S_IMODE((instance / "sandbox.sqlite3").stat().st_mode) == 0o600


def test_sqlite_gives_the_wal_and_shm_files_the_mode_of_the_database(tmp_path):
    # What the fix relies on: only the database file is made by hand.
    database = tmp_path / "any.sqlite3"
    make_private_file(database)
    with closing(sqlite3.connect(database)) as connection:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("CREATE TABLE t (x)")
        connection.execute("INSERT INTO t VALUES (1)")
        connection.commit()

        assert modes(tmp_path) == private({"any.sqlite3", "any.sqlite3-wal", "any.sqlite3-shm"})


def test_the_umask_is_not_changed(make_app):
    make_app(environ={})

    assert os.umask(PERMISSIVE_UMASK) == PERMISSIVE_UMASK
