"""`status`: where the workflow sends its assignment callbacks, the workers, the tasks and the
pending reservations, so every SID the quickstart's next step needs can be read off it."""

from __future__ import annotations

from typing import Any

import click

from cli.common import (
    ACTIVE_TASK_STATUSES,
    COMMAND,
    RESERVATION_HEADERS,
    age,
    call,
    list_all,
    pending_reservations,
    reservation_rows,
    table,
    taskrouter_cli,
)
from taskrouter import current_taskrouter


def _callback_lines(workflow: Any) -> list[str]:
    # Read from the workflow itself: TaskRouter calls this URL, whatever the settings say.
    lines = [f"Workflow {workflow.sid} ({workflow.friendly_name})"]
    if workflow.assignment_callback_url:
        lines.append(f"  Assignment Callback URL  {workflow.assignment_callback_url}")
    else:
        lines.append(
            "  Assignment Callback URL  none: reservations stay pending until accepted over "
            f"REST; set one with `{COMMAND} callback-url URL`"
        )
    if workflow.fallback_assignment_callback_url:
        lines.append(f"  Fallback URL             {workflow.fallback_assignment_callback_url}")
    return lines


@taskrouter_cli.command("status")
@click.option("--all", "all_tasks", is_flag=True, help="Also list completed and canceled tasks.")
def status_command(all_tasks: bool) -> None:
    """The workflow's Assignment Callback URL, then workers with their activity, tasks and
    pending reservations (with their tasks' SIDs) as tables."""
    taskrouter = current_taskrouter()
    workspace = taskrouter.workspace
    workers = list_all("list workers", workspace.workers)
    statuses = {} if all_tasks else {"assignment_status": list(ACTIVE_TASK_STATUSES)}
    tasks = list_all("list tasks", workspace.tasks, **statuses)
    reservations = pending_reservations(workspace, tasks)
    workflow = call(f"fetch workflow {taskrouter.workflow_sid}", taskrouter.workflow.fetch)

    lines = [f"Workspace {taskrouter.workspace_sid} at {taskrouter.base_url}"]
    lines += _callback_lines(workflow)
    lines += ["", "Workers"]
    lines += table(
        ("NAME", "ACTIVITY", "AVAILABLE"),
        [(w.friendly_name, w.activity_name, "yes" if w.available else "no") for w in workers],
    )
    which = "all" if all_tasks else ", ".join(ACTIVE_TASK_STATUSES)
    lines += ["", f"Tasks ({which})"]
    lines += table(
        ("SID", "STATUS", "QUEUE", "PRIORITY", "AGE"),
        [
            (t.sid, t.assignment_status, t.task_queue_friendly_name or "-", t.priority, age(t.age))
            for t in tasks
        ],
    )
    lines += ["", "Pending reservations"]
    lines += table(RESERVATION_HEADERS, reservation_rows(reservations))
    click.echo("\n".join(lines))
