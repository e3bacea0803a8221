"""Twilio's Node.js library as a second, independent client of the sandbox.

`make test` installs the version tests/node/package-lock.json pins into the gitignored
.cache/node. A NodeClient runs tests/node/bridge.js: one long-lived Node.js process that makes
each call with twilio-node over real HTTP, so a test written in Python can move the sandbox's
clock between calls. Answers are twilio-node's own view of the resources (camelCase fields,
its parsing of dates and errors), which is the point: what it reads differently, we learn.
Without Node.js or the installed library the tests that use it skip, saying why.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
BRIDGE = ROOT / "tests" / "node" / "bridge.js"
MODULES = ROOT / ".cache" / "node" / "node_modules"
# Long enough for a first call on a loaded machine, short enough to fail a hung test.
ANSWER_TIMEOUT = 30


class NodeError(Exception):
    """A call twilio-node failed: its RestException's status, code and message."""

    def __init__(self, status: int | None, code: int | None, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class NodeClient:
    """client.taskrouter.v1 in a Node.js process, pointed at base_url (and the control API
    beside it: send({"control": ...}))."""

    def __init__(self, base_url: str, account_sid: str, auth_token: str) -> None:
        node = shutil.which("node")
        if node is None:
            pytest.skip("Node.js is not installed: the twilio-node tests skip")
        if not (MODULES / "twilio").is_dir():
            pytest.skip("twilio-node is not installed: `make test` installs it into .cache/node")
        environ = {
            **os.environ,
            "NODE_PATH": str(MODULES),
            "TASKROUTER_BASE_URL": base_url,
            "TWILIO_ACCOUNT_SID": account_sid,
            "TWILIO_AUTH_TOKEN": auth_token,
        }
        self._process = subprocess.Popen(
            [node, str(BRIDGE)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=environ,
            text=True,
            bufsize=1,
        )

    def call(self, *path: Any) -> Any:
        """Walk path from client.taskrouter.v1 (a str is a property, a list [name, *args] a
        method call) and return the JSON of what the last step gave; NodeError if it failed."""
        return self.send({"path": list(path)})

    def send(self, message: dict[str, Any]) -> Any:
        """One line of the script's protocol out, its answer back; NodeError if it failed."""
        assert self._process.stdin and self._process.stdout
        self._process.stdin.write(json.dumps(message) + "\n")
        line = _read_line(self._process, ANSWER_TIMEOUT)
        answer = json.loads(line)
        if "error" in answer:
            error = answer["error"]
            raise NodeError(error["status"], error["code"], error["message"])
        return answer["ok"]

    def close(self) -> None:
        if self._process.stdin:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout:
            self._process.stdout.close()


def _read_line(process: subprocess.Popen, timeout: float) -> str:
    """The next line the bridge writes, or a failure naming the wait (a hung call or a crash)."""
    assert process.stdout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            process.kill()
            pytest.fail(f"twilio-node gave no answer within {timeout} s")
    line = process.stdout.readline()
    if not line:
        pytest.fail(f"twilio-node's bridge ended (exit status {process.wait()})")
    return line
