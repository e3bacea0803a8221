"""What a callback app may do while it answers, and what a test may read afterwards: found by
an outside review of the fixture, each case in both transports where it applies."""

from __future__ import annotations

import asyncio
import gzip
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import Response, jsonify

from taskrouter_sandbox.testing import TaskRouterSandbox
from tests.sandbox.testing.conftest import answering, create_task, go_idle


def test_a_callback_may_call_the_api_from_a_thread_of_its_own(sandbox: TaskRouterSandbox) -> None:
    """Code that answers its callback after a REST call made on a worker pool works against
    Twilio: here it must neither deadlock nor wait for the callback it is part of."""
    seen: list[str] = []

    def answer(form: dict[str, str]) -> Any:
        with ThreadPoolExecutor(1) as pool:
            worker = pool.submit(sandbox.workspace.workers(form["WorkerSid"]).fetch).result()
        seen.append(worker.friendly_name)
        return jsonify(instruction="accept")

    answering(sandbox, answer)
    go_idle(sandbox, "Alice")
    task = create_task(sandbox, "es")

    assert seen == ["Alice"]
    assert task.fetch().assignment_status == "assigned"
    assert [d.instruction for d in sandbox.assignment_callbacks] == ["accept"]
    assert sandbox.alerts == []


def test_moving_the_clock_from_inside_a_callback_is_refused(sandbox: TaskRouterSandbox) -> None:
    """The clock's advance waits for the callbacks it fires, so from inside one it would wait
    for itself: it is refused at once, and the test's own advance goes on."""
    refusals: list[str] = []

    def answer(form: dict[str, str]) -> Any:
        try:
            sandbox.clock.advance(0)
        except RuntimeError as error:
            refusals.append(str(error))
        return jsonify({})

    answering(sandbox, answer)
    go_idle(sandbox, "Alice")
    create_task(sandbox, "es")
    assert refusals == ["the clock cannot be moved from inside a callback being answered"]
    sandbox.clock.advance(1200)
    assert "reservation.timeout" in sandbox.event_types


def test_a_compressed_answer_is_read_as_over_http(sandbox: TaskRouterSandbox) -> None:
    """The sandbox asks for gzip or deflate (Accept-Encoding), so an app may compress its
    answer: in process it is decoded, as urllib3 decodes it over HTTP."""

    def answer(form: dict[str, str]) -> Any:
        body = gzip.compress(json.dumps({"instruction": "accept"}).encode())
        return Response(
            body, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}
        )

    answering(sandbox, answer)
    go_idle(sandbox, "Alice")
    task = create_task(sandbox, "es")
    assert task.fetch().assignment_status == "assigned"
    (delivery,) = sandbox.assignment_callbacks
    assert (delivery.instruction, json.loads(delivery.answer)) == (
        "accept",
        {"instruction": "accept"},
    )


def test_events_older_than_fifteen_minutes_are_still_read(sandbox: TaskRouterSandbox) -> None:
    """Twilio's Events list holds the last 15 minutes unless asked for more; the fixture's
    readers ask for everything since the sandbox began."""
    answering(sandbox, lambda form: jsonify({}))
    go_idle(sandbox, "Alice")
    create_task(sandbox, "es")
    sandbox.clock.advance(3600)
    types = sandbox.event_types
    assert types[0] == "activity.created"
    assert types.index("task.created") < types.index("reservation.timeout")
    assert len(sandbox.workspace.events.list()) < len(types)


def test_an_app_whose_hooks_or_settings_a_test_changed_is_not_reused() -> None:
    with TaskRouterSandbox() as first:
        # Flask refuses after_request() once the app has served; its hook dict still takes one.
        first.app.after_request_funcs.setdefault(None, []).append(lambda response: response)
        spent = first.app
    with TaskRouterSandbox() as second:
        assert second.app is not spent
        second.app.config["MAX_CONTENT_LENGTH"] = 10
        changed = second.app
    with TaskRouterSandbox() as third:
        assert third.app is not changed
        assert third.app.config.get("MAX_CONTENT_LENGTH") is None
        assert third.workspace.tasks.list() == []


def test_a_database_file_in_a_new_folder_opens_whatever_the_pool_holds(tmp_path) -> None:
    with TaskRouterSandbox():
        pass  # leaves an app in the pool
    for name in ("one", "two"):
        database = tmp_path / name / "sandbox.sqlite3"
        with TaskRouterSandbox(database=str(database)) as running:
            assert running.workspace.fetch().sid == running.workspace_sid
        assert database.exists()


def test_code_under_test_may_use_the_async_api(sandbox: TaskRouterSandbox) -> None:
    """twilio's *_async methods need an asynchronous HttpClient: make_async_client() gives a
    Client over one, reaching the same sandbox and settled as .client is."""
    answering(sandbox, lambda form: jsonify(instruction="accept"))

    async def scenario() -> str:
        client = sandbox.make_async_client()
        workspace = client.taskrouter.v1.workspaces(sandbox.workspace_sid)
        await workspace.workers(sandbox.workers["Alice"]).update_async(
            activity_sid=sandbox.activities["Idle"]
        )
        task = await workspace.tasks.create_async(
            workflow_sid=sandbox.workflow_sid, attributes=json.dumps({"selected_language": "es"})
        )
        return (await workspace.tasks(task.sid).fetch_async()).assignment_status

    assert asyncio.run(scenario()) == "assigned"
    assert [d.instruction for d in sandbox.assignment_callbacks] == ["accept"]
