"""Request-size limits the app enforces itself, so that their errors are JSON like every other.

gunicorn and Werkzeug's dev server refuse an over-long request line or too many or too large
headers before the app sees the request, with their own HTML page (or, from the dev server for
a request line it cannot parse, a page without even a status line). The limits here are set
below both servers' defaults, so any request between them and the server's own gets the
app's JSON 414 or 431 instead:

- gunicorn: a request line over 4,094 characters is a 414; more than 100 header fields, or
  one over 8,190 characters with its name, a 431.
- Werkzeug's dev server (http.server): a request line over 65,536 characters is a 414; 100
  header fields or more, or a header line over 65,536 characters, a 431.

What is bigger than the server's own limit never reaches the app and keeps the server's answer;
the README lists those.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

# Path (percent-decoded, as PATH_INFO holds it) plus query string. gunicorn's 4,094-character
# request line holds "OPTIONS ", the target and " HTTP/1.1": a longer limit would never apply
# under gunicorn.
MAX_URL_LENGTH = 4000
# Header fields with distinct names (the servers join repeated ones). Browsers send about 20,
# a proxy adds a few; the dev server refuses 100.
MAX_HEADER_COUNT = 64
# One header's value (repeated headers joined). Below gunicorn's 8,190 for the whole field line,
# yet room for the Cookie header a browser sends to 127.0.0.1, which every local app shares.
MAX_HEADER_LENGTH = 8000

# Keys of a WSGI environ that carry a header without the HTTP_ prefix.
_UNPREFIXED_HEADERS = ("CONTENT_TYPE", "CONTENT_LENGTH")


def _error(status: int, code: str, message: str) -> tuple[str, list[tuple[str, str]], bytes]:
    # The same body the app's error handlers write through jsonify (sorted keys, compact).
    body = (
        json.dumps(
            {"error": {"status": status, "code": code, "message": message, "more_info": None}},
            separators=(",", ":"),
            sort_keys=True,
        )
        + "\n"
    ).encode()
    reason = {414: "URI Too Long", 431: "Request Header Fields Too Large"}[status]
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    return f"{status} {reason}", headers, body


# Built once: a request within the limits allocates nothing here.
URL_TOO_LONG = _error(
    414,
    "request_uri_too_large",
    f"The URL (path and query string) is longer than {MAX_URL_LENGTH:,} characters.",
)
TOO_MANY_HEADERS = _error(
    431,
    "request_header_fields_too_large",
    f"The request has more than {MAX_HEADER_COUNT} header fields.",
)
HEADER_TOO_LONG = _error(
    431,
    "request_header_fields_too_large",
    f"A request header is longer than {MAX_HEADER_LENGTH:,} characters.",
)


def header_count(environ: WSGIEnvironment) -> int:
    """How many header fields (with distinct names) the request has."""
    count = 0
    for key, value in environ.items():
        if key.startswith("HTTP_") or (key in _UNPREFIXED_HEADERS and value):
            count += 1
    return count


def refusal(environ: WSGIEnvironment) -> tuple[str, list[tuple[str, str]], bytes] | None:
    """The error for a request over a limit, None for one within them."""
    if len(environ.get("PATH_INFO", "")) + len(environ.get("QUERY_STRING", "")) > MAX_URL_LENGTH:
        return URL_TOO_LONG
    # Every header is one key of the environ, so a small environ cannot hold too many: only a
    # big one is counted.
    if len(environ) > MAX_HEADER_COUNT and header_count(environ) > MAX_HEADER_COUNT:
        return TOO_MANY_HEADERS
    # The values alone, length first: that rules out every entry of a usual request without
    # looking at its key (about 1.5 us for 30 entries).
    for value in environ.values():
        if type(value) is str and len(value) > MAX_HEADER_LENGTH:
            return HEADER_TOO_LONG if _long_header(environ) else None
    return None


def _long_header(environ: WSGIEnvironment) -> bool:
    # Other long entries (a percent-encoded RAW_URI, say) are not headers.
    return any(
        type(value) is str
        and len(value) > MAX_HEADER_LENGTH
        and (key.startswith("HTTP_") or key in _UNPREFIXED_HEADERS)
        for key, value in environ.items()
    )


class RequestLimits:
    """WSGI middleware answering a request over the limits above with JSON, before anything else
    in the app reads it (outermost, around ProxyFix and the callback's fast path)."""

    def __init__(self, wsgi_app: WSGIApplication) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse):
        refused = refusal(environ)
        if refused is None:
            return self.wsgi_app(environ, start_response)
        status, headers, body = refused
        start_response(status, list(headers))
        if environ.get("REQUEST_METHOD") == "HEAD":
            return []
        return [body]
