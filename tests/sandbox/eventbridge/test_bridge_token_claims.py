"""Tokens signed with the sandbox's own API key whose claims are not an access token's: each is
refused with a 401 naming the problem, never a 500 (twilio's AccessToken always writes exp,
and grants as an object; a token made by hand with any JWT library may not)."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from taskrouter_sandbox.testing import TaskRouterSandbox
from tests.sandbox.eventbridge.test_bridge_calls import assert_error, box, call, worker_url

__all__ = ["box"]


def _signed(box: TaskRouterSandbox, **claims: Any) -> str:
    payload = {"iss": box.sandbox.api_key_sid, "sub": box.account_sid, **claims}
    return jwt.encode(payload, box.sandbox.api_key_secret, headers={"cty": "twilio-fpa;v=1"})


def _grant(box: TaskRouterSandbox) -> dict[str, Any]:
    return {"task_router": {"workspace_sid": box.workspace_sid, "worker_sid": box.workers["Alice"]}}


@pytest.mark.parametrize(
    ("claims", "text"),
    [
        (lambda box: {"grants": _grant(box)}, "exp"),
        (lambda box: {"exp": 4102444800, "grants": "task_router"}, "grant"),
        (lambda box: {"exp": 4102444800, "grants": {"task_router": ["WS", "WK"]}}, "grant"),
    ],
)
def test_a_signed_token_without_an_access_tokens_claims_is_a_401(
    box: TaskRouterSandbox, claims, text: str
) -> None:
    token = _signed(box, **claims(box))
    assert_error(call(box, worker_url(box), token=token), 401, 20101, text)


def test_a_websocket_with_such_a_token_is_refused_before_the_upgrade(
    box: TaskRouterSandbox,
) -> None:
    token = _signed(box, grants=_grant(box))
    response = box.app.test_client().get(
        f"/v1/wschannels?token={token}",
        headers={
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version": "13",
        },
    )
    assert response.status_code == 401
    assert "exp" in response.get_json()["message"]
