"""TaskQueues and Workflows through the official twilio library, validation included.

Expressions must parse and workflow configurations must name this workspace's queues.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.sandbox.conftest import Live, assert_error_body, list_error, routing, twilio_error


def _workspace(live: Live) -> tuple[Any, str, dict[str, str]]:
    workspace = live.new_workspace()
    context = live.v1.workspaces(workspace.sid)
    activities = {a.friendly_name: a.sid for a in context.activities.list()}
    return context, workspace.sid, activities


def test_task_queue_defaults(live: Live) -> None:
    workspace, workspace_sid, _ = _workspace(live)
    queue = workspace.task_queues.create(friendly_name="Everyone")
    assert queue.sid.startswith("WQ") and len(queue.sid) == 34
    assert queue.target_workers == "1==1"
    assert queue.max_reserved_workers == 1
    assert queue.task_order == "FIFO"
    assert queue.reservation_activity_sid is None and queue.assignment_activity_name is None
    assert queue.url == f"{live.base_url}/v1/Workspaces/{workspace_sid}/TaskQueues/{queue.sid}"


def test_task_queue_crud(live: Live) -> None:
    workspace, _, activities = _workspace(live)
    queue = workspace.task_queues.create(
        friendly_name="Spanish",
        target_workers='languages HAS "es"',
        max_reserved_workers=3,
        task_order="LIFO",
        reservation_activity_sid=activities["Unavailable"],
        assignment_activity_sid=activities["Offline"],
    )
    assert queue.reservation_activity_name == "Unavailable"
    assert queue.assignment_activity_name == "Offline"
    assert queue.links["reservation_activity"].endswith(activities["Unavailable"])
    assert (queue.max_reserved_workers, queue.task_order) == (3, "LIFO")
    fetched = workspace.task_queues(queue.sid).fetch()
    assert fetched.target_workers == 'languages HAS "es"'
    updated = workspace.task_queues(queue.sid).update(
        friendly_name="Espanol",
        target_workers='languages HAS "es" AND level >= 2',
        max_reserved_workers=1,
        task_order="FIFO",
        assignment_activity_sid=activities["Unavailable"],
    )
    assert updated.friendly_name == "Espanol"
    assert updated.target_workers == 'languages HAS "es" AND level >= 2'
    assert updated.assignment_activity_name == "Unavailable"
    assert "task-queue.expression.updated" in [
        e.event_type for e in workspace.events.list(event_type="task-queue.expression.updated")
    ]
    assert workspace.task_queues(queue.sid).delete() is True
    with twilio_error(404, 20404):
        workspace.task_queues(queue.sid).fetch()


def test_list_task_queue_filters(live: Live) -> None:
    workspace, _, _ = _workspace(live)
    spanish = workspace.task_queues.create(
        friendly_name="Spanish", target_workers='languages HAS "es"'
    )
    english = workspace.task_queues.create(
        friendly_name="English", target_workers='languages HAS "en"'
    )
    bob = workspace.workers.create(friendly_name="Bob", attributes='{"languages": ["en"]}')

    def names(**filters: Any) -> list[str]:
        return [q.friendly_name for q in workspace.task_queues.list(**filters)]

    assert names() == ["Spanish", "English"]
    assert names(friendly_name="English") == ["English"]
    assert names(evaluate_worker_attributes='{"languages": ["es"]}') == ["Spanish"]
    assert names(worker_sid=bob.sid) == ["English"]
    assert [q.sid for q in workspace.task_queues.list(ordering="DateCreated:desc")] == [
        english.sid,
        spanish.sid,
    ]
    with list_error(400, 20001, "EvaluateWorkerAttributes"):
        workspace.task_queues.list(evaluate_worker_attributes="not json")


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"target_workers": 'languages HAS "es" AND'}, "TargetWorkers"),
        ({"target_workers": "skill-level > 2"}, "TargetWorkers"),
        ({"max_reserved_workers": 0}, "MaxReservedWorkers"),
        ({"max_reserved_workers": 51}, "MaxReservedWorkers"),
        ({"task_order": "RANDOM"}, "TaskOrder"),
        ({"reservation_activity_sid": "WA" + "3" * 32}, "ReservationActivitySid"),
        ({"assignment_activity_sid": "busy"}, "AssignmentActivitySid"),
    ],
)
def test_create_task_queue_rejects_bad_input(live: Live, fields: dict, fragment: str) -> None:
    workspace, _, _ = _workspace(live)
    with twilio_error(400, 20001, fragment):
        workspace.task_queues.create(friendly_name="Bad", **fields)
    assert workspace.task_queues.list() == []


def test_task_queue_expression_error_names_position(live: Live) -> None:
    workspace, _, _ = _workspace(live)
    queue = workspace.task_queues.create(friendly_name="Q")
    with twilio_error(400, 20001, "at position"):
        workspace.task_queues(queue.sid).update(target_workers="(a == 1")
    assert workspace.task_queues(queue.sid).fetch().target_workers == "1==1"


def test_task_queue_names_are_unique(live: Live) -> None:
    workspace, _, _ = _workspace(live)
    workspace.task_queues.create(friendly_name="Same")
    with twilio_error(400, 20001, "already exists"):
        workspace.task_queues.create(friendly_name="Same")


def test_task_queue_used_by_a_workflow_or_a_task_cannot_be_deleted(live: Live) -> None:
    workspace, _, _ = _workspace(live)
    routed = workspace.task_queues.create(friendly_name="Routed")
    direct = workspace.task_queues.create(friendly_name="Direct")
    workflow = workspace.workflows.create(
        friendly_name="W", configuration=routing(default=routed.sid)
    )
    with twilio_error(400, 20001, f"Workflow {workflow.sid}"):
        workspace.task_queues(routed.sid).delete()
    workspace.tasks.create(attributes="{}", task_queue_sid=direct.sid)
    with twilio_error(400, 20001, "active task"):
        workspace.task_queues(direct.sid).delete()


def test_workflow_crud(live: Live) -> None:
    workspace, _, _ = _workspace(live)
    queue = workspace.task_queues.create(friendly_name="Q1")
    other = workspace.task_queues.create(friendly_name="Q2")
    configuration = routing(('type == "sales"', queue.sid), default=other.sid)
    workflow = workspace.workflows.create(
        friendly_name="Sales",
        configuration=configuration,
        assignment_callback_url="https://example.com/assign",
        task_reservation_timeout=300,
    )
    assert workflow.sid.startswith("WW") and len(workflow.sid) == 34
    assert json.loads(workflow.configuration) == json.loads(configuration)
    assert workflow.assignment_callback_url == "https://example.com/assign"
    assert workflow.fallback_assignment_callback_url is None
    assert workflow.task_reservation_timeout == 300
    assert workflow.document_content_type == "application/json"
    assert workspace.workflows(workflow.sid).fetch().friendly_name == "Sales"
    assert [w.sid for w in workspace.workflows.list(friendly_name="Sales")] == [workflow.sid]

    updated = workspace.workflows(workflow.sid).update(
        friendly_name="Sales 2",
        configuration=routing(default=queue.sid),
        fallback_assignment_callback_url="https://example.com/fallback",
        assignment_callback_url="",
        task_reservation_timeout=1200,
    )
    assert updated.friendly_name == "Sales 2"
    assert json.loads(updated.configuration)["task_routing"]["default_filter"] == {
        "queue": queue.sid
    }
    assert updated.assignment_callback_url is None
    assert updated.fallback_assignment_callback_url == "https://example.com/fallback"
    assert updated.task_reservation_timeout == 1200
    assert workspace.workflows(workflow.sid).delete() is True
    with twilio_error(404, 20404):
        workspace.workflows(workflow.sid).fetch()


def test_workflow_target_expressions_and_friendly_name_alias(live: Live) -> None:
    workspace, _, _ = _workspace(live)
    queue = workspace.task_queues.create(friendly_name="Q")
    configuration = {
        "task_routing": {
            "filters": [
                {
                    "friendly_name": "Old-style name",
                    "expression": "priority > 5 OR vip == true",
                    "targets": [
                        {
                            "queue": queue.sid,
                            "expression": "worker.level >= task.level",
                            "priority": 10,
                            "timeout": 30,
                            "order_by": "worker.level DESC",
                            "skip_if": "workers.available == 0",
                        },
                        {"queue": queue.sid},
                    ],
                }
            ]
        }
    }
    workflow = workspace.workflows.create(
        friendly_name="Targets", configuration=json.dumps(configuration)
    )
    assert json.loads(workflow.configuration) == configuration


def _configuration_cases(queue_sid: str, foreign_sid: str) -> list[tuple[str, str]]:
    def doc(routing_document: Any) -> str:
        return json.dumps(routing_document)

    return [
        ("{not json", "not valid JSON"),
        (doc([1, 2]), "task_routing"),
        (doc({"task_routing": []}), "task_routing"),
        (doc({"task_routing": {"filters": {}}}), "filters must be an array"),
        (doc({"task_routing": {"filters": ["x"]}}), "filters[0] must be an object"),
        (
            doc({"task_routing": {"filters": [{"expression": "a ==", "targets": []}]}}),
            "filters[0].expression",
        ),
        (
            doc({"task_routing": {"filters": [{"expression": "a == 1", "targets": []}]}}),
            "targets must be a non-empty array",
        ),
        (
            doc(
                {
                    "task_routing": {
                        "filters": [{"expression": "a == 1", "targets": [{"queue": foreign_sid}]}]
                    }
                }
            ),
            "is not a TaskQueue of workspace",
        ),
        (
            doc(
                {
                    "task_routing": {
                        "filters": [{"expression": "a == 1", "targets": [{"queue": "Q1"}]}]
                    }
                }
            ),
            "must be a TaskQueue SID",
        ),
        (
            doc(
                {
                    "task_routing": {
                        "filters": [
                            {
                                "expression": "a == 1",
                                "targets": [{"queue": queue_sid, "expression": "level > 1"}],
                            }
                        ]
                    }
                }
            ),
            "prefix every name with task. or worker.",
        ),
        (
            doc(
                {
                    "task_routing": {
                        "filters": [
                            {
                                "expression": "a == 1",
                                "targets": [{"queue": queue_sid, "priority": "high"}],
                            }
                        ]
                    }
                }
            ),
            "priority must be an integer",
        ),
        (doc({"task_routing": {"default_filter": {"queue": None}}}), "default_filter.queue"),
    ]


def test_workflow_configuration_is_validated(live: Live) -> None:
    workspace, _, _ = _workspace(live)
    queue = workspace.task_queues.create(friendly_name="Mine")
    foreign_context, _, _ = _workspace(live)
    foreign = foreign_context.task_queues.create(friendly_name="Theirs")
    for configuration, fragment in _configuration_cases(queue.sid, foreign.sid):
        with twilio_error(400, 20001, fragment):
            workspace.workflows.create(friendly_name="Bad", configuration=configuration)
    assert workspace.workflows.list() == []


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"task_reservation_timeout": 0}, "TaskReservationTimeout"),
        ({"task_reservation_timeout": 86401}, "TaskReservationTimeout"),
        ({"assignment_callback_url": "/relative"}, "AssignmentCallbackUrl"),
        ({"fallback_assignment_callback_url": "mailto:x@y"}, "FallbackAssignmentCallbackUrl"),
    ],
)
def test_create_workflow_rejects_bad_fields(live: Live, fields: dict, fragment: str) -> None:
    workspace, _, _ = _workspace(live)
    queue = workspace.task_queues.create(friendly_name="Q")
    with twilio_error(400, 20001, fragment):
        workspace.workflows.create(
            friendly_name="Bad", configuration=routing(default=queue.sid), **fields
        )


def test_create_workflow_requires_configuration(live: Live) -> None:
    _, workspace_sid, _ = _workspace(live)
    response = live.http(
        "POST", f"/v1/Workspaces/{workspace_sid}/Workflows", data={"FriendlyName": "No config"}
    )
    assert "Configuration" in assert_error_body(response, 400, 20001)["message"]


def test_update_workflow_rejects_bad_configuration_and_keeps_the_old(live: Live) -> None:
    workspace, _, _ = _workspace(live)
    queue = workspace.task_queues.create(friendly_name="Q")
    workflow = workspace.workflows.create(
        friendly_name="W", configuration=routing(default=queue.sid)
    )
    with twilio_error(400, 20001, "Configuration"):
        workspace.workflows(workflow.sid).update(configuration='{"task_routing": 5}')
    assert workspace.workflows(workflow.sid).fetch().configuration == workflow.configuration


def test_re_evaluate_tasks_moves_pending_tasks(live: Live) -> None:
    workspace, _, _ = _workspace(live)
    first = workspace.task_queues.create(friendly_name="First")
    second = workspace.task_queues.create(friendly_name="Second")
    workflow = workspace.workflows.create(
        friendly_name="W", configuration=routing(default=first.sid)
    )
    task = workspace.tasks.create(attributes="{}", workflow_sid=workflow.sid)
    assert task.task_queue_sid == first.sid
    workspace.workflows(workflow.sid).update(configuration=routing(default=second.sid))
    assert workspace.tasks(task.sid).fetch().task_queue_sid == first.sid
    workspace.workflows(workflow.sid).update(
        configuration=routing(default=second.sid), re_evaluate_tasks="true"
    )
    moved = workspace.tasks(task.sid).fetch()
    assert moved.task_queue_sid == second.sid
    assert moved.task_queue_friendly_name == "Second"
    types = [e.event_type for e in workspace.events.list(task_sid=task.sid)]
    assert types[:2] == ["task-queue.entered", "task-queue.moved"]


def test_workflow_with_active_tasks_cannot_be_deleted(live: Live) -> None:
    workspace, _, _ = _workspace(live)
    queue = workspace.task_queues.create(friendly_name="Q")
    workflow = workspace.workflows.create(
        friendly_name="W", configuration=routing(default=queue.sid)
    )
    task = workspace.tasks.create(attributes="{}")
    with twilio_error(400, 20001, "active task"):
        workspace.workflows(workflow.sid).delete()
    workspace.tasks(task.sid).update(assignment_status="canceled")
    assert workspace.workflows(workflow.sid).delete() is True
