"""Real-time statistics: what a workspace, a task queue, a workflow or its workers hold now.

Each public function answers the `realtime` part of its resource as a dict under the OpenAPI's
field names (the RealTimeStatistics endpoints add account, workspace and URL around it; the
combined /Statistics endpoints embed it as it is). Every figure is read from the current rows,
in one snapshot, through indexes that grow with the scope's active tasks and members, never
with the finished tasks of the history:

- tasks: the active ones (pending, reserved, assigned, wrapping), by status and by priority;
  a finished task is history, which the cumulative statistics count.
- the longest waiting task: the oldest task not yet accepted (pending or reserved), its age
  taken as the Task resource's `age` is (from its virtual start time, else its creation);
  in a queue also the one that entered the queue the longest ago.
- workers: per activity of the workspace (each listed, zero included), in total, and for a
  queue those its target_workers select (eligible) and of those the available ones.

TaskChannel (a SID or unique name) narrows tasks to that channel and workers to those whose
WorkerChannel on it is available with some capacity, i.e. those that could take its tasks.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from taskrouter_sandbox.clock import from_storage
from taskrouter_sandbox.domain.errors import EngineError
from taskrouter_sandbox.domain.lifecycle import ACTIVE_TASK_STATUSES
from taskrouter_sandbox.domain.validation import is_sid
from taskrouter_sandbox.engine import channels, queues
from taskrouter_sandbox.engine.operations import Operations
from taskrouter_sandbox.state import reads
from taskrouter_sandbox.state.operation import Operation

# The statuses of a task still waiting for a worker to accept it.
WAITING_TASK_STATUSES = ("pending", "reserved")
# Twilio's bulk endpoint: "less than 1 or exceeds 50" TaskQueue SIDs is a 400.
MAX_BULK_QUEUES = 50

# When a task started, as its `age` counts (the Task resource), and when it entered its queue;
# written as store/schema.py's tasks_waiting_since and tasks_in_queue_since index them.
TASK_STARTED = "coalesce(t.virtual_start_time, t.date_created)"
ENTERED_QUEUE = "t.task_queue_entered_date"

_ACTIVE = reads.quoted(ACTIVE_TASK_STATUSES)
_WAITING = reads.quoted(WAITING_TASK_STATUSES)


class _Scope:
    """Which tasks and workers a figure counts: a WHERE over tasks t, and the joins and
    WHERE selecting workers k, each with its parameters."""

    def __init__(self, workspace_sid: str) -> None:
        self.task_where = ["t.workspace_sid = ?"]
        self.task_params: list[Any] = [workspace_sid]
        self.worker_joins: list[str] = []
        self.worker_join_params: list[Any] = []
        self.worker_where = ["k.workspace_sid = ?"]
        self.worker_params: list[Any] = [workspace_sid]

    def tasks(self, condition: str, *params: Any) -> None:
        self.task_where.append(condition)
        self.task_params.extend(params)

    def workers_joined(self, join: str, *params: Any) -> None:
        self.worker_joins.append(join)
        self.worker_join_params.extend(params)

    def workers(self, condition: str, *params: Any) -> None:
        self.worker_where.append(condition)
        self.worker_params.extend(params)

    def on_channel(self, channel_sid: str | None) -> _Scope:
        if channel_sid is not None:
            self.tasks("t.task_channel_sid = ?", channel_sid)
            # A worker that could take the channel's tasks now (worker_channels' unique
            # (worker_sid, task_channel_sid) index finds its row).
            self.workers_joined(
                "JOIN worker_channels wc ON wc.worker_sid = k.sid AND wc.task_channel_sid = ?"
                " AND wc.available AND wc.capacity > 0",
                channel_sid,
            )
        return self


# -- the public functions, one per resource -------------------------------------------------


def workspace(
    ops: Operations, workspace_sid: str, *, task_channel: str | None = None
) -> dict[str, Any]:
    """The workspace's realtime figures (WorkspaceRealTimeStatistics without its envelope)."""
    with ops.read() as op:
        reads.workspace(op, workspace_sid)
        scope = _Scope(workspace_sid).on_channel(_channel(op, workspace_sid, task_channel))
        return _workspace_figures(op, workspace_sid, scope)


def task_queue(
    ops: Operations, workspace_sid: str, sid: str, *, task_channel: str | None = None
) -> dict[str, Any]:
    """The queue's realtime figures (TaskQueueRealTimeStatistics without its envelope)."""
    with ops.read() as op:
        reads.task_queue(op, workspace_sid, sid)
        channel_sid = _channel(op, workspace_sid, task_channel)
        return _queue_figures(op, workspace_sid, sid, channel_sid)


