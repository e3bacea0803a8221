"""A file store's write transactions commit behind (store/behind.py): several share one commit,
each rolls back alone, and every one is committed before anyone relies on it: a read in this
process, the REST API's answer, a reset, close, the process's exit, a fork; else within the
bound, or as soon as another process waits for the write lock. A failed commit or a rollback
SQLite makes of the whole says the writes were lost.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskrouter_sandbox import create_app
from taskrouter_sandbox.runtime import Sandbox
from taskrouter_sandbox.store import Store, StoreError, behind

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


def test_close_waits_for_the_committer_s_commit(database: str):
    # A commit of many pages, under way in the committer thread when close() comes: closing
    # the connection under it would crash the process, and close() would return too early.
    blob = "x" * 1_000_000
    for round_ in range(25):
        store = Store(database, commit_behind_ms=5)
        with store.transaction() as tx:
            tx.set_setting("n", str(round_))
            tx.set_setting("blob", blob)
        time.sleep(0.004 + 0.0002 * round_)
        store.close()
        assert _committed(database, "n") == str(round_)


def test_a_read_sees_its_own_write_while_the_committer_commits(database: str):
    store = Store(database, commit_behind_ms=5)
    blob = "x" * 1_000_000
    try:
        for round_ in range(40):
            with store.transaction() as tx:
                tx.set_setting("blob", blob + str(round_))
                tx.set_setting("n", str(round_))
            time.sleep(0.004 + 0.0002 * (round_ % 10))
            with store.read() as tx:
                assert tx.setting("n") == str(round_)
    finally:
        store.close()


def _write_all_the_time(database: str, seconds: float) -> None:
    store = Store(database)
    deadline = time.monotonic() + seconds
    count = 0
    while time.monotonic() < deadline:
        _write(store, "busy", str(count))
        count += 1
        time.sleep(0.002)  # a request's own work between two writes
    store.close()


def test_another_process_writing_all_the_time_leaves_this_one_its_turns(database: str):
    Store(database).close()
    busy = multiprocessing.get_context("spawn").Process(
        target=_write_all_the_time, args=(database, 4.0)
    )
    busy.start()
    try:
        deadline = time.monotonic() + 20
        while _committed(database, "busy") is None:  # the other process is writing
            assert time.monotonic() < deadline and busy.is_alive()
            time.sleep(0.01)
        opening = time.monotonic()
        store = Store(database)  # its schema check writes too
        waits = [time.monotonic() - opening]
        try:
            for count in range(15):
                started = time.monotonic()
                _write(store, "mine", str(count))
                store.sync()
                waits.append(time.monotonic() - started)
                time.sleep(0.05)
        finally:
            store.close()
        # Each waits for the other's batch to end, not for the busy timeout (5 s); without the
        # writers file, single writes waited 1 to 2 s.
        assert max(waits) < 0.5, waits
    finally:
        busy.join(30)
    assert busy.exitcode == 0


def test_a_full_disk_loses_the_batch_with_a_clear_error(store: Store, database: str):
    ran: list[str] = []
    _write(store, "a", "1", ran)
    connection = store._writer.connection
    pages = connection.execute("PRAGMA page_count").fetchone()["page_count"]
    connection.execute(f"PRAGMA max_page_count = {pages + 2}")
    # SQLite rolls the whole transaction back: the batch's first write is lost with it.
    with pytest.raises(StoreError, match=r"full.*the last writes were lost"):
        _write(store, "big", "x" * 2_000_000, ran)
    connection.execute("PRAGMA max_page_count = 1073741823")
    _write(store, "c", "3", ran)  # a new batch, begun afresh
    store.sync()
    assert [_committed(database, key) for key in ("a", "big", "c")] == [None, None, "3"]
    assert ran == ["c"]


def test_a_store_dropped_without_close_commits_within_the_bound(database: str):
    def write_and_drop() -> None:
        _write(Store(database, commit_behind_ms=20), "a", "1")

    write_and_drop()
    gc.collect()
    deadline = time.monotonic() + 5
    while _committed(database, "a") is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _committed(database, "a") == "1"


def test_a_write_under_way_when_the_store_closes_is_committed(database: str):
    store = Store(database)
    outcome: list[str] = []

    def writer() -> None:
        with store.transaction() as tx:
            tx.set_setting("a", "1")
            time.sleep(0.2)  # the rest of the operation's work
        outcome.append("returned")

    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(0.1)
    store.close()
    thread.join()
    assert outcome == ["returned"] and _committed(database, "a") == "1"


def test_a_reset_in_another_process_is_followed_at_once(database: str):
    server, command = Sandbox(database), Sandbox(database)  # the server; `flask sandbox reset`
    try:
        server.reload_seeded()  # the server has seen the lock file's time
        time.sleep(0.05)
        new = command.reset().workspace_sid
        followed = server.reload_seeded()  # the server's next request
        assert followed is not None and followed.workspace_sid == new
    finally:
        command.close()
        server.close()


# A disk that refuses every write, made by lowering the process's file size limit to a byte
# (not to the WAL's size: a WAL the checkpoint thread has copied back is written again from its
# start, within that size): run in a child process, since the limit is the whole process's.
_FULL_DISK = """
import os, resource, signal, sqlite3, sys, time
from taskrouter_sandbox.store import Store, StoreError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
database, case = sys.argv[1], sys.argv[2]
store = Store(database, commit_behind_ms=600_000 if case == "cache" else 20)
with store.transaction() as tx:
    tx.execute("CREATE TABLE t (sid TEXT PRIMARY KEY, v TEXT)")
    tx.execute("INSERT INTO t VALUES ('x', 'old')")
