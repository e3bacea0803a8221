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
