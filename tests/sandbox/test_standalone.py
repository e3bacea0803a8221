"""The standalone server as a user runs it: `python -m taskrouter_sandbox` (and the installed
`taskrouter-sandbox`) in a real subprocess, read from the lines it prints, driven with the
twilio library, stopped with SIGTERM or SIGINT."""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import simple_websocket
from twilio.http.http_client import TwilioHttpClient
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import TaskRouterGrant
from twilio.rest import Client

from tests.callback_receiver import CallbackReceiver
from tests.websocket_client import WebSocketClient

ROOT = Path(__file__).resolve().parents[2]
# A first start imports flask, werkzeug and twilio on a loaded machine.
START_TIMEOUT = 30
STOP_TIMEOUT = 20
PINNED_SID = "AC" + "ab" * 16
PINNED_TOKEN = "pinned-token-for-tests"


@dataclass
class Running:
    process: subprocess.Popen
    exports: dict[str, str]
    lines: list[str]
    stderr_path: Path

    @property
    def base_url(self) -> str:
        return self.exports["TASKROUTER_BASE_URL"]

    @property
    def auth(self) -> tuple[str, str]:
        return (self.exports["TWILIO_ACCOUNT_SID"], self.exports["TWILIO_AUTH_TOKEN"])

    def client(self) -> Client:
        client = Client(*self.auth, http_client=TwilioHttpClient(timeout=10))
        client.taskrouter.base_url = self.base_url
        return client

    def control(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(
            method, f"{self.base_url}/control/{path}", auth=self.auth, timeout=30, **kwargs
        )

    def stop(self, signum: int = signal.SIGTERM) -> tuple[int, str]:
        """Signal it and wait: its exit status and everything it wrote to stderr."""
        self.process.send_signal(signum)
        status = self.process.wait(STOP_TIMEOUT)
        return status, self.stderr_path.read_text()


def _environ(**extra: str) -> dict[str, str]:
    environ = {key: value for key, value in os.environ.items() if not key.startswith("SANDBOX_")}
    return {**environ, "PYTHONPATH": str(ROOT), **extra}


def _read_exports(process: subprocess.Popen) -> tuple[dict[str, str], list[str]]:
    """The lines it prints on start, up to the control API's line, within START_TIMEOUT."""
    assert process.stdout
    lines: list[str] = []
    deadline = time.monotonic() + START_TIMEOUT
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while not lines or not lines[-1].startswith("# control API"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                process.kill()
                pytest.fail(f"the server printed no control API line in time: {lines}")
            line = process.stdout.readline()
            if not line:
                pytest.fail(f"the server ended (status {process.wait()}) after {lines}")
            lines.append(line.decode().rstrip("\n"))
    exports = {}
    for line in lines:
        if line.startswith("export "):
            name, _, value = line[len("export ") :].partition("=")
            exports[name] = value.strip("'")
    return exports, lines


@contextmanager
def standalone(
    tmp_path: Path,
    *options: str,
    command: Sequence[str] = (sys.executable, "-m", "taskrouter_sandbox"),
    environ: dict[str, str] | None = None,
) -> Iterator[Running]:
    stderr_path = tmp_path / f"stderr-{time.monotonic_ns()}.txt"
    with open(stderr_path, "w") as stderr:
        process = subprocess.Popen(
            [*command, "--port", "0", *options],
            cwd=ROOT,
            env=environ or _environ(),
            stdout=subprocess.PIPE,
            stderr=stderr,
            # Unbuffered: a buffered reader would read ahead of what select() reports.
            bufsize=0,
        )
    try:
        exports, lines = _read_exports(process)
        yield Running(process, exports, lines, stderr_path)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(STOP_TIMEOUT)
        assert process.stdout
        process.stdout.close()


def _run(*options: str, environ: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "taskrouter_sandbox", *options],
        cwd=ROOT,
        env=environ or _environ(),
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
    )


def _assert_clean_stop(status: int, stderr: str, token: str) -> None:
    assert status == 0, stderr
    assert "Traceback" not in stderr, stderr
    assert token not in stderr, "the auth token reached the log"


# -- serving ---------------------------------------------------------------------------------


def test_it_prints_the_environment_and_serves_the_twilio_library(tmp_path: Path) -> None:
    with standalone(tmp_path) as server:
        assert [line.split("=")[0] for line in server.lines[:-2]] == [
            "export TWILIO_ACCOUNT_SID",
            "export TWILIO_AUTH_TOKEN",
            "export TASKROUTER_BASE_URL",
            "export TWILIO_WORKSPACE_SID",
            "export TWILIO_WORKFLOW_SID",
            "export TWILIO_API_KEY",
            "export TWILIO_API_SECRET",
        ]
        assert server.lines[-1].startswith(f"# control API: {server.base_url}/control")
        bridge = f"{server.base_url}/v1/wschannels"
        assert server.lines[-2] == (
            f"# Worker SDK: new Worker(token, {{ebServer: '{bridge}', "
            f"wsServer: 'ws{bridge.removeprefix('http')}'}})"
        )
        assert server.exports["TWILIO_API_KEY"].startswith("SK")
        assert server.base_url.startswith("http://127.0.0.1:")
        assert not server.base_url.endswith(":0")
        v1 = server.client().taskrouter.v1
        workspace = v1.workspaces(server.exports["TWILIO_WORKSPACE_SID"])
        assert workspace.fetch().friendly_name == "TaskRouter Quickstart"
        workflow = workspace.workflows(server.exports["TWILIO_WORKFLOW_SID"]).fetch()
        assert workflow.friendly_name == "Incoming Customer Care Requests"
        clock = server.control("GET", "clock").json()
        assert clock["movable"] is True
        status, stderr = server.stop()
    _assert_clean_stop(status, stderr, server.auth[1])
    assert "GET /v1/Workspaces/" in stderr  # the access log, on stderr
    assert f"serving on {server.base_url}" in stderr


def test_sigint_stops_it_as_cleanly_and_quiet_leaves_out_the_access_log(tmp_path: Path) -> None:
    with standalone(tmp_path, "--quiet") as server:
        server.client().taskrouter.v1.workspaces.list()
        status, stderr = server.stop(signal.SIGINT)
    _assert_clean_stop(status, stderr, server.auth[1])
    assert "/v1/Workspaces" not in stderr
    assert "KeyboardInterrupt" not in stderr


def test_the_system_clock_runs_and_advances(tmp_path: Path) -> None:
    with standalone(tmp_path, "--quiet") as server:
        before = server.control("GET", "clock").json()["now"]
        moved = server.control("POST", "clock/advance", data={"Seconds": "3600"}).json()
        assert moved["advanced_by"] == 3600
        assert moved["now"][:13] > before[:13]  # an hour on, at least
        server.stop()


def test_the_manual_clock_stands_still_until_advanced(tmp_path: Path) -> None:
    with standalone(tmp_path, "--quiet", "--clock", "manual") as server:
        first = server.control("GET", "clock").json()
        time.sleep(0.05)  # real time passes: the manual clock must not follow it
        assert server.control("GET", "clock").json() == first
        moved = server.control("POST", "clock/advance", data={"Seconds": "1.5"}).json()
        assert moved["now"] != first["now"]
        assert server.control("GET", "clock").json()["now"] == moved["now"]
        server.stop()


def test_the_empty_seed_has_no_workflow_line(tmp_path: Path) -> None:
    with standalone(tmp_path, "--quiet", "--seed", "empty") as server:
        assert "TWILIO_WORKFLOW_SID" not in server.exports
        seed = server.control("GET", "seed").json()
        assert seed["kind"] == "empty"
        assert seed["workspace_sid"] == server.exports["TWILIO_WORKSPACE_SID"]
        server.stop()


def test_credentials_from_options_else_the_environment(tmp_path: Path) -> None:
    with standalone(
        tmp_path, "--quiet", "--account-sid", PINNED_SID, "--auth-token", PINNED_TOKEN
    ) as server:
        assert server.auth == (PINNED_SID, PINNED_TOKEN)
        assert server.client().taskrouter.v1.workspaces.list()
        server.stop()
    environ = _environ(SANDBOX_ACCOUNT_SID=PINNED_SID, SANDBOX_AUTH_TOKEN=PINNED_TOKEN)
    with standalone(tmp_path, "--quiet", environ=environ) as server:
        assert server.auth == (PINNED_SID, PINNED_TOKEN)
        server.stop()


def test_callback_url_points_the_quickstart_workflow_there_and_a_reset_keeps_it(
    tmp_path: Path,
) -> None:
    url = "https://app.example.com/assignment_callback"
    with standalone(tmp_path, "--quiet", "--callback-url", url) as server:
        workspace = server.client().taskrouter.v1.workspaces(server.exports["TWILIO_WORKSPACE_SID"])
        workflow = workspace.workflows(server.exports["TWILIO_WORKFLOW_SID"]).fetch()
        assert workflow.assignment_callback_url == url
        # A reset through the control API seeds a new workflow calling back the same URL.
        seed = server.control("POST", "reset").json()
        assert seed["workflow_sid"] != workflow.sid
        v1 = server.client().taskrouter.v1
        new = v1.workspaces(seed["workspace_sid"]).workflows(seed["workflow_sid"]).fetch()
        assert new.assignment_callback_url == url
        assert [w.sid for w in v1.workspaces.list()] == [seed["workspace_sid"]]
        status, stderr = server.stop()
    _assert_clean_stop(status, stderr, server.auth[1])


def test_the_installed_console_script_serves_too(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("taskrouter-sandbox")
    if not script.exists():
        pytest.skip(f"{script} is not installed (pip install -e . makes it)")
    with standalone(tmp_path, "--quiet", command=[str(script)]) as server:
        assert server.client().taskrouter.v1.workspaces.list()
        status, stderr = server.stop()
    _assert_clean_stop(status, stderr, server.auth[1])


# -- a database file ------------------------------------------------------------------------


def test_a_database_file_keeps_credentials_and_tasks_across_a_restart(tmp_path: Path) -> None:
    database = tmp_path / "state" / "sandbox.sqlite3"
    with standalone(tmp_path, "--quiet", "--database", str(database)) as server:
        workspace = server.client().taskrouter.v1.workspaces(server.exports["TWILIO_WORKSPACE_SID"])
        task = workspace.tasks.create(
            attributes=json.dumps({"selected_language": "en"}),
            workflow_sid=server.exports["TWILIO_WORKFLOW_SID"],
        )
        first = server.exports
        status, stderr = server.stop()
    _assert_clean_stop(status, stderr, first["TWILIO_AUTH_TOKEN"])
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    with standalone(tmp_path, "--quiet", "--database", str(database)) as server:
        # The generated credentials and the seed are kept; port 0 picked another port.
        kept = {name: value for name, value in first.items() if name != "TASKROUTER_BASE_URL"}
        assert kept.items() <= server.exports.items()
        workspace = server.client().taskrouter.v1.workspaces(first["TWILIO_WORKSPACE_SID"])
        assert workspace.tasks(task.sid).fetch().attributes == task.attributes
        server.stop()


def test_a_stop_delivers_the_callback_in_flight_and_applies_its_answer(tmp_path: Path) -> None:
    """SIGTERM while the app is still answering an assignment callback: the answer (accept)
    is applied before the process ends, as the restart on the same file shows."""
    database = tmp_path / "sandbox.sqlite3"
    with CallbackReceiver(delay=1.0) as receiver:
        options = ("--quiet", "--database", str(database), "--callback-url", receiver.url)
        with standalone(tmp_path, *options) as server:
            seed = server.control("GET", "seed").json()
            workspace = server.client().taskrouter.v1.workspaces(seed["workspace_sid"])
            workspace.workers(seed["worker_sids"]["Alice"]).update(
                activity_sid=seed["activity_sids"]["Idle"]
            )
            task = workspace.tasks.create(
                attributes=json.dumps({"selected_language": "es"}),
                workflow_sid=seed["workflow_sid"],
            )
            assert receiver.wait_for(lambda calls: calls, timeout=10)
            status, stderr = server.stop()  # while the receiver still sleeps on its answer
        _assert_clean_stop(status, stderr, server.auth[1])
    with standalone(tmp_path, "--quiet", "--database", str(database)) as server:
        workspace = server.client().taskrouter.v1.workspaces(seed["workspace_sid"])
        assert workspace.tasks(task.sid).fetch().assignment_status == "assigned"
        server.stop()


def test_a_file_keeps_its_seed_and_callback_url_needs_its_workflow(tmp_path: Path) -> None:
    database = tmp_path / "empty.sqlite3"
    with standalone(tmp_path, "--quiet", "--seed", "empty", "--database", str(database)) as server:
        server.stop()
    with standalone(tmp_path, "--quiet", "--database", str(database)) as server:
        assert "TWILIO_WORKFLOW_SID" not in server.exports
        status, stderr = server.stop()
    _assert_clean_stop(status, stderr, server.auth[1])
    assert "keeps the empty seed" in stderr
    result = _run("--database", str(database), "--callback-url", "http://example.com/x")
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert "--callback-url" in line and "empty seed" in line


# -- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--port", "abc"], "--port"),
        (["--port", "70000"], "--port"),
        (["--seed", "full"], "--seed"),
        (["--clock", "fast"], "--clock"),
        (["--account-sid", "AC123"], "--account-sid"),
        (["--auth-token", " "], "--auth-token"),
        (["--callback-url", "ftp://example.com/x"], "--callback-url"),
        (["--callback-url", "not a url"], "--callback-url"),
        (["--seed", "empty", "--callback-url", "http://example.com/x"], "--callback-url"),
        (["--no-such-option"], "--no-such-option"),
    ],
)
def test_a_bad_option_is_exit_status_2_and_one_line_naming_it(
    options: list[str], named: str
) -> None:
    result = _run(*options)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("taskrouter-sandbox: ") and named in line


