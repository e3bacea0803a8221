"""The quickstart's HTTP endpoints, one blueprint per module, and their shared request parsing.

Every bad parameter becomes an ApiError (400) naming it, before any call to TaskRouter.
"""

from __future__ import annotations

import re

from flask import request


class ApiError(Exception):
    """An error this server answers itself, in the same JSON shape as TaskRouter's errors."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        more_info: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.more_info = more_info
        self.headers = headers or {}

    def as_dict(self) -> dict[str, object]:
        return {
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "more_info": self.more_info,
        }


def invalid_parameter(name: str, message: str) -> ApiError:
    return ApiError(400, "invalid_parameter", f"{name} {message}")


def parameter(*names: str) -> str | None:
    """The one value given for a parameter under any of its names (query string or form).

    The first name is the documented one and is used in error messages; the others are
    aliases (the quickstart's Ruby variant spells them task_sid, reservation_sid).
    """
    values: list[str] = []
    for name in names:
        values.extend(request.args.getlist(name))
        values.extend(request.form.getlist(name))
    if not values:
        return None
    if len(values) > 1:
        raise invalid_parameter(names[0], "was given more than once")
    return values[0]


def require_sid(name: str, aliases: tuple[str, ...], prefix: str) -> str:
    value = parameter(name, *aliases)
    if value is None or value == "":
        raise ApiError(400, "missing_parameter", f"{name} is required")
    return check_sid(name, value, prefix)


def check_sid(name: str, value: str, prefix: str) -> str:
    if not re.fullmatch(rf"{prefix}[0-9a-fA-F]{{32}}", value):
        raise invalid_parameter(name, f"must be {prefix} followed by 32 hex characters")
    return value


def integer_parameter(name: str, aliases: tuple[str, ...], low: int, high: int) -> int | None:
    value = parameter(name, *aliases)
    if value is None:
        return None
    # Digits only: int() would also take " 5", "+5" and "5_000".
    if not re.fullmatch(r"[0-9]{1,10}", value) or not low <= int(value) <= high:
        raise invalid_parameter(name, f"must be a whole number from {low} to {high}")
    return int(value)
