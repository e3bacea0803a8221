"""The event bridge's websocket, from a plain websocket client: what Twilio's event bridge
sends a worker's socket as the Worker SDK reads it (twilio-taskrouter 2.1.1,
lib/signaling/EventBridgeSignaling.js): "init" first, blank heartbeats (the SDK drops a socket
silent for 30 s: https://www.twilio.com/docs/taskrouter/js-sdk-v2/reconnect), and the worker's
own events as {"event_type", "payload"}. The SDK itself runs against it in test_worker_sdk*.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
import simple_websocket

from taskrouter_sandbox.domain.values import Paging
from taskrouter_sandbox.eventbridge import hub, tokens
from taskrouter_sandbox.runtime import Sandbox
from taskrouter_sandbox.testing import TaskRouterSandbox
from tests.websocket_client import WebSocketClient

WAIT = 5.0  # seconds: a bound, never a pause
# A websocket upgrade's headers, for a request that is refused before it.
UPGRADE = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
}


@pytest.fixture
def box() -> Iterator[TaskRouterSandbox]:
    with TaskRouterSandbox(transport="http") as sandbox:
        yield sandbox


def connect(
    box: TaskRouterSandbox, worker: str = "Alice", token: str | None = None, **query: str
) -> WebSocketClient:
    params = {
        "token": token or box.worker_token(worker),
        "closeExistingSessions": "false",
        "clientVersion": "2.1.1",
        **query,
    }
    return WebSocketClient.connect(f"{box.event_bridge['wsServer']}?{urlencode(params)}")


def next_event(ws: WebSocketClient, event_type: str, timeout: float = WAIT) -> dict[str, Any]:
    """The next message of this type, skipping heartbeats and other events."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        message = ws.receive(timeout=left)
        if message is None:
            break
        if message.strip() and (event := json.loads(message))["event_type"] == event_type:
            return event
    pytest.fail(f"no {event_type} within {timeout} s")


def until(condition: Callable[[], bool]) -> None:
    """Poll for something the server does on its own threads, within WAIT."""
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "it did not happen in time"
        time.sleep(0.02)


def test_a_socket_opens_with_init_naming_the_worker_and_the_tokens_lifetime(box) -> None:
    ws = connect(box, token=box.worker_token("Alice", ttl=600))
    try:
        init = json.loads(ws.receive(timeout=WAIT))
        assert init["event_type"] == "init"
        payload = init["payload"]
        assert payload["channel_id"] == box.workers["Alice"]
        assert payload["account_sid"] == box.account_sid
        assert payload["workspace_sid"] == box.workspace_sid
        # Milliseconds: the SDK fires tokenExpired at token_lifetime - 5000.
        assert 590_000 <= payload["token_lifetime"] <= 600_000
    finally:
        ws.close()


@pytest.mark.parametrize("token", ["", "not-a-token"])
def test_a_bad_token_is_refused_before_the_upgrade(box, token: str) -> None:
    url = box.event_bridge["ebServer"] + "?" + urlencode({"token": token})
    response = requests.get(url, headers=UPGRADE, timeout=WAIT)
    assert response.status_code == 401
    body = response.json()
    assert body["code"] == 20101 and "Invalid access token" in body["message"]


def test_a_plain_get_of_the_sockets_path_says_what_it_is(box) -> None:
    response = requests.get(box.event_bridge["ebServer"], timeout=WAIT)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 20001 and "Upgrade: websocket" in body["message"]


def test_a_token_for_a_worker_not_in_its_workspace_is_refused_before_the_upgrade(box) -> None:
    token = tokens.mint(
        box.account_sid,
        box.sandbox.api_key_sid,
        box.sandbox.api_key_secret,
        box.workspace_sid,
        "WK" + "0" * 32,
    )
    url = box.event_bridge["ebServer"] + "?" + urlencode({"token": token})
    response = requests.get(url, headers=UPGRADE, timeout=WAIT)
    assert response.status_code == 403
    assert "is not in workspace" in response.json()["message"]


def test_a_reservation_made_over_rest_reaches_its_workers_socket(box) -> None:
    ws = connect(box)
    try:
        next_event(ws, "init")
        box.workspace.workers(box.workers["Alice"]).update(activity_sid=box.activities["Idle"])
        activity = next_event(ws, "worker.activity.update")["payload"]
        assert activity["activity_sid"] == box.activities["Idle"]
        assert activity["activity_name"] == "Idle"
        started = time.monotonic()
        task = box.workspace.tasks.create(
            workflow_sid=box.workflow_sid, attributes=json.dumps({"selected_language": "es"})
        )
        created = next_event(ws, "reservation.created")
        assert time.monotonic() - started < 1.0
        payload = created["payload"]
        assert payload["reservation_status"] == "pending"
        assert payload["worker_sid"] == box.workers["Alice"]
        assert payload["task"]["sid"] == task.sid
        assert payload["task"]["assignment_status"] == "reserved"
        # The task's own changes go to the worker who holds a reservation of it.
        box.workspace.tasks(task.sid).update(
            attributes=json.dumps({"selected_language": "es", "vip": True})
        )
        updated = next_event(ws, "task.updated")["payload"]
        assert json.loads(updated["attributes"])["vip"] is True
        box.workspace.tasks(task.sid).update(assignment_status="canceled", reason="gone")
        canceled = next_event(ws, "reservation.canceled")["payload"]
        assert canceled["sid"] == payload["sid"] and canceled["reservation_status"] == "canceled"
    finally:
        ws.close()


