"""The callback receiver the sandbox benchmarks point a workspace at: it answers assignment
callbacks with an instruction and timestamps event callbacks, checking every signature.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

from twilio.request_validator import RequestValidator

from bench.common import LOOPBACK, BenchError
from taskrouter_quickstart.routes.assignment import ANSWERS

ASSIGNMENT_PATH = "/assignment"
EVENTS_PATH = "/events"
# The event that says a task is assigned: its reservation was accepted.
ASSIGNED_EVENT = "reservation.accepted"
SIGNATURE_HEADER = "X-Twilio-Signature"
MAX_BODY = 1024 * 1024


class CallbackReceiver:
    """A threaded HTTP/1.1 server on a free loopback port (keep-alive, like Twilio's peers).

    on_assigned(params), if given, runs on the receiving thread for each ASSIGNED_EVENT.
    """

    def __init__(
        self,
        auth_token: str,
        *,
        answer: str = ANSWERS["accept"],
        on_assigned: Callable[[Mapping[str, str]], None] | None = None,
    ) -> None:
        self._validator = RequestValidator(auth_token)
        self._answer = answer.encode()
        self._on_assigned = on_assigned
        self._changed = threading.Condition()
        self.assigned_at: dict[str, float] = {}
        self.called_at: dict[str, float] = {}
        self.assignment_callbacks = 0
        self.events = 0
        self.bad_signatures = 0
        self._server = ThreadingHTTPServer((LOOPBACK, 0), self._handler_class())
        self._server.daemon_threads = False
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="bench-receiver"
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> CallbackReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and join the connection threads (their peers must be gone first)."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> CallbackReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def wait_assigned(self, task_sid: str, timeout: float) -> float:
        """perf_counter() when the task's reservation.accepted event arrived."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while task_sid not in self.assigned_at:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BenchError(f"task {task_sid} was not assigned within {timeout:g} s")
                self._changed.wait(left)
            return self.assigned_at[task_sid]

    def wait_count(self, count: int, timeout: float) -> float:
        """Block until `count` tasks are assigned; perf_counter() of the last one."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.assigned_at) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BenchError(
                        f"{len(self.assigned_at)} of {count} tasks assigned after {timeout:g} s"
                    )
                self._changed.wait(left)
            return max(self.assigned_at.values())

    def _received(self, path: str, params: dict[str, str], signature: str) -> tuple[int, bytes]:
        received = time.perf_counter()
        if not self._validator.validate(self.url + path, params, signature):
            with self._changed:
                self.bad_signatures += 1
            return 403, b""
        if path == ASSIGNMENT_PATH:
            with self._changed:
                self.assignment_callbacks += 1
                self.called_at.setdefault(params.get("TaskSid", ""), received)
            return 200, self._answer
        if path == EVENTS_PATH:
            assigned = params.get("EventType") == ASSIGNED_EVENT
            with self._changed:
                self.events += 1
                if assigned:
                    self.assigned_at.setdefault(params.get("TaskSid", ""), received)
                    self._changed.notify_all()
            if assigned and self._on_assigned is not None:
                self._on_assigned(params)
            return 204, b""
        return 404, b""

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # A silent peer cannot hold a thread (and the shutdown join) for long.
            timeout = 10

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in separate writes: without this, Nagle's algorithm
                # meets the peer's delayed ACK and every answer waits ~40 ms.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if not 0 <= length <= MAX_BODY:
                    self._answer(413, b"")
                    return
                body = self.rfile.read(length).decode("utf-8", "replace")
                params = dict(parse_qsl(body, keep_blank_values=True))
                status, payload = receiver._received(
                    self.path, params, self.headers.get(SIGNATURE_HEADER, "")
                )
                self._answer(status, payload)

            def _answer(self, status: int, payload: bytes) -> None:
                self.send_response(status)
                if payload:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler
