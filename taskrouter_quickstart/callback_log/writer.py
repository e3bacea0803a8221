"""The part of the callback log that both stores share: record() queues a row and returns, and
one writer thread per process drains the queue into the store, a batch at a time.

A callback never waits on the file or the network: under a burst the writer writes one batch
for many rows, and what it cannot write it reports in the log, not to TaskRouter.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from typing import Protocol

from taskrouter_quickstart.callback_log.rows import DEFAULT_KEEP, Row, make_row

# Rows waiting for the writer: enough for bursts, small enough that a stuck store costs little
# memory (a row holds at most two attribute strings of MAX_ATTRIBUTES_LENGTH).
DEFAULT_QUEUE_SIZE = 1_000
MAX_BATCH = 500
# After a write the writer rests this long before the next, so that under a burst of callbacks
# it writes one batch for many rows instead of one per row; a lone callback is written at once,
# and a reader waiting on flush() (the page) cuts the rest short. A write costs about 40
# system calls whatever its size (the pages another process's writes made stale are read
# again, the WAL frames written), which a 20 ms rest spent every 20 or so callbacks under load.
BATCH_INTERVAL_SECONDS = 0.1
# How long the page waits for this process's queued rows before showing what is stored.
FLUSH_TIMEOUT_SECONDS = 2.0
CLOSE_TIMEOUT_SECONDS = 5.0
# Under overload, one warning a second says how many rows were dropped, not one per row.
DROP_WARNING_INTERVAL_SECONDS = 1.0


class BatchSink(Protocol):
    """Where one writer thread writes: made on that thread, used by it alone."""

    def write(self, batch: list[Row]) -> None:
        """Store the batch, and trim to the newest rows, all or nothing; raise on failure."""

    def discard(self) -> None:
        """After a failed write: drop the connection, so the next batch starts afresh."""

    def close(self) -> None: ...


class ProcessWriter:
    """One process's queue and the thread draining it into the store, a batch per write.

    It belongs to the process that made it (pid): a forked child makes its own, since the
    thread does not survive fork and the rows queued before it are the parent's to write.
    """

    def __init__(
        self,
        make_sink: Callable[[], BatchSink],
        where: str,
        queue_size: int,
        max_batch: int,
        logger: logging.Logger,
    ) -> None:
        self.pid = os.getpid()
        self.make_sink = make_sink
        self.where = where
        self.queue_size = queue_size
        self.max_batch = max_batch
        self.logger = logger
        self.batches = 0
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._written = threading.Condition(self._lock)
        # Wakes the writer from its rest: a flush() waits for rows, or the log is closing.
        self._hurry = threading.Condition(self._lock)
        self._flush_wanted = False
        self._rows: deque[Row] = deque()
        # Rows accepted into the queue, and rows the writer has finished with (written or not).
        self._queued = 0
        self._done = 0
        self.stopping = False
        self._dropped = 0
        self._last_drop_warning = float("-inf")
        self.thread = threading.Thread(
            target=self._run, name=f"callback-log-writer-{self.pid}", daemon=True
        )
        self.thread.start()

    def put(self, row: Row) -> bool:
        with self._lock:
            if self.stopping:
                self._note_drop("the callback log is closed")
                return False
            if len(self._rows) >= self.queue_size:
                self._note_drop(f"its queue holds {self.queue_size} rows the writer has not taken")
                return False
            self._rows.append(row)
            self._queued += 1
            self._work.notify()
        return True

    def _note_drop(self, reason: str) -> None:
        # Called with the lock held; logging here is rare (once a second at most).
        self._dropped += 1
        now = time.monotonic()
        if now - self._last_drop_warning >= DROP_WARNING_INTERVAL_SECONDS:
            self.logger.warning(
                "Dropped %d callback record(s) for %s: %s", self._dropped, self.where, reason
            )
            self._dropped = 0
            self._last_drop_warning = now

    def flush(self, timeout: float) -> bool:
        """Wait until the rows queued before this call are written; False on timeout."""
        with self._lock:
            target = self._queued
            if self._done < target:
                self._flush_wanted = True
                self._hurry.notify()
            return self._written.wait_for(lambda: self._done >= target, timeout)

    def close(self, timeout: float = CLOSE_TIMEOUT_SECONDS) -> None:
        """Write what is queued and stop the thread (in the process that started it only)."""
        if self.pid != os.getpid():
            # A forked child's copy: its thread and queue are the parent's, and its lock may
            # have been held at the fork.
            return
        with self._lock:
            self.stopping = True
            self._work.notify()
            self._hurry.notify()
        if threading.current_thread() is not self.thread:
            self.thread.join(timeout)

    def _run(self) -> None:
        sink = self.make_sink()
        try:
            while True:
                with self._lock:
                    while not self._rows and not self.stopping:
                        self._work.wait()
                    if not self._rows:
                        return
                    batch = [
                        self._rows.popleft() for _ in range(min(len(self._rows), self.max_batch))
                    ]
                    # A flush waits for rows still queued: the next write comes without a rest.
                    self._flush_wanted = self._flush_wanted and bool(self._rows)
                self._write(sink, batch)
                with self._lock:
                    self._done += len(batch)
                    self._written.notify_all()
                    self._hurry.wait_for(
                        lambda: self.stopping or self._flush_wanted, BATCH_INTERVAL_SECONDS
                    )
        finally:
            sink.close()

    def _write(self, sink: BatchSink, batch: list[Row]) -> None:
        try:
            sink.write(batch)
        except Exception as exc:
            # Nobody waits on this thread: say what was lost and start afresh with the next batch
            # (the store may have been replaced, repaired or restarted meanwhile).
            self.logger.warning(
                "Could not record %d callback(s) in %s: %s", len(batch), self.where, exc
            )
            sink.discard()
        else:
            self.batches += 1


class QueuedLog:
    """Bounded, newest-first record of callbacks; record() queues, a writer thread writes.

    A store subclasses it with where (for messages), _make_sink() and the reads.
    """

    where: str

    def __init__(
        self,
        keep: int = DEFAULT_KEEP,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        max_batch: int = MAX_BATCH,
        logger: logging.Logger | None = None,
    ) -> None:
        if keep < 1:
            raise ValueError("keep must be at least 1")
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.keep = keep
        self.queue_size = queue_size
        self.max_batch = max_batch
        self.logger = logger or logging.getLogger("taskrouter_quickstart.callback_log")
        self._writer: ProcessWriter | None = None
        self._finalizer: weakref.finalize | None = None
        self._writer_lock = threading.Lock()
        # The writer lock guards only the swap below; a child gets a fresh one in case another
        # thread held it at the fork.
        reference = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _reset_writer_lock(reference))

    def _make_sink(self) -> BatchSink:
        raise NotImplementedError

    def recent(
        self,
        limit: int = 20,
        *,
        workspace_sid: str | None = None,
        workflow_sid: str | None = None,
    ) -> list[Row]:
        """The newest callbacks first, this process's queued ones included (rows.in_workspace
        with workspace_sid); raises one of callback_log.READ_ERRORS when the store is away."""
        raise NotImplementedError

    def count(self) -> int:
        raise NotImplementedError

    def _current_writer(self, start: bool) -> ProcessWriter | None:
        writer = self._writer
        if writer is not None and writer.pid == os.getpid() and not writer.stopping:
            return writer
        if not start:
            return writer if writer is not None and writer.pid == os.getpid() else None
        with self._writer_lock:
            writer = self._writer
            if writer is None or writer.pid != os.getpid() or writer.stopping:
                writer = ProcessWriter(
                    self._make_sink, self.where, self.queue_size, self.max_batch, self.logger
                )
                self._writer = writer
                # Writes what is queued when the log is dropped or the interpreter exits.
                self._finalizer = weakref.finalize(self, writer.close)
        return writer

    def record(self, fields: Mapping[str, object]) -> bool:
        """Queue one callback for this process's writer; False if it had to be dropped.

        Never touches the store and never blocks: the writer stores it and trims to the
        newest `keep` rows in one write with whatever else is queued.
        """
        writer = self._current_writer(start=True)
        assert writer is not None
        return writer.put(make_row(fields))

    def flush(self, timeout: float = FLUSH_TIMEOUT_SECONDS) -> bool:
        """Wait for this process's writer to finish what was queued before the call."""
        writer = self._current_writer(start=False)
        return writer is None or writer.flush(timeout)

    def _flush_for_reading(self, timeout: float = FLUSH_TIMEOUT_SECONDS) -> None:
        if not self.flush(timeout):
            self.logger.warning(
                "Showing the callback log without this process's newest callbacks: "
                "the writer did not finish within %g s",
                timeout,
            )

    def close(self) -> None:
        """Write what is queued and stop this process's writer (record() starts a new one)."""
        finalizer = self._finalizer
        if finalizer is not None:
            finalizer()

    @property
    def batches(self) -> int:
        """Batches this process's writer has written."""
        writer = self._current_writer(start=False)
        return writer.batches if writer is not None else 0

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call `callback` when another process may have written (a shared store only)."""

    def start_listening(self) -> None:
        """Start this process's change notifications, once (a shared store only)."""

    def _after_fork_in_child(self) -> None:
        self._writer_lock = threading.Lock()


def _reset_writer_lock(reference: weakref.ref[QueuedLog]) -> None:
    log = reference()
    if log is not None:
        log._after_fork_in_child()
