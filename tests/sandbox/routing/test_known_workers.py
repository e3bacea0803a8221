"""Known-agent routing through the official twilio library, against a live sandbox.

Twilio's page "Known Agent Routing" (taskrouter/workflow-configuration/known-agent-routing):
a workflow target names its agent with "known_worker_sid": "task.agent_sid" or
"known_worker_friendly_name": "task.agent_friendly_name" (one or the other); the value is a
task attribute holding the agent's SID or friendly name, and "the Workflow will try to target
the Worker whose SID matches the Task's agent SID or the agent's friendly name". Error pages
40152 ("Invalid Queue for Known Worker": the worker is not a member of the target's TaskQueue)
and 40155 ("Invalid Workspace for Known Worker") are what TaskRouter reports when it cannot.
"Lifecycle of a Task: Timeout Evaluation" (task-evaluation) and the Workflows Overview: a
task waits in a target until a worker takes it or the target's timeout moves it on.

Time moves only through the injected ManualClock; timers fire through engine.fire_due().
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.sandbox.conftest import Live, live_sandbox

TIMEOUT = 30


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    with live_sandbox() as running:
        running.client.monitor.base_url = running.base_url
        yield running


@dataclass
class Floor:
    """A workspace with a Sales queue (team == "sales": Alice, Bob) and Everyone, Carol in
    support only, and a workflow whose first target is a known-agent target."""

    live: Live
    workspace: Any
    workspace_sid: str
    activities: dict[str, str]
    sales: str
    everyone: str
    workers: dict[str, str]
    workflow_sid: str

    def set_activity(self, name: str, activity: str) -> None:
        self.workspace.workers(self.workers[name]).update(activity_sid=self.activities[activity])

    def task(self, **attributes: Any) -> Any:
        return self.workspace.tasks.create(
            attributes=json.dumps(attributes), workflow_sid=self.workflow_sid
        )

    def offered_to(self, task_sid: str) -> list[str]:
        """Names of the workers holding a pending reservation of the task."""
        names = {sid: name for name, sid in self.workers.items()}
        return [
            names[reservation.worker_sid]
            for reservation in self.workspace.tasks(task_sid).reservations.list()
            if reservation.reservation_status == "pending"
        ]

    def advance(self, seconds: float) -> None:
        self.live.clock.advance(seconds)
        self.live.sandbox.engine.fire_due()

    def alerts(self) -> list[Any]:
        return [
            alert
            for alert in self.live.client.monitor.v1.alerts.list()
            if alert.service_sid == self.workspace_sid
        ]


def _floor(live: Live, known: dict[str, Any], *, multi_task: bool = False) -> Floor:
    workspace_sid = live.new_workspace("Known agents", multi_task_enabled=multi_task).sid
    workspace = live.v1.workspaces(workspace_sid)
    activities = {a.friendly_name: a.sid for a in workspace.activities.list()}
    sales = workspace.task_queues.create(friendly_name="Sales", target_workers='team == "sales"')
    everyone = workspace.task_queues.create(friendly_name="Everyone", target_workers="1==1")
    workers = {
        name: workspace.workers.create(
            friendly_name=name, attributes=json.dumps({"team": team})
        ).sid
        for name, team in (("Alice", "sales"), ("Bob", "sales"), ("Carol", "support"))
    }
    configuration = {
        "task_routing": {
            "filters": [
                {
                    "filter_friendly_name": "Known agent first",
                    "expression": "1==1",
                    "targets": [
                        {"queue": sales.sid, "timeout": TIMEOUT, **known},
                        {"queue": everyone.sid},
                    ],
                }
            ]
        }
    }
    workflow = workspace.workflows.create(
        friendly_name="Known agent", configuration=json.dumps(configuration)
    )
    return Floor(
        live, workspace, workspace_sid, activities, sales.sid, everyone.sid, workers, workflow.sid
    )


BY_SID = {"known_worker_sid": "task.agent_sid"}
BY_NAME = {"known_worker_friendly_name": "task.agent_friendly_name"}


@pytest.mark.parametrize("multi_task", [False, True], ids=["single-tasking", "multitasking"])
def test_known_worker_sid_gets_the_task_though_another_was_idle_longer(
    live: Live, multi_task: bool
) -> None:
    """Known Agent Routing: the task goes to the worker whose SID the attribute holds, not
    to the one idle the longest (the default ordering of Ordering Workers)."""
    floor = _floor(live, BY_SID, multi_task=multi_task)
    floor.set_activity("Bob", "Available")
    floor.advance(60)
    floor.set_activity("Alice", "Available")

    task = floor.task(agent_sid=floor.workers["Alice"])

    assert floor.offered_to(task.sid) == ["Alice"]
    fetched = floor.workspace.tasks(task.sid).fetch()
    assert fetched.assignment_status == "reserved"
    assert fetched.task_queue_sid == floor.sales
    matched = floor.workspace.events.list(task_sid=task.sid, event_type="workflow.target-matched")
    assert [e.event_data["workflow_filter_target_queue_sid"] for e in matched] == [floor.sales]


def test_known_worker_friendly_name_gets_the_task(live: Live) -> None:
    """Known Agent Routing: "known_worker_friendly_name": "task.agent_friendly_name" targets
    the worker whose friendly name the attribute holds."""
    floor = _floor(live, BY_NAME)
    floor.set_activity("Bob", "Available")
    floor.advance(60)
    floor.set_activity("Alice", "Available")

    task = floor.task(agent_friendly_name="Alice")

    assert floor.offered_to(task.sid) == ["Alice"]


def test_a_nested_task_attribute_names_the_known_worker(live: Live) -> None:
    """Known Agent Routing: the value is a task attribute; a nested one is reached by its
    dotted path, as in every task.* name of TaskRouter's expressions."""
    floor = _floor(live, {"known_worker_sid": "task.customer.last_agent"})
    floor.set_activity("Bob", "Available")
    floor.set_activity("Alice", "Available")

    task = floor.task(customer={"last_agent": floor.workers["Bob"]})

    assert floor.offered_to(task.sid) == ["Bob"]


