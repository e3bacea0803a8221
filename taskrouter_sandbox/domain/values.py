"""Values passed between the sandbox's layers, each defined once.

Effects are what a committed operation hands to callback delivery; alerts and assignment
outcomes are what delivery hands back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

# Twilio's debugger codes for what can go wrong with a callback and its answer.
ALERT_HTTP_RETRIEVAL_FAILURE = 11200
ALERT_CONTENT_TYPE_NOT_JSON = 40000
ALERT_INVALID_JSON = 40001
ALERT_NO_INSTRUCTION = 40005
ALERT_INVALID_INSTRUCTION = 55555
# ... and for a known-agent target whose worker routing cannot reach (known-agent-routing).
ALERT_KNOWN_WORKER_NOT_IN_QUEUE = 40152
ALERT_KNOWN_WORKER_NOT_IN_WORKSPACE = 40155

# What a CallbackDelivery keeps of an answer's text: enough for any instruction document.
CALLBACK_ANSWER_TEXT_LIMIT = 65536

AlertLevel = Literal["error", "warning"]
ALERT_LEVELS: tuple[AlertLevel, ...] = ("error", "warning")


@dataclass(frozen=True)
class Paging:
    page_size: int = 50
    page_number: int = 0
    page_token: str | None = None


@dataclass(frozen=True)
class Actor:
    """Who caused an event: the account over REST, or the workspace itself (timers, routing)."""

    type: str
    sid: str

    @classmethod
    def workspace(cls, workspace_sid: str) -> Actor:
        return cls("workspace", workspace_sid)


@dataclass(frozen=True)
class EventCallback:
    """A workspace event to POST to its event_callback_url once the change is committed."""

    url: str
    params: dict[str, str]


@dataclass(frozen=True)
class AssignmentCallback:
    """A new reservation to POST to the workflow's assignment_callback_url after commit."""

    reservation_sid: str
    url: str
    fallback_url: str | None
    params: dict[str, str]


Effect = EventCallback | AssignmentCallback


@dataclass(frozen=True)
class Alert:
    """A debugger alert in Twilio's codes (11200, 40000, 40001, ...): about a callback (url
    is the one called) or about routing (no url)."""

    code: int
    level: AlertLevel
    message: str
    url: str | None


@dataclass(frozen=True)
class AssignmentOutcome:
    """The result of delivering one assignment callback, fallback included.

    `instruction` is the recognised instruction (also for call/redirect that did not accept);
    `accept`/`reject` say what to do with the reservation; neither means it stays pending.
    `alerts` holds every alert of every attempt; `url_used` and `status_code` describe the
    last attempt (status None when no HTTP answer came); `elapsed_ms` covers all attempts.
    """

    reservation_sid: str
    instruction: str | None
    accept: bool
    reject: bool
    activity_sid: str | None
    params: dict[str, Any]
    alerts: tuple[Alert, ...]
    url_used: str
    status_code: int | None
    elapsed_ms: float


@dataclass(frozen=True)
class CallbackDelivery:
    """One POST the sandbox made to a callback URL and what came back, as a test reads it.

    kind is "assignment" or "event"; url the one called (credentials in it hidden); params
    the form sent; status_code None when no HTTP answer came (error says why); answer the
    body's text, cut at CALLBACK_ANSWER_TEXT_LIMIT characters. For an assignment callback,
    reservation_sid and instruction (the one the sandbox read from the answer, None for none)
    say what TaskRouter made of it; fallback marks the POST to the fallback URL.
    """

    kind: Literal["assignment", "event"]
    url: str
    params: dict[str, str]
    status_code: int | None
    content_type: str | None
    answer: str | None
    error: str | None
    elapsed_ms: float
    reservation_sid: str | None = None
    event_type: str | None = None
    instruction: str | None = None
    fallback: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "url": self.url,
            "params": dict(self.params),
            "status_code": self.status_code,
            "content_type": self.content_type,
            "answer": self.answer,
            "error": self.error,
            "elapsed_ms": round(self.elapsed_ms, 3),
            "reservation_sid": self.reservation_sid,
            "event_type": self.event_type,
            "instruction": self.instruction,
            "fallback": self.fallback,
        }
