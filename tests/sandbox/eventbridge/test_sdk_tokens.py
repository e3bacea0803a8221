"""Access tokens as Twilio's Worker SDK (twilio-taskrouter 2.1.1, unmodified) lives with them:
expiry, renewal, and the tokens the sandbox refuses.

Followed: the SDK's Worker (https://twilio.github.io/twilio-taskrouter.js/Worker.html:
tokenExpired, "the Worker token has expired", and updateToken(newToken), then tokenUpdated;
error, "an error has occurred") and the reconnect page
(https://www.twilio.com/docs/taskrouter/js-sdk-v2/reconnect: the websocket reconnects by itself
while its reconnect flag holds, which token expiry clears until the token is updated). The SDK
emits tokenExpired 5 s before the token's end; the sandbox closes the socket at the end.
Tokens are TaskRouter access tokens (https://www.twilio.com/docs/iam/access-tokens: an API
key's SID as issuer, signed with its secret, a TaskRouter grant naming workspace and worker).
"""

from __future__ import annotations

import json
import time

import pytest
import requests
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import TaskRouterGrant

from taskrouter_sandbox.testing import TaskRouterSandbox
from tests.sandbox.eventbridge.conftest import OpenDesk
from tests.sandbox.eventbridge.desks import create_task, set_activity
from tests.worker_sdk import SdkError

pytestmark = pytest.mark.taskrouter_sandbox(transport="http")

# The SDK emits tokenExpired this long before the token's end (its EXPIRATION_BUFFER).
EXPIRATION_BUFFER = 5
# Its first reconnection attempt comes 0.8 to 1 s after a close: a wait past this long without
# one shows it is not reconnecting.
FIRST_RECONNECT_WITHIN = 1.5


def _token(
    box: TaskRouterSandbox,
    *,
    key_sid: str | None = None,
    secret: str | None = None,
    workspace_sid: str | None = None,
    worker_sid: str | None = None,
    valid_until: int | None = None,
) -> str:
    """A token as any twilio library mints one, each part the sandbox's unless given."""
    sandbox = box.sandbox
    token = AccessToken(
        sandbox.account_sid,
        key_sid or sandbox.api_key_sid,
        secret or sandbox.api_key_secret,
        identity="Alice",
        valid_until=valid_until,
    )
    token.add_grant(
        TaskRouterGrant(
            workspace_sid=workspace_sid or box.workspace_sid,
            worker_sid=worker_sid or box.workers["Alice"],
        )
    )
    return token.to_jwt()


def _worker_of_another_workspace(box: TaskRouterSandbox) -> str:
    other = box.client.taskrouter.v1.workspaces.create(friendly_name="Another workspace")
    return box.client.taskrouter.v1.workspaces(other.sid).workers.create(friendly_name="Eve").sid


def test_the_sdk_hears_of_expiry_and_the_sandbox_then_closes_for_good(
    taskrouter_sandbox: TaskRouterSandbox, desks: OpenDesk
) -> None:
    ttl = 7
    started = time.monotonic()
    desk = desks("Alice", token=taskrouter_sandbox.worker_token("Alice", ttl=ttl))
    desk.wait_for("tokenExpired", timeout=ttl)
    # Before the token's end (the SDK fires it EXPIRATION_BUFFER early; its start-up counts).
    assert time.monotonic() - started < ttl
    assert desk.wait_for("disconnected", timeout=ttl)["reason"] == "Token expired"
    mark = len(desk.events)
    time.sleep(FIRST_RECONNECT_WITHIN)  # real time: the SDK's own backoff, not the sandbox's
    assert desk.names_since(mark) == []
    assert desk.state()["socketState"] == 3  # CLOSED


def test_update_token_on_token_expired_keeps_the_desk_connected(
    taskrouter_sandbox: TaskRouterSandbox, desks: OpenDesk
) -> None:
    """As an app does: a fresh token to updateToken() on every tokenExpired. The SDK keeps its
    socket until the old token's end, then reconnects with the new one. (It re-arms
    tokenExpired with the old token's lifetime, so with a short token it may fire again
    before the reconnection: each gets its fresh token, and the one after the close opens
    the new socket itself.)"""
    box = taskrouter_sandbox
    ttl = 13
    desk = desks("Alice", token=box.worker_token("Alice", ttl=ttl))
    deadline = time.monotonic() + ttl + FIRST_RECONNECT_WITHIN + 5
    renewals = 0
    while True:
        left = deadline - time.monotonic()
        seen = desk.wait_for(("tokenExpired", "ready"), timeout=max(left, 0.1))
        if seen["event"] == "ready":
            break
        desk.command("updateToken", token=box.worker_token("Alice", ttl=3600))
        desk.wait_for("tokenUpdated")
        renewals += 1
    assert renewals >= 1
    assert desk.wait_for("disconnected", timeout=0)["reason"] == "Token expired"
    set_activity(box, "Alice", "Idle")
    task = create_task(box, "es")
    offered = desk.wait_for("reservationCreated")["reservation"]
    assert offered["task"]["sid"] == task.sid
    assert desk.reservation(offered["sid"], "accept")["status"] == "accepted"


