"""/create_task: the exact request sent to TaskRouter, the answer, and every bad parameter
refused with 400 before anything is sent.
"""

from __future__ import annotations

import base64
import io
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
        "reason": None,
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


def test_a_task_canceled_at_once_says_why(client, upstream, tasks_url, task_json):
    reason = "Task did not match any filter of its workflow, which has no default_filter"
    upstream.post(
        tasks_url, json=task_json(assignment_status="canceled", reason=reason), status=201
    )

    response = client.post("/create_task", data={"selected_language": "xx"})

    assert response.status_code == 201
    assert response.get_json()["reason"] == reason


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


BAD_PARAMETERS = [
    ({"Attributes": '{"k": 1e999}'}, "Attributes holds a number too large for JSON: 1e999"),
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
]


@pytest.mark.parametrize(("params", "message"), BAD_PARAMETERS)
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


# -- a JSON body ------------------------------------------------------------------------------


def test_selected_language_in_a_json_body(client, upstream, tasks_url, task_json, sent_form):
    upstream.post(tasks_url, json=task_json(attributes='{"selected_language":"en"}'), status=201)

    response = client.post("/create_task", json={"selected_language": "en"})

    assert response.status_code == 201
    assert response.get_json()["attributes"] == {"selected_language": "en"}
    assert sent_form(upstream.calls[0])["Attributes"] == ['{"selected_language":"en"}']


@pytest.mark.parametrize(
    "body",
    [
        {"Attributes": {"selected_language": "en", "tier": 2}, "Priority": 5, "Timeout": 60},
        {"Attributes": '{"selected_language": "en", "tier": 2}', "Priority": "5", "Timeout": "60"},
        {"attributes": {"selected_language": "en", "tier": 2}, "priority": 5, "timeout": 60},
    ],
    ids=["values", "strings", "lowercase"],
)
def test_attributes_priority_and_timeout_in_a_json_body(
    client, upstream, tasks_url, task_json, sent_form, sids, body
):
    upstream.post(tasks_url, json=task_json(priority=5, timeout=60), status=201)

    response = client.post("/create_task", json=body)

    assert response.status_code == 201
    form = sent_form(upstream.calls[0])
    assert form["WorkflowSid"] == [sids.workflow]
    assert json.loads(form["Attributes"][0]) == {"selected_language": "en", "tier": 2}
    assert (form["Priority"], form["Timeout"]) == (["5"], ["60"])


def test_a_json_body_with_a_charset_and_the_query_string_together(
    client, upstream, tasks_url, task_json, sent_form
):
    upstream.post(tasks_url, json=task_json(), status=201)

    response = client.post(
        "/create_task?Priority=7",
        data=json.dumps({"selected_language": "pt-BR"}).encode("utf-8"),
        content_type="application/json; charset=utf-8",
    )

    assert response.status_code == 201
    form = sent_form(upstream.calls[0])
    assert json.loads(form["Attributes"][0]) == {"selected_language": "pt-BR"}
    assert form["Priority"] == ["7"]


def test_an_empty_body_is_no_body_but_an_unreadable_one_is_refused(
    client, upstream, tasks_url, task_json, sent_form
):
    # curl -X POST sends the form type with nothing; a browser's address bar sends no body.
    upstream.post(tasks_url, json=task_json(), status=201)
    empty = [
        client.post("/create_task", data="", content_type="application/x-www-form-urlencoded"),
        client.post("/create_task", data="", content_type="application/json"),
        client.post("/create_task", data="", content_type="text/plain"),
        client.get("/create_task", headers={"Accept": "text/html", "Sec-Fetch-Site": "none"}),
    ]
    assert [response.status_code for response in empty] == [201] * 4
    assert all(
        sent_form(call)["Attributes"] == ['{"selected_language":"es"}'] for call in upstream.calls
    )

    refused = client.post("/create_task", data="en", content_type="text/plain")
    assert refused.status_code == 400
    assert refused.get_json()["error"]["code"] == "invalid_body"
    assert len(upstream.calls) == 4


JSON_BAD_PARAMETERS = [
    # The form's cases, with its exact messages; a list in a form means the name given twice.
    *[case for case in BAD_PARAMETERS if not any(isinstance(v, list) for v in case[0].values())],
    ({"selected_language": 5}, "selected_language must be a string, not a number"),
    ({"selected_language": None}, "selected_language must be a string, not null"),
    ({"selected_language": ["en"]}, "selected_language must be a string, not a list"),
    ({"Attributes": [1, 2]}, "Attributes must be a JSON object, not a list or value"),
    ({"Attributes": 5}, "Attributes must be a JSON object, not a list or value"),
    ({"Attributes": None}, "Attributes must be a JSON object, not a list or value"),
    ({"Attributes": {"note": "x" * 4100}}, f"Attributes {ATTRIBUTES_LIMIT}"),
    ({"Attributes": {"note": "é" * 2100}}, f"Attributes {ATTRIBUTES_LIMIT}"),
    (
        {"Attributes": {"selected_language": "en"}, "selected_language": "es"},
        "Attributes and selected_language were both given",
    ),
    ({"Priority": -1}, "Priority must be a whole number from 0 to 2147483647"),
    ({"Priority": 2147483648}, "Priority must be a whole number from 0 to 2147483647"),
    ({"Priority": 1.5}, "Priority must be a whole number from 0 to 2147483647"),
    ({"Priority": 5.0}, "Priority must be a whole number from 0 to 2147483647"),
    ({"Priority": True}, "Priority must be a whole number from 0 to 2147483647"),
    ({"Priority": [1]}, "Priority must be a whole number from 0 to 2147483647"),
    ({"Priority": None}, "Priority must be a whole number from 0 to 2147483647"),
    ({"Priority": 1, "priority": 2}, "Priority was given more than once"),
    ({"Timeout": 0}, "Timeout must be a whole number from 1 to 1209600"),
    ({"Timeout": 10**20}, "Timeout must be a whole number from 1 to 1209600"),
]


