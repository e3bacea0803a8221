"""Every request's credentials: HTTP basic auth with the sandbox's account SID and auth token,
or (as Twilio's REST API takes an API key) its API key SID and secret."""

from __future__ import annotations

import hmac

from flask import Response, request

from taskrouter_sandbox.api.context import current_sandbox
from taskrouter_sandbox.api.errors import ApiError, error_response


def _same(given: str | None, expected: str) -> bool:
    return hmac.compare_digest((given or "").encode(), expected.encode())


def authenticate() -> Response | None:
    sandbox = current_sandbox()
    auth = request.authorization
    pairs = (
        (sandbox.account_sid, sandbox.auth_token),
        (sandbox.api_key_sid, sandbox.api_key_secret),
    )
    if (
        auth is None
        or auth.type != "basic"
        or not any(
            _same(auth.username, username) & _same(auth.password, password)
            for username, password in pairs
        )
    ):
        return error_response(
            ApiError(
                401,
                20003,
                "Authenticate: use HTTP basic auth with the sandbox's account SID as the "
                "username and its auth token as the password (or its API key's SID and "
                "secret)",
                {"WWW-Authenticate": 'Basic realm="TaskRouter sandbox"'},
            )
        )
    return None
