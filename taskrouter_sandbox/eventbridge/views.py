"""The event bridge's Flask wiring: POST <prefix>/v1/wschannels carries the SDK's calls and a
websocket at the same path carries its events, as at Twilio (ebServer and wsServer).

Point the SDK there with its ebServer and wsServer options (token endpoints: see the README).
A websocket whose token is refused gets an HTTP 401 instead of the upgrade (403 when the
token's worker is not in its workspace), which the SDK reports as its "error" event.
"""

from __future__ import annotations

import contextlib
import socket
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, Response, current_app, json, request
from flask_sock import Sock

from taskrouter_sandbox.api.errors import error_body
from taskrouter_sandbox.domain.errors import EngineError, NotFound
from taskrouter_sandbox.eventbridge import logs
from taskrouter_sandbox.eventbridge import requests as envelope
from taskrouter_sandbox.eventbridge.hub import Hub
from taskrouter_sandbox.eventbridge.resources import Resources
from taskrouter_sandbox.eventbridge.tokens import Grant, TokenError, check

if TYPE_CHECKING:
    from taskrouter_sandbox.runtime import Sandbox

PATH = "/v1/wschannels"
_HUB = "eventbridge"


# A desk served from any origin calls the bridge, as browsers call Twilio's: the calls carry
# their token in the body and no cookie, so any origin may make them.
_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST",
    "Access-Control-Allow-Headers": "apiVersion, clientVersion, If-Match, Content-Type",
    "Access-Control-Max-Age": "600",
}


def _answer(status: int, body: dict[str, Any]) -> Response:
    return Response(
        json.dumps(body),
        status=status,
        mimetype="application/json",
        headers={"Access-Control-Allow-Origin": "*"},
    )


def _preflight() -> Response:
    """A browser's CORS preflight for the SDK's POST (its headers are not simple ones)."""
    return Response(status=204, headers=_CORS)


def _not_a_websocket() -> Response:
    """A plain GET of the websocket's path (a browser tab, curl): say what the path is."""
    message = (
        "This is the Worker SDK's event bridge: its websocket takes a GET with Upgrade: "
        "websocket and ?token=<the worker's access token>, its calls a POST of a JSON envelope"
    )
    return _answer(400, error_body(400, 20001, message))


def _refused(error: TokenError) -> Response:
    return _answer(401, error_body(401, error.code, f"Invalid access token: {error}"))


def _flag(name: str, default: bool) -> bool:
    value = request.args.get(name)
    return default if value is None else value.strip().lower() == "true"


class EventBridge:
    """One sandbox's event bridge in one app: its hub of sockets and its request carrier."""

    def __init__(self, app: Flask, sandbox: Sandbox, url_prefix: str) -> None:
        self.sandbox = sandbox
        self.resources = Resources(sandbox)
        self.hub = Hub(self.resources, sandbox.engine.events_after, sandbox.engine.last_event)
        self.hub.on_gone = self._set_offline
        self.requests = envelope.Requests(app, url_prefix, self.resources, self._credentials)
        sandbox.engine.on_commit(self.hub.committed)
        sandbox.close_hooks.append(self.close)

    def close(self) -> None:
        """Close the sockets and stop hearing of the sandbox's changes."""
        engine = self.sandbox.engine
        if self.hub.committed in engine.operations.commit_listeners:
            engine.remove_commit_listener(self.hub.committed)
        self.hub.close_all()

    def _credentials(self) -> tuple[str, str]:
        return self.sandbox.account_sid, self.sandbox.auth_token

    def grant(self, token: str | None) -> Grant:
        box = self.sandbox
        return check(token, box.account_sid, box.api_key_sid, box.api_key_secret)

    def _set_offline(self, grant: Grant) -> None:
        """setWorkerOfflineIfDisconnected: the workspace's default activity (Offline in a new
        workspace) once the worker's last socket has closed."""
        engine = self.sandbox.engine
        try:
            workspace = engine.get_workspace(grant.workspace_sid)
            offline = workspace["default_activity_sid"]
            if engine.get_worker(grant.workspace_sid, grant.worker_sid)["activity_sid"] != offline:
                engine.update_worker(grant.workspace_sid, grant.worker_sid, activity_sid=offline)
        except NotFound:
            pass  # the worker (or its workspace) was deleted while connected: nothing to set


