"""The sandbox through Twilio's Node.js library, an independent client (tests/node_client.py).

twilio-node builds its own requests and reads answers its own way (camelCase, its date parsing,
its RestException, its paging), so what passes with twilio-python alone can still fail here.
"""

from __future__ import annotations

import json

import pytest

from tests.node_client import NodeClient, NodeError
from tests.sandbox.conftest import Live


def _workspace(node: NodeClient, **fields: object) -> dict:
    return node.call("workspaces", ["create", {"friendlyName": "Node workspace", **fields}])


def _activity(node: NodeClient, workspace_sid: str, name: str) -> str:
    activities = node.call(["workspaces", workspace_sid], "activities", ["list"])
    return next(item["sid"] for item in activities if item["friendlyName"] == name)


def test_a_task_is_reserved_accepted_and_completed(node: NodeClient) -> None:
    """The quickstart's lifecycle, single-tasking as the quickstart builds its workspace."""
    workspace = _workspace(node, multiTaskEnabled=False)
    ws = ["workspaces", workspace["sid"]]
    available = _activity(node, workspace["sid"], "Available")
    unavailable = _activity(node, workspace["sid"], "Unavailable")
    worker = node.call(
        ws,
        "workers",
        ["create", {"friendlyName": "Alice", "attributes": json.dumps({"languages": ["en"]})}],
    )
    queue = node.call(
        ws,
        "taskQueues",
        [
            "create",
            {
                "friendlyName": "English",
                "targetWorkers": "languages HAS 'en'",
                "reservationActivitySid": unavailable,
            },
        ],
    )
    configuration = {"task_routing": {"filters": [], "default_filter": {"queue": queue["sid"]}}}
    workflow = node.call(
        ws,
        "workflows",
        ["create", {"friendlyName": "Default", "configuration": json.dumps(configuration)}],
    )
    task = node.call(
        ws,
        "tasks",
        ["create", {"attributes": json.dumps({"type": "support"}), "workflowSid": workflow["sid"]}],
    )
    assert task["assignmentStatus"] == "pending"
    assert task["taskQueueSid"] == queue["sid"]

    node.call(ws, ["workers", worker["sid"]], ["update", {"activitySid": available}])
    reservations = node.call(ws, ["tasks", task["sid"]], "reservations", ["list"])
    assert [r["reservationStatus"] for r in reservations] == ["pending"]
    assert reservations[0]["workerSid"] == worker["sid"]
    # The queue's reservation activity moved Alice (single-tasking).
    assert node.call(ws, ["workers", worker["sid"]], ["fetch"])["activitySid"] == unavailable

    accepted = node.call(
        ws,
        ["tasks", task["sid"]],
        ["reservations", reservations[0]["sid"]],
        ["update", {"reservationStatus": "accepted"}],
    )
    assert accepted["reservationStatus"] == "accepted"
    completed = node.call(
        ws, ["tasks", task["sid"]], ["update", {"assignmentStatus": "completed", "reason": "done"}]
    )
    assert completed["assignmentStatus"] == "completed"
    assert completed["reason"] == "done"
    # twilio-node parsed the dates it was given.
    assert completed["dateUpdated"].endswith("Z")


def test_errors_reach_twilio_node_as_rest_exceptions(node: NodeClient, live: Live) -> None:
    ws = ["workspaces", live.sandbox.seeded.workspace_sid]
    with pytest.raises(NodeError) as missing:
        node.call(ws, ["tasks", "WT" + "0" * 32], ["fetch"])
    assert (missing.value.status, missing.value.code) == (404, 20404)
    with pytest.raises(NodeError) as refused:
        node.call(ws, "workers", ["create", {"friendlyName": "x", "attributes": "not json"}])
    assert refused.value.status == 400
    assert "Attributes" in refused.value.message


def test_twilio_node_follows_the_sandboxs_pages(node: NodeClient) -> None:
    workspace = _workspace(node)
    ws = ["workspaces", workspace["sid"]]
    for index in range(5):
        node.call(ws, "workers", ["create", {"friendlyName": f"worker {index}"}])
    listed = node.call(ws, "workers", ["list", {"pageSize": 2}])
    assert [item["friendlyName"] for item in listed] == [f"worker {i}" for i in range(5)]
    assert len(node.call(ws, "workers", ["list", {"pageSize": 2, "limit": 3}])) == 3


