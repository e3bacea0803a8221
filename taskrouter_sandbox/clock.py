"""Time for the sandbox: the system clock, a settable clock for tests, and the date formats.

Dates are stored as sortable ISO 8601 text with microseconds and shown in Twilio's form.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Anything with now() returning an aware UTC datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to, so tests never sleep."""

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime(2024, 1, 1, 9, 0, 0, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now

    def set(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        with self._lock:
            self._now = moment.astimezone(UTC)

    def advance_to(self, moment: datetime) -> datetime:
        """Move forward to moment (never back); the new time."""
        with self._lock:
            self._now = max(self._now, moment.astimezone(UTC))
            return self._now


class ShiftedClock:
    """The wall clock, moved forward on request: time runs on as usual between the jumps, so a
    standalone sandbox keeps real time and a client can still skip a 120 s reservation timeout."""

    def __init__(self) -> None:
        self._offset = timedelta(0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return datetime.now(UTC) + self._offset

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        with self._lock:
            self._offset += timedelta(seconds=seconds)
            return datetime.now(UTC) + self._offset

    def advance_to(self, moment: datetime) -> datetime:
        """Move forward to moment (never back); the new time."""
        with self._lock:
            now = datetime.now(UTC) + self._offset
            if moment > now:
                self._offset += moment - now
            return datetime.now(UTC) + self._offset


def movable(clock: Clock) -> bool:
    """Whether the sandbox can move this clock forward (ManualClock, ShiftedClock)."""
    return callable(getattr(clock, "advance_to", None))


def to_storage(moment: datetime) -> str:
    """Sortable text with microseconds, e.g. 2024-01-01T09:00:00.000000Z."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    # The same text as isoformat(timespec="microseconds") without its offset: every field
    # zero-padded, years before 1000 to four digits (strftime's %Y does not pad), so the text
    # reads back and sorts at any date. %-formatting the fields is about twice as fast as
    # isoformat (which also formats the offset, cut off again), and several times faster than
    # strftime (and than the f-string, with its seven format specs): the engine writes a
    # couple of dozen dates per routed reservation.
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (  # noqa: UP031 (an f-string: slower)
        moment.year,
        moment.month,
        moment.day,
        moment.hour,
        moment.minute,
        moment.second,
        moment.microsecond,
    )


def from_storage(text: str) -> datetime:
    """A stored date back as an aware datetime (fromisoformat: many times faster than strptime,
    and the engine reads several dates for every routed reservation)."""
    return datetime.fromisoformat(text)


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def to_twilio(text: str | None) -> str | None:
    """A stored date in the form the API returns and the twilio library parses."""
    if text is None:
        return None
    return text[:19] + "Z"


def parse_twilio(text: str) -> datetime:
    """An ISO 8601 date as clients send it (2024-01-01T09:00:00Z, offsets, fractions)."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
