"""The README's offline walkthroughs, run as written: its blocks are read from README.md, so
the test and the README cannot drift apart.

A copy of the project (no `.env`, no instance folder: a fresh clone) serves with the README's
own `make run` lines; the `export` lines the server prints are pasted before every shell
block, as the README says to; each shell block runs in bash, each Python block in the venv.
"""

from __future__ import annotations

import os
import queue
import re
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from twilio.rest import Client

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# What a fresh clone does not have, and what a copy must not take from this checkout.
NOT_COPIED = (".git", ".venv", ".env", "instance", ".cache", "test-artifacts", "node_modules")
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_SERVER_LINE = re.compile(r"^((?:[A-Z_]+=\S+ )*)make run$")

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def section(title: str) -> str:
    """The text under a heading of the README, up to the next heading of any level."""
    text = README.read_text()
    start = re.search(rf"^##+ {re.escape(title)}\n", text, re.MULTILINE).start()
    following = re.search(r"^##", text[start + 2 :], re.MULTILINE)
    end = start + 2 + following.start() if following else len(text)
    return text[start:end]


def blocks(title: str) -> list[tuple[str, str]]:
    return [(language, body) for language, body in _FENCE.findall(section(title))]


@dataclass
class Server:
    """`make run` in the copy, its stderr read as it comes."""

    process: subprocess.Popen
    lines: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    def exports(self) -> list[str]:
        return [line for line in self.lines if line.startswith("export ")]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.reader.join(10)
        self.process.stderr.close()


class Terminal:
    """One bash that keeps its variables from block to block, as a person's terminal does.

    It stops at the first failing command (-e), which ends the test with what it printed.
    No pipefail, as in a person's shell: `... | head -n 1` may end its writer with SIGPIPE.
    """

    def __init__(self, folder: Path, environ: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            ["bash", "--noprofile", "--norc", "-eu"],
            cwd=folder,
            env=environ,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def type(self, text: str, timeout: float = 120) -> str:
        marker = f"--- block {uuid.uuid4().hex} done ---"
        self.process.stdin.write(f"{text}\necho '{marker}'\n")
        self.process.stdin.flush()
        printed: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"{text}\n--- still running:\n{''.join(printed)}") from None
            if line is None:
                raise AssertionError(f"{text}\n--- the shell stopped:\n{''.join(printed)}")
            if line.rstrip("\n") == marker:
                return "".join(printed)
            printed.append(line)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        else:
            self.process.stdin.close()
        self.reader.join(10)
        self.process.stdout.close()