@pytest.mark.parametrize(("body", "message"), JSON_BAD_PARAMETERS)
def test_bad_parameters_in_a_json_body_are_refused_like_the_form(client, upstream, body, message):
    response = client.post("/create_task", json=body)

    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_parameter"
    assert error["message"].startswith(message)
    assert error["more_info"] is None
    assert len(upstream.calls) == 0


FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("body", "content_type", "query", "code", "message"),
    [
        (
            '{"selected_language": "en"',
            "application/json",
            "",
            "invalid_body",
            "The body is not valid JSON (Expecting ',' delimiter at line 1 column 27)",
        ),
        ('{"Priority": NaN}', "application/json", "", "invalid_body", "The body is not valid JSON"),
        (
            '{"Attributes": {"k": 1e999}}',
            "application/json",
            "",
            "invalid_body",
            "The body holds a number too large for JSON: 1e999",
        ),
        (b"\xff\xfe\xfa", "application/json", "", "invalid_body", "The body is not valid JSON"),
        ("[" * 5000 + "]" * 5000, "application/json", "", "invalid_body", "The body is not valid"),
        (
            '["en"]',
            "application/json",
            "",
            "invalid_body",
            "The JSON body must be an object, not a list",
        ),
        (
            '"en"',
            "application/json",
            "",
            "invalid_body",
            "The JSON body must be an object, not a string",
        ),
        (
            "null",
            "application/json",
            "",
            "invalid_body",
            "The JSON body must be an object, not null",
        ),
        (
            '{"language": "en"}',
            "application/json",
            "",
            "unknown_parameter",
            "/create_task does not take language (given in the body): it takes selected_language, "
            "Attributes, Priority, Timeout",
        ),
        (
            "language=en",
            FORM,
            "",
            "unknown_parameter",
            "/create_task does not take language (given in the body)",
        ),
        (
            '{"selected_language": "en"}',
            FORM,
            "",
            "invalid_body",
            "The body looks like JSON sent as a form: send it with Content-Type: application/json",
        ),
        (
            '{"selected_language": "en"}',
            "text/plain",
            "",
            "invalid_body",
            "A body sent with text/plain is not read here: send the parameters as a JSON object",
        ),
        (
            '{"selected_language": "en"}',
            "",
            "",
            "invalid_body",
            "A body sent with no Content-Type is not read here",
        ),
        (
            '{"Priority": 1, "Priority": 2}',
            "application/json",
            "",
            "invalid_parameter",
            "Priority was given more than once in the JSON body",
        ),
        (
            '{"selected_language": "en"}',
            "application/json",
            "selected_language=en",
            "invalid_parameter",
            "selected_language was given more than once (in the query string and in the body)",
        ),
        (
            '{"Priority": 5}',
            "application/json",
            "priority=5",
            "invalid_parameter",
            "Priority was given more than once (in the query string and in the body)",
        ),
        (
            "Timeout=60",
            FORM,
            "Timeout=60",
            "invalid_parameter",
            "Timeout was given more than once (in the query string and in the body)",
        ),
    ],
)
def test_a_body_that_cannot_be_used_is_refused(
    client, upstream, body, content_type, query, code, message
):
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post(f"/create_task?{query}", data=body, headers=headers)

    assert response.status_code == 400
    error = response.get_json()["error"]
    assert (error["status"], error["code"]) == (400, code)
    assert error["message"].startswith(message)
    assert len(upstream.calls) == 0


def test_a_file_upload_is_refused(client, upstream):
    response = client.post(
        "/create_task", data={"Attributes": (io.BytesIO(b'{"selected_language": "en"}'), "a.json")}
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["message"].startswith("File uploads are not read here")
    assert len(upstream.calls) == 0


def test_a_json_body_from_another_site_is_refused_before_it_is_read(
    client, upstream, tasks_url, task_json, sent_form
):
    upstream.post(tasks_url, json=task_json(), status=201)
    # A cross-site page must ask first for a JSON body; the answer allows no other origin.
    preflight = client.options(
        "/create_task",
        headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert not any(name.startswith("Access-Control-Allow") for name, _ in preflight.headers)

    same_origin = client.post(
        "/create_task",
        json={"selected_language": "en"},
        headers={"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"},
    )
    assert same_origin.status_code == 201
    assert sent_form(upstream.calls[0])["Attributes"] == ['{"selected_language":"en"}']

    for headers, body, content_type in [
        ({"Origin": "https://evil.example"}, '{"selected_language": "en"}', "application/json"),
        ({"Sec-Fetch-Site": "cross-site"}, '{"selected_language": "en"}', "application/json"),
        # A form with enctype=text/plain needs no preflight: refused as cross-site first.
        ({"Sec-Fetch-Site": "cross-site"}, '{"selected_language": "en"}', "text/plain"),
        ({"Origin": "https://evil.example"}, "{not json", "application/json"),
    ]:
        response = client.post(
            "/create_task", data=body, headers={**headers, "Content-Type": content_type}
        )
        assert response.status_code == 403, headers
        assert response.get_json()["error"]["code"] == "cross_site_request"
    assert len(upstream.calls) == 1
