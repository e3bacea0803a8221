"""The control API (/control/...) over real HTTP: the clock, reset, the seed, the callbacks,
and every way to ask it wrong, answered in Twilio's error shape."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests
from flask import Flask, jsonify

from taskrouter_sandbox import Sandbox, create_app
from taskrouter_sandbox.api.control import MAX_ADVANCE_SECONDS
from taskrouter_sandbox.clock import ManualClock, from_storage
from taskrouter_sandbox.testing import TaskRouterSandbox
from tests.callback_receiver import CallbackReceiver
from tests.sandbox.conftest import Live, assert_error_body, make_client, serve


@contextmanager
def root_sandbox() -> Iterator[Live]:
    """The sandbox alone at the root, as taskrouter-sandbox serves it, on a ManualClock."""
    clock = ManualClock()
    app = create_app(
        {
            "TESTING": True,
            "SANDBOX_DATABASE": ":memory:",
            "SANDBOX_CLOCK": clock,
            "SANDBOX_START_THREADS": False,
        }
    )
    sandbox: Sandbox = app.extensions["sandbox"]
    try:
        with serve(app) as root:
            yield Live(app, sandbox, root, make_client(sandbox, root), clock)
    finally:
        sandbox.close()


@pytest.fixture
def box() -> Iterator[Live]:
    with root_sandbox() as running:
        yield running


def _go_idle(box: Live, worker: str = "Alice") -> None:
    seeded = box.sandbox.seeded
    box.seeded_workspace.workers(seeded.worker_sids[worker]).update(
        activity_sid=seeded.activity_sids["Idle"]
    )


def _spanish_task(box: Live):
    return box.seeded_workspace.tasks.create(
        attributes=json.dumps({"selected_language": "es"}),
        workflow_sid=box.sandbox.seeded.workflow_sid,
    )


# -- the clock ------------------------------------------------------------------------------


def test_the_clock_says_the_sandbox_time_and_that_it_moves(box: Live) -> None:
    response = box.http("GET", "/control/clock")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body == {"now": "2024-01-01T09:00:00.000000Z", "movable": True}
    assert from_storage(body["now"]) == box.clock.now()


def test_advance_moves_the_clock_by_whole_and_fractional_seconds(box: Live) -> None:
    start = box.clock.now()
    body = box.http("POST", "/control/clock/advance", data={"Seconds": "90"}).json()
    assert body == {"now": "2024-01-01T09:01:30.000000Z", "advanced_by": 90.0}
    body = box.http("POST", "/control/clock/advance", data={"Seconds": "0.5"}).json()
    assert body["advanced_by"] == 0.5
    assert (box.clock.now() - start).total_seconds() == 90.5
    assert box.http("GET", "/control/clock").json()["now"] == "2024-01-01T09:01:30.500000Z"
    # Zero is a move of nothing, not an error.
    assert box.http("POST", "/control/clock/advance", data={"Seconds": "0"}).status_code == 200


def test_advance_past_the_reservation_timeout_times_the_reservation_out(box: Live) -> None:
    """The reservation, unanswered within the workflow's TaskReservationTimeout, times out and
    the worker goes to the workspace's TimeoutActivity (Twilio's Reservation and Workspace
    pages): fired by the advance itself, no timer thread running."""
    seeded = box.sandbox.seeded
    _go_idle(box)
    task = _spanish_task(box)
    [reservation] = box.seeded_workspace.tasks(task.sid).reservations.list()
    assert reservation.reservation_status == "pending"
    timeout = box.seeded_workspace.workflows(seeded.workflow_sid).fetch().task_reservation_timeout
    answer = box.http("POST", "/control/clock/advance", data={"Seconds": str(timeout + 1)})
    assert answer.status_code == 200
    reservation = box.seeded_workspace.tasks(task.sid).reservations(reservation.sid).fetch()
    assert reservation.reservation_status == "timeout"
    workspace = box.seeded_workspace.fetch()
    alice = box.seeded_workspace.workers(seeded.worker_sids["Alice"]).fetch()
    assert alice.activity_sid == workspace.timeout_activity_sid


@pytest.mark.parametrize(
    "seconds",
    ["", " ", "abc", "-1", "nan", "inf", "-inf", "1e3", "0x10", "١٢", str(MAX_ADVANCE_SECONDS + 1)],
)
def test_a_bad_number_of_seconds_is_a_400_naming_seconds(box: Live, seconds: str) -> None:
    before = box.clock.now()
    response = box.http("POST", "/control/clock/advance", data={"Seconds": seconds})
    body = assert_error_body(response, 400, 20001)
    assert "Seconds" in body["message"]
    assert box.clock.now() == before


def test_seconds_missing_or_given_twice_is_a_400_naming_seconds(box: Live) -> None:
    missing = box.http("POST", "/control/clock/advance")
    assert "Seconds" in assert_error_body(missing, 400, 20001)["message"]
    twice = box.http("POST", "/control/clock/advance", data=[("Seconds", "1"), ("Seconds", "2")])
    assert "Seconds" in assert_error_body(twice, 400, 20001)["message"]


def test_a_year_is_the_most_one_advance_moves(box: Live) -> None:
    response = box.http("POST", "/control/clock/advance", data={"Seconds": MAX_ADVANCE_SECONDS})
    assert response.status_code == 200, response.text
    too_far = box.http("POST", "/control/clock/advance", data={"Seconds": MAX_ADVANCE_SECONDS + 1})
    body = assert_error_body(too_far, 400, 20001)
    assert f"Seconds must be at most {MAX_ADVANCE_SECONDS} (a year)" in body["message"]


# -- reset and the seed ---------------------------------------------------------------------


def test_the_seed_names_the_seeded_sids(box: Live) -> None:
    body = box.http("GET", "/control/seed").json()
    seeded = box.sandbox.seeded
    assert body["kind"] == "quickstart"
    assert body["workspace_sid"] == seeded.workspace_sid
    assert body["workflow_sid"] == seeded.workflow_sid
    assert body["worker_sids"] == seeded.worker_sids
    assert body["activity_sids"] == seeded.activity_sids
    assert body["task_queue_sids"] == seeded.task_queue_sids
    assert body["task_channel_sid"] == seeded.task_channel_sid


def test_reset_to_the_empty_seed_wipes_the_old_workspace(box: Live) -> None:
    old = box.sandbox.seeded.workspace_sid
    response = box.http("POST", "/control/reset", data={"Seed": "empty"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["kind"] == "empty" and body["workflow_sid"] is None
    assert body["workspace_sid"] != old
    assert box.http("GET", "/control/seed").json() == body
    workspaces = [workspace.sid for workspace in box.v1.workspaces.list()]
    assert workspaces == [body["workspace_sid"]]
    activities = {
        a.friendly_name for a in box.v1.workspaces(body["workspace_sid"]).activities.list()
    }
    assert activities == {"Offline", "Available", "Unavailable"}


def test_reset_without_a_seed_keeps_its_kind_and_the_workflow_callback_url(box: Live) -> None:
    seeded = box.sandbox.seeded
    url = "https://app.example.com/assignment_callback"
    box.seeded_workspace.workflows(seeded.workflow_sid).update(assignment_callback_url=url)
    body = box.http("POST", "/control/reset").json()
    assert body["kind"] == "quickstart"
    assert body["workspace_sid"] != seeded.workspace_sid
    workflow = box.v1.workspaces(body["workspace_sid"]).workflows(body["workflow_sid"]).fetch()
    assert workflow.assignment_callback_url == url
    # The credentials stay: the client made before the reset still works.
    assert box.v1.workspaces(body["workspace_sid"]).fetch().friendly_name


def test_reset_brings_back_a_seeded_workspace_a_client_deleted(box: Live) -> None:
    old = box.sandbox.seeded.workspace_sid
    box.v1.workspaces(old).delete()
    response = box.http("POST", "/control/reset")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["kind"] == "quickstart" and body["workspace_sid"] != old
    assert box.v1.workspaces(body["workspace_sid"]).workflows(body["workflow_sid"]).fetch()


def test_a_bad_seed_is_a_400_naming_seed(box: Live) -> None:
    old = box.sandbox.seeded
    response = box.http("POST", "/control/reset", data={"Seed": "full"})
    assert "Seed" in assert_error_body(response, 400, 20001)["message"]
    assert box.sandbox.seeded == old


# -- the callbacks --------------------------------------------------------------------------


def test_callbacks_lists_every_post_oldest_first_and_delete_forgets_them(box: Live) -> None:
    seeded = box.sandbox.seeded
    with CallbackReceiver() as receiver:
        box.seeded_workspace.update(event_callback_url=receiver.url)
        box.seeded_workspace.workflows(seeded.workflow_sid).update(
            assignment_callback_url=receiver.url
        )
        box.sandbox.start(timers=False)
        _go_idle(box)
        task = _spanish_task(box)
        assert box.sandbox.settle(10)
        callbacks = box.http("GET", "/control/callbacks").json()["callbacks"]
        assert callbacks == [delivery.as_dict() for delivery in box.sandbox.deliveries]
        assert {callback["kind"] for callback in callbacks} == {"assignment", "event"}
        [assignment] = box.http("GET", "/control/callbacks", params={"Kind": "assignment"}).json()[
            "callbacks"
        ]
        assert assignment["params"]["TaskSid"] == task.sid
        assert assignment["instruction"] == "accept"
        events = box.http("GET", "/control/callbacks", params={"Kind": "event"}).json()
        assert events["callbacks"] and all(c["kind"] == "event" for c in events["callbacks"])
        types = [c["event_type"] for c in events["callbacks"]]
        assert "worker.activity.update" in types and "reservation.created" in types

    cleared = box.http("DELETE", "/control/callbacks")
    assert cleared.status_code == 204 and cleared.content == b""
    assert box.http("GET", "/control/callbacks").json() == {"callbacks": []}


def test_a_bad_callback_kind_is_a_400_naming_kind(box: Live) -> None:
    response = box.http("GET", "/control/callbacks", params={"Kind": "sms"})
    assert "Kind" in assert_error_body(response, 400, 20001)["message"]


# -- guarded and shaped like the rest -------------------------------------------------------

CONTROL_CALLS = (
    ("GET", "/control/clock"),
    ("POST", "/control/clock/advance"),
    ("POST", "/control/reset"),
    ("GET", "/control/seed"),
    ("GET", "/control/callbacks"),
    ("DELETE", "/control/callbacks"),
)


@pytest.mark.parametrize(("method", "path"), CONTROL_CALLS)
def test_every_control_call_needs_the_account_credentials(
    box: Live, method: str, path: str
) -> None:
    before = box.sandbox.seeded
    for auth in (None, (box.sandbox.account_sid, "wrong"), ("AC" + "0" * 32, "x")):
        response = requests.request(
            method, box.base_url + path, auth=auth, data={"Seconds": "5"}, timeout=10
        )
        assert_error_body(response, 401, 20003)
    assert box.sandbox.seeded == before
    assert box.clock.now().hour == 9 and box.clock.now().minute == 0


@pytest.mark.parametrize("path", ["/control", "/control/", "/control/clocks", "/control/seed/x"])
def test_an_unknown_control_path_is_a_404(box: Live, path: str) -> None:
    assert_error_body(box.http("GET", path), 404, 20404)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("POST", "/control/clock", "GET"),
        ("GET", "/control/clock/advance", "POST"),
        ("GET", "/control/reset", "POST"),
        ("DELETE", "/control/seed", "GET"),
        ("POST", "/control/callbacks", "DELETE, GET"),
    ],
)
def test_a_wrong_method_is_a_405_naming_the_allowed_ones(
    box: Live, method: str, path: str, allowed: str
) -> None:
    response = box.http(method, path)
    assert_error_body(response, 405, 20004)
    assert response.headers["Allow"] == allowed


# -- inside the quickstart server -----------------------------------------------------------


@pytest.fixture
def quickstart(make_app) -> Iterator[tuple[str, Sandbox, tuple[str, str]]]:
    """The quickstart server on the sandbox backend (its system clock), serving over HTTP."""
    app = make_app(environ={})
    sandbox: Sandbox = app.extensions["sandbox"]
    with serve(app) as root:
        yield root + "/sandbox", sandbox, (sandbox.account_sid, sandbox.auth_token)


def test_inside_the_quickstart_server_the_control_api_is_at_sandbox_control(quickstart) -> None:
    base, sandbox, auth = quickstart
    seed = requests.get(f"{base}/control/seed", auth=auth, timeout=10)
    assert seed.json()["workspace_sid"] == sandbox.seeded.workspace_sid
    clock = requests.get(f"{base}/control/clock", auth=auth, timeout=10).json()
    assert clock["movable"] is False


def test_the_system_clock_cannot_be_advanced_a_409_says_how_to_get_one_that_can(
    quickstart,
) -> None:
    base, _, auth = quickstart
    response = requests.post(
        f"{base}/control/clock/advance", data={"Seconds": "10"}, auth=auth, timeout=10
    )
    message = assert_error_body(response, 409, 20001)["message"]
    assert "system clock" in message and "taskrouter-sandbox" in message


def test_reset_inside_the_quickstart_server_is_refused_and_changes_nothing(quickstart) -> None:
    """The quickstart server holds the seeded SIDs it started with; `flask sandbox reset` is
    the reset it follows, so the control API refuses rather than leave it on wiped SIDs."""
    base, sandbox, auth = quickstart
    before = sandbox.seeded
    response = requests.post(f"{base}/control/reset", data={"Seed": "empty"}, auth=auth, timeout=10)
    message = assert_error_body(response, 409, 20001)["message"]
    assert "flask sandbox reset" in message
    assert sandbox.seeded == before
    assert sandbox.engine.get_workspace(before.workspace_sid)["sid"] == before.workspace_sid


# -- settling -------------------------------------------------------------------------------


def test_settle_waits_for_the_callbacks_in_flight() -> None:
    """A client without the fixture (curl, twilio-node) asks the sandbox to wait until the
    callbacks its requests caused are answered, as the fixture's client does by itself."""
    app = Flask("slow_callback_app")

    @app.post("/assignment")
    def assignment():
        time.sleep(0.3)
        return jsonify(instruction="accept")

    with TaskRouterSandbox(transport="http") as running:
        origin = running.serve_callbacks(app)
        running.workspace.workflows(running.workflow_sid).update(
            assignment_callback_url=f"{origin}/assignment"
        )
        auth = (running.account_sid, running.auth_token)
        base = running.base_url
        workspace = f"{base}/v1/Workspaces/{running.workspace_sid}"
        alice, idle = running.workers["Alice"], running.activities["Idle"]
        # Plain requests: nothing waits for the callback they cause.
        requests.post(f"{workspace}/Workers/{alice}", data={"ActivitySid": idle}, auth=auth)
        requests.post(
            f"{workspace}/Tasks",
            data={"WorkflowSid": running.workflow_sid, "Attributes": '{"selected_language": "es"}'},
            auth=auth,
        )
        settled = requests.post(f"{base}/control/settle", data={"Timeout": "10"}, auth=auth)
        assert (settled.status_code, settled.json()) == (200, {"settled": True})
        callbacks = requests.get(f"{base}/control/callbacks", auth=auth).json()["callbacks"]
        assert [(c["kind"], c["instruction"]) for c in callbacks] == [("assignment", "accept")]


@pytest.mark.parametrize("timeout", ["soon", "-1", "61", "nan"])
def test_settle_refuses_a_bad_timeout(box: Live, timeout: str) -> None:
    answer = box.http("POST", "/control/settle", data={"Timeout": timeout})
    body = assert_error_body(answer, 400, 20001)
    assert "Parameter Timeout must be" in body["message"] and repr(timeout) in body["message"]


def test_settle_without_callbacks_in_flight_answers_at_once(box: Live) -> None:
    answer = box.http("POST", "/control/settle")
    assert (answer.status_code, answer.json()) == (200, {"settled": True})
