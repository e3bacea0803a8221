"""TaskRouter failures as the client sees them: 4xx kept with Twilio's code and more_info, the
not-pending hint on reservations, 5xx as 502, network failures as 502/504 naming TaskRouter,
and the PORT fix when the server cannot reach its own sandbox.
"""

from __future__ import annotations

import socket
import threading
from contextlib import contextmanager

import pytest
import requests
from werkzeug.serving import make_server

from taskrouter_quickstart.taskrouter import RESERVATION_NOT_PENDING_HINT

TASK_PARAMS = {"TaskSid": "WT" + "3" * 32, "ReservationSid": "WR" + "4" * 32}


def twilio_error(status: int, code: int, message: str) -> dict[str, object]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def accept(client):
    return client.get("/accept_reservation", query_string=TASK_PARAMS)


def create(client):
    return client.post("/create_task")


def test_task_create_404_keeps_status_code_and_more_info(client, upstream, tasks_url):
    upstream.post(
        tasks_url,
        json=twilio_error(404, 20404, "The requested resource was not found"),
        status=404,
    )
    response = create(client)
    assert response.status_code == 404
    assert response.get_json() == {
        "error": {
            "status": 404,
            "code": 20404,
            "message": "Unable to create record: The requested resource was not found",
            "more_info": "https://www.twilio.com/docs/errors/20404",
        }
    }


def test_reservation_404_has_no_hint(client, upstream, reservation_url):
    upstream.post(reservation_url, json=twilio_error(404, 20404, "Not found"), status=404)
    response = accept(client)
    assert response.status_code == 404
    assert RESERVATION_NOT_PENDING_HINT not in response.get_json()["error"]["message"]


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (400, "Reservation WR44444444444444444444444444444444 is not pending"),
        (
            400,
            "Reservation WR44444444444444444444444444444444 is already in state [timeout] "
            "and cannot be updated to [accepted]",
        ),
        (410, "Reservation has been rescinded"),
    ],
)
def test_reservation_not_pending_gets_the_hint(client, upstream, reservation_url, status, message):
    upstream.post(reservation_url, json=twilio_error(status, 20001, message), status=status)
    response = accept(client)

    assert response.status_code == status
    error = response.get_json()["error"]
    assert error["code"] == 20001
    expected = f"Unable to update record: {message}. {RESERVATION_NOT_PENDING_HINT}"
    assert error["message"] == expected
    assert "Task Reservation Timeout" in error["message"]
    assert "create another task" in error["message"]


def test_other_400_has_no_hint(client, upstream, tasks_url):
    upstream.post(
        tasks_url, json=twilio_error(400, 20001, "Invalid Attributes provided"), status=400
    )
    response = create(client)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["message"] == "Unable to create record: Invalid Attributes provided"
    assert error["code"] == 20001


def test_authentication_failure_keeps_401(client, upstream, tasks_url):
    upstream.post(tasks_url, json=twilio_error(401, 20003, "Authenticate"), status=401)
    response = create(client)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == 20003


@pytest.mark.parametrize("call", [create, accept], ids=["create_task", "accept_reservation"])
def test_upstream_500_becomes_502(client, upstream, tasks_url, reservation_url, call):
    url = tasks_url if call is create else reservation_url
    upstream.post(url, json=twilio_error(500, 20500, "Internal Server Error"), status=500)
    response = call(client)
    assert response.status_code == 502
    error = response.get_json()["error"]
    assert error["status"] == 502
    assert error["code"] == 20500
    assert error["message"].startswith("TaskRouter failed with HTTP 500: ")


def test_upstream_html_error_page_becomes_502(client, upstream, tasks_url):
    upstream.post(tasks_url, body="<html>Service Unavailable</html>", status=503)
    response = create(client)
    assert response.status_code == 502
    error = response.get_json()["error"]
    assert error["code"] == 503
    assert error["more_info"] is None
    assert "TaskRouter failed with HTTP 503" in error["message"]


def test_upstream_answer_that_is_not_json_becomes_502(client, upstream, tasks_url):
    upstream.post(tasks_url, body="<html>a captive portal</html>", status=201)
    response = create(client)
    assert response.status_code == 502
    error = response.get_json()["error"]
    assert error["code"] == "upstream_invalid_response"
    assert "TASKROUTER_BASE_URL" in error["message"]


@pytest.mark.parametrize(
    "failure", [requests.exceptions.ReadTimeout, requests.exceptions.ConnectTimeout]
)
@pytest.mark.parametrize("call", [create, accept], ids=["create_task", "accept_reservation"])
def test_timeout_becomes_504(client, upstream, tasks_url, reservation_url, call, failure):
    url = tasks_url if call is create else reservation_url
    upstream.post(url, body=failure("read timed out"))
    response = call(client)
    assert response.status_code == 504
    error = response.get_json()["error"]
    assert error["code"] == "upstream_timeout"
    assert error["message"].startswith(
        "TaskRouter at https://taskrouter.twilio.com did not answer in time"
    )


