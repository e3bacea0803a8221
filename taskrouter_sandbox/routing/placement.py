"""Placement: a task's walk through its workflow, into the queue of the target it reaches.

The first matching filter, its targets in turn, else the default filter, else the task is
canceled. A target's timeout counts from where the walk reached it (see target deadlines
below); skip_if is evaluated only when no reservation is made as the task enters a target,
and a filter whose targets are all skipped counts as not matched.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from taskrouter_sandbox.clock import from_storage, to_storage
from taskrouter_sandbox.domain import lifecycle
from taskrouter_sandbox.domain.validation import attributes
from taskrouter_sandbox.domain.values import Actor
from taskrouter_sandbox.domain.workflow import (
    Filter,
    Plan,
    Target,
    routing_plan,
    taskrouter_context,
)
from taskrouter_sandbox.routing import known_workers
from taskrouter_sandbox.state import events, reads, transitions
from taskrouter_sandbox.state.operation import Operation

# Target deadlines ("Lifecycle of a Task: Timeout Evaluation": the queue timeout is the sum
# of the timeouts of the targets so far, on the task's age): a target's deadline is its
# timeout after the previous target's deadline when the task moved on by timeout, or after
# the moment it arrived when it came by a skip or at the start of a walk (the task's start
# when created, the moment of an attribute update or re-evaluation).


def workflow_plan(op: Operation, workflow_sid: str | None) -> tuple[dict, Plan] | None:
    """The workflow row and its parsed plan, read once per operation."""
    if workflow_sid is None:
        return None
    cache = op.workflow_plans
    if workflow_sid not in cache:
        workflow = reads.workflow_row(op, workflow_sid)
        cache[workflow_sid] = (
            None if workflow is None else (workflow, routing_plan(workflow["configuration"]))
        )
    return cache[workflow_sid]


def place(op: Operation, workspace_sid: str, task_sid: str) -> None:
    """Start a pending task's walk through its workflow: when created (its timeouts count
    from its start), after an attribute update or on re-evaluation (they count from now)."""
    task = reads.task_row(op, task_sid)
    found = workflow_plan(op, task["workflow_sid"])
    if found is None:
        return
    workflow, plan = found
    first_time = task["routing_date"] is None
    op.tx.update("tasks", task_sid, {"routing_date": op.stamp()})
    start = op.now()
    if first_time:
        start = from_storage(task["virtual_start_time"] or task["date_created"])
        events.record(
            op,
            workspace_sid,
            "workflow.entered",
            "task",
            task_sid,
            f"Task {task_sid} entered Workflow {workflow['friendly_name']}",
            events.task_fields(op, task_sid),
        )
    _match_filter(op, workspace_sid, task_sid, workflow, plan, 0, start, skipped=False)


def _match_filter(
    op: Operation,
    workspace_sid: str,
    task_sid: str,
    workflow: dict[str, Any],
    plan: Plan,
    first: int,
    start: datetime,
    *,
    skipped: bool,
) -> None:
    """The first filter from `first` on that the task matches, else default_filter, else
    cancel; skipped says the task already skipped a filter it matched."""
    task_attributes = attributes(reads.task_row(op, task_sid, view=True)["attributes"])
    for index in range(first, len(plan.filters)):
        if plan.filters[index].expression.evaluate(task_attributes):
            _enter_target(op, workspace_sid, task_sid, workflow, plan, index, 0, start)
            return
    if plan.default_queue is not None:
        op.tx.update("tasks", task_sid, {"filter_index": -1, "target_timeout_at": None})
        enter_queue(op, workspace_sid, task_sid, plan.default_queue, "Default Filter", -1)
        return
    transitions.finish_task(
        op,
        workspace_sid,
        task_sid,
        "canceled",
        lifecycle.SKIPPED_REASON if skipped else lifecycle.NO_FILTER_REASON,
        Actor.workspace(workspace_sid),
    )


def enter_queue(
    op: Operation,
    workspace_sid: str,
    task_sid: str,
    task_queue_sid: str,
    filter_name: str | None,
    target_index: int | None,
) -> None:
    """Put a task in a queue (recording task-queue.entered, and .moved from another one)."""
    tx = op.tx
    task = reads.task_row(op, task_sid)
    stamp = op.stamp()
    values = {
        "task_queue_sid": task_queue_sid,
        "workflow_filter_name": filter_name,
        "target_index": target_index,
        "target_entered_date": stamp,
    }
    if task["task_queue_sid"] == task_queue_sid:
        tx.update("tasks", task_sid, values)
        return
    values["task_queue_entered_date"] = stamp
    queue = reads.task_queue_row(op, task_queue_sid, view=True)
    # The cached task keeps its joined queue name, which moves with it.
    tx.update(
        "tasks", task_sid, values, joined={"task_queue_friendly_name": queue["friendly_name"]}
    )
    fields = events.task_fields(op, task_sid)
    fields["TaskQueueTargetExpression"] = queue["target_workers"]
    if task["task_queue_sid"] is not None:
        fields["TaskQueuePreviousSid"] = task["task_queue_sid"]
        events.record(
            op,
            workspace_sid,
            "task-queue.moved",
            "task",
            task_sid,
            f"Task {task_sid} moved to TaskQueue {fields['TaskQueueName']}",
            fields,
        )
    events.record(
        op,
        workspace_sid,
        "task-queue.entered",
        "task",
        task_sid,
        f"Task {task_sid} entered TaskQueue {fields['TaskQueueName']}",
        fields,
    )


def _target_fields(op: Operation, task_sid: str, item: Filter, target: Target) -> dict[str, Any]:
    """A workflow target's event fields: the task, in the target's queue (target-matched is
    recorded before the task moves there), and the filter and target."""
    queue = reads.task_queue_row(op, target.queue, view=True)
    return {
        **events.task_fields(op, task_sid),
        "TaskQueueSid": target.queue,
        "TaskQueueName": queue["friendly_name"] if queue else None,
        "WorkflowFilterName": item.name,
        "WorkflowFilterExpression": item.source,
        "WorkflowFilterTargetExpression": target.expression.source if target.expression else None,
        "WorkflowFilterTargetQueueSid": target.queue,
    }


def _enter_target(
    op: Operation,
    workspace_sid: str,
    task_sid: str,
    workflow: dict[str, Any],
    plan: Plan,
    filter_index: int,
    target_index: int,
    start: datetime,
) -> None:
    """Enter the filter's target at target_index, its timeout counted from start; a target
    whose deadline has already passed (the task was reserved meanwhile) is passed in turn."""
    item = plan.filters[filter_index]
    now = op.now()
    while target_index < len(item.targets):
        target = item.targets[target_index]
        deadline = None if target.timeout is None else start + timedelta(seconds=target.timeout)
        if deadline is not None and deadline <= now:
            start = deadline
            target_index += 1
            continue
        events.record(
            op,
            workspace_sid,
            "workflow.target-matched",
            "task",
            task_sid,
            f"Task {task_sid} matched filter {item.name or item.source!r} of "
            f"Workflow {workflow['friendly_name']}",
            _target_fields(op, task_sid, item, target),
        )
        values: dict[str, Any] = {
            "filter_index": filter_index,
            "target_timeout_at": None if deadline is None else to_storage(deadline),
        }
        if target.priority is not None:
            # A target's priority wins over the one the task was created with.
            values["priority"] = target.priority
        op.tx.update("tasks", task_sid, values)
        enter_queue(op, workspace_sid, task_sid, target.queue, item.name, target_index)
        known_workers.alert_unreachable(op, workspace_sid, reads.task_row(op, task_sid), target)
        if deadline is not None:
            op.deadline_at(deadline)
        if target.skip_if is not None:
            op.skip_checks.add(task_sid)
        return
    # "If the final step is passed without an accepted Reservation, a WorkflowTimeout event
    # will fire and the Task will be canceled" (Lifecycle of a Task: Workflows and Assignment).
    events.record(
        op,
        workspace_sid,
        "workflow.timeout",
        "task",
        task_sid,
        f"Task {task_sid} timed out of Workflow {workflow['friendly_name']}",
        events.task_fields(op, task_sid),
        Actor.workspace(workspace_sid),
    )
    transitions.finish_task(
        op,
        workspace_sid,
        task_sid,
        "canceled",
        lifecycle.TARGET_TIMEOUT_REASON,
        Actor.workspace(workspace_sid),
    )


def _current_target(
    op: Operation, task: dict[str, Any]
) -> tuple[dict[str, Any], Plan, int, int] | None:
    """The workflow, plan and (filter, target) positions of the target a task sits in."""
    found = workflow_plan(op, task["workflow_sid"])
    filter_index, target_index = task["filter_index"], task["target_index"]
    if found is None or filter_index is None or filter_index < 0 or target_index is None:
        return None
    workflow, plan = found
    if filter_index >= len(plan.filters) or target_index >= len(plan.filters[filter_index].targets):
        return None
    return workflow, plan, filter_index, target_index


def offered(op: Operation, task_sid: str, reserved: bool) -> None:
    """Routing tried to reserve the task: if it has just entered a target with skip_if and
    no reservation was made, skip that target when skip_if holds ("Skipping based on Worker
    availability": evaluated only if no Reservation is created immediately)."""
    if task_sid not in op.skip_checks:
        return
    op.skip_checks.discard(task_sid)
    if reserved:
        return
    task = reads.task_row(op, task_sid)
    if task is None or task["assignment_status"] != "pending":
        return
    current = _current_target(op, task)
    if current is None:
        return
    workflow, plan, filter_index, target_index = current
    item = plan.filters[filter_index]
    target = item.targets[target_index]
    if target.skip_if is None or target.queue != task["task_queue_sid"]:
        return
    if not target.skip_if.evaluate(_skip_context(op, task, target)):
        return
    workspace_sid = task["workspace_sid"]
    events.record(
        op,
        workspace_sid,
        "workflow.skipped",
        "task",
        task_sid,
        f"Task {task_sid} skipped target {target_index} of filter {item.name or item.source!r}"
        f" of Workflow {workflow['friendly_name']}",
        _target_fields(op, task_sid, item, target),
        Actor.workspace(workspace_sid),
    )
    now = op.now()
    if target_index + 1 < len(item.targets):
        _enter_target(
            op, workspace_sid, task_sid, workflow, plan, filter_index, target_index + 1, now
        )
    else:
        # "If a Task skips a filter, it will be evaluated as if the Task didn't match the
        # filter expression": the later filters, then default_filter.
        _match_filter(
            op, workspace_sid, task_sid, workflow, plan, filter_index + 1, now, skipped=True
        )
    op.route_again("task.placed", workspace_sid, task_sid)


def _skip_context(op: Operation, task: dict[str, Any], target: Target) -> dict[str, Any]:
    """What skip_if sees: the task, the time, and `workers.`: how many of the target queue's
    workers are in an available activity, an unavailable one, and in each activity (WAxx)."""
    workers: dict[str, int] = {"available": 0, "unavailable": 0}
    for row in op.tx.all(
        "SELECT sid FROM activities WHERE workspace_sid = ?", (task["workspace_sid"],)
    ):
        workers[row["sid"]] = 0
    # One pass over the queue's members, counted by their activity.
    for row in op.tx.all(
        "SELECT k.activity_sid, a.available, count(*) AS members FROM worker_queues wq"
        " JOIN workers k ON k.sid = wq.worker_sid JOIN activities a ON a.sid = k.activity_sid"
        " WHERE wq.task_queue_sid = ? GROUP BY k.activity_sid",
        (target.queue,),
    ):
        workers[row["activity_sid"]] = row["members"]
        workers["available" if row["available"] else "unavailable"] += row["members"]
    return {
        "task": attributes(task["attributes"]),
        "workers": workers,
        "taskrouter": taskrouter_context(op.now()),
    }


def target_timed_out(op: Operation, task_sid: str) -> None:
    """A pending task whose target timed out moves to the filter's next target, whose
    timeout counts from this one's deadline."""
    task = reads.task_row(op, task_sid)
    if task is None or task["assignment_status"] != "pending":
        return
    deadline = task["target_timeout_at"]
    if deadline is None or deadline > op.stamp():
        return
    found = workflow_plan(op, task["workflow_sid"])
    filter_index = task["filter_index"]
    if found is None or filter_index is None or filter_index < 0:
        op.tx.update("tasks", task_sid, {"target_timeout_at": None})
        return
    workflow, plan = found
    workspace_sid = task["workspace_sid"]
    if filter_index >= len(plan.filters):
        # The workflow changed under the task: place it afresh.
        place(op, workspace_sid, task_sid)
        op.route_again("task.placed", workspace_sid, task_sid)
        return
    op.skip_checks.discard(task_sid)
    _enter_target(
        op,
        workspace_sid,
        task_sid,
        workflow,
        plan,
        filter_index,
        task["target_index"] + 1,
        from_storage(deadline),
    )
    op.route_again("task.placed", workspace_sid, task_sid)