# Each case: what the envelope's 401 says, and its code (Twilio's 20104 for an expired token,
# 20101 for an invalid one).
BAD_TOKENS = {
    "malformed": ("the token is malformed", 20101),
    "expired": ("the token has expired", 20104),
    "signed with another secret": ("the token's signature does not match", 20101),
    "of another API key": ("the token is not signed with an API key of this sandbox", 20101),
}


def _bad_token(box: TaskRouterSandbox, case: str) -> str:
    if case == "expired":
        return _token(box, valid_until=int(time.time()) - 60)
    if case == "signed with another secret":
        return _token(box, secret="0" * 32)
    if case == "of another API key":
        return _token(box, key_sid="SK" + "0" * 32, secret="0" * 32)
    return "not-a-token"


@pytest.mark.parametrize("case", BAD_TOKENS)
def test_a_refused_token_is_the_sdks_error_event_and_the_envelopes_401(
    taskrouter_sandbox: TaskRouterSandbox, desks: OpenDesk, case: str
) -> None:
    box = taskrouter_sandbox
    token = _bad_token(box, case)
    desk = desks("Alice", token=token, ready=False)
    error = desk.wait_for("error", timeout=5)["error"]
    assert error["name"] == "GATEWAY_CONNECTION_FAILED"
    assert "ready" not in desk.names_since(0)
    # What the SDK does not show, the envelope's answer says.
    response = requests.post(
        box.event_bridge["ebServer"],
        data=json.dumps({"url": "Workspaces", "method": "GET", "params": {}, "token": token}),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 401
    body = response.json()
    message, code = BAD_TOKENS[case]
    assert (body["status"], body["code"]) == (401, code)
    assert message in body["message"]


def test_a_token_naming_another_workspaces_worker_is_an_error_not_a_hang(
    taskrouter_sandbox: TaskRouterSandbox, desks: OpenDesk
) -> None:
    box = taskrouter_sandbox
    eve = _worker_of_another_workspace(box)
    desk = desks("Alice", token=_token(box, worker_sid=eve), ready=False)
    # The token is the sandbox's own, but its worker is not in the workspace its grant
    # names: the socket is refused before the upgrade (403), the SDK's own error event.
    error = desk.wait_for("error", timeout=10)["error"]
    assert error["name"] == "GATEWAY_CONNECTION_FAILED"
    assert "ready" not in desk.names_since(0)


def test_a_worker_of_another_workspace_connects_with_its_own_workspaces_token(
    taskrouter_sandbox: TaskRouterSandbox, desks: OpenDesk
) -> None:
    box = taskrouter_sandbox
    eve = _worker_of_another_workspace(box)
    workspace_sid = box.client.taskrouter.v1.workspaces.list(friendly_name="Another workspace")[
        0
    ].sid
    token = box.sandbox.worker_token(eve, workspace_sid=workspace_sid)
    worker = desks("Eve", token=token).state()
    assert (worker["sid"], worker["workspaceSid"], worker["name"]) == (eve, workspace_sid, "Eve")


def test_another_workers_resources_are_refused_as_the_sdks_rejected_promise(
    taskrouter_sandbox: TaskRouterSandbox, desks: OpenDesk
) -> None:
    box = taskrouter_sandbox
    desk = desks("Alice")
    bob = f"Workspaces/{box.workspace_sid}/Workers/{box.workers['Bob']}"
    with pytest.raises(SdkError) as refused:
        desk.command(
            "request", method="POST", url=bob, params={"ActivitySid": box.activities["Idle"]}
        )
    assert refused.value.name == "REQUEST_INVALID"
    assert "Request failed with status code 403" in refused.value.message
    assert f"cannot reach another worker's Workers/{box.workers['Bob']}" in refused.value.message
    assert box.workspace.workers(box.workers["Bob"]).fetch().activity_name == "Offline"
