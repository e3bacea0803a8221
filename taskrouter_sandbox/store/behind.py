"""Committing behind: a file store's write transactions share one SQLite transaction, committed
within a bound of time or operations, or at once when someone must rely on it.

A commit writes every page its transaction changed to the WAL, two system calls a page; a
reservation's three engine calls changed about 35 pages each, most of them the same hot index
leaves, so committing them one by one wrote about 100 pages per reservation. A batch writes
each hot page once.

Each write transaction (each engine operation) of a batch after its first runs inside a
SAVEPOINT, so a failing one rolls back alone. The batch holds SQLite's write lock until it
commits: no other process can write in between, so the rows the store keeps (RowCache) stay
current, and another process's writer waits for the commit as it waits for any transaction.

Who relies on a write commits it (Store.sync): the REST API before it answers, so that a
client answered 201 finds its task after a kill -9 of the server; a read in this process
before its snapshot, so that it sees this process's writes; Store.close, and the process's
exit. Otherwise the committer thread here commits a batch at most COMMIT_BEHIND_MS after its
first operation, and the operation that makes it COMMIT_BEHIND_OPS long commits it. Effects
(callbacks, event bridge wake-ups) are published after the commit, so none announces a write
that could still be lost.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import sqlite3

logger = logging.getLogger(__name__)

# The longest a write waits for its commit when no one asks for it sooner: what a reader in
# another process (the other gunicorn worker, the event bridge's poll) can lag behind.
COMMIT_BEHIND_MS = 20.0
# A batch's operations at most, so that one commit's pages stay a bounded write.
COMMIT_BEHIND_OPS = 256
# How often an idle committer looks whether its store is still there.
_IDLE_CHECK_SECONDS = 1.0


class _Syncable(Protocol):
    closed: bool

    def sync(self) -> None: ...


@dataclass
class Batch:
    """The operations committed together: their connection, count, start and hooks."""

    connection: sqlite3.Connection
    started: float = field(default_factory=time.monotonic)
    operations: int = 0
    after_commit: list[Callable[[], None]] = field(default_factory=list)

    def due(self, limit_ms: float) -> bool:
        return (
            self.operations >= COMMIT_BEHIND_OPS
            or (time.monotonic() - self.started) * 1000 >= limit_ms
        )


class Committer:
    """One store's thread that commits a batch nobody committed within the time bound."""

    def __init__(self, store: _Syncable, delay_ms: float) -> None:
        self._store = weakref.ref(store)
        self._delay = delay_ms / 1000
        self._armed = False
        self._stopped = False
        self._condition = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="sandbox-commit", daemon=True)
        self._thread.start()

    def arm(self) -> None:
        """A batch has started: commit it within the delay unless someone does first."""
        with self._condition:
            self._armed = True
            self._condition.notify()

    def stop(self) -> None:
        with self._condition:
            self._stopped = True
            self._condition.notify()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._armed and not self._stopped:
                    self._condition.wait(_IDLE_CHECK_SECONDS)
                    if self._store() is None:
                        return
                if self._stopped:
                    return
                self._armed = False
            time.sleep(self._delay)
            store = self._store()
            if store is None or store.closed:
                return
            try:
                store.sync()
            except Exception:  # logged by sync; the next batch starts afresh
                logger.debug("a commit behind failed", exc_info=True)
            del store


# Stores with a batch open, committed when the interpreter exits normally (a script that
# used the engine and never closed its store loses nothing).
_open_batches: weakref.WeakSet[_Syncable] = weakref.WeakSet()


def remember(store: _Syncable) -> None:
    _open_batches.add(store)


def forget(store: _Syncable) -> None:
    _open_batches.discard(store)


@atexit.register
def _commit_at_exit() -> None:
    for store in list(_open_batches):
        try:
            if not store.closed:
                store.sync()
        except Exception:
            logger.exception("committing the sandbox's last writes at exit failed")
