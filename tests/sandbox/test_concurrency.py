"""Many REST clients at once against one sandbox on a database file: routing's invariants hold.

Threads create tasks, toggle workers and accept whatever they are offered; afterwards no
single-tasking worker holds two offers, no task is assigned twice and no task is lost.
"""

from __future__ import annotations

import os
import random
import threading
from pathlib import Path
from typing import Any

import pytest

from taskrouter_sandbox import Sandbox
from tests.sandbox.conftest import Live, live_sandbox, routing

THREADS = 6
ROUNDS = 15
WORKERS = 5


def _setup(live: Live, max_reserved_workers: int) -> tuple[str, dict[str, str], list[str]]:
    workspace = live.new_workspace("Busy floor")
    context = live.v1.workspaces(workspace.sid)
    activities = {a.friendly_name: a.sid for a in context.activities.list()}
    for name in ("Reserved", "Busy"):
        activities[name] = context.activities.create(friendly_name=name).sid
    queue = context.task_queues.create(
        friendly_name="Everyone",
        reservation_activity_sid=activities["Reserved"],
        assignment_activity_sid=activities["Busy"],
        max_reserved_workers=max_reserved_workers,
    )
    context.workflows.create(friendly_name="Flow", configuration=routing(default=queue.sid))
    workers = [
        context.workers.create(friendly_name=f"Agent {n}", activity_sid=activities["Offline"]).sid
        for n in range(WORKERS)
    ]
    return workspace.sid, activities, workers


def _client_work(
    live: Live,
    workspace_sid: str,
    activities: dict[str, str],
    workers: list[str],
    seed: int,
    created: list[str],
    errors: list[BaseException],
) -> None:
    chance = random.Random(seed)
    base = f"/v1/Workspaces/{workspace_sid}"
    try:
        for _ in range(ROUNDS):
            action = chance.random()
            if action < 0.4:
                response = live.http("POST", f"{base}/Tasks", data={"Attributes": "{}"})
                assert response.status_code == 201, response.text
                created.append(response.json()["sid"])
            elif action < 0.7:
                worker_sid = chance.choice(workers)
                activity = chance.choice(["Available", "Available", "Offline"])
                response = live.http(
                    "POST",
                    f"{base}/Workers/{worker_sid}",
                    data={"ActivitySid": activities[activity]},
                )
                assert response.status_code == 200, response.text
            else:
                worker_sid = chance.choice(workers)
                listed = live.http(
                    "GET",
                    f"{base}/Workers/{worker_sid}/Reservations",
                    params={"ReservationStatus": "pending"},
                ).json()["reservations"]
                for reservation in listed:
                    response = live.http(
                        "POST",
                        f"{base}/Tasks/{reservation['task_sid']}/Reservations/{reservation['sid']}",
                        data={"ReservationStatus": "accepted"},
                    )
                    # Another client may have moved it on first (a clear 400), or another
                    # worker's offer of the same task won (410, rescinded): never a 500.
                    assert response.status_code in (200, 400, 410), response.text
                    if response.status_code == 200:
                        live.http(
                            "POST",
                            f"{base}/Tasks/{reservation['task_sid']}",
                            data={"AssignmentStatus": "completed"},
                        )
    except BaseException as error:  # reported by the test
        errors.append(error)


def _rows(live: Live, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    with live.sandbox.store.read() as tx:
        return tx.all(sql, params)


# 3: each task is offered to several workers at once, who race to accept it.
@pytest.mark.parametrize("max_reserved_workers", [1, 3])
def test_invariants_hold_under_concurrent_clients(tmp_path: Path, max_reserved_workers) -> None:
    with live_sandbox(str(tmp_path / "sandbox.sqlite3")) as live:
        workspace_sid, activities, workers = _setup(live, max_reserved_workers)
        created: list[str] = []
        errors: list[BaseException] = []
        threads = [
            threading.Thread(
                target=_client_work,
                args=(live, workspace_sid, activities, workers, seed, created, errors),
            )
            for seed in range(THREADS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in threads)
        assert errors == []
        assert created

        # A single-tasking worker never holds two offers waiting for an answer (an accepted
        # task does not keep one made available again from the next offer).
        doubled = _rows(
            live,
            "SELECT worker_sid, count(*) AS n FROM reservations"
            " WHERE reservation_status = 'pending' GROUP BY worker_sid HAVING n > 1",
        )
        assert doubled == []
        # A task is never assigned twice.
        twice = _rows(
            live,
            "SELECT task_sid, count(*) AS n FROM reservations"
            " WHERE reservation_status IN ('accepted', 'wrapping', 'completed')"
            " GROUP BY task_sid HAVING n > 1",
        )
        assert twice == []
        # No task is lost: every one exists, and its status agrees with its reservations.
        tasks = {
            row["sid"]: row
            for row in _rows(
                live,
                "SELECT sid, assignment_status FROM tasks WHERE workspace_sid = ?",
                (workspace_sid,),
            )
        }
        assert set(created) <= set(tasks)
        for task_sid, task in tasks.items():
            statuses = [
                row["reservation_status"]
                for row in _rows(
                    live,
                    "SELECT reservation_status FROM reservations WHERE task_sid = ?",
                    (task_sid,),
                )
            ]
            if task["assignment_status"] == "reserved":
                assert "pending" in statuses, (task_sid, statuses)
            elif task["assignment_status"] == "pending":
                assert "pending" not in statuses and "accepted" not in statuses
            elif task["assignment_status"] == "assigned":
                assert statuses.count("accepted") == 1, (task_sid, statuses)
            elif task["assignment_status"] == "completed":
                assert statuses.count("completed") == 1
        # Nothing is left waiting while a free, available worker could take it.
        waiting = [sid for sid, task in tasks.items() if task["assignment_status"] == "pending"]
        idle = _rows(
            live,
            "SELECT k.sid FROM workers k WHERE k.workspace_sid = ? AND k.available = 1"
            " AND NOT EXISTS (SELECT 1 FROM reservations r WHERE r.worker_sid = k.sid"
            " AND r.reservation_status IN ('pending', 'accepted'))",
            (workspace_sid,),
        )
        assert not (waiting and idle), (waiting, idle)


def test_forked_processes_share_the_database_file(tmp_path: Path) -> None:
    """Like gunicorn workers forked from a parent that already opened the sandbox."""
    sandbox = Sandbox(str(tmp_path / "sandbox.sqlite3"))
    try:
        workspace_sid = sandbox.seeded.workspace_sid
        sandbox.engine.create_task(workspace_sid, attributes='{"selected_language": "es"}')
        children = []
        for _ in range(2):
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child
                code = 0
                try:
                    for _ in range(20):
                        sandbox.engine.create_task(
                            workspace_sid, attributes='{"selected_language": "en"}'
                        )
                    # os._exit skips the exit's commit of the writes still behind.
                    sandbox.store.sync()
                except BaseException:
                    code = 1
                os._exit(code)
            children.append(pid)
        for _ in range(20):
            sandbox.engine.create_task(workspace_sid, attributes='{"selected_language": "es"}')
        assert [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children] == [0, 0]
        with sandbox.store.read() as tx:
            assert tx.scalar("SELECT count(*) FROM tasks") == 61
            assert tx.scalar("PRAGMA integrity_check") == "ok"
    finally:
        sandbox.close()
