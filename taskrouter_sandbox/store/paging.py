"""Keyset paging: one page of a query, and the PageTokens that lead to the pages beside it."""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from taskrouter_sandbox.store.database import Transaction


class InvalidPageToken(ValueError):
    """A PageToken this store did not issue, or one for another ordering."""


@dataclass(frozen=True)
class Order:
    """One ordering column: the SQL expression, the row field holding it, the direction."""

    expression: str
    field: str
    descending: bool = False


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    next_token: str | None
    previous_token: str | None


def _encode_token(direction: str, key: list[Any]) -> str:
    raw = json.dumps(key, separators=(",", ":")).encode()
    return direction + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _no_constant(name: str) -> Any:
    # json.loads reads NaN, Infinity and -Infinity, which no token of this store carries.
    raise ValueError(f"{name} is not a column value")


def _column_value(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str | int)


def _decode_token(token: str, width: int) -> tuple[str, list[Any]]:
    direction, body = token[:2], token[2:]
    if direction not in ("PA", "PB") or not body:
        raise InvalidPageToken(token)
    try:
        key = json.loads(
            base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)), parse_constant=_no_constant
        )
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError) as error:
        # RecursionError: a crafted token nesting a thousand levels deep.
        raise InvalidPageToken(token) from error
    # A key is a flat list of column values: a nested list or object is no scalar, so it is
    # refused here as it would be at any depth. No column holds a boolean (JSON true is not
    # the integer 1 this store would have written) or a non-finite number.
    if (
        not isinstance(key, list)
        or len(key) != width
        or not all(_column_value(value) for value in key)
    ):
        raise InvalidPageToken(token)
    return direction, key


def _beyond(order: Sequence[Order], key: list[Any], reverse: bool) -> tuple[str, list[Any]]:
    """SQL for 'rows strictly after key' in the ordering (before it when reverse)."""
    alternatives = []
    params: list[Any] = []
    for index, column in enumerate(order):
        descending = column.descending != reverse
        terms = [f"{order[j].expression} = ?" for j in range(index)]
        terms.append(f"{column.expression} {'<' if descending else '>'} ?")
        params.extend(key[: index + 1])
        alternatives.append("(" + " AND ".join(terms) + ")")
    return "(" + " OR ".join(alternatives) + ")", params


def _order_by(order: Sequence[Order], reverse: bool) -> str:
    return ", ".join(
        f"{column.expression} {'DESC' if column.descending != reverse else 'ASC'}"
        for column in order
    )


def page(
    tx: Transaction,
    *,
    select: str,
    where: Sequence[str],
    params: Sequence[Any],
    order: Sequence[Order],
    page_size: int,
    page_number: int = 0,
    page_token: str | None = None,
    predicate: Callable[[dict[str, Any]], bool] | None = None,
) -> Page:
    """One page of select, keyset-paged on order (whose last column must be unique).

    Tokens carry the boundary row's ordering values, so rows added or removed elsewhere do
    not shift a page. predicate filters in Python what SQL cannot (expressions).
    """
    direction, key = ("PA", None)
    if page_token:
        direction, key = _decode_token(page_token, len(order))
    reverse = direction == "PB"
    conditions = list(where)
    arguments = list(params)
    if key is not None:
        condition, extra = _beyond(order, key, reverse)
        conditions.append(condition)
        arguments.extend(extra)
    sql = select
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    sql += " ORDER BY " + _order_by(order, reverse)
    skip = page_number * page_size if key is None else 0
    wanted = page_size + 1
    rows: list[dict[str, Any]] = []
    cursor = tx.execute(sql, arguments)
    try:
        for row in cursor:
            if predicate is not None and not predicate(row):
                continue
            if skip:
                skip -= 1
                continue
            rows.append(row)
            if len(rows) == wanted:
                break
    finally:
        cursor.close()
    more = len(rows) > page_size
    rows = rows[:page_size]

    def key_of(row: dict[str, Any]) -> list[Any]:
        return [row[column.field] for column in order]

    if reverse:
        rows.reverse()
        has_previous, has_next = more, True
    else:
        has_previous, has_next = key is not None or page_number > 0, more
    return Page(
        rows=rows,
        next_token=_encode_token("PA", key_of(rows[-1])) if rows and has_next else None,
        previous_token=_encode_token("PB", key_of(rows[0])) if rows and has_previous else None,
    )
