"""Twilio's error shape: ApiError, its JSON body, and the blueprint's error handlers."""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, request
from werkzeug.exceptions import HTTPException

from taskrouter_sandbox.api.context import resource_path
from taskrouter_sandbox.api.rendering import json_response
from taskrouter_sandbox.domain.errors import EngineError, NotFound

# The package's name, as before it was split into modules: log settings may name it.
logger = logging.getLogger("taskrouter_sandbox.api")


class ApiError(Exception):
    """An HTTP answer in Twilio's error shape."""

    def __init__(
        self, status: int, code: int, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_body(status: int, code: int, message: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def error_response(error: ApiError) -> Response:
    return json_response(
        error_body(error.status, error.code, error.message), error.status, error.headers
    )


def not_found() -> ApiError:
    return ApiError(404, 20404, f"The requested resource {resource_path()} was not found")


# -- handlers -----------------------------------------------------------------------------


def api_error(error: ApiError) -> Response:
    return error_response(error)


def engine_error(error: EngineError) -> Response:
    if isinstance(error, NotFound):
        return error_response(not_found())
    return error_response(ApiError(error.status, error.code, error.message))


def http_error(error: HTTPException) -> Response:
    status = error.code or 500
    known = {401: 20003, 404: 20404, 405: 20004}
    code = known.get(status, 20500 if status >= 500 else 20001)
    return error_response(ApiError(status, code, error.description or error.name))


def unexpected(error: Exception) -> Response:
    logger.exception("sandbox: unexpected error answering %s %s", request.method, request.path)
    return error_response(
        ApiError(500, 20500, "Internal Server Error: the sandbox logged the details")
    )
