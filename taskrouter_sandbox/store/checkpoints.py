"""WAL checkpoints in a thread of the store's own, while the writes go on.

A commit that takes the WAL past `wal_autocheckpoint` pages checkpoints it there and then,
holding the write lock: the writer copies every page of the WAL back into the database file
before the next operation can start. At 10,000 tasks those commits took 20 ms and more, 0.73 s
of a 15 s engine run. Here a thread of the store's own runs a PASSIVE checkpoint after
commits, at most every CHECKPOINT_SECONDS, on its own connection: it takes no write lock, so
the writer goes on appending while the pages are copied, and once the WAL is copied whole the
next commit starts it again from its beginning, so the WAL stays small. The writer's own
automatic checkpoint stays as it was, for when this thread cannot keep up (a long read holding
an old snapshot).

No checkpoint runs across a fork (`pause`): the child would inherit a connection in the
middle of one.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import sqlite3

logger = logging.getLogger(__name__)

# The least time between two checkpoints while commits go on.
CHECKPOINT_SECONDS = 0.25
# How often an idle thread (this one, the committer) looks whether its store is still there.
IDLE_CHECK_SECONDS = 1.0


class _Checkpointed(Protocol):
    closed: bool

    def checkpoint_connection(self) -> sqlite3.Connection: ...


class Checkpointer:
    """One store's checkpoint thread. `committed()` after each commit; `stop()` with the store.
    `running` is held during a checkpoint, and by `pause()` until `resume()`."""

    def __init__(self, store: _Checkpointed) -> None:
        self._store = weakref.ref(store)
        self._condition = threading.Condition()
        self._wanted = False
        self._stopped = False
        self._last = 0.0
        self.running = threading.Lock()
        # Checkpoints run (the tests read it).
        self.runs = 0
        self._thread = threading.Thread(target=self._run, name="sandbox-checkpoint", daemon=True)
        self._thread.start()

    def committed(self) -> None:
        """A commit has written to the WAL: checkpoint it soon."""
        with self._condition:
            self._wanted = True
            self._condition.notify()

    def pause(self) -> None:
        """Until resume(): waits for a checkpoint under way, starts none."""
        self.running.acquire()

    def resume(self) -> None:
        self.running.release()

    def stop(self) -> None:
        """End the thread, and wait until it has ended: its connection may then be closed."""
        with self._condition:
            self._stopped = True
            self._condition.notify()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        while self._next():
            with self.running:
                store = self._store()
                if store is None or store.closed or self._stopped:
                    return
                try:
                    if connection is None:
                        connection = store.checkpoint_connection()
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.runs += 1
                except Exception:  # the writer's automatic checkpoint still runs
                    logger.debug("a checkpoint failed", exc_info=True)
                del store
            self._last = time.monotonic()

    def _next(self) -> bool:
        """Wait until a checkpoint is due; False once stopped or the store is gone."""
        with self._condition:
            while not self._wanted and not self._stopped:
                self._condition.wait(IDLE_CHECK_SECONDS)
                if self._store() is None:
                    return False
            rest = self._last + CHECKPOINT_SECONDS - time.monotonic()
            if rest > 0:
                self._condition.wait_for(lambda: self._stopped, rest)
            self._wanted = False
            return not self._stopped
