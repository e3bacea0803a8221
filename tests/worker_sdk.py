"""Twilio's Worker SDK (twilio-taskrouter, unmodified) as an agent's desk a Python test drives.

`make test` installs the version tests/node/package-lock.json pins into the gitignored
.cache/node. An SdkWorker runs tests/node/worker.js: one long-lived Node.js process holding one
`new Worker(token, options)`, which talks to the sandbox's event bridge over real HTTP and a
real websocket. The test sends it commands (accept this reservation, go Idle, ...) and reads
every event the SDK emits, in order, with what the SDK's objects held at that moment: what a
real agent desktop would see. Without Node.js or the installed package the tests skip, saying
why.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.node_client import MODULES, ROOT

SCRIPT = ROOT / "tests" / "node" / "worker.js"
# Long enough for a command on a loaded machine (the SDK's own HTTP timeout is 15 s).
ANSWER_TIMEOUT = 30
# How long a test waits for an event the sandbox sends at once (a REST change reaching the SDK).
EVENT_TIMEOUT = 10


class SdkError(Exception):
    """A command the SDK refused: its promise was rejected (or it threw) with this error."""

    def __init__(self, name: str | None, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name, self.message = name, message


def require_worker_sdk() -> str:
    """The node executable; skips the test when Node.js or twilio-taskrouter is absent."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the Worker SDK (twilio-taskrouter) tests skip")
    if not (MODULES / "twilio-taskrouter").is_dir():
        pytest.skip("twilio-taskrouter is not installed: `make test` installs it into .cache/node")
    return node


class SdkWorker:
    """One Worker of the SDK, constructed with token and options (ebServer and wsServer at
    least). Events are kept in order; wait_for() finds the next matching one."""

    def __init__(self, token: str, **options: Any) -> None:
        node = require_worker_sdk()
        config = json.dumps({"token": token, "options": options})
        # A file, not a pipe: nobody reads stderr until the process has ended.
        self._stderr_file = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed by close())
        self._process = subprocess.Popen(
            [node, str(SCRIPT), config],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr_file,
            env={**os.environ, "NODE_PATH": str(MODULES)},
            cwd=ROOT,
            text=True,
            bufsize=1,
        )
        self._ids = itertools.count(1)
        self._answers: dict[int, queue.Queue[dict[str, Any]]] = {}
        self._lock = threading.Condition()
        self.events: list[dict[str, Any]] = []
        self._matched: set[int] = set()  # indices of events an earlier wait_for() returned
        self._reader = threading.Thread(target=self._read, name="sdk-worker-stdout", daemon=True)
        self._reader.start()

    # -- what the SDK emits -----------------------------------------------------------------

    def _read(self) -> None:
        assert self._process.stdout
        for line in self._process.stdout:
            message = json.loads(line)
            with self._lock:
                if "event" in message:
                    self.events.append(message)
                else:
                    self._answers.setdefault(message["id"], queue.Queue()).put(message)
                self._lock.notify_all()
        with self._lock:
            self.events.append({"event": "<process ended>"})
            self._lock.notify_all()

    def wait_for(
        self,
        event: str | tuple[str, ...],
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float = EVENT_TIMEOUT,
    ) -> dict[str, Any]:
        """The earliest event named event (or any of a tuple of names) and passing predicate
        that no earlier wait_for() returned, whether it came already or comes within timeout
        seconds: events of one change may come in any order. Fails the test, naming what
        came, at the timeout."""
        names = (event,) if isinstance(event, str) else event
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for index, found in enumerate(self.events):
                    if index in self._matched:
                        continue
                    if found["event"] in names and (predicate is None or predicate(found)):
                        self._matched.add(index)
                        return found
                    if found["event"] == "<process ended>":
                        pytest.fail(f"the SDK's process ended: {self._stderr()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [e["event"] for e in self.events]
                    pytest.fail(f"no {event} from the SDK within {timeout} s; it sent {seen}")
                self._lock.wait(left)

    def names_since(self, mark: int) -> list[str]:
        """The names of the events from index mark on (mark: len(worker.events) earlier)."""
        with self._lock:
            return [e["event"] for e in self.events[mark:]]

    def _stderr(self) -> str:
        self._stderr_file.seek(0)
        return self._stderr_file.read()

    # -- what the test does -----------------------------------------------------------------

    def command(self, command: str, /, **arguments: Any) -> Any:
        """Run a command of worker.js and return its answer; SdkError if the SDK refused."""
        assert self._process.stdin
        number = next(self._ids)
        with self._lock:
            answers = self._answers.setdefault(number, queue.Queue())
        self._process.stdin.write(
            json.dumps({"id": number, "command": command, **arguments}) + "\n"
        )
        try:
            answer = answers.get(timeout=ANSWER_TIMEOUT)
        except queue.Empty:
            pytest.fail(f"the SDK gave no answer to {command} within {ANSWER_TIMEOUT} s")
        finally:
            with self._lock:
                self._answers.pop(number, None)
        if "error" in answer:
            raise SdkError(answer["error"]["name"], answer["error"]["message"])
        return answer["ok"]

    def state(self) -> dict[str, Any]:
        return self.command("state")

    def set_activity(self, name: str, **options: Any) -> dict[str, Any]:
        return self.command("activity", name=name, options=options)

    def reservation(self, sid: str, action: str, **options: Any) -> dict[str, Any]:
        return self.command("reservation", sid=sid, action=action, options=options)

    def task(self, reservation_sid: str, action: str, argument: Any = None) -> dict[str, Any]:
        return self.command("task", reservation=reservation_sid, action=action, argument=argument)

    def close(self) -> None:
        """Disconnect the SDK (as closing the desk does) and end its process."""
        stdin = self._process.stdin
        if stdin and not stdin.closed:
            with contextlib.suppress(OSError):  # it may have ended on its own
                stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._reader.join(timeout=10)
        if self._process.stdout:
            self._process.stdout.close()
        self._stderr_file.close()

    def __enter__(self) -> SdkWorker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
