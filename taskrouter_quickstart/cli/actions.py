"""The quickstart's steps from the command line: `create-task`, `worker`, `accept`, `reject` and
`complete`, and `token` (an agent's login for Twilio's Worker SDK). Each finds the only SID it
needs when none is given, and lists the choices when there are several.
"""

from __future__ import annotations

import json
from typing import Any

import click
from flask import current_app

from taskrouter_quickstart import config
from taskrouter_quickstart.cli.common import (
    ACTIVE_TASK_STATUSES,
    COMMAND,
    RESERVATION_HEADERS,
    age,
    call,
    call_taskrouter,
    find,
    list_all,
    name_argument,
    names,
    note,
    pending_reservations,
    reservation_rows,
    sid_argument,
    table,
    taskrouter_cli,
)
from taskrouter_quickstart.config import ConfigError
from taskrouter_quickstart.routes import ApiError, check_whole_number
from taskrouter_quickstart.routes import tasks as task_endpoint
from taskrouter_quickstart.routes.console import MAX_REASON_LENGTH, TASK_OUTCOMES
from taskrouter_quickstart.taskrouter import current_taskrouter
from taskrouter_quickstart.worker_login import DEFAULT_TTL, MAX_TTL, worker_login

# /create_task's parameter names and the options that carry them here.
TASK_OPTIONS = {
    "selected_language": "--language",
    "Attributes": "--attributes",
    "Priority": "--priority",
    "Timeout": "--timeout",
}
WORKING_STATUSES = ("assigned", "wrapping")


def _named(kind: str, plural: str, resource: Any, workspace_sid: str, name: str) -> Any:
    """The worker or activity with this friendly name, or an error listing the ones there are."""
    records = list_all(f"list {plural}", resource)
    chosen = find(records, name)
    if chosen is None:
        raise click.ClickException(
            f"No {kind} named {name!r} in workspace {workspace_sid} "
            f"(its {plural}: {names(records)})"
        )
    return chosen


def _activity(workspace: Any, workspace_sid: str, name: str) -> Any:
    return _named("activity", "activities", workspace.activities, workspace_sid, name)


def _details(**fields: object) -> list[str]:
    width = max(len(name) for name in fields)
    return [f"  {name.ljust(width)}  {value}" for name, value in fields.items()]


# -- worker -----------------------------------------------------------------------------


@taskrouter_cli.command("worker")
@click.argument("name", callback=name_argument)
@click.argument("activity", callback=name_argument)
def worker_command(name: str, activity: str) -> None:
    """Move worker NAME to ACTIVITY, both friendly names (e.g. `Alice Idle`)."""
    taskrouter = current_taskrouter()
    workspace = taskrouter.workspace
    worker = _named("worker", "workers", workspace.workers, taskrouter.workspace_sid, name)
    chosen = _activity(workspace, taskrouter.workspace_sid, activity)
    updated = call(
        f"move worker {worker.friendly_name} to {chosen.friendly_name}",
        workspace.workers(worker.sid).update,
        activity_sid=chosen.sid,
    )
    click.echo(f"{updated.friendly_name}: {worker.activity_name} -> {updated.activity_name}")


# -- create-task ------------------------------------------------------------------------


def _task_parameters(
    language: str | None, attributes: str | None, priority: str | None, timeout: str | None
) -> tuple[dict[str, object], int | None, int | None]:
    """Check the options with /create_task's own checks, so that the command and the endpoint
    accept exactly the same input; a refusal names the option instead of the parameter."""
    try:
        checked = task_endpoint.task_attributes(language, attributes)
        numbers = [
            None if value is None else check_whole_number(name, value, low, high)
            for name, value, low, high in (
                ("Priority", priority, 0, task_endpoint.MAX_PRIORITY),
                ("Timeout", timeout, 1, task_endpoint.MAX_TASK_TIMEOUT),
            )
        ]
    except ApiError as exc:
        for parameter, option in TASK_OPTIONS.items():
            if exc.message.startswith(f"{parameter} "):
                problem = exc.message.removeprefix(f"{parameter} ")
                raise click.BadParameter(problem, param_hint=f"'{option}'") from None
        raise click.UsageError(exc.message) from None
    return checked, numbers[0], numbers[1]


