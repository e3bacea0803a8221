"""What each assignment instruction adds to its task, over REST and as a callback's answer.

Twilio's "Handling Assignment Callbacks" page (handle-assignment-callbacks) and the
Reservation resource's instruction sections: the dequeue and call instructions place a call
to the worker and TaskRouter adds that call's SID to the task's attributes as
worker_call_sid; accept, reject, redirect and conference add nothing to them. The sandbox
places no call: the SID is a generated CA... that names none (README, "Where the sandbox
differs or chooses").
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, Response

from tests.sandbox.conftest import Live, live_sandbox, routing, serve

CALL_SID = re.compile(r"^CA[0-9a-f]{32}$")


class Floor:
    """A workspace with one queue and Ann Offline; reserve() offers her a fresh task."""

    def __init__(self, live: Live, assignment_callback_url: str | None = None) -> None:
        created = live.new_workspace("Instructions", multi_task_enabled=False)
        self.workspace = live.v1.workspaces(created.sid)
        self.activities = {a.friendly_name: a.sid for a in self.workspace.activities.list()}
        queue = self.workspace.task_queues.create(friendly_name="Calls")
        options: dict[str, Any] = {}
        if assignment_callback_url is not None:
            options["assignment_callback_url"] = assignment_callback_url
        self.workflow = self.workspace.workflows.create(
            friendly_name="Calls", configuration=routing(("1 == 1", queue.sid)), **options
        )
        self.ann = self.workspace.workers.create(
            friendly_name="Ann", activity_sid=self.activities["Offline"]
        )

    def reserve(self, attributes: dict[str, Any]) -> Any:
        task = self.workspace.tasks.create(
            workflow_sid=self.workflow.sid, attributes=json.dumps(attributes)
        )
        self.workspace.workers(self.ann.sid).update(activity_sid=self.activities["Available"])
        (reservation,) = self.workspace.tasks(task.sid).reservations.list()
        return reservation

    def attributes(self, task_sid: str) -> dict[str, Any]:
        return json.loads(self.workspace.tasks(task_sid).fetch().attributes)


def test_dequeue_over_rest_adds_worker_call_sid(live: Live) -> None:
    floor = Floor(live)
    reservation = floor.reserve({"call_sid": "CA" + "1" * 32, "from": "+15550100"})
    reservation.update(instruction="dequeue", dequeue_from="+15550199")
    attributes = floor.attributes(reservation.task_sid)
    assert CALL_SID.match(attributes.pop("worker_call_sid"))
    assert attributes == {"call_sid": "CA" + "1" * 32, "from": "+15550100"}
    assert attributes["call_sid"] != floor.attributes(reservation.task_sid)["worker_call_sid"]


def test_call_over_rest_adds_worker_call_sid_while_the_reservation_waits(live: Live) -> None:
    """The call is placed when the instruction is given; the reservation stays pending until
    the call is accepted (CallAccept)."""
    floor = Floor(live)
    reservation = floor.reserve({"kind": "callback"})
    pending = reservation.update(
        instruction="call", call_from="+15550199", call_url="https://example.com/twiml"
    )
    assert pending.reservation_status == "pending"
    attributes = floor.attributes(reservation.task_sid)
    assert CALL_SID.match(attributes["worker_call_sid"]) and attributes["kind"] == "callback"


@pytest.mark.parametrize(
    "instruction",
    [
        {"reservation_status": "accepted"},
        {"instruction": "accept"},
        {"instruction": "conference", "from_": "+15550199"},
        {
            "instruction": "redirect",
            "redirect_call_sid": "CA" + "2" * 32,
            "redirect_url": "https://example.com/twiml",
            "redirect_accept": True,
        },
        {"reservation_status": "rejected"},
        {"instruction": "reject"},
    ],
)
def test_other_instructions_add_nothing_to_the_attributes(
    live: Live, instruction: dict[str, Any]
) -> None:
    floor = Floor(live)
    reservation = floor.reserve({"call_sid": "CA" + "1" * 32})
    reservation.update(**instruction)
    assert floor.attributes(reservation.task_sid) == {"call_sid": "CA" + "1" * 32}


def test_each_call_gets_its_own_sid(live: Live) -> None:
    floor = Floor(live)
    first = floor.reserve({})
    first.update(instruction="dequeue", dequeue_from="+15550199")
    second = floor.reserve({})
    second.update(instruction="dequeue", dequeue_from="+15550199")
    sids = {floor.attributes(r.task_sid)["worker_call_sid"] for r in (first, second)}
    assert len(sids) == 2


def test_the_change_is_a_task_update_with_its_event_and_etag(live: Live) -> None:
    floor = Floor(live)
    reservation = floor.reserve({})
    before = floor.workspace.tasks(reservation.task_sid).fetch_with_http_info().headers["ETag"]
    reservation.update(instruction="dequeue", dequeue_from="+15550199")
    after = floor.workspace.tasks(reservation.task_sid).fetch_with_http_info().headers["ETag"]
    assert after != before
    updated = floor.workspace.events.list(task_sid=reservation.task_sid, event_type="task.updated")
    assert updated and "worker_call_sid" in updated[0].event_data["task_attributes"]


@pytest.fixture
def answering() -> Iterator[tuple[Live, list[dict[str, Any]]]]:
    """A sandbox delivering callbacks, and an assignment callback answering with the next
    document of the list it yields."""
    answers: list[dict[str, Any]] = []
    app = Flask("assignment_answers")

    @app.post("/assignment")
    def assignment() -> Response:
        return Response(json.dumps(answers.pop(0)), mimetype="application/json")

    with live_sandbox(SANDBOX_START_THREADS=True) as live, serve(app) as root:
        live.url = root + "/assignment"  # type: ignore[attr-defined]
        yield live, answers


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        ({"instruction": "dequeue", "from": "+15550199"}, "accepted"),
        ({"instruction": "call", "from": "+15550199", "url": "https://example.com/t"}, "pending"),
    ],
)
def test_an_assignment_callback_answer_adds_worker_call_sid(
    answering: tuple[Live, list[dict[str, Any]]], answer: dict[str, Any], status: str
) -> None:
    live, answers = answering
    answers.append(answer)
    floor = Floor(live, assignment_callback_url=live.url)  # type: ignore[attr-defined]
    reservation = floor.reserve({"call_sid": "CA" + "3" * 32})
    assert live.sandbox.dispatcher is not None and live.sandbox.dispatcher.drain(10)
    assert reservation.fetch().reservation_status == status
    attributes = floor.attributes(reservation.task_sid)
    assert CALL_SID.match(attributes["worker_call_sid"])
    assert attributes["call_sid"] == "CA" + "3" * 32
