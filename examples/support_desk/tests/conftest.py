"""The desk's TaskRouter set-up, built on the taskrouter_sandbox fixture the sandbox's pytest
plugin provides: the queues, agents and workflow a real desk configures once in its
workspace, created here through the twilio client for every test, with the workflow's
assignment callback and the workspace's event callback pointed at the desk's own app.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask

from support_desk import create_app

# How long an agent has to take an offered ticket, and how long a ticket waits for the
# frontline before it escalates to the specialists (both in seconds).
RESERVATION_TIMEOUT = 30
FRONTLINE_TIMEOUT = 120

AGENTS = {
    # The frontline is offered a ticket in order of seniority (the target's order_by).
    "Ana": {"tier": "frontline", "seniority": 1, "skills": ["billing"]},
    "Ben": {"tier": "frontline", "seniority": 2, "skills": ["technical"]},
    "Sam": {"tier": "specialist", "seniority": 5, "skills": ["billing", "technical", "refunds"]},
}


@dataclass
class Desk:
    """The desk's app and its workspace as the tests drive them."""

    app: Flask
    sandbox: Any  # the taskrouter_sandbox fixture
    workspace: Any  # the twilio client's context for the workspace
    activities: dict[str, str]  # SIDs by friendly name
    queues: dict[str, str]
    agents: dict[str, str]
    workflow_sid: str
    reservation_timeout: int = RESERVATION_TIMEOUT
    frontline_timeout: int = FRONTLINE_TIMEOUT

    def set_activity(self, agent: str, activity: str) -> None:
        self.workspace.workers(self.agents[agent]).update(activity_sid=self.activities[activity])

    def activity_of(self, agent: str) -> str:
        return self.workspace.workers(self.agents[agent]).fetch().activity_name

    def open_ticket(self, **attributes: Any) -> Any:
        """A new ticket (a Task) through the desk's workflow; the task as created."""
        return self.workspace.tasks.create(
            workflow_sid=self.workflow_sid, attributes=json.dumps(attributes)
        )

    def reservations(self, task_sid: str) -> list[Any]:
        """The task's reservations, oldest first."""
        found = self.workspace.tasks(task_sid).reservations.list()
        return sorted(found, key=lambda reservation: reservation.date_created)

    def assignment_callbacks(self) -> list[Any]:
        return [c for c in self.sandbox.callbacks if c.kind == "assignment"]


@pytest.fixture
def desk_config(taskrouter_sandbox: Any) -> dict[str, Any]:
    """The desk app's settings: the account's auth token, as in production."""
    return {"TWILIO_AUTH_TOKEN": taskrouter_sandbox.auth_token}


@pytest.fixture
def desk(taskrouter_sandbox: Any, desk_config: dict[str, Any]) -> Desk:
    app = create_app(desk_config)
    origin = taskrouter_sandbox.serve_callbacks(app, "https://desk.example.com")
    workspace = taskrouter_sandbox.workspace
    workspace.update(event_callback_url=f"{origin}/events")
    activities = {a.friendly_name: a.sid for a in workspace.activities.list()}
    queues = {
        "Frontline": workspace.task_queues.create(
            friendly_name="Frontline", target_workers="tier == 'frontline'"
        ).sid,
        "Specialists": workspace.task_queues.create(
            friendly_name="Specialists", target_workers="tier == 'specialist'"
        ).sid,
    }
    agents = {
        name: workspace.workers.create(friendly_name=name, attributes=json.dumps(attributes)).sid
        for name, attributes in AGENTS.items()
    }
    routing = {
        "task_routing": {
            "filters": [
                {
                    "filter_friendly_name": "Tickets",
                    "expression": "1 == 1",
                    "targets": [
                        {
                            "queue": queues["Frontline"],
                            "timeout": FRONTLINE_TIMEOUT,
                            "order_by": "worker.seniority DESC",
                        },
                        {"queue": queues["Specialists"]},
                    ],
                }
            ],
            "default_filter": {"queue": queues["Specialists"]},
        }
    }
    workflow = workspace.workflows.create(
        friendly_name="Support tickets",
        configuration=json.dumps(routing),
        assignment_callback_url=f"{origin}/assignment",
        task_reservation_timeout=RESERVATION_TIMEOUT,
    )
    return Desk(app, taskrouter_sandbox, workspace, activities, queues, agents, workflow.sid)
