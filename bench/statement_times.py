"""Benchmark 3's statement clock: where the engine's time goes, SQLite's part and the rest.

The engine's run is timed again with every statement its store's connections execute timed
around the call (sqlite3's execute, executemany and a cursor's execute), added up by kind
("UPDATE tasks", "INSERT INTO event_journal", "COMMIT", "SELECT ... FROM reservations"). What
the run took beyond them is the engine's own Python, and its waits for the write lock while
the committer thread commits (that thread's COMMITs are counted). The checkpoint thread's
statements are not: it runs beside the engine, not in its way. Timing adds about a
microsecond per statement, so the timed run is a separate one, never the one whose rate the
report gives.

sqlite3.connect is replaced for the benchmark's child process only (install), since the
store opens its connections itself.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
import time
from collections import defaultdict
from typing import Any

# The checkpoint thread's name (taskrouter_sandbox/store/checkpoints.py).
_BESIDE = "sandbox-checkpoint"


def kind(sql: str) -> str:
    """A statement's kind: its verb and table ("UPDATE tasks", "SELECT ... FROM workers")."""
    words = sql.split()
    if not words:
        return "?"
    verb = words[0].upper()
    if verb == "UPDATE" and len(words) > 1:
        return f"UPDATE {words[1]}"
    if verb in ("INSERT", "DELETE", "REPLACE"):
        into = next((i for i, word in enumerate(words) if word.upper() in ("INTO", "FROM")), None)
        if into is not None and into + 1 < len(words):
            return f"{' '.join(words[: into + 1])} {words[into + 1]}"
    if verb == "SELECT":
        source = next((i for i, word in enumerate(words) if word.upper() == "FROM"), None)
        if source is not None and source + 1 < len(words):
            return f"SELECT ... FROM {words[source + 1]}"
    return verb


class StatementTimes:
    """Seconds spent in statements between start() and stop(), in all and by kind."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.by_kind: defaultdict[str, list[float]] = defaultdict(lambda: [0, 0.0])
        self._on = False

    def start(self) -> None:
        self.seconds = 0.0
        self.by_kind.clear()
        self._on = True

    def stop(self) -> None:
        self._on = False

    def add(self, sql: str, seconds: float, rows: int = 1) -> None:
        if not self._on or threading.current_thread().name == _BESIDE:
            return
        self.seconds += seconds
        entry = self.by_kind[kind(sql)]
        entry[0] += rows
        entry[1] += seconds

    def heaviest(self, count: int = 6) -> list[tuple[str, int, float]]:
        """(kind, statements, seconds) of the kinds that took longest, longest first."""
        ranked = sorted(self.by_kind.items(), key=lambda item: -item[1][1])
        return [(name, int(calls), seconds) for name, (calls, seconds) in ranked[:count]]

    def install(self) -> None:
        """Time every connection opened from now on in this process."""
        clock = self

        def timed(run: Any, sql: str, *args: Any, statements: int = 1) -> sqlite3.Cursor:
            started = time.perf_counter()
            try:
                return run(sql, *args)
            finally:
                clock.add(sql, time.perf_counter() - started, statements)

        class TimedCursor(sqlite3.Cursor):
            def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
                return timed(super().execute, sql, *args)

        class TimedConnection(sqlite3.Connection):
            def cursor(self, factory: Any = TimedCursor) -> sqlite3.Cursor:
                return super().cursor(factory)

            def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
                return timed(super().execute, sql, *args)

            def executemany(self, sql: str, rows: Any) -> sqlite3.Cursor:
                rows = list(rows)
                return timed(super().executemany, sql, rows, statements=len(rows))

        sqlite3.connect = functools.partial(sqlite3.connect, factory=TimedConnection)
