"""ETag and If-Match on Tasks, Workers and Reservations, through the twilio library.

Twilio's "API mutation and conflict resolution" page: a Task answers with an ETag header;
an update sent with If-Match applies only when the value matches the current ETag, and a
stale one is refused with 412, error 20412 "Precondition failed" (the error's page: "the
If-Match header value does not match the current ETag value"). The OpenAPI description
lists the ETag on Task and Worker create, fetch and update, and If-Match on their update and
delete; and If-Match on a Reservation's update (under its task or its worker), with an ETag
on its fetch and update.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.sandbox.conftest import Live, assert_error_body, routing, twilio_error


def _floor(live: Live) -> tuple[Any, dict[str, str], str, Any]:
    """A single-tasking workspace: one queue, a workflow to it, Ann Offline."""
    created = live.new_workspace("ETags", multi_task_enabled=False)
    workspace = live.v1.workspaces(created.sid)
    activities = {a.friendly_name: a.sid for a in workspace.activities.list()}
    queue = workspace.task_queues.create(friendly_name="Q")
    workflow = workspace.workflows.create(
        friendly_name="W", configuration=routing(("1 == 1", queue.sid))
    )
    ann = workspace.workers.create(friendly_name="Ann", activity_sid=activities["Offline"])
    return workspace, activities, workflow.sid, ann


def test_task_responses_carry_an_etag_that_moves_with_each_change(live: Live) -> None:
    workspace, _, workflow_sid, _ = _floor(live)
    made = workspace.tasks.create_with_http_info(workflow_sid=workflow_sid, attributes="{}")
    assert made.status_code == 201
    first = made.headers["ETag"]
    fetched = workspace.tasks(made.data.sid).fetch_with_http_info()
    assert fetched.headers["ETag"] == first
    updated = workspace.tasks(made.data.sid).update_with_http_info(
        attributes='{"step": 2}', if_match=first
    )
    assert updated.status_code == 200 and updated.data.attributes == '{"step": 2}'
    second = updated.headers["ETag"]
    assert second != first
    assert workspace.tasks(made.data.sid).fetch_with_http_info().headers["ETag"] == second


def test_a_stale_if_match_is_refused_with_412_and_changes_nothing(live: Live) -> None:
    workspace, _, workflow_sid, _ = _floor(live)
    made = workspace.tasks.create_with_http_info(workflow_sid=workflow_sid, attributes="{}")
    stale = made.headers["ETag"]
    task = workspace.tasks(made.data.sid)
    task.update(attributes='{"by": "someone else"}')  # no If-Match: last writer wins
    with twilio_error(412, 20412, "If-Match"):
        task.update(attributes='{"by": "me"}', if_match=stale)
    with twilio_error(412, 20412):
        task.update(assignment_status="canceled", if_match=stale)
    again = task.fetch()
    assert again.attributes == '{"by": "someone else"}' and again.assignment_status == "pending"


def test_routing_moving_a_task_moves_its_etag(live: Live) -> None:
    """A reservation is a change of the task (pending to reserved): an ETag read before it
    no longer matches."""
    workspace, activities, workflow_sid, ann = _floor(live)
    made = workspace.tasks.create_with_http_info(workflow_sid=workflow_sid, attributes="{}")
    before = made.headers["ETag"]
    workspace.workers(ann.sid).update(activity_sid=activities["Available"])
    now = workspace.tasks(made.data.sid).fetch_with_http_info()
    assert now.data.assignment_status == "reserved"
    assert now.headers["ETag"] != before
    with twilio_error(412, 20412):
        workspace.tasks(made.data.sid).update(priority=5, if_match=before)
    moved = workspace.tasks(made.data.sid).update(priority=5, if_match=now.headers["ETag"])
    assert moved.priority == 5


def _delete(live: Live, path: str, if_match: str) -> Any:
    # Raw: twilio-python 9.13's Task and Worker delete(if_match=...) builds the If-Match
    # header and then sends an empty header set instead, so the library cannot send it.
    return live.http("DELETE", path, headers={"If-Match": if_match})


def test_task_delete_honours_if_match(live: Live) -> None:
    workspace, _, workflow_sid, _ = _floor(live)
    made = workspace.tasks.create_with_http_info(workflow_sid=workflow_sid, attributes="{}")
    task = workspace.tasks(made.data.sid)
    task.update(priority=3)
    path = f"/v1/Workspaces/{made.data.workspace_sid}/Tasks/{made.data.sid}"
    assert_error_body(_delete(live, path, made.headers["ETag"]), 412, 20412)
    assert task.fetch().sid == made.data.sid
    assert _delete(live, path, task.fetch_with_http_info().headers["ETag"]).status_code == 204
    with twilio_error(404, 20404):
        task.fetch()


def test_worker_responses_carry_an_etag_and_honour_if_match(live: Live) -> None:
    workspace, activities, _, _ = _floor(live)
    made = workspace.workers.create_with_http_info(friendly_name="Bob")
    assert made.status_code == 201
    first = made.headers["ETag"]
    worker = workspace.workers(made.data.sid)
    assert worker.fetch_with_http_info().headers["ETag"] == first
    updated = worker.update_with_http_info(activity_sid=activities["Available"], if_match=first)
    second = updated.headers["ETag"]
    assert updated.data.activity_name == "Available" and second != first
    with twilio_error(412, 20412, "If-Match"):
        worker.update(attributes=json.dumps({"skill": 1}), if_match=first)
    assert worker.fetch().attributes == "{}"
    path = f"/v1/Workspaces/{made.data.workspace_sid}/Workers/{made.data.sid}"
    assert_error_body(_delete(live, path, first), 412, 20412)
    assert _delete(live, path, second).status_code == 204


def test_routing_moving_a_worker_moves_its_etag(live: Live) -> None:
    """A queue's reservation activity moves the reserved worker: a change of the worker."""
    workspace, activities, _, ann = _floor(live)
    queue = workspace.task_queues.create(
        friendly_name="Reserving", reservation_activity_sid=activities["Unavailable"]
    )
    workflow = workspace.workflows.create(
        friendly_name="To reserving", configuration=routing(("1 == 1", queue.sid))
    )
    available = workspace.workers(ann.sid).update_with_http_info(
        activity_sid=activities["Available"]
    )
    workspace.tasks.create(workflow_sid=workflow.sid, attributes="{}")
    now = workspace.workers(ann.sid).fetch_with_http_info()
    assert now.data.activity_name == "Unavailable"
    assert now.headers["ETag"] != available.headers["ETag"]
    with twilio_error(412, 20412):
        workspace.workers(ann.sid).update(
            activity_sid=activities["Offline"], if_match=available.headers["ETag"]
        )


