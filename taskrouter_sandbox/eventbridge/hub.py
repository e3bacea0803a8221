"""The workers' websockets: who is connected, and what each is sent.

A worker's socket gets what the Worker SDK reads from Twilio's event bridge: "init" once
it is open (the worker, account, workspace and the token's remaining lifetime in ms), a
heartbeat (a blank message, which the SDK counts as one) every HEARTBEAT seconds, and every
TaskRouter event of its own: its worker's and channels' changes, its reservations' and their
tasks' changes, as
{"event_type": ..., "payload": ...} in the SDK's shapes.

The events come from the events table, the record every change writes in its own
transaction: a feed thread reads what was added since it last looked, woken at once by a
change committed in this process and every POLL seconds for one committed by another process
over the same database file (a gunicorn worker that serves the REST call). So the sockets
see exactly what the REST API and the event callbacks see, and nothing is kept twice.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from simple_websocket import ConnectionClosed

from taskrouter_sandbox.domain.errors import EngineError
from taskrouter_sandbox.eventbridge.connection import Connection
from taskrouter_sandbox.eventbridge.resources import Resources
from taskrouter_sandbox.eventbridge.tokens import Grant
from taskrouter_sandbox.store import StoreError

logger = logging.getLogger(__name__)

HEARTBEAT = 15.0  # seconds; the SDK gives up on a socket silent for 30
# Seconds between looks for events committed by another process (a second gunicorn worker over
# the same database file), which the feed has no other way to learn of. A look that finds nothing
# is one indexed read, about 30 us of CPU: 50 a second cost about 0.15% of a core, and only while
# a socket is open. bench/eventbridge.py ("other process") meets a whole POLL almost every time,
# since the worker's own last change (going Idle) has just woken the feed when the task comes:
# p50 53 ms at 0.05 s, 22 ms at 0.02 s.
POLL = 0.02
_WORKER_EVENTS = ("worker.activity.update", "worker.attributes.update")
_CHANNEL_EVENTS = ("worker.capacity.update", "worker.channel.availability.update")
_TASK_EVENTS = ("task.updated", "task.canceled", "task.completed", "task.wrapup")
_WORKER_PREFIXES = ("reservation.", "worker.")
# How long after the answer to a worker's own call the events it set off follow. The SDK takes
# the answer through a chain of promises that a browser may run after a websocket message sent
# a moment later (Twilio documents no order between the two). The answer is out when this
# starts (the response has been written and closed), so the gap covers only the client's own
# handling of it. It is also what a busy agent waits for the next task: going Idle reserves the
# queue's next task in the same call, whose events wait out the gap. 0.1 s made the event
# bridge's benchmark 106 ms at p50 (p99 115 ms, over its 100 ms target). What keeps the order
# is holding the events until the answer is written (a desk showed Idle while TaskRouter had
# the worker Reserved when they went out on commit, before it); the gap is a margin on top.
ANSWER_GAP = 0.03  # seconds
# The close codes: a socket replaced by closeExistingSessions, and one whose token expired.
REPLACED, EXPIRED = 4001, 4002
GOING_AWAY = 1001  # the sandbox is closing (RFC 6455)
# How long close_all() waits for the feed thread to finish the read it may be in.
FEED_STOP_TIMEOUT = 5.0


class Hub:
    """The sockets of one sandbox in this process, and the thread that feeds them."""

    def __init__(
        self,
        resources: Resources,
        read_events: Callable[[int], list[dict]],
        last_event: Callable[[], int],
    ) -> None:
        self._resources = resources
        self._read_events = read_events
        self._last_event = last_event
        self._lock = threading.Lock()
        self._connections: dict[str, list[Connection]] = defaultdict(list)
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        # Set by close_all(): no feed runs and no socket is kept from then on.
        self._closed = False
        self._gone_lock = threading.Lock()
        self._seen = 0
        # Workers whose own call is being answered (how many calls), and the messages kept
        # back for them meanwhile; _sending keeps a release's flush and new sends in order.
        self._answering: dict[str, int] = defaultdict(int)
        self._kept: dict[str, list[str]] = defaultdict(list)
        self._sending = threading.Lock()
        # Called with a worker's grant when its last socket closed from the client's side.
        self.on_gone: Callable[[Grant], None] | None = None

    # -- the feed ---------------------------------------------------------------------------

    def committed(self) -> None:
        """A change was committed in this process: look now."""
        self._wake.set()

    def _ensure_feeding(self) -> None:
        if not self._feeding_wanted():
            return
        # Read outside the lock: reading the events may wait for the database's write lock
        # (the event journal is moved into them first).
        seen = self._last_event()
        with self._lock:
            if not self._feeding_wanted():
                return
            self._seen = seen
            self._thread = threading.Thread(target=self._feed, name="eventbridge-feed", daemon=True)
            self._thread.start()

    def _feeding_wanted(self) -> bool:
        """Whether a feed thread should start (asked under _lock, or as a hint without it)."""
        return not self._closed and (self._thread is None or not self._thread.is_alive())

    def _feed(self) -> None:
        while True:
            self._wake.wait(POLL)
            self._wake.clear()
            with self._lock:
                if self._closed or not self._connections:
                    self._thread = None
                    return
            try:
                rows = self._read_events(self._seen)
            except StoreError:
                return  # the sandbox is closing: its sockets go with it
            except Exception:
                logger.exception("the event bridge could not read new events")
                continue
            for row in rows:
                self._seen = max(self._seen, row["seq"])
                try:
                    self._publish(row)
                except EngineError:
                    pass  # deleted since: nothing to show for it
                except Exception:
                    logger.exception("the event bridge could not send %s", row["event_type"])

    def _publish(self, row: dict[str, Any]) -> None:
        """Send one event to the sockets of the workers it concerns. The payload is the
        resource as it is now, with the status the event recorded (event_data's fields, as
        the event callbacks carry them), which a later change may have moved on since."""
        event_type, workspace_sid = row["event_type"], row["workspace_sid"]
        worker_sid, task_sid = row["worker_sid"], row["task_sid"]
        if event_type in _TASK_EVENTS and task_sid:
            holders = self._resources.task_workers(workspace_sid, task_sid)
            recipients = [sid for sid in holders if self._connected(sid)]
        elif event_type.startswith(_WORKER_PREFIXES) and worker_sid:
            recipients = [worker_sid] if self._connected(worker_sid) else []
        else:
            return
        if not recipients:
            return
        data = json.loads(row["event_data"])
        resources = self._resources
        if event_type.startswith("reservation."):
            payload = resources.reservation(
                workspace_sid, row["reservation_sid"], status=data.get("ReservationStatus")
            )
        elif event_type in _WORKER_EVENTS:
            payload = resources.worker(workspace_sid, worker_sid)
            if "WorkerActivitySid" in data:
                payload["activity_sid"] = data["WorkerActivitySid"]
                payload["activity_name"] = data.get("WorkerActivityName")
                payload["available"] = data.get("WorkerAvailable") == "true"
        elif event_type in _CHANNEL_EVENTS:
            payload = resources.channel(workspace_sid, worker_sid, data["WorkerChannelSid"])
        elif event_type in _TASK_EVENTS:
            payload = resources.task(workspace_sid, task_sid)
            if "TaskAssignmentStatus" in data:
                payload["assignment_status"] = data["TaskAssignmentStatus"]
        else:
            return  # worker.created, worker.deleted: not the SDK's
        for recipient in recipients:
            self._send(recipient, event_type, payload)

    def sockets(self, worker_sid: str) -> int:
        """How many sockets the worker has open here."""
        with self._lock:
            return len(self._connections.get(worker_sid, ()))

    def _connected(self, worker_sid: str) -> bool:
        return self.sockets(worker_sid) > 0

    def _send(self, worker_sid: str, event_type: str, payload: dict[str, Any]) -> None:
        message = json.dumps({"event_type": event_type, "payload": payload})
        with self._sending:
            if self._answering.get(worker_sid):
                self._kept[worker_sid].append(message)
                return
            self._deliver(worker_sid, [message])

    def _deliver(self, worker_sid: str, messages: list[str]) -> None:
        with self._lock:
            connections = list(self._connections.get(worker_sid, ()))
        for message in messages:
            for connection in connections:
                connection.send(message)

    # -- a call's answer before what it set off ----------------------------------------------

    def answering(self, worker_sid: str) -> None:
        """The worker's own call (through the envelope) is being answered: keep its events
        until ANSWER_GAP after answered(). At Twilio what a call sets off (the reservation
        for a worker just made available, and its move to Reserved) comes after the call's
        answer; the SDK applies the answer over whatever came before it, so an event that
        overtook the answer would be undone (the worker shown Idle while TaskRouter has it
        Reserved)."""
        with self._sending:
            self._answering[worker_sid] += 1

    def answered(self, worker_sid: str) -> None:
        """The call's answer is out: send what was kept, in order, ANSWER_GAP later."""
        timer = threading.Timer(ANSWER_GAP, self._release, (worker_sid,))
        timer.daemon = True
        timer.start()

    def _release(self, worker_sid: str) -> None:
        with self._sending:
            self._answering[worker_sid] -= 1
            if self._answering[worker_sid] > 0:
                return
            del self._answering[worker_sid]
            self._deliver(worker_sid, self._kept.pop(worker_sid, []))

    # -- one socket -------------------------------------------------------------------------

    def serve(self, ws: Any, grant: Grant, *, close_existing: bool, offline_if_gone: bool) -> None:
        """Keep one worker's socket until it closes (run on the request's own thread)."""
        connection = Connection(ws, grant)
        with self._lock:
            if self._closed:
                connection.close(GOING_AWAY, "The sandbox is shutting down")
                return
            others = list(self._connections[grant.worker_sid]) if close_existing else []
            self._connections[grant.worker_sid].append(connection)
        for other in others:
            other.close(
                REPLACED,
                "Another session has connected for this worker, disconnecting current session.",
            )
        lifetime_ms = max(0, int((grant.expires - time.time()) * 1000))
        init = {
            "event_type": "init",
            "payload": {
                "channel_id": grant.worker_sid,
                "account_sid": grant.account_sid,
                "workspace_sid": grant.workspace_sid,
                "token_lifetime": lifetime_ms,
            },
        }
        try:
            # Inside the try: the newest event's seq may be unreadable (the store closing, the
            # database locked), and the connection must not stay registered then.
            self._ensure_feeding()
            connection.send(json.dumps(init))
            while True:
                left = grant.expires - time.time()
                if left <= 0:
                    connection.close(EXPIRED, "Token expired")
                    break
                # The SDK sends nothing; receive() returns on its close, or None at the timeout.
                ws.receive(timeout=min(HEARTBEAT, left))
                if not connection.send(" "):
                    break
        except ConnectionClosed:
            pass
        finally:
            connection.end()
            with self._lock:
                mine = self._connections.get(grant.worker_sid, [])
                if connection in mine:
                    mine.remove(connection)
                last = not mine
                if last:
                    self._connections.pop(grant.worker_sid, None)
        if last and offline_if_gone and not connection.closed_by_server and self.on_gone:
            # Under _gone_lock, which close_all() waits for: the store may be closing.
            with self._gone_lock:
                if self._closed:
                    return
                try:
                    self.on_gone(grant)
                except Exception:
                    logger.exception("worker %s could not be set offline", grant.worker_sid)

    def close_all(self) -> None:
        """Close every socket and stop the feed, waiting for the read it may be in: the
        sandbox's store closes next, and a connection closed under a thread still reading
        it crashes the process (sqlite). A socket that connects after this is turned away."""
        with self._lock:
            self._closed = True
            connections = [c for group in self._connections.values() for c in group]
            feed = self._thread
        for connection in connections:
            connection.close(GOING_AWAY, "The sandbox is shutting down")
        self._wake.set()
        if feed is not None and feed is not threading.current_thread():
            feed.join(FEED_STOP_TIMEOUT)
        with self._gone_lock:
            pass  # a worker being set offline as this began is set: nothing more will be