class _NodeFloor:
    """A single-tasking workspace built through twilio-node: queues taking every worker."""

    def __init__(self, node: NodeClient, live: Live, queues: tuple[str, ...]) -> None:
        self.node, self.live = node, live
        self.sid = _workspace(node, multiTaskEnabled=False)["sid"]
        self.ws = ["workspaces", self.sid]
        self.available = _activity(node, self.sid, "Available")
        self.queues = {
            name: node.call(self.ws, "taskQueues", ["create", {"friendlyName": name}])["sid"]
            for name in queues
        }

    def workflow(self, *targets: dict[str, object]) -> str:
        routing = {"filters": [{"expression": "1==1", "targets": list(targets)}]}
        return self.node.call(
            self.ws,
            "workflows",
            [
                "create",
                {"friendlyName": "Flow", "configuration": json.dumps({"task_routing": routing})},
            ],
        )["sid"]

    def worker(self, name: str) -> str:
        return self.node.call(
            self.ws, "workers", ["create", {"friendlyName": name, "activitySid": self.available}]
        )["sid"]

    def task(self, workflow_sid: str, **attributes: object) -> dict:
        return self.node.call(
            self.ws,
            "tasks",
            ["create", {"attributes": json.dumps(attributes), "workflowSid": workflow_sid}],
        )

    def queue_of(self, task_sid: str) -> str:
        names = {sid: name for name, sid in self.queues.items()}
        return names[self.node.call(self.ws, ["tasks", task_sid], ["fetch"])["taskQueueSid"]]

    def advance(self, seconds: float) -> None:
        self.live.clock.advance(seconds)
        self.live.sandbox.engine.fire_due()


def test_escalation_in_turn_as_twilio_node_sees_it(node: NodeClient, live: Live) -> None:
    """Timeout Evaluation: each target's timeout runs after the previous one's, so a task
    walks Q1 -> Q2 -> Q3 at 2 s and 4 s, and only the final step would fire workflow.timeout."""
    floor = _NodeFloor(node, live, ("Q1", "Q2", "Q3"))
    flow = floor.workflow(
        {"queue": floor.queues["Q1"], "timeout": 2},
        {"queue": floor.queues["Q2"], "timeout": 2},
        {"queue": floor.queues["Q3"]},
    )
    task = floor.task(flow)
    assert floor.queue_of(task["sid"]) == "Q1"
    floor.advance(2)
    assert floor.queue_of(task["sid"]) == "Q2"
    floor.advance(2)
    assert floor.queue_of(task["sid"]) == "Q3"
    events = node.call(floor.ws, "events", ["list", {"taskSid": task["sid"]}])
    types = [event["eventType"] for event in events]
    assert types.count("workflow.target-matched") == 3
    assert "workflow.timeout" not in types


def test_known_agent_routing_through_twilio_node(node: NodeClient, live: Live) -> None:
    """Known Agent Routing: the worker the task's attribute names gets it, not the one idle
    the longest."""
    floor = _NodeFloor(node, live, ("Everyone",))
    floor.worker("Alice")
    bob = floor.worker("Bob")
    flow = floor.workflow(
        {"queue": floor.queues["Everyone"], "known_worker_friendly_name": "task.agent"}
    )
    task = floor.task(flow, agent="Bob")
    reservations = node.call(floor.ws, ["tasks", task["sid"]], "reservations", ["list"])
    assert [r["workerSid"] for r in reservations] == [bob]


def test_a_configuration_key_the_sandbox_does_not_implement_is_refused(
    node: NodeClient, live: Live
) -> None:
    floor = _NodeFloor(node, live, ("Everyone",))
    configuration = {
        "task_routing": {
            "filters": [
                {
                    "expression": "1==1",
                    "timeout": 5,
                    "targets": [{"queue": floor.queues["Everyone"]}],
                }
            ]
        }
    }
    with pytest.raises(NodeError) as refused:
        node.call(
            floor.ws,
            "workflows",
            ["create", {"friendlyName": "x", "configuration": json.dumps(configuration)}],
        )
    assert refused.value.status == 400
    assert "unknown key 'timeout'" in refused.value.message