def test_another_workers_events_do_not_reach_a_socket(box) -> None:
    bob = connect(box, "Bob")
    try:
        next_event(bob, "init")
        box.workspace.workers(box.workers["Alice"]).update(activity_sid=box.activities["Idle"])
        box.workspace.workers(box.workers["Bob"]).update(
            attributes=json.dumps({"languages": ["en"], "desk": 2})
        )
        # Bob's own change comes; Alice's, made before it, never did.
        event = next_event(bob, "worker.attributes.update")
        assert event["payload"]["sid"] == box.workers["Bob"]
    finally:
        bob.close()


def test_events_committed_by_another_process_reach_the_socket(box, tmp_path) -> None:
    """A gunicorn worker other than the one holding the socket serves the REST call: the
    feed reads the events table, which every process writes."""
    database = str(tmp_path / "shared.sqlite3")
    with TaskRouterSandbox(transport="http", database=database) as shared:
        ws = connect(shared)
        other = Sandbox(database)  # another engine on the same file, as another process has
        try:
            next_event(ws, "init")
            other.engine.update_worker(
                shared.workspace_sid, shared.workers["Alice"], attributes='{"desk": 9}'
            )
            payload = next_event(ws, "worker.attributes.update", timeout=hub.POLL + WAIT)["payload"]
            assert json.loads(payload["attributes"]) == {"desk": 9}
        finally:
            ws.close()
            other.close()


def test_heartbeats_keep_a_quiet_socket_alive(box, monkeypatch) -> None:
    monkeypatch.setattr(hub, "HEARTBEAT", 0.2)
    ws = connect(box)
    try:
        next_event(ws, "init")
        beats = [ws.receive(timeout=WAIT) for _ in range(2)]
        assert beats == [" ", " "]  # blank: the SDK counts it as a beat and reads no event
    finally:
        ws.close()


def test_a_new_session_with_close_existing_sessions_closes_the_old_one(box) -> None:
    first = connect(box)
    next_event(first, "init")
    second = connect(box, closeExistingSessions="true")
    try:
        next_event(second, "init")
        with pytest.raises(simple_websocket.ConnectionClosed) as closed:
            while True:
                first.receive(timeout=WAIT)
        assert closed.value.reason == hub.REPLACED
    finally:
        second.close()


def test_the_socket_closes_when_its_token_expires(box) -> None:
    ws = connect(box, token=box.worker_token("Alice", ttl=2))
    next_event(ws, "init")
    started = time.monotonic()
    with pytest.raises(simple_websocket.ConnectionClosed) as closed:
        while time.monotonic() - started < WAIT:
            ws.receive(timeout=WAIT)
    assert closed.value.reason == hub.EXPIRED
    assert time.monotonic() - started < 3.5


@pytest.mark.parametrize(
    ("flag", "activity"), [(None, "Offline"), ("true", "Offline"), ("false", "Idle")]
)
def test_a_worker_whose_last_socket_closes_goes_offline_unless_asked_not_to(
    box, flag, activity
) -> None:
    worker = box.workspace.workers(box.workers["Alice"])
    worker.update(activity_sid=box.activities["Idle"])
    query = {} if flag is None else {"setWorkerOfflineIfDisconnected": flag}
    first, second = connect(box, **query), connect(box, **query)
    next_event(first, "init")
    next_event(second, "init")
    bridge = box.app.extensions["eventbridge"]["sandbox_eventbridge"]
    first.close()
    until(lambda: bridge.hub.sockets(box.workers["Alice"]) == 1)
    assert worker.fetch().activity_name == "Idle"  # another socket is still open
    second.close()
    until(lambda: bridge.hub.sockets(box.workers["Alice"]) == 0)
    until(lambda: worker.fetch().activity_name == activity)


def test_an_event_carries_the_status_it_recorded_though_the_resource_moved_on(
    tmp_path, monkeypatch
) -> None:
    """Another process creates and accepts a reservation before this one's feed looks: the
    socket still hears reservation.created with "pending", then reservation.accepted."""
    monkeypatch.setattr(hub, "POLL", 30.0)  # only a commit of this process wakes the feed
    database = str(tmp_path / "shared.sqlite3")
    with TaskRouterSandbox(transport="http", database=database) as shared:
        ws = connect(shared)
        other = Sandbox(database)
        try:
            next_event(ws, "init")
            engine, ws_sid = other.engine, shared.workspace_sid
            engine.update_worker(
                ws_sid, shared.workers["Alice"], activity_sid=shared.activities["Idle"]
            )
            task = engine.create_task(
                ws_sid, workflow_sid=shared.workflow_sid, attributes='{"selected_language": "es"}'
            )
            (reservation,) = engine.list_reservations(ws_sid, Paging(), task_sid=task["sid"]).rows
            engine.update_reservation(
                ws_sid, reservation["sid"], task_sid=task["sid"], reservation_status="accepted"
            )
            # A change committed here wakes the feed, which then reads all of them.
            shared.workspace.workers(shared.workers["Bob"]).update(
                attributes='{"languages": ["en"]}'
            )
            created = next_event(ws, "reservation.created")["payload"]
            assert created["reservation_status"] == "pending"
            assert created["task"]["assignment_status"] == "assigned"  # the task as it is now
            accepted = next_event(ws, "reservation.accepted")["payload"]
            assert accepted["reservation_status"] == "accepted"
        finally:
            ws.close()
            other.close()
