"""The Workflow's Assignment Callback: TaskRouter asks what to do with a new Reservation.

It answers at once by ASSIGNMENT_MODE, makes no REST call, and records the callback for the page.
"""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import unquote_to_bytes

from flask import Blueprint, Flask, Response, current_app, request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import SecurityError
from werkzeug.wsgi import get_host

from taskrouter_quickstart import callback_log, taskrouter
from taskrouter_quickstart.security import (
    SignedForm,
    signature_matches,
    signature_required,
    url_twilio_signed,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

bp = Blueprint("assignment", __name__)
CALLBACK_PATH = "/assignment_callback"

# `{}` leaves the reservation pending for /accept_reservation; accept assigns the task at once.
ANSWERS = {
    "manual": "{}",
    "accept": json.dumps({"instruction": "accept"}),
}

# Each answer's body and headers, as the fast path sends them.
_ANSWERED = {
    answer: (
        answer.encode(),
        (("Content-Type", "application/json"), ("Content-Length", str(len(answer.encode())))),
    )
    for answer in ANSWERS.values()
}

# The line logged for every callback: these SIDs, then the answer.
CALLBACK_LOG_LINE = (
    "Assignment callback ReservationSid=%s TaskSid=%s WorkerSid=%s TaskQueueSid=%s answer=%s"
)
LOGGED_SIDS = ("ReservationSid", "TaskSid", "WorkerSid", "TaskQueueSid")

# Callback parameter -> (record field, SID prefix)
SID_PARAMETERS = {
    "ReservationSid": ("reservation_sid", "WR"),
    "TaskSid": ("task_sid", "WT"),
    "WorkerSid": ("worker_sid", "WK"),
    "TaskQueueSid": ("task_queue_sid", "WQ"),
    "WorkflowSid": ("workflow_sid", "WW"),
    # Kept so that the page lists only the configured workspace's callbacks.
    "WorkspaceSid": ("workspace_sid", "WS"),
}
_SID_PATTERNS = {
    name: re.compile(rf"{prefix}[0-9a-fA-F]{{32}}") for name, (_, prefix) in SID_PARAMETERS.items()
}
# All of them at once, over the values joined by NUL (which no SID holds): a usual callback's
# six SIDs cost one match instead of six.
_ALL_SIDS = re.compile("\0".join(pattern.pattern for pattern in _SID_PATTERNS.values()))
# A logger whose class overrides these makes its own records: the callback leaves it to them.
_LOGGER_LOG = logging.Logger._log
_LOG_SAFE = re.compile(r"[A-Za-z0-9]{1,64}")
_CONTENT_LENGTH = re.compile(r"[0-9]{1,9}")
ATTRIBUTE_PARAMETERS = {
    "TaskAttributes": "task_attributes",
    "WorkerAttributes": "worker_attributes",
}
# Callback parameter -> record field, for every parameter the record keeps.
_RECORDED = (
    *((name, field) for name, (field, _) in SID_PARAMETERS.items()),
    *ATTRIBUTE_PARAMETERS.items(),
)


def _unescape(text: str) -> str:
    # Most of a callback's fields are SIDs and numbers, which carry no escape. The others are
    # unescaped whole, as bytes: the text around the escapes is whole UTF-8 sequences, so no
    # escaped byte can join it into another character, and it decodes as urllib's unquote,
    # which decodes each run of escapes by itself, would.
    if "%" not in text:
        return text.replace("+", " ") if "+" in text else text
    text = text.replace("+", " ")
    if text.isascii() and "\\" not in text:
        # The attributes' JSON is mostly escapes, which urllib's unquote_to_bytes decodes one
        # at a time in Python: as \xXX escapes, one C codec decodes them all (each to the
        # code point of the byte's value, which latin-1 turns back into the byte). A % that
        # does not start two hex digits makes the codec fail: the general way keeps it.
        try:
            escaped = text.replace("%", "\\x").encode().decode("unicode_escape")
        except UnicodeDecodeError:
            pass
        else:
            return escaped.encode("latin-1").decode("utf-8", "werkzeug.url_quote")
    return unquote_to_bytes(text.encode()).decode("utf-8", "werkzeug.url_quote")


def parse_form(text: str) -> list[tuple[str, str]]:
    """The pairs of a form body, exactly as Werkzeug parses one (urllib's parse_qsl with
    keep_blank_values and Werkzeug's escape for bad UTF-8), in a third of its time: parse_qsl
    unquotes every name and value, and most of a callback's carry no escape."""
    pairs = []
    for field in text.split("&"):
        if field:
            name, _, value = field.partition("=")
            pairs.append((_unescape(name), _unescape(value)))
    return pairs


def _problems(values) -> list[str]:
    problems = []
    if not _ALL_SIDS.fullmatch("\0".join([values.get(name) or "" for name in SID_PARAMETERS])):
        for name, (_, prefix) in SID_PARAMETERS.items():
            value = values.get(name)
            if value is None:
                problems.append(f"{name} missing")
            elif not _SID_PATTERNS[name].fullmatch(value):
                problems.append(f"{name} is not {prefix} + 32 hex")
    for name in ATTRIBUTE_PARAMETERS:
        value = values.get(name)
        if value is None:
            problems.append(f"{name} missing")
            continue
        if len(value) > callback_log.MAX_ATTRIBUTES_LENGTH:
            problems.append(f"{name} too long")
            continue
        if not _is_json_object(value):
            problems.append(f"{name} is not a JSON object")
    return problems


_DECODER = json.JSONDecoder()


def _is_json_object(text: str) -> bool:
    """Whether json.loads(text) is a dict, in a quarter of its time for a usual value."""
    # raw_decode is the decoder json.loads uses, less the two whitespace scans around it,
    # which cost it three times the parse of a short object: a value it reads whole settles
    # it; anything else (whitespace around the JSON, bad JSON) is left to json.loads.
    try:
        parsed, end = _DECODER.raw_decode(text)
    except (ValueError, RecursionError):
        end = -1
    if end != len(text):
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):
            return False
    return isinstance(parsed, dict)


