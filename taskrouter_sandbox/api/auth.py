"""Every request's credentials: HTTP basic auth, the sandbox's account SID and auth token."""

from __future__ import annotations

import hmac

from flask import Response, request

from taskrouter_sandbox.api.context import current_sandbox
from taskrouter_sandbox.api.errors import ApiError, error_response


def authenticate() -> Response | None:
    sandbox = current_sandbox()
    auth = request.authorization
    if (
        auth is None
        or auth.type != "basic"
        or not hmac.compare_digest((auth.username or "").encode(), sandbox.account_sid.encode())
        or not hmac.compare_digest((auth.password or "").encode(), sandbox.auth_token.encode())
    ):
        return error_response(
            ApiError(
                401,
                20003,
                "Authenticate: use HTTP basic auth with the sandbox's account SID as the "
                "username and its auth token as the password",
                {"WWW-Authenticate": 'Basic realm="TaskRouter sandbox"'},
            )
        )
    return None