@taskrouter_cli.command("create-task")
@click.option("--language", metavar="CODE", help='The task\'s selected_language (default "es").')
@click.option(
    "--attributes",
    metavar="JSON",
    help='The task\'s attributes, a JSON object such as \'{"selected_language": "en"}\'.',
)
@click.option("--priority", metavar="N", help="0 to 2147483647 (TaskRouter's default: 0).")
@click.option("--timeout", metavar="S", help="Seconds the task may live, 1 to 1209600.")
def create_task_command(
    language: str | None, attributes: str | None, priority: str | None, timeout: str | None
) -> None:
    """Create a task on the configured workflow, as /create_task does.

    The default task is {"selected_language": "es"}, which the quickstart routes to Alice.
    The first line of stdout is the task's SID alone, for scripts:
    TASK=$(flask --app app taskrouter create-task | head -n 1). Its status and queue follow.
    """
    if language is not None and attributes is not None:
        raise click.UsageError(
            "--language and --attributes cannot be used together: put "
            '"selected_language" inside --attributes'
        )
    checked_attributes, checked_priority, checked_timeout = _task_parameters(
        language, attributes, priority, timeout
    )
    taskrouter = current_taskrouter()
    task = call_taskrouter(
        "create the task",
        taskrouter.create_task,
        json.dumps(checked_attributes, separators=(",", ":")),
        priority=checked_priority,
        timeout=checked_timeout,
    )
    click.echo(task.sid)
    click.echo(
        "\n".join(
            _details(
                status=task.assignment_status,
                queue=task.task_queue_friendly_name or "-",
                attributes=task.attributes,
            )
        )
    )
    if task.assignment_status == "pending":
        note(
            "note: the task waits in its queue until a worker who can take it is available, "
            f"e.g. `{COMMAND} worker Alice Idle`"
        )
    elif task.assignment_status == "canceled":
        # No filter of the workflow took it (e.g. a language no queue serves).
        note(f"note: TaskRouter canceled the task at once: {task.reason or 'no reason given'}")


# -- accept, reject ---------------------------------------------------------------------


def _no_reservation(workspace_sid: str, tasks: list[Any]) -> str:
    """Why no reservation is pending, from the workspace's active tasks."""
    text = f"No reservation is pending in workspace {workspace_sid}: "
    waiting = [t for t in tasks if t.assignment_status == "pending"]
    working = [t for t in tasks if t.assignment_status in WORKING_STATUSES]
    if waiting:
        queued = ", ".join(f"{t.sid} in {t.task_queue_friendly_name or '-'}" for t in waiting)
        return (
            text + f"no worker is available for the waiting tasks ({queued}); make one "
            f"available, e.g. `{COMMAND} worker Alice Idle`"
        )
    if working:
        return (
            text + f"task {working[0].sid} is already {working[0].assignment_status} (its "
            "reservation was accepted, or the Assignment Callback answered accept); finish it "
            f"with `{COMMAND} complete`"
        )
    return text + f"no task is waiting; create one with `{COMMAND} create-task`"


def _only_pending_reservation(workspace: Any, workspace_sid: str, verb: str) -> Any:
    # The tasks that are not pending reservations too, to say why there are none.
    tasks = list_all("list tasks", workspace.tasks, assignment_status=list(ACTIVE_TASK_STATUSES))
    reservations = pending_reservations(workspace, tasks)
    if not reservations:
        raise click.ClickException(_no_reservation(workspace_sid, tasks))
    if len(reservations) > 1:
        lines = [
            f"{len(reservations)} reservations are pending in workspace {workspace_sid}: name "
            f"the one to {verb}, e.g. `{COMMAND} {verb} {reservations[0].sid}`",
            *table(RESERVATION_HEADERS, reservation_rows(reservations)),
        ]
        raise click.ClickException("\n".join(lines))
    return reservations[0]


def _reservation(workspace: Any, workspace_sid: str, reservation_sid: str) -> Any:
    """Any reservation of the workspace by SID, pending or not: TaskRouter's REST reaches a
    reservation only under its task or its worker, so each worker's list is searched."""
    workers = list_all("list workers", workspace.workers)
    for worker in workers:
        reservations = list_all(
            f"list the reservations of worker {worker.friendly_name}",
            workspace.workers(worker.sid).reservations,
        )
        found = next((r for r in reservations if r.sid == reservation_sid), None)
        if found is not None:
            return found
    raise click.ClickException(
        f"No reservation {reservation_sid} in workspace {workspace_sid} (none of its workers "
        f"{names(workers)} has it); `{COMMAND} status` lists the pending ones"
    )


def _answer_reservation(reservation_sid: str | None, verb: str, activity: str | None) -> None:
    taskrouter = current_taskrouter()
    workspace = taskrouter.workspace
    workspace_sid = taskrouter.workspace_sid
    activity_sid = None
    if activity is not None:
        chosen = _activity(workspace, workspace_sid, activity)
        activity, activity_sid = chosen.friendly_name, chosen.sid
    if reservation_sid is None:
        reservation = _only_pending_reservation(workspace, workspace_sid, verb)
    else:
        reservation = _reservation(workspace, workspace_sid, reservation_sid)
    status = "accepted" if verb == "accept" else "rejected"
    answered = call_taskrouter(
        f"{verb} reservation {reservation.sid}",
        taskrouter.update_reservation,
        reservation.task_sid,
        reservation.sid,
        status,
        worker_activity_sid=activity_sid,
    )
    worker = answered.worker_name or reservation.worker_name
    if activity is not None:
        worker += f", moved to {activity}"
    click.echo(f"Reservation {answered.sid} {answered.reservation_status}")
    click.echo("\n".join(_details(task=answered.task_sid, worker=worker)))


