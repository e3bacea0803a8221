"""The HTTP contract around the resources: auth, error bodies, 404/405/500, URLs, no HTML.

Raw requests where the twilio library would hide the detail; the library where it matters.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from tests.sandbox.conftest import PREFIX, Live, assert_error_body, live_sandbox, twilio_error


def test_missing_credentials_are_401(live: Live) -> None:
    response = live.http("GET", "/v1/Workspaces", auth=None)
    body = assert_error_body(response, 401, 20003)
    assert "Authenticate" in body["message"]
    assert response.headers["WWW-Authenticate"].startswith("Basic ")


@pytest.mark.parametrize("which", ["username", "password"])
def test_wrong_credentials_are_401(live: Live, which: str) -> None:
    account_sid, auth_token = live.auth
    auth = ("AC" + "0" * 32, auth_token) if which == "username" else (account_sid, "wrong")
    response = live.http("GET", f"/v1/Workspaces/{live.sandbox.seeded.workspace_sid}", auth=auth)
    assert_error_body(response, 401, 20003)


def test_twilio_library_with_a_wrong_token_gets_401(live: Live) -> None:
    client = Client(
        live.sandbox.account_sid, "not-the-token", http_client=TwilioHttpClient(timeout=10)
    )
    client.taskrouter.base_url = live.base_url
    with twilio_error(401, 20003):
        client.taskrouter.v1.workspaces(live.sandbox.seeded.workspace_sid).fetch()


def test_unknown_paths_under_the_prefix_are_json_404(live: Live) -> None:
    workspace_sid = live.sandbox.seeded.workspace_sid
    for path in (
        "",
        "/",
        "/v2/Workspaces",
        "/v1",
        f"/v1/Workspaces/{workspace_sid}/Nonsense",
        f"/v1/Workspaces/{workspace_sid}/Workers/Statistics/Nonsense",
        f"/v1/Workspaces/{workspace_sid}/Tasks/WT{'9' * 32}/Reservations",
    ):
        response = live.http("GET", path)
        body = assert_error_body(response, 404, 20404)
        assert "was not found" in body["message"], path
        assert "<html" not in response.text.lower()


def test_unknown_paths_need_credentials_too(live: Live) -> None:
    assert_error_body(live.http("GET", "/v2/Anything", auth=None), 401, 20003)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/v1/Workspaces", "GET, POST"),
        ("PUT", "/v1/Workspaces/{ws}", "DELETE, GET, POST"),
        ("POST", "/v1/Workspaces/{ws}/Events", "GET"),
        ("PATCH", "/v1/Workspaces/{ws}/Tasks", "GET, POST"),
        ("DELETE", "/v1/Workspaces/{ws}/Workers/{wk}/Reservations", "GET"),
        ("OPTIONS", "/v1/Workspaces/{ws}", "DELETE, GET, POST"),
    ],
)
def test_wrong_method_is_405(live: Live, method: str, path: str, allowed: str) -> None:
    seeded = live.sandbox.seeded
    url = path.format(ws=seeded.workspace_sid, wk=seeded.worker_sids["Alice"])
    response = live.http(method, url)
    body = assert_error_body(response, 405, 20004)
    assert method in body["message"]
    assert response.headers["Allow"] == allowed


def test_trailing_slash_and_head(live: Live) -> None:
    assert live.http("GET", "/v1/Workspaces/").status_code == 200
    head = live.http("HEAD", f"/v1/Workspaces/{live.sandbox.seeded.workspace_sid}")
    assert head.status_code == 200 and head.content == b""


def test_urls_name_the_host_that_answered(live: Live) -> None:
    response = live.http(
        "GET",
        f"/v1/Workspaces/{live.sandbox.seeded.workspace_sid}",
        headers={"Host": "sandbox.example.test:8443"},
    )
    body = response.json()
    expected = f"http://sandbox.example.test:8443{PREFIX}/v1/Workspaces/"
    assert body["url"].startswith(expected)
    assert all(link.startswith(expected) for link in body["links"].values())
    listing = live.http("GET", "/v1/Workspaces", headers={"Host": "other.test"}).json()
    assert listing["meta"]["url"].startswith(f"http://other.test{PREFIX}/v1/Workspaces?")
    assert listing["meta"]["first_page_url"] == (
        f"http://other.test{PREFIX}/v1/Workspaces?PageSize=50&Page=0"
    )
    # Each origin's base is worked out once and kept: the first host is still its own.
    again = live.http("GET", "/v1/Workspaces", headers={"Host": "sandbox.example.test:8443"})
    assert again.json()["meta"]["url"].startswith(expected.removesuffix("/Workspaces/"))


def test_delete_answers_204_with_no_body(live: Live) -> None:
    workspace = live.new_workspace()
    response = live.http("DELETE", f"/v1/Workspaces/{workspace.sid}")
    assert response.status_code == 204 and response.content == b""


def test_repeated_single_value_parameter_is_400(live: Live) -> None:
    response = live.http(
        "POST", "/v1/Workspaces", data=[("FriendlyName", "a"), ("FriendlyName", "b")]
    )
    assert "FriendlyName" in assert_error_body(response, 400, 20001)["message"]


def test_json_body_is_not_form_parameters(live: Live) -> None:
    response = live.http("POST", "/v1/Workspaces", json={"FriendlyName": "x"})
    assert "FriendlyName" in assert_error_body(response, 400, 20001)["message"]


def test_attributes_over_the_limit_are_400(live: Live) -> None:
    response = live.http(
        "POST",
        f"/v1/Workspaces/{live.sandbox.seeded.workspace_sid}/Tasks",
        data={"Attributes": json.dumps({"blob": "x" * 20_000})},
    )
    assert "Attributes" in assert_error_body(response, 400, 20001)["message"]


def test_werkzeug_refusals_are_json_too() -> None:
    # An app-wide body limit makes werkzeug refuse the form; the answer keeps Twilio's shape.
    with live_sandbox(MAX_CONTENT_LENGTH=1000) as small:
        response = small.http("POST", "/v1/Workspaces", data={"FriendlyName": "x" * 5000})
        assert_error_body(response, 413, 20001)


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ({"Priority": "9999999999999999999"}, "Priority"),
        ({"StartDate": "0001-01-01T00:00:00+01:00"}, "StartDate"),
    ],
)
def test_values_out_of_range_are_400(live: Live, query: dict, fragment: str) -> None:
    workspace_sid = live.sandbox.seeded.workspace_sid
    path = "Events" if "StartDate" in query else "Tasks"
    response = live.http("GET", f"/v1/Workspaces/{workspace_sid}/{path}", params=query)
    assert fragment in assert_error_body(response, 400, 20001)["message"]


@pytest.mark.parametrize(
    "digits",
    [
        "\u0663",  # ARABIC-INDIC DIGIT THREE: int() reads it, TaskRouter's integers are ASCII
        "\u0967\u0968",  # DEVANAGARI ONE TWO
        "\uff15",  # FULLWIDTH DIGIT FIVE
        "1\u0660",  # an ASCII digit followed by ARABIC-INDIC ZERO
    ],
)
def test_integers_are_ascii_digits_only(live: Live, digits: str) -> None:
    """An integer parameter written in another script's digits is a 400 naming it."""
    workspace = live.seeded_workspace
    with twilio_error(400, 20001, "Priority"):
        workspace.tasks.create(attributes="{}", priority=digits)
    response = live.http(
        "GET",
        f"/v1/Workspaces/{live.sandbox.seeded.workspace_sid}/Tasks",
        params={"PageSize": digits},
    )
    assert "PageSize" in assert_error_body(response, 400, 20001)["message"]


