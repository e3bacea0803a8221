"""What an assignment callback's answer means, and the form a callback is sent as: pure.

interpret_assignment_answer reads an answer the way TaskRouter does, with every alert Twilio
documents (11200, 40000, 40001, 40005, 55555); the instructions and what each does come from
the domain's table (taskrouter_sandbox/domain/lifecycle.py).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from taskrouter_sandbox.domain.lifecycle import INSTRUCTIONS
from taskrouter_sandbox.domain.values import (
    ALERT_CONTENT_TYPE_NOT_JSON,
    ALERT_HTTP_RETRIEVAL_FAILURE,
    ALERT_INVALID_INSTRUCTION,
    ALERT_INVALID_JSON,
    ALERT_NO_INSTRUCTION,
    Alert,
)

_ACTIVITY_SID = re.compile(r"^WA[0-9a-fA-F]{32}$")


@dataclass(frozen=True)
class AssignmentAnswer:
    """What one assignment callback answer means, before any fallback is considered.

    `failed` marks an answer TaskRouter does not accept at all (non-200, non-JSON content
    type): the caller then tries the fallback URL.
    """

    failed: bool
    instruction: str | None = None
    accept: bool = False
    reject: bool = False
    activity_sid: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    alerts: tuple[Alert, ...] = ()


# Names the assignment callback tokens: uuid5 of the reservation SID in this namespace.
_TOKEN_NAMESPACE = uuid.UUID("5b0f6c58-3f0e-4c55-9a57-7a1d2f1f4e21")


def assignment_idempotency_token(reservation_sid: str) -> str:
    """The I-Twilio-Idempotency-Token of a reservation's assignment callback: the same every
    time that callback is sent, 32 hex digits."""
    return uuid.uuid5(_TOKEN_NAMESPACE, reservation_sid).hex


def redact_url(url: str) -> str:
    """The URL without credentials, query or fragment: safe for logs and alert lists."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def interpret_assignment_answer(
    status_code: int, content_type: str | None, body: bytes, *, url: str = ""
) -> AssignmentAnswer:
    """Read an assignment callback's HTTP answer the way TaskRouter does.

    Only a 200 counts; an empty body (any content type) or `{}` means "no instruction, leave
    the reservation pending" with no alert. `url` only labels the alerts.
    """
    label = redact_url(url)
    if status_code != 200:
        return AssignmentAnswer(
            failed=True,
            alerts=(
                Alert(
                    ALERT_HTTP_RETRIEVAL_FAILURE,
                    "error",
                    f"HTTP retrieval failure: the assignment callback answered {status_code}, "
                    "expected 200",
                    label,
                ),
            ),
        )
    if not body.strip():
        return AssignmentAnswer(failed=False)
    media_type = _media_type(content_type)
    if media_type != "application/json":
        shown = media_type or "none"
        return AssignmentAnswer(
            failed=True,
            alerts=(
                Alert(
                    ALERT_CONTENT_TYPE_NOT_JSON,
                    "error",
                    f"Content-Type of 'application/json' not set (got {shown})",
                    label,
                ),
            ),
        )
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        # ValueError covers both JSONDecodeError and a body that is not valid UTF-8.
        return AssignmentAnswer(
            failed=False,
            alerts=(
                Alert(
                    ALERT_INVALID_JSON,
                    "warning",
                    f"Assignment instruction answer is not valid JSON ({type(exc).__name__})",
                    label,
                ),
            ),
        )
    if not isinstance(document, dict):
        # Typically a JSON document serialised twice: a string holding the real object.
        return AssignmentAnswer(
            failed=False,
            alerts=(
                Alert(
                    ALERT_INVALID_JSON,
                    "warning",
                    "Assignment instruction answer is JSON but not an object "
                    f"({type(document).__name__}); ensure it is not escaped",
                    label,
                ),
            ),
        )
    if not document:
        return AssignmentAnswer(failed=False)
    if "instruction" not in document:
        return AssignmentAnswer(
            failed=False,
            params=document,
            alerts=(
                Alert(
                    ALERT_NO_INSTRUCTION,
                    "warning",
                    "Assignment callback answer does not contain 'instruction'",
                    label,
                ),
            ),
        )
    instruction = document["instruction"]
    # Matched exactly, in lower case (the note on the table says why): "Accept" is a 55555 alert.
    if not isinstance(instruction, str) or instruction not in INSTRUCTIONS:
        expected = ", ".join(sorted(INSTRUCTIONS))
        message = f"Invalid instruction {instruction!r}: expected one of {expected}"
        return _invalid_instruction(document, message, label)
    rule = INSTRUCTIONS[instruction]
    if rule.accept_parameter is not None:
        # call / redirect: JSON true only, as Twilio documents the flag as a boolean.
        return AssignmentAnswer(
            failed=False,
            instruction=instruction,
            accept=document.get("accept") is True,
            params=document,
        )
    if rule.leads_to == "rejected":
        activity_sid = document.get("activity_sid")
        if activity_sid is not None and (
            not isinstance(activity_sid, str) or not _ACTIVITY_SID.match(activity_sid)
        ):
            return _invalid_instruction(
                document,
                f"Invalid reject instruction: activity_sid {activity_sid!r} is not an "
                "Activity SID (WA followed by 32 hex digits)",
                label,
            )
        return AssignmentAnswer(
            failed=False,
            instruction=instruction,
            reject=True,
            activity_sid=activity_sid,
            params=document,
        )
    # accept, and dequeue and conference, which a sandbox without calls treats as accept.
    return AssignmentAnswer(
        failed=False, instruction=instruction, accept=rule.leads_to == "accepted", params=document
    )


def _invalid_instruction(document: dict[str, Any], message: str, url: str) -> AssignmentAnswer:
    return AssignmentAnswer(
        failed=False,
        params=document,
        alerts=(Alert(ALERT_INVALID_INSTRUCTION, "error", message, url),),
    )


def form_params(params: Mapping[str, Any]) -> dict[str, str]:
    """The form fields exactly as sent and signed: every value a string.

    Booleans become "true"/"false" (as Twilio writes them), dicts and lists JSON, None is
    left out; anything else goes through str().
    """
    if not isinstance(params, Mapping):
        raise TypeError(f"callback params must be a mapping, not {type(params).__name__}")
    form: dict[str, str] = {}
    for name, value in params.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"callback parameter names must be non-empty strings: {name!r}")
        if value is None:
            continue
        if isinstance(value, bool):
            form[name] = "true" if value else "false"
        elif isinstance(value, dict | list):
            form[name] = json.dumps(value, separators=(",", ":"))
        else:
            form[name] = str(value)
    return form
