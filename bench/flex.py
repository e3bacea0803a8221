"""Benchmark 8: a Flex-sized workspace at flat cost. 7,500 online workers over 500 task queues
with skills, languages and teams in their attributes, a workflow of filters routing by the
task's attributes, and 1,000, 10,000 then 100,000 pending tasks; at each size, through the
sandbox under gunicorn with the twilio library: the time to route a new task to an idle
worker, and the time to place a worker who goes idle, p50 and p99, and the server's memory.

The workspace is built by the engine in process on the database file (as the statistics
benchmark plays its database); the server is stopped while it grows and started again over
the same file for each size's measurements.
"""

from __future__ import annotations

import functools
import json
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import BenchError, Report, Row, percentile
from bench.live import SandboxAccount, client_for, sandbox_server

# The targets: p50 at the largest size within this many times p50 at the smallest,
# for both decisions, and the server's memory below this at the largest.
TARGET_RATIO = 2.0
TARGET_MEMORY_MB = 1024.0

TEAMS = 50
SKILLS = (
    "billing",
    "returns",
    "sales",
    "tech",
    "shipping",
    "accounts",
    "fraud",
    "loyalty",
    "warranty",
    "onboarding",
)
SKILLS_PER_WORKER = 3
# Every worker speaks one to three of these; a task is in one, English most often.
LANGUAGES = ("en", "es", "fr", "de", "pt")
TASK_LANGUAGES = ("en", "en", "en", "en", "en", "es", "es", "fr", "de", "pt")
PRIORITIES = (0, 0, 0, 0, 5, 5, 10)
# The workflows: each serves this many teams (all their skills), so 10 workflows of 50
# filters for 50 teams.
TEAMS_PER_WORKFLOW = 5
# A filter's first target asks for a worker speaking the task's language for this long
# (longer than the benchmark runs), its second takes any member of the queue.
LANGUAGE_TIMEOUT = 7200
TASK_RESERVATION_TIMEOUT = 3600


@dataclass(frozen=True)
class Size:
    workers: int = 7500
    teams: int = TEAMS
    # The teams whose queues are empty and whose workers are idle: a new task for them
    # is routed at once (decision a). The others' queues hold every pending task.
    quiet_teams: int = 5
    # Workers of the busy teams kept Offline: each goes Available once (decision b).
    offline_pool: int = 400
    pending: tuple[int, ...] = (1000, 10_000, 100_000)
    samples: int = 200
    warmup: int = 10
    # Tasks created per transaction while the workspace grows (one operation each).
    batch: int = 100
    # The engine creates this many pending tasks; the rest are copies of them (copy_tasks).
    engine_tasks: int = 10_000


FULL = Size()
SMOKE = Size(
    workers=300,
    teams=10,
    quiet_teams=2,
    offline_pool=20,
    pending=(200, 600),
    samples=8,
    warmup=2,
    engine_tasks=300,
)


@dataclass
class Built:
    """What the engine built: the SIDs the measurements use and how long the building took."""

    workspace: str
    available: str
    offline: str
    quiet_tasks: list[tuple[str, str]]  # (workflow SID, attributes) of tasks for quiet teams
    pool: list[str]  # offline workers of the busy teams
    workers: int = 0
    queues: int = 0
    workflows: int = 0
    filters: int = 0
    pending: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


# -- the workspace, built by the engine -----------------------------------------------------


def team_name(index: int) -> str:
    return f"t{index:02d}"


def worker_attributes(index: int, size: Size, rng: random.Random) -> dict:
    team = index % size.teams
    others = [language for language in LANGUAGES if language != "en"]
    # Most speak English and one or two more; one in five speaks only other languages.
    if rng.random() < 0.8:
        languages = ["en", *rng.sample(others, rng.choice((0, 1, 1, 2)))]
    else:
        languages = rng.sample(others, rng.choice((1, 2)))
    return {
        "team": team_name(team),
        "skills": rng.sample(SKILLS, SKILLS_PER_WORKER),
        "languages": languages,
        "level": rng.randint(1, 5),
        "location": rng.choice(("Lisbon", "Dublin", "Austin", "Manila")),
    }


