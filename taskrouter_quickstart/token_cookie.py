"""CONTROL_TOKEN never stays in a URL: a browser's `?token=` visit is exchanged once for an
HttpOnly, SameSite=Strict cookie and redirected to the same URL without it, and every URL
this server logs or answers with has the token's value redacted.

A URL is written to access logs (the dev server's, gunicorn's --access-logfile), to browser
history and to Referer headers; a cookie is none of those. SameSite=Strict keeps it off
requests another site starts, so it grants nothing the cross-site check would refuse.
"""

from __future__ import annotations

import hmac
import logging
import re
from urllib.parse import parse_qsl, urlencode

from flask import Flask, Response, current_app, redirect, request

COOKIE_NAME = "control_token"
REDACTED = "[redacted]"
# token=<value> in a query string, however it is quoted; the value ends at & # space or quote.
_TOKEN_IN_QUERY = re.compile(r"(?i)([?&;]token=)[^&#\s\"']*")
# The loggers that write request lines: Werkzeug's dev server and gunicorn's access log.
REQUEST_LOGGERS = ("werkzeug", "gunicorn.access")


def redact(text: str) -> str:
    """The text with every `token=` query value replaced by [redacted]."""
    return _TOKEN_IN_QUERY.sub(rf"\g<1>{REDACTED}", text)


class RedactToken(logging.Filter):
    """Redacts `token=` values in a log record's message (a request line, a refused URL)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "token=" in message.lower():
            record.msg, record.args = redact(message), None
        return True


def cookie_token() -> str | None:
    return request.cookies.get(COOKIE_NAME) or None


def _exchange() -> Response | None:
    """A GET carrying the right ?token=: set the cookie, redirect to the URL without it."""
    if request.method != "GET" or "token" not in request.args:
        return None
    expected = current_app.config.get("CONTROL_TOKEN")
    tokens = request.args.getlist("token")
    if not expected or len(tokens) != 1:
        return None
    if not hmac.compare_digest(tokens[0].encode(), str(expected).encode()):
        return None  # the guard refuses it, with a message that does not repeat it
    pairs = parse_qsl(request.query_string.decode("latin-1"), keep_blank_values=True)
    query = urlencode([(name, value) for name, value in pairs if name != "token"])
    target = request.script_root + request.path + (f"?{query}" if query else "")
    response = redirect(target, code=303)
    response.set_cookie(
        COOKIE_NAME,
        str(expected),
        httponly=True,
        samesite="Strict",
        secure=request.scheme == "https",
        path=request.script_root or "/",
    )
    # The redirect itself must not be kept with the token in it.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def init_app(app: Flask) -> None:
    app.before_request(_exchange)
    # Only the servers' request lines: the app's own messages redact the URLs they carry
    # (security.py), so each callback's log line is not formatted twice.
    for name in REQUEST_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, RedactToken) for existing in logger.filters):
            logger.addFilter(RedactToken())
