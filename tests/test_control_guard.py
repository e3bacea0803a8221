"""The guard on actions: direct local requests pass; forwarded or remote ones need CONTROL_TOKEN;
cross-site browser requests are refused; the signed callback and /healthz stay open.
"""

from __future__ import annotations

import pytest

REMOTE = {"REMOTE_ADDR": "203.0.113.9"}
PUBLIC_HOST = "abc123.ngrok.app"
NGROK = {
    "X-Forwarded-For": "198.51.100.20",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": PUBLIC_HOST,
}

ACTIONS = ["/create_task", "/accept_reservation", "/reject_reservation"]
GUARDED = [*ACTIONS, "/"]


@pytest.fixture
def guarded_client(make_app, control_token):
    return make_app(CONTROL_TOKEN=control_token).test_client()


def error_of(response) -> dict[str, object]:
    assert response.is_json
    return response.get_json()["error"]


@pytest.mark.parametrize(
    ("remote_addr", "host"),
    [
        ("127.0.0.1", "localhost:5000"),
        ("127.0.0.1", "127.0.0.1:5000"),
        ("127.0.0.2", "localhost"),
        ("::1", "[::1]:5000"),
        ("::ffff:127.0.0.1", "localhost:5000"),
    ],
)
def test_direct_local_requests_pass_without_a_token(client, upstream, remote_addr, host):
    response = client.get("/", environ_base={"REMOTE_ADDR": remote_addr}, headers={"Host": host})
    assert response.status_code == 200


@pytest.mark.parametrize("path", GUARDED)
@pytest.mark.parametrize(
    ("environ_base", "headers"),
    [
        (REMOTE, {}),
        ({}, NGROK),
        ({}, {"X-Forwarded-For": "198.51.100.20"}),
        ({}, {"X-Forwarded-Proto": "https"}),
        ({}, {"X-Forwarded-Host": PUBLIC_HOST}),
        ({}, {"Forwarded": "for=198.51.100.20;proto=https"}),
        # A page on another site whose name resolves to 127.0.0.1 (DNS rebinding).
        ({}, {"Host": "rebind.example.com"}),
    ],
    ids=[
        "remote",
        "ngrok",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "forwarded",
        "rebinding",
    ],
)
def test_without_a_configured_token_others_get_403(client, upstream, path, environ_base, headers):
    response = client.get(path, environ_base=environ_base, headers=headers)

    assert response.status_code == 403
    error = error_of(response)
    assert error["code"] == "control_token_not_set"
    assert "set CONTROL_TOKEN in .env" in error["message"]
    assert "Authorization: Bearer <token>" in error["message"]
    assert len(upstream.calls) == 0


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/", 200, None),
        # Past the guard, the actions go on to check their parameters.
        ("/accept_reservation", 400, "missing_parameter"),
        ("/reject_reservation", 400, "missing_parameter"),
        ("/create_task?Priority=x", 400, "invalid_parameter"),
    ],
)
def test_bearer_token_is_accepted_through_ngrok(
    guarded_client, control_token, upstream, path, status, code
):
    headers = {**NGROK, "Authorization": f"Bearer {control_token}"}
    response = guarded_client.get(path, headers=headers)
    assert response.status_code == status
    if code:
        assert error_of(response)["code"] == code


def test_query_token_is_accepted(guarded_client, control_token, upstream, tasks_url, task_json):
    upstream.post(tasks_url, json=task_json(), status=201)
    response = guarded_client.post(
        f"/create_task?token={control_token}", environ_base=REMOTE, data={"selected_language": "es"}
    )
    assert response.status_code == 201


@pytest.mark.parametrize("path", GUARDED)
def test_missing_token_is_401(guarded_client, upstream, path):
    response = guarded_client.get(path, headers=NGROK)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert error_of(response)["code"] == "control_token_required"
    assert len(upstream.calls) == 0


