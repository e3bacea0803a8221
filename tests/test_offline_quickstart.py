"""The quickstart played offline through the server's own endpoints: the app runs the local
sandbox, talks to it over HTTP with the twilio library, and the sandbox calls the app back.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from twilio.rest import Client

from taskrouter_sandbox.clock import ManualClock
from tests.conftest import LiveApp
from tests.servers import gunicorn_app

ROOT = Path(__file__).resolve().parents[1]
SPANISH_QUEUE = "Customer Care Requests - Spanish"


def wait_for(condition, timeout=10.0, interval=0.02):
    """Poll until condition() is truthy (callbacks arrive off the request thread)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {condition.__name__}")


@pytest.fixture
def offline(live_app):
    """The app and its sandbox on a free port, the sandbox on a clock the test moves.

    start(restart=server) stops that server and starts another on its instance folder, so on
    its sandbox database, its clock carried on: the quickstart edits its callback code and
    restarts its server between its two parts."""
    restarted: list[LiveApp] = []

    def start(restart: LiveApp | None = None, **environ: str):
        if restart is None:
            server = live_app({"SANDBOX_CLOCK": ManualClock()}, **environ)
        else:
            restart.close()
            clock = ManualClock(restart.clock.now() + timedelta(seconds=60))
            server = LiveApp(restart.instance_path, {"SANDBOX_CLOCK": clock}, **environ)
            restarted.append(server)
        server.instance_path = Path(server.app.config["INSTANCE_PATH"])
        server.clock = server.sandbox.clock
        return server

    yield start
    for server in restarted:
        server.close()


