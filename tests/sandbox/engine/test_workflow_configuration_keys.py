"""Workflow configurations hold only what the sandbox implements: every other key is refused.

Twilio's Workflows Overview (taskrouter/workflow-configuration) gives the document's
structure: "task_routing" with "filters" (each "filter_friendly_name", "expression",
"targets") and "default_filter" ({"queue": ...}); a target has "queue", "priority",
"timeout", "expression", and its advanced pages add "order_by" (Ordering Workers), "skip_if"
(Skipping Based on Worker Availability) and "known_worker_sid" OR
"known_worker_friendly_name" (Known Agent Routing), whose value is a task attribute such as
"task.agent_sid". twilio-java's WorkflowRule also reads the older filter key "friendly_name".
A key outside these would be accepted and silently ignored, so the sandbox refuses it with a
400 naming the key and where it is.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.sandbox.conftest import Live, twilio_error


def _workspace(live: Live) -> tuple[Any, str]:
    workspace = live.v1.workspaces(live.new_workspace("Configuration keys").sid)
    return workspace, workspace.task_queues.create(friendly_name="Q").sid


def _every_key(queue_sid: str) -> dict[str, Any]:
    """A configuration using every key the sandbox implements."""
    return {
        "task_routing": {
            "filters": [
                {
                    "filter_friendly_name": "Returning customers",
                    "expression": "returning == true",
                    "targets": [
                        {
                            "queue": queue_sid,
                            "known_worker_sid": "task.agent_sid",
                            "priority": 5,
                            "timeout": 30,
                        },
                        {
                            "queue": queue_sid,
                            "known_worker_friendly_name": "task.agent.friendly_name",
                            "timeout": 30,
                        },
                        {
                            "queue": queue_sid,
                            "expression": "worker.level >= 2",
                            "order_by": "worker.level DESC",
                            "skip_if": "workers.available == 0",
                            "timeout": 30,
                        },
                        {"queue": queue_sid},
                    ],
                },
                {
                    "friendly_name": "Old-style name",
                    "expression": "1==1",
                    "targets": [{"queue": queue_sid}],
                },
            ],
            "default_filter": {"queue": queue_sid},
        }
    }


def test_every_implemented_key_is_accepted_and_kept(live: Live) -> None:
    workspace, queue_sid = _workspace(live)
    configuration = _every_key(queue_sid)
    workflow = workspace.workflows.create(
        friendly_name="Everything", configuration=json.dumps(configuration)
    )
    assert json.loads(workflow.configuration) == configuration
    fetched = workspace.workflows(workflow.sid).fetch()
    assert json.loads(fetched.configuration) == configuration


def _with(queue_sid: str, where: str, key: str, value: Any) -> str:
    document = _every_key(queue_sid)
    place: dict[str, Any] = {
        "document": document,
        "task_routing": document["task_routing"],
        "filter": document["task_routing"]["filters"][1],
        "target": document["task_routing"]["filters"][0]["targets"][2],
        "default_filter": document["task_routing"]["default_filter"],
    }[where]
    place[key] = value
    return json.dumps(document)


@pytest.mark.parametrize(
    ("where", "key", "message"),
    [
        ("document", "note", "Configuration has unknown key 'note'"),
        ("task_routing", "fallback", "Configuration task_routing has unknown key 'fallback'"),
        (
            "filter",
            "timeout",
            "Configuration task_routing.filters[1] has unknown key 'timeout'",
        ),
        (
            "target",
            "foo",
            "Configuration task_routing.filters[0].targets[2] has unknown key 'foo'",
        ),
        (
            "target",
            "known_worker",
            "Configuration task_routing.filters[0].targets[2] has unknown key 'known_worker'",
        ),
        (
            "default_filter",
            "priority",
            "Configuration task_routing.default_filter has unknown key 'priority'",
        ),
    ],
)
def test_an_unknown_key_is_refused_naming_it_and_where_it_is(
    live: Live, where: str, key: str, message: str
) -> None:
    workspace, queue_sid = _workspace(live)
    with twilio_error(400, 20001, message):
        workspace.workflows.create(
            friendly_name="Unknown key", configuration=_with(queue_sid, where, key, 1)
        )
    assert workspace.workflows.list() == []


def test_an_unknown_key_is_refused_on_update_and_the_old_configuration_kept(
    live: Live,
) -> None:
    workspace, queue_sid = _workspace(live)
    configuration = json.dumps(_every_key(queue_sid))
    workflow = workspace.workflows.create(friendly_name="Kept", configuration=configuration)
    with twilio_error(400, 20001, "targets[2] has unknown key 'max_wait'"):
        workspace.workflows(workflow.sid).update(
            configuration=_with(queue_sid, "target", "max_wait", 60)
        )
    assert workspace.workflows(workflow.sid).fetch().configuration == configuration


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("agent_sid", "known_worker_sid must name a task attribute"),
        ("worker.sid", "known_worker_sid must name a task attribute"),
        ("task.", "known_worker_sid must name a task attribute"),
        ("task.agent-sid", "known_worker_sid must name a task attribute"),
        ("WK" + "0" * 32, "known_worker_sid must name a task attribute"),
        ("", "known_worker_sid must name a task attribute"),
        (5, "known_worker_sid must name a task attribute"),
    ],
)
def test_a_known_worker_value_must_name_a_task_attribute(
    live: Live, value: Any, fragment: str
) -> None:
    """Known Agent Routing: "The value should be an attribute in the Task attributes"."""
    workspace, queue_sid = _workspace(live)
    document = _every_key(queue_sid)
    target = document["task_routing"]["filters"][0]["targets"][0]
    target["known_worker_sid"] = value
    with twilio_error(400, 20001, f"task_routing.filters[0].targets[0].{fragment}"):
        workspace.workflows.create(friendly_name="Bad value", configuration=json.dumps(document))


def test_a_target_names_its_known_worker_one_way_only(live: Live) -> None:
    """Known Agent Routing: "You can use the known_worker_sid OR the
    known_worker_friendly_name as a key"."""
    workspace, queue_sid = _workspace(live)
    document = _every_key(queue_sid)
    document["task_routing"]["filters"][0]["targets"][0]["known_worker_friendly_name"] = (
        "task.agent_name"
    )
    with twilio_error(400, 20001, "targets[0] has both known_worker_sid and"):
        workspace.workflows.create(friendly_name="Both", configuration=json.dumps(document))
