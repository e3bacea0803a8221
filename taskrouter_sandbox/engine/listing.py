"""The REST lists' common parts: Twilio's Ordering parameter and paging over the store."""

from __future__ import annotations

from typing import Any

from taskrouter_sandbox.domain.errors import EngineError
from taskrouter_sandbox.domain.values import Paging
from taskrouter_sandbox.store import InvalidPageToken, Order, Page, Transaction, page


def parse_ordering(
    text: str | None, columns: dict[str, tuple[str, str]], alias: str
) -> list[Order]:
    """Parse Twilio's `Attribute:asc|desc[,Attribute:dir]` into keyset columns."""
    if text is None or text == "":
        return [Order(f"{alias}.seq", "seq")]
    order: list[Order] = []
    seen: set[str] = set()
    for part in text.split(","):
        attribute, _, direction = part.strip().partition(":")
        key = attribute.strip().lower()
        if key not in columns or direction.strip().lower() not in ("asc", "desc", ""):
            names = ", ".join(sorted(name for name in columns))
            raise EngineError(
                f"Ordering {text!r} is not valid: use Attribute:asc or Attribute:desc "
                f"with Attribute one of {names} (case-insensitive)"
            )
        if key in seen:
            raise EngineError(f"Ordering {text!r} names {attribute.strip()} twice")
        seen.add(key)
        expression, row_field = columns[key]
        order.append(Order(expression, row_field, direction.strip().lower() == "desc"))
    if {"datecreated", "virtualstarttime"} <= seen:
        raise EngineError("Ordering cannot pair DateCreated with VirtualStartTime")
    order.append(Order(f"{alias}.seq", "seq", order[0].descending))
    return order


def paged(tx: Transaction, paging: Paging, **arguments: Any) -> Page:
    """One page of a list (store.page), a bad PageToken a 400."""
    try:
        return page(
            tx,
            page_size=paging.page_size,
            page_number=paging.page_number,
            page_token=paging.page_token,
            **arguments,
        )
    except InvalidPageToken:
        raise EngineError(
            f"PageToken {paging.page_token!r} is not valid for this list (it comes from "
            "another list or ordering, or was altered)"
        ) from None
