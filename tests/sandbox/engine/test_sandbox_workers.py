"""Workers through the official twilio library: create, fetch, list filters, update, delete.

Each test makes its own workspace on the module's live sandbox.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.sandbox.conftest import Live, assert_error_body, list_error, twilio_error


def _workspace(live: Live) -> tuple[Any, dict[str, str]]:
    """A fresh workspace's context and its activity SIDs by name."""
    workspace = live.v1.workspaces(live.new_workspace().sid)
    activities = {a.friendly_name: a.sid for a in workspace.activities.list()}
    return workspace, activities


def _sid(workspace: Any) -> str:
    return workspace.fetch().sid


def test_create_fetch_and_list_worker(live: Live) -> None:
    workspace, activities = _workspace(live)
    worker = workspace.workers.create(
        friendly_name="Alice", attributes=json.dumps({"languages": ["en", "es"]})
    )
    assert worker.sid.startswith("WK") and len(worker.sid) == 34
    assert worker.activity_sid == activities["Offline"]
    assert worker.activity_name == "Offline"
    assert worker.available is False
    assert json.loads(worker.attributes) == {"languages": ["en", "es"]}
    assert worker.date_status_changed == worker.date_created
    assert worker.links["activity"].endswith(f"/Activities/{activities['Offline']}")
    assert worker.links["reservations"] == f"{worker.url}/Reservations"

    fetched = workspace.workers(worker.sid).fetch()
    assert json.loads(fetched.attributes) == {"languages": ["en", "es"]}
    listed = workspace.workers.list()
    assert [w.sid for w in listed] == [worker.sid]
    assert listed[0].attributes is None  # lists leave attributes out


def test_worker_defaults_to_workspace_default_activity(live: Live) -> None:
    workspace, activities = _workspace(live)
    workspace.update(default_activity_sid=activities["Available"])
    worker = workspace.workers.create(friendly_name="Bob")
    assert worker.activity_name == "Available" and worker.available is True
    assert worker.attributes == "{}"


def test_list_worker_filters(live: Live) -> None:
    workspace, activities = _workspace(live)
    alice = workspace.workers.create(
        friendly_name="Alice",
        attributes=json.dumps({"languages": ["en", "es"], "level": 3}),
        activity_sid=activities["Available"],
    )
    bob = workspace.workers.create(
        friendly_name="Bob", attributes=json.dumps({"languages": ["en"], "level": 1})
    )
    spanish = workspace.task_queues.create(
        friendly_name="Spanish", target_workers='languages HAS "es"'
    )

    def names(**filters: Any) -> list[str]:
        return [w.friendly_name for w in workspace.workers.list(**filters)]

    assert names() == ["Alice", "Bob"]
    assert names(activity_name="Available") == ["Alice"]
    assert names(activity_sid=activities["Offline"]) == ["Bob"]
    assert names(available="true") == ["Alice"]
    assert names(available="false") == ["Bob"]
    assert names(friendly_name="ALICE") == ["Alice"]
    assert names(target_workers_expression="level > 2") == ["Alice"]
    assert names(target_workers_expression='languages HAS "en"') == ["Alice", "Bob"]
    assert names(task_queue_sid=spanish.sid) == ["Alice"]
    assert names(task_queue_name="Spanish") == ["Alice"]
    assert [w.sid for w in workspace.workers.list(ordering="DateCreated:desc")] == [
        bob.sid,
        alice.sid,
    ]


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ({"TargetWorkersExpression": "languages HAS"}, "TargetWorkersExpression"),
        ({"TaskQueueSid": "WQ" + "1" * 32}, "TaskQueueSid"),
        ({"TaskQueueName": "Nope"}, "TaskQueueName"),
        ({"Ordering": "Age:asc"}, "Ordering"),
        ({"PageSize": "0"}, "PageSize"),
        ({"PageSize": "1001"}, "PageSize"),
        ({"PageSize": "ten"}, "PageSize"),
        ({"Page": "-1"}, "Page"),
        ({"PageToken": "PAnot-a-token"}, "PageToken"),
    ],
)
def test_list_workers_rejects_bad_filters(live: Live, query: dict, fragment: str) -> None:
    workspace, _ = _workspace(live)
    sid = _sid(workspace)
    response = live.http("GET", f"/v1/Workspaces/{sid}/Workers", params=query)
    body = assert_error_body(response, 400, 20001)
    assert fragment in body["message"]


