"""Placement: a task's walk through its workflow, into the queue of the target it reaches.

First matching filter, its first target still open (not timed out, not skipped), else the
default filter, else the task is canceled; a target that times out moves the task on.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sandbox.clock import from_storage, to_storage
from sandbox.domain import lifecycle
from sandbox.domain.validation import attributes
from sandbox.domain.values import Actor
from sandbox.domain.workflow import Plan, Target, routing_plan, taskrouter_context
from sandbox.routing import known_workers
from sandbox.state import events, reads, transitions
from sandbox.state.operation import Operation


def workflow_plan(op: Operation, workflow_sid: str | None) -> tuple[dict, Plan] | None:
    """The workflow row and its parsed plan, read once per operation."""
    if workflow_sid is None:
        return None
    cache = op.workflow_plans
    if workflow_sid not in cache:
        workflow = op.tx.one(
            "SELECT sid, friendly_name, configuration FROM workflows WHERE sid = ?",
            (workflow_sid,),
        )
        cache[workflow_sid] = (
            None if workflow is None else (workflow, routing_plan(workflow["configuration"]))
        )
    return cache[workflow_sid]


def place(op: Operation, workspace_sid: str, task_sid: str) -> None:
    """Run a pending task through its workflow: first matching filter, its first target
    still open (not timed out, not skipped), else default_filter, else cancel."""
    task = reads.task_row(op, task_sid)
    found = workflow_plan(op, task["workflow_sid"])
    if found is None:
        return
    workflow, plan = found
    first_time = task["routing_date"] is None
    op.tx.update("tasks", task_sid, {"routing_date": op.stamp()})
    if first_time:
        events.record(
            op,
            workspace_sid,
            "workflow.entered",
            "task",
            task_sid,
            f"Task {task_sid} entered Workflow {workflow['friendly_name']}",
            events.task_fields(op, task_sid),
        )
    task_attributes = attributes(task["attributes"])
    for index, item in enumerate(plan.filters):
        if item.expression.evaluate(task_attributes):
            _enter_target(op, workspace_sid, task_sid, workflow, plan, index, 0)
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
        lifecycle.NO_FILTER_REASON,
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
    tx.update("tasks", task_sid, values)
    fields = events.task_fields(op, task_sid)
    queue = tx.one("SELECT target_workers FROM task_queues WHERE sid = ?", (task_queue_sid,))
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


def _enter_target(
    op: Operation,
    workspace_sid: str,
    task_sid: str,
    workflow: dict[str, Any],
    plan: Plan,
    filter_index: int,
    target_index: int,
) -> None:
    item = plan.filters[filter_index]
    task = reads.with_age(op, reads.task_row(op, task_sid))
    start = from_storage(task["virtual_start_time"] or task["date_created"])
    skipped = False
    while target_index < len(item.targets):
        target = item.targets[target_index]
        if target.timeout is not None and task["age"] >= target.timeout:
            target_index += 1
            continue
        if target.skip_if is not None and _skip(op, task, target):
            skipped = True
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
            {
                **events.task_fields(op, task_sid),
                "WorkflowFilterName": item.name,
                "WorkflowFilterExpression": item.source,
                "WorkflowFilterTargetExpression": target.expression.source
                if target.expression
                else None,
                "WorkflowFilterTargetQueueSid": target.queue,
            },
        )
        values: dict[str, Any] = {
            "filter_index": filter_index,
            "target_timeout_at": None
            if target.timeout is None
            else to_storage(start + timedelta(seconds=target.timeout)),
        }
        if target.priority is not None:
            # A target's priority wins over the one the task was created with.
            values["priority"] = target.priority
        op.tx.update("tasks", task_sid, values)
        enter_queue(op, workspace_sid, task_sid, target.queue, item.name, target_index)
        known_workers.alert_unreachable(op, workspace_sid, task, target)
        if target.timeout is not None:
            op.deadline_at(start + timedelta(seconds=target.timeout))
        return
    events.record(
        op,
        workspace_sid,
        "workflow.timeout",
        "task",
        task_sid,
        f"Task {task_sid} left Workflow {workflow['friendly_name']}: no target left",
        events.task_fields(op, task_sid),
        Actor.workspace(workspace_sid),
    )
    transitions.finish_task(
        op,
        workspace_sid,
        task_sid,
        "canceled",
        lifecycle.SKIPPED_REASON if skipped else lifecycle.TARGET_TIMEOUT_REASON,
        Actor.workspace(workspace_sid),
    )


def _skip(op: Operation, task: dict[str, Any], target: Target) -> bool:
    available = op.tx.scalar(
        "SELECT count(*) FROM worker_queues WHERE task_queue_sid = ? AND available = 1",
        (target.queue,),
    )
    context = {
        "task": attributes(task["attributes"]),
        "workers": {"available": available},
        "taskrouter": taskrouter_context(op.now()),
    }
    return target.skip_if.evaluate(context)


def target_timed_out(op: Operation, task_sid: str) -> None:
    """A pending task whose target timed out moves to the workflow's next target."""
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
    if task["target_index"] + 1 < len(plan.filters[filter_index].targets):
        events.record(
            op,
            workspace_sid,
            "workflow.timeout",
            "task",
            task_sid,
            f"Task {task_sid} timed out of target {task['target_index']} of Workflow "
            f"{workflow['friendly_name']}",
            events.task_fields(op, task_sid),
            Actor.workspace(workspace_sid),
        )
    _enter_target(
        op, workspace_sid, task_sid, workflow, plan, filter_index, task["target_index"] + 1
    )
    op.route_again("task.placed", workspace_sid, task_sid)
