"""Running engine operations: one operation is one transaction, effects published after commit.

A write operation's hints are routed (routing.settle) and its events written before the
commit; once the commit has succeeded its effects go to the subscribers (callback delivery)
and its soonest deadline to the deadline listeners (the timer thread).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from taskrouter_sandbox import routing
from taskrouter_sandbox.clock import Clock
from taskrouter_sandbox.domain.values import Effect
from taskrouter_sandbox.state import events
from taskrouter_sandbox.state.operation import Operation
from taskrouter_sandbox.store import Store, StoreBusy, StoreError

logger = logging.getLogger(__name__)

# Journal rows between two moves into `events` (Operations.write): a move's commit writes the
# events table's and its indexes' pages once for all of them.
MOVE_EVERY = 64
# How long a reader of the events waits for the write lock to move the journal first.
MOVE_WAIT_MS = 500


class Operations:
    """Opens operations on a store; keeps who hears of their effects and deadlines."""

    def __init__(self, store: Store, clock: Clock, account_sid: str) -> None:
        self.store = store
        self.clock = clock
        self.account_sid = account_sid
        self.subscribers: list[Callable[[list[Effect]], None]] = []
        self.deadline_listeners: list[Callable[[float], None]] = []
        # Told after every committed write (the event bridge looks for new events then).
        self.commit_listeners: list[Callable[[], None]] = []
        # The outbox owner (state.outbox.Outbox.owner) whose dispatcher sends this process's
        # assignment callbacks; None while no delivery runs here.
        self.callback_owner: str | None = None
        # Where routing runs, once per write operation before its commit (a test seam).
        self.settle: Callable[[Operation], None] = routing.settle
        # Journal rows (one per write operation with events) this process writes between two
        # moves into `events`, and how many it has written since the last.
        self.move_every = MOVE_EVERY
        self._journaled = 0

    @contextmanager
    def write(self) -> Iterator[Operation]:
        """One write operation in its own transaction (or in the caller's open one)."""
        with self.store.transaction() as tx:
            op = Operation(tx, self.clock, self.account_sid, self.callback_owner)
            yield op
            self.settle(op)
            events.flush(op)
            self._journaled += op.journaled
            if self._journaled >= self.move_every:
                # Counted afresh first: a move that fails fails this operation, not every next.
                self._journaled = 0
                # This process's last few operations' events (and any other's) into `events`.
                events.move(tx)
            tx.after_commit(lambda: self._publish(op.effects))
            if self.commit_listeners:
                tx.after_commit(self._committed)
            due_in = op.deadline_in
            if due_in is not None:
                tx.after_commit(lambda: self._wake(due_in))

    @contextmanager
    def read(self) -> Iterator[Operation]:
        """A consistent snapshot to read from."""
        with self.store.read() as tx:
            yield Operation(tx, self.clock, self.account_sid)

    def read_events(self) -> AbstractContextManager[Operation]:
        """read() for a reader of `events`: the journal moved into it first, so that the
        snapshot holds every event of every operation committed before the call."""
        self.catch_up_events()
        return self.read()

    def catch_up_events(self) -> int:
        """Move the journal into `events` (see state.events.move) if it holds anything; one
        probe of it when it is empty. Returns how many events moved. Called inside an open
        write transaction, it moves in it; inside a read, whose snapshot is taken, it cannot
        (StoreError, rather than a read missing events).

        Reads never waited for writers before the journal: when another process holds the
        write lock longer than MOVE_WAIT_MS (a reset, an upgrade rebuilding a big file's
        indexes), the read goes on without the events committed since the last move."""
        current = self.store.current_transaction()
        if current is not None:
            if not events.pending(current):
                return 0
            if not current.write:
                raise StoreError("the events are read inside a read transaction")
            return events.move(current)
        with self.store.read() as tx:
            if not events.pending(tx):
                return 0
        try:
            with self.store.transaction(wait_ms=MOVE_WAIT_MS) as tx:
                return events.move(tx)
        except StoreBusy:
            logger.info("the event journal was not moved: the database stayed locked")
            return 0

    def _publish(self, effects: list[Effect]) -> None:
        if not effects:
            return
        for callback in list(self.subscribers):
            try:
                callback(list(effects))
            except Exception:
                logger.exception("an effects subscriber failed")

    def _committed(self) -> None:
        for callback in list(self.commit_listeners):
            try:
                callback()
            except Exception:
                logger.exception("a commit listener failed")

    def _wake(self, due_in: float) -> None:
        for callback in list(self.deadline_listeners):
            try:
                callback(due_in)
            except Exception:
                logger.exception("a deadline listener failed")
