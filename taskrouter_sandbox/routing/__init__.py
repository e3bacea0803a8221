"""Routing: which worker gets which task, inside the operation that made it possible.

`settle` runs once per operation, before its commit: it routes everything the operation's
hints may have unblocked until nothing moves. placement.py walks a task through its workflow
(filters, targets, timeouts, skip_if); matching.py finds the workers for a task and the task
for a worker; known_workers.py narrows both to a target's known worker. Candidates come from
indexed SQL, expressions only on them. Routing moves statuses only through
state/transitions.py and never calls the engine above it.
"""

# Choices made where TaskRouter's documentation leaves room:
#
# - Routing is incremental. A task that becomes pending looks among the available members of
#   its queue (worker_queues, kept current on every attribute, target_workers and activity
#   change) in idle order, in a single-tasking workspace only the free ones (worker_queues.free:
#   available and holding no pending offer, kept by triggers on every reservation change),
#   stopping at the first that fits; a worker that becomes available looks at the head of each
#   queue it belongs to. Nothing rescans the whole workspace or a queue's busy members.
# - "Idle the longest" is the time of the worker's last activity change or, when later, the end
#   of its last reservation (a worker who rejects and stays available goes to the back).
# - A worker who rejected a task, or let its reservation time out, is not offered that task
#   again until the task is placed afresh by its workflow (created, attributes updated, or
#   re-evaluated). Without this a worker who rejects and stays available would be offered the
#   same task at once, up to the 1000-rejection limit.
# - Single-tasking: a worker's availability is its activity's, as Twilio's Activity resource
#   says; a worker with an assigned (accepted or wrapping) task who is moved to an available
#   activity is offered the next task, as Alice is in the quickstart's second part. (The
#   Workspace resource's description, no new reservation until the previous task is completed,
#   would leave her second task pending: the quickstart's flow wins.) Only a pending
#   reservation, an offer still waiting for its answer, keeps an available worker from another
#   offer (the queue's reservation activity normally makes them unavailable anyway).
#   Multi-tasking: availability is the activity plus room on the task's channel: the worker's
#   WorkerChannel is available and holds fewer pending or accepted reservations than its
#   capacity (1 by default, Twilio's); a wrapping task no longer takes up room (Twilio's pages
#   do not say). Activities do not move on reservation or accept. Single-tasking workspaces
#   ignore WorkerChannels.
# - A worker in several queues gets the task its queues would hand out first: within FIFO
#   queues higher priority then the oldest, within LIFO queues the newest whatever the
#   priority, and between the two kinds the one the workspace's prioritize_queue_order names
#   (even over a higher priority of the other kind: the queue-ordering page's example has
#   none, and LIFO ignores priority).
# - max_reserved_workers > 1: the offers are made together when the task is routed; a worker
#   becoming available later does not join a task that is already reserved.
# - Targets time out in turn: a target's deadline is its timeout after the previous target's
#   deadline when the task moved on by timeout (so on the task's age it is the sum of the
#   timeouts so far, as the Timeout Evaluation page has it), or after the moment the task
#   arrived by a skip or at the start of a walk (its start when created, the moment of an
#   attribute update or re-evaluation). A reserved task whose target times out moves on when
#   its reservation ends, past every target whose deadline has gone by meanwhile. A task stays
#   in a target until its deadline even when a reservation ends earlier (the Workflows and
#   Assignment page: it waits in each step for the step's timeout).
# - skip_if is evaluated once, when the task has just entered a target and the offer made
#   then reserved nobody. It sees workers.available / workers.unavailable (the target queue's
#   members in an available / unavailable activity) and workers.<ActivitySid>. Skipping the
#   last target of a filter counts as not matching it: the later filters, then default_filter,
#   else the task is canceled. Passing the last target by timeout fires workflow.timeout and
#   cancels the task; a filter has no timeout of its own (Twilio documents none).

from __future__ import annotations

from taskrouter_sandbox.routing import matching
from taskrouter_sandbox.state.membership import reservation_ended
from taskrouter_sandbox.state.operation import Operation
from taskrouter_sandbox.state.reads import reservation_row

# A bound on chained work inside one operation, so a bug cannot spin a transaction forever.
MAX_ROUTING_ROUNDS = 10_000
_TASK_HINTS = frozenset({"task.created", "task.updated", "task.placed"})
_WORKER_HINTS = frozenset(
    {
        "worker.created",
        "worker.activity.update",
        "worker.attributes.update",
        "worker.capacity.update",
    }
)
_RESERVATION_ENDS = frozenset(
    {
        "reservation.rejected",
        "reservation.timeout",
        "reservation.canceled",
        "reservation.rescinded",
        "reservation.completed",
        "reservation.wrapup",
    }
)


def settle(op: Operation) -> None:
    """Route everything the operation's hints may have unblocked, until nothing moves."""
    hints = op.hints
    done = 0
    rounds = 0
    while done < len(hints):
        rounds += 1
        if rounds > MAX_ROUTING_ROUNDS:
            raise RuntimeError("routing did not settle")
        batch = hints[done:]
        done = len(hints)
        tasks: dict[str, str] = {}
        workers: dict[str, str] = {}
        queues: dict[str, str] = {}
        for hint in batch:
            kind = hint.kind
            if kind in _TASK_HINTS:
                tasks[hint.sid] = hint.workspace_sid
            elif kind in _WORKER_HINTS:
                workers[hint.sid] = hint.workspace_sid
            elif kind == "reservation.accepted":
                # A single-tasking worker left in an available activity (a queue without
                # an assignment activity) is free for the next task once it accepts.
                reservation = reservation_row(op, hint.sid)
                if reservation is not None:
                    workers[reservation["worker_sid"]] = hint.workspace_sid
            elif kind in _RESERVATION_ENDS:
                reservation = reservation_row(op, hint.sid)
                if reservation is not None:
                    tasks[reservation["task_sid"]] = hint.workspace_sid
                    workers[reservation["worker_sid"]] = hint.workspace_sid
                    if kind != "reservation.wrapup":
                        reservation_ended(op, reservation["worker_sid"])
            elif kind == "task-queue.updated":
                queues[hint.sid] = hint.workspace_sid
        for task_sid, workspace_sid in tasks.items():
            matching.route_task(op, workspace_sid, task_sid)
        for worker_sid, workspace_sid in workers.items():
            matching.route_worker(op, workspace_sid, worker_sid)
        for queue_sid in queues:
            for task in matching.pending_in_queue_order(op, queue_sid):
                matching.route_task(op, task["workspace_sid"], task["sid"])
