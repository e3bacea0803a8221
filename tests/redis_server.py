"""A real redis-server (Debian's package) for the tests that need one: started on a free
loopback port with nothing saved to disk, ready once it answers PING, stopped at the end.

`make test` installs redis-server where it runs as root; elsewhere those tests skip.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis

from tests.servers import free_port

EXECUTABLE = shutil.which("redis-server")
MISSING = (
    "redis-server is not installed: make test installs Debian's redis-server where it runs "
    "as root (apt-get install redis-server)"
)


def require_redis_server() -> str:
    if EXECUTABLE is None:
        pytest.skip(MISSING)
    return EXECUTABLE


class RedisServer:
    """One redis-server process; stop() and start() again keep its port (and so its URL)."""

    def __init__(self, directory: Path, *, password: str | None = None) -> None:
        self.executable = require_redis_server()
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.password = password
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        credentials = f":{self.password}@" if self.password else ""
        return f"redis://{credentials}127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password)

    def start(self) -> RedisServer:
        command = [
            self.executable,
            *("--port", str(self.port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--dir", str(self.directory)),
            *("--daemonize", "no", "--loglevel", "warning"),
        ]
        if self.password:
            command += ["--requirepass", self.password]
        log = (self.directory / "redis-server.log").open("ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 15
        with self.client() as client:
            while True:
                try:
                    if client.ping():
                        return self
                except redis.ConnectionError:
                    pass
                if self.process.poll() is not None or time.monotonic() > deadline:
                    output = (self.directory / "redis-server.log").read_text(errors="replace")
                    raise RuntimeError(f"redis-server did not start on {self.port}: {output}")
                time.sleep(0.02)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGCONT)
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.process = None

    def pause(self) -> None:
        """Stop the process in its tracks (SIGSTOP): connections stay open, nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)
