"""The event bridge's HTTP side, as the Worker SDK calls it (its lib/util/Request.js): a POST
of {url, method, params, token} to ebServer with the headers apiVersion and clientVersion,
answered {"payload": ...} in the SDK's shapes, a refusal in Twilio's error shape whose
"message" the SDK shows. The shapes checked here are the fields the SDK's descriptors require
(lib/descriptors/*.js of twilio-taskrouter 2.1.1): a payload without one of them makes the SDK
throw.
"""

from __future__ import annotations

import json
from typing import Any

import jwt
import pytest
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import TaskRouterGrant

from taskrouter_sandbox.eventbridge import tokens
from taskrouter_sandbox.testing import TaskRouterSandbox

# The fields each of the SDK's descriptors requires (WorkerProperties, ActivityProperties,
# TaskProperties, ReservationProperties, ChannelProperties in twilio-taskrouter 2.1.1).
WORKER_FIELDS = {
    "account_sid", "activity_name", "activity_sid", "attributes", "available", "date_created",
    "date_status_changed", "date_updated", "friendly_name", "sid", "workspace_sid", "version",
}  # fmt: skip
ACTIVITY_FIELDS = {
    "account_sid", "available", "date_created", "date_updated", "friendly_name", "sid",
    "workspace_sid",
}  # fmt: skip
TASK_FIELDS = {
    "addons", "age", "attributes", "date_created", "date_updated", "priority", "queue_name",
    "queue_sid", "reason", "routing_target", "sid", "assignment_status",
    "task_channel_unique_name", "task_channel_sid", "timeout", "workflow_name", "workflow_sid",
    "version", "virtual_start_time",
}  # fmt: skip
RESERVATION_FIELDS = {
    "account_sid", "date_created", "date_updated", "reservation_status", "sid", "task",
    "reservation_timeout", "worker_sid", "workspace_sid", "version",
}  # fmt: skip
CHANNEL_FIELDS = {
    "account_sid", "assigned_tasks", "available", "available_capacity_percentage",
    "configured_capacity", "date_created", "date_updated", "last_reserved_time", "sid",
    "task_channel_sid", "task_channel_unique_name", "worker_sid", "workspace_sid",
}  # fmt: skip


@pytest.fixture
def box() -> Any:
    with TaskRouterSandbox() as sandbox:
        yield sandbox