def test_twilio_node_reads_and_updates_worker_channels(node: NodeClient) -> None:
    """Worker Channel Resource through twilio-node: a new workspace multitasks (Twilio's
    default), every worker has its channels, and chat capacity 2 holds two chat tasks."""
    workspace = _workspace(node)
    assert workspace["multiTaskEnabled"] is True
    ws = ["workspaces", workspace["sid"]]
    available = _activity(node, workspace["sid"], "Available")
    queue = node.call(ws, "taskQueues", ["create", {"friendlyName": "Everyone"}])
    configuration = {"task_routing": {"filters": [], "default_filter": {"queue": queue["sid"]}}}
    node.call(
        ws,
        "workflows",
        ["create", {"friendlyName": "F", "configuration": json.dumps(configuration)}],
    )
    worker = node.call(ws, "workers", ["create", {"friendlyName": "Ann", "activitySid": available}])
    channels = [ws, ["workers", worker["sid"]]]
    listed = node.call(*channels, "workerChannels", ["list"])
    assert [item["taskChannelUniqueName"] for item in listed][:4] == [
        "default",
        "voice",
        "sms",
        "chat",
    ]
    assert {item["configuredCapacity"] for item in listed} == {1}
    updated = node.call(*channels, ["workerChannels", "chat"], ["update", {"capacity": 2}])
    assert (updated["configuredCapacity"], updated["availableCapacityPercentage"]) == (2, 100)
    tasks = [
        node.call(ws, "tasks", ["create", {"attributes": "{}", "taskChannel": "chat"}])
        for _ in range(3)
    ]
    statuses = [node.call(ws, ["tasks", t["sid"]], ["fetch"])["assignmentStatus"] for t in tasks]
    assert statuses == ["reserved", "reserved", "pending"]
    chat = node.call(*channels, ["workerChannels", updated["sid"]], ["fetch"])
    assert (chat["assignedTasks"], chat["availableCapacityPercentage"]) == (2, 0)


def test_twilio_node_sends_if_match_and_meets_412(node: NodeClient, live: Live) -> None:
    """twilio-node's `ifMatch` becomes the If-Match header: a stale one is refused with 412,
    error 20412 (API mutation and conflict resolution)."""
    floor = _NodeFloor(node, live, ("Everyone",))
    worker = floor.worker("Ann")
    ws_worker = [floor.ws, ["workers", worker]]
    node.call(*ws_worker, ["update", {"attributes": '{"step": 1}'}])
    with pytest.raises(NodeError) as stale:
        node.call(*ws_worker, ["update", {"attributes": '{"step": 2}', "ifMatch": '"0"'}])
    assert (stale.value.status, stale.value.code) == (412, 20412)
    current = f'"{live.sandbox.engine.get_worker(floor.sid, worker)["version"]}"'
    updated = node.call(*ws_worker, ["update", {"attributes": '{"step": 2}', "ifMatch": current}])
    assert updated["attributes"] == '{"step": 2}'


def test_a_lifo_queue_hands_twilio_node_the_newest_task(node: NodeClient, live: Live) -> None:
    """Queue Ordering (LIFO): the most recently created task goes first, whatever its
    priority."""
    floor = _NodeFloor(node, live, ())
    queue = node.call(
        floor.ws, "taskQueues", ["create", {"friendlyName": "Newest", "taskOrder": "LIFO"}]
    )
    flow = floor.workflow({"queue": queue["sid"]})
    urgent = node.call(
        floor.ws,
        "tasks",
        ["create", {"attributes": "{}", "workflowSid": flow, "priority": 10}],
    )
    live.clock.advance(1)
    newest = floor.task(flow)
    worker = floor.worker("Ann")
    held = node.call(floor.ws, ["workers", worker], "reservations", ["list"])
    assert [r["taskSid"] for r in held] == [newest["sid"]]
    assert urgent["sid"] != newest["sid"]


