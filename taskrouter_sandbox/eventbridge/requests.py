"""The Worker SDK's requests to ebServer: one JSON envelope per call, carried out by the REST API.

The SDK POSTs {"url": "Workspaces/WS../Workers/WK..", "method": "GET" or "POST", "params":
{...}, "token": "<access token>"} with the headers apiVersion (v1, or v2 for its reservation
list), clientVersion and, when version checks are on, If-Match. The sandbox checks the token,
lets the worker reach only what a worker's token may (its own worker, channels and
reservations, the workspace's activities and tasks), and sends the call to its
own REST API in this process, so that every parameter is read, checked and refused exactly
as there. The answer is {"payload": ...} in the SDK's shapes (payloads.py); a refusal keeps
the REST API's status and error body, whose "message" the SDK shows.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from werkzeug.test import Client
from werkzeug.wrappers import Response

from taskrouter_sandbox.api.errors import error_body
from taskrouter_sandbox.domain.errors import EngineError
from taskrouter_sandbox.eventbridge import payloads
from taskrouter_sandbox.eventbridge.resources import ACTIVE_STATUSES, Resources
from taskrouter_sandbox.eventbridge.tokens import Grant

_SID = r"[A-Z]{2}[0-9a-fA-F]{32}"
# Paths below Workspaces/<WS>/ a worker's token may reach, with the methods, and what the
# answer is made of. WK is the token's own worker.
_ALLOWED = (
    (re.compile(rf"Workers/(?P<me>{_SID})"), ("GET", "POST"), "worker"),
    (re.compile(rf"Workers/(?P<me>{_SID})/WorkerChannels"), ("GET",), "channels"),
    (re.compile(rf"Workers/(?P<me>{_SID})/WorkerChannels/{_SID}"), ("GET", "POST"), "channel"),
    (re.compile(rf"Workers/(?P<me>{_SID})/Reservations"), ("GET",), "reservations"),
    (
        re.compile(rf"Workers/(?P<me>{_SID})/Reservations/(?P<reservation>{_SID})"),
        ("GET", "POST"),
        "reservation",
    ),
    (re.compile(r"Activities"), ("GET",), "activities"),
    (re.compile(r"Tasks"), ("POST",), "task"),
    (re.compile(rf"Tasks/{_SID}"), ("GET", "POST"), "task"),
    (
        re.compile(rf"Tasks/{_SID}/Reservations/(?P<reservation>{_SID})"),
        ("GET", "POST"),
        "reservation",
    ),
)
# Parameters of the SDK's list calls that the REST API pages by other means.
_LIST_ONLY = {"PageSize", "AfterSid", "Active", "Page", "PageToken"}
_PAGE_SIZE = 1000


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]


def _error(status: int, code: int, message: str) -> Answer:
    return Answer(status, error_body(status, code, message))


def parse(body: bytes) -> dict[str, Any] | Answer:
    """The envelope, or the 400 that says what is wrong with it."""
    try:
        envelope = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError):
        return _error(400, 20001, "The request body is not JSON: the SDK sends a JSON envelope")
    if not isinstance(envelope, dict):
        return _error(
            400, 20001, "The request body must be a JSON object (url, method, params, token)"
        )
    for name, kind in (("url", str), ("method", str), ("token", str)):
        if not isinstance(envelope.get(name), kind) or not envelope[name]:
            return _error(400, 20001, f"The envelope's {name} is missing or not a string")
    if not isinstance(envelope.setdefault("params", {}), dict):
        return _error(400, 20001, "The envelope's params must be a JSON object")
    return envelope


def form_value(value: Any) -> str:
    """A JSON parameter as the REST API reads it from a form: objects as JSON text, booleans as
    true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


