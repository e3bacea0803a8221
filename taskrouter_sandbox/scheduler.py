"""The sandbox's single timer thread: reservation timeouts, target timeouts and task TTLs.

Owns when the engine's tick runs and, across server processes sharing one database, which
one process runs it (an exclusive flock on a lock file next to the database).
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
import threading
import time
from collections.abc import Callable

from taskrouter_sandbox.store.files import private_opener

logger = logging.getLogger(__name__)


class Scheduler:
    """Calls tick() on a daemon thread whenever it is due.

    tick() does the due work and returns the seconds until the next deadline it knows of
    (None: nothing scheduled). The thread waits min(that, poll_interval), or less when
    wake() asks for a sooner tick. With lock_path set, only the process holding an exclusive
    flock on that file ticks; the others retry every poll_interval and take over when it
    goes away.
    """

    def __init__(
        self,
        tick: Callable[[], float | None],
        *,
        lock_path: str | os.PathLike[str] | None,
        poll_interval: float = 0.25,
        name: str = "sandbox-scheduler",
        gone: Callable[[], bool] | None = None,
    ) -> None:
        if not callable(tick):
            raise TypeError("tick must be callable")
        if not poll_interval > 0:
            raise ValueError("poll_interval must be positive")
        self._tick = tick
        # True once what tick() works on is gone (a store closed without stop()): the thread
        # then ends quietly instead of logging a failed tick every poll.
        self._gone = gone
        self._lock_path = os.fspath(lock_path) if lock_path is not None else None
        self._poll_interval = poll_interval
        self._name = name
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock_fd: int | None = None
        self._leader = False
        # The monotonic time of the next tick already planned; infinity while ticking.
        self._next_tick = math.inf

    @property
    def is_leader(self) -> bool:
        """Whether this scheduler fires timers: always without a lock file, else while locked."""
        return self._lock_path is None or self._leader

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the thread; the lock file is opened here so a bad path fails at once."""
        if self._thread is not None:
            raise RuntimeError("the scheduler was already started")
        if self._lock_path is not None:
            # Opened once and kept: flock belongs to this open file description, so the
            # kernel releases it only when this process closes it or dies. Private (0600), as
            # the database beside it is.
            self._lock_fd = private_opener(self._lock_path, os.O_RDWR | os.O_CREAT)
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def wake(self, due_in: float | None = None) -> None:
        """Tick now. The engine calls this after committing a change that set a deadline,
        due_in seconds away (by the engine's clock, compared here with the monotonic one): a
        deadline no sooner than the tick already planned needs no extra tick (each costs a
        few queries, and most changes set a deadline)."""
        if due_in is not None and time.monotonic() + due_in >= self._next_tick:
            return
        self._wake.set()

    def stop(self, timeout: float | None = 5.0) -> bool:
        """Stop the thread and give up leadership; False if the thread did not end in time."""
        self._stopping.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                logger.warning("scheduler thread did not stop within %s s", timeout)
                return False
        self._release()
        return True

    def _run(self) -> None:
        while not self._stopping.is_set():
            if self._gone is not None and self._gone():
                self._stopping.set()
                self._release()
                return
            if not self._try_lead():
                self._wait(self._poll_interval)
                continue
            try:
                delay = self._tick()
            except Exception:
                logger.exception("scheduler tick failed; carrying on")
                delay = None
            # Polling even when the next known deadline is far away, because another
            # process may have committed an earlier one and its wake() cannot reach us.
            if delay is None or delay != delay:  # nothing scheduled, or a NaN from a bug
                self._wait(self._poll_interval)
            elif delay > 0:
                self._wait(min(delay, self._poll_interval))
            else:
                self._wake.clear()

    def _wait(self, seconds: float) -> None:
        self._next_tick = time.monotonic() + seconds
        self._wake.wait(seconds)
        self._wake.clear()
        self._next_tick = math.inf

    def _try_lead(self) -> bool:
        if self._lock_path is None:
            return True
        if self._leader:
            return True
        fd = self._lock_fd
        if fd is None:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        except OSError:
            logger.exception("could not lock %s", self._lock_path)
            return False
        self._leader = True
        logger.info("scheduler %s (pid %d) now fires the timers", self._name, os.getpid())
        return True

    def _release(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        was_leader, self._leader = self._leader, False
        if fd is None:
            return
        # Closing the descriptor drops the flock, letting another process take over.
        os.close(fd)
        if was_leader:
            logger.info("scheduler %s (pid %d) gave up the timers", self._name, os.getpid())
