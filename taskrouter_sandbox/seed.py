"""The workspace the sandbox starts with, created once and remembered by SID.

"quickstart": activities Offline/Idle/Busy/Reserved, Alice and Bob, the Spanish and English
queues, the workflow. "empty": a new workspace as Twilio makes one (Offline, Available and
Unavailable, the default task channels) for a test to fill.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from taskrouter_sandbox.domain.values import Paging
from taskrouter_sandbox.engine import Engine

SETTING = "seed"

SEEDS = ("quickstart", "empty")
WORKSPACE_NAME = "TaskRouter Quickstart"
EMPTY_WORKSPACE_NAME = "Sandbox workspace"
ACTIVITIES = (("Offline", False), ("Idle", True), ("Busy", False), ("Reserved", False))
WORKERS = (("Alice", {"languages": ["en", "es"]}), ("Bob", {"languages": ["en"]}))
SPANISH_QUEUE = "Customer Care Requests - Spanish"
ENGLISH_QUEUE = "Customer Care Requests - English"
TASK_QUEUES = ((SPANISH_QUEUE, 'languages HAS "es"'), (ENGLISH_QUEUE, 'languages HAS "en"'))
WORKFLOW_NAME = "Incoming Customer Care Requests"
TASK_RESERVATION_TIMEOUT = 1200


@dataclass(frozen=True)
class Seeded:
    """The SIDs of the seeded workspace, by TaskRouter name (the empty one has no workflow)."""

    workspace_sid: str
    workflow_sid: str | None
    task_channel_sid: str
    activity_sids: dict[str, str]
    worker_sids: dict[str, str]
    task_queue_sids: dict[str, str]
    # Older files stored no kind: they were all the quickstart.
    kind: str = "quickstart"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Seeded:
        return cls(**json.loads(text))

    def exports(self) -> list[str]:
        """The SIDs as shell lines, named as the README's walkthrough names them."""
        values = {
            "WS": self.workspace_sid,
            **({"WW": self.workflow_sid} if self.workflow_sid else {}),
            **{name.upper(): sid for name, sid in self.worker_sids.items()},
            **{name.upper(): sid for name, sid in self.activity_sids.items()},
        }
        return [f"export {name}={sid}" for name, sid in values.items()]

    def describe(self) -> list[str]:
        if self.kind == "empty":
            lines = [f"  workspace  {self.workspace_sid}  {EMPTY_WORKSPACE_NAME}"]
        else:
            lines = [
                f"  workspace  {self.workspace_sid}  {WORKSPACE_NAME}",
                f"  workflow   {self.workflow_sid}  {WORKFLOW_NAME}",
            ]
        lines += [f"  activity   {sid}  {name}" for name, sid in self.activity_sids.items()]
        lines += [f"  worker     {sid}  {name}" for name, sid in self.worker_sids.items()]
        lines += [f"  task queue {sid}  {name}" for name, sid in self.task_queue_sids.items()]
        lines.append(f"  channel    {self.task_channel_sid}  default")
        return lines


def _build(engine: Engine) -> Seeded:
    workspace = engine.create_workspace(WORKSPACE_NAME, multi_task_enabled=False)
    workspace_sid = workspace["sid"]
    activity_sids: dict[str, str] = {}
    # A new workspace comes with Offline, Available and Unavailable; the quickstart uses
    # Offline and adds Idle, Busy and Reserved.
    for activity in engine.list_activities(workspace_sid, Paging(page_size=1000)).rows:
        if activity["friendly_name"] == "Offline":
            activity_sids["Offline"] = activity["sid"]
        else:
            engine.delete_activity(workspace_sid, activity["sid"])
    for name, available in ACTIVITIES:
        if name not in activity_sids:
            activity_sids[name] = engine.create_activity(workspace_sid, name, available=available)[
                "sid"
            ]
    engine.update_workspace(
        workspace_sid,
        default_activity_sid=activity_sids["Offline"],
        timeout_activity_sid=activity_sids["Offline"],
    )
    worker_sids = {
        name: engine.create_worker(
            workspace_sid,
            name,
            activity_sid=activity_sids["Offline"],
            attributes=json.dumps(attributes),
        )["sid"]
        for name, attributes in WORKERS
    }
    task_queue_sids = {
        name: engine.create_task_queue(
            workspace_sid,
            name,
            target_workers=target_workers,
            reservation_activity_sid=activity_sids["Reserved"],
            assignment_activity_sid=activity_sids["Busy"],
        )["sid"]
        for name, target_workers in TASK_QUEUES
    }
    configuration = {
        "task_routing": {
            "filters": [
                {
                    "filter_friendly_name": "Spanish",
                    "expression": 'selected_language == "es"',
                    "targets": [{"queue": task_queue_sids[SPANISH_QUEUE]}],
                },
                {
                    "filter_friendly_name": "English",
                    "expression": 'selected_language == "en"',
                    "targets": [{"queue": task_queue_sids[ENGLISH_QUEUE]}],
                },
            ]
        }
    }
    workflow = engine.create_workflow(
        workspace_sid,
        WORKFLOW_NAME,
        json.dumps(configuration),
        task_reservation_timeout=TASK_RESERVATION_TIMEOUT,
    )
    channel = engine.get_task_channel(workspace_sid, "default")
    return Seeded(
        workspace_sid=workspace_sid,
        workflow_sid=workflow["sid"],
        task_channel_sid=channel["sid"],
        activity_sids=activity_sids,
        worker_sids=worker_sids,
        task_queue_sids=task_queue_sids,
    )


def _build_empty(engine: Engine) -> Seeded:
    workspace_sid = engine.create_workspace(EMPTY_WORKSPACE_NAME)["sid"]
    activities = engine.list_activities(workspace_sid, Paging(page_size=1000)).rows
    return Seeded(
        workspace_sid=workspace_sid,
        workflow_sid=None,
        task_channel_sid=engine.get_task_channel(workspace_sid, "default")["sid"],
        activity_sids={activity["friendly_name"]: activity["sid"] for activity in activities},
        worker_sids={},
        task_queue_sids={},
        kind="empty",
    )


def ensure_seeded(engine: Engine, kind: str = "quickstart") -> Seeded:
    """The seeded workspace: created on first start (or after it was deleted), else reused,
    whatever kind it was (a file keeps the workspace it has).

    Runs in one transaction, so two processes starting on the same file seed it once.
    """
    if kind not in SEEDS:
        raise ValueError(f"the seed is one of {', '.join(SEEDS)}, not {kind!r}")
    with engine.store.transaction() as tx:
        stored = tx.setting(SETTING)
        if stored is not None:
            seeded = Seeded.from_json(stored)
            if tx.scalar("SELECT 1 FROM workspaces WHERE sid = ?", (seeded.workspace_sid,)):
                return seeded
        seeded = _build(engine) if kind == "quickstart" else _build_empty(engine)
        tx.set_setting(SETTING, seeded.to_json())
        return seeded
