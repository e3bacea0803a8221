"""Requests without sockets: the twilio library's HttpClient answered by the sandbox's WSGI app,
and callbacks answered by the code under test's WSGI app, both in this process.

Requests are built by `requests` exactly as twilio's own TwilioHttpClient builds them (form
bodies, repeated list parameters, basic auth) and carried by werkzeug's test client, so the
app sees what it would see over HTTP: the same method, path, query, headers and body.
"""

from __future__ import annotations

import asyncio
import io
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from twilio.http import AsyncHttpClient, HttpClient
from twilio.http.http_client import TwilioHttpClient
from twilio.http.request import Request as TwilioRequest
from twilio.http.response import Response
from werkzeug.test import Client

from taskrouter_sandbox.callbacks import HttpAnswer

WSGIApp = Callable[..., Any]
# Called before each request; what it returns is called once the answer is in (the fixture
# waits there for the callbacks the request caused, so the test's next line sees them).
Settler = Callable[[], Callable[[], object]]
# Headers werkzeug sets itself from what it is given (the body, the base URL).
_COMPUTED_HEADERS = frozenset({"content-length", "host"})
_JSON_TYPES = ("application/json", "application/scim+json")


def _open(client: Client, method: str, url: str, headers: Mapping[str, str], body: bytes) -> Any:
    parts = urlsplit(url)
    return client.open(
        parts.path or "/",
        base_url=f"{parts.scheme}://{parts.netloc}",
        query_string=parts.query,
        method=method,
        headers=[(k, v) for k, v in headers.items() if k.lower() not in _COMPUTED_HEADERS],
        data=body,
    )


class WSGIHttpClient(HttpClient):
    """An HttpClient for twilio.rest.Client that hands each request to a WSGI app, settled by
    settle (see Settler) when given."""

    def __init__(
        self,
        app: WSGIApp,
        *,
        settle: Settler | None = None,
        timeout: float | None = None,
    ) -> None:
        super().__init__(logging.getLogger("twilio.http_client"), is_async=False, timeout=timeout)
        self._client = Client(app)
        self._settle = settle

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        kwargs: dict[str, Any] = {
            "method": method.upper(),
            "url": url,
            "params": params,
            "headers": headers,
            "auth": auth,
        }
        if headers and headers.get("Content-Type") in _JSON_TYPES:
            kwargs["json"] = data
        else:
            kwargs["data"] = data
        self._test_only_last_response = None
        self._test_only_last_request = TwilioRequest(**kwargs)
        settled = self._settle() if self._settle is not None else None
        prepared = requests.Request(**kwargs).prepare()
        body = prepared.body or b""
        if isinstance(body, str):
            body = body.encode()
        answer = _open(
            self._client, prepared.method or "GET", prepared.url or url, prepared.headers, body
        )
        response = Response(answer.status_code, answer.get_data(as_text=True), dict(answer.headers))
        self._test_only_last_response = response
        if settled is not None:
            settled()
        return response


class SettlingHttpClient(TwilioHttpClient):
    """twilio's own HttpClient over real HTTP, each request settled by settle (see Settler)."""

    def __init__(self, settle: Settler, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._settle = settle

    def request(self, *args: Any, **kwargs: Any) -> Response:
        settled = self._settle()
        response = super().request(*args, **kwargs)
        settled()
        return response


class AsyncHttpClientAdapter(AsyncHttpClient):
    """twilio's asynchronous HttpClient interface over one of the clients above, each request
    run in a worker thread: for code under test that calls the library's *_async methods.
    The requests, their settling and their answers are the synchronous client's."""

    def __init__(self, client: HttpClient) -> None:
        super().__init__(
            logging.getLogger("twilio.http_client"), is_async=True, timeout=client.timeout
        )
        self._client = client

    async def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        return await asyncio.to_thread(
            self._client.request, method, uri, params, data, headers, auth, timeout, allow_redirects
        )


def origin_of(url: str) -> str:
    """scheme://host[:port] of url, lower-cased, without a default port: how callback URLs
    find the app mounted for them."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"an origin is an absolute http(s) URL, not {url!r}")
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is None or (scheme, port) in (("http", 80), ("https", 443)):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


class CallbackApps:
    """WSGI apps that answer the sandbox's callbacks in this process, each at an origin.

    The sandbox's Dispatcher calls this for every callback URL (its local_transport): a URL at
    a mounted origin goes to that app, signed and timed as over HTTP; any other goes out over
    HTTP as usual.
    """

    def __init__(self) -> None:
        self._apps: dict[str, WSGIApp] = {}
        self._lock = threading.Lock()

    def mount(self, app: WSGIApp, origin: str) -> str:
        """Serve origin's callbacks with app; the normalised origin."""
        if not callable(app):
            raise TypeError("a callback app is a WSGI app (a Flask app, for one)")
        key = origin_of(origin)
        with self._lock:
            self._apps[key] = app
        return key

    def unmount(self, origin: str) -> None:
        with self._lock:
            self._apps.pop(origin_of(origin), None)

    def __call__(self, url: str, headers: Mapping[str, str], body: bytes) -> HttpAnswer | None:
        try:
            key = origin_of(url)
        except ValueError:
            return None
        with self._lock:
            app = self._apps.get(key)
        if app is None:
            return None
        answer = _open(Client(app), "POST", url, headers, body)
        # The request says Accept-Encoding as over HTTP, so the answer may come compressed:
        # urllib3 decodes it here as it does for an answer over HTTP.
        decoded = urllib3.HTTPResponse(
            body=io.BytesIO(answer.get_data()),
            headers=dict(answer.headers),
            status=answer.status_code,
            preload_content=True,
            decode_content=True,
        ).data
        return HttpAnswer(answer.status_code, answer.headers.get("Content-Type"), decoded)
