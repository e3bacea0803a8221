"""The `flask taskrouter` commands: set up the quickstart workspace, point its workflow at a
callback URL, move a worker to another activity and show workers, tasks and reservations.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.base.version import Version
from twilio.http.response import Response

from sandbox.seed import (
    ACTIVITIES,
    ENGLISH_QUEUE,
    SPANISH_QUEUE,
    TASK_QUEUES,
    TASK_RESERVATION_TIMEOUT,
    WORKERS,
    WORKFLOW_NAME,
    WORKSPACE_NAME,
)
from taskrouter import TaskRouter, TaskRouterError, current_taskrouter

T = TypeVar("T")

# TaskRouter's largest page: one request per list for any workspace of quickstart size.
PAGE_SIZE = 1000
ACTIVE_TASK_STATUSES = ("pending", "reserved", "assigned", "wrapping")
CALLBACK_PATH = "/assignment_callback"
# The quickstart's workflow filters: (filter_friendly_name, expression, task queue).
FILTERS = (
    ("Spanish", 'selected_language == "es"', SPANISH_QUEUE),
    ("English", 'selected_language == "en"', ENGLISH_QUEUE),
)
OFFLINE = "Offline"
RESERVATION_ACTIVITY = "Reserved"
ASSIGNMENT_ACTIVITY = "Busy"


class _TaskRouterGroup(AppGroup):
    """A TaskRouterError raised anywhere in a command (such as a SID not configured yet)
    becomes one line and exit status 1, like the failures _call maps."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TaskRouterError as exc:
            raise click.ClickException(exc.message) from None


taskrouter_cli = _TaskRouterGroup(
    "taskrouter",
    help="Set up and drive the TaskRouter workspace this server uses (Twilio or the sandbox).",
)


def init_app(app: Flask) -> None:
    """Register `flask taskrouter ...` on the app."""
    app.cli.add_command(taskrouter_cli)


# -- talking to TaskRouter --------------------------------------------------------------