def call(
    box: TaskRouterSandbox,
    url: str,
    method: str = "GET",
    params: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    worker: str = "Alice",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """One envelope as the SDK posts it (JSON text in the body, no JSON content type)."""
    body = {
        "url": url,
        "method": method,
        "params": params or {},
        "token": token if token is not None else box.worker_token(worker),
    }
    response = box.app.test_client().post(
        "/v1/wschannels",
        data=json.dumps(body),
        headers={"apiVersion": "v1", "clientVersion": "2.1.1", **(headers or {})},
    )
    return response.status_code, response.get_json()


def worker_url(box: TaskRouterSandbox, name: str = "Alice", *rest: str) -> str:
    return "/".join(("Workspaces", box.workspace_sid, "Workers", box.workers[name], *rest))


def assert_error(answer: tuple[int, dict[str, Any]], status: int, code: int, text: str) -> None:
    got, body = answer
    assert got == status, body
    assert body["code"] == code and body["status"] == status, body
    assert text in body["message"], body
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"


# -- what the SDK loads on connect ----------------------------------------------------------


def test_the_worker_its_activities_and_channels_come_in_the_sdks_shapes(box) -> None:
    status, body = call(box, worker_url(box))
    assert status == 200
    worker = body["payload"]
    assert set(worker) >= WORKER_FIELDS
    rest = box.workspace.workers(box.workers["Alice"]).fetch()
    assert worker["sid"] == rest.sid and worker["activity_name"] == "Offline"
    assert json.loads(worker["attributes"]) == {"languages": ["en", "es"]}
    assert worker["date_created"] == int(rest.date_created.timestamp())
    # The version If-Match takes: the one the REST API's ETag names.
    row = box.sandbox.engine.get_worker(box.workspace_sid, rest.sid)
    assert worker["version"] == str(row["version"])

    status, body = call(
        box, f"Workspaces/{box.workspace_sid}/Activities", params={"PageSize": 1000}
    )
    assert status == 200 and body["payload"]["after_sid"] is None
    activities = body["payload"]["contents"]
    assert all(set(a) >= ACTIVITY_FIELDS for a in activities)
    assert {a["friendly_name"] for a in activities} == {"Offline", "Idle", "Busy", "Reserved"}

    status, body = call(box, worker_url(box, "Alice", "WorkerChannels"), params={"PageSize": 1000})
    assert status == 200
    channels = body["payload"]["contents"]
    assert channels and all(set(c) >= CHANNEL_FIELDS for c in channels)
    rest_channels = box.workspace.workers(box.workers["Alice"]).worker_channels.list()
    assert {c["sid"] for c in channels} == {c.sid for c in rest_channels}


def test_open_reservations_come_with_their_tasks_and_closed_ones_do_not(box) -> None:
    box.workspace.workers(box.workers["Alice"]).update(activity_sid=box.activities["Idle"])
    task = box.workspace.tasks.create(
        workflow_sid=box.workflow_sid, attributes=json.dumps({"selected_language": "es"})
    )
    status, body = call(
        box,
        worker_url(box, "Alice", "Reservations"),
        params={"Active": "true", "PageSize": 1000},
        headers={"apiVersion": "v2"},
    )
    assert status == 200
    (reservation,) = body["payload"]["contents"]
    assert set(reservation) >= RESERVATION_FIELDS
    assert set(reservation["task"]) >= TASK_FIELDS
    assert reservation["reservation_status"] == "pending"
    assert reservation["task"]["sid"] == task.sid
    assert reservation["task"]["assignment_status"] == "reserved"
    assert json.loads(reservation["task"]["attributes"]) == {"selected_language": "es"}
    assert reservation["task"]["queue_name"] == "Customer Care Requests - Spanish"
    # The seeded workflow's TaskReservationTimeout.
    workflow = box.workspace.workflows(box.workflow_sid).fetch()
    assert reservation["reservation_timeout"] == workflow.task_reservation_timeout

    status, body = call(
        box,
        worker_url(box, "Alice", "Reservations", reservation["sid"]),
        "POST",
        {"ReservationStatus": "rejected"},
    )
    assert status == 200 and body["payload"]["reservation_status"] == "rejected"
    status, body = call(box, worker_url(box, "Alice", "Reservations"), params={"Active": "true"})
    assert body["payload"]["contents"] == []


# -- what the SDK changes -------------------------------------------------------------------


def test_params_come_as_json_values_and_reach_the_rest_api_as_its_form_values(box) -> None:
    status, body = call(
        box,
        worker_url(box),
        "POST",
        {"Attributes": {"languages": ["fr"], "desk": 7}, "ActivitySid": box.activities["Idle"]},
    )
    assert status == 200, body
    assert json.loads(body["payload"]["attributes"]) == {"languages": ["fr"], "desk": 7}
    rest = box.workspace.workers(box.workers["Alice"]).fetch()
    assert rest.activity_name == "Idle" and json.loads(rest.attributes)["desk"] == 7
    # A boolean as JSON true (Activity.setAsCurrent({rejectPendingReservations: true})).
    status, body = call(
        box,
        worker_url(box),
        "POST",
        {"ActivitySid": box.activities["Offline"], "RejectPendingReservations": True},
    )
    assert status == 200 and body["payload"]["activity_name"] == "Offline"


def test_a_stale_version_is_refused_with_412_as_over_rest(box) -> None:
    _, body = call(box, worker_url(box))
    version = body["payload"]["version"]
    assert (
        call(box, worker_url(box), "POST", {"Attributes": {"a": 1}}, headers={"If-Match": version})[
            0
        ]
        == 200
    )
    assert_error(
        call(box, worker_url(box), "POST", {"Attributes": {"a": 2}}, headers={"If-Match": version}),
        412,
        20412,
        "Precondition failed",
    )


def test_a_rest_refusal_keeps_its_status_and_message(box) -> None:
    assert_error(
        call(box, worker_url(box), "POST", {"ActivitySid": "WA" + "0" * 32}),
        400,
        20001,
        "ActivitySid",
    )


# -- what is refused -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"method": "GET", "token": "t"}', "url"),
        (b'{"url": "Workspaces", "method": 3, "token": "t"}', "method"),
        (b'{"url": "Workspaces", "method": "GET"}', "token"),
        (b'{"url": "Workspaces", "method": "GET", "token": "t", "params": [1]}', "params"),
    ],
)
def test_a_malformed_envelope_is_a_400_naming_the_problem(box, body: bytes, text: str) -> None:
    response = box.app.test_client().post("/v1/wschannels", data=body)
    assert_error((response.status_code, response.get_json()), 400, 20001, text)


