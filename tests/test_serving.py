"""Only the serving process changes the sandbox's shared state: building an app (every `flask`
command, a script's create_app()) points nothing anywhere, and a second server over the same
database never silently takes the callbacks from the first.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
import requests

from taskrouter_quickstart import serving
from taskrouter_quickstart.app import create_app

ROOT = Path(__file__).resolve().parents[1]


def _workflow_url(app) -> str | None:
    box = app.extensions["sandbox"]
    seeded = box.seeded
    return box.engine.get_workflow(seeded.workspace_sid, seeded.workflow_sid)[
        "assignment_callback_url"
    ]


def _point(app, url: str) -> None:
    box = app.extensions["sandbox"]
    box.engine.update_workflow(
        box.seeded.workspace_sid, box.seeded.workflow_sid, assignment_callback_url=url
    )


def test_building_the_app_changes_no_callback_url(make_app):
    first = make_app({})
    _point(first, "http://127.0.0.1:6000/assignment_callback")
    again = make_app({"PORT": "7000"})
    assert _workflow_url(again) == "http://127.0.0.1:6000/assignment_callback"


@pytest.mark.parametrize(
    "args", [["--help"], ["routes"], ["taskrouter", "status"], ["sandbox", "--help"]]
)
def test_flask_commands_leave_the_workflow_alone(tmp_path, args):
    """Real `flask` processes, as a user types them while the server runs elsewhere."""
    make = {"INSTANCE_PATH": str(tmp_path), "PORT": "6000"}
    app = create_app({"ENVIRON": make, "SANDBOX_START_THREADS": False, "TESTING": True})
    _point(app, "http://127.0.0.1:6000/assignment_callback")
    app.extensions["sandbox"].close()
    environ = {**_clean_environ(), "INSTANCE_PATH": str(tmp_path), "PORT": "7000"}
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # `status` fails (nothing serves 7000); it must still not have moved the callbacks.
    assert "auth token" not in done.stderr.lower()
    again = create_app({"ENVIRON": make, "SANDBOX_START_THREADS": False, "TESTING": True})
    assert _workflow_url(again) == "http://127.0.0.1:6000/assignment_callback"
    assert "Serving on" not in done.stderr


@pytest.mark.parametrize(
    ("environ", "callback_url"),
    [
        ({"HOST": "0.0.0.0", "PORT": "8000"}, "http://127.0.0.1:8000/assignment_callback"),
        ({"HOST": "::1", "PORT": "8001"}, "http://[::1]:8001/assignment_callback"),
        (
            {"PUBLIC_BASE_URL": "https://abc123.ngrok.app"},
            "https://abc123.ngrok.app/assignment_callback",
        ),
    ],
)
def test_the_serving_process_points_the_workflow_where_its_signature_check_looks(
    make_app, environ, callback_url
):
    app = make_app(environ)
    serving.start(app)
    assert _workflow_url(app) == callback_url
    assert app.extensions["sandbox"].running_server().callback_url == callback_url


def test_a_second_running_server_on_another_port_is_refused(make_app):
    first = make_app({"PORT": "6000"})
    serving.start(first)
    second = make_app({"PORT": "7000"})
    with pytest.raises(serving.ConfigError) as refused:
        serving.start(second)
    message = str(refused.value)
    assert f"another server (pid {os.getpid()})" in message
    assert "http://127.0.0.1:6000/assignment_callback" in message
    assert _workflow_url(second) == "http://127.0.0.1:6000/assignment_callback"


def test_a_server_that_is_gone_hands_over_and_the_log_says_so(make_app, caplog):
    first = make_app({"PORT": "6000"})
    serving.start(first)
    first.extensions["sandbox"].close()  # its lock goes with it, as with a process that ends
    second = make_app({"PORT": "7000"})
    with caplog.at_level(logging.WARNING, logger="taskrouter_quickstart.app"):
        serving.start(second)
    assert _workflow_url(second) == "http://127.0.0.1:7000/assignment_callback"
    assert (
        "was http://127.0.0.1:6000/assignment_callback; it now calls this server at "
        "http://127.0.0.1:7000/assignment_callback"
    ) in caplog.text


def test_a_second_gunicorn_worker_joins_without_printing_again(make_app, capsys):
    first = make_app({"PORT": "6000"}, TESTING=False)
    serving.start(first)
    assert "export TOKEN=" in capsys.readouterr().err
    sibling = make_app({"PORT": "6000"}, TESTING=False)
    serving.start(sibling)
    assert capsys.readouterr().err == ""
    assert _workflow_url(sibling) == "http://127.0.0.1:6000/assignment_callback"


def test_the_serving_process_prints_paste_ready_values_and_the_token(make_app, capsys):
    app = make_app({"PORT": "5055"}, TESTING=False)
    serving.start(app)
    printed = capsys.readouterr().err
    box = app.extensions["sandbox"]
    seeded = box.seeded
    for line in (
        "export APP=http://127.0.0.1:5055",
        "export TR=http://127.0.0.1:5055/sandbox",
        f"export AC={box.account_sid}",
        f"export TOKEN={box.auth_token}",
        f"export WS={seeded.workspace_sid}",
        f"export WW={seeded.workflow_sid}",
        f"export ALICE={seeded.worker_sids['Alice']}",
        f"export BOB={seeded.worker_sids['Bob']}",
        f"export IDLE={seeded.activity_sids['Idle']}",
        f"export OFFLINE={seeded.activity_sids['Offline']}",
        "Assignment callback: http://127.0.0.1:5055/assignment_callback",
    ):
        assert line in printed.splitlines()


def test_a_configured_sid_the_sandbox_lacks_is_named_in_one_line(make_app, caplog):
    missing = "WS" + "0" * 32
    app = make_app({"TASKROUTER_BACKEND": "sandbox", "TWILIO_WORKSPACE_SID": missing})
    with caplog.at_level(logging.ERROR, logger="taskrouter_quickstart.app"):
        serving.start(app)
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 1
    assert lines[0].startswith(f"TWILIO_WORKSPACE_SID={missing} does not exist on http://")


def test_a_reset_while_the_server_runs_is_followed_without_a_restart(live_app, make_app):
    server = live_app()
    old_workspace = server.sandbox.seeded.workspace_sid
    # `flask sandbox reset` in another process: an app over the same database.
    other = make_app({"PORT": "7000"}, INSTANCE_PATH=server.app.instance_path)
    result = other.test_cli_runner().invoke(args=["sandbox", "reset"])
    assert result.exit_code == 0, result.output
    new = other.extensions["sandbox"].seeded
    assert new.workspace_sid != old_workspace
    # One set of SIDs, the new workflow calling the running server, not the command's port.
    assert result.output.count("export WS=") == 1
    assert new.workspace_sid in result.output
    assert f"assignment callback {server.url}/assignment_callback" in result.output
    assert "uses them from its next request" in result.output
    assert other.extensions["sandbox"].auth_token not in result.output

    created = requests.post(f"{server.url}/create_task", timeout=10)
    assert created.status_code == 201, created.text
    task = other.extensions["sandbox"].engine.get_task(new.workspace_sid, created.json()["sid"])
    assert task["workflow_sid"] == new.workflow_sid
    workflow = other.extensions["sandbox"].engine.get_workflow(new.workspace_sid, new.workflow_sid)
    assert workflow["assignment_callback_url"] == f"{server.url}/assignment_callback"


def test_new_credentials_are_refused_while_another_server_runs(make_app):
    serving.start(make_app({"PORT": "6000"}))
    other = make_app({"PORT": "7000"})
    result = other.test_cli_runner().invoke(args=["sandbox", "reset", "--new-credentials"])
    assert result.exit_code == 1
    assert f"a server (pid {os.getpid()}) is serving this sandbox" in result.output


def test_gunicorn_bound_elsewhere_than_port_serves_where_it_is_bound(make_app, caplog):
    app = make_app({"PORT": "5000"})
    serving.start_on_first_request(app)
    assert _workflow_url(app) is None  # nothing claimed before a request shows the port
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        with caplog.at_level(logging.WARNING, logger="taskrouter_quickstart.app"):
            app.test_client().get("/healthz", environ_base={"gunicorn.socket": bound})
    assert f"gunicorn is bound to port {port} but PORT is 5000" in caplog.text
    assert f"set PORT={port}" in caplog.text
    assert _workflow_url(app) == f"http://127.0.0.1:{port}/assignment_callback"
    assert app.extensions["taskrouter"].base_url == f"http://127.0.0.1:{port}/sandbox"


def test_gunicorn_refused_answers_503_naming_the_other_server(make_app):
    serving.start(make_app({"PORT": "6000"}))
    app = make_app({"PORT": "7000"})
    serving.start_on_first_request(app)
    answer = app.test_client().get("/healthz")
    assert answer.status_code == 503
    assert "another server" in answer.get_json()["error"]["message"]


def _clean_environ() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    return {name: os.environ[name] for name in keep if name in os.environ}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _serve(tmp_path, port: int) -> subprocess.Popen:
    environ = {**_clean_environ(), "INSTANCE_PATH": str(tmp_path), "PORT": str(port)}
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "run", "--port", str(port)],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def test_flask_run_on_a_second_port_over_one_database_is_refused(tmp_path):
    first_port, second_port = _free_port(), _free_port()
    first = _serve(tmp_path, first_port)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                requests.get(f"http://127.0.0.1:{first_port}/healthz", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        second = _serve(tmp_path, second_port)
        _, error = second.communicate(timeout=60)
        assert second.returncode == 3
        assert error.strip().splitlines()[-1] == (
            f"error: another server (pid {first.pid}) is using this sandbox and receives its "
            f"callbacks at http://127.0.0.1:{first_port}/assignment_callback: stop it first, "
            "or give this server its own INSTANCE_PATH or SANDBOX_DATABASE"
        )
    finally:
        os.killpg(first.pid, signal.SIGTERM)
        first.communicate(timeout=30)


@pytest.mark.parametrize(
    ("reload", "run_main", "expected"),
    [
        (False, None, serving.Serving("flask run", "127.0.0.1", 5123)),
        (True, None, None),  # the reloader's parent: it only watches files
        (True, "true", serving.Serving("flask run", "127.0.0.1", 5123)),
    ],
)
def test_flask_run_serves_in_the_reloaders_child_only(monkeypatch, reload, run_main, expected):
    if run_main is None:
        monkeypatch.delenv("WERKZEUG_RUN_MAIN", raising=False)
    else:
        monkeypatch.setenv("WERKZEUG_RUN_MAIN", run_main)
    context = click.Context(click.Command("run"), info_name="run")
    context.params = {"host": "127.0.0.1", "port": 5123, "reload": reload}
    with context:
        assert serving.detect() == expected


def test_gunicorn_for_a_twilio_account_has_no_port_to_follow(make_app, caplog, upstream):
    # A configured account (its start-up checks meet the mocked TaskRouter).
    app = make_app()
    serving.start_on_first_request(app)
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        with caplog.at_level(logging.WARNING, logger="taskrouter_quickstart.app"):
            app.test_client().get("/healthz", environ_base={"gunicorn.socket": bound})
    assert "gunicorn is bound" not in caplog.text
