"""Committing behind: a file store's write transactions share one SQLite transaction, committed
within a bound of time or operations, or at once when someone relies on it or waits for it.

A commit writes every page its transaction changed to the WAL, two system calls a page; a
reservation's three engine calls changed about 35 pages each, most of them the same hot index
leaves, so committing them one by one wrote about 100 pages per reservation. A batch writes
each hot page once.

Each write transaction (each engine operation) of a batch after its first runs inside a
SAVEPOINT, so a failing one rolls back alone. The batch holds SQLite's write lock until it
commits: nothing else can write in between, so the rows the store keeps (RowCache) stay
current.

Who relies on a write commits it (Store.sync): the REST API before it answers, so that a
client answered 201 finds its task after a kill -9 of the server; a read in this process
before its snapshot, so that it sees this process's writes; the sandbox before it settles,
resets or stops; Store.close, a fork, the process's exit. Otherwise the committer thread here
commits a batch at most COMMIT_BEHIND_MS after its first operation, and the operation that
makes it COMMIT_BEHIND_OPS long commits it. Effects (callbacks, event bridge wake-ups) are
published after the commit, so none announces a write that could still be lost.

Another process that waits for the write lock (the other gunicorn worker) says so on the
writers file beside the database (WaitingWriters): the batch then commits at the end of its
current operation, and this process commits each operation as it ends for a while, as it did
before batches, so that SQLite's lock passes between the processes as it always did.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import logging
import os
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from taskrouter_sandbox.store.checkpoints import IDLE_CHECK_SECONDS, Checkpointer
from taskrouter_sandbox.store.files import private_opener
from taskrouter_sandbox.store.transaction import StoreError

if TYPE_CHECKING:
    import sqlite3

logger = logging.getLogger(__name__)

# The longest a write waits for its commit when no one asks for it sooner: what a reader in
# another process (the other gunicorn worker, the event bridge's poll) can lag behind.
COMMIT_BEHIND_MS = 20.0
# A batch's operations at most, so that one commit's pages stay a bounded write.
COMMIT_BEHIND_OPS = 256
# After another process was seen waiting for the write lock: how long each operation commits
# as it ends, leaving the lock free between two of them.
SHARE_SECONDS = 0.1
# How long sync() waits for the after-commit hooks another thread is running.
HOOKS_WAIT_SECONDS = 10.0


class _Syncable(Protocol):
    closed: bool
    statements: int

    def sync(self) -> None: ...

    def commit_now(self) -> None: ...

    def forget_rows(self) -> None: ...

    def checkpoint_connection(self) -> sqlite3.Connection: ...


@dataclass
class Batch:
    """The operations committed together: their connection, count, start and hooks."""

    connection: sqlite3.Connection
    number: int
    started: float = field(default_factory=time.monotonic)
    operations: int = 0
    after_commit: list[Callable[[], None]] = field(default_factory=list)

    def due(self, limit_ms: float) -> bool:
        return (
            self.operations >= COMMIT_BEHIND_OPS
            or (time.monotonic() - self.started) * 1000 >= limit_ms
        )


class Batches:
    """A file store's batch behind, its committer thread, the writers file and whether other
    processes are waiting; used by Store holding its write lock."""

    def __init__(self, store: _Syncable, database: str, delay_ms: float) -> None:
        self._store = weakref.ref(store)
        self.database = database
        self.delay_ms = delay_ms
        self.open: Batch | None = None
        self._committer: Committer | None = None
        # The WAL's checkpoints (store/checkpoints.py): the thread starts at the first commit
        # once the store has set checkpoints on (after its schema), and is paused across a
        # fork.
        self.checkpoints = False
        self._checkpointer: Checkpointer | None = None
        self._paused = False
        self._waiting: WaitingWriters | None = None
        # Until when each operation commits as it ends (another process was waiting).
        self._share_until = 0.0
        # The numbers of the last batches lost (their COMMIT failed, or SQLite rolled them
        # back): a thread whose write was in one learns it at its sync().
        self._numbered = 0
        self.lost: deque[int] = deque(maxlen=64)

    @contextlib.contextmanager
    def beginning(self) -> Iterator[None]:
        """Around a BEGIN IMMEDIATE that may wait: marked on the writers file meanwhile."""
        if self._waiting is None:
            self._waiting = WaitingWriters(self.database)
        with self._waiting.waiting():
            yield

    def ended(
        self, connection: sqlite3.Connection, hooks: list[Callable[[], None]]
    ) -> tuple[int, list[Callable[[], None]]]:
        """A write transaction has ended in the open batch (a new one if none is): commit it
        now if it is due or another process waits. The batch's number, and the hooks to run
        if it committed."""
        batch = self.open
        if batch is None:
            self._numbered += 1
            batch = self.open = Batch(connection, self._numbered)
            store = self._store()
            if store is not None:
                remember(store)
                if self._committer is None:
                    self._committer = Committer(store, self.delay_ms)
                self._committer.arm()
        batch.operations += 1
        batch.after_commit.extend(hooks)
        now = time.monotonic()
        if now < self._share_until:
            return batch.number, self.commit()
        if self._waiting is not None and self._waiting.others_waiting():
            self._share_until = now + SHARE_SECONDS
            return batch.number, self.commit()
        if batch.due(self.delay_ms):
            return batch.number, self.commit()
        return batch.number, []

    def commit(self) -> list[Callable[[], None]]:
        """COMMIT the open batch; its hooks, to run once the write lock is released. The batch
        stays open until the COMMIT has returned, so that a sync() meanwhile waits for it
        rather than finding nothing to do. StoreError if it fails: the batch is lost."""
        batch = self.open
        if batch is None:
            return []
        try:
            batch.connection.execute("COMMIT")
        except BaseException as error:
            with contextlib.suppress(Exception):
                if batch.connection.in_transaction:
                    batch.connection.execute("ROLLBACK")
            raise self.lose(error) from error
        finally:
            self.drop()
        store = self._store()
        if store is not None:
            store.statements += 1
        self.committed()
        return batch.after_commit

    def committed(self) -> None:
        """A write transaction has committed (a batch, or an operation of a store that commits
        each as it ends): its WAL pages are for the checkpoint thread. Never raises: the
        write is committed whatever happens here, and a checkpoint missed is only later."""
        store = self._store()
        if not self.checkpoints or store is None or store.closed:
            return
        try:
            if self._checkpointer is None:
                self._checkpointer = Checkpointer(store)
            self._checkpointer.committed()
        except Exception:  # such as no thread to be had: the writer checkpoints by itself
            logger.warning("the checkpoint thread could not start", exc_info=True)

    def pause_checkpoints(self) -> None:
        """Before a fork: no checkpoint under way or started until resume_checkpoints()."""
        if self._checkpointer is not None and not self._paused:
            self._checkpointer.pause()
            self._paused = True

    def resume_checkpoints(self) -> None:
        if self._checkpointer is not None and self._paused:
            self._paused = False
            self._checkpointer.resume()

    def undo(self, connection: sqlite3.Connection) -> None:
        """Roll back a failed operation of the open batch alone (the earlier ones stay, to be
        committed). When SQLite has already rolled the whole transaction back itself (a full
        disk, an I/O error), the batch is lost: raised as StoreError from the error at hand
        (the caller's except clause), after the rollback."""
        try:
            if connection.in_transaction:
                connection.execute("ROLLBACK TO operation")
                connection.execute("RELEASE operation")
                return
        except Exception:
            with contextlib.suppress(Exception):
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
        error = sys.exc_info()[1] or StoreError("the transaction was rolled back")
        raise self.lose(error) from error

    def drop(self) -> None:
        if self.open is not None:
            self.open = None
            store = self._store()
            if store is not None:
                forget(store)

    def lose(self, error: BaseException) -> StoreError:
        """The open batch is gone with its writes (SQLite rolled it back, or its COMMIT
        failed): logged, dropped, and the error for the caller."""
        operations = 0
        if self.open is not None:
            operations = self.open.operations
            self.lost.append(self.open.number)
        self.drop()
        store = self._store()
        if store is not None:
            store.forget_rows()  # they hold the lost writes; data_version does not move
        logger.error("the last %d write operations were lost: %s", operations, error)
        return StoreError(f"the database failed ({error}): the last writes were lost")

    def forked(self) -> None:
        """In a forked child: the parent's batch and thread are the parent's; the writers file
        is opened again, since a flock belongs to the open file both processes now share."""
        self.open = None
        self._committer = None
        # Its thread is the parent's; the child starts its own at its first commit.
        self._checkpointer = None
        self._paused = False
        if self._waiting is not None:
            self._waiting.close()
            self._waiting = None

    def close(self) -> None:
        if self._committer is not None:
            self._committer.stop()
            self._committer = None
        if self._checkpointer is not None:
            self._checkpointer.stop()  # waits: the store closes its connection next
            self._checkpointer = None
        if self._waiting is not None:
            self._waiting.close()
            self._waiting = None


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
                    self._condition.wait(IDLE_CHECK_SECONDS)
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
                store.commit_now()
            except Exception:  # logged; the next batch starts afresh
                logger.debug("a commit behind failed", exc_info=True)
            del store


class HookRuns:
    """After-commit hooks handed from the committing thread to its own run of them, so that a
    sync() in another thread can wait until the effects of what it committed are published
    (a settle() waits for callbacks those effects start)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self.in_flight = 0
        self._local = threading.local()

    def hand_over(self) -> None:
        """Called holding the write lock, before releasing it: a run is about to start."""
        with self._condition:
            self.in_flight += 1

    def run(self, hooks: list[Callable[[], None]], *, counted: bool = True) -> None:
        """Run them; counted: handed over first (hand_over), to be waited for."""
        self._local.depth = getattr(self._local, "depth", 0) + 1
        try:
            for hook in hooks:
                try:
                    hook()
                except Exception:
                    logger.exception("after-commit hook failed")
        finally:
            self._local.depth -= 1
            if counted:
                with self._condition:
                    self.in_flight -= 1
                    self._condition.notify_all()

    def wait(self) -> None:
        """Until no other thread runs hooks; at once inside a hook (it would wait for itself)."""
        if getattr(self._local, "depth", 0) or not self.in_flight:
            return
        with self._condition:
            if not self._condition.wait_for(lambda: not self.in_flight, HOOKS_WAIT_SECONDS):
                logger.warning("after-commit hooks still running after %s s", HOOKS_WAIT_SECONDS)


class WaitingWriters:
    """The writers file beside a database: a process waiting in BEGIN IMMEDIATE holds a shared
    flock on it, and the process holding a batch tests for one with a non-blocking exclusive
    flock. flock rather than fcntl, whose locks belong to the process: two stores of one
    process over one file (as tests open them) each see the other as another process would."""

    def __init__(self, database: str) -> None:
        self._fd = private_opener(database + "-writers", os.O_RDWR | os.O_CREAT)
        # Closed with its store, or when a store never closed is collected.
        self._closer = weakref.finalize(self, os.close, self._fd)

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        fcntl.flock(self._fd, fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def others_waiting(self) -> bool:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        return False

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._closer()


# Stores with a batch open, held until it commits (a store dropped without close() still
# commits within the bound), and committed when the interpreter exits normally.
_open_batches: set[_Syncable] = set()
_open_batches_lock = threading.Lock()


def remember(store: _Syncable) -> None:
    with _open_batches_lock:
        _open_batches.add(store)


def forget(store: _Syncable) -> None:
    with _open_batches_lock:
        _open_batches.discard(store)


@atexit.register
def _commit_at_exit() -> None:
    with _open_batches_lock:
        stores = list(_open_batches)
    for store in stores:
        try:
            if not store.closed:
                store.sync()
        except Exception:
            logger.exception("committing the sandbox's last writes at exit failed")
