"""The quickstart lifecycle over HTTP: a live sandbox calling a signed assignment callback.

A small receiver server checks every callback's X-Twilio-Signature with RequestValidator and
answers what the test tells it to; the sandbox's own threads deliver and apply the answers.
"""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask, Response, request
from twilio.request_validator import RequestValidator

from tests.sandbox.conftest import Live, assert_error_body, live_sandbox, serve

CALLBACK_PARAMETERS = {
    "AccountSid",
    "WorkspaceSid",
    "WorkflowSid",
    "TaskQueueSid",
    "WorkerSid",
    "WorkerAttributes",
    "TaskSid",
    "TaskAttributes",
    "TaskAge",
    "TaskPriority",
    "ReservationSid",
    "Timestamp",
}


@dataclass
class Receiver:
    """What the receiver saw (form, signature valid?) and what it answers next."""

    url: str
    calls: queue.Queue[tuple[dict[str, str], bool]] = field(default_factory=queue.Queue)
    answer: tuple[int, str, str] = (200, "application/json", "{}")

    def next_call(self, timeout: float = 10) -> tuple[dict[str, str], bool]:
        return self.calls.get(timeout=timeout)


def _receiver_app(validator: Callable[[], RequestValidator], receiver: list[Receiver]) -> Flask:
    app = Flask("assignment_receiver")

    @app.post("/assignment_callback")
    def assignment_callback() -> Response:
        url = request.base_url
        if request.query_string:
            url += "?" + request.query_string.decode()
        form = request.form.to_dict()
        valid = validator().validate(url, form, request.headers.get("X-Twilio-Signature", ""))
        receiver[0].calls.put((form, valid))
        status, content_type, body = receiver[0].answer
        return Response(body, status=status, content_type=content_type)

    return app


@dataclass
class Quickstart:
    live: Live
    receiver: Receiver

    @property
    def seeded(self) -> Any:
        return self.live.sandbox.seeded

    @property
    def workspace(self) -> Any:
        return self.live.seeded_workspace

    def set_alice(self, activity: str) -> Any:
        return self.workspace.workers(self.seeded.worker_sids["Alice"]).update(
            activity_sid=self.seeded.activity_sids[activity]
        )

    def wait_for(self, check: Callable[[], bool], timeout: float = 10) -> None:
        """Poll the sandbox until check() holds: delivery happens on its own threads."""
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError("the sandbox did not get there in time")
            time.sleep(0.01)


@pytest.fixture
def quickstart() -> Iterator[Quickstart]:
    holder: list[Receiver] = []
    with live_sandbox(SANDBOX_START_THREADS=True) as live:
        app = _receiver_app(lambda: RequestValidator(live.sandbox.auth_token), holder)
        with serve(app) as root:
            holder.append(Receiver(root + "/assignment_callback"))
            live.seeded_workspace.workflows(live.sandbox.seeded.workflow_sid).update(
                assignment_callback_url=holder[0].url
            )
            yield Quickstart(live, holder[0])