def _for_log(value: str | None) -> str:
    # Values come from the request: keep the log one line per callback whatever they hold.
    if value is None:
        return "-"
    if _LOG_SAFE.fullmatch(value):
        return value
    return repr(value[:64])


def answer_callback(app: Flask, values: Mapping[str, str]) -> str:
    """The answer for the mode; logs the callback on one line and records it for the page."""
    answer = ANSWERS[app.config["ASSIGNMENT_MODE"]]
    problems = _problems(values)
    if problems:
        app.logger.warning(
            "Assignment callback is malformed (%s); answering %s anyway",
            "; ".join(problems),
            answer,
        )
    logger = app.logger
    if problems:
        args = (*(_for_log(values.get(name)) for name in LOGGED_SIDS), answer)
    else:
        # Each is a SID, checked above: nothing in it can break the line.
        args = (*(values[name] for name in LOGGED_SIDS), answer)
    if type(logger).info is not logging.Logger.info or type(logger)._log is not _LOGGER_LOG:
        logger.info(CALLBACK_LOG_LINE, *args)  # a logger class of its own decides itself
    elif logger.isEnabledFor(logging.INFO):
        # logger.info() would walk the stack to find this line (findCaller): 40% of the log
        # line's cost, on every callback. The record names this frame's line instead; levels,
        # filters, handlers and the record factory work as for any other record.
        here = sys._getframe()
        line = logger.makeRecord(
            logger.name,
            logging.INFO,
            here.f_code.co_filename,
            here.f_lineno,
            CALLBACK_LOG_LINE,
            args,
            None,
            here.f_code.co_name,
        )
        logger.handle(line)

    record = {field: values.get(name) for name, field in _RECORDED}
    record["answer"] = answer
    log = app.extensions[callback_log.EXTENSION_KEY]
    try:
        log.record(record)
    except Exception as exc:
        # The answer matters more than the record: TaskRouter is waiting on it.
        app.logger.warning("Could not record the callback in %s: %s", log.where, exc)
    return answer


@bp.route(CALLBACK_PATH, methods=("GET", "POST"))
@signature_required
def assignment_callback():
    # A GET callback carries its parameters in the query string.
    answer = answer_callback(current_app._get_current_object(), request.values)
    return Response(answer, status=200, mimetype="application/json")


class CallbackFastPath:
    """WSGI middleware answering a correctly signed TaskRouter callback before Flask's request
    machinery, which would cost it several times what the answer itself does.

    It takes only the common shape (a form POST to the callback URL, no query string, with
    signature checks on); everything else, a bad signature included, goes on to the Flask
    view, which answers it the same way or with the error. Sits inside ProxyFix, so the
    scheme and host are the ones the proxy forwarded.
    """

    def __init__(self, app: Flask, wsgi_app: WSGIApplication) -> None:
        self.app = app
        self.wsgi_app = wsgi_app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse):
        if (
            environ.get("PATH_INFO") != CALLBACK_PATH
            or environ.get("REQUEST_METHOD") != "POST"
            or environ.get("QUERY_STRING")
            or environ.get("SCRIPT_NAME")
            or not self.app.config["VALIDATE_SIGNATURES"]
        ):
            return self.wsgi_app(environ, start_response)
        try:
            values = self._signed_values(environ)
        except Exception:
            # The view checks the request again and answers whatever it is.
            self.app.logger.exception("The callback's fast path failed; handing it to Flask")
            values = None
        if values is None:
            return self.wsgi_app(environ, start_response)
        body, headers = _ANSWERED[answer_callback(self.app, values)]
        start_response("200 OK", list(headers))
        return [body]

    def _signed_values(self, environ: WSGIEnvironment) -> Mapping[str, str] | None:
        """The form of a correctly signed callback; None to leave the request to Flask."""
        signature = environ.get("HTTP_X_TWILIO_SIGNATURE")
        auth_token = self.app.extensions[taskrouter.EXTENSION_KEY].auth_token
        content_type = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
        length = environ.get("CONTENT_LENGTH", "")
        if (
            not signature
            or not auth_token
            or content_type != "application/x-www-form-urlencoded"
            or not _CONTENT_LENGTH.fullmatch(length)
            or int(length) > self.app.config["MAX_CONTENT_LENGTH"]
        ):
            return None
        raw = environ["wsgi.input"].read(int(length))
        # Flask reads the body again if the request goes on there.
        environ["wsgi.input"] = io.BytesIO(raw)
        try:
            # Parsed exactly as Werkzeug parses a form, so both paths see the same values.
            pairs = parse_form(raw.decode())
            host = get_host(environ, self.app.config.get("TRUSTED_HOSTS"))
        except (ValueError, SecurityError):
            return None
        # A dict is cheaper to read and sign; a repeated name needs all its values.
        values = SignedForm(pairs)
        if len(values) != len(pairs):
            values = MultiDict(pairs)
        url = url_twilio_signed(
            self.app.config.get("PUBLIC_BASE_URL"), environ["wsgi.url_scheme"], host, CALLBACK_PATH
        )
        return values if signature_matches(auth_token, url, values, signature) else None