def queue_expression(team: int, skill: str) -> str:
    return f'team == "{team_name(team)}" AND skills HAS "{skill}"'


def workflow_configuration(queues: dict[tuple[int, str], str], teams: range) -> str:
    filters = [
        {
            "filter_friendly_name": f"{team_name(team)} {skill}",
            "expression": f'team == "{team_name(team)}" AND skill == "{skill}"',
            "targets": [
                {
                    "queue": queues[team, skill],
                    "expression": "task.language IN worker.languages",
                    "timeout": LANGUAGE_TIMEOUT,
                },
                {"queue": queues[team, skill], "priority": 20},
            ],
        }
        for team in teams
        for skill in SKILLS
    ]
    # An escalation filter first: priority tasks go to the senior members of their queue.
    first = teams[0]
    filters.insert(
        0,
        {
            "filter_friendly_name": "Escalations",
            "expression": f'escalated == true AND team == "{team_name(first)}"',
            "targets": [
                {
                    "queue": queues[first, SKILLS[0]],
                    "expression": "worker.level >= 4",
                    "order_by": "worker.level DESC",
                }
            ],
        },
    )
    return json.dumps({"task_routing": {"filters": filters}})


def task_attributes(team: int, skill: str, rng: random.Random, ticket: int) -> str:
    return json.dumps(
        {
            "team": team_name(team),
            "skill": skill,
            "language": rng.choice(TASK_LANGUAGES),
            "customer": f"C{rng.randrange(10**6):06d}",
            "ticket": ticket,
            "escalated": False,
        }
    )


# Copies are dated up to this many seconds before their original (all of its dates by the
# same amount), so a queue's copies interleave with its other tasks instead of queueing up
# behind their original in runs of identical tasks.
COPY_SPREAD = 1800
_TASK_DATES = frozenset(
    {
        "date_created",
        "date_updated",
        "timeout_at",
        "task_queue_entered_date",
        "target_entered_date",
        "target_timeout_at",
        "routing_date",
        "virtual_start_time",
    }
)


def _shifted(column: str, seconds: str) -> str:
    """SQL for a stored date (2024-01-01T09:00:00.000000Z, or NULL) moved `seconds` back."""
    return (
        f"strftime('%Y-%m-%dT%H:%M:%S', substr({column}, 1, 19), '-' || {seconds} || ' seconds')"
        f" || substr({column}, 20)"
    )


