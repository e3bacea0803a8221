"""One worker's open socket, and how messages leave for it.

Messages go out from a sender thread of the socket's own, in order, so that a client which
stopped reading (a frozen tab, a suspended laptop, a peer gone without a reset) holds up
nobody else: not the feed that serves every worker, not the sandbox's stop. With MAX_QUEUED
messages waiting, or a close frame that cannot go out within CLOSE_TIMEOUT, the socket is cut;
the Worker SDK then reconnects by itself and loads what it missed
(https://www.twilio.com/docs/taskrouter/js-sdk-v2/reconnect).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections import deque
from typing import Any

from simple_websocket import ConnectionClosed

from taskrouter_sandbox.eventbridge.tokens import Grant

MAX_QUEUED = 1000  # messages waiting for one socket before it is cut
CLOSE_TIMEOUT = 1.0  # seconds a close frame may take to go out


class Connection:
    """One open socket of a worker; send() never blocks."""

    def __init__(self, ws: Any, grant: Grant) -> None:
        self.ws = ws
        self.grant = grant
        # Set when the sandbox closed or cut it (not the client): the worker stays as it is.
        self.closed_by_server = False
        self._queue: deque[str | tuple[int, str]] = deque()
        self._changed = threading.Condition()
        self._done = False
        self._sender = threading.Thread(
            target=self._send_all, name=f"eventbridge-send-{grant.worker_sid}", daemon=True
        )
        self._sender.start()

    def send(self, message: str) -> bool:
        """Queue a message; False once the socket is closed (or cut for falling behind)."""
        with self._changed:
            if self._done:
                return False
            if len(self._queue) < MAX_QUEUED:
                self._queue.append(message)
                self._changed.notify()
                return True
        self.cut()
        return False

    def close(self, code: int, message: str) -> None:
        """A close frame after what is queued; the socket is cut if it cannot go out soon."""
        self.closed_by_server = True
        with self._changed:
            if not self._done:
                self._queue.append((code, message))
                self._changed.notify()
        self._sender.join(CLOSE_TIMEOUT)
        if self._sender.is_alive():
            self.cut()

    def cut(self) -> None:
        """End the TCP connection at once: unblocks a send stuck on a client that stopped
        reading, and the socket's reader, which then ends the socket's request."""
        self.closed_by_server = True
        self.end()
        sock = getattr(self.ws, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def end(self) -> None:
        """The socket's request is over (the client closed it, or it was closed): the sender
        thread ends, since nothing queued can reach the client any more."""
        with self._changed:
            self._done = True
            self._queue.clear()
            self._changed.notify()

    def _send_all(self) -> None:
        while True:
            with self._changed:
                while not self._queue and not self._done:
                    self._changed.wait()
                if not self._queue:
                    return
                item = self._queue.popleft()
            try:
                if isinstance(item, tuple):
                    self.ws.close(reason=item[0], message=item[1])
                    break
                self.ws.send(item)
            except (ConnectionClosed, OSError):
                break
        with self._changed:
            self._done = True
            self._queue.clear()