def test_quickstart_walkthrough_with_a_rest_accept(quickstart: Quickstart) -> None:
    workspace, seeded = quickstart.workspace, quickstart.seeded
    alice = seeded.worker_sids["Alice"]
    assert quickstart.set_alice("Offline").activity_name == "Offline"
    task = workspace.tasks.create(attributes=json.dumps({"selected_language": "es"}))
    assert task.assignment_status == "pending"
    assert task.task_queue_friendly_name == "Customer Care Requests - Spanish"

    quickstart.live.clock.advance(3)
    assert quickstart.set_alice("Idle").activity_name == "Idle"
    (reservation,) = workspace.tasks(task.sid).reservations.list()
    assert reservation.reservation_status == "pending" and reservation.worker_name == "Alice"
    assert workspace.workers(alice).fetch().activity_name == "Reserved"

    form, signed = quickstart.receiver.next_call()
    assert signed
    assert set(form) == CALLBACK_PARAMETERS
    assert form["AccountSid"] == quickstart.live.sandbox.account_sid
    assert form["WorkspaceSid"] == seeded.workspace_sid
    assert form["WorkflowSid"] == seeded.workflow_sid
    assert form["TaskQueueSid"] == seeded.task_queue_sids["Customer Care Requests - Spanish"]
    assert form["WorkerSid"] == alice
    assert json.loads(form["WorkerAttributes"]) == {"languages": ["en", "es"]}
    assert form["TaskSid"] == task.sid
    assert json.loads(form["TaskAttributes"]) == {"selected_language": "es"}
    assert (form["TaskAge"], form["TaskPriority"]) == ("3", "0")
    assert form["ReservationSid"] == reservation.sid
    assert int(form["Timestamp"]) == int(quickstart.live.clock.now().timestamp())

    # {} leaves it pending; accept over REST as the quickstart's /accept_reservation does.
    quickstart.live.sandbox.dispatcher.drain(10)
    assert workspace.tasks(task.sid).reservations(reservation.sid).fetch().reservation_status == (
        "pending"
    )
    accepted = (
        workspace.tasks(task.sid)
        .reservations(reservation.sid)
        .update(reservation_status="accepted")
    )
    assert accepted.reservation_status == "accepted" and accepted.worker_name == "Alice"
    assert workspace.tasks(task.sid).fetch().assignment_status == "assigned"
    assert workspace.workers(alice).fetch().activity_name == "Busy"


def test_an_accept_answer_assigns_without_a_rest_call(quickstart: Quickstart) -> None:
    workspace = quickstart.workspace
    quickstart.receiver.answer = (200, "application/json", '{"instruction": "accept"}')
    task = workspace.tasks.create(attributes=json.dumps({"selected_language": "es"}))
    quickstart.set_alice("Idle")
    form, signed = quickstart.receiver.next_call()
    assert signed and form["TaskSid"] == task.sid
    quickstart.wait_for(lambda: workspace.tasks(task.sid).fetch().assignment_status == "assigned")
    (reservation,) = workspace.tasks(task.sid).reservations.list()
    assert reservation.reservation_status == "accepted"
    assert workspace.workers(quickstart.seeded.worker_sids["Alice"]).fetch().activity_name == (
        "Busy"
    )
    assert quickstart.live.sandbox.engine.list_alerts(quickstart.seeded.workspace_sid) == []


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ((200, "text/html", "<p>hi</p>"), 40000),
        ((200, "application/json", "{oops"), 40001),
        ((200, "application/json", '{"hello": "world"}'), 40005),
        ((200, "application/json", '{"instruction": "teleport"}'), 55555),
        ((500, "application/json", "{}"), 11200),
    ],
)
def test_bad_answers_become_alerts(
    quickstart: Quickstart, answer: tuple[int, str, str], code: int
) -> None:
    workspace = quickstart.workspace
    quickstart.receiver.answer = answer
    task = workspace.tasks.create(attributes=json.dumps({"selected_language": "es"}))
    quickstart.set_alice("Idle")
    quickstart.receiver.next_call()
    engine = quickstart.live.sandbox.engine
    quickstart.wait_for(lambda: engine.list_alerts(quickstart.seeded.workspace_sid) != [])
    (alert,) = engine.list_alerts(quickstart.seeded.workspace_sid)
    assert alert["code"] == code
    assert alert["url"] == quickstart.receiver.url
    (reservation,) = workspace.tasks(task.sid).reservations.list()
    assert alert["reservation_sid"] == reservation.sid
    assert reservation.reservation_status == "pending"


def test_a_reservation_left_alone_times_out_on_the_timer_thread(quickstart: Quickstart) -> None:
    workspace = quickstart.workspace
    task = workspace.tasks.create(attributes=json.dumps({"selected_language": "es"}))
    quickstart.set_alice("Idle")
    quickstart.receiver.next_call()
    assert quickstart.live.sandbox.scheduler is not None
    quickstart.live.clock.advance(1200)  # the seeded Task Reservation Timeout
    quickstart.live.sandbox.scheduler.wake()
    quickstart.wait_for(lambda: workspace.tasks(task.sid).fetch().assignment_status == "pending")
    (reservation,) = workspace.tasks(task.sid).reservations.list()
    assert reservation.reservation_status == "timeout"
    alice = workspace.workers(quickstart.seeded.worker_sids["Alice"]).fetch()
    assert alice.activity_name == "Offline"


