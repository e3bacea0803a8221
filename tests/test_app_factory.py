"""The app factory: JSON errors for every failure, /healthz, and start-up from the command line
(one "error: ..." line and a non-zero exit for a bad setting, no traceback).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from taskrouter_quickstart import config
from taskrouter_quickstart.app import create_app
from tests.conftest import ACCOUNT_ENVIRON

ROOT = Path(__file__).resolve().parents[1]
FLASK = Path(sys.executable).with_name("flask")


def clean_environ(**settings: str) -> dict[str, str]:
    """A process environment with every setting given explicitly, so a developer's own
    environment or .env cannot change the outcome (a real variable wins over .env)."""
    environ = {name: "" for name in config.SETTING_NAMES}
    environ.update(settings)
    environ["PATH"] = os.environ.get("PATH", "")
    environ["FLASK_SKIP_DOTENV"] = "1"
    return environ


def test_healthz(client):
    response = client.get("/healthz", environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_unknown_path_is_json_404(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.is_json
    error = response.get_json()["error"]
    assert error["status"] == 404
    assert error["code"] == "not_found"
    assert error["message"]


def test_wrong_method_is_json_405_with_allow(client):
    response = client.delete("/create_task")
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"
    assert {"GET", "POST"} <= set(response.headers["Allow"].split(", "))


def test_a_body_over_the_limit_is_json_413(client, upstream):
    response = client.post(
        "/create_task",
        data=b"x" * (1024 * 1024 + 1),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 413
    assert response.get_json()["error"]["status"] == 413
    assert len(upstream.calls) == 0


def test_an_unexpected_failure_is_json_500_without_a_traceback(make_app, caplog):
    app = make_app()

    def broken():
        raise RuntimeError("secret internals")

    app.add_url_rule("/broken", view_func=broken)
    response = app.test_client().get("/broken")

    assert response.status_code == 500
    assert response.get_json() == {
        "error": {
            "status": 500,
            "code": "internal_error",
            "message": "The server failed to handle this request; the server log has details.",
            "more_info": None,
        }
    }
    assert b"secret internals" not in response.data
    assert b"Traceback" not in response.data
    assert "secret internals" in caplog.text


def test_create_app_without_test_config_exits_with_one_line(monkeypatch, capsys):
    for name, value in clean_environ(TWILIO_WORKSPACE_SID="WS-not-a-sid").items():
        monkeypatch.setenv(name, value)

    with pytest.raises(SystemExit) as caught:
        create_app()

    assert caught.value.code == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "error: TWILIO_WORKSPACE_SID must be WS followed by 32 hex characters "
        "(Twilio Console > TaskRouter > Workspaces)\n"
    )


def test_create_app_with_test_config_raises_config_error(make_app):
    with pytest.raises(config.ConfigError):
        make_app({"TWILIO_WORKSPACE_SID": "WS-not-a-sid"})


def test_unwritable_instance_folder_is_a_start_up_error(make_app, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(config.ConfigError, match="the callback log in"):
        make_app(CALLBACK_LOG_PATH=str(blocker / "callbacks.sqlite3"))


def run_flask(*args: str, **settings: str) -> subprocess.CompletedProcess:
    if not FLASK.exists():
        pytest.skip(f"the flask command is not installed next to {sys.executable}")
    return subprocess.run(
        [str(FLASK), "--app", "app", *args],
        cwd=ROOT,
        env=clean_environ(**settings),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"TWILIO_WORKSPACE_SID": "WS123"},
            "error: TWILIO_WORKSPACE_SID must be WS followed by 32 hex characters "
            "(Twilio Console > TaskRouter > Workspaces)",
        ),
        (
            {"ASSIGNMENT_MODE": "reject"},
            "error: ASSIGNMENT_MODE must be one of: manual, accept (got 'reject') "
            "(see Settings in README.md)",
        ),
    ],
)
def test_flask_cli_prints_one_error_line_and_exits_non_zero(settings, message):
    result = run_flask("routes", **settings)
    assert result.returncode == 3
    assert result.stderr.splitlines() == [message]
    assert "Traceback" not in result.stderr


LOG_DESTINATIONS = """
import io, json, logging, sys
from flask.logging import default_handler
from taskrouter_quickstart.app import ErrorStreamHandler, create_app

app = create_app({"TESTING": True, "ENVIRON": json.loads(sys.argv[1]),
                  "CALLBACK_LOG_PATH": sys.argv[2], "INSTANCE_PATH": sys.argv[3]})
kinds = [type(handler).__name__ for handler in app.logger.handlers]
errors = io.StringIO()
with app.test_request_context(environ_overrides={"wsgi.errors": errors}):
    app.logger.info("inside a request")
app.logger.info("outside any request")
print(json.dumps({"handlers": kinds, "request_stream": errors.getvalue()}))
"""


def test_the_apps_log_lines_go_where_flasks_default_handler_sends_them(tmp_path):
    # In a process of its own: pytest's own logging handlers would keep Flask from adding
    # its default handler, which is the one the app replaces.
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            LOG_DESTINATIONS,
            json.dumps(dict(ACCOUNT_ENVIRON)),
            str(tmp_path / "callbacks.sqlite3"),
            str(tmp_path / "instance"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**clean_environ(), "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["handlers"] == ["ErrorStreamHandler"]
    # Flask's format; inside a request, to that request's wsgi.errors; else to stderr; once.
    assert shown["request_stream"].count("INFO in <string>: inside a request\n") == 1
    assert "outside" not in shown["request_stream"]
    assert result.stderr.count("INFO in <string>: outside any request\n") == 1
    assert "inside a request" not in result.stderr