@pytest.mark.parametrize("activity", ["Offline", "Unavailable"])
def test_unavailable_known_worker_keeps_the_task_until_the_timeout_moves_it_on(
    live: Live, activity: str
) -> None:
    """Known Agent Routing with Timeout Evaluation: while the known worker is unavailable the
    task waits in the target, offered to nobody else; the target's timeout moves it to the
    next target, where any member of that queue takes it."""
    floor = _floor(live, BY_SID)
    floor.set_activity("Alice", activity)
    floor.set_activity("Bob", "Available")

    task = floor.task(agent_sid=floor.workers["Alice"])

    assert floor.offered_to(task.sid) == []
    floor.advance(TIMEOUT - 1)
    waiting = floor.workspace.tasks(task.sid).fetch()
    assert (waiting.assignment_status, waiting.task_queue_sid) == ("pending", floor.sales)
    assert floor.offered_to(task.sid) == []

    floor.advance(1)

    moved = floor.workspace.tasks(task.sid).fetch()
    assert moved.task_queue_sid == floor.everyone
    assert floor.offered_to(task.sid) == ["Bob"]
    types = [e.event_type for e in floor.workspace.events.list(task_sid=task.sid)]
    assert "task-queue.moved" in types  # an intermediate target: no workflow.timeout


def test_busy_known_worker_keeps_the_task_until_the_timeout_moves_it_on(live: Live) -> None:
    """Known Agent Routing with Timeout Evaluation: a known worker holding another offer is
    not free for this task (single-tasking workspace); the task is not offered to the other
    available member of the queue, and moves on at the target's timeout."""
    floor = _floor(live, BY_SID)
    floor.set_activity("Alice", "Available")
    first = floor.task(agent_sid=floor.workers["Alice"])
    assert floor.offered_to(first.sid) == ["Alice"]
    floor.set_activity("Bob", "Available")

    second = floor.task(agent_sid=floor.workers["Alice"])

    assert floor.offered_to(second.sid) == []
    floor.advance(TIMEOUT)
    assert floor.workspace.tasks(second.sid).fetch().task_queue_sid == floor.everyone
    assert floor.offered_to(second.sid) == ["Bob"]


def test_a_worker_becoming_available_takes_its_own_known_agent_task_not_anothers(
    live: Live,
) -> None:
    """Known Agent Routing: a worker who becomes available is offered the task that names
    it, passing over an older task in the same queue that names another worker; that one
    goes to its own worker when it becomes available."""
    floor = _floor(live, BY_SID)
    for_bob = floor.task(agent_sid=floor.workers["Bob"])
    floor.advance(1)
    for_alice = floor.task(agent_sid=floor.workers["Alice"])

    floor.set_activity("Alice", "Available")

    assert floor.offered_to(for_alice.sid) == ["Alice"]
    assert floor.offered_to(for_bob.sid) == []
    floor.set_activity("Bob", "Available")
    assert floor.offered_to(for_bob.sid) == ["Bob"]


