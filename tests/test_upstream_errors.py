"""TaskRouter failures as the client sees them: 4xx kept with Twilio's code and more_info, the
not-pending hint on reservations, 5xx as 502, network failures as 502/504 naming TaskRouter.
"""

from __future__ import annotations

import pytest
import requests

from taskrouter import RESERVATION_NOT_PENDING_HINT

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
