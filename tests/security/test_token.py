"""CONTROL_TOKEN is in no log line, no error body and no link: a browser's ?token= visit is
exchanged once for an HttpOnly, SameSite=Strict cookie and redirected without it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
import requests

from tests.servers import gunicorn_app

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "control-token-for-the-redaction-tests"
# Through ngrok: the guard wants the token.
NGROK = {
    "X-Forwarded-For": "198.51.100.20",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "abc123.ngrok.app",
}


@pytest.fixture
def guarded(make_app):
    return make_app(CONTROL_TOKEN=TOKEN)


def test_a_token_visit_is_exchanged_for_a_strict_cookie_and_redirected_without_it(guarded):
    client = guarded.test_client()
    answer = client.get(f"/?token={TOKEN}&view=tasks", headers=NGROK)

    assert answer.status_code == 303
    assert answer.headers["Location"] == "/?view=tasks"
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith(f"control_token={TOKEN};")
    for attribute in ("HttpOnly", "SameSite=Strict", "Path=/", "Secure"):
        assert attribute in cookie
    assert answer.headers["Cache-Control"] == "no-store"
    # The cookie alone now opens the page, and the page repeats the token nowhere.
    page = client.get("/?view=tasks", headers=NGROK)
    assert page.status_code == 200
    assert TOKEN not in page.get_data(as_text=True)


def test_an_action_typed_with_the_token_runs_once_redirected(guarded, upstream, task_json):
    upstream.post(
        "https://taskrouter.twilio.com/v1/Workspaces/WS11111111111111111111111111111111/Tasks",
        json=task_json(),
        status=201,
    )
    client = guarded.test_client()
    exchanged = client.get(f"/create_task?token={TOKEN}", headers=NGROK)
    assert exchanged.status_code == 303
    assert exchanged.headers["Location"] == "/create_task"
    assert len(upstream.calls) == 0  # the visit with the token in it created nothing
    created = client.get("/create_task", headers=NGROK)
    assert created.status_code == 201
    assert len(upstream.calls) == 1


def test_a_wrong_token_is_refused_without_repeating_it(guarded):
    answer = guarded.test_client().get("/?token=wrong-token-0123456789abcdef", headers=NGROK)
    assert answer.status_code == 403
    assert "Set-Cookie" not in answer.headers
    assert "wrong-token-0123456789abcdef" not in answer.get_data(as_text=True)


def test_a_refused_callback_never_echoes_a_token_in_its_url(make_app, caplog):
    app = make_app()
    with caplog.at_level(logging.WARNING, logger="taskrouter_quickstart.app"):
        answer = app.test_client().post(
            f"/assignment_callback?token={TOKEN}", data={"TaskSid": "x"}
        )
    assert answer.status_code == 403
    assert TOKEN not in answer.get_data(as_text=True)
    assert "token=[redacted]" in answer.get_json()["error"]["message"]
    assert TOKEN not in caplog.text
    assert "token=[redacted]" in caplog.text


def test_the_dev_servers_request_line_is_redacted(live_app, caplog):
    server = live_app(CONTROL_TOKEN=TOKEN)
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        requests.get(f"{server.url}/?token={TOKEN}", allow_redirects=False, timeout=10)
        # The request line is logged after the answer is sent: wait for it.
        deadline = time.monotonic() + 5
        while "GET /?token=" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
    assert "GET /?token=[redacted] HTTP/1.1" in caplog.text
    assert TOKEN not in caplog.text


def test_gunicorns_access_log_is_redacted(tmp_path):
    access_log = tmp_path / "access.log"
    with gunicorn_app(
        tmp_path,
        workers=1,
        threads=4,
        options=("--access-logfile", str(access_log)),
        CONTROL_TOKEN=TOKEN,
    ) as server:
        answer = requests.get(f"{server.url}/?token={TOKEN}", allow_redirects=False, timeout=10)
        assert answer.status_code == 303
    logged = access_log.read_text()
    assert "/?token=[redacted]" in logged
    assert TOKEN not in logged
