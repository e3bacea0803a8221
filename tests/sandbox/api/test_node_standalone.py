"""twilio-node against the standalone server, moving its time through the control API: a
reservation timeout and a workflow escalation, seen from Node.js, with no sleeping.

The Python side only runs the server (a real subprocess) and the app's assignment callback (a
real HTTP receiver answering {}), and checks each callback's signature with twilio's
RequestValidator; every TaskRouter and control call is made by tests/node/bridge.js.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from twilio.request_validator import RequestValidator

from tests.callback_receiver import CallbackReceiver
from tests.node_client import NodeClient
from tests.sandbox.test_standalone import Running, standalone


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    with CallbackReceiver(answer={}) as running:
        yield running


@pytest.fixture
def event_receiver() -> Iterator[CallbackReceiver]:
    """The workspace's Event Callback URL."""
    with CallbackReceiver(answer={}) as running:
        yield running


@pytest.fixture
def server(tmp_path: Path, receiver: CallbackReceiver) -> Iterator[Running]:
    # The manual clock: nothing falls due unless the test moves time.
    options = ("--quiet", "--clock", "manual", "--callback-url", receiver.url)
    with standalone(tmp_path, *options) as running:
        yield running
        status, _ = running.stop()
        assert status == 0


@pytest.fixture
def node(server: Running) -> Iterator[NodeClient]:
    client = NodeClient(server.base_url, *server.auth)
    try:
        yield client
    finally:
        client.close()


def control(node: NodeClient, method: str, path: str, **data: object) -> dict:
    answer = node.send({"control": {"method": method, "path": path, "data": data or None}})
    assert answer["status"] == 200, answer
    return answer["body"]


def test_from_node_a_reservation_times_out_then_a_task_escalates(
    node: NodeClient,
    server: Running,
    receiver: CallbackReceiver,
    event_receiver: CallbackReceiver,
) -> None:
    seed = control(node, "get", "seed")
    ws = ["workspaces", seed["workspace_sid"]]
    node.call(ws, ["update", {"eventCallbackUrl": event_receiver.url}])
    alice = seed["worker_sids"]["Alice"]
    spanish = seed["task_queue_sids"]["Customer Care Requests - Spanish"]
    english = seed["task_queue_sids"]["Customer Care Requests - English"]

    # -- a reservation nobody answers times out -------------------------------------------
    task = node.call(
        ws,
        "tasks",
        [
            "create",
            {
                "attributes": json.dumps({"selected_language": "es"}),
                "workflowSid": seed["workflow_sid"],
            },
        ],
    )
    assert task["assignmentStatus"] == "pending"
    node.call(ws, ["workers", alice], ["update", {"activitySid": seed["activity_sids"]["Idle"]}])
    [reservation] = node.call(ws, ["tasks", task["sid"]], "reservations", ["list"])
    assert reservation["reservationStatus"] == "pending"
    assert reservation["workerSid"] == alice

    assert receiver.wait_for(lambda calls: len(calls) >= 1, 10), receiver.calls
    [callback] = receiver.calls
    assert callback.url == receiver.url
    assert callback.form["ReservationSid"] == reservation["sid"]
    assert callback.form["TaskSid"] == task["sid"]
    assert callback.form["WorkerSid"] == alice
    validator = RequestValidator(server.auth[1])
    assert validator.validate(callback.url, callback.form, callback.signature)

    # Answered {}: no instruction, so the reservation waits for the REST API until the
    # workflow's TaskReservationTimeout (Twilio's assignment callback page), and no longer.
    workflow = node.call(ws, ["workflows", seed["workflow_sid"]], ["fetch"])
    timeout = workflow["taskReservationTimeout"]
    fetch_reservation = [
        ws,
        ["tasks", task["sid"]],
        ["reservations", reservation["sid"]],
        ["fetch"],
    ]
    moved = control(node, "post", "clock/advance", Seconds=timeout - 1)
    assert moved["advanced_by"] == timeout - 1
    assert node.call(*fetch_reservation)["reservationStatus"] == "pending"
    control(node, "post", "clock/advance", Seconds=2)
    reservation = node.call(*fetch_reservation)
    assert reservation["reservationStatus"] == "timeout"
    # Twilio: the worker moves to the workspace's TimeoutActivity; the task is available again.
    workspace = node.call(ws, ["fetch"])
    assert (
        node.call(ws, ["workers", alice], ["fetch"])["activitySid"]
        == workspace["timeoutActivitySid"]
    )
    assert node.call(ws, ["tasks", task["sid"]], ["fetch"])["assignmentStatus"] == "pending"
    node.call(ws, ["tasks", task["sid"]], ["update", {"assignmentStatus": "canceled"}])

    # -- a task escalates from its first target to the second after the first's timeout ---
    configuration = {
        "task_routing": {
            "filters": [
                {
                    "filter_friendly_name": "Escalating",
                    "expression": "escalate == true",
                    "targets": [{"queue": spanish, "timeout": 30}, {"queue": english}],
                }
            ]
        }
    }
    escalating = node.call(
        ws,
        "workflows",
        [
            "create",
            {
                "friendlyName": "Escalating",
                "configuration": json.dumps(configuration),
                "assignmentCallbackUrl": receiver.url,
            },
        ],
    )
    task = node.call(
        ws,
        "tasks",
        [
            "create",
            {"attributes": json.dumps({"escalate": True}), "workflowSid": escalating["sid"]},
        ],
    )
    assert task["taskQueueSid"] == spanish
    control(node, "post", "clock/advance", Seconds=29)
    assert node.call(ws, ["tasks", task["sid"]], ["fetch"])["taskQueueSid"] == spanish
    control(node, "post", "clock/advance", Seconds=2)
    assert node.call(ws, ["tasks", task["sid"]], ["fetch"])["taskQueueSid"] == english
    matched = node.call(
        ws,
        "events",
        ["list", {"taskSid": task["sid"], "eventType": "workflow.target-matched"}],
    )
    queues = sorted(event["eventData"]["task_queue_sid"] for event in matched)
    assert queues == sorted([spanish, english])

    # -- the control API lists the callbacks the sandbox made -----------------------------
    every = control(node, "get", "callbacks")["callbacks"]
    assert {c["kind"] for c in every} == {"assignment", "event"}
    events = [c for c in every if c["kind"] == "event"]
    assert len(events) == len(event_receiver.calls)
    assert all(c["url"] == event_receiver.url for c in events)
    callbacks = control(node, "get", "callbacks", Kind="assignment")["callbacks"]
    assert [c["reservation_sid"] for c in callbacks] == [callback.form["ReservationSid"]]
    assert callbacks[0]["url"] == receiver.url
    assert callbacks[0]["status_code"] == 200
    assert callbacks[0]["instruction"] is None


def test_from_node_a_bad_control_call_is_a_twilio_shaped_error(node: NodeClient) -> None:
    bad = node.send(
        {"control": {"method": "post", "path": "clock/advance", "data": {"Seconds": "-5"}}}
    )
    assert bad["status"] == 400
    assert bad["body"]["code"] == 20001 and "Seconds" in bad["body"]["message"]
    missing = node.send({"control": {"method": "get", "path": "clocks", "data": None}})
    assert missing["status"] == 404 and missing["body"]["code"] == 20404
