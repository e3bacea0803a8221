"""Typed access to form and query parameters, and the paging parameters of every list."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from flask import request
from werkzeug.datastructures import MultiDict

from taskrouter_sandbox.api.errors import ApiError
from taskrouter_sandbox.clock import parse_twilio
from taskrouter_sandbox.domain.validation import truthy
from taskrouter_sandbox.domain.values import Paging

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 50


class Params:
    """Typed access to form or query parameters, each bad value a 400 naming the parameter."""

    def __init__(self, source: MultiDict, where: str) -> None:
        self.source = source
        self.where = where

    def has(self, name: str) -> bool:
        return name in self.source

    def text(self, name: str, *, required: bool = False) -> str | None:
        values = self.source.getlist(name)
        if not values:
            if required:
                raise ApiError(400, 20001, f"Missing required parameter {name} in the {self.where}")
            return None
        if len(values) > 1:
            raise ApiError(
                400, 20001, f"Parameter {name} was given {len(values)} times: give it once"
            )
        return values[0]

    def boolean(self, name: str) -> bool | None:
        value = self.text(name)
        if value is None:
            return None
        lowered = value.strip().lower()
        if lowered not in ("true", "false"):
            raise ApiError(400, 20001, f"Parameter {name} must be true or false, got {value!r}")
        return lowered == "true"

    def flag(self, name: str) -> bool | None:
        """Twilio's loose flags (Available): true, 1 or yes is true, anything else false."""
        value = self.text(name)
        return None if value is None else truthy(value)

    def integer(self, name: str, low: int | None = None, high: int | None = None) -> int | None:
        value = self.text(name)
        if value is None:
            return None
        # [0-9], not \d: \d also matches other scripts' digits, which int() would accept.
        if not re.fullmatch(r"[+-]?[0-9]{1,19}", value.strip()):
            raise ApiError(400, 20001, f"Parameter {name} must be an integer, got {value!r}")
        number = int(value)
        # SQLite stores 64-bit integers; anything wider is out of range for every parameter.
        low = -(2**63) if low is None else low
        high = 2**63 - 1 if high is None else high
        if not low <= number <= high:
            raise ApiError(
                400, 20001, f"Parameter {name} must be between {low} and {high}, got {number}"
            )
        return number

    def choice(self, name: str, choices: Iterable[str]) -> str | None:
        value = self.text(name)
        choices = tuple(choices)
        if value is not None and value not in choices:
            raise ApiError(
                400,
                20001,
                f"Parameter {name} must be one of {', '.join(choices)}, got {value!r}",
            )
        return value

    def date(self, name: str) -> datetime | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            return parse_twilio(value)
        except (ValueError, OverflowError):
            raise ApiError(
                400,
                20001,
                f"Parameter {name} must be an ISO 8601 date such as 2024-01-01T09:00:00Z, "
                f"got {value!r}",
            ) from None

    def strings(self, name: str) -> list[str] | None:
        """A list parameter: repeated keys (as the twilio library sends) or comma-separated."""
        values = self.source.getlist(name)
        if not values:
            return None
        items = [item.strip() for value in values for item in value.split(",")]
        return [item for item in items if item]

    def paging(self) -> Paging:
        page_size = self.integer("PageSize", 1, MAX_PAGE_SIZE)
        page_number = self.integer("Page", 0, 10**9)
        page_token = self.text("PageToken")
        return Paging(
            page_size=DEFAULT_PAGE_SIZE if page_size is None else page_size,
            page_number=page_number or 0,
            page_token=page_token or None,
        )


def form() -> Params:
    return Params(request.form, "post body")


def query() -> Params:
    return Params(request.args, "query string")
