"""Routing for the sandbox engine: workflow placement, matching tasks with workers, timers.

Runs inside the engine's transactions; candidates come from indexed SQL, expressions only on them.
Over 600 lines, and it still calls back into the engine: the planned restructure makes it
a layer that never calls up, and splits placement from matching then.
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
#   Multi-tasking: availability is the activity plus capacity on the task's channel: a worker
#   holds at most one pending or accepted reservation per task channel (Twilio's default
#   capacity of 1 per channel), and activities do not move on reservation or accept.
# - max_reserved_workers > 1: the offers are made together when the task is routed; a worker
#   becoming available later does not join a task that is already reserved.
# - A target's timeout counts on the task's age; a reserved task whose target times out moves
#   on when its reservation ends. skip_if sees workers.available, the number of available
#   members of the target's queue. Past the last target (timed out or skipped) the task is
#   canceled.

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sandbox import expressions
from sandbox.clock import to_storage

if TYPE_CHECKING:
    from sandbox.engine import Engine
    from sandbox.store import Transaction

logger = logging.getLogger(__name__)

TARGET_TIMEOUT_REASON = "Workflow Timeout: no worker accepted the task before its last target"
SKIPPED_REASON = "Workflow Timeout: every remaining target of the workflow was skipped"
TTL_REASON = "Task TTL Exceeded"
# A bound on chained work inside one operation, so a bug cannot spin a transaction forever.
MAX_ROUTING_ROUNDS = 10_000
# How many due items fire_due takes per read; each fires in its own transaction.
DUE_BATCH = 200
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
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


# -- the workflow configuration, parsed once per text --------------------------------------


@dataclass(frozen=True)
class Target:
    queue: str
    expression: expressions.Expression | None
    priority: int | None
    timeout: int | None
    order_by: tuple[tuple[tuple[str, ...], bool], ...]
    skip_if: expressions.Expression | None


@dataclass(frozen=True)
class Filter:
    name: str | None
    source: str
    expression: expressions.Expression
    targets: tuple[Target, ...]


@dataclass(frozen=True)
class Plan:
    filters: tuple[Filter, ...]
    default_queue: str | None


def parse_order_by(text: str) -> tuple[tuple[tuple[str, ...], bool], ...]:
    """`worker.level DESC, worker.skill.rank` -> ((("level",), True), (("skill", "rank"), False)).

    Raises ValueError naming the problem."""
    keys = []
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2:
            raise ValueError(f"order_by {text!r}: expected 'worker.<attribute> [ASC|DESC]'")
        name = words[0]
        direction = words[1].upper() if len(words) == 2 else "ASC"
        segments = tuple(name.split("."))
        if segments[0] != "worker" or len(segments) < 2 or not all(segments):
            raise ValueError(f"order_by {text!r}: every key must be worker.<attribute>")
        if direction not in ("ASC", "DESC"):
            raise ValueError(f"order_by {text!r}: direction must be ASC or DESC")
        keys.append((segments[1:], direction == "DESC"))
    return tuple(keys)


@functools.lru_cache(maxsize=256)
def routing_plan(configuration: str) -> Plan:
    """A stored (already validated) workflow configuration as Filters and Targets."""
    routing = json.loads(configuration)["task_routing"]
    filters = []
    for item in routing.get("filters", []):
        targets = tuple(
            Target(
                queue=target["queue"],
                expression=expressions.parse(target["expression"])
                if target.get("expression")
                else None,
                priority=target.get("priority"),
                timeout=target.get("timeout"),
                order_by=parse_order_by(target["order_by"]) if target.get("order_by") else (),
                skip_if=expressions.parse(target["skip_if"]) if target.get("skip_if") else None,
            )
            for target in item["targets"]
        )
        filters.append(
            Filter(
                name=item.get("filter_friendly_name", item.get("friendly_name")),
                source=item["expression"],
                expression=expressions.parse(item["expression"]),
                targets=targets,
            )
        )
    default = routing.get("default_filter")
    return Plan(tuple(filters), default["queue"] if default else None)


def taskrouter_context(moment: datetime) -> dict[str, Any]:
    return {
        "dayOfWeek": _DAYS[moment.weekday()],
        "currentTime": moment.hour * 100 + moment.minute,
        "currentHour": moment.hour,
    }


def _attributes(text: str | None) -> dict[str, Any]:
    try:
        document = json.loads(text or "{}")
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def _worker_context(row: dict[str, Any]) -> dict[str, Any]:
    context = _attributes(row["attributes"])
    context.update(
        sid=row["worker_sid"],
        friendly_name=row["friendly_name"],
        activity_sid=row["activity_sid"],
        activity_name=row["activity_name"],
    )
    return context


def _sort_key(order_by: tuple[tuple[tuple[str, ...], bool], ...], context: dict[str, Any]) -> tuple:
    """Numbers by order_by (missing or non-numeric values last); ties keep idle order."""
    key: list[Any] = []
    for path, descending in order_by:
        value: Any = context
        for segment in path:
            value = value.get(segment) if isinstance(value, dict) else None
        if isinstance(value, bool) or not isinstance(value, int | float):
            key.append((1, 0))
        else:
            key.append((0, -value if descending else value))
    return tuple(key)


_CANDIDATE_COLUMNS = (
    "SELECT wq.worker_sid, k.friendly_name, k.attributes, k.activity_sid,"
    " a.friendly_name AS activity_name"
)
_CANDIDATE_JOINS = (
    " JOIN workers k ON k.sid = wq.worker_sid JOIN activities a ON a.sid = k.activity_sid"
)
# Single-tasking: the free flag (store.FREE_VALUE, kept by triggers) says it all, and its
# index yields the free members already in idle order.
_SINGLE_TASK_CANDIDATES = (
    _CANDIDATE_COLUMNS
    + " FROM worker_queues wq INDEXED BY worker_queues_free"
    + _CANDIDATE_JOINS
    + " WHERE wq.task_queue_sid = ? AND wq.free = 1"
)
_MULTI_TASK_CANDIDATES = (
    _CANDIDATE_COLUMNS
    + " FROM worker_queues wq"
    + _CANDIDATE_JOINS
    + " WHERE wq.task_queue_sid = ? AND wq.available = 1"
)
_MULTI_TASK_FREE = (
    " AND NOT EXISTS (SELECT 1 FROM reservations r JOIN tasks c ON c.sid = r.task_sid"
    " WHERE r.worker_sid = wq.worker_sid AND r.reservation_status IN ('pending', 'accepted')"
    " AND c.task_channel_sid IS ?)"
)
_TASK_COLUMNS = (
    "SELECT sid, workspace_sid, attributes, priority, date_created, virtual_start_time,"
    " assignment_status, task_queue_sid, workflow_sid, filter_index, target_index,"
    " target_timeout_at, routing_date, task_channel_sid, routing_target FROM tasks"
)
_QUEUE_HEAD = {
    "FIFO": _TASK_COLUMNS + " INDEXED BY tasks_fifo WHERE task_queue_sid = ?"
    " AND assignment_status = 'pending' ORDER BY priority DESC, date_created, seq",
    "LIFO": _TASK_COLUMNS + " INDEXED BY tasks_lifo WHERE task_queue_sid = ?"
    " AND assignment_status = 'pending' ORDER BY priority DESC, date_created DESC, seq DESC",
}


class Router:
    """The routing half of the engine; every method runs inside the caller's transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- worker-to-queue membership -------------------------------------------------------

    def sync_worker(self, tx: Transaction, worker_sid: str) -> None:
        """Recompute which queues select a worker (after it was created or its attributes
        changed), keeping each kept membership's idle time."""
        worker = tx.one(
            "SELECT sid, workspace_sid, attributes, available, date_status_changed"
            " FROM workers WHERE sid = ?",
            (worker_sid,),
        )
        if worker is None:
            return
        attributes = _attributes(worker["attributes"])
        current = {
            row["task_queue_sid"]: row["idle_since"]
            for row in tx.all(
                "SELECT task_queue_sid, idle_since FROM worker_queues WHERE worker_sid = ?",
                (worker_sid,),
            )
        }
        wanted = {
            queue["sid"]
            for queue in tx.all(
                "SELECT sid, target_workers FROM task_queues WHERE workspace_sid = ?",
                (worker["workspace_sid"],),
            )
            if expressions.parse(queue["target_workers"]).evaluate(attributes)
        }
        idle_since = max(current.values(), default=worker["date_status_changed"])
        for queue_sid in current.keys() - wanted:
            tx.execute(
                "DELETE FROM worker_queues WHERE task_queue_sid = ? AND worker_sid = ?",
                (queue_sid, worker_sid),
            )
        for queue_sid in wanted - current.keys():
            tx.execute(
                "INSERT INTO worker_queues (task_queue_sid, worker_sid, workspace_sid, available,"
                " idle_since) VALUES (?, ?, ?, ?, ?)",
                (queue_sid, worker_sid, worker["workspace_sid"], worker["available"], idle_since),
            )

    def sync_queue(self, tx: Transaction, task_queue_sid: str) -> None:
        """Recompute a queue's members (after it was created or its target_workers changed)."""
        queue = tx.one(
            "SELECT sid, workspace_sid, target_workers FROM task_queues WHERE sid = ?",
            (task_queue_sid,),
        )
        if queue is None:
            return
        expression = expressions.parse(queue["target_workers"])
        tx.execute("DELETE FROM worker_queues WHERE task_queue_sid = ?", (task_queue_sid,))
        # A worker's idle time is the same in every queue it belongs to: keep it if known.
        rows = [
            (
                task_queue_sid,
                worker["sid"],
                queue["workspace_sid"],
                worker["available"],
                worker["idle"],
            )
            for worker in tx.all(
                "SELECT k.sid, k.attributes, k.available,"
                " COALESCE((SELECT max(idle_since) FROM worker_queues m"
                " WHERE m.worker_sid = k.sid), k.date_status_changed) AS idle"
                " FROM workers k WHERE k.workspace_sid = ?",
                (queue["workspace_sid"],),
            )
            if expression.evaluate(_attributes(worker["attributes"]))
        ]
        tx.executemany(
            "INSERT INTO worker_queues (task_queue_sid, worker_sid, workspace_sid, available,"
            " idle_since) VALUES (?, ?, ?, ?, ?)",
            rows,
        )

    def rebuild(self, tx: Transaction) -> None:
        """Every membership from scratch (a database from before routing existed)."""
        for queue in tx.all("SELECT sid FROM task_queues"):
            self.sync_queue(tx, queue["sid"])

    @staticmethod
    def worker_moved(tx: Transaction, worker_sid: str, available: int, moment: str) -> None:
        tx.execute(
            "UPDATE worker_queues SET available = ?, idle_since = ? WHERE worker_sid = ?",
            (available, moment, worker_sid),
        )

    # -- placement --------------------------------------------------------------------

    def _plan(self, tx: Transaction, workflow_sid: str | None) -> tuple[dict, Plan] | None:
        if workflow_sid is None:
            return None
        cache = tx.data.setdefault("routing_workflows", {})
        if workflow_sid not in cache:
            workflow = tx.one(
                "SELECT sid, friendly_name, configuration FROM workflows WHERE sid = ?",
                (workflow_sid,),
            )
            cache[workflow_sid] = (
                None if workflow is None else (workflow, routing_plan(workflow["configuration"]))
            )
        return cache[workflow_sid]

    def place(self, tx: Transaction, workspace_sid: str, task_sid: str) -> None:
        """Run a pending task through its workflow: first matching filter, its first target
        still open (not timed out, not skipped), else default_filter, else cancel."""
        engine = self.engine
        task = self.engine._task_row(tx, task_sid)
        found = self._plan(tx, task["workflow_sid"])
        if found is None:
            return
        workflow, plan = found
        first_time = task["routing_date"] is None
        now = to_storage(engine._now())
        tx.update("tasks", task_sid, {"routing_date": now})
        if first_time:
            engine._record(
                tx,
                workspace_sid,
                "workflow.entered",
                "task",
                task_sid,
                f"Task {task_sid} entered Workflow {workflow['friendly_name']}",
                engine._task_fields(tx, task_sid),
            )
        attributes = _attributes(task["attributes"])
        for index, item in enumerate(plan.filters):
            if item.expression.evaluate(attributes):
                self._enter_target(tx, workspace_sid, task_sid, workflow, plan, index, 0)
                return
        if plan.default_queue is not None:
            tx.update(
                "tasks",
                task_sid,
                {"filter_index": -1, "target_timeout_at": None},
            )
            engine._enter_queue(
                tx, workspace_sid, task_sid, plan.default_queue, "Default Filter", -1
            )
            return
        engine._finish_task(
            tx,
            workspace_sid,
            task_sid,
            "canceled",
            "Task did not match any filter of its workflow, which has no default_filter",
            engine._workspace_actor(workspace_sid),
        )

    def _enter_target(
        self,
        tx: Transaction,
        workspace_sid: str,
        task_sid: str,
        workflow: dict[str, Any],
        plan: Plan,
        filter_index: int,
        target_index: int,
    ) -> None:
        engine = self.engine
        item = plan.filters[filter_index]
        task = engine._with_age(engine._task_row(tx, task_sid))
        start = datetime.fromisoformat(task["virtual_start_time"] or task["date_created"])
        skipped = False
        while target_index < len(item.targets):
            target = item.targets[target_index]
            if target.timeout is not None and task["age"] >= target.timeout:
                target_index += 1
                continue
            if target.skip_if is not None and self._skip(tx, task, target):
                skipped = True
                target_index += 1
                continue
            engine._record(
                tx,
                workspace_sid,
                "workflow.target-matched",
                "task",
                task_sid,
                f"Task {task_sid} matched filter {item.name or item.source!r} of "
                f"Workflow {workflow['friendly_name']}",
                {
                    **engine._task_fields(tx, task_sid),
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
            tx.update("tasks", task_sid, values)
            engine._enter_queue(tx, workspace_sid, task_sid, target.queue, item.name, target_index)
            if target.timeout is not None:
                engine._deadline_set(tx, start + timedelta(seconds=target.timeout))
            return
        engine._record(
            tx,
            workspace_sid,
            "workflow.timeout",
            "task",
            task_sid,
            f"Task {task_sid} left Workflow {workflow['friendly_name']}: no target left",
            engine._task_fields(tx, task_sid),
            engine._workspace_actor(workspace_sid),
        )
        engine._finish_task(
            tx,
            workspace_sid,
            task_sid,
            "canceled",
            SKIPPED_REASON if skipped else TARGET_TIMEOUT_REASON,
            engine._workspace_actor(workspace_sid),
        )

    def _skip(self, tx: Transaction, task: dict[str, Any], target: Target) -> bool:
        available = tx.scalar(
            "SELECT count(*) FROM worker_queues WHERE task_queue_sid = ? AND available = 1",
            (target.queue,),
        )
        context = {
            "task": _attributes(task["attributes"]),
            "workers": {"available": available},
            "taskrouter": taskrouter_context(self.engine._now()),
        }
        return target.skip_if.evaluate(context)

    def target_timed_out(self, tx: Transaction, task_sid: str) -> None:
        """A pending task whose target timed out moves to the workflow's next target."""
        engine = self.engine
        task = self.engine._task_row(tx, task_sid)
        if task is None or task["assignment_status"] != "pending":
            return
        deadline = task["target_timeout_at"]
        if deadline is None or deadline > to_storage(engine._now()):
            return
        found = self._plan(tx, task["workflow_sid"])
        filter_index = task["filter_index"]
        if found is None or filter_index is None or filter_index < 0:
            tx.update("tasks", task_sid, {"target_timeout_at": None})
            return
        workflow, plan = found
        if filter_index >= len(plan.filters):
            # The workflow changed under the task: place it afresh.
            self.place(tx, task["workspace_sid"], task_sid)
            engine._note(tx, "task.placed", task["workspace_sid"], task_sid)
            return
        if task["target_index"] + 1 < len(plan.filters[filter_index].targets):
            engine._record(
                tx,
                task["workspace_sid"],
                "workflow.timeout",
                "task",
                task_sid,
                f"Task {task_sid} timed out of target {task['target_index']} of Workflow "
                f"{workflow['friendly_name']}",
                engine._task_fields(tx, task_sid),
                engine._workspace_actor(task["workspace_sid"]),
            )
        self._enter_target(
            tx,
            task["workspace_sid"],
            task_sid,
            workflow,
            plan,
            filter_index,
            task["target_index"] + 1,
        )
        engine._note(tx, "task.placed", task["workspace_sid"], task_sid)

    # -- matching ---------------------------------------------------------------------

    def run(self, tx: Transaction, changes: list[Any]) -> None:
        """Route everything the operation's changes may have unblocked, until nothing moves."""
        done = 0
        rounds = 0
        while done < len(changes):
            rounds += 1
            if rounds > MAX_ROUTING_ROUNDS:
                raise RuntimeError("routing did not settle")
            batch = changes[done:]
            done = len(changes)
            tasks: dict[str, str] = {}
            workers: dict[str, str] = {}
            queues: dict[str, str] = {}
            for change in batch:
                kind = change.kind
                if kind in ("task.created", "task.updated", "task.placed"):
                    tasks[change.sid] = change.workspace_sid
                elif kind in (
                    "worker.created",
                    "worker.activity.update",
                    "worker.attributes.update",
                ):
                    workers[change.sid] = change.workspace_sid
                elif kind == "reservation.accepted":
                    # A single-tasking worker left in an available activity (a queue without
                    # an assignment activity) is free for the next task once it accepts.
                    reservation = self.engine._reservation_row(tx, change.sid)
                    if reservation is not None:
                        workers[reservation["worker_sid"]] = change.workspace_sid
                elif kind in _RESERVATION_ENDS:
                    reservation = self.engine._reservation_row(tx, change.sid)
                    if reservation is not None:
                        tasks[reservation["task_sid"]] = change.workspace_sid
                        workers[reservation["worker_sid"]] = change.workspace_sid
                        if kind != "reservation.wrapup":
                            tx.execute(
                                "UPDATE worker_queues SET idle_since = ? WHERE worker_sid = ?",
                                (to_storage(self.engine._now()), reservation["worker_sid"]),
                            )
                elif kind == "task-queue.updated":
                    queues[change.sid] = change.workspace_sid
            for task_sid, workspace_sid in tasks.items():
                self.route_task(tx, workspace_sid, task_sid)
            for worker_sid, workspace_sid in workers.items():
                self.route_worker(tx, workspace_sid, worker_sid)
            for queue_sid in queues:
                for task in tx.all(
                    "SELECT sid, workspace_sid FROM tasks WHERE task_queue_sid = ?"
                    " AND assignment_status = 'pending' ORDER BY priority DESC, date_created, seq",
                    (queue_sid,),
                ):
                    self.route_task(tx, task["workspace_sid"], task["sid"])

    def _target(self, tx: Transaction, task: dict[str, Any]) -> Target | None:
        filter_index, target_index = task["filter_index"], task["target_index"]
        if filter_index is None or filter_index < 0 or target_index is None or target_index < 0:
            return None
        found = self._plan(tx, task["workflow_sid"])
        if found is None:
            return None
        filters = found[1].filters
        if filter_index >= len(filters) or target_index >= len(filters[filter_index].targets):
            return None
        target = filters[filter_index].targets[target_index]
        return target if target.queue == task["task_queue_sid"] else None

    def _multi_task(self, tx: Transaction, workspace_sid: str) -> bool:
        return bool(self.engine._workspace(tx, workspace_sid)["multi_task_enabled"])

    def _refused(self, tx: Transaction, task: dict[str, Any]) -> set[str]:
        """Workers this task must not be offered to: those holding a pending offer of it,
        and those who rejected it or let it time out since it was last placed."""
        return {
            row["worker_sid"]
            for row in tx.all(
                "SELECT worker_sid FROM reservations WHERE task_sid = ? AND ("
                " reservation_status = 'pending' OR (reservation_status IN ('rejected', 'timeout')"
                " AND date_updated >= ?))",
                (task["sid"], task["routing_date"] or ""),
            )
        }

    def route_task(self, tx: Transaction, workspace_sid: str, task_sid: str) -> None:
        """Offer a pending task to the best available workers of its queue."""
        task = self.engine._task_row(tx, task_sid)
        if task is None or task["assignment_status"] != "pending" or not task["task_queue_sid"]:
            return
        now = self.engine._now()
        if task["target_timeout_at"] is not None and task["target_timeout_at"] <= to_storage(now):
            self.target_timed_out(tx, task_sid)
            return  # the move noted task.placed, which routes it again
        queue = tx.one(
            "SELECT max_reserved_workers FROM task_queues WHERE sid = ?",
            (task["task_queue_sid"],),
        )
        if queue is None:
            return
        workers = self._candidates(tx, workspace_sid, task, queue["max_reserved_workers"], now)
        for worker_sid in workers:
            self.engine.reserve(workspace_sid, task_sid, worker_sid)

    def _candidates(
        self,
        tx: Transaction,
        workspace_sid: str,
        task: dict[str, Any],
        wanted: int,
        now: datetime,
    ) -> list[str]:
        target = self._target(tx, task)
        refused = self._refused(tx, task)
        params: list[Any] = [task["task_queue_sid"]]
        if self._multi_task(tx, workspace_sid):
            sql = _MULTI_TASK_CANDIDATES + _MULTI_TASK_FREE
            params.append(task["task_channel_sid"])
        else:
            sql = _SINGLE_TASK_CANDIDATES
        if task["routing_target"]:
            sql += " AND wq.worker_sid = ?"
            params.append(task["routing_target"])
        sql += " ORDER BY wq.idle_since, wq.worker_sid"
        expression = target.expression if target else None
        order_by = target.order_by if target else ()
        context: dict[str, Any] | None = None
        if expression is not None:
            context = {
                "task": _attributes(task["attributes"]),
                "taskrouter": taskrouter_context(now),
            }
        chosen: list[tuple[tuple, int, str]] = []
        cursor = tx.execute(sql, params)
        try:
            for position, row in enumerate(cursor):
                if row["worker_sid"] in refused:
                    continue
                worker: dict[str, Any] | None = None
                if context is not None:
                    worker = _worker_context(row)
                    context["worker"] = worker
                    if not expression.evaluate(context):
                        continue
                if order_by:
                    worker = worker or _worker_context(row)
                    chosen.append((_sort_key(order_by, worker), position, row["worker_sid"]))
                    continue
                chosen.append(((), position, row["worker_sid"]))
                if len(chosen) >= wanted:
                    break
        finally:
            cursor.close()
        chosen.sort()
        return [worker_sid for _, _, worker_sid in chosen[:wanted]]

    def route_worker(self, tx: Transaction, workspace_sid: str, worker_sid: str) -> None:
        """Offer an available worker the best pending task among the queues it belongs to."""
        multi_task = self._multi_task(tx, workspace_sid)
        # Multi-tasking: one offer per task channel, so look again after each offer.
        for _ in range(64 if multi_task else 1):
            if not self._route_worker_once(tx, workspace_sid, worker_sid, multi_task):
                return

    def _route_worker_once(
        self, tx: Transaction, workspace_sid: str, worker_sid: str, multi_task: bool
    ) -> bool:
        worker = tx.one(
            "SELECT k.sid AS worker_sid, k.friendly_name, k.attributes, k.activity_sid,"
            " k.available, a.friendly_name AS activity_name"
            " FROM workers k JOIN activities a ON a.sid = k.activity_sid WHERE k.sid = ?",
            (worker_sid,),
        )
        if worker is None or not worker["available"]:
            return False
        holding = tx.all(
            "SELECT r.reservation_status, t.task_channel_sid FROM reservations r"
            " JOIN tasks t ON t.sid = r.task_sid"
            " WHERE r.worker_sid = ? AND r.reservation_status IN ('pending', 'accepted')",
            (worker_sid,),
        )
        # Single-tasking: only a pending offer holds the worker (see the note at the top).
        if not multi_task and any(row["reservation_status"] == "pending" for row in holding):
            return False
        busy_channels: set[str | None] = {row["task_channel_sid"] for row in holding}
        refused = {
            row["task_sid"]: row["date_updated"]
            for row in tx.all(
                "SELECT task_sid, max(date_updated) AS date_updated FROM reservations"
                " WHERE worker_sid = ? AND reservation_status IN ('rejected', 'timeout')"
                " GROUP BY task_sid",
                (worker_sid,),
            )
        }
        queues = tx.all(
            "SELECT q.sid, q.task_order FROM worker_queues wq"
            " JOIN task_queues q ON q.sid = wq.task_queue_sid WHERE wq.worker_sid = ?",
            (worker_sid,),
        )
        if not queues:
            return False
        now = self.engine._now()
        stamp = to_storage(now)
        context: dict[str, Any] = {"worker": _worker_context(worker)}
        best: dict[str, Any] | None = None
        for queue in queues:
            cursor = tx.execute(_QUEUE_HEAD[queue["task_order"]], (queue["sid"],))
            try:
                for task in cursor:
                    if best is not None and task["priority"] < best["priority"]:
                        break
                    if task["target_timeout_at"] is not None and task["target_timeout_at"] <= stamp:
                        continue  # the timer moves it on
                    if task["sid"] in refused and refused[task["sid"]] >= (
                        task["routing_date"] or ""
                    ):
                        continue
                    if task["routing_target"] and task["routing_target"] != worker_sid:
                        continue
                    if multi_task and task["task_channel_sid"] in busy_channels:
                        continue
                    target = self._target(tx, task)
                    if target is not None and target.expression is not None:
                        context["task"] = _attributes(task["attributes"])
                        context.setdefault("taskrouter", taskrouter_context(now))
                        if not target.expression.evaluate(context):
                            continue
                    if best is None or self._better(tx, workspace_sid, task, best):
                        best = task
                    break
            finally:
                cursor.close()
        if best is None:
            return False
        self.engine.reserve(workspace_sid, best["sid"], worker_sid)
        queue = tx.one(
            "SELECT max_reserved_workers FROM task_queues WHERE sid = ?", (best["task_queue_sid"],)
        )
        if queue["max_reserved_workers"] > 1:
            # The other offers of a multi-reservation task go out with this one.
            for other in self._candidates(
                tx, workspace_sid, best, queue["max_reserved_workers"] - 1, now
            ):
                self.engine.reserve(workspace_sid, best["sid"], other)
        return True

    def _better(
        self, tx: Transaction, workspace_sid: str, task: dict[str, Any], best: dict[str, Any]
    ) -> bool:
        """Across queues: higher priority, then the workspace's prioritize_queue_order."""
        if task["priority"] != best["priority"]:
            return task["priority"] > best["priority"]
        if self.engine._workspace(tx, workspace_sid)["prioritize_queue_order"] == "LIFO":
            return task["date_created"] > best["date_created"]
        return task["date_created"] < best["date_created"]
