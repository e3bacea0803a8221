"""Keep workers' access tokens out of the servers' access logs.

The Worker SDK carries its token in the websocket's query string (?token=...), and the access
logs of werkzeug's server (flask run, the standalone sandbox) and gunicorn's print request
lines whole. A token is a credential for as long as it lives: the line keeps its place and
the token becomes [redacted], as the quickstart server writes a control token.
"""

from __future__ import annotations

import logging
import re

# The loggers whose records carry request lines.
ACCESS_LOGGERS = ("werkzeug", "gunicorn.access")
_TOKEN = re.compile(r"((?:^|[?&])token=)[^&\s\"']+")
HIDDEN = r"\1[redacted]"


def hide_tokens(text: str) -> str:
    return _TOKEN.sub(HIDDEN, text)


class HideTokens(logging.Filter):
    """Rewrites a record's message and string arguments with their tokens hidden."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = hide_tokens(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                hide_tokens(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        elif isinstance(record.args, dict):
            record.args = {
                key: hide_tokens(value) if isinstance(value, str) else value
                for key, value in record.args.items()
            }
        return True


def install() -> None:
    """Once per process, on every access logger (idempotent)."""
    for name in ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, HideTokens) for f in logger.filters):
            logger.addFilter(HideTokens())
