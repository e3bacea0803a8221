"""The standalone server's access log never holds a worker's access token.

The Worker SDK carries its token in the websocket's query string (twilio-taskrouter 2.1.1,
lib/signaling/EventBridgeSignaling.js: `?token=...&closeExistingSessions=...`), and werkzeug's
access log prints each request's path with its query. A token is a credential for up to 24
hours (https://www.twilio.com/docs/iam/access-tokens), as the auth token is, which the
server's log never shows either (tests/sandbox/test_standalone.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode

from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import TaskRouterGrant

from tests.sandbox.test_standalone import standalone
from tests.websocket_client import WebSocketClient


def test_a_workers_token_in_the_websockets_query_stays_out_of_the_access_log(
    tmp_path: Path,
) -> None:
    with standalone(tmp_path) as server:
        env = server.exports
        workspace = server.client().taskrouter.v1.workspaces(env["TWILIO_WORKSPACE_SID"])
        alice = next(w for w in workspace.workers.list() if w.friendly_name == "Alice")
        access = AccessToken(
            env["TWILIO_ACCOUNT_SID"], env["TWILIO_API_KEY"], env["TWILIO_API_SECRET"], ttl=60
        )
        access.add_grant(
            TaskRouterGrant(workspace_sid=env["TWILIO_WORKSPACE_SID"], worker_sid=alice.sid)
        )
        token = access.to_jwt()
        bridge = env["TASKROUTER_BASE_URL"].replace("http", "ws", 1) + "/v1/wschannels"
        ws = WebSocketClient.connect(f"{bridge}?{urlencode({'token': token})}")
        assert json.loads(ws.receive(timeout=10))["event_type"] == "init"
        ws.close()
        status, stderr = server.stop()
    assert status == 0, stderr
    assert "wschannels" in stderr  # the request was logged
    assert token not in stderr, "the worker's access token reached the access log"