class Builder:
    """The engine in process on the database file, building and then growing the workspace."""

    def __init__(self, path: Path, account_sid: str, size: Size, seed: int = 18) -> None:
        from taskrouter_sandbox.clock import SystemClock
        from taskrouter_sandbox.engine import Engine
        from taskrouter_sandbox.store import Store

        self.size = size
        self.rng = random.Random(seed)
        self.store = Store(str(path))
        self.engine = Engine(self.store, SystemClock(), account_sid)
        self.engine.ensure_routing_state()
        self.busy_filters: list[tuple[str, int, str]] = []  # (workflow, team, skill)
        self.tickets = 0

    def close(self) -> None:
        self.store.close()

    def build(self) -> Built:
        from taskrouter_sandbox.domain.values import Paging

        size, engine, rng = self.size, self.engine, self.rng
        started = time.perf_counter()
        workspace = engine.create_workspace("Flex-sized contact centre", multi_task_enabled=False)[
            "sid"
        ]
        names = {
            row["friendly_name"]: row["sid"]
            for row in engine.list_activities(workspace, Paging()).rows
        }
        busy = engine.create_activity(workspace, "Busy", available=False)["sid"]
        queues = {
            (team, skill): engine.create_task_queue(
                workspace,
                f"{team_name(team)} {skill}",
                target_workers=queue_expression(team, skill),
                assignment_activity_sid=busy,
            )["sid"]
            for team in range(size.teams)
            for skill in SKILLS
        }
        workflows: dict[int, str] = {}
        filters = 0
        for first in range(0, size.teams, TEAMS_PER_WORKFLOW):
            teams = range(first, min(first + TEAMS_PER_WORKFLOW, size.teams))
            configuration = workflow_configuration(queues, teams)
            filters += len(json.loads(configuration)["task_routing"]["filters"])
            sid = engine.create_workflow(
                workspace,
                f"Region {first // TEAMS_PER_WORKFLOW + 1}",
                configuration,
                task_reservation_timeout=TASK_RESERVATION_TIMEOUT,
            )["sid"]
            for team in teams:
                workflows[team] = sid
        setup = time.perf_counter()

        quiet = range(size.teams - size.quiet_teams, size.teams)
        pool: list[str] = []
        # The languages spoken in each idle team's queue: its new tasks ask for one of them.
        spoken: dict[tuple[int, str], set[str]] = {}
        with self.store.transaction():
            for index in range(size.workers):
                team = index % size.teams
                worker = worker_attributes(index, size, rng)
                if team in quiet:
                    activity = names["Available"]
                elif len(pool) < size.offline_pool and "en" in worker["languages"]:
                    # English speakers, so most find a task they can take at every size.
                    activity = names["Offline"]
                else:
                    # On a task: what the queue's assignment activity sets on accept.
                    activity = busy
                if team in quiet:
                    for skill in worker["skills"]:
                        spoken.setdefault((team, skill), set()).update(worker["languages"])
                sid = engine.create_worker(
                    workspace,
                    f"Agent {index:05d}",
                    activity_sid=activity,
                    attributes=json.dumps(worker),
                )["sid"]
                if activity == names["Offline"]:
                    pool.append(sid)
        workers_done = time.perf_counter()
        self.busy_filters = [
            (workflows[team], team, skill)
            for team in range(size.teams)
            if team not in quiet
            for skill in SKILLS
        ]
        quiet_tasks = []
        choices = sorted(spoken)
        for _ in range(size.samples + size.warmup):
            team, skill = rng.choice(choices)
            attributes = json.loads(task_attributes(team, skill, rng, -1))
            if attributes["language"] not in spoken[team, skill]:
                attributes["language"] = rng.choice(sorted(spoken[team, skill]))
            quiet_tasks.append((workflows[team], json.dumps(attributes)))
        return Built(
            workspace=workspace,
            available=names["Available"],
            offline=names["Offline"],
            quiet_tasks=quiet_tasks,
            pool=pool,
            workers=size.workers,
            queues=len(queues),
            workflows=len(set(workflows.values())),
            filters=filters,
            seconds={"setup": setup - started, "workers": workers_done - setup},
        )

    def grow(self, built: Built, pending: int) -> float:
        """Pending tasks in the busy teams' queues until the workspace holds `pending`.
        Up to size.engine_tasks, each is created by the engine as a REST create would be (its
        workflow walk, its events, routing: every member of those queues is Busy or Offline,
        so none is reserved); past them, copies of those (copy_tasks). Returns the seconds
        it took."""
        started = time.perf_counter()
        engine, rng = self.engine, self.rng
        while built.pending < min(pending, self.size.engine_tasks):
            count = min(self.size.batch, pending - built.pending)
            with self.store.transaction():
                for _ in range(count):
                    workflow, team, skill = rng.choice(self.busy_filters)
                    self.tickets += 1
                    task = engine.create_task(
                        built.workspace,
                        attributes=task_attributes(team, skill, rng, self.tickets),
                        workflow_sid=workflow,
                        priority=rng.choice(PRIORITIES),
                    )
                    if task["assignment_status"] != "pending":
                        raise BenchError(f"a backlog task was {task['assignment_status']}")
            built.pending += count
        if built.pending < pending:
            self.copy_tasks(built, pending - built.pending)
        return time.perf_counter() - started

    def copy_tasks(self, built: Built, count: int) -> None:
        """count more pending tasks, each a copy of one the engine made (its row and its
        events, with new SIDs and ticket numbers, dated up to COPY_SPREAD earlier, its
        language and priority drawn afresh), in one transaction: the rows and indexes routing
        reads are the engine's own, at a small part of the engine's cost. (The events' JSON
        keeps the original's attributes and priority; routing never reads it.)"""
        with self.store.transaction() as tx:
            columns = {
                table: [
                    row["name"]
                    for row in tx.all(f"PRAGMA table_info({table})")
                    if row["name"] not in ("seq", "sid")
                ]
                for table in ("tasks", "events")
            }
            made = tx.scalar(
                "SELECT count(*) FROM tasks WHERE workspace_sid = ? AND assignment_status ="
                " 'pending' AND json_extract(attributes, '$.ticket') BETWEEN 1 AND ?",
                (built.workspace, self.size.engine_tasks),
            )
            tx.execute("DROP TABLE IF EXISTS temp.copies")
            tx.execute(
                "CREATE TEMP TABLE copies (original TEXT NOT NULL, sid TEXT PRIMARY KEY,"
                " ticket INTEGER NOT NULL, shift INTEGER NOT NULL, language TEXT NOT NULL,"
                " priority INTEGER NOT NULL)"
            )
            while count > 0:
                batch = min(count, made)
                tx.execute(
                    "INSERT INTO temp.copies (original, sid, ticket, shift, language, priority)"
                    " SELECT sid, 'WT' || lower(hex(randomblob(16))), ? + row_number() OVER"
                    f" (ORDER BY seq), 1 + abs(random()) % {COPY_SPREAD},"
                    f" json_extract(?, '$[' || (abs(random()) % {len(TASK_LANGUAGES)}) || ']'),"
                    f" json_extract(?, '$[' || (abs(random()) % {len(PRIORITIES)}) || ']')"
                    " FROM (SELECT sid, seq FROM tasks WHERE workspace_sid = ?"
                    " AND assignment_status = 'pending' AND json_extract(attributes, '$.ticket')"
                    " BETWEEN 1 AND ? ORDER BY random() LIMIT ?)",
                    (
                        self.tickets,
                        json.dumps(TASK_LANGUAGES),
                        json.dumps(PRIORITIES),
                        built.workspace,
                        self.size.engine_tasks,
                        batch,
                    ),
                )
                self.tickets += batch
                count -= batch
                built.pending += batch
            task_columns = ", ".join(columns["tasks"])
            task_values = ", ".join(
                "json_set(t.attributes, '$.ticket', c.ticket, '$.language', c.language)"
                if name == "attributes"
                else "c.priority"
                if name == "priority"
                else _shifted(f"t.{name}", "c.shift")
                if name in _TASK_DATES
                else f"t.{name}"
                for name in columns["tasks"]
            )
            tx.execute(
                f"INSERT INTO tasks (sid, {task_columns}) SELECT c.sid, {task_values}"
                " FROM temp.copies c JOIN tasks t ON t.sid = c.original ORDER BY c.rowid"
            )
            event_columns = ", ".join(columns["events"])
            event_values = ", ".join(
                {
                    "event_data": "replace(replace(e.event_data, x.original, x.task_sid),"
                    " e.sid, x.sid)",
                    "task_sid": "x.task_sid",
                    "resource_sid": "replace(e.resource_sid, x.original, x.task_sid)",
                    "description": "replace(e.description, x.original, x.task_sid)",
                    "event_date": _shifted("e.event_date", "x.shift"),
                    "event_date_ms": "e.event_date_ms - 1000 * x.shift",
                }.get(name, f"e.{name}")
                for name in columns["events"]
            )
            # Materialized, so each copy's new SID is drawn once and is the same in its row
            # and in its JSON.
            tx.execute(
                "WITH x AS MATERIALIZED (SELECT 'EV' || lower(hex(randomblob(16))) AS sid,"
                " e.seq AS event_seq, c.sid AS task_sid, c.original, c.shift, c.rowid AS copy"
                " FROM temp.copies c JOIN events e ON e.task_sid = c.original)"
                f" INSERT INTO events (sid, {event_columns}) SELECT x.sid, {event_values}"
                " FROM x JOIN events e ON e.seq = x.event_seq ORDER BY x.copy, x.event_seq"
            )
            tx.execute("DROP TABLE temp.copies")


