"""A file store's write transactions commit behind (store/behind.py): several share one commit,
each rolls back alone, and every one is committed before anyone relies on it: a read in this
process, the REST API's answer, close, the process's exit, a fork; else within the bound.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskrouter_sandbox import create_app
from taskrouter_sandbox.store import Store, behind

ROOT = Path(__file__).resolve().parents[3]
# Long enough that nothing commits by the clock while a test looks.
NEVER_MS = 600_000


@pytest.fixture
def database(tmp_path: Path) -> str:
    return str(tmp_path / "behind.sqlite3")


@pytest.fixture
def store(database: str) -> Iterator[Store]:
    opened = Store(database, commit_behind_ms=NEVER_MS)
    yield opened
    opened.close()


def _committed(database: str, key: str) -> str | None:
    """The setting as another process finds it: only what has been committed."""
    with sqlite3.connect(database) as other:
        row = other.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
    return None if row is None else row[0]


def _write(store: Store, key: str, value: str, ran: list[str] | None = None) -> None:
    with store.transaction() as tx:
        tx.set_setting(key, value)
        if ran is not None:
            tx.after_commit(lambda: ran.append(key))


def test_writes_wait_for_one_commit_and_their_hooks_with_them(store: Store, database: str):
    ran: list[str] = []
    _write(store, "a", "1", ran)
    _write(store, "b", "2", ran)
    assert _committed(database, "a") is None and ran == []
    store.sync()
    assert (_committed(database, "a"), _committed(database, "b")) == ("1", "2")
    assert ran == ["a", "b"]


def test_a_read_in_this_process_commits_first(store: Store, database: str):
    _write(store, "a", "1")
    with store.read() as tx:
        assert tx.setting("a") == "1"
    assert _committed(database, "a") == "1"


def test_a_failing_write_rolls_back_alone(store: Store, database: str):
    ran: list[str] = []
    _write(store, "a", "1", ran)
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.set_setting("b", "2")
        tx.after_commit(lambda: ran.append("b"))
        raise RuntimeError("the operation fails")
    _write(store, "c", "3", ran)
    store.sync()
    assert [_committed(database, key) for key in "abc"] == ["1", None, "3"]
    assert ran == ["a", "c"]


def test_a_batch_commits_at_its_length(monkeypatch, store: Store, database: str):
    monkeypatch.setattr(behind, "COMMIT_BEHIND_OPS", 3)
    _write(store, "a", "1")
    _write(store, "b", "2")
    assert _committed(database, "a") is None
    _write(store, "c", "3")
    assert _committed(database, "a") == "1" and _committed(database, "c") == "3"


def test_the_committer_commits_within_the_bound(database: str):
    store = Store(database, commit_behind_ms=30)
    ran: list[str] = []
    try:
        _write(store, "a", "1", ran)
        deadline = time.monotonic() + 5
        while _committed(database, "a") is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _committed(database, "a") == "1"
        while not ran and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ran == ["a"]
    finally:
        store.close()


def test_without_the_bound_each_write_commits_as_it_ends(database: str):
    store = Store(database, commit_behind_ms=0)
    ran: list[str] = []
    try:
        _write(store, "a", "1", ran)
        assert _committed(database, "a") == "1" and ran == ["a"]
    finally:
        store.close()


def test_another_process_writes_once_the_batch_commits(database: str):
    first = Store(database, commit_behind_ms=50)
    second = Store(database, commit_behind_ms=0)  # as if another server process
    try:
        _write(first, "counter", "1")
        # Waits in BEGIN IMMEDIATE for the first's commit, then sees its value.
        with second.transaction() as tx:
            tx.set_setting("counter", str(int(tx.setting("counter") or 0) + 1))
        assert _committed(database, "counter") == "2"
    finally:
        first.close()
        second.close()


def test_close_commits(database: str):
    store = Store(database, commit_behind_ms=NEVER_MS)
    _write(store, "a", "1")
    store.close()
    assert _committed(database, "a") == "1"


def test_the_process_exit_commits_a_store_never_closed(database: str):
    script = (
        "import sys\n"
        "from taskrouter_sandbox.store import Store\n"
        f"store = Store(sys.argv[1], commit_behind_ms={NEVER_MS})\n"
        "with store.transaction() as tx:\n"
        "    tx.set_setting('a', '1')\n"
    )
    subprocess.run([sys.executable, "-c", script, database], cwd=ROOT, check=True, timeout=60)
    assert _committed(database, "a") == "1"


def test_a_forked_child_writes_while_the_parent_had_a_batch_open(store: Store, database: str):
    _write(store, "parent", "1")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            _write(store, "child", "1")
            store.sync()
            code = 0
        finally:
            os._exit(code)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert _committed(database, "parent") == "1" and _committed(database, "child") == "1"


def test_the_rest_api_commits_before_it_answers(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(behind, "COMMIT_BEHIND_MS", NEVER_MS)
    database = str(tmp_path / "api.sqlite3")
    # No delivery or timer thread, whose reads would commit the batch too.
    app = create_app(
        {"SANDBOX_DATABASE": database, "TESTING": True, "SANDBOX_START_THREADS": False}
    )
    sandbox = app.extensions["sandbox"]
    try:
        assert sandbox.store.commit_behind_ms == NEVER_MS
        workspace_sid = sandbox.seeded.workspace_sid
        response = app.test_client().post(
            f"/v1/Workspaces/{workspace_sid}/Tasks",
            data={"Attributes": '{"selected_language": "es"}'},
            auth=(sandbox.account_sid, sandbox.auth_token),
        )
        assert response.status_code == 201
        with sqlite3.connect(database) as other:
            found = other.execute(
                "SELECT count(*) FROM tasks WHERE sid = ?", (response.get_json()["sid"],)
            ).fetchone()[0]
        assert found == 1
    finally:
        sandbox.close()