class Walkthrough:
    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.port = port
        keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
        # PORT stands for the user's .env: the README's default port may be taken here.
        self.environ = {name: os.environ[name] for name in keep if name in os.environ}
        self.environ["PORT"] = str(port)
        self.server: Server | None = None
        self.terminal: Terminal | None = None
        self.outputs: list[str] = []

    def serve(self, line: str) -> None:
        match = _SERVER_LINE.match(line)
        assert match, f"not a make run line: {line!r}"
        variables = dict(part.split("=", 1) for part in match.group(1).split())
        if self.server is not None:
            self.server.stop()
        process = subprocess.Popen(
            ["make", "--no-print-directory", "run"],
            cwd=self.folder,
            env={**self.environ, **variables},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        server = Server(process)
        server.reader = threading.Thread(target=self._read, args=(server,), daemon=True)
        server.reader.start()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert process.poll() is None, "\n".join(server.lines)
            try:
                requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        else:
            raise AssertionError("make run did not serve:\n" + "\n".join(server.lines))
        self.server = server

    @staticmethod
    def _read(server: Server) -> None:
        for line in server.process.stderr:
            server.lines.append(line.rstrip("\n"))

    def run(self, language: str, body: str) -> str:
        if language == "sh":
            if self.terminal is None:
                # The second terminal: the server's export lines pasted once, then each block.
                self.terminal = Terminal(self.folder, self.environ)
                self.terminal.type("\n".join(self.server.exports()) if self.server else "")
            output = self.terminal.type(body)
        else:
            assert language == "python", language
            done = subprocess.run(
                [str(self.folder / ".venv" / "bin" / "python"), "-c", body],
                cwd=self.folder,
                env={**self.environ, **self.exported()},
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, f"{body}\n--- stdout\n{done.stdout}\n{done.stderr}"
            output = done.stdout
        self.outputs.append(output)
        return output

    def exported(self) -> dict[str, str]:
        values = {}
        for line in self.server.exports():  # the values the server printed
            name, _, value = line.removeprefix("export ").partition("=")
            values[name] = shlex.split(value)[0]
        return values

    def play(self, title: str) -> None:
        for language, body in blocks(title):
            if language == "sh" and _SERVER_LINE.match(body.strip()):
                self.serve(body.strip())
            elif language in ("sh", "python"):
                self.run(language, body)

    def workspace(self):
        values = self.exported()
        client = Client(
            values["AC"], values["TOKEN"], environment={"TWILIO_EDGE": "", "TWILIO_REGION": ""}
        )
        client.taskrouter.base_url = values["TR"]
        return client.taskrouter.v1.workspaces(values["WS"]), values

    def close(self) -> None:
        if self.terminal is not None:
            self.terminal.close()
        if self.server is not None:
            self.server.stop()


@pytest.fixture
def walkthrough(tmp_path):
    folder = tmp_path / "project"
    shutil.copytree(ROOT, folder, ignore=shutil.ignore_patterns(*NOT_COPIED, "__pycache__"))
    # The venv make test built: the same stamps, so make run installs nothing. Were the
    # copy's install inputs newer than the stamp (an edit since the last make), make would
    # reinstall the project editable from this copy into the shared venv, which then points
    # at a folder about to be deleted: they are dated no later than the stamp.
    (folder / ".venv").symlink_to(ROOT / ".venv")
    stamp = (ROOT / ".venv" / ".runtime").stat().st_mtime
    for name in ("requirements.txt", "requirements-dev.txt", "pyproject.toml"):
        if (folder / name).stat().st_mtime > stamp:
            os.utime(folder / name, (stamp, stamp))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    played = Walkthrough(folder, port)
    yield played
    played.close()


def _assigned_to_alice(workspace, values, task_sid: str) -> None:
    task = workspace.tasks(task_sid).fetch()
    assert task.assignment_status == "assigned", task_sid
    accepted = [r for r in task.reservations.list() if r.reservation_status == "accepted"]
    assert [r.worker_sid for r in accepted] == [values["ALICE"]]


def test_the_curl_walkthrough_runs_both_parts_as_written(walkthrough):
    walkthrough.play("Try it offline")  # the opening `make run`
    first_exports = walkthrough.server.exports()
    walkthrough.play("With curl")

    # The restart in accept mode kept the sandbox: the same values came out again.
    assert walkthrough.server.exports() == first_exports
    workspace, values = walkthrough.workspace()
    tasks = workspace.tasks.list()
    assert len(tasks) == 2
    for task in tasks:
        _assigned_to_alice(workspace, values, task.sid)
    assert workspace.workers(values["ALICE"]).fetch().activity_name == "Busy"
    # What the blocks printed: step 1 pending, 4 assigned and Busy, 6 assigned at once.
    printed = "".join(walkthrough.outputs)
    assert printed.count('"assignment_status": "pending"') == 1
    assert printed.count('"assignment_status": "assigned"') == 2
    assert '"activity_name": "Busy"' in printed
    assert '"reservation_status":"accepted"' in printed
    # The Python block listed both tasks, assigned.
    assert printed.count("'assigned')") == 2


def test_the_flask_command_walkthrough_runs_both_parts_as_written(walkthrough):
    walkthrough.play("With the flask command")

    workspace, values = walkthrough.workspace()
    tasks = workspace.tasks.list()
    assert len(tasks) == 2
    assert {task.assignment_status for task in tasks} == {"completed"}
    for task in tasks:
        done = [r for r in task.reservations.list() if r.reservation_status == "completed"]
        assert [r.worker_sid for r in done] == [values["ALICE"]]
    # Before `complete`, the second status table showed both tasks assigned, none pending.
    last_status = walkthrough.outputs[-1]
    assert last_status.count(" assigned ") == 2
    assert "Pending reservations\n  (none)" in last_status


# Sections whose shell blocks need what no test machine has (a Twilio account, ngrok), or
# that other tests run: the gunicorn command is tests/test_offline_quickstart.py's.
ELSEWHERE = ("Walkthrough with a Twilio account", "Serving with gunicorn")
PLAYED = ("Try it offline", "With curl", "With the flask command")


def test_every_shell_block_is_played_here_or_needs_an_account():
    text = README.read_text()
    headings = [(m.start(), m.group(1)) for m in re.finditer(r"^##+ (.+)$", text, re.MULTILINE)]
    for match in re.finditer(r"^ *```sh$", text, re.MULTILINE):
        heading = [title for start, title in headings if start < match.start()][-1]
        assert heading in PLAYED + ELSEWHERE, f"a shell block under {heading!r} is run by no test"