store.sync()
load = lambda tx: lambda: tx.one("SELECT * FROM t WHERE sid = 'x'")
with store.transaction() as tx:
    tx.cached("t", "x", load(tx))
    tx.update("t", "x", {"v": "new"})
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (1, hard))
try:
    if case == "other thread":
        time.sleep(0.3)  # the committer thread's COMMIT fails meanwhile
    store.sync()
    print("sync returned")
except StoreError as error:
    print("sync raised:", error)
finally:
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
with store.transaction() as tx:
    print("kept row:", tx.cached("t", "x", load(tx))["v"])
print("on file:", sqlite3.connect(database).execute("SELECT v FROM t").fetchone()[0])
store.close()
"""


@pytest.mark.parametrize("case", ["cache", "other thread"])
def test_a_commit_that_fails_tells_the_writer_and_forgets_the_rows(database: str, case: str):
    # "other thread": the committer's COMMIT fails, and the writer's own sync() (the REST
    # API's, before it answers) still raises rather than let it answer 201.
    finished = subprocess.run(
        [sys.executable, "-c", _FULL_DISK, database, case],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 0, finished.stderr
    lines = finished.stdout.splitlines()
    assert lines[0].startswith("sync raised:") and "lost" in lines[0] + finished.stderr
    assert lines[1:] == ["kept row: old", "on file: old"]


def test_close_inside_its_own_write_transaction_is_refused(store: Store, database: str):
    refused = pytest.raises(StoreError, match="inside its own write transaction")
    with refused, store.transaction() as tx:
        tx.set_setting("a", "1")
        store.close()
    assert not store.closed and _committed(database, "a") is None  # rolled back, not lost


def test_a_store_never_closed_leaves_no_descriptor_open(database: str):
    def open_files() -> int:
        return sum(
            os.path.realpath(f"/proc/self/fd/{fd}").endswith("-writers")
            for fd in os.listdir("/proc/self/fd")
        )

    before = open_files()
    for round_ in range(5):
        _write(Store(database, commit_behind_ms=5), "n", str(round_))
    deadline = time.monotonic() + 5
    while open_files() > before and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.05)
    assert open_files() == before


def test_a_batch_s_commit_is_counted_once(database: str):
    counts = []
    for behind_ms in (0, NEVER_MS):
        store = Store(database, commit_behind_ms=behind_ms)
        started = store.statements
        for key in "abc":
            _write(store, key, "1")
        store.sync()
        counts.append(store.statements - started)
        store.close()
    # Each on its own: BEGIN, the data version, the write, COMMIT. Together: one BEGIN and
    # data version, three writes, the SAVEPOINT and RELEASE of the last two, one COMMIT.
    assert counts == [12, 10]


def test_the_rest_api_answers_a_lost_write_with_a_500_not_a_201(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(behind, "COMMIT_BEHIND_MS", NEVER_MS)
    database = str(tmp_path / "api.sqlite3")
    app = create_app(
        {"SANDBOX_DATABASE": database, "TESTING": True, "SANDBOX_START_THREADS": False}
    )
    sandbox = app.extensions["sandbox"]
    batches = sandbox.store._batches

    def failing_commit():  # as a full disk fails the batch's COMMIT
        batches.open.connection.execute("ROLLBACK")
        raise batches.lose(sqlite3.OperationalError("database or disk is full"))

    try:
        monkeypatch.setattr(batches, "commit", failing_commit)
        response = app.test_client().post(
            f"/v1/Workspaces/{sandbox.seeded.workspace_sid}/Tasks",
            data={"Attributes": '{"selected_language": "es"}'},
            auth=(sandbox.account_sid, sandbox.auth_token),
        )
        body = response.get_json()
        assert response.status_code == 500 and body["code"] == 20500 and body["status"] == 500
        assert "Traceback" not in response.get_data(as_text=True)
        with sqlite3.connect(database) as other:
            assert other.execute("SELECT count(*) FROM tasks").fetchone()[0] == 0
    finally:
        monkeypatch.undo()
        sandbox.close()