@pytest.mark.parametrize("key", ["[true, 1]", '["x", false]', "[NaN, 1]", '["x", Infinity]'])
def test_page_tokens_with_foreign_values_are_400(live: Live, key: str) -> None:
    """A PageToken whose boundary holds a boolean or a non-finite number was never issued."""
    token = "PA" + base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")
    response = live.http(
        "GET",
        f"/v1/Workspaces/{live.sandbox.seeded.workspace_sid}/Workers",
        params={"PageToken": token},
    )
    assert "PageToken" in assert_error_body(response, 400, 20001)["message"]


@pytest.mark.parametrize("value", [" true", "TRUE ", "\tfalse"])
def test_re_evaluate_tasks_reads_like_every_boolean(live: Live, value: str) -> None:
    """ReEvaluateTasks is a boolean like the others: surrounding spaces and case allowed."""
    workflow_sid = live.sandbox.seeded.workflow_sid
    response = live.http(
        "POST",
        f"/v1/Workspaces/{live.sandbox.seeded.workspace_sid}/Workflows/{workflow_sid}",
        data={"ReEvaluateTasks": value},
    )
    assert response.status_code == 200, response.text
    refused = live.http(
        "POST",
        f"/v1/Workspaces/{live.sandbox.seeded.workspace_sid}/Workflows/{workflow_sid}",
        data={"ReEvaluateTasks": "yes"},
    )
    assert "ReEvaluateTasks" in assert_error_body(refused, 400, 20001)["message"]


def test_unexpected_failure_is_a_logged_twilio_shaped_500(
    live: Live, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(live.sandbox.engine, "get_workspace", broken)
    with caplog.at_level(logging.ERROR, logger="taskrouter_sandbox.api"):
        response = live.http("GET", f"/v1/Workspaces/{live.sandbox.seeded.workspace_sid}")
    assert_error_body(response, 500, 20500)
    assert "disk on fire" not in response.text and "Traceback" not in response.text
    assert any("disk on fire" in (record.exc_text or "") for record in caplog.records)


# A fuzz over the parameters of the busiest endpoints: whatever arrives, the answer is a
# Twilio-shaped 2xx/4xx, never a 500. The Flask test client keeps it fast.

_texts = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            *("", "true", "false", "0", "-1", "1e9", "{}", "[]", "null", "WS", "PA", "PB"),
            *("9999999999999999999", "-9999999999999999999", "99999999999999999999"),
            *("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2024-01-01T00:00:00Z"),
        ]
    ),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    path=st.sampled_from(["Tasks", "Workers", "TaskQueues", "Workflows", "Activities", "Events"]),
    method=st.sampled_from(["GET", "POST"]),
    params=st.dictionaries(
        st.sampled_from(
            [
                "FriendlyName",
                "Attributes",
                "Priority",
                "Timeout",
                "WorkflowSid",
                "TaskChannel",
                "AssignmentStatus",
                "Ordering",
                "PageSize",
                "Page",
                "PageToken",
                "TargetWorkers",
                "TargetWorkersExpression",
                "Configuration",
                "Available",
                "ActivitySid",
                "MaxReservedWorkers",
                "EvaluateTaskAttributes",
                "Minutes",
                "StartDate",
            ]
        ),
        _texts,
        max_size=5,
    ),
)
def test_no_input_reaches_a_500(live: Live, path: str, method: str, params: dict) -> None:
    client = live.app.test_client()
    url = f"{PREFIX}/v1/Workspaces/{live.sandbox.seeded.workspace_sid}/{path}"
    kwargs: dict[str, Any] = {"query_string": params} if method == "GET" else {"data": params}
    response = client.open(url, method=method, auth=live.auth, **kwargs)
    assert response.status_code in (200, 201, 400, 404, 405), response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    if response.status_code >= 400:
        assert set(response.get_json()) == {"code", "message", "more_info", "status"}
