"""What the event bridge's tests do over REST around the SDK's desks, on the quickstart's
workspace."""

from __future__ import annotations

import json
from typing import Any

from taskrouter_sandbox.testing import TaskRouterSandbox


def set_activity(box: TaskRouterSandbox, worker: str, activity: str) -> Any:
    """Move a worker over REST, as a supervisor or the server side would."""
    return box.workspace.workers(box.workers[worker]).update(activity_sid=box.activities[activity])


def create_task(box: TaskRouterSandbox, language: str) -> Any:
    """A task of the quickstart's workflow: "es" goes to Alice, "en" to Alice or Bob."""
    return box.workspace.tasks.create(
        workflow_sid=box.workflow_sid, attributes=json.dumps({"selected_language": language})
    )


def activity_of(box: TaskRouterSandbox, worker: str) -> str:
    """The worker's activity name, as REST reports it."""
    return box.workspace.workers(box.workers[worker]).fetch().activity_name
