"""Parameter checks, each refusal an EngineError naming the parameter; SIDs; Twilio's limits.

Limits and defaults are those of Twilio's TaskRouter v1 description and limits page.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from typing import Any
from urllib.parse import urlsplit

from taskrouter_sandbox import expressions, jsonlimits
from taskrouter_sandbox.domain.errors import EngineError

MAX_FRIENDLY_NAME = 64
MAX_ATTRIBUTES = 16384
MAX_CONFIGURATION = 65536
MAX_PRIORITY = 2**31 - 1
DEFAULT_TASK_TIMEOUT = 86400
MAX_TASK_TIMEOUT = 1_209_600
DEFAULT_RESERVATION_TIMEOUT = 120
MAX_RESERVATION_TIMEOUT = 86400
MAX_RESERVED_WORKERS = 50
MAX_EVENT_MINUTES = 43200
DEFAULT_EVENT_MINUTES = 15
MAX_REASON = 1024

QUEUE_ORDERS = ("FIFO", "LIFO")
TEMPLATES = ("NONE", "FIFO")

DEFAULT_ACTIVITIES = (("Offline", False), ("Available", True), ("Unavailable", False))
DEFAULT_TASK_CHANNELS = (
    ("Default", "default"),
    ("Voice", "voice"),
    ("SMS", "sms"),
    ("Chat", "chat"),
    ("Video", "video"),
    ("Email", "email"),
)

SID_PATTERN = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$")
_TRUE_WORDS = frozenset({"true", "1", "yes"})


def new_sid(prefix: str) -> str:
    """The prefix and 32 hex digits: the millisecond the sid was made (12 digits), then 80
    random bits. Made in time order, a table's index of its sids grows at its end, where
    random digits sent each new row's entry to a random leaf, a page of its own to write at
    every commit: at 10,000 tasks, the events' sids alone wrote about 7 of a reservation's 34
    WAL pages, measured by mapping the WAL's frames to their indexes."""
    return f"{prefix}{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


def is_sid(value: object, prefix: str) -> bool:
    return isinstance(value, str) and bool(SID_PATTERN.match(value)) and value[:2] == prefix


def truthy(value: str) -> bool:
    """Twilio's reading of Available-style flags: true, 1 or yes; anything else is false."""
    return value.strip().lower() in _TRUE_WORDS


def text(value: object, parameter: str, *, limit: int = MAX_FRIENDLY_NAME) -> str:
    if not isinstance(value, str) or not value.strip():
        raise EngineError(f"{parameter} must be a non-empty string")
    if len(value) > limit:
        raise EngineError(f"{parameter} must be at most {limit} characters long")
    return value


def sid(value: object, prefix: str, parameter: str) -> str:
    if not is_sid(value, prefix):
        raise EngineError(f"{parameter} {value!r} is not a valid SID (expected {prefix} + 32 hex)")
    return value  # type: ignore[return-value]


def integer(value: object, parameter: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise EngineError(f"{parameter} must be an integer")
    if not low <= value <= high:
        raise EngineError(f"{parameter} must be between {low} and {high}, got {value}")
    return value


def url(value: object, parameter: str) -> str | None:
    """An absolute http(s) URL, or None for an empty string (which clears the setting)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 2048:
        raise EngineError(f"{parameter} must be an absolute http or https URL")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EngineError(f"{parameter} must be an absolute http or https URL, got {value!r}")
    return value


def json_object(value: object, parameter: str, *, limit: int = MAX_ATTRIBUTES) -> str:
    if not isinstance(value, str):
        raise EngineError(f"{parameter} must be a JSON object")
    if len(value) > limit:
        raise EngineError(f"{parameter} must be at most {limit} characters long")
    try:
        document = jsonlimits.loads(value)
    except jsonlimits.TooDeep as error:
        raise EngineError(f"{parameter} {error}") from None
    except ValueError as error:
        raise EngineError(f"{parameter} is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise EngineError(f"{parameter} must be a JSON object, not {type(document).__name__}")
    return value


def expression(source: object, parameter: str) -> expressions.Expression:
    if not isinstance(source, str) or not source.strip():
        raise EngineError(f"{parameter} must be a non-empty expression")
    try:
        return expressions.parse(source)
    except expressions.ExpressionError as error:
        raise EngineError(f"{parameter} is not a valid expression: {error}") from None


def attributes(stored: str | None) -> dict[str, Any]:
    """Stored attributes as a dict; anything unreadable reads as no attributes."""
    try:
        document = json.loads(stored or "{}")
    # Validated on the way in; RecursionError only for a row stored before depth was limited.
    except (ValueError, RecursionError):  # pragma: no cover
        return {}
    return document if isinstance(document, dict) else {}
