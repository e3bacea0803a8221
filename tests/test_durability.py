"""kill -9 of the real server while assignment callbacks are in flight loses nothing: every task
it answered 201 for is there after a restart with its events (none doubled), no task is
accepted twice, and every callback it
owed arrives after the restart (taskrouter_sandbox/outbox.py), long before the reservations' 1,200 s
timeout would have freed them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from tests.callback_receiver import CallbackReceiver

ROOT = Path(__file__).resolve().parents[1]
WORKERS = 4
# Longer than the kill takes, shorter than the dispatcher's 5 s timeout: the callbacks are
# still waiting for their answers when the server dies.
HOLD = 3.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """`flask run` over the instance folder, in its own process group, output to a file."""

    def __init__(self, instance: Path, log: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
        environ = {name: os.environ[name] for name in keep if name in os.environ}
        environ.update(INSTANCE_PATH=str(instance), PORT=str(self.port))
        self._log = open(log, "a")  # noqa: SIM115 (closed in kill)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "app", "run", "--port", str(self.port)],
            cwd=ROOT,
            env=environ,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self) -> None:
        # The first request also starts the sandbox's delivery (and its owed callbacks).
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "the server exited"
            try:
                requests.get(f"{self.url}/healthz", timeout=2).raise_for_status()
                return
            except requests.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("the server did not start")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
        self.process.wait(timeout=30)
        self._log.close()


def _settings(database: Path) -> dict[str, str]:
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT key, value FROM settings").fetchall()
    connection.close()
    return dict(rows)


def _query(database: Path, sql: str, params: tuple = ()) -> list[tuple]:
    connection = sqlite3.connect(database)
    try:
        return connection.execute(sql, params).fetchall()
    finally:
        connection.close()


def test_a_kill_9_with_callbacks_in_flight_loses_no_task_and_no_callback(tmp_path):
    instance = tmp_path / "instance"
    database = instance / "sandbox.sqlite3"
    log = tmp_path / "server.log"
    cleanup: list = []
    with CallbackReceiver(delay=HOLD) as receiver:
        server = Server(instance, log)
        try:
            server.wait_ready()
            settings = _settings(database)
            seed = json.loads(settings["seed"])
            auth = (settings["account_sid"], settings["auth_token"])
            api = f"{server.url}/sandbox/v1/Workspaces/{seed['workspace_sid']}"
            session = requests.Session()
            session.auth = auth
            cleanup.append(session.close)
            answer = session.post(
                f"{api}/Workflows/{seed['workflow_sid']}",
                data={"AssignmentCallbackUrl": receiver.url},
                timeout=10,
            )
            assert answer.status_code == 200, answer.text
            for index in range(WORKERS):
                answer = session.post(
                    f"{api}/Workers",
                    data={
                        "FriendlyName": f"Durable {index}",
                        "Attributes": json.dumps({"languages": ["es"]}),
                        "ActivitySid": seed["activity_sids"]["Idle"],
                    },
                    timeout=10,
                )
                assert answer.status_code == 201, answer.text

            # Tasks keep coming while the server dies: each 201 is a promise to keep.
            created: list[str] = []
            stop = threading.Event()

            def create_tasks() -> None:
                with requests.Session() as client:
                    client.auth = auth
                    while not stop.is_set():
                        try:
                            answer = client.post(
                                f"{api}/Tasks",
                                data={
                                    "WorkflowSid": seed["workflow_sid"],
                                    "Attributes": json.dumps({"selected_language": "es"}),
                                },
                                timeout=5,
                            )
                        except requests.RequestException:
                            return  # the server is gone
                        if answer.status_code == 201:
                            created.append(answer.json()["sid"])
                        time.sleep(0.02)

            creator = threading.Thread(target=create_tasks)
            creator.start()
            try:
                # The new workers are reserved, their callbacks wait for answers, and more
                # tasks queue behind them.
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and not (
                    len(receiver.calls) >= WORKERS and len(created) >= 3 * WORKERS
                ):
                    time.sleep(0.01)
                assert len(receiver.calls) >= WORKERS, "the callbacks never came"
                server.kill()
            finally:
                stop.set()
                creator.join(timeout=10)
            killed_at = time.monotonic()
            in_flight = set(receiver.reservations())
            owed = {
                sid
                for (sid,) in _query(
                    database,
                    "SELECT o.reservation_sid FROM owed_callbacks o JOIN reservations r"
                    " ON r.sid = o.reservation_sid WHERE r.reservation_status = 'pending'",
                )
            }
            # Not answered before the kill, so every one of them is still owed.
            assert in_flight <= owed, (in_flight, owed)
            assert created

            receiver.delay = 0.0
            server = Server(instance, log)
            server.wait_ready()
            assert receiver.wait_for(
                lambda calls: owed <= {c.reservation_sid for c in calls if c.at > killed_at}, 10
            ), f"owed {owed}, sent after the restart {receiver.calls}"
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                statuses = {
                    sid: status
                    for sid, status in _query(
                        database, "SELECT sid, reservation_status FROM reservations"
                    )
                    if sid in owed
                }
                if set(statuses.values()) == {"accepted"}:
                    break
                time.sleep(0.05)
            assert set(statuses.values()) == {"accepted"}, statuses

            for sid in created:
                answer = session.get(
                    f"{server.url}/sandbox/v1/Workspaces/{seed['workspace_sid']}/Tasks/{sid}",
                    timeout=10,
                )
                assert answer.status_code == 200, (sid, answer.text)
                # Its events too, wherever they were when the server died (in the event
                # journal, or moved into the events): task.created for every 201.
                answer = session.get(
                    f"{server.url}/sandbox/v1/Workspaces/{seed['workspace_sid']}/Events",
                    params={"TaskSid": sid, "Minutes": 60, "PageSize": 100},
                    timeout=10,
                )
                assert answer.status_code == 200, (sid, answer.text)
                types = [event["event_type"] for event in answer.json()["events"]]
                assert types.count("task.created") == 1, (sid, types)
            # Every event once: none doubled by a move the kill cut short.
            assert _query(database, "SELECT sid FROM events GROUP BY sid HAVING COUNT(*) > 1") == []
            doubles = _query(
                database,
                "SELECT task_sid, COUNT(*) FROM reservations WHERE reservation_status"
                " IN ('accepted', 'completed', 'wrapping') GROUP BY task_sid HAVING COUNT(*) > 1",
            )
            assert doubles == []
            # Once each, after the restart as before it: at most once per reservation.
            after = [c.reservation_sid for c in receiver.calls if c.at > killed_at]
            assert len(after) == len(set(after))
            # Answered, so owed no more.
            assert not owed & {
                sid for (sid,) in _query(database, "SELECT reservation_sid FROM owed_callbacks")
            }
        finally:
            server.kill(signal.SIGTERM)
            for close in cleanup:
                close()
