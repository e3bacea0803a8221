"""/create_task: the exact request sent to TaskRouter, the answer, and every bad parameter
refused with 400 before anything is sent.
"""

from __future__ import annotations

import base64
import json

import pytest
import responses


def basic_auth(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


@pytest.mark.parametrize("path", ["/create_task", "/create-task"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_default_task_is_spanish(
    client, upstream, tasks_url, task_json, sent_form, sids, auth_token, path, method
):
    upstream.post(tasks_url, json=task_json(), status=201)

    response = client.open(path, method=method)

    assert response.status_code == 201
    assert response.get_json() == {
        "sid": sids.task,
        "assignment_status": "pending",
        "attributes": {"selected_language": "es"},
        "workflow_sid": sids.workflow,
        "workflow_friendly_name": "Incoming Customer Care Requests",
        "task_queue_sid": sids.task_queue,
        "task_queue_friendly_name": "Customer Care Requests - Spanish",
        "priority": 0,
        "timeout": 86400,
        "date_created": "2024-05-14T14:26:54Z",
    }
    [call] = upstream.calls
    assert call.request.method == "POST"
    assert call.request.url == tasks_url
    assert call.request.headers["Authorization"] == basic_auth(sids.account, auth_token)
    assert call.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert sent_form(call) == {
        "WorkflowSid": [sids.workflow],
        "Attributes": ['{"selected_language":"es"}'],
    }


def test_selected_language_overrides(client, upstream, tasks_url, task_json, sent_form):
    upstream.post(
        tasks_url,
        json=task_json(
            attributes='{"selected_language":"en"}',
            task_queue_friendly_name="Customer Care Requests - English",
        ),
        status=201,
    )
    response = client.post("/create_task", data={"selected_language": "en"})

    assert response.status_code == 201
    assert response.get_json()["attributes"] == {"selected_language": "en"}
    assert response.get_json()["task_queue_friendly_name"] == "Customer Care Requests - English"
    assert json.loads(sent_form(upstream.calls[0])["Attributes"][0]) == {"selected_language": "en"}


def test_attributes_priority_and_timeout(client, upstream, tasks_url, task_json, sent_form, sids):
    attributes = {"selected_language": "es", "customer": {"name": "Ana", "tier": 2}}
    upstream.post(
        tasks_url,
        json=task_json(attributes=json.dumps(attributes), priority=5, timeout=3600),
        status=201,
    )
    response = client.get(
        "/create_task",
        query_string={"Attributes": json.dumps(attributes), "Priority": "5", "Timeout": "3600"},
    )

    assert response.status_code == 201
    assert response.get_json()["attributes"] == attributes
    assert response.get_json()["priority"] == 5
    form = sent_form(upstream.calls[0])
    assert form["WorkflowSid"] == [sids.workflow]
    assert json.loads(form["Attributes"][0]) == attributes
    assert form["Priority"] == ["5"]
    assert form["Timeout"] == ["3600"]


@pytest.mark.parametrize(("priority", "timeout"), [("0", "1"), ("2147483647", "1209600")])
def test_limits_are_inclusive(client, upstream, tasks_url, task_json, sent_form, priority, timeout):
    upstream.post(tasks_url, json=task_json(), status=201)
    response = client.post("/create_task", data={"Priority": priority, "Timeout": timeout})
    assert response.status_code == 201
    form = sent_form(upstream.calls[0])
    assert (form["Priority"], form["Timeout"]) == ([priority], [timeout])


def test_api_key_authenticates_rest_calls(
    make_app, account_environ, upstream, tasks_url, task_json, sids
):
    environ = {**account_environ, "TWILIO_API_KEY": sids.api_key, "TWILIO_API_SECRET": "s3cret"}
    upstream.post(tasks_url, json=task_json(), status=201)

    response = make_app(environ).test_client().post("/create_task")

    assert response.status_code == 201
    authorization = upstream.calls[0].request.headers["Authorization"]
    assert authorization == basic_auth(sids.api_key, "s3cret")
    # The account is still named in the URL.
    assert upstream.calls[0].request.url == tasks_url


def test_another_base_url_with_the_unchanged_library(
    make_app, account_environ, upstream, task_json, sids, monkeypatch
):
    # The library reads TWILIO_EDGE from the environment by default; it must not apply here.
    monkeypatch.setenv("TWILIO_EDGE", "sydney")
    monkeypatch.setenv("TWILIO_REGION", "au1")
    local = "http://127.0.0.1:8080/sandbox"
    upstream.post(f"{local}/v1/Workspaces/{sids.workspace}/Tasks", json=task_json(), status=201)
    app = make_app({**account_environ, "TASKROUTER_BASE_URL": f"{local}/"})

    response = app.test_client().post("/create_task")

    assert response.status_code == 201
    assert upstream.calls[0].request.url == f"{local}/v1/Workspaces/{sids.workspace}/Tasks"


def test_the_http_timeout_setting_reaches_the_request(
    make_app, account_environ, upstream, tasks_url, task_json
):
    upstream.post(tasks_url, json=task_json(), status=201)
    app = make_app({**account_environ, "TWILIO_HTTP_TIMEOUT": "3.5"})
    app.test_client().post("/create_task")
    assert upstream.calls[0].request.req_kwargs["timeout"] == 3.5


ATTRIBUTES_LIMIT = "must be at most 4096 bytes"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"selected_language": ""}, "selected_language must be a language code"),
        ({"selected_language": "e"}, "selected_language must be a language code"),
        ({"selected_language": "spanish"}, "selected_language must be a language code"),
        ({"selected_language": 'es" OR 1==1'}, "selected_language must be a language code"),
        ({"selected_language": "es-"}, "selected_language must be a language code"),
        ({"Attributes": "[1, 2]"}, "Attributes must be a JSON object, not a list or value"),
        ({"Attributes": '"es"'}, "Attributes must be a JSON object, not a list or value"),
        ({"Attributes": "{selected_language: es}"}, "Attributes must be a JSON object"),
        ({"Attributes": ""}, "Attributes must be a JSON object"),
        ({"Attributes": '{"priority": NaN}'}, "Attributes must be a JSON object"),
        ({"Attributes": "[" * 2000 + "]" * 2000}, "Attributes must be a JSON object"),
        ({"Attributes": json.dumps({"note": "x" * 4100})}, f"Attributes {ATTRIBUTES_LIMIT}"),
        (
            {"Attributes": '{"selected_language": "en"}', "selected_language": "es"},
            "Attributes and selected_language were both given",
        ),
        ({"Priority": "-1"}, "Priority must be a whole number from 0 to 2147483647"),
        ({"Priority": "2147483648"}, "Priority must be a whole number from 0 to 2147483647"),
        ({"Priority": "1.5"}, "Priority must be a whole number from 0 to 2147483647"),
        ({"Priority": " 5"}, "Priority must be a whole number from 0 to 2147483647"),
        ({"Priority": "high"}, "Priority must be a whole number from 0 to 2147483647"),
        ({"Priority": ["1", "2"]}, "Priority was given more than once"),
        ({"Timeout": "0"}, "Timeout must be a whole number from 1 to 1209600"),
        ({"Timeout": "1209601"}, "Timeout must be a whole number from 1 to 1209600"),
        ({"Timeout": "99999999999"}, "Timeout must be a whole number from 1 to 1209600"),
    ],
)
def test_bad_parameters_are_refused_before_any_upstream_call(client, upstream, params, message):
    response = client.post("/create_task", data=params)

    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["status"] == 400
    assert error["code"] == "invalid_parameter"
    assert error["message"].startswith(message)
    assert error["more_info"] is None
    assert len(upstream.calls) == 0


def test_unparsable_attributes_in_the_answer_are_passed_through(
    client, upstream, tasks_url, task_json
):
    upstream.post(tasks_url, json=task_json(attributes="not json"), status=201)
    response = client.post("/create_task")
    assert response.status_code == 201
    assert response.get_json()["attributes"] == "not json"


def test_responses_mock_refuses_unregistered_calls(client, upstream):
    # The fixture itself must fail loudly rather than reach the network.
    response = client.post("/create_task")
    assert response.status_code == 502
    assert "Could not reach TaskRouter" in response.get_json()["error"]["message"]
    assert isinstance(upstream, responses.RequestsMock)
