"""TaskRouterSandbox over a database file, whose writes commit behind (store/behind.py):
settle() still waits for every callback an answer causes, and close() still sends the event
callbacks of the last writes, as over :memory:."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import jsonify

from taskrouter_sandbox.testing import TaskRouterSandbox
from taskrouter_sandbox.testing.harness import DEFAULT_CALLBACK_ORIGIN
from tests.sandbox.testing.conftest import answering, create_task, go_idle

WHERE = ["memory", "file"]


def _database(tmp_path: Path, where: str) -> str:
    return ":memory:" if where == "memory" else str(tmp_path / "sandbox.sqlite3")


@pytest.mark.parametrize("where", WHERE)
def test_settle_waits_for_the_events_of_the_accept(tmp_path: Path, where: str) -> None:
    with TaskRouterSandbox(database=_database(tmp_path, where)) as box:
        app = answering(box)  # accepts
        box.workspace.update(event_callback_url=DEFAULT_CALLBACK_ORIGIN + "/events")
        go_idle(box, "Alice")
        create_task(box, "es")  # the client settles after each request
        types = {delivery["form"].get("EventType") for delivery in app.of_kind("event")}
        assert "reservation.accepted" in types


@pytest.mark.parametrize("where", WHERE)
def test_settle_waits_for_the_offer_a_rejection_causes(tmp_path: Path, where: str) -> None:
    with TaskRouterSandbox(database=_database(tmp_path, where)) as box:
        offered: list[str] = []

        def answer(form):
            offered.append(form["WorkerSid"])
            return jsonify(instruction="reject" if len(offered) == 1 else "accept")

        answering(box, answer)
        go_idle(box, "Alice", "Bob")
        task = create_task(box, "en")  # the first worker rejects, the other accepts
        statuses = [r.reservation_status for r in box.workspace.tasks(task.sid).reservations.list()]
        assert sorted(statuses) == ["accepted", "rejected"] and len(set(offered)) == 2


@pytest.mark.parametrize("where", WHERE)
def test_close_sends_the_event_callbacks_of_the_last_writes(tmp_path: Path, where: str) -> None:
    box = TaskRouterSandbox(database=_database(tmp_path, where))
    app = answering(box)
    box.workspace.update(event_callback_url=DEFAULT_CALLBACK_ORIGIN + "/events")
    # The engine's own write (as the timer or delivery thread makes one), not the REST API's.
    box.sandbox.engine.update_worker(
        box.workspace_sid, box.workers["Alice"], activity_sid=box.activities["Idle"]
    )
    box.close()
    assert "worker.activity.update" in [d["form"].get("EventType") for d in app.of_kind("event")]


@pytest.mark.parametrize("where", WHERE)
def test_settle_commits_the_engine_s_own_writes_first(tmp_path: Path, where: str) -> None:
    with TaskRouterSandbox(database=_database(tmp_path, where)) as box:
        app = answering(box)
        box.workspace.update(event_callback_url=DEFAULT_CALLBACK_ORIGIN + "/events")
        box.sandbox.engine.update_worker(
            box.workspace_sid, box.workers["Alice"], activity_sid=box.activities["Idle"]
        )
        box.settle()
        types = [delivery["form"].get("EventType") for delivery in app.of_kind("event")]
        assert "worker.activity.update" in types
