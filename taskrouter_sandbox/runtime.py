"""The Sandbox: one database's store and engine, its credentials and seeded workspace, and
the lifecycle of its callback delivery and timer threads in this process.

No Flask here: taskrouter_sandbox/__init__.py wires a Sandbox into an app.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import logging
import math
import os
import re
import secrets
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import IO

from taskrouter_sandbox.callbacks import Dispatcher, LocalTransport, on_delivery_thread
from taskrouter_sandbox.clock import Clock, SystemClock, movable, to_storage
from taskrouter_sandbox.domain.values import (
    AssignmentCallback,
    AssignmentOutcome,
    CallbackDelivery,
    Effect,
    EventCallback,
)
from taskrouter_sandbox.engine import Engine
from taskrouter_sandbox.eventbridge import tokens
from taskrouter_sandbox.scheduler import Scheduler
from taskrouter_sandbox.seed import SETTING as SEED_SETTING
from taskrouter_sandbox.seed import Seeded, ensure_seeded
from taskrouter_sandbox.state import outbox
from taskrouter_sandbox.store import MEMORY, Store, StoreError, Transaction, private_opener

logger = logging.getLogger(__name__)

ACCOUNT_SID_PATTERN = re.compile(r"^AC[0-9a-fA-F]{32}$")
_CREDENTIAL_SETTINGS = ("account_sid", "auth_token", "api_key_sid", "api_key_secret")
# Which server the seeded workflow calls back: kept across a reset, which points the new
# workflow at the same server.
SERVER_SETTING = "server"
# The callback deliveries a Sandbox remembers (Sandbox.deliveries), newest last.
DELIVERIES_KEPT = 1000
# How long settle() waits by default for the callbacks in flight.
SETTLE_TIMEOUT = 30.0


def _signing_key(tx: Transaction, regenerate: bool) -> tuple[str, str]:
    """The sandbox's API key (SID and secret), generated once and kept in its database."""
    sid, secret = tx.setting("api_key_sid"), tx.setting("api_key_secret")
    if regenerate or sid is None or secret is None:
        sid, secret = "SK" + secrets.token_hex(16), secrets.token_hex(16)
        tx.set_setting("api_key_sid", sid)
        tx.set_setting("api_key_secret", secret)
    return sid, secret


def _run_all(hooks: list[Callable[[], None]]) -> None:
    for hook in hooks:
        try:
            hook()
        except Exception:
            logger.exception("a close hook failed")


@dataclass(frozen=True)
class ServerRecord:
    """The server that serves this sandbox and receives its callbacks, as it last said."""

    callback_url: str
    pid: int