def test_reservation_updates_honour_if_match(live: Live) -> None:
    """A call instruction without CallAccept changes the reservation but leaves it pending:
    an ETag read before it is stale, under the task's path and under the worker's."""
    workspace, activities, workflow_sid, ann = _floor(live)
    task = workspace.tasks.create(workflow_sid=workflow_sid, attributes="{}")
    workspace.workers(ann.sid).update(activity_sid=activities["Available"])
    (listed,) = workspace.tasks(task.sid).reservations.list()
    under_task = workspace.tasks(task.sid).reservations(listed.sid)
    under_worker = workspace.workers(ann.sid).reservations(listed.sid)
    before = under_task.fetch_with_http_info().headers["ETag"]
    assert under_worker.fetch_with_http_info().headers["ETag"] == before
    called = under_task.update_with_http_info(
        instruction="call",
        call_from="+15550199",
        call_url="https://example.com/twiml",
        if_match=before,
    )
    assert called.data.reservation_status == "pending"
    now = called.headers["ETag"]
    assert now != before
    with twilio_error(412, 20412, "If-Match"):
        under_task.update(reservation_status="accepted", if_match=before)
    with twilio_error(412, 20412):
        under_worker.update(reservation_status="accepted", if_match=before)
    assert under_task.fetch().reservation_status == "pending"
    accepted = under_worker.update(reservation_status="accepted", if_match=now)
    assert accepted.reservation_status == "accepted"


@pytest.mark.parametrize(
    ("header", "applies"),
    [
        ("*", True),  # any current version
        ("{current}", True),
        ("{bare}", True),  # the tag without its quotes, as a hand-written header may send it
        ('"nope", {current}', True),  # one of a list
        ("W/{current}", False),  # If-Match compares strongly: a weak tag never matches
        ('"nope"', False),
        ("", False),
    ],
)
def test_if_match_forms(live: Live, header: str, applies: bool) -> None:
    workspace, _, workflow_sid, _ = _floor(live)
    made = workspace.tasks.create_with_http_info(workflow_sid=workflow_sid, attributes="{}")
    current = made.headers["ETag"]
    value = header.format(current=current, bare=current.strip('"'))
    response = live.http(
        "POST",
        f"/v1/Workspaces/{made.data.workspace_sid}/Tasks/{made.data.sid}",
        data={"Priority": "7"},
        headers={"If-Match": value},
    )
    if applies:
        assert response.status_code == 200, response.text
        assert response.json()["priority"] == 7
    else:
        body = assert_error_body(response, 412, 20412)
        assert current in body["message"]
        assert workspace.tasks(made.data.sid).fetch().priority == 0


def test_list_and_other_resources_carry_no_etag(live: Live) -> None:
    """Only single Tasks and Workers have versions; a list page is not one resource."""
    workspace, _, _, ann = _floor(live)
    listed = live.http("GET", f"/v1/Workspaces/{ann.workspace_sid}/Workers")
    assert listed.status_code == 200 and "ETag" not in listed.headers
    queue = workspace.task_queues.list()[0]
    fetched = live.http("GET", f"/v1/Workspaces/{ann.workspace_sid}/TaskQueues/{queue.sid}")
    assert "ETag" not in fetched.headers


def test_routing_set_off_by_a_create_moves_the_etag_on(live: Live) -> None:
    """The create answer's ETag is that of the body it carries (the task pending); routing
    the create set off (a reservation) is a change of the task, so that ETag is stale after
    it, as it is at Twilio where routing follows the request. A fresh fetch's ETag applies."""
    workspace, activities, workflow_sid, ann = _floor(live)
    workspace.workers(ann.sid).update(activity_sid=activities["Available"])
    made = workspace.tasks.create_with_http_info(workflow_sid=workflow_sid, attributes="{}")
    assert made.data.assignment_status == "pending"
    task = workspace.tasks(made.data.sid)
    assert task.fetch().assignment_status == "reserved"
    with twilio_error(412, 20412):
        task.update(attributes='{"late": true}', if_match=made.headers["ETag"])
    current = task.fetch_with_http_info().headers["ETag"]
    assert task.update(attributes='{"late": true}', if_match=current).attributes == '{"late": true}'


def test_a_long_refused_if_match_is_cut_short_in_the_message(live: Live) -> None:
    workspace, _, workflow_sid, _ = _floor(live)
    task = workspace.tasks.create(workflow_sid=workflow_sid, attributes="{}")
    with twilio_error(412, 20412) as caught:
        workspace.tasks(task.sid).update(priority=1, if_match="x" * 10_000)
    assert len(caught.value.msg) < 300 and "..." in caught.value.msg