class Requests:
    """Carries the SDK's envelopes out against one sandbox's REST API."""

    def __init__(
        self,
        app: Any,
        api_prefix: str,
        resources: Resources,
        credentials: Callable[[], tuple[str, str]],
    ) -> None:
        """credentials: the sandbox's account SID and auth token now (a reset may renew them)."""
        self._client = Client(app, Response)
        self._api_prefix = api_prefix.rstrip("/")
        self._resources = resources
        self._credentials = credentials

    def answer(self, envelope: dict[str, Any], grant: Grant, if_match: str | None) -> Answer:
        method = envelope["method"].upper()
        url = envelope["url"].strip("/")
        workspace_prefix = f"Workspaces/{grant.workspace_sid}/"
        if ".." in url.split("/") or not url.startswith(workspace_prefix):
            return _error(
                403, 20403, f"A token for workspace {grant.workspace_sid} cannot reach {url}"
            )
        below = url[len(workspace_prefix) :]
        for pattern, methods, kind in _ALLOWED:
            match = pattern.fullmatch(below)
            if match is None:
                continue
            me = match.groupdict().get("me") or self._holder(grant, match)
            if me is not None and me != grant.worker_sid:
                return _error(
                    403,
                    20403,
                    f"A token for worker {grant.worker_sid} cannot reach another worker's {below}",
                )
            if method not in methods:
                return _error(
                    405, 20004, f"Method {method} is not allowed on {below} for a worker's token"
                )
            params = {
                name: form_value(value)
                for name, value in envelope["params"].items()
                if value is not None
            }
            return self._carry_out(method, url, params, kind, grant, match, if_match)
        return _error(403, 20403, f"A worker's token cannot reach {below}")

    def _holder(self, grant: Grant, match: re.Match[str]) -> str | None:
        """The worker of a reservation named through its task (Tasks/WT/Reservations/WR):
        a worker's token answers its own reservations only, by either path. None when there
        is no such reservation (the REST API then answers its 404)."""
        reservation_sid = match.groupdict().get("reservation")
        if reservation_sid is None:
            return None
        try:
            row = self._resources.engine.get_reservation(grant.workspace_sid, reservation_sid)
        except EngineError:
            return None
        return row["worker_sid"]

    # -- through the REST API ---------------------------------------------------------------

    def _call(
        self, method: str, url: str, params: dict[str, str], if_match: str | None
    ) -> Response:
        pair = ":".join(self._credentials()).encode()
        headers = {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        if if_match:
            headers["If-Match"] = if_match
        # The SDK names a worker's channels WorkerChannels; the REST path is Channels.
        path = f"{self._api_prefix}/v1/{url.replace('/WorkerChannels', '/Channels')}"
        if method == "GET":
            return self._client.get(path, query_string=params, headers=headers)
        return self._client.post(path, data=params, headers=headers)

    def _carry_out(
        self,
        method: str,
        url: str,
        params: dict[str, str],
        kind: str,
        grant: Grant,
        match: re.Match[str],
        if_match: str | None,
    ) -> Answer:
        if kind in ("channels", "activities", "reservations"):
            return self._list(url, params, kind, grant)
        response = self._call(method, url, params, if_match)
        body = response.get_json(silent=True) or {}
        if response.status_code >= 400:
            return Answer(response.status_code, body)
        version = payloads.version_of(response.headers.get("ETag"))
        if kind == "worker":
            payload = payloads.worker(body, version)
        elif kind == "channel":
            payload = payloads.channel(body)
        elif kind == "task":
            payload = payloads.task(body, version)
        else:
            payload = self._resources.reservation(grant.workspace_sid, match["reservation"])
        return Answer(response.status_code, {"payload": payload})

    def _list(self, url: str, params: dict[str, str], kind: str, grant: Grant) -> Answer:
        """Every page at once (the SDK then sees no after_sid): it loads whole lists anyway."""
        query = {k: v for k, v in params.items() if k not in _LIST_ONLY}
        query["PageSize"] = str(_PAGE_SIZE)
        items: list[dict[str, Any]] = []
        while True:
            response = self._call("GET", url, query, None)
            body = response.get_json(silent=True) or {}
            if response.status_code >= 400:
                return Answer(response.status_code, body)
            key = body.get("meta", {}).get("key")
            items += body.get(key, []) if key else []
            next_url = body.get("meta", {}).get("next_page_url")
            if not next_url:
                break
            query = {k: v[0] for k, v in parse_qs(urlsplit(next_url).query).items()}
        if kind == "channels":
            contents = [payloads.channel(item) for item in items]
        elif kind == "activities":
            contents = [payloads.activity(item) for item in items]
        else:
            contents = [
                self._resources.reservation(grant.workspace_sid, item["sid"])
                for item in items
                if item["reservation_status"] in ACTIVE_STATUSES
            ]
        return Answer(200, {"payload": {"contents": contents, "after_sid": None}})
