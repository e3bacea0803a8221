"""The control API: what TaskRouter has no call for but a test in any language needs, beside
the TaskRouter paths and outside /v1, under the same basic auth and error shape.

    GET    /control/clock            {"now", "movable"}
    POST   /control/clock/advance    Seconds=<0 .. a year>: fires what falls due on the way
    POST   /control/settle           [Timeout=<0 .. 60>]: waits for the callbacks in flight
    POST   /control/reset            [Seed=quickstart|empty]: a new seeded workspace
    GET    /control/seed             the seeded workspace's SIDs
    GET    /control/callbacks        [Kind=assignment|event]: the newest 1000 callback POSTs,
                                     oldest first
    DELETE /control/callbacks        forgets them
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

from flask import Response

from taskrouter_sandbox.api.context import current_sandbox, engine, url_prefix
from taskrouter_sandbox.api.errors import ApiError
from taskrouter_sandbox.api.params import form, query
from taskrouter_sandbox.api.rendering import deleted, json_response
from taskrouter_sandbox.clock import movable, to_storage
from taskrouter_sandbox.domain.errors import NotFound
from taskrouter_sandbox.seed import SEEDS

# Far enough for any TaskRouter timeout (a task's TTL is at most two weeks), near enough that
# a slip of the keyboard does not put the sandbox in the year 3000.
MAX_ADVANCE_SECONDS = 366 * 24 * 3600
CALLBACK_KINDS = ("assignment", "event")
# How long POST /control/settle waits at most (and by default).
MAX_SETTLE_SECONDS = 60.0
# A plain decimal number: float() would also take "nan", "inf", "1e400" and "٣".
_DECIMAL = re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]+")


def fetch_clock() -> Response:
    sandbox = current_sandbox()
    return json_response(
        {"now": to_storage(sandbox.clock.now()), "movable": movable(sandbox.clock)}
    )


def advance_clock() -> Response:
    seconds = _seconds(
        form().text("Seconds", required=True) or "", "Seconds", MAX_ADVANCE_SECONDS, "(a year)"
    )
    sandbox = current_sandbox()
    if not movable(sandbox.clock):
        raise ApiError(
            409,
            20001,
            "This sandbox runs on the system clock, which cannot move: start one whose clock "
            "can (taskrouter-sandbox, whose --clock system or manual both move, or "
            "SANDBOX_CLOCK=ManualClock() / ShiftedClock() with init_app)",
        )
    try:
        now = sandbox.advance(seconds)
    except TimeoutError as error:
        raise _still_in_flight(error) from error
    return json_response({"now": to_storage(now), "advanced_by": seconds})


def settle() -> Response:
    """Wait until the callbacks sent so far are delivered and their answers applied, as the
    pytest fixture's client does after every request."""
    text = form().text("Timeout")
    timeout = MAX_SETTLE_SECONDS if text is None else _seconds(text, "Timeout", MAX_SETTLE_SECONDS)
    if not current_sandbox().settle(timeout):
        raise _still_in_flight(TimeoutError(f"callbacks still in flight after {timeout:g} s"))
    return json_response({"settled": True})


def _still_in_flight(error: TimeoutError) -> ApiError:
    return ApiError(504, 20001, f"{error}: a callback URL is answering slowly or not at all")


def _seconds(text: str, name: str, most: float, what: str = "") -> float:
    """A parameter that is a plain decimal number of seconds, from 0 to most."""
    value = text.strip()
    if not _DECIMAL.fullmatch(value):
        raise ApiError(
            400,
            20001,
            f"Parameter {name} must be a number of seconds, 0 or more, got {text!r}",
        )
    seconds = float(value)
    if not math.isfinite(seconds) or seconds > most:
        limit = f"{most:.0f} {what}".rstrip()
        raise ApiError(400, 20001, f"Parameter {name} must be at most {limit}, got {text!r}")
    return seconds


def reset() -> Response:
    kind = form().choice("Seed", SEEDS)
    if url_prefix():
        # Mounted inside another app (the quickstart server at /sandbox), which read the
        # seeded SIDs when it started and would go on using the wiped ones.
        raise ApiError(
            409,
            20001,
            "This sandbox is mounted inside an app that uses its seeded SIDs: reset it with "
            "`flask sandbox reset`, which that server follows, or run taskrouter-sandbox "
            "for a sandbox of its own",
        )
    sandbox = current_sandbox()
    callback_url = _seeded_callback_url()
    # A callback still in flight would be recorded, and its answer applied, after the wipe.
    sandbox.settle()
    seeded = sandbox.reset(seed=kind)
    if callback_url and seeded.workflow_sid:
        # The new workflow calls back where the old one did (taskrouter-sandbox --callback-url).
        engine().update_workflow(
            seeded.workspace_sid, seeded.workflow_sid, assignment_callback_url=callback_url
        )
    return json_response(_seed_body())


def _seeded_callback_url() -> str | None:
    """The seeded workflow's Assignment Callback URL; None without one (the empty seed, or a
    workflow or workspace a client deleted: a reset is how to get it back)."""
    seeded = current_sandbox().seeded
    if not seeded.workflow_sid:
        return None
    try:
        workflow = engine().get_workflow(seeded.workspace_sid, seeded.workflow_sid)
    except NotFound:
        return None
    return workflow["assignment_callback_url"]


def fetch_seed() -> Response:
    return json_response(_seed_body())


def _seed_body() -> dict[str, Any]:
    return dataclasses.asdict(current_sandbox().seeded)


def list_callbacks() -> Response:
    kind = query().choice("Kind", CALLBACK_KINDS)
    deliveries = list(current_sandbox().deliveries)
    return json_response(
        {
            "callbacks": [
                delivery.as_dict() for delivery in deliveries if kind in (None, delivery.kind)
            ]
        }
    )


def clear_callbacks() -> Response:
    current_sandbox().deliveries.clear()
    return deleted()
