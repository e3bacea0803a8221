"""The quickstart's HTTP endpoints, one blueprint per module, and their shared request parsing.

Every bad parameter becomes an ApiError (400) naming it, before any call to TaskRouter.
Parameters come from the query string and from the body: a form, or a JSON object on the views
decorated with accepts_body. A body such a view cannot use is refused, never ignored.
"""

from __future__ import annotations

import enum
import functools
import io
import json
import math
import re
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from flask import g, request
from werkzeug.datastructures import MultiDict

from taskrouter_quickstart.errors import ApiError
from taskrouter_sandbox import jsonlimits

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def invalid_parameter(name: str, message: str) -> ApiError:
    return ApiError(400, "invalid_parameter", f"{name} {message}")


def invalid_body(message: str) -> ApiError:
    return ApiError(400, "invalid_body", message)


def reject_json_constant(name: str):
    # NaN and Infinity are Python's extension, not JSON; TaskRouter refuses them.
    raise ValueError(f"{name} is not JSON")


class NumberTooLarge(ValueError):
    """A JSON number no double holds (1e999): Python would read it as infinity."""


def finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise NumberTooLarge(f"{text} is larger than a JSON number can be")
    return value


class Kind(enum.Enum):
    """What a parameter's value may be in a JSON body; a form or query string only has text."""

    TEXT = "text"
    WHOLE_NUMBER = "whole number"
    JSON_OBJECT = "JSON object"


@dataclass(frozen=True)
class BodyField:
    """A parameter a view reads: its documented name, its other spellings, its JSON kind."""

    name: str
    kind: Kind = Kind.TEXT
    aliases: tuple[str, ...] = ()


def accepts_body(*fields: BodyField) -> Callable[[Callable], Callable]:
    """Read the view's parameters from a form or a JSON object body, refusing any other body.

    Put it under control_required, so a request from another site is refused before its body
    is read. parameter() then finds the body's values, as text, where it finds a form's.
    """
    by_name = {name: field for field in fields for name in (field.name, *field.aliases)}

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapped_view(**kwargs):
            g.body_parameters = _read_body(by_name, [field.name for field in fields])
            return view(**kwargs)

        return wrapped_view

    return decorator


def _read_body(by_name: Mapping[str, BodyField], documented: list[str]) -> MultiDict[str, str]:
    if request.mimetype in FORM_TYPES:
        _check_form(request.get_data(cache=True))
        if request.files:
            raise invalid_body("File uploads are not read here: send the parameters as text")
        _refuse_unknown(request.form.keys(), by_name, documented)
        return request.form
    data = request.get_data(cache=True)
    if not data:
        # No body at all, whatever its Content-Type: a browser GET, or a bare curl -X POST.
        return MultiDict()
    if not request.is_json:
        shown = request.content_type or "no Content-Type"
        raise invalid_body(
            f"A body sent with {shown} is not read here: send the parameters as a JSON object "
            "(Content-Type: application/json), as a form (application/x-www-form-urlencoded) "
            "or in the query string"
        )
    body = _json_object(data)
    _refuse_unknown(body.keys(), by_name, documented)
    return MultiDict(
        [(key, _as_text(key, by_name[key].kind, value)) for key, value in body.items()]
    )


