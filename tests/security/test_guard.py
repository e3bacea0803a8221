"""The guard's vectors: a cross-site GET of an action, HEAD and OPTIONS of an action, and
requests that only look local (forwarding headers, two Host headers, an absolute-form target),
in the test client, over a real socket to Werkzeug's server, and under real gunicorn.
"""

from __future__ import annotations

import http.client
import socket

import pytest
import requests
from twilio.rest import Client

from tests.servers import gunicorn_app

# Every endpoint that creates or changes work, with the methods it takes.
GET_ACTIONS = [
    "/create_task",
    "/create-task",
    "/accept_reservation",
    "/accept-reservation",
    "/reject_reservation",
    "/reject-reservation",
]
POST_ACTIONS = ["/update_worker", "/update_task"]
ACTIONS = [*GET_ACTIONS, *POST_ACTIONS]


def error_of(response) -> dict[str, object]:
    assert response.is_json, response.data
    return response.get_json()["error"]


# 1. A cross-site GET of an action is refused like a POST.


@pytest.mark.parametrize("path", GET_ACTIONS)
@pytest.mark.parametrize(
    "headers",
    [
        {"Referer": "http://evil.example/"},
        {"Referer": "https://evil.example/page?x=1"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Referer": "http://localhost:3000/"},
        {"Referer": "not a url"},
    ],
    ids=["referer", "https-referer", "origin", "null-origin", "other-port", "garbled-referer"],
)
def test_a_get_of_an_action_sent_from_another_site_is_refused(client, upstream, path, headers):
    response = client.get(path, headers=headers)

    assert response.status_code == 403
    error = error_of(response)
    assert error["code"] == "cross_site_request"
    assert path in error["message"]
    assert "another site" in error["message"]
    assert len(upstream.calls) == 0


def test_a_cross_site_get_is_refused_even_with_the_token(make_app, control_token, upstream):
    client = make_app(CONTROL_TOKEN=control_token).test_client()
    headers = {
        "X-Forwarded-For": "198.51.100.20",
        "Authorization": f"Bearer {control_token}",
        "Referer": "https://evil.example/",
    }
    response = client.get("/create_task", headers=headers)
    assert response.status_code == 403
    assert error_of(response)["code"] == "cross_site_request"
    assert len(upstream.calls) == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "none"},
        {},
        {"Referer": "http://localhost/"},
        {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"},
    ],
    ids=["typed-in-the-address-bar", "curl", "own-page-referer", "own-page-fetch"],
)
def test_a_get_of_an_action_from_this_server_or_curl_still_acts(
    client, upstream, tasks_url, task_json, headers
):
    upstream.post(tasks_url, json=task_json(), status=201)
    response = client.get("/create_task", headers=headers)
    assert response.status_code == 201


def test_the_read_only_page_may_be_linked_from_another_site(client):
    response = client.get("/", headers={"Referer": "https://evil.example/"})
    assert response.status_code == 200


# 5. HEAD and OPTIONS never act.


@pytest.mark.parametrize("path", ACTIONS)
def test_head_of_an_action_is_405_and_does_not_act(client, upstream, path):
    response = client.head(path)

    assert response.status_code == 405
    assert response.mimetype == "application/json"
    allowed = {method.strip() for method in response.headers["Allow"].split(",")}
    assert "HEAD" not in allowed
    assert "POST" in allowed
    assert ("GET" in allowed) == (path in GET_ACTIONS)
    assert len(upstream.calls) == 0


@pytest.mark.parametrize(
    ("path", "allow"),
    [*((path, "GET, OPTIONS, POST") for path in GET_ACTIONS), ("/update_task", "OPTIONS, POST")],
)
def test_the_405_for_head_names_the_methods_that_act(client, upstream, path, allow):
    # An answer to HEAD has no body: its Allow and Content-Type say what the JSON would.
    response = client.head(path)
    assert response.status_code == 405
    # Werkzeug's own 405 (a POST-only route) lists the methods in no set order.
    assert sorted(response.headers["Allow"].split(", ")) == allow.split(", ")
    assert response.data == b""


