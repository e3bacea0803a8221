"""A support desk's TaskRouter webhooks: the assignment callback that decides who takes a
ticket, and an event callback that keeps what happened.

Tickets are Tasks with attributes such as {"skill": "billing"}; agents are Workers with
{"skills": ["billing", "refunds"]}. TaskRouter offers a ticket to an agent by calling
/assignment; the desk accepts when the agent has the ticket's skill, rejects (moving the agent
to the activity configured as REJECT_ACTIVITY_SID, if any) when not, and answers {} for a ticket
marked {"manual_review": true}, so that a supervisor decides through the REST API and the
reservation times out if nobody does.

    app = create_app({"TWILIO_AUTH_TOKEN": "..."})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from support_desk.webhooks import events_seen, webhooks

__all__ = ["create_app", "events_seen"]


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The desk's Flask app. config: TWILIO_AUTH_TOKEN (required: it checks TaskRouter's
    signatures), REJECT_ACTIVITY_SID (optional: where a rejecting agent goes)."""
    app = Flask(__name__)
    app.config.update(config or {})
    if not app.config.get("TWILIO_AUTH_TOKEN"):
        raise ValueError("TWILIO_AUTH_TOKEN is required: it checks TaskRouter's signatures")
    # The event callbacks seen since the app started, oldest first (a real desk would store
    # them; a list is enough to show what arrives).
    app.extensions["support_desk_events"] = []
    app.register_blueprint(webhooks)
    return app