# -- the decisions, timed through the server -------------------------------------------------


@dataclass
class Measured:
    """One size's timings (ms) and what the server used."""

    pending: int
    routed: list[float]
    placed: list[float]
    grow_seconds: float
    memory_mb: float = float("nan")
    largest_process_mb: float = float("nan")


def _until_offered(look: Callable[[], list], tries: int = 20) -> list:
    """The reservations look() lists, once there are some (routing runs inside the operation
    that made it possible, before its commit, so the first look finds them)."""
    for _ in range(tries):
        found = look()
        if found:
            return found
        time.sleep(0.001)
    return []


def measure(
    scratch: Path, account: SandboxAccount, built: Built, size: Size, offset: int
) -> tuple[list[float], list[float], float, float]:
    """Serve the file and time both decisions; returns (routed, placed, memory, largest)."""
    server, _ = sandbox_server(scratch, account)
    with server:
        server.start()
        server.wait_ready()
        ws = client_for(server.url, account).taskrouter.v1.workspaces(built.workspace)
        routed: list[float] = []
        for index, (workflow, attributes) in enumerate(built.quiet_tasks):
            started = time.perf_counter()
            task = ws.tasks.create(attributes=attributes, workflow_sid=workflow)
            offers = _until_offered(ws.tasks(task.sid).reservations.list)
            elapsed = (time.perf_counter() - started) * 1000
            if not offers:
                raise BenchError(f"a task for an idle team was not offered ({task.sid})")
            # The offer is withdrawn with the task: its worker is free again (untimed).
            ws.tasks(task.sid).update(assignment_status="canceled", reason="benchmark")
            if index >= size.warmup:
                routed.append(elapsed)
        placed: list[float] = []
        missed = 0
        for index in range(size.samples + size.warmup):
            worker = ws.workers(built.pool[(offset + index) % len(built.pool)])
            started = time.perf_counter()
            worker.update(activity_sid=built.available)
            offers = _until_offered(
                functools.partial(worker.reservations.list, reservation_status="pending")
            )
            elapsed = (time.perf_counter() - started) * 1000
            if len(offers) != 1:
                # Nothing in its queues it could take (its languages): not a placement.
                missed += 1
                continue
            # Back offline, its offer rejected: the task waits in its queue again.
            worker.update(activity_sid=built.offline, reject_pending_reservations=True)
            if index >= size.warmup:
                placed.append(elapsed)
        if missed * 10 > size.samples:
            raise BenchError(f"{missed} workers going idle were offered no task")
        memory = server.peak_memory_mb()
        server.stop()
    return routed, placed, memory[1], memory[0]