@pytest.mark.parametrize("path", ACTIONS)
def test_options_of_an_action_answers_without_acting(client, upstream, path):
    response = client.options(path)

    assert response.status_code == 204
    assert response.data == b""
    allowed = {method.strip() for method in response.headers["Allow"].split(",")}
    assert "HEAD" not in allowed
    assert {"OPTIONS", "POST"} <= allowed
    assert len(upstream.calls) == 0


@pytest.mark.parametrize("path", ["/", "/healthz"])
def test_head_of_a_read_only_view_still_answers(client, path):
    assert client.head(path).status_code == 200


def test_head_and_options_create_no_task_over_http(live_app):
    server = live_app()
    for method in ("HEAD", "OPTIONS"):
        for path in ("/create_task", "/create-task"):
            response = requests.request(method, f"{server.url}{path}", timeout=10)
            assert response.status_code in (204, 405), (method, path, response.status_code)
    assert server.workspace.tasks.list() == []
    # The same server still creates a task for a GET.
    assert requests.get(f"{server.url}/create_task", timeout=10).status_code == 201
    assert len(server.workspace.tasks.list()) == 1


def test_a_cross_site_get_creates_no_task_over_http(live_app):
    server = live_app()
    response = requests.get(
        f"{server.url}/create_task", headers={"Referer": "http://evil.example/"}, timeout=10
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "cross_site_request"
    assert server.workspace.tasks.list() == []


# 7. Requests that only look local.

PROXY_HEADERS = {
    "X-Real-IP": "198.51.100.20",
    "Via": "1.1 proxy.example",
    "True-Client-IP": "198.51.100.20",
    "CF-Connecting-IP": "198.51.100.20",
    "X-Client-IP": "198.51.100.20",
    "X-Cluster-Client-IP": "198.51.100.20",
    "Fastly-Client-IP": "198.51.100.20",
    "X-Originating-IP": "198.51.100.20",
    "Client-IP": "198.51.100.20",
    "X-Remote-Addr": "198.51.100.20",
    "X-Forwarded-Port": "443",
    "X-Forwarded-Server": "proxy.example",
    "X-Original-Host": "public.example",
    "CF-Ray": "8a1b2c3d4e5f6a7b-AMS",
    "X-Envoy-External-Address": "198.51.100.20",
    "X-Amzn-Trace-Id": "Root=1-67891233-abcdef012345678912345678",
    "forwarded": "for=198.51.100.20",
    "x-real-ip": "198.51.100.20",
}


@pytest.mark.parametrize(("name", "value"), PROXY_HEADERS.items(), ids=list(PROXY_HEADERS))
@pytest.mark.parametrize("path", ["/create_task", "/"])
def test_any_forwarding_header_counts_as_proxied(client, upstream, path, name, value):
    response = client.get(path, headers={name: value})

    assert response.status_code == 403
    assert error_of(response)["code"] == "control_token_not_set"
    assert len(upstream.calls) == 0


@pytest.mark.parametrize("host", ["127.0.0.1,127.0.0.1", "localhost,evil.example"])
@pytest.mark.parametrize("path", ["/create_task", "/"])
def test_two_host_headers_are_refused(client, upstream, path, host):
    # Werkzeug's server and older gunicorns join repeated headers with a comma.
    response = client.get(path, headers={"Host": host})

    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "ambiguous_host"
    assert "more than one Host header" in error["message"]
    assert len(upstream.calls) == 0


@pytest.mark.parametrize(
    "target",
    ["http://evil.example/create_task", "http://127.0.0.1:8080/create_task", "garbage:"],
)
def test_an_absolute_target_naming_another_host_is_refused(client, upstream, target):
    response = client.get("/create_task", environ_overrides={"RAW_URI": target})

    assert response.status_code == 400
    assert error_of(response)["code"] == "ambiguous_host"
    assert len(upstream.calls) == 0


@pytest.mark.parametrize(
    "target", ["http://localhost/create_task", "HTTP://LOCALHOST:80/create_task"]
)
def test_an_absolute_target_naming_this_host_counts_as_proxied(client, upstream, target):
    # Only a client talking to a proxy sends the absolute form.
    response = client.get("/create_task", environ_overrides={"RAW_URI": target})

    assert response.status_code == 403
    assert error_of(response)["code"] == "control_token_not_set"
    assert len(upstream.calls) == 0


def raw_request(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (two Host headers, an absolute target) and read the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, dict(response.getheaders()), response.read()


def test_two_host_headers_over_a_socket_to_werkzeugs_server(live_app):
    server = live_app()
    port = server.server.server_port
    status, _, body = raw_request(
        port,
        b"GET /create_task HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: 127.0.0.1\r\n"
        b"Connection: close\r\n\r\n",
    )
    assert status == 400, body
    assert b'"ambiguous_host"' in body
    assert server.workspace.tasks.list() == []


@pytest.fixture(scope="module")
def gunicorn_server(tmp_path_factory):
    """The app and its sandbox under real gunicorn on a free port: (port, workspace)."""
    account_sid, auth_token = "AC" + "cd" * 16, "sandbox-token-for-the-guard-test"
    with gunicorn_app(
        tmp_path_factory.mktemp("gunicorn"),
        workers=1,
        threads=4,
        TASKROUTER_BACKEND="sandbox",
        TWILIO_ACCOUNT_SID=account_sid,
        TWILIO_AUTH_TOKEN=auth_token,
    ) as server:
        client = Client(
            account_sid, auth_token, environment={"TWILIO_EDGE": "", "TWILIO_REGION": ""}
        )
        client.taskrouter.base_url = f"{server.url}/sandbox"
        workspace_sid = client.taskrouter.v1.workspaces.list()[0].sid
        yield server.port, client.taskrouter.v1.workspaces(workspace_sid)


def test_gunicorn_refuses_two_host_headers(gunicorn_server):
    port, workspace = gunicorn_server
    for hosts in (
        b"Host: 127.0.0.1\r\nHost: evil.example",
        b"Host: evil.example\r\nHost: 127.0.0.1",
    ):
        status, _, body = raw_request(
            port, b"GET /create_task HTTP/1.1\r\n" + hosts + b"\r\nConnection: close\r\n\r\n"
        )
        # gunicorn refuses it itself (its own 400 page); a server that joins the two Hosts
        # reaches the guard, which answers 400 ambiguous_host.
        assert status == 400, body
    assert workspace.tasks.list() == []


def test_gunicorn_absolute_target_naming_another_host_is_refused(gunicorn_server):
    port, workspace = gunicorn_server
    status, headers, body = raw_request(
        port,
        b"GET http://evil.example/create_task HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
        b"Connection: close\r\n\r\n" % port,
    )
    assert status == 400, body
    assert headers["Content-Type"] == "application/json"
    assert b'"ambiguous_host"' in body
    assert workspace.tasks.list() == []


def test_gunicorn_absolute_target_naming_this_host_is_not_local(gunicorn_server):
    port, workspace = gunicorn_server
    status, _, body = raw_request(
        port,
        b"GET http://127.0.0.1:%d/create_task HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
        b"Connection: close\r\n\r\n" % (port, port),
    )
    assert status == 403, body
    assert b'"control_token_not_set"' in body
    assert workspace.tasks.list() == []


@pytest.mark.parametrize("header", [b"X-Real-IP: 198.51.100.20", b"Via: 1.1 proxy.example"])
def test_gunicorn_proxied_request_is_not_local(gunicorn_server, header):
    port, workspace = gunicorn_server
    status, _, body = raw_request(
        port,
        b"GET /create_task HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s\r\nConnection: close\r\n\r\n"
        % (port, header),
    )
    assert status == 403, body
    assert workspace.tasks.list() == []
