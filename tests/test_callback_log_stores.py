"""What both callback logs promise, run against each: the SQLite file and a real redis-server.

record() only queues; each process's writer writes in batches; reads flush this process's
queue first, list newest first, keep at most `keep` and filter by workspace alike.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from taskrouter_quickstart import callback_log
from taskrouter_quickstart.callback_log import CallbackLog
from tests.test_callback_log import fields

ROOT = Path(__file__).resolve().parents[1]
WORKSPACE = "WS" + "1" * 32
OTHER_WORKSPACE = "WS" + "9" * 32
WORKFLOW = "WW" + "2" * 32


@pytest.fixture(params=["sqlite", "redis"])
def store(request, tmp_path):
    """(make, source): make(**options) opens a log of this store; source is the Python
    expression that opens the same log in another process."""
    made = []
    if request.param == "sqlite":
        path = tmp_path / "callbacks.sqlite3"
        source = f"CallbackLog({str(path)!r}, **options)"

        def make(**options):
            made.append(CallbackLog(path, **options))
            return made[-1]
    else:
        from taskrouter_quickstart.callback_log.redis_log import RedisCallbackLog

        url = request.getfixturevalue("redis_url")
        source = f"RedisCallbackLog({url!r}, **options)"

        def make(**options):
            made.append(RedisCallbackLog(url, **options))
            return made[-1]

    yield make, source
    for log in made:
        log.close()


def run_script(source: str, body: str) -> str:
    """A script opening the same log in another process, then running `body`."""
    return textwrap.dedent(
        f"""
        import json, os, sys
        sys.path.insert(0, {str(ROOT)!r})
        from taskrouter_quickstart.callback_log import CallbackLog
        from taskrouter_quickstart.callback_log.redis_log import RedisCallbackLog
        options = {{}}
        log = {source}
        """
    ) + textwrap.dedent(body)


def run_elsewhere(source: str, body: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", run_script(source, body)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_newest_first_and_bounded(store):
    make, _ = store
    log = make(keep=5)
    for number in range(12):
        log.record(fields(number))

    assert log.count() == 5
    rows = log.recent(limit=10)
    assert [row["task_sid"] for row in rows] == [f"WT{n:032x}" for n in (11, 10, 9, 8, 7)]
    assert set(rows[0]) == set(callback_log.FIELDS)
    assert rows[0] == {
        **callback_log.rows.make_row(fields(11)),
        "received_at": rows[0]["received_at"],
    }


def test_the_default_bound_is_200(store):
    make, _ = store
    log = make()
    for number in range(205):
        log.record(fields(number))
    assert log.count() == 200
    assert log.recent(limit=1)[0]["task_sid"] == f"WT{204:032x}"


def test_long_values_are_clipped(store):
    make, _ = store
    log = make()
    log.record({"task_sid": "W" * 500, "task_attributes": "x" * 100_000, "answer": "{}"})
    [row] = log.recent()
    assert len(row["task_sid"]) == callback_log.MAX_SID_LENGTH
    assert len(row["task_attributes"]) == callback_log.MAX_ATTRIBUTES_LENGTH
    assert row["reservation_sid"] is None


def test_the_workspace_filter(store):
    make, _ = store
    log = make()
    rows = [
        ("WT-this", {"workspace_sid": WORKSPACE, "workflow_sid": WORKFLOW}),
        ("WT-other", {"workspace_sid": OTHER_WORKSPACE, "workflow_sid": WORKFLOW}),
        # Recorded by an older version, without the workspace: matched by the workflow.
        ("WT-old-this", {"workspace_sid": None, "workflow_sid": WORKFLOW}),
        ("WT-old-other", {"workspace_sid": None, "workflow_sid": "WW" + "8" * 32}),
        ("WT-this-other-workflow", {"workspace_sid": WORKSPACE, "workflow_sid": None}),
    ]
    for task_sid, where in rows:
        log.record({"task_sid": task_sid, "answer": "{}", **where})

    def shown(**filters):
        return [row["task_sid"] for row in log.recent(limit=10, **filters)]

    assert shown() == [task_sid for task_sid, _ in reversed(rows)]
    assert shown(workspace_sid=WORKSPACE, workflow_sid=WORKFLOW) == [
        "WT-this-other-workflow",
        "WT-old-this",
        "WT-this",
    ]
    # Without a workflow, a row without a workspace matches nothing.
    assert shown(workspace_sid=WORKSPACE) == ["WT-this-other-workflow", "WT-this"]
    assert shown(workspace_sid=OTHER_WORKSPACE, workflow_sid=None) == ["WT-other"]
    assert (
        log.recent(limit=1, workspace_sid=WORKSPACE, workflow_sid=WORKFLOW)[0]["task_sid"]
        == "WT-this-other-workflow"
    )


def test_the_workspace_filter_reaches_past_other_workspaces_rows(store):
    make, _ = store
    log = make(keep=500)
    log.record({"task_sid": "WT-this", "workspace_sid": WORKSPACE, "answer": "{}"})
    for number in range(250):
        log.record({"task_sid": f"WT{number}", "workspace_sid": OTHER_WORKSPACE, "answer": "{}"})
    assert [row["task_sid"] for row in log.recent(20, workspace_sid=WORKSPACE)] == ["WT-this"]


def test_recent_sees_every_callback_recorded_before_it(store):
    make, _ = store
    log = make()

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


def test_records_from_other_processes_are_shared(store):
    make, source = store
    log = make()
    body = """
        for number in range(25):
            log.record({"task_sid": f"WT{number:032x}", "answer": "{}"})
        """
    workers = [subprocess.Popen([sys.executable, "-c", run_script(source, body)]) for _ in range(2)]
    for worker in workers:
        assert worker.wait(timeout=60) == 0
    log.record(fields(99))

    assert log.count() == 51
    assert log.recent(limit=1)[0]["task_sid"] == f"WT{99:032x}"


def test_a_forked_child_writes_through_its_own_writer(store):
    _, source = store
    result = run_elsewhere(
        source,
        """
        log.record({"task_sid": "WT-parent-before-fork", "answer": "{}"})
        assert log.flush(timeout=10)
        pid = os.fork()
        if pid == 0:
            # No flush here: the child's writer must write it when the child exits.
            log.record({"task_sid": "WT-child", "answer": "{}"})
            sys.exit(0)
        _, status = os.waitpid(pid, 0)
        log.record({"task_sid": "WT-parent-after-fork", "answer": "{}"})
        rows = log.recent()
        print(json.dumps({
            "child_exit": os.waitstatus_to_exitcode(status),
            "task_sids": [row["task_sid"] for row in rows],
        }))
        """,
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["child_exit"] == 0
    assert outcome["task_sids"] == ["WT-parent-after-fork", "WT-child", "WT-parent-before-fork"]


def test_queued_rows_are_written_at_exit(store):
    make, source = store
    result = run_elsewhere(
        source,
        """
        for number in range(300):
            log.record({"task_sid": f"WT{number:032x}", "answer": "{}"})
        """,
    )
    assert result.returncode == 0, result.stderr
    log = make(keep=500)
    assert log.count() == 200
    assert log.recent(limit=1)[0]["task_sid"] == f"WT{299:032x}"


def test_close_writes_what_is_queued_and_record_starts_again(store):
    make, _ = store
    log = make()
    log.record(fields(1))
    first = log._writer
    log.close()
    assert first is not None and not first.thread.is_alive()
    assert log.count() == 1

    assert log.record(fields(2)) is True
    assert log._writer is not first
    assert log.count() == 2


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"keep": 0}, "keep must be at least 1"),
        ({"queue_size": 0}, "queue_size must be at least 1"),
        ({"max_batch": 0}, "max_batch must be at least 1"),
    ],
)
def test_bad_options_are_refused(store, option, message):
    make, _ = store
    with pytest.raises(ValueError, match=message):
        make(**option)
