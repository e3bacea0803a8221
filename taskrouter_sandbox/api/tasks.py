"""A workspace's tasks."""

from __future__ import annotations

from flask import Response, request

from taskrouter_sandbox.api.context import engine, list_url, render
from taskrouter_sandbox.api.params import form, query
from taskrouter_sandbox.api.rendering import created, deleted, fetched, list_body
from taskrouter_sandbox.domain.lifecycle import TASK_STATUSES
from taskrouter_sandbox.domain.versions import etag


def list_tasks(workspace_sid: str) -> Response:
    params = query()
    paging = params.paging()
    result = engine().list_tasks(
        workspace_sid,
        paging,
        priority=params.integer("Priority"),
        assignment_status=params.strings("AssignmentStatus"),
        workflow_sid=params.text("WorkflowSid"),
        workflow_name=params.text("WorkflowName"),
        task_queue_sid=params.text("TaskQueueSid"),
        task_queue_name=params.text("TaskQueueName"),
        evaluate_task_attributes=params.text("EvaluateTaskAttributes"),
        routing_target=params.text("RoutingTarget"),
        ordering=params.text("Ordering"),
        has_addons=params.boolean("HasAddons"),
    )
    renderer = render()
    records = [renderer.task(row, listed=True) for row in result.rows]
    return fetched(list_body("tasks", result, paging, records, list_url()))


def create_task(workspace_sid: str) -> Response:
    params = form()
    row = engine().create_task(
        workspace_sid,
        attributes=params.text("Attributes"),
        workflow_sid=params.text("WorkflowSid"),
        priority=params.integer("Priority"),
        timeout=params.integer("Timeout"),
        task_channel=params.text("TaskChannel"),
        virtual_start_time=params.date("VirtualStartTime"),
        routing_target=params.text("RoutingTarget"),
        ignore_capacity=params.flag("IgnoreCapacity"),
        task_queue_sid=params.text("TaskQueueSid"),
    )
    return created(render().task(row), etag(row["version"]))


def fetch_task(workspace_sid: str, sid: str) -> Response:
    row = engine().get_task(workspace_sid, sid)
    return fetched(render().task(row), etag(row["version"]))


def update_task(workspace_sid: str, sid: str) -> Response:
    params = form()
    row = engine().update_task(
        workspace_sid,
        sid,
        assignment_status=params.choice("AssignmentStatus", TASK_STATUSES),
        reason=params.text("Reason"),
        attributes=params.text("Attributes"),
        priority=params.integer("Priority"),
        task_channel=params.text("TaskChannel"),
        virtual_start_time=params.date("VirtualStartTime"),
        if_match=request.headers.get("If-Match"),
    )
    return fetched(render().task(row), etag(row["version"]))


def delete_task(workspace_sid: str, sid: str) -> Response:
    engine().delete_task(workspace_sid, sid, if_match=request.headers.get("If-Match"))
    return deleted()
