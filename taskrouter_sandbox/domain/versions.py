"""Row versions as HTTP entity tags: the ETag a Task, Worker or Reservation is answered with,
and whether an If-Match header names the current one.

Twilio's "API mutation and conflict resolution" page: a Task (and, in the OpenAPI
description, a Worker and a Reservation) answers with an ETag; a change sent with If-Match applies
only if the value matches the resource's current ETag, else it is refused with 412 (error
20412, "Precondition failed"). The version moves on every change of the row (a trigger in
store/schema.py), routing's status moves included.
"""

from __future__ import annotations

from taskrouter_sandbox.domain.errors import EngineError

PRECONDITION_FAILED = 20412


def etag(version: int) -> str:
    """The ETag of a row at this version: a strong entity tag, quoted as HTTP writes them."""
    return f'"{version}"'


# How much of a refused If-Match value an error message repeats.
_SHOWN = 80


def _tags(header: str) -> list[str]:
    """The entity tags an If-Match value lists, quotes kept; a bare token (no quotes, as a
    hand-written header may send) counts as that tag quoted."""
    tags = []
    for item in header.split(","):
        item = item.strip()
        if not item:
            continue
        if not item.startswith(('"', "W/")):
            item = f'"{item}"'
        tags.append(item)
    return tags


def matches(header: str, version: int) -> bool:
    """Whether an If-Match value is satisfied by a row at this version: "*" (the row exists)
    or one of its tags equal to the current ETag. Weak tags (W/"...") never match: If-Match
    compares strongly."""
    value = header.strip()
    if value == "*":
        return True
    current = etag(version)
    return any(tag == current for tag in _tags(value))


def check_if_match(header: str | None, version: int, resource: str) -> None:
    """Refuse the change with 412 unless If-Match (when given) names the current version."""
    if header is None or matches(header, version):
        return
    shown = header.strip()
    if len(shown) > _SHOWN:
        shown = shown[:_SHOWN] + "..."
    raise EngineError(
        f"Precondition failed: If-Match {shown!r} does not match the current ETag "
        f"{etag(version)} of {resource}; fetch it again and retry",
        status=412,
        code=PRECONDITION_FAILED,
    )
