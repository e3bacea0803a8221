"""The floor of benchmark 1: the least work a signed, logged assignment callback can cost under
the same gunicorn command, whoever writes the handler.

`callback_work` is that work: it reads the form (parsed as Werkzeug parses one, the server's
way), checks X-Twilio-Signature with twilio's compute_signature for the URL it was called at
(one HMAC) and logs the callback's line through logging in Flask's format to stderr, where the
server's callback line goes (its record made as the server makes it, without logger.info's walk
of the stack; not to a request's wsgi.errors, which under gunicorn formats the line again in
gunicorn's own logger). No request limits, no proxy headers, no record for the page, no check
of the SIDs.

Two floors do it and answer the same JSON as the server in accept mode: `create_app`, a plain
WSGI callable with no framework at all, and `create_flask_app`, bare Flask's app (bench/
bare_app.py) with that work in its view: the floor the issue names for a Flask server.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from flask import Flask, Response, request
from flask.logging import default_handler
from twilio.request_validator import RequestValidator, compare

from taskrouter_quickstart.routes.assignment import (
    ANSWERS,
    CALLBACK_LOG_LINE,
    LOGGED_SIDS,
    parse_form,
)
from taskrouter_quickstart.security import SignedForm

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

ANSWER = ANSWERS["accept"]


def callback_work(logger_name: str) -> Callable[[str, str, str], bool]:
    """The work as a function of the URL called, the form body and the signature header:
    whether Twilio signed it, the line logged when it did."""
    validator = RequestValidator(os.environ.get("TWILIO_AUTH_TOKEN", ""))
    logger = logging.getLogger(logger_name)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    # A second app in the same process logs each line once too (whatever else, such as a test
    # runner's capture, hangs on the logger).
    if not any(type(handler) is logging.StreamHandler for handler in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(default_handler.formatter)
        logger.addHandler(handler)

    def signed_and_logged(url: str, body: str, signature: str) -> bool:
        form = SignedForm(parse_form(body))
        if not compare(validator.compute_signature(url, form), signature):
            return False
        # repr() keeps a value with a line break in it on the line.
        args = (*(repr(form.get(name)) for name in LOGGED_SIDS), ANSWER)
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
        return True

    return signed_and_logged


def create_app() -> WSGIApplication:
    work = callback_work("bench.floor_app")
    answer = ANSWER.encode()
    answered = [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))]
    refused = [("Content-Type", "text/plain"), ("Content-Length", "0")]

    def app(environ: WSGIEnvironment, start_response: StartResponse):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length).decode()
        host = environ.get("HTTP_HOST") or f"{environ['SERVER_NAME']}:{environ['SERVER_PORT']}"
        url = f"{environ['wsgi.url_scheme']}://{host}{environ['PATH_INFO']}"
        if not work(url, body, environ.get("HTTP_X_TWILIO_SIGNATURE", "")):
            start_response("403 Forbidden", refused)
            return [b""]
        start_response("200 OK", answered)
        return [answer]

    return app


def create_flask_app() -> Flask:
    app = Flask(__name__)
    work = callback_work("bench.floor_app.flask")

    @app.post("/assignment_callback")
    def assignment_callback():
        # The URL as the floor builds it: request.base_url's IRI round trip costs more than
        # the signature check itself.
        url = f"{request.scheme}://{request.host}{request.path}"
        signature = request.headers.get("X-Twilio-Signature", "")
        if not work(url, request.get_data(as_text=True), signature):
            return Response(status=403)
        return Response(ANSWER, status=200, mimetype="application/json")

    return app
