"""The record of assignment callbacks received, which the console page lists.

Embedded by default: a small SQLite file in the instance folder, shared by the server's
processes on one host (sqlite_log). With REDIS_URL set: one Redis list shared by every host
behind a load balancer, with change notifications for their pages (redis_log). Both queue a
callback's row and write it on a thread of their own (writer), never on the callback's.
"""

from __future__ import annotations

import os
import sqlite3

from flask import Flask

from taskrouter_quickstart.callback_log.rows import (
    DEFAULT_KEEP,
    FIELDS,
    MAX_ATTRIBUTES_LENGTH,
    MAX_SID_LENGTH,
    CallbackLogError,
    Row,
    utc_now_iso,
)
from taskrouter_quickstart.callback_log.sqlite_log import FILENAME, CallbackLog
from taskrouter_quickstart.callback_log.writer import QueuedLog

__all__ = [
    "DEFAULT_KEEP",
    "EXTENSION_KEY",
    "FIELDS",
    "FILENAME",
    "MAX_ATTRIBUTES_LENGTH",
    "MAX_SID_LENGTH",
    "READ_ERRORS",
    "CallbackLog",
    "CallbackLogError",
    "QueuedLog",
    "Row",
    "init_app",
    "utc_now_iso",
]

EXTENSION_KEY = "callback_log"
# What a read of either log may raise when its store is broken or away: the page shows it.
READ_ERRORS = (sqlite3.Error, OSError, CallbackLogError)


def init_app(app: Flask) -> None:
    """Open the callback log: in Redis with REDIS_URL, else CALLBACK_LOG_PATH or a file in the
    instance folder. With Redis, every serving process listens for the others' changes from
    its first request on (a thread started before gunicorn forks would not survive it)."""
    keep = int(app.config.get("CALLBACK_LOG_KEEP", DEFAULT_KEEP))
    redis_url = app.config.get("REDIS_URL")
    log: QueuedLog
    if redis_url:
        from taskrouter_quickstart.callback_log.redis_log import RedisCallbackLog

        log = RedisCallbackLog(str(redis_url), keep=keep, logger=app.logger)
        app.before_request(log.start_listening)
    else:
        path = app.config.get("CALLBACK_LOG_PATH") or os.path.join(app.instance_path, FILENAME)
        log = CallbackLog(path, keep=keep, logger=app.logger)
    app.extensions[EXTENSION_KEY] = log