class Sandbox:
    """One sandbox: its store, engine, credentials and the SIDs of the seeded workspace."""

    def __init__(
        self,
        database: str,
        *,
        account_sid: str | None = None,
        auth_token: str | None = None,
        clock: Clock | None = None,
        seed: str = "quickstart",
        store: Store | None = None,
    ) -> None:
        """store: an opened Store of database to use (taskrouter_sandbox.testing hands one
        whose schema it copied), instead of opening one here."""
        if account_sid is not None and not ACCOUNT_SID_PATTERN.match(account_sid):
            raise ValueError(
                f"SANDBOX_ACCOUNT_SID {account_sid!r} is not an account SID (AC + 32 hex digits)"
            )
        if auth_token is not None and not auth_token.strip():
            raise ValueError("SANDBOX_AUTH_TOKEN must not be empty")
        self.clock: Clock = clock or SystemClock()
        self.store = store if store is not None else Store(database)
        self._pinned = (account_sid, auth_token)
        self.account_sid, self.auth_token = self._credentials()
        self.engine = Engine(self.store, self.clock, self.account_sid)
        self.engine.ensure_routing_state()
        self.seeded: Seeded = ensure_seeded(self.engine, seed)
        self._seed_text = self.seeded.to_json()
        # Serves some callback URLs in this process (taskrouter_sandbox.testing); set before
        # start(). None: every callback goes out over HTTP.
        self.local_transport: LocalTransport | None = None
        # The POSTs made to callback URLs by this process (the newest DELIVERIES_KEPT), with
        # their answers.
        self.deliveries: deque[CallbackDelivery] = deque(maxlen=DELIVERIES_KEPT)
        self._advance_lock = threading.Lock()
        self.dispatcher: Dispatcher | None = None
        self.scheduler: Scheduler | None = None
        self._outbox: outbox.Outbox | None = None
        self._started_pid: int | None = None
        self._start_lock = threading.Lock()
        self._server_lock: IO[str] | None = None
        self._reset_seen: int | None = None
        # Run first by close(): what uses the store from threads of its own (the event bridge).
        self.close_hooks: list[Callable[[], None]] = []

    def _credentials(self, regenerate: bool = False) -> tuple[str, str]:
        """Pinned credentials win; otherwise generated once and kept in the database. With
        them, the API key that signs the workers' access tokens (api_key_sid and
        api_key_secret), which only the sandbox's own database holds."""
        with self.store.transaction() as tx:
            self.api_key_sid, self.api_key_secret = _signing_key(tx, regenerate)
            account_sid = tx.setting("account_sid")
            auth_token = tx.setting("auth_token")
            if regenerate or account_sid is None or auth_token is None:
                account_sid = "AC" + secrets.token_hex(16)
                auth_token = secrets.token_hex(16)
                tx.set_setting("account_sid", account_sid)
                tx.set_setting("auth_token", auth_token)
        pinned_sid, pinned_token = self._pinned
        return pinned_sid or account_sid, pinned_token or auth_token

    def worker_token(
        self, worker_sid: str, *, workspace_sid: str | None = None, ttl: int = tokens.DEFAULT_TTL
    ) -> str:
        """An access token for the Worker SDK, as Twilio issues one: a worker of the seeded
        workspace unless workspace_sid names another."""
        key, workspace_sid = (self.api_key_sid, self.api_key_secret), workspace_sid
        workspace_sid = workspace_sid or self.seeded.workspace_sid
        return tokens.mint(self.account_sid, *key, workspace_sid, worker_sid, ttl)

    def reset(self, *, new_credentials: bool = False, seed: str | None = None) -> Seeded:
        """Wipe every resource and event, then seed a workspace again: of the kind given, else
        of the kind it had."""
        kind = seed or self.seeded.kind
        kept = (SERVER_SETTING,) if new_credentials else (SERVER_SETTING, *_CREDENTIAL_SETTINGS)
        with self.store.transaction() as tx:
            Store.wipe(tx, keep_settings=kept)
            self.account_sid, self.auth_token = self._credentials(regenerate=new_credentials)
            self.engine.account_sid = self.account_sid
            self.seeded = ensure_seeded(self.engine, kind)
        self.store.sync()  # committed before the server is told (store/behind.py)
        self._seed_text = self.seeded.to_json()
        self.deliveries.clear()
        if self.store.database != MEMORY:
            # Tells a server running over this database to read the new SIDs (reload_seeded).
            with open(self._server_lock_path, "a", opener=private_opener):
                os.utime(self._server_lock_path)
        if new_credentials and self.started:
            # Callbacks are signed with the auth token: restart delivery with the new one.
            timers = self.scheduler is not None
            self.stop()
            self.start(timers=timers)
        return self.seeded

    def reload_seeded(self) -> Seeded | None:
        """The seeded workspace when another process has reset the sandbox since, else None.

        Cheap enough for every request: a reset touches the server lock file (reset()), so
        the database is read only when that file's time has moved.
        """
        if self.store.database == MEMORY:
            return None
        try:
            stamp = os.stat(self._server_lock_path).st_mtime_ns
        except FileNotFoundError:
            return None
        if stamp == self._reset_seen:
            return None
        self._reset_seen = stamp
        with self.store.read() as tx:
            stored = tx.setting(SEED_SETTING)
        if stored is None or stored == self._seed_text:
            return None
        self.seeded, self._seed_text = Seeded.from_json(stored), stored
        return self.seeded

    # -- which server serves it ----------------------------------------------------------
    # A serving process keeps a shared flock on a file beside the database for as long as it
    # runs: the kernel drops it with the process, however it ends, so a record whose lock
    # nobody holds is a server that is gone (a pid could be reused or a zombie).

    def running_server(self) -> ServerRecord | None:
        """The server that serves this sandbox now, from its record, else None."""
        with self.store.read() as tx:
            stored = tx.setting(SERVER_SETTING)
        if stored is None or self.store.database == MEMORY:
            return None
        with open(self._server_lock_path, "a", opener=private_opener) as probe:
            try:
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return ServerRecord(**json.loads(stored))
        return None

    def serve(self, callback_url: str, pid: int) -> None:
        """Record this process as the server, and hold the lock that says it still runs."""
        if self._server_lock is None and self.store.database != MEMORY:
            # Private (0600), as the database beside it is; kept open while this process serves.
            lock = open(self._server_lock_path, "a", opener=private_opener)  # noqa: SIM115
            self._server_lock = lock
            fcntl.flock(self._server_lock, fcntl.LOCK_SH)
        with self.store.transaction() as tx:
            tx.set_setting(SERVER_SETTING, json.dumps(asdict(ServerRecord(callback_url, pid))))

    @property
    def _server_lock_path(self) -> str:
        return self.store.database + ".server"

    def describe(self, base_url: str) -> str:
        """What a person needs to point curl or the twilio library at this sandbox."""
        lines = [
            "TaskRouter sandbox",
            f"  base URL    {base_url}   (client.taskrouter.base_url)",
            f"  account SID {self.account_sid}",
            f"  auth token  {self.auth_token}",
            f"  database    {self.store.database}",
            "Seeded quickstart workspace:",
            *self.seeded.describe(),
        ]
        return "\n".join(lines)

    # -- background threads: callback delivery and timers ---------------------------------

    def start(self, *, timers: bool = True) -> None:
        """Start callback delivery and (unless timers is False, when advance() alone fires
        the deadlines) the timer thread, once per process.

        Idempotent and cheap, so it can run before every request: a process forked from one
        that had started (a gunicorn worker) starts its own threads on its first request.
        Assignment callbacks owed from before (a crash, a stopped process) are sent before the
        timers resume, so that none of their reservations times out unoffered meanwhile.
        """
        pid = os.getpid()
        if self._started_pid == pid:
            return
        with self._start_lock:
            if self._started_pid == pid:
                return
            if self._started_pid is not None:
                # Inherited from the parent across fork: its threads do not exist here (and
                # its outbox lock was let go of in this process at the fork).
                self._detach()
            self.dispatcher = Dispatcher(
                self.auth_token,
                self._apply_outcome,
                on_alert=self.engine.record_alert,
                on_delivery=self.deliveries.append,
                local_transport=self.local_transport,
            )
            lock_path = None if self.store.database == MEMORY else self.store.database + ".lock"
            if timers:
                self.scheduler = Scheduler(
                    self.engine.fire_due, lock_path=lock_path, gone=lambda: self.store.closed
                )
            self.engine.subscribe(self._deliver)
            if self.scheduler is not None:
                self.engine.on_deadline(self.scheduler.wake)
            # Owner first: a reservation made from here on is this process's to send, so
            # the claim below leaves it alone.
            self._outbox = outbox.Outbox(self.store)
            self.engine.callback_owner = self._outbox.owner
            self._send_owed(self.dispatcher, self._outbox)
            if self.scheduler is not None:
                self.scheduler.start()
            self._started_pid = pid
            atexit.register(self.stop)
            logger.info("sandbox callbacks and timers started (pid %d)", pid)

    # -- time and settling, for tests and the control API ----------------------------------

    def mark(self) -> int:
        """Where callback delivery stands now, for settle(since=...)."""
        dispatcher = self.dispatcher
        return dispatcher.mark() if dispatcher is not None else 0

    def settle(self, timeout: float = SETTLE_TIMEOUT, *, since: int = 0) -> bool:
        """Wait until the callbacks sent since the mark `since` (0: all of them) are
        delivered and their answers applied, including the callbacks those answers cause;
        False if some are still in flight after timeout.

        A request made while a callback is being answered (the callback app calling the API,
        from its own thread or another) settles from a mark taken when it began, so it never
        waits for the callback it is part of. At once when delivery is not started, or on a
        delivery thread, which would wait for itself."""
        if on_delivery_thread():
            return True
        self.store.sync()  # the effects of writes behind are queued first (store/behind.py)
        return (dispatcher := self.dispatcher) is None or dispatcher.wait_idle(timeout, since=since)

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward by seconds and fire what falls due on the way, each deadline
        at its own time and in order (a reservation timeout at 120 s, the next worker's at
        240 s, ...), with its callbacks delivered; the new time.

        Needs a clock that can move (ManualClock, ShiftedClock): ValueError otherwise, or for
        a negative or infinite number of seconds. RuntimeError from inside a callback being
        answered; TimeoutError when callbacks stay in flight past SETTLE_TIMEOUT.
        """
        if not movable(self.clock):
            raise ValueError(
                "this sandbox runs on the system clock, which it cannot move: start it with "
                "a ManualClock or ShiftedClock (SANDBOX_CLOCK)"
            )
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"seconds must be a finite number, 0 or more, not {seconds!r}")
        if on_delivery_thread():
            # It would wait for the callbacks it fires, this one among them.
            raise RuntimeError("the clock cannot be moved from inside a callback being answered")
        clock = self.clock
        if not self._advance_lock.acquire(timeout=SETTLE_TIMEOUT):
            raise TimeoutError(
                f"another advance of the clock still runs after {SETTLE_TIMEOUT:g} s"
            )
        try:
            target = clock.now() + timedelta(seconds=seconds)
            fired: datetime | None = None
            while True:
                self._settled()
                due = self.engine.earliest_deadline()
                if due is None or due > target or due == fired:
                    # due == fired: firing left it due (nothing can fire it): go on to target.
                    break
                clock.advance_to(due)  # type: ignore[attr-defined]
                self.engine.fire_due()
                fired = due
            clock.advance_to(target)  # type: ignore[attr-defined]
            self.engine.fire_due()
            self._settled()
            if self.scheduler is not None:
                self.scheduler.wake()
            return clock.now()
        finally:
            self._advance_lock.release()

    def _settled(self) -> None:
        if not self.settle():
            raise TimeoutError(f"callbacks still in flight after {SETTLE_TIMEOUT:g} s")

    def _deliver(self, effects: list[Effect]) -> None:
        dispatcher = self.dispatcher
        if dispatcher is None:
            return
        for effect in effects:
            if isinstance(effect, AssignmentCallback):
                self._send_assignment(
                    dispatcher,
                    effect.reservation_sid,
                    effect.url,
                    effect.fallback_url,
                    effect.params,
                )
                continue
            try:
                if isinstance(effect, EventCallback):
                    dispatcher.send_event(effect.url, effect.params)
            except (RuntimeError, ValueError) as error:
                logger.warning("callback not sent: %s", error)

    def _send_assignment(
        self,
        dispatcher: Dispatcher,
        reservation_sid: str,
        url: str,
        fallback_url: str | None,
        params: dict[str, str],
    ) -> None:
        try:
            dispatcher.send_assignment(reservation_sid, url, fallback_url, params)
        except RuntimeError as error:
            # Closed while stopping: still owed, and sent by the next start.
            logger.warning("assignment callback %s not sent yet: %s", reservation_sid, error)
        except ValueError as error:
            # A URL no attempt could use: owed no longer, as a failed callback is not.
            logger.warning("assignment callback %s not sent: %s", reservation_sid, error)
            with self.store.transaction() as tx:
                outbox.delivered(tx, reservation_sid)

    def _send_owed(self, dispatcher: Dispatcher, owner: outbox.Outbox) -> None:
        """Queue the owed callbacks no live process is sending (see outbox.py)."""
        try:
            owed = owner.claim(to_storage(self.clock.now()))
        except Exception:
            # Kept for the next start; delivery of new callbacks goes on meanwhile.
            logger.exception("owed assignment callbacks could not be claimed")
            return
        if owed:
            logger.info("sending %d assignment callbacks owed from before", len(owed))
        for callback in owed:
            self._send_assignment(
                dispatcher,
                callback.reservation_sid,
                callback.url,
                callback.fallback_url,
                callback.params,
            )

    def _apply_outcome(self, outcome: AssignmentOutcome) -> None:
        """Apply a callback's answer and mark it delivered in one commit: owed until then."""
        try:
            with self.store.transaction() as tx:
                outbox.delivered(tx, outcome.reservation_sid)
                self.engine.apply_assignment_outcome(outcome)
        except Exception:
            # An answer that cannot be applied would fail again after a restart: not owed.
            with self.store.transaction() as tx:
                outbox.delivered(tx, outcome.reservation_sid)
            raise
        finally:  # committed (store/behind.py): settle() waits for what the answer causes
            self.store.sync()

    def _detach(self) -> outbox.Outbox | None:
        """Disconnect the threads from the engine; returns the outbox claim to release once
        nothing of this process sends any more."""
        if self.scheduler is not None:
            self.engine.remove_deadline_listener(self.scheduler.wake)
        if self._deliver in self.engine.subscribers:
            self.engine.unsubscribe(self._deliver)
        self.engine.callback_owner = None
        owner, self._outbox = self._outbox, None
        self.dispatcher = None
        self.scheduler = None
        self._started_pid = None
        return owner

    def stop(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (up to timeout), then stop both threads."""
        with contextlib.suppress(StoreError):  # logged; the effects of writes behind
            self.store.sync()  # (store/behind.py) go to the delivery drained below
        with self._start_lock:
            if self._started_pid != os.getpid():
                return
            dispatcher, scheduler = self.dispatcher, self.scheduler
            owner = self._detach()
        if scheduler is not None:
            scheduler.stop(timeout)
        if dispatcher is not None:
            if not dispatcher.drain(timeout):
                logger.warning(
                    "sandbox callbacks still queued after %s s; dropping them (assignment "
                    "callbacks stay owed and the next start sends them)",
                    timeout,
                )
            dispatcher.close(wait=False)
        if owner is not None:
            # Only now: until the drain ends this process may still be sending its rows.
            owner.release()
        atexit.unregister(self.stop)

    @property
    def started(self) -> bool:
        return self._started_pid == os.getpid()

    def close(self) -> None:
        _run_all(self.close_hooks)
        self.stop()
        if self._server_lock is not None:
            self._server_lock.close()
            self._server_lock = None
        self.store.close()