@pytest.mark.parametrize(
    ("name", "value"), [("SANDBOX_ACCOUNT_SID", "ACnope"), ("SANDBOX_AUTH_TOKEN", " ")]
)
def test_bad_credentials_in_the_environment_are_one_line_naming_them(name: str, value: str) -> None:
    result = _run(environ=_environ(**{name: value}))
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert name in line


def test_a_port_in_use_is_exit_status_1_and_one_line_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _run("--port", str(port))
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert str(port) in line and "in use" in line


def test_a_file_that_is_not_a_database_is_one_line(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.txt"
    bogus.write_text("not a database\n" * 100)
    result = _run("--database", str(bogus))
    assert result.returncode == 1, result.stderr
    [line] = result.stderr.splitlines()
    assert str(bogus) in line


def test_help_exits_0() -> None:
    result = _run("--help")
    assert result.returncode == 0
    assert "--callback-url" in result.stdout and "--clock" in result.stdout


def test_sigterm_closes_the_worker_sdks_sockets_as_going_away(tmp_path: Path) -> None:
    """A desk connected with a token signed by the exported API key (as any twilio library
    signs one) hears 1001 "going away", on which the SDK reconnects by itself, and the server
    still stops cleanly."""
    with standalone(tmp_path) as server:
        exports = server.exports
        token = AccessToken(
            exports["TWILIO_ACCOUNT_SID"], exports["TWILIO_API_KEY"], exports["TWILIO_API_SECRET"]
        )
        alice = server.client().taskrouter.v1.workspaces(exports["TWILIO_WORKSPACE_SID"])
        alice = alice.workers.list(friendly_name="Alice")[0]
        token.add_grant(
            TaskRouterGrant(workspace_sid=exports["TWILIO_WORKSPACE_SID"], worker_sid=alice.sid)
        )
        url = server.base_url.replace("http", "ws", 1) + "/v1/wschannels?token=" + token.to_jwt()
        ws = WebSocketClient.connect(url)
        try:
            assert json.loads(ws.receive(timeout=10))["event_type"] == "init"
            status, stderr = server.stop()
            with pytest.raises(simple_websocket.ConnectionClosed) as closed:
                ws.receive(timeout=10)
            assert closed.value.reason == 1001
        finally:
            with contextlib.suppress(simple_websocket.ConnectionClosed):
                ws.close()
    _assert_clean_stop(status, stderr, server.auth[1])
