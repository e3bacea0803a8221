"""Tasks through the official twilio library: placement by workflow, state changes, paging.

The quickstart cases run against the seeded workspace; the rest make their own.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.sandbox.conftest import Live, assert_error_body, list_error, routing, twilio_error


def _workspace(live: Live) -> tuple[Any, str, dict[str, Any]]:
    """A workspace with two queues and a workflow routing on "type"."""
    workspace = live.new_workspace()
    context = live.v1.workspaces(workspace.sid)
    sales = context.task_queues.create(friendly_name="Sales")
    support = context.task_queues.create(friendly_name="Support")
    workflow = context.workflows.create(
        friendly_name="Router",
        configuration=routing(('type == "sales"', sales.sid), default=support.sid),
    )
    return context, workspace.sid, {"sales": sales, "support": support, "workflow": workflow}


def test_quickstart_task_lands_in_the_spanish_queue(live: Live) -> None:
    seeded = live.sandbox.seeded
    workspace = live.seeded_workspace
    task = workspace.tasks.create(
        attributes=json.dumps({"selected_language": "es"}), workflow_sid=seeded.workflow_sid
    )
    assert task.sid.startswith("WT") and len(task.sid) == 34
    assert task.assignment_status == "pending"
    assert task.task_queue_friendly_name == "Customer Care Requests - Spanish"
    assert task.task_queue_sid == seeded.task_queue_sids["Customer Care Requests - Spanish"]
    assert task.workflow_sid == seeded.workflow_sid
    assert task.workflow_friendly_name == "Incoming Customer Care Requests"
    assert task.task_channel_unique_name == "default"
    assert task.task_channel_sid == seeded.task_channel_sid
    assert task.priority == 0 and task.timeout == 86400 and task.age == 0
    assert task.task_queue_entered_date == task.date_created
    assert task.links["task_queue"].endswith(task.task_queue_sid)
    events = workspace.events.list(task_sid=task.sid)
    assert [e.event_type for e in events] == [
        "task-queue.entered",
        "workflow.target-matched",
        "workflow.entered",
        "task.created",
    ]
    matched = events[1].event_data
    assert matched["workflow_filter_name"] == "Spanish"
    assert matched["workflow_filter_expression"] == 'selected_language == "es"'
    entered = events[0].event_data
    assert entered["task_queue_name"] == "Customer Care Requests - Spanish"
    assert entered["task_queue_target_expression"] == 'languages HAS "es"'
    assert json.loads(entered["task_attributes"]) == {"selected_language": "es"}
    assert events[3].resource_url == task.url


def test_english_task_and_workflow_sid_is_optional_with_one_workflow(live: Live) -> None:
    task = live.seeded_workspace.tasks.create(attributes='{"selected_language": "en"}')
    assert task.task_queue_friendly_name == "Customer Care Requests - English"


def test_task_matching_no_filter_and_no_default_is_canceled(live: Live) -> None:
    task = live.seeded_workspace.tasks.create(attributes='{"selected_language": "fr"}')
    assert task.assignment_status == "canceled"
    assert task.task_queue_sid is None
    assert "did not match any filter" in task.reason


def test_workflow_sid_is_required_without_exactly_one_workflow(live: Live) -> None:
    workspace = live.v1.workspaces(live.new_workspace().sid)
    with twilio_error(400, 20001, "WorkflowSid is required: the workspace has no workflow"):
        workspace.tasks.create(attributes="{}")
    queue = workspace.task_queues.create(friendly_name="Q")
    for name in ("A", "B"):
        workspace.workflows.create(friendly_name=name, configuration=routing(default=queue.sid))
    with twilio_error(400, 20001, "more than one workflow"):
        workspace.tasks.create(attributes="{}")


def test_create_task_fields_and_target_priority(live: Live) -> None:
    workspace, _, parts = _workspace(live)
    custom = workspace.task_channels.create(friendly_name="Calls", unique_name="calls")
    task = workspace.tasks.create(
        attributes='{"type": "sales"}', priority=7, timeout=600, task_channel="calls"
    )
    assert task.task_queue_sid == parts["sales"].sid
    assert (task.priority, task.timeout) == (7, 600)
    assert task.task_channel_sid == custom.sid and task.task_channel_unique_name == "calls"
    by_sid = workspace.tasks.create(attributes="{}", task_channel=custom.sid)
    assert by_sid.task_queue_sid == parts["support"].sid
    assert by_sid.task_channel_unique_name == "calls"

    queue = workspace.task_queues.create(friendly_name="VIP")
    configuration = {
        "task_routing": {
            "filters": [
                {"expression": "vip == true", "targets": [{"queue": queue.sid, "priority": 50}]}
            ]
        }
    }
    vip_flow = workspace.workflows.create(
        friendly_name="VIP", configuration=json.dumps(configuration)
    )
    vip = workspace.tasks.create(attributes='{"vip": true}', priority=1, workflow_sid=vip_flow.sid)
    assert vip.priority == 50


def test_task_age_follows_the_clock(live: Live) -> None:
    workspace, _, _ = _workspace(live)
    task = workspace.tasks.create(attributes="{}")
    live.clock.advance(42)
    assert workspace.tasks(task.sid).fetch().age == 42
    assert workspace.tasks.list()[0].age == 42


def test_fetch_shows_attributes_list_does_not(live: Live) -> None:
    workspace, _, _ = _workspace(live)
    task = workspace.tasks.create(attributes='{"type": "sales", "n": 1}')
    assert json.loads(workspace.tasks(task.sid).fetch().attributes) == {"type": "sales", "n": 1}
    assert workspace.tasks.list()[0].attributes is None


def test_list_task_filters(live: Live) -> None:
    workspace, workspace_sid, parts = _workspace(live)
    sales = workspace.tasks.create(attributes='{"type": "sales"}', priority=5)
    support = workspace.tasks.create(attributes='{"type": "help", "tier": 2}', priority=1)
    gone = workspace.tasks.create(attributes='{"type": "help"}', priority=9)
    workspace.tasks(gone.sid).update(assignment_status="canceled")

    def sids(**filters: Any) -> list[str]:
        return [t.sid for t in workspace.tasks.list(**filters)]

    assert sids() == [sales.sid, support.sid, gone.sid]
    assert sids(assignment_status=["pending"]) == [sales.sid, support.sid]
    assert sids(assignment_status=["canceled", "pending"]) == [sales.sid, support.sid, gone.sid]
    assert sids(task_queue_sid=parts["sales"].sid) == [sales.sid]
    assert sids(task_queue_name="Support") == [support.sid, gone.sid]
    assert sids(workflow_sid=parts["workflow"].sid) == [sales.sid, support.sid, gone.sid]
    assert sids(workflow_name="Router") == [sales.sid, support.sid, gone.sid]
    assert sids(priority=5) == [sales.sid]
    assert sids(evaluate_task_attributes="tier >= 2") == [support.sid]
    assert sids(ordering="Priority:desc") == [gone.sid, sales.sid, support.sid]
    assert sids(ordering="Priority:asc,DateCreated:desc") == [support.sid, sales.sid, gone.sid]
    # The comma form that other clients send works too.
    response = live.http(
        "GET",
        f"/v1/Workspaces/{workspace_sid}/Tasks",
        params={"AssignmentStatus": "canceled,pending"},
    )
    assert len(response.json()["tasks"]) == 3


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ({"AssignmentStatus": "lost"}, "AssignmentStatus"),
        ({"Ordering": "Priority:sideways"}, "Ordering"),
        ({"Ordering": "DateCreated:asc,VirtualStartTime:asc"}, "Ordering"),
        ({"Priority": "high"}, "Priority"),
        ({"EvaluateTaskAttributes": "type =="}, "EvaluateTaskAttributes"),
        ({"HasAddons": "perhaps"}, "HasAddons"),
    ],
)
def test_list_tasks_rejects_bad_filters(live: Live, query: dict, fragment: str) -> None:
    _, workspace_sid, _ = _workspace(live)
    response = live.http("GET", f"/v1/Workspaces/{workspace_sid}/Tasks", params=query)
    assert fragment in assert_error_body(response, 400, 20001)["message"]


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"attributes": "not json"}, "Attributes"),
        ({"attributes": '"a string"'}, "Attributes"),
        ({"timeout": 0}, "Timeout"),
        ({"timeout": 1_209_601}, "Timeout"),
        ({"priority": -1}, "Priority"),
        ({"workflow_sid": "WW" + "4" * 32}, "WorkflowSid"),
        ({"workflow_sid": "Router"}, "WorkflowSid"),
        ({"task_channel": "carrier-pigeon"}, "TaskChannel"),
        ({"task_queue_sid": "WQ" + "5" * 32}, "TaskQueueSid"),
    ],
)
def test_create_task_rejects_bad_input(live: Live, fields: dict, fragment: str) -> None:
    workspace, _, _ = _workspace(live)
    with twilio_error(400, 20001, fragment):
        workspace.tasks.create(**fields)
    assert workspace.tasks.list() == []


def test_update_task_attributes_and_priority(live: Live) -> None:
    workspace, _, parts = _workspace(live)
    task = workspace.tasks.create(attributes='{"type": "help"}')
    assert task.task_queue_sid == parts["support"].sid
    updated = workspace.tasks(task.sid).update(attributes='{"type": "sales"}', priority=3)
    assert json.loads(updated.attributes) == {"type": "sales"}
    assert updated.priority == 3
    # A pending task is placed again when its attributes change.
    assert updated.task_queue_sid == parts["sales"].sid
    assert "task.updated" in [e.event_type for e in workspace.events.list(task_sid=task.sid)]


def test_cancel_a_pending_task_then_the_rules_of_final_states(live: Live) -> None:
    workspace, _, _ = _workspace(live)
    task = workspace.tasks.create(attributes="{}")
    canceled = workspace.tasks(task.sid).update(assignment_status="canceled", reason="No longer")
    assert canceled.assignment_status == "canceled" and canceled.reason == "No longer"
    events = workspace.events.list(task_sid=task.sid, event_type="task.canceled")
    assert events[0].event_data["task_canceled_reason"] == "No longer"
    with twilio_error(
        400, 20001, f"Cannot cancel task {task.sid} because it is not pending or reserved"
    ):
        workspace.tasks(task.sid).update(assignment_status="canceled")
    with twilio_error(400, 20001, "can no longer be updated"):
        workspace.tasks(task.sid).update(attributes='{"late": true}')
    assert workspace.tasks(task.sid).fetch().assignment_status == "canceled"


@pytest.mark.parametrize(
    ("status", "fragment"),
    [
        ("completed", "because it is not assigned or wrapping"),
        ("wrapping", "because it is not assigned"),
        ("assigned", "cannot be set over the API"),
        ("reserved", "cannot be set over the API"),
    ],
)
def test_pending_task_state_changes_that_are_refused(
    live: Live, status: str, fragment: str
) -> None:
    workspace, _, _ = _workspace(live)
    task = workspace.tasks.create(attributes="{}")
    with twilio_error(400, 20001, fragment):
        workspace.tasks(task.sid).update(assignment_status=status)
    assert workspace.tasks(task.sid).fetch().assignment_status == "pending"


def test_update_task_rejects_unknown_status(live: Live) -> None:
    _, workspace_sid, _ = _workspace(live)
    workspace = live.v1.workspaces(workspace_sid)
    task = workspace.tasks.create(attributes="{}")
    response = live.http(
        "POST",
        f"/v1/Workspaces/{workspace_sid}/Tasks/{task.sid}",
        data={"AssignmentStatus": "lost"},
    )
    assert "AssignmentStatus" in assert_error_body(response, 400, 20001)["message"]


def test_delete_task(live: Live) -> None:
    workspace, _, _ = _workspace(live)
    task = workspace.tasks.create(attributes="{}")
    assert workspace.tasks(task.sid).delete() is True
    with twilio_error(404, 20404, f"/Tasks/{task.sid}"):
        workspace.tasks(task.sid).fetch()
    with twilio_error(404, 20404):
        workspace.tasks(task.sid).update(priority=1)
    assert "task.deleted" in [e.event_type for e in workspace.events.list(task_sid=task.sid)]


def test_paging_through_120_tasks(live: Live) -> None:
    workspace, workspace_sid, _ = _workspace(live)
    created = [workspace.tasks.create(attributes=json.dumps({"n": n})).sid for n in range(120)]

    streamed = [task.sid for task in workspace.tasks.stream(page_size=50)]
    assert streamed == created

    first = workspace.tasks.page(page_size=50)
    assert len(list(first)) == 50
    next_url = first.next_page_url
    assert next_url.startswith(f"{live.base_url}/v1/Workspaces/{workspace_sid}/Tasks?")
    assert "PageToken=PA" in next_url and "Page=1" in next_url
    second = first.next_page()
    assert [t.sid for t in second] == created[50:100]
    third = second.next_page()
    assert [t.sid for t in third] == created[100:]
    assert third.next_page_url is None
    back = third.previous_page()
    assert [t.sid for t in back] == created[50:100]


def test_keyset_pages_do_not_shift_when_tasks_are_added(live: Live) -> None:
    workspace, _, _ = _workspace(live)
    created = [workspace.tasks.create(attributes="{}").sid for _ in range(6)]
    first = workspace.tasks.page(page_size=3, ordering="DateCreated:desc")
    assert [t.sid for t in first] == created[::-1][:3]
    live.clock.advance(1)
    workspace.tasks.create(attributes="{}")
    second = first.next_page()
    assert [t.sid for t in second] == created[::-1][3:]


def test_page_filters_carry_over_to_next_page(live: Live) -> None:
    workspace, _, parts = _workspace(live)
    for _ in range(3):
        workspace.tasks.create(attributes='{"type": "sales"}')
        workspace.tasks.create(attributes='{"type": "help"}')
    first = workspace.tasks.page(task_queue_sid=parts["sales"].sid, page_size=2)
    assert f"TaskQueueSid={parts['sales'].sid}" in first.next_page_url
    rest = [t.task_queue_sid for t in first.next_page()]
    assert rest == [parts["sales"].sid]


def test_page_number_without_token(live: Live) -> None:
    workspace, workspace_sid, _ = _workspace(live)
    created = [workspace.tasks.create(attributes="{}").sid for _ in range(5)]
    response = live.http(
        "GET", f"/v1/Workspaces/{workspace_sid}/Tasks", params={"PageSize": 2, "Page": 1}
    )
    body = response.json()
    assert [t["sid"] for t in body["tasks"]] == created[2:4]
    assert body["meta"]["page"] == 1 and body["meta"]["page_size"] == 2
    assert body["meta"]["previous_page_url"] is not None
    assert body["meta"]["first_page_url"].endswith("PageSize=2&Page=0")


def test_page_token_from_another_ordering_is_refused(live: Live) -> None:
    workspace, _, _ = _workspace(live)
    for _ in range(3):
        workspace.tasks.create(attributes="{}")
    token_url = workspace.tasks.page(page_size=1, ordering="Priority:desc").next_page_url
    token = token_url.split("PageToken=")[1]
    with list_error(400, 20001, "PageToken"):
        workspace.tasks.page(page_size=1, page_token=token)


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00Z", "0999-06-30T12:00:00Z"])
def test_virtual_start_time_before_year_1000(live: Live, moment: str) -> None:
    """Stored dates pad the year to four digits, so such a task reads back (no 500)."""
    task = live.seeded_workspace.tasks.create(
        attributes='{"selected_language": "es"}', virtual_start_time=moment
    )
    fetched = live.seeded_workspace.tasks(task.sid).fetch()
    assert fetched.virtual_start_time.isoformat().startswith(moment[:4])
