"""A Twilio account with no workspace yet: the server starts, and what needs the workspace
or workflow answers 503 naming the setting and `flask taskrouter setup`, which creates them.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def new_account(make_app, account_environ):
    environ = {
        key: value
        for key, value in account_environ.items()
        if key not in ("TWILIO_WORKSPACE_SID", "TWILIO_WORKFLOW_SID")
    }
    return make_app(environ)


@pytest.mark.parametrize(
    ("method", "path", "setting"),
    [
        ("POST", "/create_task", "TWILIO_WORKSPACE_SID"),
        ("GET", "/console/state", "TWILIO_WORKSPACE_SID"),
        (
            "GET",
            "/accept_reservation?TaskSid=WT" + "3" * 32 + "&ReservationSid=WR" + "4" * 32,
            "TWILIO_WORKSPACE_SID",
        ),
    ],
)
def test_without_a_workspace_actions_answer_503_naming_it(
    new_account, upstream, method, path, setting
):
    response = new_account.test_client().open(path, method=method)
    assert response.status_code == 503
    error = response.get_json()["error"]
    assert error["code"] == "not_configured"
    assert error["message"].startswith(f"{setting} is not set: run ")
    assert "taskrouter setup" in error["message"]
    assert len(upstream.calls) == 0


def test_without_a_workflow_create_task_answers_503_naming_it(make_app, account_environ, upstream):
    environ = {k: v for k, v in account_environ.items() if k != "TWILIO_WORKFLOW_SID"}
    response = make_app(environ).test_client().post("/create_task")
    assert response.status_code == 503
    assert response.get_json()["error"]["message"].startswith("TWILIO_WORKFLOW_SID is not set")
    assert len(upstream.calls) == 0


def test_the_page_says_how_to_create_the_workspace(new_account, upstream):
    page = new_account.test_client().get("/").get_data(as_text=True)
    assert "flask --app app taskrouter setup" in page


def test_the_cli_says_what_is_missing_in_one_line(new_account, upstream):
    result = new_account.test_cli_runner().invoke(
        args=["taskrouter", "callback-url", "https://abc123.ngrok.app/assignment_callback"]
    )
    assert result.exit_code == 1
    assert "TWILIO_WORKSPACE_SID is not set" in result.output
    assert "Traceback" not in result.output
    assert len(upstream.calls) == 0
