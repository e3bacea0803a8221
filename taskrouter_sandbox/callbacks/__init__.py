"""Callback delivery: the sandbox's assignment and event callbacks, signed as Twilio signs them.

answers (pure: what an assignment callback's answer means, the form a callback is sent as) and
delivery (Dispatcher: the worker threads, HTTP pool, fallback and timeouts). The alerts and
outcomes it hands back are the domain's (sandbox.domain.values); it imports nothing else of
the sandbox.
"""

from taskrouter_sandbox.callbacks.answers import (
    AssignmentAnswer,
    assignment_idempotency_token,
    form_params,
    interpret_assignment_answer,
    redact_url,
)
from taskrouter_sandbox.callbacks.delivery import (
    IDEMPOTENCY_HEADER,
    MAX_ANSWER_BYTES,
    REQUEST_HEADERS,
    SIGNATURE_HEADER,
    USER_AGENT,
    Dispatcher,
    HttpAnswer,
    LocalTransport,
    new_pool,
    on_delivery_thread,
)

__all__ = [
    "IDEMPOTENCY_HEADER",
    "MAX_ANSWER_BYTES",
    "REQUEST_HEADERS",
    "SIGNATURE_HEADER",
    "USER_AGENT",
    "AssignmentAnswer",
    "Dispatcher",
    "HttpAnswer",
    "LocalTransport",
    "assignment_idempotency_token",
    "form_params",
    "interpret_assignment_answer",
    "new_pool",
    "on_delivery_thread",
    "redact_url",
]