def run(size: Size = FULL) -> Report:
    account = SandboxAccount.make()
    results: list[Measured] = []
    wall = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-flex-") as scratch_dir:
        scratch = Path(scratch_dir)
        builder = Builder(scratch / "sandbox.sqlite3", account.account_sid, size)
        try:
            built = builder.build()
            for position, pending in enumerate(size.pending):
                grow_seconds = builder.grow(built, pending)
                routed, placed, memory, largest = measure(
                    scratch, account, built, size, position * (size.samples + size.warmup)
                )
                results.append(Measured(pending, routed, placed, grow_seconds, memory, largest))
        finally:
            builder.close()
    return _report(size, built, results, time.perf_counter() - wall)


def _report(size: Size, built: Built, results: list[Measured], wall: float) -> Report:
    first, last = results[0], results[-1]
    report = Report(
        "8. Flex-sized workspace",
        f"{built.workers:,} workers / {built.queues} queues, pending tasks as labelled",
        f"{first.pending:,} pending",
    )
    full = size == FULL
    for name, key in (("new task routed", "routed"), ("idle worker placed", "placed")):
        low = getattr(first, key)
        for result in results[1:]:
            values = getattr(result, key)
            p50 = percentile(values, 50)
            is_last = result is last
            report.add(
                Row(
                    f"{name}: p50 at {result.pending:,} pending",
                    p50,
                    "ms",
                    percentile(low, 50),
                    target=f"ratio <= {TARGET_RATIO:g}" if is_last else "",
                    met=(p50 <= TARGET_RATIO * percentile(low, 50)) if is_last and full else None,
                    headline=is_last,
                ),
                Row(
                    f"{name}: p99 at {result.pending:,} pending",
                    percentile(values, 99),
                    "ms",
                    percentile(low, 99),
                ),
            )
    report.add(
        Row(
            f"server peak memory at {last.pending:,} pending (all processes)",
            last.memory_mb,
            "MB",
            first.memory_mb,
            target=f"< {TARGET_MEMORY_MB:g} MB",
            met=last.memory_mb < TARGET_MEMORY_MB if full else None,
            headline=True,
        )
    )
    figures = "; ".join(
        f"{result.pending:,} pending: routed p50 {percentile(result.routed, 50):.1f} / p99 "
        f"{percentile(result.routed, 99):.1f} ms, placed p50 {percentile(result.placed, 50):.1f}"
        f" / p99 {percentile(result.placed, 99):.1f} ms, server {result.memory_mb:.0f} MB "
        f"(largest process {result.largest_process_mb:.0f} MB)"
        for result in results
    )
    report.notes += [
        f"Workspace: {built.workers:,} workers (team, three skills, one to three languages, "
        f'level) over {built.queues} queues (`team == "tNN" AND skills HAS "skill"`), '
        f"{built.workflows} workflows of {built.filters} filters in all routing by the task's "
        "team and skill; each filter's first target asks for "
        "`task.language IN worker.languages` for 2 hours, its second takes any member at "
        f"priority 20. The pending tasks wait in the queues of {size.teams - size.quiet_teams}"
        " teams whose workers are Busy (an unavailable activity, the queues' assignment "
        f"activity) or Offline; {size.quiet_teams} teams' workers are idle and their queues "
        "empty.",
        f"Each figure over {size.samples} samples (after {size.warmup} untimed) with the "
        "twilio library over REST, one at a time, each until the reservation shows in a "
        "Reservations list (two calls: routing runs inside the operation, before its commit, "
        "so the first list finds it). New task routed: a task created for an idle team, then "
        "its Reservations listed (then canceled, untimed). Idle worker placed: an Offline "
        "worker of a busy team updated to Available, then its pending Reservations listed: "
        "the best task of its queues (then Offline again rejecting it, untimed).",
        "Per size: " + figures + ".",
        f"Built by the engine in process (not timed): setup {built.seconds['setup']:.1f} s, "
        f"{built.workers:,} workers {built.seconds['workers']:.0f} s, pending tasks "
        + ", ".join(f"to {result.pending:,} in {result.grow_seconds:.0f} s" for result in results)
        + f". The engine created the first {min(size.engine_tasks, last.pending):,} "
        f"({size.batch} operations per transaction); past them each task is a copy of one of "
        "those, its row and its four events with new SIDs and ticket numbers, dated up to "
        f"{COPY_SPREAD // 60} minutes earlier and language and priority drawn afresh (so a "
        "queue's tasks are not runs of one original's copies), made by SQL "
        "in one transaction, since the engine took 332 s (3.7 ms a task) for the 90,000 "
        "more of the first run. Whole benchmark: "
        f"{wall:.0f} s.",
        "Server memory: VmHWM summed over the gunicorn processes, which are restarted for "
        "each size.",
    ]
    return report


if __name__ == "__main__":
    from bench.common import print_report

    print_report(run(SMOKE))