def test_the_quickstart_offline_in_manual_mode(offline):
    server = offline()
    server.set_activity("Alice", "Offline")
    server.set_activity("Bob", "Idle")

    created = requests.post(f"{server.url}/create_task", timeout=10)
    assert created.status_code == 201, created.text
    task = created.json()
    assert task["assignment_status"] == "pending"
    assert task["task_queue_friendly_name"] == SPANISH_QUEUE
    assert task["attributes"] == {"selected_language": "es"}

    alice = server.set_activity("Alice", "Idle")
    assert alice.activity_name == "Idle"

    # The sandbox called /assignment_callback, signed: the app recorded it only after the
    # signature checked out, and answered {} so the reservation stays pending.
    callback = wait_for(lambda: server.callbacks_for(task["sid"]))[0]
    assert callback["worker_sid"] == server.workers["Alice"]
    assert callback["answer"] == "{}"
    reservation_sid = callback["reservation_sid"]
    reservation = server.workspace.tasks(task["sid"]).reservations(reservation_sid).fetch()
    assert reservation.reservation_status == "pending"
    assert server.workspace.tasks(task["sid"]).fetch().assignment_status == "reserved"
    assert server.workspace.workers(server.workers["Alice"]).fetch().activity_name == "Reserved"
    assert not server.sandbox.engine.list_alerts(None)

    page = requests.get(f"{server.url}/", timeout=10).text
    assert reservation_sid in page

    accepted = requests.get(
        f"{server.url}/accept_reservation",
        params={"TaskSid": task["sid"], "ReservationSid": reservation_sid},
        timeout=10,
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json() == {
        "task_sid": task["sid"],
        "reservation_sid": reservation_sid,
        "reservation_status": "accepted",
        "worker_sid": server.workers["Alice"],
        "worker_name": "Alice",
    }
    assert server.workspace.tasks(task["sid"]).fetch().assignment_status == "assigned"
    assert server.workspace.workers(server.workers["Alice"]).fetch().activity_name == "Busy"

    # Accepting twice is refused with the hint, not a 500.
    again = requests.get(
        f"{server.url}/accept_reservation",
        params={"TaskSid": task["sid"], "ReservationSid": reservation_sid},
        timeout=10,
    )
    assert again.status_code == 400
    assert "no longer pending" in again.json()["error"]["message"]

    # Bob was available all along but speaks no Spanish.
    assert server.workspace.workers(server.workers["Bob"]).reservations.list() == []


def test_the_quickstart_offline_in_accept_mode(offline):
    server = offline(ASSIGNMENT_MODE="accept")
    server.set_activity("Alice", "Idle")

    created = requests.post(f"{server.url}/create_task", timeout=10)
    assert created.status_code == 201, created.text
    task_sid = created.json()["sid"]

    def assigned():
        return server.workspace.tasks(task_sid).fetch().assignment_status == "assigned"

    wait_for(assigned)
    callback = server.callbacks_for(task_sid)[0]
    assert callback["answer"] == '{"instruction": "accept"}'
    reservations = server.workspace.tasks(task_sid).reservations.list()
    assert [(r.reservation_status, r.worker_name) for r in reservations] == [("accepted", "Alice")]
    assert server.workspace.workers(server.workers["Alice"]).fetch().activity_name == "Busy"


def _accept_over_rest(server, task_sid: str, reservation_sid: str) -> requests.Response:
    return requests.get(
        f"{server.url}/accept_reservation",
        params={"TaskSid": task_sid, "ReservationSid": reservation_sid},
        timeout=10,
    )


def test_both_parts_of_the_quickstart_back_to_back_on_one_database(offline):
    """The pages in order, the first task never completed: Twilio reserves the second task for
    Alice as soon as she is Idle again, and the callback's accept assigns it."""
    server = offline()
    alice = server.workers["Alice"]

    # Part 1 (Create a Task, Accept a Reservation using the REST API): the callback answers {}.
    server.set_activity("Alice", "Offline")
    created = requests.post(f"{server.url}/create_task", timeout=10)
    assert created.status_code == 201, created.text
    first = created.json()["sid"]
    assert created.json()["assignment_status"] == "pending"
    server.set_activity("Alice", "Idle")
    callback = wait_for(lambda: server.callbacks_for(first))[0]
    assert callback["answer"] == "{}"
    accepted = _accept_over_rest(server, first, callback["reservation_sid"])
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["reservation_status"] == "accepted"
    assert server.workspace.tasks(first).fetch().assignment_status == "assigned"
    assert server.workspace.workers(alice).fetch().activity_name == "Busy"

    # Part 2 (Accept a Reservation using Assignment Callback Instructions): the callback code
    # now answers accept, and the server is started again over the same database.
    server = offline(restart=server, ASSIGNMENT_MODE="accept")
    assert server.workers["Alice"] == alice
    assert server.workspace.tasks(first).fetch().assignment_status == "assigned"
    assert server.set_activity("Alice", "Offline").activity_name == "Offline"
    created = requests.post(f"{server.url}/create_task", timeout=10)
    assert created.status_code == 201, created.text
    second = created.json()["sid"]
    assert created.json()["assignment_status"] == "pending"
    server.set_activity("Alice", "Idle")

    def assigned():
        return server.workspace.tasks(second).fetch().assignment_status == "assigned"

    wait_for(assigned)
    (callback,) = server.callbacks_for(second)
    assert callback["answer"] == '{"instruction": "accept"}'
    reservations = server.workspace.tasks(second).reservations.list()
    assert [(r.reservation_status, r.worker_name) for r in reservations] == [("accepted", "Alice")]
    assert server.workspace.workers(alice).fetch().activity_name == "Busy"
    # The first task was never completed, and is still hers.
    assert server.workspace.tasks(first).fetch().assignment_status == "assigned"
    assert not server.sandbox.engine.list_alerts(None)


def test_the_not_pending_hint_leads_to_a_new_reservation_after_an_accept(offline):
    server = offline()
    server.set_activity("Alice", "Idle")
    first = requests.post(f"{server.url}/create_task", timeout=10).json()["sid"]
    reservation_sid = wait_for(lambda: server.callbacks_for(first))[0]["reservation_sid"]
    assert _accept_over_rest(server, first, reservation_sid).status_code == 200
    again = _accept_over_rest(server, first, reservation_sid)
    assert again.status_code == 400
    assert "Set the worker available again (Alice to Idle)" in again.json()["error"]["message"]

    # Doing what the hint says: Alice Idle (her task still assigned), then another task.
    server.set_activity("Alice", "Idle")
    second = requests.post(f"{server.url}/create_task", timeout=10).json()["sid"]
    callback = wait_for(lambda: server.callbacks_for(second))[0]
    assert callback["worker_sid"] == server.workers["Alice"]
    reservation = server.workspace.tasks(second).reservations(callback["reservation_sid"]).fetch()
    assert reservation.reservation_status == "pending"
    assert server.workspace.workers(server.workers["Alice"]).fetch().activity_name == "Reserved"


def test_a_reservation_left_alone_times_out(offline):
    server = offline()
    server.set_activity("Alice", "Idle")
    task_sid = requests.post(f"{server.url}/create_task", timeout=10).json()["sid"]
    reservation_sid = wait_for(lambda: server.callbacks_for(task_sid))[0]["reservation_sid"]

    # The quickstart's workflow gives a reservation 1200 s; the sandbox's clock is ours.
    server.clock.advance(1201)
    server.sandbox.engine.fire_due()

    reservation = server.workspace.tasks(task_sid).reservations(reservation_sid).fetch()
    assert reservation.reservation_status == "timeout"
    assert server.workspace.tasks(task_sid).fetch().assignment_status == "pending"
    assert server.workspace.workers(server.workers["Alice"]).fetch().activity_name == "Offline"

    late = requests.get(
        f"{server.url}/accept_reservation",
        params={"TaskSid": task_sid, "ReservationSid": reservation_sid},
        timeout=10,
    )
    assert late.status_code == 400
    assert "Set the worker available again" in late.json()["error"]["message"]


def test_gunicorn_runs_the_offline_quickstart_without_deadlock(tmp_path):
    """The README's gunicorn command: the app calls its own sandbox while serving a request,
    and the sandbox calls the app back, across two worker processes."""
    account_sid, auth_token = "AC" + "ab" * 16, "sandbox-token-for-this-test"
    with gunicorn_app(
        tmp_path,
        TASKROUTER_BACKEND="sandbox",
        TWILIO_ACCOUNT_SID=account_sid,
        TWILIO_AUTH_TOKEN=auth_token,
        ASSIGNMENT_MODE="accept",
    ) as server:
        client = Client(
            account_sid, auth_token, environment={"TWILIO_EDGE": "", "TWILIO_REGION": ""}
        )
        client.taskrouter.base_url = f"{server.url}/sandbox"
        workspace = client.taskrouter.v1.workspaces.list()[0]
        workspace = client.taskrouter.v1.workspaces(workspace.sid)
        alice = workspace.workers.list(friendly_name="Alice")[0]
        idle = workspace.activities.list(friendly_name="Idle")[0]
        workspace.workers(alice.sid).update(activity_sid=idle.sid)

        created = requests.post(f"{server.url}/create_task", timeout=10)
        assert created.status_code == 201, created.text
        task_sid = created.json()["sid"]

        def assigned():
            return workspace.tasks(task_sid).fetch().assignment_status == "assigned"

        wait_for(assigned)
        reservations = workspace.tasks(task_sid).reservations.list()
        assert [r.reservation_status for r in reservations] == ["accepted"]