@taskrouter_cli.command("accept")
@click.argument("reservation", required=False, callback=sid_argument("WR"))
def accept_command(reservation: str | None) -> None:
    """Accept RESERVATION (WR...), by default the only pending reservation of the workspace.

    The task is then assigned to the worker. Prints the reservation's status, the task's SID
    and the worker's name.
    """
    _answer_reservation(reservation, "accept", None)


@taskrouter_cli.command("reject")
@click.argument("reservation", required=False, callback=sid_argument("WR"))
@click.option(
    "--activity",
    metavar="NAME",
    callback=name_argument,
    help="Move the worker to this activity (e.g. Offline) as the reservation is rejected.",
)
def reject_command(reservation: str | None, activity: str | None) -> None:
    """Reject RESERVATION (WR...), by default the only pending reservation of the workspace.

    The task goes back to its queue for another worker.
    """
    _answer_reservation(reservation, "reject", activity)


# -- complete ---------------------------------------------------------------------------


def _reason(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    if value is None:
        return TASK_OUTCOMES["completed"]
    if not value.strip():
        raise click.BadParameter("must not be empty", ctx, param)
    if len(value) > MAX_REASON_LENGTH:
        raise click.BadParameter(f"must be at most {MAX_REASON_LENGTH} characters", ctx, param)
    return value


def _no_working_task(workspace_sid: str, tasks: list[Any]) -> str:
    text = f"No task is assigned or wrapping in workspace {workspace_sid}: "
    reserved = [t for t in tasks if t.assignment_status == "reserved"]
    if reserved:
        return (
            text + f"task {reserved[0].sid} is reserved; accept its reservation first with "
            f"`{COMMAND} accept`"
        )
    if any(t.assignment_status == "pending" for t in tasks):
        return text + f"the tasks are waiting for a worker; `{COMMAND} status` shows them"
    return text + f"no task is active; create one with `{COMMAND} create-task`"


def _only_working_task(workspace: Any, workspace_sid: str) -> Any:
    tasks = list_all("list tasks", workspace.tasks, assignment_status=list(ACTIVE_TASK_STATUSES))
    working = [t for t in tasks if t.assignment_status in WORKING_STATUSES]
    if not working:
        raise click.ClickException(_no_working_task(workspace_sid, tasks))
    if len(working) > 1:
        lines = [
            f"{len(working)} tasks are assigned or wrapping in workspace {workspace_sid}: name "
            f"the one to complete, e.g. `{COMMAND} complete {working[0].sid}`",
            *table(
                ("SID", "STATUS", "QUEUE", "AGE"),
                [
                    (t.sid, t.assignment_status, t.task_queue_friendly_name or "-", age(t.age))
                    for t in working
                ],
            ),
        ]
        raise click.ClickException("\n".join(lines))
    return working[0]


@taskrouter_cli.command("complete")
@click.argument("task", required=False, callback=sid_argument("WT"))
@click.option(
    "--reason",
    metavar="TEXT",
    callback=_reason,
    help=f'Why the task ends, at most {MAX_REASON_LENGTH} characters (default "Completed").',
)
def complete_command(task: str | None, reason: str) -> None:
    """Complete TASK (WT...), by default the only assigned or wrapping task of the workspace."""
    taskrouter = current_taskrouter()
    if task is None:
        task = _only_working_task(taskrouter.workspace, taskrouter.workspace_sid).sid
    completed = call_taskrouter(
        f"complete task {task}", taskrouter.update_task_status, task, "completed", reason
    )
    click.echo(f"Task {completed.sid} {completed.assignment_status} (reason: {completed.reason})")


# -- token ------------------------------------------------------------------------------


@taskrouter_cli.command("token")
@click.argument("name")
@click.option(
    "--ttl",
    type=click.IntRange(1, MAX_TTL),
    default=DEFAULT_TTL,
    show_default=True,
    help="How long the token lives, in seconds.",
)
@click.option(
    "--json", "as_json", is_flag=True, help='One line: {"token", "ebServer", "wsServer"}.'
)
def token_command(name: str, ttl: int, as_json: bool) -> None:
    """An access token for worker NAME (e.g. Alice) for Twilio's Worker SDK, with the event
    bridge to give it as its ebServer and wsServer options."""
    taskrouter = current_taskrouter()
    workspace = taskrouter.workspace
    worker = _named("worker", "workers", workspace.workers, taskrouter.workspace_sid, name)
    try:
        login = worker_login(
            current_app, worker.sid, config.local_base_url(current_app.config), ttl
        )
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps({key: login[key] for key in ("token", "ebServer", "wsServer")}))
        return
    click.echo(login["token"])
    note(
        f"{worker.friendly_name} ({worker.sid}), valid {ttl} s. Worker SDK: new Worker(token, "
        f"{{ebServer: '{login['ebServer']}', wsServer: '{login['wsServer']}'}})"
    )