@pytest.mark.parametrize("call", [create, accept], ids=["create_task", "accept_reservation"])
def test_connection_failure_becomes_502(client, upstream, tasks_url, reservation_url, call):
    url = tasks_url if call is create else reservation_url
    upstream.post(url, body=requests.exceptions.ConnectionError("connection refused"))
    response = call(client)
    assert response.status_code == 502
    error = response.get_json()["error"]
    assert error["code"] == "upstream_unreachable"
    assert error["message"].startswith(
        "Could not reach TaskRouter at https://taskrouter.twilio.com"
    )


def test_connection_refused_by_a_real_closed_port(make_app, account_environ, refused_port):
    base_url = f"http://127.0.0.1:{refused_port}"
    app = make_app({**account_environ, "TASKROUTER_BASE_URL": base_url})

    response = app.test_client().post("/create_task")

    assert response.status_code == 502
    error = response.get_json()["error"]
    assert error["message"].startswith(f"Could not reach TaskRouter at {base_url} to create")
    assert "Traceback" not in response.get_data(as_text=True)


# -- the server's own sandbox on the wrong port -----------------------------------------------

PORT_FIX = (
    "set PORT (and HOST) to the address the server is bound to (gunicorn --bind and PORT must "
    "match)"
)


def sandbox_app_expecting_port(make_app, port: int, **settings: str):
    """A sandbox-backed app told PORT=port, as `gunicorn --bind` on another port leaves it."""
    return make_app({"PORT": str(port), **settings})


@pytest.mark.parametrize("call", [create, accept], ids=["create_task", "accept_reservation"])
def test_a_wrong_port_for_the_own_sandbox_names_the_fix(make_app, refused_port, call):
    app = sandbox_app_expecting_port(make_app, refused_port)
    sandbox_url = f"http://127.0.0.1:{refused_port}/sandbox"

    response = call(app.test_client())

    assert response.status_code == 502
    error = response.get_json()["error"]
    assert error["code"] == "upstream_unreachable"
    assert error["message"].startswith(f"Could not reach TaskRouter at {sandbox_url} to ")
    assert error["message"].endswith(
        f"ConnectionError. The server calls its own sandbox at {sandbox_url} but nothing "
        f"answers there: {PORT_FIX}"
    )


@contextmanager
def other_server(status: str, content_type: str, body: bytes):
    """Another web server on a loopback port, answering everything the same way."""

    def answer(environ, start_response):
        start_response(status, [("Content-Type", content_type)])
        return [body]

    server = make_server("127.0.0.1", 0, answer, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


@pytest.mark.parametrize(
    ("status", "content_type", "body"),
    [
        ("404 NOT FOUND", "text/html; charset=utf-8", b"<!doctype html><h1>Not Found</h1>"),
        ("200 OK", "text/html", b"<html>a dev server's home page</html>"),
        # Another JSON API (such as a second copy of this app with a Twilio account).
        ("404 NOT FOUND", "application/json", b'{"error": {"status": 404}}'),
    ],
    ids=["404-html", "200-html", "404-json"],
)
def test_another_server_on_the_own_sandbox_port_names_the_fix(make_app, status, content_type, body):
    with other_server(status, content_type, body) as port:
        app = sandbox_app_expecting_port(make_app, port)
        response = create(app.test_client())

    sandbox_url = f"http://127.0.0.1:{port}/sandbox"
    assert response.status_code == 502
    error = response.get_json()["error"]
    assert error["code"] == "upstream_invalid_response"
    assert error["message"] == (
        f"TaskRouter at {sandbox_url} answered HTTP {status.split()[0]} with {content_type}, "
        "not the sandbox's JSON, while trying to create the task. The server calls its own "
        f"sandbox at {sandbox_url} but another server answers there: {PORT_FIX}"
    )


def test_a_port_that_never_answers_names_the_fix_and_threads(make_app):
    # Connections are queued by the kernel but never accepted, as by a busy single worker.
    with socket.create_server(("127.0.0.1", 0), backlog=8) as silent:
        port = silent.getsockname()[1]
        app = sandbox_app_expecting_port(make_app, port, TWILIO_HTTP_TIMEOUT="0.5")
        response = create(app.test_client())

    assert response.status_code == 504
    error = response.get_json()["error"]
    assert error["code"] == "upstream_timeout"
    assert (
        f"its own sandbox at http://127.0.0.1:{port}/sandbox but nothing answered"
        in (error["message"])
    )
    assert error["message"].endswith(
        f"{PORT_FIX}; serve with threads (gunicorn --threads 8) so the server can answer its "
        "own calls"
    )


def test_a_twilio_account_gets_no_sandbox_hint(make_app, account_environ, refused_port):
    app = make_app({**account_environ, "TASKROUTER_BASE_URL": f"http://127.0.0.1:{refused_port}"})
    message = create(app.test_client()).get_json()["error"]["message"]
    assert message.endswith("to create the task: ConnectionError")