@pytest.mark.parametrize(
    ("headers", "query", "status", "code"),
    [
        ({"Authorization": "Bearer not-the-token-0123456789"}, "", 403, "control_token_invalid"),
        ({}, "?token=not-the-token-0123456789", 403, "control_token_invalid"),
        ({"Authorization": "Bearer t\u00f6ken-non-ascii"}, "", 403, "control_token_invalid"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "", 401, "control_token_required"),
        ({}, "?token=a&token=b", 401, "control_token_required"),
    ],
    ids=["wrong-bearer", "wrong-query", "non-ascii", "basic-auth", "repeated"],
)
@pytest.mark.parametrize("path", ACTIONS)
def test_wrong_token_is_refused(guarded_client, upstream, path, headers, query, status, code):
    response = guarded_client.get(f"{path}{query}", environ_base=REMOTE, headers=headers)
    assert response.status_code == status
    assert error_of(response)["code"] == code
    assert len(upstream.calls) == 0


def test_wrong_bearer_is_403_with_its_code(guarded_client, upstream):
    headers = {"Authorization": "Bearer not-the-token-0123456789"}
    response = guarded_client.get("/create_task", environ_base=REMOTE, headers=headers)
    assert response.status_code == 403
    assert error_of(response) == {
        "status": 403,
        "code": "control_token_invalid",
        "message": "The control token does not match CONTROL_TOKEN.",
        "more_info": None,
    }


def test_signed_callback_is_not_guarded(client, sign, callback_params):
    url = f"https://{PUBLIC_HOST}/assignment_callback"
    headers = {**NGROK, "X-Twilio-Signature": sign(url, callback_params)}
    response = client.post("/assignment_callback", data=callback_params, headers=headers)
    assert response.status_code == 200


def test_healthz_is_not_guarded(client):
    assert client.get("/healthz", headers=NGROK).status_code == 200


@pytest.mark.parametrize("path", ACTIONS)
@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Referer": "https://evil.example/page"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "http://localhost"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "http://localhost:3000"},
    ],
    ids=["origin", "null-origin", "referer", "fetch-cross-site", "fetch-same-site", "other-port"],
)
def test_cross_site_post_is_refused(client, upstream, path, headers):
    response = client.post(path, headers=headers)
    assert response.status_code == 403
    error = error_of(response)
    assert error["code"] == "cross_site_request"
    assert path in error["message"]
    assert len(upstream.calls) == 0


def test_cross_site_post_is_refused_even_with_the_token(guarded_client, control_token, upstream):
    headers = {
        **NGROK,
        "Authorization": f"Bearer {control_token}",
        "Origin": "https://evil.example",
    }
    response = guarded_client.post("/create_task", headers=headers)
    assert response.status_code == 403
    assert error_of(response)["code"] == "cross_site_request"
    assert len(upstream.calls) == 0


@pytest.mark.parametrize("path", ACTIONS)
def test_cross_site_get_of_an_action_is_refused(client, upstream, path):
    response = client.get(path, headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 403
    assert error_of(response)["code"] == "cross_site_request"
    assert len(upstream.calls) == 0


def test_cross_site_link_to_the_page_is_fine(client):
    assert client.get("/", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"},
        {"Origin": "http://localhost"},
        {"Referer": "http://localhost/?token=x"},
        {"Sec-Fetch-Site": "none"},
        {},
    ],
    ids=["fetch-same-origin", "origin", "referer", "typed-url", "curl"],
)
def test_same_origin_post_passes(client, upstream, tasks_url, task_json, headers):
    upstream.post(tasks_url, json=task_json(), status=201)
    response = client.post("/create_task", headers=headers)
    assert response.status_code == 201


def test_same_origin_post_through_ngrok(
    guarded_client, control_token, upstream, tasks_url, task_json
):
    upstream.post(tasks_url, json=task_json(), status=201)
    headers = {**NGROK, "Origin": f"https://{PUBLIC_HOST}", "Sec-Fetch-Site": "same-origin"}
    response = guarded_client.post(f"/create_task?token={control_token}", headers=headers)
    assert response.status_code == 201


def test_public_base_url_origin_passes(make_app, control_token, upstream, tasks_url, task_json):
    client = make_app(CONTROL_TOKEN=control_token, PUBLIC_BASE_URL=f"https://{PUBLIC_HOST}")
    upstream.post(tasks_url, json=task_json(), status=201)
    headers = {"Origin": f"https://{PUBLIC_HOST}", "Authorization": f"Bearer {control_token}"}
    response = client.test_client().post("/create_task", environ_base=REMOTE, headers=headers)
    assert response.status_code == 201
