"""The app under real gunicorn for the tests that need a real server: a free port, an
environment that ignores the developer's `.env`, and a clean stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
# Blank values win over a developer's .env and count as unset.
BLANK_SETTINGS = {
    name: ""
    for name in (
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_API_KEY",
        "TWILIO_API_SECRET",
        "TWILIO_WORKSPACE_SID",
        "TWILIO_WORKFLOW_SID",
        "TASKROUTER_BACKEND",
        "PUBLIC_BASE_URL",
        "CONTROL_TOKEN",
    )
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Gunicorn:
    port: int
    url: str
    process: subprocess.Popen
    # Its log so far, read as it comes: a pipe nobody reads fills and blocks the workers.
    log: list[str]


@contextmanager
def gunicorn_app(
    tmp_path: Path,
    *,
    workers: int = 2,
    threads: int = 8,
    options: Sequence[str] = (),
    **settings: str,
) -> Iterator[Gunicorn]:
    """`gunicorn --workers 2 --threads 8 --bind 127.0.0.1:PORT 'app:create_app()'`, the
    README's command, with `settings` over blank account settings, ready to serve."""
    port = free_port()
    environ = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        **BLANK_SETTINGS,
        "PORT": str(port),
        "INSTANCE_PATH": str(tmp_path / "instance"),
        **settings,
    }
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        *("--workers", str(workers), "--threads", str(threads)),
        *("--bind", f"127.0.0.1:{port}", *options, "app:create_app()"),
    ]
    # A session of its own, so that the whole group can be killed: see the stop below.
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    log: list[str] = []

    def read_log() -> None:
        for line in process.stderr:
            log.append(line.decode(errors="replace"))

    reader = threading.Thread(target=read_log, name="gunicorn-log-reader", daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                # Not listening yet, or a worker still importing the app on a busy machine.
                assert process.poll() is None, "".join(log)
            assert time.monotonic() < deadline, "gunicorn did not answer /healthz"
            time.sleep(0.1)
        try:
            yield Gunicorn(port, url, process, log)
        except BaseException:
            # What the server said is the first clue to a failed request: show its log.
            sys.stderr.write("gunicorn's log:\n" + "".join(log[-200:]))
            raise
    finally:
        process.send_signal(signal.SIGINT)
        with suppress(subprocess.TimeoutExpired):
            process.wait(10)
        # Also any worker left behind: gunicorn's gthread worker can deadlock in its SIGQUIT
        # handler (it shuts its thread pool down while the pool is starting a thread), and a
        # worker that outlived its master kept the log pipe open, so the reader never saw its
        # end and closing the pipe under it hung the test run.
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)
        reader.join(timeout=5)
        if not reader.is_alive():
            process.stderr.close()
