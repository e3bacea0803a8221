"""The second peer of benchmark 1: the assignment callback as Twilio's documentation teaches it
for Flask, what a user would write instead of this server.

Twilio's "Secure your Flask App by Validating Incoming Twilio Requests" guide: a decorator that
builds a RequestValidator from TWILIO_AUTH_TOKEN on each request and validates request.url,
request.form and the X-Twilio-Signature header, answering 403 when they do not match; here the
view it guards also logs the ReservationSid through the app's logger (INFO, Flask's default
handler) and answers the same JSON as this server in accept mode.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Flask, Response, abort, request
from twilio.request_validator import RequestValidator

from taskrouter_quickstart.routes.assignment import ANSWERS


def validated(view: Callable[..., Any]) -> Callable[..., Any]:
    """Refuse (403) a request whose X-Twilio-Signature is not Twilio's for its URL and form."""

    @wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        validator = RequestValidator(os.environ.get("TWILIO_AUTH_TOKEN", ""))
        signature = request.headers.get("X-Twilio-Signature", "")
        if not validator.validate(request.url, request.form, signature):
            abort(403)
        return view(*args, **kwargs)

    return checked


def create_app() -> Flask:
    app = Flask(__name__)
    app.logger.setLevel(logging.INFO)
    answer = ANSWERS["accept"]

    @app.post("/assignment_callback")
    @validated
    def assignment_callback():
        app.logger.info(
            "assignment callback for reservation %s", request.form.get("ReservationSid")
        )
        return Response(answer, status=200, mimetype="application/json")

    return app
