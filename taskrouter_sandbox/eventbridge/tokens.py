"""Worker access tokens, as Twilio issues them to the Worker SDK: an AccessToken (JWT, HS256)
with a TaskRouter grant naming the workspace and the worker, signed with an API key's secret.

The sandbox has one API key of its own (Sandbox.api_key_sid and api_key_secret, kept in its
database). Minting and checking are twilio's own (AccessToken, Jwt.from_jwt, which checks the
signature, exp and nbf on the system clock): tokens live in real time, as the SDK's timers do,
whatever clock the sandbox's TaskRouter runs on.
"""

from __future__ import annotations

from dataclasses import dataclass

from twilio.jwt import Jwt, JwtDecodeError
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import TaskRouterGrant

# Twilio's default lifetime of an access token, and the longest it allows (24 hours).
DEFAULT_TTL = 3600
MAX_TTL = 86400


INVALID, EXPIRED = 20101, 20104  # Twilio's errors for an invalid and an expired access token


class TokenError(Exception):
    """A token the event bridge refuses; the message says why, never the token."""

    def __init__(self, message: str, code: int = INVALID) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Grant:
    """What a checked token lets its bearer do: be this worker of this workspace."""

    account_sid: str
    workspace_sid: str
    worker_sid: str
    expires: int  # seconds since the epoch


def mint(
    account_sid: str,
    key_sid: str,
    key_secret: str,
    workspace_sid: str,
    worker_sid: str,
    ttl: int = DEFAULT_TTL,
) -> str:
    """A worker's access token for the Worker SDK."""
    if not 1 <= ttl <= MAX_TTL:
        raise ValueError(f"a token lives 1 to {MAX_TTL} seconds, not {ttl}")
    token = AccessToken(account_sid, key_sid, key_secret, identity=worker_sid, ttl=ttl)
    token.add_grant(TaskRouterGrant(workspace_sid=workspace_sid, worker_sid=worker_sid))
    return token.to_jwt()


def check(token: str | None, account_sid: str, key_sid: str, key_secret: str) -> Grant:
    """The grant of a token signed with this key for this account; TokenError otherwise."""
    if not token:
        raise TokenError("no token: the request must carry the worker's access token")
    try:
        unverified = Jwt.from_jwt(token)
    except JwtDecodeError as error:
        if "expired" in str(error).lower():
            raise TokenError("the token has expired", EXPIRED) from None
        raise TokenError(f"the token is malformed ({error})") from None
    if unverified.issuer != key_sid:
        raise TokenError("the token is not signed with an API key of this sandbox")
    try:
        decoded = Jwt.from_jwt(token, key_secret)
    except JwtDecodeError:
        raise TokenError("the token's signature does not match") from None
    if decoded.subject != account_sid:
        raise TokenError("the token is for another account")
    # Signed with the key but made by hand, a token may lack what AccessToken always writes.
    claims = decoded.payload
    grants = claims.get("grants")
    grant = grants.get("task_router") if isinstance(grants, dict) else None
    if not isinstance(grant, dict):
        grant = {}
    workspace_sid, worker_sid = grant.get("workspace_sid"), grant.get("worker_sid")
    if not isinstance(workspace_sid, str) or not isinstance(worker_sid, str):
        raise TokenError("the token has no TaskRouter grant naming a workspace and a worker")
    expires = claims.get("exp")
    if isinstance(expires, bool) or not isinstance(expires, int | float):
        raise TokenError(f"the token has no expiry (exp): an access token lives 1 to {MAX_TTL} s")
    return Grant(account_sid, workspace_sid, worker_sid, int(expires))
