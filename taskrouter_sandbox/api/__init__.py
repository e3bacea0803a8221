"""The sandbox's HTTP face: TaskRouter v1 paths, parameters, JSON shapes, errors and paging.

A Flask blueprint that turns requests as the twilio library sends them into engine calls.
routes.py is the route table (path -> method -> view); the views, one module per resource,
read parameters with params.py, call the Sandbox's engine and answer with rendering.py's
JSON. context.py is how a view finds its Sandbox and URL prefix; errors.py and auth.py
answer everything that is not a success in Twilio's error shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Blueprint
from werkzeug.exceptions import HTTPException

from taskrouter_sandbox.api import errors
from taskrouter_sandbox.api.auth import authenticate
from taskrouter_sandbox.api.context import ApiBlueprint
from taskrouter_sandbox.api.errors import ApiError
from taskrouter_sandbox.api.routes import (
    METHODS,
    ROUTES,
    UNKNOWN_PREFIX_RULE,
    UNKNOWN_RULES,
    unknown,
)
from taskrouter_sandbox.domain.errors import EngineError

if TYPE_CHECKING:
    from taskrouter_sandbox.runtime import Sandbox

__all__ = ["create_blueprint"]


def create_blueprint(sandbox: Sandbox, url_prefix: str = "", name: str | None = None) -> Blueprint:
    """The sandbox's REST API, to be registered at url_prefix ("" or "/sandbox", or another).

    Its name is `name`, or else made from the prefix ("sandbox" for "" and "/sandbox"), so
    two sandboxes under two prefixes can share one app.
    """
    url_prefix = url_prefix.rstrip("/")
    blueprint = ApiBlueprint(sandbox, url_prefix, name)
    blueprint.before_request(authenticate)
    blueprint.register_error_handler(ApiError, errors.api_error)
    blueprint.register_error_handler(EngineError, errors.engine_error)
    blueprint.register_error_handler(HTTPException, errors.http_error)
    blueprint.register_error_handler(Exception, errors.unexpected)

    for route in ROUTES:
        blueprint.add_url_rule(
            route.rule, route.endpoint, route, methods=list(METHODS), strict_slashes=False
        )
    rules = [*UNKNOWN_RULES, *([UNKNOWN_PREFIX_RULE] if url_prefix else [])]
    for rule, endpoint in rules:
        blueprint.add_url_rule(rule, endpoint, unknown, methods=list(METHODS))
    return blueprint
