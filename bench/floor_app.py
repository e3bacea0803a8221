"""The floor of benchmark 1: the least work a signed, logged assignment callback can cost under
the same gunicorn command, whoever writes the handler.

A plain WSGI callable, no framework and nothing else: it reads the form (parsed as Werkzeug
parses one, the server's way), checks X-Twilio-Signature with twilio's compute_signature for
the URL it was called at (one HMAC), logs the callback's line through logging with the
server's handler and format (its record made as the server makes it, without logger.info's
walk of the stack), and answers the same JSON as the server in accept mode. No request
limits, no proxy headers, no record for the page, no check of the SIDs.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

from twilio.request_validator import RequestValidator, compare

from taskrouter_quickstart.app import ErrorStreamHandler
from taskrouter_quickstart.routes.assignment import (
    ANSWERS,
    CALLBACK_LOG_LINE,
    LOGGED_SIDS,
    parse_form,
)
from taskrouter_quickstart.security import SignedForm

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


def create_app() -> WSGIApplication:
    validator = RequestValidator(os.environ.get("TWILIO_AUTH_TOKEN", ""))
    logger = logging.getLogger("bench.floor_app")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(ErrorStreamHandler())
    answer_text = ANSWERS["accept"]
    answer = answer_text.encode()
    answered = [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))]
    refused = [("Content-Type", "text/plain"), ("Content-Length", "0")]

    def app(environ: WSGIEnvironment, start_response: StartResponse):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        form = SignedForm(parse_form(environ["wsgi.input"].read(length).decode()))
        host = environ.get("HTTP_HOST") or f"{environ['SERVER_NAME']}:{environ['SERVER_PORT']}"
        url = f"{environ['wsgi.url_scheme']}://{host}{environ['PATH_INFO']}"
        signature = environ.get("HTTP_X_TWILIO_SIGNATURE", "")
        if not compare(validator.compute_signature(url, form), signature):
            start_response("403 Forbidden", refused)
            return [b""]
        # repr() keeps a value with a line break in it on the line.
        args = (*(repr(form.get(name)) for name in LOGGED_SIDS), answer_text)
        here = sys._getframe()
        logger.handle(
            logger.makeRecord(
                logger.name,
                logging.INFO,
                __file__,
                here.f_lineno,
                CALLBACK_LOG_LINE,
                args,
                None,
                "app",
            )
        )
        start_response("200 OK", answered)
        return [answer]

    return app