def test_cumulative_statistics_through_twilio_node(node: NodeClient, live: Live) -> None:
    """TaskQueue Statistics, CumulativeStatistics as twilio-node reads it (camelCase, its own
    date parsing): a task reserved at once and accepted 30 s later."""
    workspace = _workspace(node, multiTaskEnabled=False)
    ws = ["workspaces", workspace["sid"]]
    available = _activity(node, workspace["sid"], "Available")
    worker = node.call(ws, "workers", ["create", {"friendlyName": "Alice"}])
    node.call(ws, ["workers", worker["sid"]], ["update", {"activitySid": available}])
    queue = node.call(ws, "taskQueues", ["create", {"friendlyName": "All"}])
    configuration = {"task_routing": {"filters": [], "default_filter": {"queue": queue["sid"]}}}
    workflow = node.call(
        ws,
        "workflows",
        ["create", {"friendlyName": "Default", "configuration": json.dumps(configuration)}],
    )
    task = node.call(ws, "tasks", ["create", {"attributes": "{}", "workflowSid": workflow["sid"]}])
    (reservation,) = node.call(ws, ["tasks", task["sid"]], "reservations", ["list"])
    live.clock.advance(30)
    node.call(
        ws,
        ["tasks", task["sid"]],
        ["reservations", reservation["sid"]],
        ["update", {"reservationStatus": "accepted"}],
    )
    statistics = node.call(
        ws,
        ["taskQueues", queue["sid"]],
        ["cumulativeStatistics"],
        ["fetch", {"minutes": 5, "splitByWaitTime": "10"}],
    )
    assert statistics["taskQueueSid"] == queue["sid"]
    assert (statistics["tasksEntered"], statistics["reservationsCreated"]) == (1, 1)
    assert (statistics["reservationsAccepted"], statistics["avgTaskAcceptanceTime"]) == (1, 30)
    assert statistics["waitDurationUntilAccepted"] == {"avg": 30, "min": 30, "max": 30, "total": 30}
    assert statistics["splitByWaitTime"]["10"]["above"]["reservations_accepted"] == 1
    now = live.clock.now()
    assert statistics["endTime"] == now.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    with pytest.raises(NodeError) as refused:
        node.call(
            ws, ["taskQueues", queue["sid"]], ["cumulativeStatistics"], ["fetch", {"minutes": 0}]
        )
    assert (refused.value.status, refused.value.code) == (400, 20001)


def test_twilio_node_reads_a_queues_real_time_statistics(node: NodeClient, live: Live) -> None:
    """TaskQueue RealTime Statistics and its bulk retrieval through twilio-node: a waiting
    task's age moves with the clock, and the bulk body twilio-node sends as JSON is read."""
    workspace = _workspace(node)
    ws = ["workspaces", workspace["sid"]]
    queue = node.call(ws, "taskQueues", ["create", {"friendlyName": "Everyone"}])
    configuration = {"task_routing": {"filters": [], "default_filter": {"queue": queue["sid"]}}}
    node.call(
        ws,
        "workflows",
        ["create", {"friendlyName": "F", "configuration": json.dumps(configuration)}],
    )
    node.call(ws, "workers", ["create", {"friendlyName": "Ann"}])
    task = node.call(ws, "tasks", ["create", {"attributes": "{}", "priority": 2}])
    live.clock.advance(40)
    statistics = node.call(
        ws,
        ["taskQueues", queue["sid"]],
        ["realTimeStatistics"],
        ["fetch", {"taskChannel": "default"}],
    )
    assert statistics["taskQueueSid"] == queue["sid"]
    assert statistics["tasksByStatus"] == {
        "pending": 1,
        "reserved": 0,
        "assigned": 0,
        "wrapping": 0,
    }
    assert statistics["tasksByPriority"] == {"2": 1}
    assert (statistics["longestTaskWaitingSid"], statistics["longestTaskWaitingAge"]) == (
        task["sid"],
        40,
    )
    assert statistics["longestRelativeTaskAgeInQueue"] == 40
    # Ann is eligible (the queue takes everyone) but Offline.
    assert (statistics["totalEligibleWorkers"], statistics["totalAvailableWorkers"]) == (1, 0)
    bulk = node.call(
        ws, "taskQueues", "bulkRealTimeStatistics", ["create", {"QueueSids": [queue["sid"]]}]
    )
    assert bulk["taskQueueResponseCount"] == 1
    assert bulk["taskQueueData"][0]["longest_task_waiting_sid"] == task["sid"]
