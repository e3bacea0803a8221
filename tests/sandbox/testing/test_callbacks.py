"""Callbacks to the code under test's WSGI app, served by serve_callbacks, in both transports.

Twilio's pages behind these tests:
- Handling Assignment Callbacks (taskrouter/handle-assignment-callbacks): the POST's
  parameters, the answers (accept, reject, an empty document leaving the reservation
  pending), the fallback URL tried when the primary fails.
- Webhooks security (usage/webhooks/webhooks-security): X-Twilio-Signature, HMAC-SHA1 of the
  URL and the sorted POST parameters with the auth token, as RequestValidator checks it; the
  I-Twilio-Idempotency-Token header.
- Debugger errors 11200 (HTTP retrieval failure), 40000 (Content-Type of 'application/json'
  not set) and 40001 (Assignment Instruction response is not valid JSON).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from flask import Response, jsonify

from taskrouter_sandbox.callbacks.delivery import IDEMPOTENCY_HEADER, USER_AGENT
from taskrouter_sandbox.testing import TaskRouterSandbox
from tests.sandbox.conftest import serve
from tests.sandbox.testing.conftest import CallbackApp, answering, create_task, go_idle


def _alert_codes(sandbox: TaskRouterSandbox) -> list[int]:
    return [int(alert.error_code) for alert in sandbox.alerts]


def _reservation(sandbox: TaskRouterSandbox, task_sid: str) -> Any:
    (reservation,) = sandbox.workspace.tasks(task_sid).reservations.list()
    return reservation


def test_an_accepting_callback_is_signed_as_twilio_signs_and_its_answer_applied(
    sandbox: TaskRouterSandbox,
) -> None:
    app = answering(sandbox)
    go_idle(sandbox, "Alice")
    task = create_task(sandbox, "es")

    assert sandbox.workspace.tasks(task.sid).fetch().assignment_status == "assigned"
    (received,) = app.of_kind("assignment")
    assert received["valid"], "the signature must validate over request.url and request.form"
    assert received["url"] == "http://app.test/assignment"
    assert received["headers"]["User-Agent"] == USER_AGENT
    assert received["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert received["headers"][IDEMPOTENCY_HEADER]
    form = received["form"]
    assert form["TaskSid"] == task.sid
    assert form["WorkerSid"] == sandbox.workers["Alice"]
    assert form["AccountSid"] == sandbox.account_sid
    assert form["WorkspaceSid"] == sandbox.workspace_sid
    (delivery,) = sandbox.callbacks
    assert (delivery.kind, delivery.status_code, delivery.instruction) == (
        "assignment",
        200,
        "accept",
    )
    assert delivery.reservation_sid == form["ReservationSid"]
    assert _alert_codes(sandbox) == []


def test_a_rejecting_answer_rejects_the_reservation(sandbox: TaskRouterSandbox) -> None:
    answering(sandbox, lambda form: jsonify(instruction="reject"))
    go_idle(sandbox, "Alice")
    task = create_task(sandbox, "es")

    assert _reservation(sandbox, task.sid).reservation_status == "rejected"
    assert sandbox.workspace.tasks(task.sid).fetch().assignment_status == "pending"
    assert "reservation.rejected" in sandbox.event_types


def test_an_empty_answer_leaves_the_reservation_pending_without_an_alert(
    sandbox: TaskRouterSandbox,
) -> None:
    answering(sandbox, lambda form: jsonify({}))
    go_idle(sandbox, "Alice")
    task = create_task(sandbox, "es")

    assert _reservation(sandbox, task.sid).reservation_status == "pending"
    assert sandbox.callbacks[-1].instruction is None
    assert _alert_codes(sandbox) == []


def test_the_fallback_url_answers_when_the_primary_fails(sandbox: TaskRouterSandbox) -> None:
    app = answering(sandbox, lambda form: Response("down", status=500), fallback=True)
    go_idle(sandbox, "Alice")
    task = create_task(sandbox, "es")

    assert sandbox.workspace.tasks(task.sid).fetch().assignment_status == "assigned"
    (primary,), (fallback,) = app.of_kind("assignment"), app.of_kind("fallback")
    assert primary["valid"] and fallback["valid"]
    # The same news twice: one token for both.
    assert primary["headers"][IDEMPOTENCY_HEADER] == fallback["headers"][IDEMPOTENCY_HEADER]
    assert [(d.status_code, d.fallback) for d in sandbox.callbacks] == [(500, False), (200, True)]
    assert _alert_codes(sandbox) == [11200]


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (lambda form: Response("oops", status=500), 11200),
        (lambda form: Response('{"instruction": "accept"}', content_type="text/html"), 40000),
        (lambda form: Response("{not json", content_type="application/json"), 40001),
    ],
    ids=["500", "not-json-content-type", "invalid-json"],
)
def test_a_bad_answer_raises_twilios_alert_and_the_reservation_waits_for_its_timeout(
    sandbox: TaskRouterSandbox, answer: Any, code: int
) -> None:
    answering(sandbox, answer, reservation_timeout=120)
    go_idle(sandbox, "Alice")
    task = create_task(sandbox, "es")

    assert _alert_codes(sandbox) == [code]
    assert _reservation(sandbox, task.sid).reservation_status == "pending"
    sandbox.clock.advance(120)
    assert _reservation(sandbox, task.sid).reservation_status == "timeout"


def test_an_app_that_raises_is_a_failed_request(sandbox: TaskRouterSandbox) -> None:
    def boom(form: dict[str, str]) -> Any:
        raise RuntimeError("the code under test has a bug")

    answering(sandbox, boom)
    go_idle(sandbox, "Alice")
    task = create_task(sandbox, "es")

    assert _alert_codes(sandbox) == [11200]
    assert _reservation(sandbox, task.sid).reservation_status == "pending"
    # Flask turns the exception into a 500, as it would behind a real server.
    (delivery,) = sandbox.callbacks
    assert delivery.status_code == 500


def test_a_wsgi_app_that_raises_through_is_a_failed_request(sandbox: TaskRouterSandbox) -> None:
    """A bare WSGI app (or Flask with PROPAGATE_EXCEPTIONS) lets the exception out: no
    answer at all, as when a server drops the connection."""

    def raw_app(environ: dict[str, Any], start_response: Any) -> Any:
        raise RuntimeError("the code under test has a bug")

    sandbox.serve_callbacks(raw_app)
    sandbox.workspace.workflows(sandbox.workflow_sid).update(
        assignment_callback_url="http://app.test/assignment"
    )
    go_idle(sandbox, "Alice")
    task = create_task(sandbox, "es")

    assert _alert_codes(sandbox) == [11200]
    assert _reservation(sandbox, task.sid).reservation_status == "pending"
    (delivery,) = sandbox.callbacks
    assert (delivery.status_code, delivery.error) == (
        None,
        "request failed: the app raised RuntimeError",
    )


def test_an_app_slower_than_the_callback_timeout_has_timed_out(
    sandbox: TaskRouterSandbox,
) -> None:
    # The Dispatcher's own knob, shortened so that the test waits 0.3 s, not 5.
    sandbox.sandbox.dispatcher._assignment_timeout = 0.1

    def slow(form: dict[str, str]) -> Any:
        time.sleep(0.3)
        return jsonify(instruction="accept")

    answering(sandbox, slow)
    go_idle(sandbox, "Alice")
    task = create_task(sandbox, "es")

    assert _reservation(sandbox, task.sid).reservation_status == "pending"
    (delivery,) = sandbox.callbacks
    assert delivery.error == "timed out after 0.1 s"
    assert _alert_codes(sandbox) == [11200]


def test_event_callbacks_reach_the_app_in_process_signed(sandbox: TaskRouterSandbox) -> None:
    app = answering(sandbox)
    sandbox.workspace.update(event_callback_url="http://app.test/events")
    go_idle(sandbox, "Alice")
    task = create_task(sandbox, "es")

    events = app.of_kind("event")
    assert events and all(event["valid"] for event in events)
    types = [event["form"]["EventType"] for event in events]
    assert "task.created" in types
    assert "reservation.accepted" in types
    assert {event["form"]["TaskSid"] for event in events if "TaskSid" in event["form"]} == {
        task.sid
    }
    # Several delivery threads send them, so they may be recorded in another order than they
    # arrived (Twilio promises no order of event callbacks either).
    recorded = [d.event_type for d in sandbox.callbacks if d.kind == "event"]
    assert sorted(recorded) == sorted(types)


def test_a_url_nobody_serves_in_process_goes_out_over_http(sandbox: TaskRouterSandbox) -> None:
    sandbox.serve_callbacks(CallbackApp(sandbox.auth_token).build())  # at http://app.test
    receiver = CallbackApp(sandbox.auth_token)
    with serve(receiver.build()) as origin:
        sandbox.workspace.workflows(sandbox.workflow_sid).update(
            assignment_callback_url=origin + "/assignment"
        )
        go_idle(sandbox, "Alice")
        task = create_task(sandbox, "es")
        assert sandbox.workspace.tasks(task.sid).fetch().assignment_status == "assigned"
    (received,) = receiver.of_kind("assignment")
    assert received["valid"]
    assert received["headers"]["User-Agent"] == USER_AGENT


def test_a_callback_app_may_call_the_api_while_it_answers(sandbox: TaskRouterSandbox) -> None:
    """Re-entrancy: the app reads the task and accepts the reservation over the REST API
    itself (through the fixture's client), then answers with an empty document."""
    seen: list[str] = []

    def accept_over_rest(form: dict[str, str]) -> Any:
        task = sandbox.workspace.tasks(form["TaskSid"])
        seen.append(task.fetch().assignment_status)
        task.reservations(form["ReservationSid"]).update(reservation_status="accepted")
        return jsonify({})

    answering(sandbox, accept_over_rest)
    go_idle(sandbox, "Alice")
    done: list[Any] = []
    creator = threading.Thread(target=lambda: done.append(create_task(sandbox, "es")))
    creator.start()
    creator.join(timeout=20)
    assert not creator.is_alive(), "creating a task deadlocked on its own callback"

    (task,) = done
    assert seen == ["reserved"]
    assert sandbox.workspace.tasks(task.sid).fetch().assignment_status == "assigned"
