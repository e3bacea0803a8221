"""A stand-in for the app's /assignment_callback: records each callback (its URL, form and
signature) and answers accept, or another answer ({} leaves the reservation pending), after a
delay when asked, so that tests can have callbacks in flight."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass(frozen=True)
class Call:
    reservation_sid: str
    task_sid: str
    token: str
    at: float
    url: str = ""
    form: dict[str, str] = field(default_factory=dict)
    signature: str = ""


class CallbackReceiver:
    """Serves on 127.0.0.1 at a free port; `url` is where the workflow should call back."""

    def __init__(self, delay: float = 0.0, answer: dict[str, Any] | None = None) -> None:
        self.delay = delay
        self.answer = {"instruction": "accept"} if answer is None else answer
        self.calls: list[Call] = []
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                call = Call(
                    form.get("ReservationSid", ""),
                    form.get("TaskSid", ""),
                    self.headers.get("I-Twilio-Idempotency-Token", ""),
                    time.monotonic(),
                    f"http://127.0.0.1:{receiver._server.server_port}{self.path}",
                    form,
                    self.headers.get("X-Twilio-Signature", ""),
                )
                with receiver._changed:
                    receiver.calls.append(call)
                    receiver._changed.notify_all()
                if receiver.delay:
                    time.sleep(receiver.delay)
                body = json.dumps(receiver.answer).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the caller is gone (a killed server): nothing to answer

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}/assignment_callback"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> CallbackReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def reservations(self) -> list[str]:
        with self._changed:
            return [call.reservation_sid for call in self.calls]

    def wait_for(self, predicate, timeout: float) -> bool:
        """Wait until predicate(calls) holds; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(list(self.calls)), timeout)