def _check_form(data: bytes) -> None:
    """Refuse a form werkzeug would read as empty or with U+FFFD in place of its bytes.

    Werkzeug reads a broken multipart body as no fields at all, and bytes that are not UTF-8 as
    U+FFFD, so the action would run on its defaults or with mangled text. The body is read
    (and kept) first, so request.form then parses that same copy.
    """
    if request.mimetype == "multipart/form-data":
        if not data:
            return
        parser = request.make_form_data_parser()
        parser.silent = False
        try:
            _, form, files = parser.parse(
                io.BytesIO(data), request.mimetype, len(data), request.mimetype_params
            )
        except ValueError as exc:
            raise invalid_body(
                f"The multipart/form-data body cannot be read ({exc}): send the parameters as "
                "a form (application/x-www-form-urlencoded), a JSON object or in the query string"
            ) from None
        # Only checked here: request.form parses the body again, and request.files with it.
        for _, upload in files.items(multi=True):
            upload.close()
        texts = [text for key, value in form.items(multi=True) for text in (key, value)]
        # A U+FFFD the sender meant is in the body as its UTF-8 bytes; any other is werkzeug's.
        if any("\ufffd" in text for text in texts) and "\ufffd".encode() not in data:
            raise invalid_body("A part of the multipart/form-data body is not UTF-8: send UTF-8")
        return
    if b"\x00" in data:
        # URL-encoding never leaves a NUL byte: this is UTF-16 (or binary), not a form.
        raise invalid_body("The form body holds NUL bytes (UTF-16?): send the form in UTF-8")
    try:
        urllib.parse.parse_qsl(data.decode("utf-8"), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError as exc:
        byte = exc.object[exc.start]
        raise invalid_body(
            f"The form body is not UTF-8 (byte 0x{byte:02x}, sent as is or %-escaped): "
            "send the form's text in UTF-8"
        ) from None


def _decoded_json(data: bytes) -> str:
    # JSON should be UTF-8 (RFC 8259); UTF-16 and UTF-32 are still told apart by their first
    # bytes (RFC 4627, section 3) and read, as json.loads does. Bytes that are not text in the
    # encoding found are refused here, naming it, rather than as "not valid JSON".
    encoding = json.detect_encoding(data)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        name = encoding.upper().removesuffix("-SIG")
        raise invalid_body(
            f"The body is not valid JSON: it is not {name} text ({exc.reason} at byte "
            f"{exc.start}); send the JSON in UTF-8"
        ) from None


def _json_object(data: bytes) -> dict[str, object]:
    # The top-level object is the last one the hook builds (inner objects are done first), so
    # its keys are the last ones seen; a repeated key would otherwise keep only its last value.
    top_level_keys: list[str] = []

    def object_from(pairs: list[tuple[str, object]]) -> dict[str, object]:
        top_level_keys[:] = [key for key, _ in pairs]
        return dict(pairs)

    try:
        # One level more than a parameter may nest: the body's own object.
        body = jsonlimits.loads(
            _decoded_json(data),
            jsonlimits.MAX_DEPTH + 1,
            object_pairs_hook=object_from,
            parse_constant=reject_json_constant,
            parse_float=finite_float,
        )
    except jsonlimits.TooDeep as exc:
        if exc.key is None:
            raise invalid_body(f"The body is not valid here: a JSON body {exc}") from None
        # The member's own limit, the one its value would meet given as text.
        raise invalid_parameter(exc.key, str(jsonlimits.TooDeep(jsonlimits.MAX_DEPTH))) from None
    except NumberTooLarge as exc:
        raise invalid_body(f"The body holds a number too large for JSON: {exc}") from None
    except json.JSONDecodeError as exc:
        where = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
        raise invalid_body(f"The body is not valid JSON ({where}): send a JSON object") from None
    except (ValueError, RecursionError):
        # NaN or Infinity, or nested deeper than the parser goes.
        raise invalid_body("The body is not valid JSON: send a JSON object") from None
    if not isinstance(body, dict):
        raise invalid_body(f"The JSON body must be an object, not {_json_type(body)}")
    repeated = [key for key, count in Counter(top_level_keys).items() if count > 1]
    if repeated:
        raise invalid_parameter(repeated[0], "was given more than once in the JSON body")
    return body


def _refuse_unknown(
    keys: Iterable[str], by_name: Mapping[str, BodyField], documented: list[str]
) -> None:
    unknown = [key for key in keys if key not in by_name]
    if not unknown:
        return
    takes = ", ".join(documented)
    if unknown[0].lstrip().startswith(("{", "[")):
        # curl -d '{...}' sends its JSON as a form whose one field name is the whole JSON.
        raise invalid_body(
            "The body looks like JSON sent as a form: send it with "
            f"Content-Type: application/json (curl -H 'Content-Type: application/json'); "
            f"{request.path} takes {takes}"
        )
    names = ", ".join(unknown)
    raise ApiError(
        400,
        "unknown_parameter",
        f"{request.path} does not take {names} (given in the body): it takes {takes}",
    )


def _json_type(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _as_text(key: str, kind: Kind, value: object) -> str:
    """The value as the form would have sent it, so the view's checks and messages apply."""
    if isinstance(value, str):
        return value
    if kind is Kind.TEXT:
        raise invalid_parameter(key, f"must be a string, not {_json_type(value)}")
    if kind is Kind.JSON_OBJECT and isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    # Anything else goes as its JSON text, so it meets the form's check and message: 5 passes
    # as a whole number, while 1.5, true or a list as Priority fail as the text "1.5" would.
    return json.dumps(value)


def _body_parameters() -> MultiDict[str, str]:
    body = g.get("body_parameters")
    # Views without accepts_body read a form body only, as they always have.
    return body if body is not None else request.form


def parameter(*names: str) -> str | None:
    """The one value given for a parameter under any of its names (query string or body).

    The first name is the documented one and is used in error messages; the others are
    aliases (the quickstart's Ruby variant spells them task_sid, reservation_sid).
    """
    in_query = [value for name in names for value in request.args.getlist(name)]
    in_body = [value for name in names for value in _body_parameters().getlist(name)]
    values = in_query + in_body
    if not values:
        return None
    if len(values) > 1:
        where = " (in the query string and in the body)" if in_query and in_body else ""
        raise invalid_parameter(names[0], f"was given more than once{where}")
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


def check_whole_number(name: str, value: str, low: int, high: int) -> int:
    # Digits only: int() would also take " 5", "+5" and "5_000".
    if not re.fullmatch(r"[0-9]{1,10}", value) or not low <= int(value) <= high:
        raise invalid_parameter(name, f"must be a whole number from {low} to {high}")
    return int(value)


def integer_parameter(name: str, aliases: tuple[str, ...], low: int, high: int) -> int | None:
    value = parameter(name, *aliases)
    if value is None:
        return None
    return check_whole_number(name, value, low, high)
