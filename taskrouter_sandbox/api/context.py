"""How a module-level view reaches the sandbox it serves, for the request it is answering.

create_blueprint makes an ApiBlueprint, which carries its Sandbox and the URL prefix it is
registered at ("" or "/sandbox", or any other: one app may mount several sandboxes, each
blueprint named after its prefix). Flask knows which blueprint answers a request
(request.blueprint), so every view, hook and error handler finds both from there: no module
globals, and several apps in one process (one per test) each keep their own sandbox.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

from flask import Blueprint, current_app, request
from werkzeug.sansio.utils import get_current_url

from taskrouter_sandbox.api.rendering import Renderer, Urls

if TYPE_CHECKING:
    from taskrouter_sandbox.runtime import Sandbox


def blueprint_name(url_prefix: str) -> str:
    """The blueprint's name for a prefix: "sandbox" at "" and "/sandbox" (the endpoint names
    are sandbox.<rule>, as ever), else one made from the prefix, so that sandboxes mounted
    under different prefixes of one app do not collide."""
    prefix = url_prefix.strip("/")
    if prefix in ("", "sandbox"):
        return "sandbox"
    return "sandbox_" + re.sub(r"[^A-Za-z0-9]+", "_", prefix).strip("_")


class ApiBlueprint(Blueprint):
    """The sandbox's blueprint, knowing its Sandbox and the prefix it is registered at."""

    def __init__(self, sandbox: Sandbox, url_prefix: str, name: str | None = None) -> None:
        super().__init__(name or blueprint_name(url_prefix), "taskrouter_sandbox.api")
        self.sandbox = sandbox
        self.api_prefix = url_prefix.rstrip("/")


def _blueprint() -> ApiBlueprint:
    blueprint = current_app.blueprints[request.blueprint or ""]
    assert isinstance(blueprint, ApiBlueprint), blueprint
    return blueprint


def current_sandbox() -> Sandbox:
    return _blueprint().sandbox


def engine():  # The Sandbox's Engine: its type is inferred, the API does not import it.
    return current_sandbox().engine


def url_prefix() -> str:
    return _blueprint().api_prefix


@functools.lru_cache(maxsize=64)
def _api_base(scheme: str, host: str, root_path: str, prefix: str) -> str:
    # request.url_root, worked out once per origin: Werkzeug builds it anew for every
    # request and decodes it to an IRI, about 40 us of each REST call. The host is the
    # client's to choose: the cache is bounded.
    return get_current_url(scheme, host, root_path).rstrip("/") + prefix


def urls() -> Urls:
    return Urls(_api_base(request.scheme, request.host, request.root_path, url_prefix()))


def render() -> Renderer:
    return Renderer(current_sandbox().account_sid, urls())


def resource_path() -> str:
    """The request's path below the prefix, as the error messages name it."""
    path = request.path
    prefix = url_prefix()
    return path[len(prefix) :] if prefix and path.startswith(prefix) else path


def list_url() -> str:
    return urls().base + resource_path().rstrip("/")