def task_queues_bulk(
    ops: Operations, workspace_sid: str, queue_sids: Iterable[Any]
) -> list[dict[str, Any]]:
    """Twilio's bulk retrieval: each queue's figures, with its task_queue_sid, in the order
    given (a SID given twice answered once). A well-formed SID of no queue of this workspace
    answers zeros, as Twilio documents for a SID "not part of this account"."""
    sids = _bulk_sids(queue_sids)
    with ops.read() as op:
        reads.workspace(op, workspace_sid)
        known = {
            row["sid"]
            for row in op.tx.all(
                f"SELECT sid FROM task_queues WHERE workspace_sid = ?"
                f" AND sid IN ({', '.join('?' * len(sids))})",
                (workspace_sid, *sids),
            )
        }
        answers = []
        for sid in sids:
            figures = (
                _queue_figures(op, workspace_sid, sid, None)
                if sid in known
                else _zero_queue_figures(op, workspace_sid)
            )
            answers.append(
                {
                    "task_queue_sid": sid,
                    **{name: figures[name] for name in BULK_QUEUE_FIELDS},
                }
            )
        return answers


# The attributes Twilio's bulk answer lists for each queue (after task_queue_sid).
BULK_QUEUE_FIELDS = (
    "total_available_workers",
    "total_eligible_workers",
    "total_tasks",
    "longest_task_waiting_age",
    "longest_task_waiting_sid",
    "tasks_by_status",
    "tasks_by_priority",
    "activity_statistics",
)


def workflow(
    ops: Operations, workspace_sid: str, sid: str, *, task_channel: str | None = None
) -> dict[str, Any]:
    """The workflow's realtime figures (WorkflowRealTimeStatistics without its envelope):
    the active tasks it routes; a workflow has no workers of its own."""
    with ops.read() as op:
        reads.workflow(op, workspace_sid, sid)
        scope = _Scope(workspace_sid).on_channel(_channel(op, workspace_sid, task_channel))
        scope.tasks("t.workflow_sid = ?", sid)
        return _task_figures(op, scope)


def workers(
    ops: Operations,
    workspace_sid: str,
    *,
    task_channel: str | None = None,
    task_queue_sid: str | None = None,
    task_queue_name: str | None = None,
    friendly_name: str | None = None,
) -> dict[str, Any]:
    """The workers' realtime figures (WorkersRealTimeStatistics without its envelope):
    activity_statistics and total_workers. The filters are those of Workers /Statistics:
    the workers of one queue (by SID or name) and one worker name (ignoring case, as the
    Workers list's FriendlyName does)."""
    with ops.read() as op:
        reads.workspace(op, workspace_sid)
        scope = _Scope(workspace_sid).on_channel(_channel(op, workspace_sid, task_channel))
        if task_queue_sid is not None or task_queue_name is not None:
            queue_sid = queues.named(op, workspace_sid, sid=task_queue_sid, name=task_queue_name)[
                "sid"
            ]
            scope.workers_joined(
                "JOIN worker_queues m ON m.worker_sid = k.sid AND m.task_queue_sid = ?", queue_sid
            )
        if friendly_name is not None:
            scope.workers("k.friendly_name_key = ?", friendly_name.lower())
        activity_statistics, total, _available = _worker_figures(op, workspace_sid, scope)
        return {"activity_statistics": activity_statistics, "total_workers": total}


# -- figures ----------------------------------------------------------------------------


def _workspace_figures(op: Operation, workspace_sid: str, scope: _Scope) -> dict[str, Any]:
    activity_statistics, total_workers, _available = _worker_figures(op, workspace_sid, scope)
    return {
        "activity_statistics": activity_statistics,
        **_task_figures(op, scope),
        "total_workers": total_workers,
    }


def _queue_figures(
    op: Operation, workspace_sid: str, queue_sid: str, channel_sid: str | None
) -> dict[str, Any]:
    scope = _Scope(workspace_sid).on_channel(channel_sid)
    scope.tasks("t.task_queue_sid = ?", queue_sid)
    # The queue's eligible workers: those its target_workers selects, as routing keeps them.
    scope.workers_joined(
        "JOIN worker_queues m ON m.worker_sid = k.sid AND m.task_queue_sid = ?", queue_sid
    )
    activity_statistics, eligible, available = _worker_figures(op, workspace_sid, scope)
    relative = _longest_waiting(op, scope, ENTERED_QUEUE)
    return {
        "activity_statistics": activity_statistics,
        **_task_figures(op, scope),
        "longest_relative_task_age_in_queue": relative[0],
        "longest_relative_task_sid_in_queue": relative[1],
        "total_available_workers": available,
        "total_eligible_workers": eligible,
    }


def _zero_queue_figures(op: Operation, workspace_sid: str) -> dict[str, Any]:
    """A queue with no task and no worker: every figure zero, every activity listed."""
    return {
        "activity_statistics": [
            {"friendly_name": row["friendly_name"], "sid": row["sid"], "workers": 0}
            for row in _activities(op, workspace_sid)
        ],
        "longest_task_waiting_age": 0,
        "longest_task_waiting_sid": None,
        "tasks_by_priority": {},
        "tasks_by_status": dict.fromkeys(ACTIVE_TASK_STATUSES, 0),
        "total_tasks": 0,
        "longest_relative_task_age_in_queue": 0,
        "longest_relative_task_sid_in_queue": None,
        "total_available_workers": 0,
        "total_eligible_workers": 0,
    }