def test_bad_expression_reports_its_position(live: Live) -> None:
    workspace, _ = _workspace(live)
    with list_error(400, 20001, "at position"):
        workspace.workers.list(target_workers_expression="languages HAS")


def test_update_worker_activity_stamps_status_change_and_records_event(live: Live) -> None:
    workspace, activities = _workspace(live)
    worker = workspace.workers.create(friendly_name="Carol")
    live.clock.advance(90)
    updated = workspace.workers(worker.sid).update(activity_sid=activities["Available"])
    assert updated.activity_name == "Available" and updated.available is True
    assert (updated.date_status_changed - worker.date_status_changed).total_seconds() == 90
    events = workspace.events.list(worker_sid=worker.sid, event_type="worker.activity.update")
    assert len(events) == 1
    data = events[0].event_data
    assert data["worker_activity_name"] == "Available"
    assert data["worker_previous_activity_name"] == "Offline"
    assert data["worker_time_in_previous_activity"] == "90"
    assert events[0].resource_sid == worker.sid
    # The same activity again is no change: no new event, no new timestamp.
    again = workspace.workers(worker.sid).update(activity_sid=activities["Available"])
    assert again.date_status_changed == updated.date_status_changed
    assert len(workspace.events.list(event_type="worker.activity.update")) == 1


def test_update_worker_attributes_and_name(live: Live) -> None:
    workspace, _ = _workspace(live)
    worker = workspace.workers.create(friendly_name="Dan")
    updated = workspace.workers(worker.sid).update(
        attributes=json.dumps({"skills": ["billing"]}), friendly_name="Daniel"
    )
    assert updated.friendly_name == "Daniel"
    assert json.loads(updated.attributes) == {"skills": ["billing"]}
    newest = workspace.events.list(worker_sid=worker.sid, limit=1)
    assert newest[0].event_type == "worker.attributes.update"


def test_worker_names_are_unique_ignoring_case(live: Live) -> None:
    workspace, _ = _workspace(live)
    workspace.workers.create(friendly_name="Erin")
    with twilio_error(400, 20001, "already exists"):
        workspace.workers.create(friendly_name="ERIN")
    other = workspace.workers.create(friendly_name="Frank")
    with twilio_error(400, 20001, "already exists"):
        workspace.workers(other.sid).update(friendly_name="erin")


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"friendly_name": "G", "attributes": "{not json"}, "Attributes"),
        ({"friendly_name": "G", "attributes": "[1, 2]"}, "Attributes"),
        ({"friendly_name": "G", "activity_sid": "WA" + "2" * 32}, "ActivitySid"),
        ({"friendly_name": "G", "activity_sid": "nonsense"}, "ActivitySid"),
        ({"friendly_name": " "}, "FriendlyName"),
    ],
)
def test_create_worker_rejects_bad_input(live: Live, fields: dict, fragment: str) -> None:
    workspace, _ = _workspace(live)
    with twilio_error(400, 20001, fragment):
        workspace.workers.create(**fields)
    assert workspace.workers.list() == []


def test_reject_pending_reservations_needs_an_unavailable_activity(live: Live) -> None:
    workspace, activities = _workspace(live)
    worker = workspace.workers.create(friendly_name="Gina")
    with twilio_error(400, 20001, "RejectPendingReservations"):
        workspace.workers(worker.sid).update(
            activity_sid=activities["Available"], reject_pending_reservations=True
        )
    assert workspace.workers(worker.sid).fetch().activity_name == "Offline"


def test_delete_worker(live: Live) -> None:
    workspace, _ = _workspace(live)
    worker = workspace.workers.create(friendly_name="Hank")
    assert workspace.workers(worker.sid).delete() is True
    with twilio_error(404, 20404):
        workspace.workers(worker.sid).fetch()
    with twilio_error(404, 20404):
        workspace.workers(worker.sid).delete()
    assert "worker.deleted" in [e.event_type for e in workspace.events.list(worker_sid=worker.sid)]