@pytest.mark.parametrize(
    ("target", "fragment"),
    [
        ({"order_by": "level DESC"}, "order_by"),
        ({"order_by": "worker.level UPWARDS"}, "ASC or DESC"),
        ({"order_by": 3}, "order_by must be a string"),
        ({"skip_if": "workers.available =="}, "skip_if"),
        ({"timeout": -1}, "timeout"),
    ],
)
def test_bad_workflow_targets_are_refused(
    quickstart: Quickstart, target: dict[str, Any], fragment: str
) -> None:
    seeded = quickstart.seeded
    queue_sid = seeded.task_queue_sids["Customer Care Requests - Spanish"]
    configuration = {
        "task_routing": {
            "filters": [{"expression": "1==1", "targets": [{"queue": queue_sid, **target}]}]
        }
    }
    path = f"/v1/Workspaces/{seeded.workspace_sid}/Workflows/{seeded.workflow_sid}"
    response = quickstart.live.http("POST", path, data={"Configuration": json.dumps(configuration)})
    body = assert_error_body(response, 400, 20001)
    assert fragment in body["message"]
    stored = quickstart.workspace.workflows(seeded.workflow_sid).fetch().configuration
    assert "order_by" not in stored and "skip_if" not in stored  # nothing was written


def test_threads_start_once_on_the_first_request_and_stop_on_close() -> None:
    with live_sandbox(SANDBOX_START_THREADS=False) as quiet:
        quiet.v1.workspaces.list()
        assert not quiet.sandbox.started and quiet.sandbox.scheduler is None
    with live_sandbox(SANDBOX_START_THREADS=True) as live:
        sandbox = live.sandbox
        assert not sandbox.started  # nothing runs before a request arrives
        live.v1.workspaces.list()
        assert sandbox.started
        dispatcher, scheduler = sandbox.dispatcher, sandbox.scheduler
        assert scheduler is not None and scheduler.running and scheduler.is_leader
        sandbox.start()
        live.v1.workspaces.list()
        assert (sandbox.dispatcher, sandbox.scheduler) == (dispatcher, scheduler)
        sandbox.stop()
        assert not scheduler.running and not sandbox.started
        assert sandbox.engine.subscribers == () and sandbox.engine.deadline_listeners == ()


def test_alerts_are_listed_like_twilios_monitor_api(quickstart: Quickstart) -> None:
    quickstart.receiver.answer = (200, "application/json", '{"instruction": "teleport"}')
    quickstart.workspace.tasks.create(attributes=json.dumps({"selected_language": "es"}))
    quickstart.set_alice("Idle")
    quickstart.receiver.next_call()
    live = quickstart.live
    quickstart.wait_for(lambda: live.sandbox.engine.list_alerts(None) != [])
    live.client.monitor.base_url = live.base_url
    (alert,) = live.client.monitor.v1.alerts.list(log_level="error")
    assert alert.error_code == "55555" and alert.log_level == "error"
    assert alert.request_url == quickstart.receiver.url
    assert alert.service_sid == quickstart.seeded.workspace_sid
    assert "teleport" in alert.alert_text
    assert live.client.monitor.v1.alerts(alert.sid).fetch().sid == alert.sid
    assert live.client.monitor.v1.alerts.list(log_level="warning") == []

    loud = live.http("GET", "/v1/Alerts", params={"LogLevel": "loud"})
    body = assert_error_body(loud, 400, 20001)
    assert "LogLevel" in body["message"]
    assert_error_body(live.http("GET", "/v1/Alerts/NO" + "0" * 32), 404, 20404)
    assert_error_body(live.http("GET", "/v1/Alerts", auth=("AC" + "0" * 32, "nope")), 401, 20003)
