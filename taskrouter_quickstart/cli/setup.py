"""`setup` builds the quickstart workspace; `callback-url` points its workflow at this server."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import click
from flask import current_app

from taskrouter_quickstart.cli.common import call, find, list_all, note, taskrouter_cli
from taskrouter_quickstart.taskrouter import current_taskrouter
from taskrouter_sandbox.seed import (
    ACTIVITIES,
    ENGLISH_QUEUE,
    SPANISH_QUEUE,
    TASK_QUEUES,
    TASK_RESERVATION_TIMEOUT,
    WORKERS,
    WORKFLOW_NAME,
    WORKSPACE_NAME,
)

CALLBACK_PATH = "/assignment_callback"
# The quickstart's workflow filters: (filter_friendly_name, expression, task queue).
FILTERS = (
    ("Spanish", 'selected_language == "es"', SPANISH_QUEUE),
    ("English", 'selected_language == "en"', ENGLISH_QUEUE),
)
OFFLINE = "Offline"
RESERVATION_ACTIVITY = "Reserved"
ASSIGNMENT_ACTIVITY = "Busy"


# -- input ----------------------------------------------------------------------------


def _callback_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    if not value or value != value.strip() or any(c.isspace() for c in value):
        raise click.BadParameter(f"{value!r} must be a URL without spaces", ctx, param)
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise click.BadParameter(
            f"{value!r} must be an http:// or https:// URL with a host, "
            f"such as https://abc123.ngrok-free.app{CALLBACK_PATH}",
            ctx,
            param,
        )
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise click.BadParameter(f"{value!r} has a malformed port", ctx, param) from None
    if parts.fragment:
        raise click.BadParameter(f"{value!r} must not carry a #fragment", ctx, param)
    return value


def _warn_about_callback_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.path.rstrip("/") != CALLBACK_PATH:
        note(
            f"note: this server answers assignment callbacks at {CALLBACK_PATH}; "
            f"{url} has the path {parts.path or '/'!r}"
        )
    if current_app.config.get("BACKEND") == "sandbox":
        note(
            "note: the local sandbox's workflow is pointed back at this server each time the "
            "server starts"
        )
        return
    if parts.hostname in ("localhost", "127.0.0.1", "::1"):
        note(f"note: Twilio cannot reach {parts.hostname}; use the https URL `ngrok http` prints")


# -- setup ----------------------------------------------------------------------------


def _workflow_configuration(task_queue_sids: dict[str, str]) -> dict[str, Any]:
    filters = [
        {
            "filter_friendly_name": name,
            "expression": expression,
            "targets": [{"queue": task_queue_sids[queue]}],
        }
        for name, expression, queue in FILTERS
    ]
    return {"task_routing": {"filters": filters}}


def _parsed(configuration: str | None) -> object:
    try:
        return json.loads(configuration or "")
    except ValueError:
        return None


def _ensure_workspace(v1: Any) -> Any:
    found = list_all("list workspaces", v1.workspaces, friendly_name=WORKSPACE_NAME)
    workspace = find(found, WORKSPACE_NAME)
    if workspace is not None:
        note(f"found   workspace  {workspace.sid}  {workspace.friendly_name}")
        return workspace
    # Single-tasking, as in the quickstart: Alice goes Idle -> Reserved -> Busy.
    workspace = call(
        "create the workspace",
        v1.workspaces.create,
        friendly_name=WORKSPACE_NAME,
        multi_task_enabled=False,
    )
    note(f"created workspace  {workspace.sid}  {WORKSPACE_NAME}")
    return workspace


def _ensure_activities(workspace: Any) -> dict[str, str]:
    existing = list_all("list activities", workspace.activities)
    activity_sids: dict[str, str] = {}
    for name, available in ACTIVITIES:
        activity = find(existing, name)
        if activity is None:
            activity = call(
                f"create activity {name}",
                workspace.activities.create,
                friendly_name=name,
                available=available,
            )
            note(f"created activity   {activity.sid}  {name}")
        elif bool(activity.available) != available:
            wanted = "available" if available else "unavailable"
            raise click.ClickException(
                f"Activity {activity.friendly_name!r} ({activity.sid}) exists but is not "
                f"{wanted}, as the quickstart needs; TaskRouter cannot change that after "
                "creation: rename or delete it (Twilio Console > TaskRouter > Workspaces > "
                "Activities) and run setup again"
            )
        else:
            note(f"found   activity   {activity.sid}  {activity.friendly_name}")
        activity_sids[name] = activity.sid
    return activity_sids


def _settle_workspace(v1: Any, workspace: Any, activity_sids: dict[str, str]) -> None:
    offline = activity_sids[OFFLINE]
    wanted = {
        "default_activity_sid": offline,
        "timeout_activity_sid": offline,
        "multi_task_enabled": False,
    }
    changes = {key: value for key, value in wanted.items() if getattr(workspace, key) != value}
    if changes:
        call("update the workspace", v1.workspaces(workspace.sid).update, **changes)
        note(f"updated workspace  {workspace.sid}  {', '.join(sorted(changes))}")


def _ensure_workers(workspace: Any, activity_sids: dict[str, str]) -> None:
    existing = list_all("list workers", workspace.workers)
    for name, attributes in WORKERS:
        worker = find(existing, name)
        if worker is not None:
            # A worker's attributes are its own (skills a person added): reused as they are.
            note(f"found   worker     {worker.sid}  {worker.friendly_name}")
            continue
        worker = call(
            f"create worker {name}",
            workspace.workers.create,
            friendly_name=name,
            attributes=json.dumps(attributes),
            activity_sid=activity_sids[OFFLINE],
        )
        note(f"created worker     {worker.sid}  {name}")


def _ensure_task_queues(workspace: Any, activity_sids: dict[str, str]) -> dict[str, str]:
    existing = list_all("list task queues", workspace.task_queues)
    task_queue_sids: dict[str, str] = {}
    for name, target_workers in TASK_QUEUES:
        wanted = {
            "target_workers": target_workers,
            "reservation_activity_sid": activity_sids[RESERVATION_ACTIVITY],
            "assignment_activity_sid": activity_sids[ASSIGNMENT_ACTIVITY],
        }
        task_queue = find(existing, name)
        if task_queue is None:
            task_queue = call(
                f"create task queue {name}",
                workspace.task_queues.create,
                friendly_name=name,
                **wanted,
            )
            note(f"created task queue {task_queue.sid}  {name}")
        else:
            changes = {k: v for k, v in wanted.items() if getattr(task_queue, k) != v}
            if changes:
                call(
                    f"update task queue {name}",
                    workspace.task_queues(task_queue.sid).update,
                    **changes,
                )
                note(f"updated task queue {task_queue.sid}  {', '.join(sorted(changes))}")
            else:
                note(f"found   task queue {task_queue.sid}  {task_queue.friendly_name}")
        task_queue_sids[name] = task_queue.sid
    return task_queue_sids


def _ensure_workflow(
    workspace: Any, task_queue_sids: dict[str, str], callback_url: str | None
) -> Any:
    configuration = _workflow_configuration(task_queue_sids)
    existing = list_all("list workflows", workspace.workflows)
    workflow = find(existing, WORKFLOW_NAME)
    if workflow is None:
        workflow = call(
            "create the workflow",
            workspace.workflows.create,
            friendly_name=WORKFLOW_NAME,
            configuration=json.dumps(configuration),
            task_reservation_timeout=TASK_RESERVATION_TIMEOUT,
            assignment_callback_url=callback_url,
        )
        note(f"created workflow   {workflow.sid}  {WORKFLOW_NAME}")
        return workflow
    changes: dict[str, Any] = {}
    if _parsed(workflow.configuration) != configuration:
        changes["configuration"] = json.dumps(configuration)
    if workflow.task_reservation_timeout != TASK_RESERVATION_TIMEOUT:
        changes["task_reservation_timeout"] = TASK_RESERVATION_TIMEOUT
    if callback_url is not None and workflow.assignment_callback_url != callback_url:
        changes["assignment_callback_url"] = callback_url
    if changes:
        call("update the workflow", workspace.workflows(workflow.sid).update, **changes)
        note(f"updated workflow   {workflow.sid}  {', '.join(sorted(changes))}")
    else:
        note(f"found   workflow   {workflow.sid}  {workflow.friendly_name}")
    return workflow


@taskrouter_cli.command("setup")
@click.option(
    "--callback-url",
    callback=_callback_url,
    help="The Workflow's Assignment Callback URL, e.g. https://abc123.ngrok-free.app"
    f"{CALLBACK_PATH}",
)
def setup_command(callback_url: str | None) -> None:
    """Create the quickstart workspace, reusing what exists by friendly name.

    Activities Offline/Idle/Busy/Reserved, workers Alice and Bob, the Spanish and English
    task queues and the workflow "Incoming Customer Care Requests". Missing pieces are
    created; the queues' and workflow's routing settings are put back where they differ;
    workers are reused as they are. Prints TWILIO_WORKSPACE_SID and TWILIO_WORKFLOW_SID as
    .env lines on stdout (progress goes to stderr).
    """
    if callback_url is not None:
        _warn_about_callback_url(callback_url)
    v1 = current_taskrouter().client.taskrouter.v1
    found = _ensure_workspace(v1)
    workspace = v1.workspaces(found.sid)
    activity_sids = _ensure_activities(workspace)
    _settle_workspace(v1, found, activity_sids)
    _ensure_workers(workspace, activity_sids)
    task_queue_sids = _ensure_task_queues(workspace, activity_sids)
    workflow = _ensure_workflow(workspace, task_queue_sids, callback_url)
    note("Put these lines in .env (the server reads them at start):")
    click.echo(f"TWILIO_WORKSPACE_SID={found.sid}")
    click.echo(f"TWILIO_WORKFLOW_SID={workflow.sid}")


# -- callback-url ---------------------------------------------------------------------


@taskrouter_cli.command("callback-url")
@click.argument("url", callback=_callback_url)
def callback_url_command(url: str) -> None:
    """Set the configured Workflow's Assignment Callback URL (after ngrok gives a new one)."""
    _warn_about_callback_url(url)
    taskrouter = current_taskrouter()
    workflow = call(
        f"set the Assignment Callback URL of workflow {taskrouter.workflow_sid}",
        taskrouter.workflow.update,
        assignment_callback_url=url,
    )
    click.echo(
        f"Workflow {workflow.sid} ({workflow.friendly_name}) now calls "
        f"{workflow.assignment_callback_url}"
    )