def _bridge() -> EventBridge:
    bridges: dict[str, EventBridge] = current_app.extensions[_HUB]
    return bridges[request.blueprint or ""]


def _call() -> Response:
    """The SDK's HTTP call: the envelope, carried out by the REST API."""
    bridge = _bridge()
    parsed = envelope.parse(request.get_data())
    if isinstance(parsed, envelope.Answer):
        return _answer(parsed.status, parsed.body)
    try:
        grant = bridge.grant(parsed["token"])
    except TokenError as error:
        return _refused(error)
    # The events this call sets off reach the worker's socket once its answer has been sent
    # (the response's close): Hub.answering says why.
    bridge.hub.answering(grant.worker_sid)
    try:
        answer = bridge.requests.answer(parsed, grant, request.headers.get("If-Match"))
        response = _answer(answer.status, answer.body)
    except BaseException:
        bridge.hub.answered(grant.worker_sid)
        raise
    response.call_on_close(lambda: bridge.hub.answered(grant.worker_sid))
    return response


def _refuse_bad_tokens() -> Response | None:
    """Before the upgrade: a websocket with a token that does not pass gets a 401."""
    if request.endpoint is None or not request.endpoint.endswith(".events"):
        return None
    bridge = _bridge()
    try:
        grant = bridge.grant(request.args.get("token"))
    except TokenError as error:
        return _refused(error)
    try:
        bridge.sandbox.engine.get_worker(grant.workspace_sid, grant.worker_sid)
    except EngineError:
        message = f"the token's worker {grant.worker_sid} is not in workspace {grant.workspace_sid}"
        return _answer(403, error_body(403, 20403, message))
    request.environ["taskrouter.grant"] = grant
    return None


def _events(ws: Any) -> None:
    grant: Grant = request.environ["taskrouter.grant"]
    try:
        _bridge().hub.serve(
            ws,
            grant,
            close_existing=_flag("closeExistingSessions", False),
            offline_if_gone=_flag("setWorkerOfflineIfDisconnected", True),
        )
    finally:
        if ws.mode == "werkzeug":
            _end_sending(request.environ["werkzeug.socket"])


def _end_sending(sock: socket.socket) -> None:
    """Werkzeug's server (flask run, the standalone sandbox, the test fixture) writes an HTTP
    response once the app returns, after a websocket too; a browser reads those bytes after
    the server's close frame as a broken frame ("Invalid frame header", an error in its
    console). With the socket's sending side shut once the websocket is done, that write fails
    and werkzeug takes it for a dropped connection. (gunicorn writes nothing: flask-sock
    stops its response.)"""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)


def bind(app: Flask, sandbox: Sandbox, name: str, url_prefix: str) -> EventBridge:
    """Serve sandbox's event bridge on the blueprint called name: at init_app, and again when
    the testing harness hands a spent app to a new sandbox."""
    bridges: dict[str, EventBridge] = app.extensions.setdefault(_HUB, {})
    old = bridges.get(name)
    if old is not None:
        old.close()
    bridges[name] = bridge = EventBridge(app, sandbox, url_prefix)
    return bridge


def close_sockets(app: Flask) -> None:
    """Close every worker's socket the app's event bridges hold (before its server stops)."""
    for bridge in app.extensions.get(_HUB, {}).values():
        bridge.hub.close_all()


def init_app(app: Flask, sandbox: Sandbox, url_prefix: str, name: str) -> EventBridge:
    """Serve the event bridge of sandbox at url_prefix + /v1/wschannels."""
    logs.install()
    blueprint = Blueprint(name, __name__)
    blueprint.add_url_rule(PATH, "call", _call, methods=["POST"], provide_automatic_options=False)
    blueprint.add_url_rule(PATH, "preflight", _preflight, methods=["OPTIONS"])
    # Below the websocket's rule, which werkzeug matches first for an upgrade only.
    blueprint.add_url_rule(PATH, "not_a_websocket", _not_a_websocket, methods=["GET"])
    blueprint.before_request(_refuse_bad_tokens)
    Sock().route(PATH, bp=blueprint, endpoint="events")(_events)
    app.register_blueprint(blueprint, url_prefix=url_prefix or None)
    return bind(app, sandbox, name, url_prefix)
