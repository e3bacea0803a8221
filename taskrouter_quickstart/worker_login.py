"""What an agent's desk needs to log in as a worker with Twilio's Worker SDK (twilio-taskrouter):
an access token for the worker and the event bridge to connect to (the SDK's ebServer and
wsServer options).

Against a Twilio account the token is signed with TWILIO_API_KEY and TWILIO_API_SECRET (Twilio
signs access tokens with API keys only) and the event bridge is Twilio's own, or the one beside
TASKROUTER_BASE_URL when that names another TaskRouter (a standalone sandbox, whose export lines
give the key). Against the sandbox this server serves it is that sandbox's key and its bridge at
/sandbox/v1/wschannels on this server.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from taskrouter_quickstart.config import DEFAULT_TASKROUTER_BASE_URL, ConfigError
from taskrouter_sandbox.eventbridge import tokens
from taskrouter_sandbox.eventbridge.tokens import DEFAULT_TTL, MAX_TTL
from taskrouter_sandbox.eventbridge.views import PATH as EVENT_BRIDGE

__all__ = ["DEFAULT_TTL", "MAX_TTL", "worker_login"]

# Twilio's event bridge, where the SDK connects when given no ebServer and wsServer.
TWILIO_EVENT_BRIDGE = "https://event-bridge.twilio.com" + EVENT_BRIDGE


def worker_login(
    app: Flask, worker_sid: str, base_url: str, ttl: int = DEFAULT_TTL
) -> dict[str, Any]:
    """{"token", "ebServer", "wsServer"} for worker_sid of the configured workspace; base_url:
    this server's address as the desk reaches it (for the sandbox's bridge). ValueError for
    a ttl outside 1 to MAX_TTL seconds."""
    settings = app.config
    workspace_sid = str(settings["TWILIO_WORKSPACE_SID"])
    if settings["BACKEND"] == "sandbox":
        sandbox = app.extensions["sandbox"]
        token = sandbox.worker_token(worker_sid, workspace_sid=workspace_sid, ttl=ttl)
        bridge = base_url.rstrip("/") + "/sandbox" + EVENT_BRIDGE
    else:
        key, secret = settings.get("TWILIO_API_KEY"), settings.get("TWILIO_API_SECRET")
        if not key or not secret:
            raise ConfigError(
                "TWILIO_API_KEY and TWILIO_API_SECRET are needed for a worker's access token: "
                "Twilio signs access tokens with an API key (Twilio Console > Account > API "
                "keys & tokens)"
            )
        account_sid = str(settings["TWILIO_ACCOUNT_SID"])
        token = tokens.mint(account_sid, str(key), str(secret), workspace_sid, worker_sid, ttl)
        api = str(settings["TASKROUTER_BASE_URL"]).rstrip("/")
        bridge = TWILIO_EVENT_BRIDGE if api == DEFAULT_TASKROUTER_BASE_URL else api + EVENT_BRIDGE
    return {
        "token": token,
        "ebServer": bridge,
        "wsServer": "ws" + bridge.removeprefix("http"),
        "workerSid": worker_sid,
        "workspaceSid": workspace_sid,
    }