def test_a_worker_not_in_the_targets_queue_is_not_offered_the_task_and_alerts_40152(
    live: Live,
) -> None:
    """Error 40152 "Invalid Queue for Known Worker": the worker named is not a member of
    the TaskQueue of the workflow target. The task is not offered to it (nor to anyone
    else) and waits until the target's timeout moves it on."""
    floor = _floor(live, BY_SID)
    floor.set_activity("Carol", "Available")
    floor.advance(1)
    floor.set_activity("Bob", "Available")

    task = floor.task(agent_sid=floor.workers["Carol"])

    assert floor.offered_to(task.sid) == []
    (alert,) = floor.alerts()
    assert alert.error_code == "40152" and alert.log_level == "error"
    # Raised by routing, not by a request: no request method or URL to show.
    assert alert.request_method is None and alert.request_url is None
    assert task.sid in alert.alert_text and floor.workers["Carol"] in alert.alert_text
    assert floor.sales in alert.alert_text
    floor.advance(TIMEOUT)
    assert floor.workspace.tasks(task.sid).fetch().task_queue_sid == floor.everyone
    assert floor.offered_to(task.sid) == ["Carol"]  # idle the longest, a member of Everyone


def _stranger(live: Live) -> str:
    elsewhere = live.v1.workspaces(live.new_workspace("Elsewhere").sid)
    return elsewhere.workers.create(friendly_name="Stranger").sid


@pytest.mark.parametrize(
    ("known", "attributes"),
    [
        (BY_SID, {}),
        (BY_SID, {"agent_sid": "WK" + "0" * 32}),
        (BY_SID, {"agent_sid": 42}),
        (BY_SID, "stranger"),
        (BY_NAME, {"agent_friendly_name": "Nobody"}),
    ],
    ids=["missing", "unknown-sid", "not-a-string", "other-workspace", "unknown-name"],
)
def test_a_value_naming_no_worker_of_the_workspace_alerts_40155_and_waits(
    live: Live, known: dict[str, str], attributes: Any
) -> None:
    """Error 40155 "Invalid Workspace for Known Worker": the worker targeted is not a member
    of the workflow's workspace. Nobody is offered the task until the target's timeout
    moves it on."""
    floor = _floor(live, known)
    floor.set_activity("Alice", "Available")
    if attributes == "stranger":
        attributes = {"agent_sid": _stranger(live)}

    task = floor.task(**attributes)

    assert floor.offered_to(task.sid) == []
    (alert,) = floor.alerts()
    assert alert.error_code == "40155" and task.sid in alert.alert_text
    assert next(iter(known.values())) in alert.alert_text
    floor.advance(TIMEOUT)
    assert floor.offered_to(task.sid) == ["Alice"]


def test_the_known_worker_must_also_match_the_targets_expression(live: Live) -> None:
    """A known-agent target with an expression (the Workflows Overview's target
    "expression" narrows the queue's workers): the known worker is offered the task only
    when it matches."""
    floor = _floor(live, {**BY_SID, "expression": "worker.level >= 2"})
    floor.workspace.workers(floor.workers["Bob"]).update(
        attributes=json.dumps({"team": "sales", "level": 1})
    )
    floor.workspace.workers(floor.workers["Alice"]).update(
        attributes=json.dumps({"team": "sales", "level": 3})
    )
    floor.set_activity("Bob", "Available")
    floor.set_activity("Alice", "Available")

    for_bob = floor.task(agent_sid=floor.workers["Bob"])
    for_alice = floor.task(agent_sid=floor.workers["Alice"])

    assert floor.offered_to(for_bob.sid) == []
    assert floor.offered_to(for_alice.sid) == ["Alice"]


def test_updating_the_attribute_retargets_the_task(live: Live) -> None:
    """Updating a pending task's attributes evaluates it against its workflow again
    (Lifecycle of a Task: Workflows and Assignment), so the known worker is read anew."""
    floor = _floor(live, BY_SID)
    floor.set_activity("Bob", "Available")
    task = floor.task(agent_sid=floor.workers["Alice"])
    assert floor.offered_to(task.sid) == []

    floor.workspace.tasks(task.sid).update(
        attributes=json.dumps({"agent_sid": floor.workers["Bob"]})
    )

    assert floor.offered_to(task.sid) == ["Bob"]


def test_a_routing_target_and_a_known_worker_must_agree(live: Live) -> None:
    """The Task resource's RoutingTarget ("A SID of a Worker ... to route a Task to") and a
    known-agent target each name the one worker to offer the task to; the task goes to
    that worker when both name it, and to nobody when they name two different workers."""
    floor = _floor(live, BY_SID)
    floor.set_activity("Bob", "Available")
    floor.set_activity("Alice", "Available")

    def task(agent: str, routing_target: str) -> Any:
        return floor.workspace.tasks.create(
            attributes=json.dumps({"agent_sid": floor.workers[agent]}),
            workflow_sid=floor.workflow_sid,
            routing_target=floor.workers[routing_target],
        )

    disagreeing = task("Alice", "Bob")
    assert floor.offered_to(disagreeing.sid) == []
    agreeing = task("Alice", "Alice")
    assert floor.offered_to(agreeing.sid) == ["Alice"]
