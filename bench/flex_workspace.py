"""Benchmark 8's workspace (bench/flex.py), built by the engine in process on the database
file: 7,500 workers with a team, three skills and one to three languages over 500 task queues
(one per team and skill), 10 workflows of filters routing by the task's team and skill, and
the pending tasks, grown size by size while the server is stopped.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import BenchError

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
        from taskrouter_sandbox.state import events

        with self.store.transaction() as tx:
            # The engine's last events may still be in the journal: copied from `events`.
            events.move(tx)
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