def _task_figures(op: Operation, scope: _Scope) -> dict[str, Any]:
    by_status = dict.fromkeys(ACTIVE_TASK_STATUSES, 0)
    by_priority: dict[str, int] = {}
    for row in op.tx.all(
        "SELECT t.assignment_status AS status, t.priority AS priority, count(*) AS tasks"
        f" FROM tasks t WHERE {' AND '.join(scope.task_where)}"
        f" AND t.assignment_status IN ({_ACTIVE})"
        " GROUP BY t.assignment_status, t.priority",
        scope.task_params,
    ):
        by_status[row["status"]] += row["tasks"]
        by_priority[str(row["priority"])] = by_priority.get(str(row["priority"]), 0) + row["tasks"]
    age, sid = _longest_waiting(op, scope, TASK_STARTED)
    return {
        "longest_task_waiting_age": age,
        "longest_task_waiting_sid": sid,
        # Highest priority first, as routing serves them; JSON keys are strings.
        "tasks_by_priority": dict(sorted(by_priority.items(), key=lambda item: -int(item[0]))),
        "tasks_by_status": by_status,
        "total_tasks": sum(by_status.values()),
    }


def _longest_waiting(op: Operation, scope: _Scope, started: str) -> tuple[int, str | None]:
    """(age in whole seconds, SID) of the waiting task in scope that started first by
    `started`; (0, None) when none waits. One look per waiting status, so that in a queue
    each reads the first entry of an index in that order (tasks_waiting_since,
    tasks_in_queue_since) rather than sorting every waiting task."""
    firsts = []
    for status in WAITING_TASK_STATUSES:
        # The status in the text, not bound: those indexes hold only the waiting tasks, and a
        # bound status would have SQLite prepare the statement again each time the value
        # changed, to see that they apply (store/schema.py WAITING_TASKS).
        row = op.tx.one(
            f"SELECT t.sid AS sid, {started} AS started, t.seq AS seq FROM tasks t"
            f" WHERE {' AND '.join(scope.task_where)} AND t.assignment_status = '{status}'"
            f" ORDER BY {started}, t.seq LIMIT 1",
            scope.task_params,
        )
        if row is not None:
            firsts.append(row)
    if not firsts:
        return 0, None
    first = min(firsts, key=lambda row: (row["started"], row["seq"]))
    return max(0, int((op.now() - from_storage(first["started"])).total_seconds())), first["sid"]


def _worker_figures(
    op: Operation, workspace_sid: str, scope: _Scope
) -> tuple[list[dict[str, Any]], int, int]:
    """(activity_statistics, workers, available workers) of the workers in scope."""
    counts = {
        row["activity_sid"]: row["workers"]
        for row in op.tx.all(
            "SELECT k.activity_sid AS activity_sid, count(*) AS workers FROM workers k "
            + " ".join(scope.worker_joins)
            + f" WHERE {' AND '.join(scope.worker_where)} GROUP BY k.activity_sid",
            (*scope.worker_join_params, *scope.worker_params),
        )
    }
    statistics, total, available = [], 0, 0
    for activity in _activities(op, workspace_sid):
        workers_in = counts.get(activity["sid"], 0)
        statistics.append(
            {
                "friendly_name": activity["friendly_name"],
                "sid": activity["sid"],
                "workers": workers_in,
            }
        )
        total += workers_in
        if activity["available"]:
            available += workers_in
    return statistics, total, available


def _activities(op: Operation, workspace_sid: str) -> list[dict[str, Any]]:
    return op.tx.all(
        "SELECT sid, friendly_name, available FROM activities WHERE workspace_sid = ? ORDER BY seq",
        (workspace_sid,),
    )


# -- parameters -----------------------------------------------------------------------


def _channel(op: Operation, workspace_sid: str, value: str | None) -> str | None:
    """The SID of the TaskChannel named by SID or unique name; None for no TaskChannel."""
    return None if value is None else channels.named(op, workspace_sid, value)["sid"]


def _bulk_sids(values: Iterable[Any]) -> list[str]:
    given = list(values)
    if not 1 <= len(given) <= MAX_BULK_QUEUES:
        raise EngineError(
            f"QueueSids must name between 1 and {MAX_BULK_QUEUES} TaskQueue SIDs, got {len(given)}"
        )
    for value in given:
        if not is_sid(value, "WQ"):
            raise EngineError(
                f"QueueSids: {value!r} is not a valid TaskQueue SID (expected WQ + 32 hex)"
            )
    return list(dict.fromkeys(given))
