"""Known-agent routing: a target that names its one worker through a task attribute.

A target with known_worker_sid or known_worker_friendly_name ("task.agent_sid") offers the
task to the worker that attribute names and to nobody else, both ways: a new task looks at
that worker only, and an available worker takes such a task only when it is the one named.
The task's RoutingTarget narrows routing the same way, so both meet in `only_worker`.
"""

# Choices made where TaskRouter's documentation leaves room:
#
# - The known worker must also be a member of the target's queue (Twilio's error 40152,
#   "Worker isn't part of the queue specified in the Workflow target") and match the target's
#   expression, if it has one. A known worker who is busy, unavailable, not a member, or not
#   there at all leaves the task waiting in the target until its timeout moves it on (or for
#   good without one); nothing else is offered it meanwhile.
# - A friendly name is matched without regard to case, as worker friendly names are unique
#   and looked up in a workspace.
# - On entering such a target, a value naming no worker of the workspace (the attribute
#   missing, not a string, or an unknown SID or name) records alert 40155, and a worker who
#   is not a member of the target's queue records alert 40152; the task stays in the target.
# - A task created with a RoutingTarget worker is offered only when that worker is also the
#   known worker; two different workers leave it offered to nobody in that target.

from __future__ import annotations

from typing import Any

from taskrouter_sandbox.domain.validation import attributes
from taskrouter_sandbox.domain.values import (
    ALERT_KNOWN_WORKER_NOT_IN_QUEUE,
    ALERT_KNOWN_WORKER_NOT_IN_WORKSPACE,
    Alert,
)
from taskrouter_sandbox.domain.workflow import KnownWorker, Target
from taskrouter_sandbox.state import alerts
from taskrouter_sandbox.state.operation import Operation

# What only_worker answers when the task may be offered to nobody: no worker has this SID,
# so the candidate query's `worker_sid = ?` finds none and no available worker equals it.
NOBODY = ""
_BY_SID = "SELECT sid FROM workers WHERE workspace_sid = ? AND sid = ?"
_BY_FRIENDLY_NAME = "SELECT sid FROM workers WHERE workspace_sid = ? AND friendly_name_key = ?"


def _named(task: dict[str, Any], known: KnownWorker) -> Any:
    """The value of the task attribute the target names (None when it is missing)."""
    value: Any = attributes(task["attributes"])
    for segment in known.attribute:
        value = value.get(segment) if isinstance(value, dict) else None
    return value if known.attribute else None


def known_worker_sid(op: Operation, task: dict[str, Any], known: KnownWorker) -> str:
    """The SID of the worker the task's attribute names in its workspace, else NOBODY."""
    value = _named(task, known)
    if not isinstance(value, str) or not value:
        return NOBODY
    if known.by == "sid":
        query, key = _BY_SID, value
    else:
        query, key = _BY_FRIENDLY_NAME, value.lower()
    return op.tx.scalar(query, (task["workspace_sid"], key)) or NOBODY


def only_worker(op: Operation, task: dict[str, Any], target: Target | None) -> str | None:
    """The one worker this task may be offered to where it sits (its RoutingTarget, its
    target's known worker), NOBODY when they name no worker or two different ones, or None
    when any member of the queue will do."""
    pinned: str | None = task["routing_target"] or None
    if target is not None and target.known_worker is not None:
        known = known_worker_sid(op, task, target.known_worker)
        if pinned is not None and known != pinned:
            return NOBODY
        pinned = known
    return pinned


def alert_unreachable(
    op: Operation, workspace_sid: str, task: dict[str, Any], target: Target
) -> None:
    """On entering a known-agent target: record Twilio's alert when its worker is not in the
    workspace (40155) or not a member of the target's queue (40152)."""
    known = target.known_worker
    if known is None:
        return
    key = f"known_worker_{known.by}"
    worker_sid = known_worker_sid(op, task, known)
    if worker_sid == NOBODY:
        value = _named(task, known)
        named = "is missing" if value is None else f"is {value!r}"
        message = (
            f"Task {task['sid']}: {key} {known.source} {named}, which names no Worker of "
            f"Workspace {workspace_sid}; the task waits in its target"
        )
        code = ALERT_KNOWN_WORKER_NOT_IN_WORKSPACE
    elif not op.tx.scalar(
        "SELECT 1 FROM worker_queues WHERE task_queue_sid = ? AND worker_sid = ?",
        (target.queue, worker_sid),
    ):
        message = (
            f"Task {task['sid']}: Worker {worker_sid}, named by {key} {known.source}, is not "
            f"a member of TaskQueue {target.queue} of its workflow target; the task waits "
            "in its target"
        )
        code = ALERT_KNOWN_WORKER_NOT_IN_QUEUE
    else:
        return
    alerts.insert(op, workspace_sid, Alert(code, "error", message, None), None)
