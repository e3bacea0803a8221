"""/accept_reservation and /reject_reservation: the exact update sent to TaskRouter, the answer,
both parameter spellings, and every bad parameter refused before anything is sent.
"""

from __future__ import annotations

import base64
import json

import pytest


@pytest.mark.parametrize("path", ["/accept_reservation", "/accept-reservation"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_accept(
    client,
    upstream,
    reservation_url,
    reservation_json,
    sent_form,
    sids,
    auth_token,
    path,
    method,
):
    upstream.post(reservation_url, json=reservation_json())
    params = {"TaskSid": sids.task, "ReservationSid": sids.reservation}
    if method == "GET":
        response = client.get(path, query_string=params)
    else:
        response = client.post(path, data=params)

    assert response.status_code == 200
    assert response.get_json() == {
        "task_sid": sids.task,
        "reservation_sid": sids.reservation,
        "reservation_status": "accepted",
        "worker_sid": sids.worker,
        "worker_name": "Alice",
    }
    [call] = upstream.calls
    assert call.request.method == "POST"
    assert call.request.url == reservation_url
    expected_auth = base64.b64encode(f"{sids.account}:{auth_token}".encode()).decode()
    assert call.request.headers["Authorization"] == f"Basic {expected_auth}"
    assert sent_form(call) == {"ReservationStatus": ["accepted"]}


def test_accept_with_the_ruby_spelling(client, upstream, reservation_url, reservation_json, sids):
    upstream.post(reservation_url, json=reservation_json())
    response = client.get(
        "/accept-reservation",
        query_string={"task_sid": sids.task, "reservation_sid": sids.reservation},
    )
    assert response.status_code == 200
    assert response.get_json()["worker_name"] == "Alice"


@pytest.mark.parametrize("path", ["/reject_reservation", "/reject-reservation"])
def test_reject(client, upstream, reservation_url, reservation_json, sent_form, sids, path):
    upstream.post(reservation_url, json=reservation_json(reservation_status="rejected"))
    response = client.post(path, data={"TaskSid": sids.task, "ReservationSid": sids.reservation})

    assert response.status_code == 200
    assert response.get_json()["reservation_status"] == "rejected"
    assert sent_form(upstream.calls[0]) == {"ReservationStatus": ["rejected"]}


def test_reject_moving_the_worker(
    client, upstream, reservation_url, reservation_json, sent_form, sids
):
    upstream.post(reservation_url, json=reservation_json(reservation_status="rejected"))
    response = client.post(
        "/reject_reservation",
        data={
            "TaskSid": sids.task,
            "ReservationSid": sids.reservation,
            "WorkerActivitySid": sids.activity,
        },
    )
    assert response.status_code == 200
    assert sent_form(upstream.calls[0]) == {
        "ReservationStatus": ["rejected"],
        "WorkerActivitySid": [sids.activity],
    }


TASK = "WT" + "3" * 32
RESERVATION = "WR" + "4" * 32
FORM = "application/x-www-form-urlencoded"


BAD_SIDS = [
    ({"ReservationSid": RESERVATION}, "missing_parameter", "TaskSid is required"),
    ({"TaskSid": TASK}, "missing_parameter", "ReservationSid is required"),
    (
        {"TaskSid": "", "ReservationSid": RESERVATION},
        "missing_parameter",
        "TaskSid is required",
    ),
    (
        {"TaskSid": "WT123", "ReservationSid": RESERVATION},
        "invalid_parameter",
        "TaskSid must be WT followed by 32 hex characters",
    ),
    (
        {"TaskSid": RESERVATION, "ReservationSid": RESERVATION},
        "invalid_parameter",
        "TaskSid must be WT followed by 32 hex characters",
    ),
    (
        {"TaskSid": TASK, "ReservationSid": "WR" + "z" * 32},
        "invalid_parameter",
        "ReservationSid must be WR followed by 32 hex characters",
    ),
    (
        {"TaskSid": TASK, "ReservationSid": "../../Workers"},
        "invalid_parameter",
        "ReservationSid must be WR followed by 32 hex characters",
    ),
    (
        {"task_sid": TASK, "TaskSid": "WT" + "0" * 32, "ReservationSid": RESERVATION},
        "invalid_parameter",
        "TaskSid was given more than once",
    ),
]


@pytest.mark.parametrize("path", ["/accept_reservation", "/reject_reservation"])
@pytest.mark.parametrize(("params", "code", "message"), BAD_SIDS)
def test_bad_sids_are_refused_before_any_upstream_call(
    client, upstream, path, params, code, message
):
    response = client.get(path, query_string=params)

    assert response.status_code == 400
    assert response.get_json() == {
        "error": {"status": 400, "code": code, "message": message, "more_info": None}
    }
    assert len(upstream.calls) == 0


@pytest.mark.parametrize(
    ("path", "activity", "message"),
    [
        (
            "/reject_reservation",
            "WK" + "5" * 32,
            "WorkerActivitySid must be WA followed by 32 hex characters",
        ),
        (
            "/accept_reservation",
            "WA" + "7" * 32,
            "WorkerActivitySid applies to /reject_reservation only",
        ),
    ],
)
def test_bad_worker_activity_is_refused(client, upstream, path, activity, message):
    response = client.post(
        path,
        data={"TaskSid": TASK, "ReservationSid": RESERVATION, "WorkerActivitySid": activity},
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["message"] == message
    assert len(upstream.calls) == 0


# -- a JSON body ------------------------------------------------------------------------------


def test_accept_with_a_json_body(client, upstream, reservation_url, reservation_json, sent_form):
    upstream.post(reservation_url, json=reservation_json())

    response = client.post(
        "/accept_reservation", json={"TaskSid": TASK, "ReservationSid": RESERVATION}
    )

    assert response.status_code == 200
    assert response.get_json()["reservation_status"] == "accepted"
    assert sent_form(upstream.calls[0]) == {"ReservationStatus": ["accepted"]}


def test_reject_moving_the_worker_with_a_json_body(
    client, upstream, reservation_url, reservation_json, sent_form, sids
):
    upstream.post(reservation_url, json=reservation_json(reservation_status="rejected"))

    response = client.post(
        "/reject-reservation",
        json={"task_sid": TASK, "reservation_sid": RESERVATION, "WorkerActivitySid": sids.activity},
    )

    assert response.status_code == 200
    assert sent_form(upstream.calls[0]) == {
        "ReservationStatus": ["rejected"],
        "WorkerActivitySid": [sids.activity],
    }


@pytest.mark.parametrize("path", ["/accept_reservation", "/reject_reservation"])
@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        *BAD_SIDS,
        (
            {"TaskSid": 5, "ReservationSid": RESERVATION},
            "invalid_parameter",
            "TaskSid must be a string, not a number",
        ),
        (
            {"TaskSid": TASK, "reservation_sid": None},
            "invalid_parameter",
            "reservation_sid must be a string, not null",
        ),
        (
            {"TaskSid": TASK, "ReservationSid": RESERVATION, "WorkerSid": "WK" + "5" * 32},
            "unknown_parameter",
            "{path} does not take WorkerSid (given in the body): it takes TaskSid, "
            "ReservationSid, WorkerActivitySid",
        ),
        ([TASK, RESERVATION], "invalid_body", "The JSON body must be an object, not a list"),
    ],
)
def test_bad_json_bodies_are_refused_before_any_upstream_call(
    client, upstream, path, body, code, message
):
    response = client.post(path, json=body)

    assert response.status_code == 400
    assert response.get_json() == {
        "error": {
            "status": 400,
            "code": code,
            "message": message.format(path=path),
            "more_info": None,
        }
    }
    assert len(upstream.calls) == 0


def test_worker_activity_in_a_json_body_applies_to_reject_only(client, upstream, sids):
    response = client.post(
        "/accept_reservation",
        json={"TaskSid": TASK, "ReservationSid": RESERVATION, "WorkerActivitySid": sids.activity},
    )
    assert response.status_code == 400
    message = response.get_json()["error"]["message"]
    assert message == "WorkerActivitySid applies to /reject_reservation only"
    assert len(upstream.calls) == 0


@pytest.mark.parametrize(
    ("query", "body", "content_type", "code"),
    [
        ({}, json.dumps({"TaskSid": TASK, "ReservationSid": RESERVATION}), FORM, "invalid_body"),
        ({}, f"TaskSid={TASK}&ReservationSid={RESERVATION}", "text/plain", "invalid_body"),
        ({"TaskSid": TASK}, json.dumps({"TaskSid": TASK}), "application/json", "invalid_parameter"),
    ],
    ids=["json-as-form", "text-plain", "query-and-body"],
)
def test_a_body_that_cannot_be_used_is_refused(client, upstream, query, body, content_type, code):
    response = client.post(
        "/reject_reservation",
        query_string={"ReservationSid": RESERVATION, **query},
        data=body,
        content_type=content_type,
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == code
    assert len(upstream.calls) == 0