def _foreign_token(box: TaskRouterSandbox, **change: str) -> str:
    values = {
        "account_sid": box.account_sid,
        "key_sid": box.sandbox.api_key_sid,
        "key_secret": box.sandbox.api_key_secret,
        "workspace_sid": box.workspace_sid,
        "worker_sid": box.workers["Alice"],
        **change,
    }
    token = AccessToken(values["account_sid"], values["key_sid"], values["key_secret"])
    token.add_grant(
        TaskRouterGrant(workspace_sid=values["workspace_sid"], worker_sid=values["worker_sid"])
    )
    return token.to_jwt()


@pytest.mark.parametrize(
    ("make", "code", "text"),
    [
        (lambda box: "not-a-token", 20101, "malformed"),
        (lambda box: _foreign_token(box, key_secret="0" * 32), 20101, "signature"),
        (lambda box: _foreign_token(box, key_sid="SK" + "1" * 32), 20101, "API key"),
        (lambda box: _foreign_token(box, account_sid="AC" + "2" * 32), 20101, "another account"),
        (
            lambda box: jwt.encode(
                {"iss": box.sandbox.api_key_sid, "sub": box.account_sid, "exp": 1, "grants": {}},
                box.sandbox.api_key_secret,
                headers={"cty": "twilio-fpa;v=1"},
            ),
            20104,
            "expired",
        ),
        (
            lambda box: AccessToken(
                box.account_sid, box.sandbox.api_key_sid, box.sandbox.api_key_secret
            ).to_jwt(),
            20101,
            "no TaskRouter grant",
        ),
    ],
)
def test_a_bad_expired_or_foreign_token_is_a_401(box, make, code: int, text: str) -> None:
    assert_error(call(box, worker_url(box), token=make(box)), 401, code, text)


def test_a_token_reaches_its_own_worker_only(box) -> None:
    assert_error(call(box, worker_url(box, "Bob")), 403, 20403, "another worker")
    assert_error(call(box, worker_url(box, "Bob", "Reservations")), 403, 20403, "another worker")
    other = box.workspace_sid[:-1] + ("0" if box.workspace_sid[-1] != "0" else "1")
    assert_error(call(box, f"Workspaces/{other}/Activities"), 403, 20403, "cannot reach")
    assert_error(call(box, f"Workspaces/{box.workspace_sid}/Workflows"), 403, 20403, "cannot reach")
    # The supervisor's Workspace helpers (its task queues, other workers) are not offered.
    assert_error(
        call(box, f"Workspaces/{box.workspace_sid}/TaskQueues"), 403, 20403, "cannot reach"
    )
    assert_error(
        call(box, f"Workspaces/{box.workspace_sid}/Workers/../Workflows"),
        403,
        20403,
        "cannot reach",
    )
    assert_error(
        call(box, f"Workspaces/{box.workspace_sid}/Activities", "POST"), 405, 20004, "POST"
    )
    token = _foreign_token(box, workspace_sid=other)
    assert_error(call(box, worker_url(box), token=token), 403, 20403, "cannot reach")


def test_tokens_are_minted_for_one_to_86400_seconds() -> None:
    with pytest.raises(ValueError, match="1 to 86400"):
        tokens.mint("AC" + "0" * 32, "SK" + "0" * 32, "s", "WS" + "0" * 32, "WK" + "0" * 32, 0)


def test_a_desk_on_another_origin_may_call_the_bridge(box) -> None:
    """A browser sends the SDK's POST (headers apiVersion and clientVersion) from a page of
    any origin only after a CORS preflight the bridge allows."""
    preflight = box.app.test_client().options(
        "/v1/wschannels",
        headers={
            "Origin": "http://localhost:3000",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "apiversion,clientversion,if-match",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    allowed = {
        h.strip().lower() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")
    }
    assert {"apiversion", "clientversion", "if-match"} <= allowed
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    status, _ = call(box, worker_url(box))
    response = box.app.test_client().post(
        "/v1/wschannels", data=b"{}", headers={"Origin": "http://localhost:3000"}
    )
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert status == 200
