"""Deeply nested JSON is a 400 naming the parameter, never a RecursionError answered as a 500.

Every JSON value read from a request (the sandbox's Attributes, Configuration,
EvaluateWorkerAttributes and PageToken; /create_task's Attributes and JSON body) may nest arrays
and objects at most sandbox.jsonlimits.MAX_DEPTH (64) levels deep. A thousand levels (2 KB, far
inside every size limit) used to raise RecursionError in the sandbox's parser; a few hundred
passed the quickstart's own checks and went on to TaskRouter. Nothing deeper is created.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

import taskrouter_sandbox
from taskrouter_sandbox.jsonlimits import MAX_DEPTH

# What broke the sandbox: about 1,000 levels make json.loads raise RecursionError.
BREAKING = 1000
# What the quickstart forwarded to TaskRouter: deep, yet shallow enough to parse.
FORWARDED = 200


def nested_text(levels: int) -> str:
    """An object whose "a" holds arrays nested so that the whole nests `levels` deep: built as
    text, since json.dumps itself cannot write a thousand levels."""
    return '{"a":' + "[" * (levels - 1) + "]" * (levels - 1) + "}"


class Sandbox:
    """The sandbox's own app, driven through Flask's test client with its credentials."""

    def __init__(self) -> None:
        self.app = taskrouter_sandbox.create_app(
            {"TESTING": True, "SANDBOX_DATABASE": ":memory:", "SANDBOX_START_THREADS": False}
        )
        self.sandbox = self.app.extensions["sandbox"]
        self.seeded = self.sandbox.seeded
        self.client: FlaskClient = self.app.test_client()
        self.workspace = f"/v1/Workspaces/{self.seeded.workspace_sid}"

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        kwargs.setdefault("auth", (self.sandbox.account_sid, self.sandbox.auth_token))
        return self.client.open(self.workspace + path, method=method, **kwargs)

    def listed(self, path: str, key: str) -> list[dict[str, Any]]:
        response = self.request("GET", path, query_string={"PageSize": 1000})
        assert response.status_code == 200, response.text
        return response.get_json()[key]

    @property
    def queue_sid(self) -> str:
        return next(iter(self.seeded.task_queue_sids.values()))

    def configuration(self, note: str) -> str:
        """A workflow configuration with note (JSON text) beside it: its depth is checked
        before its keys, so a note too deep is refused for its depth."""
        routing = {"filters": [], "default_filter": {"queue": self.queue_sid}}
        return json.dumps({"task_routing": routing})[:-1] + f', "note": {note}}}'


@pytest.fixture(scope="module")
def twilio() -> Iterator[Sandbox]:
    running = Sandbox()
    try:
        yield running
    finally:
        running.sandbox.close()


def assert_refused(response: Any, parameter: str) -> None:
    """Twilio's error body for a bad parameter (400, 20001), its message naming it and the
    depth limit."""
    assert response.status_code == 400, response.text
    body = response.get_json()
    assert set(body) == {"code", "message", "more_info", "status"}
    assert (body["status"], body["code"]) == (400, 20001)
    assert body["message"].startswith(parameter), body
    assert f"at most {MAX_DEPTH} levels" in body["message"] or parameter == "PageToken", body


# -- the sandbox ------------------------------------------------------------------------------


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, BREAKING])
def test_task_attributes_too_deep_create_no_task(twilio, levels):
    before = twilio.listed("/Tasks", "tasks")

    response = twilio.request(
        "POST",
        "/Tasks",
        data={"Attributes": nested_text(levels), "WorkflowSid": twilio.seeded.workflow_sid},
    )

    assert_refused(response, "Attributes")
    assert twilio.listed("/Tasks", "tasks") == before


def test_task_attributes_at_the_limit_are_taken(twilio):
    response = twilio.request(
        "POST",
        "/Tasks",
        data={"Attributes": nested_text(MAX_DEPTH), "WorkflowSid": twilio.seeded.workflow_sid},
    )

    assert response.status_code == 201, response.text
    assert response.get_json()["attributes"] == nested_text(MAX_DEPTH)


def test_task_attributes_too_deep_leave_the_task_unchanged(twilio):
    created = twilio.request(
        "POST",
        "/Tasks",
        data={"Attributes": '{"kept": true}', "WorkflowSid": twilio.seeded.workflow_sid},
    )
    assert created.status_code == 201, created.text
    sid = created.get_json()["sid"]

    response = twilio.request("POST", f"/Tasks/{sid}", data={"Attributes": nested_text(BREAKING)})

    assert_refused(response, "Attributes")
    fetched = twilio.request("GET", f"/Tasks/{sid}").get_json()
    assert json.loads(fetched["attributes"]) == {"kept": True}


def test_worker_attributes_too_deep_create_no_worker(twilio):
    before = twilio.listed("/Workers", "workers")

    response = twilio.request(
        "POST", "/Workers", data={"FriendlyName": "Deep", "Attributes": nested_text(BREAKING)}
    )

    assert_refused(response, "Attributes")
    assert twilio.listed("/Workers", "workers") == before


def test_worker_attributes_too_deep_leave_the_worker_unchanged(twilio):
    sid = twilio.seeded.worker_sids["Alice"]
    before = twilio.request("GET", f"/Workers/{sid}").get_json()["attributes"]

    response = twilio.request("POST", f"/Workers/{sid}", data={"Attributes": nested_text(BREAKING)})

    assert_refused(response, "Attributes")
    assert twilio.request("GET", f"/Workers/{sid}").get_json()["attributes"] == before


def test_workflow_configuration_too_deep_creates_no_workflow(twilio):
    before = twilio.listed("/Workflows", "workflows")

    response = twilio.request(
        "POST",
        "/Workflows",
        data={
            "FriendlyName": "Deep",
            "Configuration": twilio.configuration(nested_text(BREAKING)),
        },
    )

    assert_refused(response, "Configuration")
    assert twilio.listed("/Workflows", "workflows") == before


def test_workflow_configuration_too_deep_leaves_the_workflow_unchanged(twilio):
    sid = twilio.seeded.workflow_sid
    before = twilio.request("GET", f"/Workflows/{sid}").get_json()["configuration"]

    response = twilio.request(
        "POST",
        f"/Workflows/{sid}",
        data={"Configuration": twilio.configuration(nested_text(BREAKING))},
    )

    assert_refused(response, "Configuration")
    assert twilio.request("GET", f"/Workflows/{sid}").get_json()["configuration"] == before


def test_evaluate_worker_attributes_too_deep(twilio):
    response = twilio.request(
        "GET", "/TaskQueues", query_string={"EvaluateWorkerAttributes": nested_text(BREAKING)}
    )

    assert_refused(response, "EvaluateWorkerAttributes")


def test_a_crafted_page_token_nesting_deep(twilio):
    key = "[" * BREAKING + "]" * BREAKING
    token = "PA" + base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")

    response = twilio.request("GET", "/Workers", query_string={"PageToken": token})

    assert_refused(response, "PageToken")


# -- the quickstart's /create_task ------------------------------------------------------------


def assert_server_refused(response: Any, parameter: str) -> None:
    assert response.status_code == 400, response.text
    error = response.get_json()["error"]
    assert (error["status"], error["code"]) == (400, "invalid_parameter")
    assert error["message"].startswith(parameter), error
    assert f"at most {MAX_DEPTH} levels" in error["message"], error


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, FORWARDED, BREAKING])
def test_create_task_attributes_too_deep(client, upstream, levels):
    response = client.post("/create_task", data={"Attributes": nested_text(levels)})

    assert_server_refused(response, "Attributes")
    assert len(upstream.calls) == 0


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, FORWARDED, BREAKING])
def test_create_task_json_body_too_deep(client, upstream, levels):
    body = '{"Attributes": ' + nested_text(levels) + "}"

    response = client.post("/create_task", data=body, content_type="application/json")

    assert_server_refused(response, "Attributes")
    assert len(upstream.calls) == 0


def test_create_task_json_body_names_the_member_that_nests_too_deep(client, upstream):
    body = '{"Priority": 5, "Timeout": ' + "[" * BREAKING + "]" * BREAKING + "}"

    response = client.post("/create_task", data=body, content_type="application/json")

    assert_server_refused(response, "Timeout")
    assert len(upstream.calls) == 0


def test_create_task_json_body_at_the_limit_is_sent(
    client, upstream, tasks_url, task_json, sent_form
):
    attributes = nested_text(MAX_DEPTH)
    upstream.post(tasks_url, json=task_json(attributes=attributes), status=201)

    body = '{"Attributes": ' + attributes + "}"

    response = client.post("/create_task", data=body, content_type="application/json")

    assert response.status_code == 201, response.text
    assert sent_form(upstream.calls[0])["Attributes"] == [attributes]