def _call(action: str, request: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run one REST call; any upstream failure becomes a one-line message and exit status 1."""
    taskrouter = current_taskrouter()
    try:
        # The same mapping of TwilioRestException and network failures the endpoints use.
        with taskrouter._upstream(action):
            try:
                return request(*args, **kwargs)
            except (TwilioRestException, TwilioServiceException):
                raise
            except TwilioException as exc:
                raise _page_failure(exc, action) from exc
    except TaskRouterError as exc:
        raise click.ClickException(_explain(exc, action, taskrouter)) from None
    except TwilioException as exc:
        raise click.ClickException(
            f"TaskRouter at {taskrouter.base_url} answered with something that is not TaskRouter "
            f"JSON while trying to {action}: {exc.args[0] if exc.args else exc}"
        ) from None


def _page_failure(exc: TwilioException, action: str) -> TwilioException:
    """A list page answered with anything but 200 raises a bare TwilioException holding the
    response; the library's own Version.exception reads Twilio's error body out of it."""
    response = exc.args[1] if len(exc.args) > 1 else None
    if isinstance(response, Response):
        return Version.exception("GET", action, response, str(exc.args[0]))
    return exc


def _explain(exc: TaskRouterError, action: str, taskrouter: TaskRouter) -> str:
    code = exc.code
    if isinstance(code, str) and code.startswith("upstream_"):
        # These messages already name TaskRouter's URL and the action.
        text = exc.message
        if current_app.config.get("BACKEND") == "sandbox":
            text += (
                ". The local sandbox is served by this server: start it first with `make run` "
                "(in another terminal), with the same HOST and PORT"
            )
        return text
    if exc.status < 500:
        text = f"TaskRouter refused to {action}: {exc.message} (HTTP {exc.status}"
    else:
        text = f"{exc.message} (while trying to {action}"
    if code is not None:
        text += f", Twilio error {code}"
    if exc.more_info:
        text += f", {exc.more_info}"
    text += ")"
    if exc.status == 401:
        text += (
            ". Check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN "
            "(or TWILIO_API_KEY and TWILIO_API_SECRET)"
        )
    elif exc.status == 404:
        text += (
            f". Check TWILIO_WORKSPACE_SID ({taskrouter.workspace_sid}) and "
            f"TWILIO_WORKFLOW_SID ({taskrouter.workflow_sid})"
        )
    return text


def _list(action: str, resource: Any, **filters: Any) -> list[Any]:
    return _call(action, resource.list, page_size=PAGE_SIZE, **filters)


def _find(records: Iterable[Any], name: str) -> Any | None:
    """The record with this friendly name; TaskRouter treats names case-insensitively."""
    wanted = name.casefold()
    return next((r for r in records if (r.friendly_name or "").casefold() == wanted), None)


def _names(records: Iterable[Any]) -> str:
    return ", ".join(r.friendly_name for r in records) or "none"


def _note(message: str) -> None:
    # Progress goes to stderr so that stdout stays what the command promises (.env lines).
    click.echo(message, err=True)


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
        _note(
            f"note: this server answers assignment callbacks at {CALLBACK_PATH}; "
            f"{url} has the path {parts.path or '/'!r}"
        )
    if current_app.config.get("BACKEND") == "sandbox":
        _note(
            "note: the local sandbox's workflow is pointed back at this server each time the "
            "server starts"
        )
        return
    if parts.hostname in ("localhost", "127.0.0.1", "::1"):
        _note(f"note: Twilio cannot reach {parts.hostname}; use the https URL `ngrok http` prints")


def _name_argument(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not value.strip():
        raise click.BadParameter("must not be empty", ctx, param)
    return value.strip()


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
    found = _list("list workspaces", v1.workspaces, friendly_name=WORKSPACE_NAME)
    workspace = _find(found, WORKSPACE_NAME)
    if workspace is not None:
        _note(f"found   workspace  {workspace.sid}  {workspace.friendly_name}")
        return workspace
    # Single-tasking, as in the quickstart: Alice goes Idle -> Reserved -> Busy.
    workspace = _call(
        "create the workspace",
        v1.workspaces.create,
        friendly_name=WORKSPACE_NAME,
        multi_task_enabled=False,
    )
    _note(f"created workspace  {workspace.sid}  {WORKSPACE_NAME}")
    return workspace


def _ensure_activities(workspace: Any) -> dict[str, str]:
    existing = _list("list activities", workspace.activities)
    activity_sids: dict[str, str] = {}
    for name, available in ACTIVITIES:
        activity = _find(existing, name)
        if activity is None:
            activity = _call(
                f"create activity {name}",
                workspace.activities.create,
                friendly_name=name,
                available=available,
            )
            _note(f"created activity   {activity.sid}  {name}")
        elif bool(activity.available) != available:
            wanted = "available" if available else "unavailable"
            raise click.ClickException(
                f"Activity {activity.friendly_name!r} ({activity.sid}) exists but is not "
                f"{wanted}, as the quickstart needs; TaskRouter cannot change that after "
                "creation: rename or delete it (Twilio Console > TaskRouter > Workspaces > "
                "Activities) and run setup again"
            )
        else:
            _note(f"found   activity   {activity.sid}  {activity.friendly_name}")
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
        _call("update the workspace", v1.workspaces(workspace.sid).update, **changes)
        _note(f"updated workspace  {workspace.sid}  {', '.join(sorted(changes))}")


def _ensure_workers(workspace: Any, activity_sids: dict[str, str]) -> None:
    existing = _list("list workers", workspace.workers)
    for name, attributes in WORKERS:
        worker = _find(existing, name)
        if worker is not None:
            # A worker's attributes are its own (skills a person added): reused as they are.
            _note(f"found   worker     {worker.sid}  {worker.friendly_name}")
            continue
        worker = _call(
            f"create worker {name}",
            workspace.workers.create,
            friendly_name=name,
            attributes=json.dumps(attributes),
            activity_sid=activity_sids[OFFLINE],
        )
        _note(f"created worker     {worker.sid}  {name}")


def _ensure_task_queues(workspace: Any, activity_sids: dict[str, str]) -> dict[str, str]:
    existing = _list("list task queues", workspace.task_queues)
    task_queue_sids: dict[str, str] = {}
    for name, target_workers in TASK_QUEUES:
        wanted = {
            "target_workers": target_workers,
            "reservation_activity_sid": activity_sids[RESERVATION_ACTIVITY],
            "assignment_activity_sid": activity_sids[ASSIGNMENT_ACTIVITY],
        }
        task_queue = _find(existing, name)
        if task_queue is None:
            task_queue = _call(
                f"create task queue {name}",
                workspace.task_queues.create,
                friendly_name=name,
                **wanted,
            )
            _note(f"created task queue {task_queue.sid}  {name}")
        else:
            changes = {k: v for k, v in wanted.items() if getattr(task_queue, k) != v}
            if changes:
                _call(
                    f"update task queue {name}",
                    workspace.task_queues(task_queue.sid).update,
                    **changes,
                )
                _note(f"updated task queue {task_queue.sid}  {', '.join(sorted(changes))}")
            else:
                _note(f"found   task queue {task_queue.sid}  {task_queue.friendly_name}")
        task_queue_sids[name] = task_queue.sid
    return task_queue_sids


def _ensure_workflow(
    workspace: Any, task_queue_sids: dict[str, str], callback_url: str | None
) -> Any:
    configuration = _workflow_configuration(task_queue_sids)
    existing = _list("list workflows", workspace.workflows)
    workflow = _find(existing, WORKFLOW_NAME)
    if workflow is None:
        workflow = _call(
            "create the workflow",
            workspace.workflows.create,
            friendly_name=WORKFLOW_NAME,
            configuration=json.dumps(configuration),
            task_reservation_timeout=TASK_RESERVATION_TIMEOUT,
            assignment_callback_url=callback_url,
        )
        _note(f"created workflow   {workflow.sid}  {WORKFLOW_NAME}")
        return workflow
    changes: dict[str, Any] = {}
    if _parsed(workflow.configuration) != configuration:
        changes["configuration"] = json.dumps(configuration)
    if workflow.task_reservation_timeout != TASK_RESERVATION_TIMEOUT:
        changes["task_reservation_timeout"] = TASK_RESERVATION_TIMEOUT
    if callback_url is not None and workflow.assignment_callback_url != callback_url:
        changes["assignment_callback_url"] = callback_url
    if changes:
        _call("update the workflow", workspace.workflows(workflow.sid).update, **changes)
        _note(f"updated workflow   {workflow.sid}  {', '.join(sorted(changes))}")
    else:
        _note(f"found   workflow   {workflow.sid}  {workflow.friendly_name}")
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
    _note("Put these lines in .env (the server reads them at start):")
    click.echo(f"TWILIO_WORKSPACE_SID={found.sid}")
    click.echo(f"TWILIO_WORKFLOW_SID={workflow.sid}")


# -- callback-url, worker ---------------------------------------------------------------


@taskrouter_cli.command("callback-url")
@click.argument("url", callback=_callback_url)
def callback_url_command(url: str) -> None:
    """Set the configured Workflow's Assignment Callback URL (after ngrok gives a new one)."""
    _warn_about_callback_url(url)
    taskrouter = current_taskrouter()
    workflow = _call(
        f"set the Assignment Callback URL of workflow {taskrouter.workflow_sid}",
        taskrouter.workflow.update,
        assignment_callback_url=url,
    )
    click.echo(
        f"Workflow {workflow.sid} ({workflow.friendly_name}) now calls "
        f"{workflow.assignment_callback_url}"
    )


@taskrouter_cli.command("worker")
@click.argument("name", callback=_name_argument)
@click.argument("activity", callback=_name_argument)
def worker_command(name: str, activity: str) -> None:
    """Move worker NAME to ACTIVITY, both friendly names (e.g. `Alice Idle`)."""
    taskrouter = current_taskrouter()
    workspace = taskrouter.workspace
    workers = _list("list workers", workspace.workers)
    worker = _find(workers, name)
    if worker is None:
        raise click.ClickException(
            f"No worker named {name!r} in workspace {taskrouter.workspace_sid} "
            f"(its workers: {_names(workers)})"
        )
    activities = _list("list activities", workspace.activities)
    chosen = _find(activities, activity)
    if chosen is None:
        raise click.ClickException(
            f"No activity named {activity!r} in workspace {taskrouter.workspace_sid} "
            f"(its activities: {_names(activities)})"
        )
    updated = _call(
        f"move worker {worker.friendly_name} to {chosen.friendly_name}",
        workspace.workers(worker.sid).update,
        activity_sid=chosen.sid,
    )
    click.echo(f"{updated.friendly_name}: {worker.activity_name} -> {updated.activity_name}")


# -- status -----------------------------------------------------------------------------


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    if not rows:
        return ["  (none)"]
    cells = [[str(value) for value in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return [
        "  "
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]


def _age(seconds: int | float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(int(seconds), 0)
    for unit, size, smaller, smaller_size in (("d", 86400, "h", 3600), ("h", 3600, "m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} {seconds % size // smaller_size:02d}{smaller}"
    if seconds >= 60:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds}s"


def _since(moment: datetime | None) -> float | None:
    if moment is None:
        return None
    return (datetime.now(timezone.utc) - moment).total_seconds()


@taskrouter_cli.command("status")
@click.option("--all", "all_tasks", is_flag=True, help="Also list completed and canceled tasks.")
def status_command(all_tasks: bool) -> None:
    """Workers with their activity, tasks and pending reservations, as tables."""
    taskrouter = current_taskrouter()
    workspace = taskrouter.workspace
    workers = _list("list workers", workspace.workers)
    statuses = {} if all_tasks else {"assignment_status": list(ACTIVE_TASK_STATUSES)}
    tasks = _list("list tasks", workspace.tasks, **statuses)
    reservations = []
    for task in tasks:
        # Only a reserved task can have a pending reservation: one request per such task.
        if task.assignment_status == "reserved":
            reservations += _list(
                f"list the reservations of task {task.sid}",
                workspace.tasks(task.sid).reservations,
                reservation_status="pending",
            )

    lines = [f"Workspace {taskrouter.workspace_sid} at {taskrouter.base_url}", "", "Workers"]
    lines += _table(
        ("NAME", "ACTIVITY", "AVAILABLE"),
        [(w.friendly_name, w.activity_name, "yes" if w.available else "no") for w in workers],
    )
    which = "all" if all_tasks else ", ".join(ACTIVE_TASK_STATUSES)
    lines += ["", f"Tasks ({which})"]
    lines += _table(
        ("SID", "STATUS", "QUEUE", "PRIORITY", "AGE"),
        [
            (
                t.sid,
                t.assignment_status,
                t.task_queue_friendly_name or "-",
                t.priority,
                _age(t.age),
            )
            for t in tasks
        ],
    )
    lines += ["", "Pending reservations"]
    lines += _table(
        ("SID", "TASK", "WORKER", "AGE"),
        [(r.sid, r.task_sid, r.worker_name, _age(_since(r.date_created))) for r in reservations],
    )
    click.echo("\n".join(lines))
