"""`status`: where the workflow sends its assignment callbacks, each queue's live figures, the
workers, the tasks and the pending reservations, so every SID the quickstart's next step needs
can be read off it.

The queue figures come from TaskRouter's TaskQueue RealTimeStatistics resource, one fetch per
queue, so they read the same on a Twilio account as on the sandbox. (The bulk retrieval of up
to 50 queues would save requests, but Twilio announces it for Flex; every TaskRouter workspace
has the single-queue resource.)
"""

from __future__ import annotations

from typing import Any

import click

from taskrouter_quickstart.cli.common import (
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
from taskrouter_quickstart.taskrouter import current_taskrouter, waiting_tasks

QUEUE_HEADERS = ("QUEUE", "WAITING", "LONGEST WAIT", "AVAILABLE WORKERS", "ELIGIBLE WORKERS")


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


def queue_figures(statistics: Any) -> tuple[int, str, int, int]:
    """Waiting tasks, the longest wait, available and eligible workers: what a supervisor
    reads first off a queue's RealTimeStatistics."""
    waiting = waiting_tasks(statistics.tasks_by_status or {})
    # No task waiting: TaskRouter answers age 0 with no SID, which is no wait at all.
    longest = (
        "-"
        if statistics.longest_task_waiting_sid is None
        else age(statistics.longest_task_waiting_age)
    )
    return (
        waiting,
        longest,
        statistics.total_available_workers or 0,
        statistics.total_eligible_workers or 0,
    )


def queue_rows(workspace: Any) -> list[tuple[object, ...]]:
    """One row per queue of the workspace, in TaskRouter's order."""
    rows: list[tuple[object, ...]] = []
    for queue in list_all("list task queues", workspace.task_queues):
        statistics = workspace.task_queues(queue.sid).real_time_statistics()
        # Read inside the call, so an answer that is not TaskRouter's is one line too.
        figures = call(
            f"fetch the real-time statistics of task queue {queue.sid} ({queue.friendly_name})",
            lambda statistics=statistics: queue_figures(statistics.fetch()),
        )
        rows.append((queue.friendly_name, *figures))
    return rows


@taskrouter_cli.command("status")
@click.option("--all", "all_tasks", is_flag=True, help="Also list completed and canceled tasks.")
def status_command(all_tasks: bool) -> None:
    """The workflow's Assignment Callback URL, then each queue's waiting tasks, longest wait
    and available/eligible workers, workers with their activity, tasks and pending
    reservations (with their tasks' SIDs) as tables."""
    taskrouter = current_taskrouter()
    workspace = taskrouter.workspace
    workers = list_all("list workers", workspace.workers)
    statuses = {} if all_tasks else {"assignment_status": list(ACTIVE_TASK_STATUSES)}
    tasks = list_all("list tasks", workspace.tasks, **statuses)
    reservations = pending_reservations(workspace, tasks)
    workflow = call(f"fetch workflow {taskrouter.workflow_sid}", taskrouter.workflow.fetch)
    queues = queue_rows(workspace)

    lines = [f"Workspace {taskrouter.workspace_sid} at {taskrouter.base_url}"]
    lines += _callback_lines(workflow)
    lines += ["", "Queues (real-time statistics)"]
    lines += table(QUEUE_HEADERS, queues)
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
