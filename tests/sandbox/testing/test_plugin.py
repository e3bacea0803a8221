"""The pytest plugin (the taskrouter_sandbox fixture, its marker, option and ini setting), run
on generated test files with pytester; and what every sandbox promises: isolation, readers
oldest first, nothing left running after close()."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from flask import Flask, jsonify
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from taskrouter_sandbox.testing import TaskRouterSandbox, taskrouter_sandbox
from tests.sandbox.testing.conftest import (
    answering,
    create_task,
    go_idle,
    live_threads,
    wait_for_threads,
)

PROBE = """
import json
import pytest

def test_probe(taskrouter_sandbox):
    print("PROBE " + json.dumps({
        "transport": taskrouter_sandbox.transport,
        "base_url": taskrouter_sandbox.base_url,
        "kind": taskrouter_sandbox.seeded.kind,
        "workflow_sid": taskrouter_sandbox.workflow_sid,
        "workers": sorted(taskrouter_sandbox.workers),
        "now": taskrouter_sandbox.clock.now().isoformat(),
        "tasks": len(taskrouter_sandbox.workspace.tasks.list()),
    }))
"""


def _probe(result: pytest.RunResult) -> list[dict]:
    return [
        json.loads(line.split("PROBE ", 1)[1].rstrip("."))
        for line in result.outlines
        if "PROBE {" in line
    ]


def test_the_fixture_defaults_to_the_quickstart_in_process(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PROBE)
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=1)
    (probe,) = _probe(result)
    assert probe["transport"] == "wsgi"
    assert probe["kind"] == "quickstart"
    assert probe["workers"] == ["Alice", "Bob"]
    assert probe["workflow_sid"].startswith("WW")


def test_the_marker_picks_seed_transport_and_start(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        PROBE.replace(
            "def test_probe",
            "from datetime import datetime, timezone\n"
            "@pytest.mark.taskrouter_sandbox(seed='empty', transport='http',"
            " start=datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc))\n"
            "def test_probe",
        )
    )
    result = pytester.runpytest("-s", "--strict-markers")
    result.assert_outcomes(passed=1)
    (probe,) = _probe(result)
    assert probe["transport"] == "http"
    assert probe["base_url"].startswith("http://127.0.0.1:")
    assert probe["kind"] == "empty"
    assert probe["workflow_sid"] is None and probe["workers"] == []
    assert probe["now"] == "2030-01-02T03:04:05+00:00"


def test_the_option_and_the_ini_pick_the_transport(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PROBE)
    by_option = pytester.runpytest("-s", "--taskrouter-sandbox-transport=http")
    by_option.assert_outcomes(passed=1)
    assert _probe(by_option)[0]["transport"] == "http"

    pytester.makeini("[pytest]\ntaskrouter_sandbox_transport = http\n")
    by_ini = pytester.runpytest("-s")
    by_ini.assert_outcomes(passed=1)
    assert _probe(by_ini)[0]["transport"] == "http"
    # The option wins over the ini file; the marker over both.
    by_both = pytester.runpytest("-s", "--taskrouter-sandbox-transport=wsgi")
    assert _probe(by_both)[0]["transport"] == "wsgi"


def test_a_bad_transport_option_is_refused_by_name(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PROBE)
    result = pytester.runpytest("--taskrouter-sandbox-transport=carrier-pigeon")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--taskrouter-sandbox-transport: invalid choice: 'carrier-pigeon'*"]
    )


def test_a_bad_transport_in_the_ini_is_refused_by_name(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PROBE)
    pytester.makeini("[pytest]\ntaskrouter_sandbox_transport = smoke-signals\n")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*taskrouter_sandbox_transport is one of wsgi, http, not 'smoke-signals'*"]
    )


def test_the_ini_picks_the_seed_and_the_marker_wins(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        PROBE
        + """
@pytest.mark.taskrouter_sandbox(seed="quickstart")
def test_marked(taskrouter_sandbox):
    print("PROBE " + json.dumps({"kind": taskrouter_sandbox.seeded.kind}))
"""
    )
    pytester.makeini("[pytest]\ntaskrouter_sandbox_seed = empty\n")
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=2)
    assert [probe["kind"] for probe in _probe(result)] == ["empty", "quickstart"]


def test_a_bad_seed_in_the_ini_is_refused_by_name(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PROBE)
    pytester.makeini("[pytest]\ntaskrouter_sandbox_seed = full\n")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*taskrouter_sandbox_seed is one of quickstart, empty, not 'full'*"]
    )


def test_bad_marker_options_are_refused_by_name(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.taskrouter_sandbox(transport="telegraph")
        def test_transport(taskrouter_sandbox):
            pass

        @pytest.mark.taskrouter_sandbox(seed="crowded")
        def test_seed(taskrouter_sandbox):
            pass

        @pytest.mark.taskrouter_sandbox(sede="empty")
        def test_misspelt(taskrouter_sandbox):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines_random(
        [
            "*the taskrouter_sandbox marker's transport is one of wsgi, http, not 'telegraph'*",
            "*the taskrouter_sandbox marker's seed is one of quickstart, empty, not 'crowded'*",
            "*the taskrouter_sandbox marker has no option sede: it takes seed, transport, start*",
        ]
    )


def test_each_test_gets_a_fresh_sandbox(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import json
        SEEN = []

        def _use(sandbox):
            SEEN.append(sandbox.account_sid)
            assert sandbox.workspace.tasks.list() == []
            sandbox.workspace.tasks.create(
                workflow_sid=sandbox.workflow_sid,
                attributes=json.dumps({"selected_language": "en"}),
            )

        def test_one(taskrouter_sandbox):
            _use(taskrouter_sandbox)

        def test_two(taskrouter_sandbox):
            _use(taskrouter_sandbox)
            assert len(set(SEEN)) == 2
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_two_sandboxes_at_once_share_nothing() -> None:
    with TaskRouterSandbox() as first, TaskRouterSandbox(transport="http") as second:
        assert first.account_sid != second.account_sid
        assert first.auth_token != second.auth_token
        create_task(first, "en")
        assert len(first.workspace.tasks.list()) == 1
        assert second.workspace.tasks.list() == []
        first.clock.advance(60)
        assert first.clock.now() != second.clock.now()
        # Neither's credentials open the other.
        intruder = Client(first.account_sid, first.auth_token)
        intruder.taskrouter.base_url = second.base_url
        with pytest.raises(TwilioRestException) as refused:
            intruder.taskrouter.v1.workspaces(second.workspace_sid).fetch()
        assert (refused.value.status, refused.value.code) == (401, 20003)


def _ok_app() -> Flask:
    app = Flask("events")

    @app.post("/events")
    def events():
        return "", 204

    return app


def test_the_readers_list_oldest_first(sandbox: TaskRouterSandbox) -> None:
    answering(sandbox, lambda form: jsonify({"instruction": "Accept"}))  # 55555: lower case
    go_idle(sandbox, "Alice")
    first = create_task(sandbox, "es")
    sandbox.clock.advance(10)
    create_task(sandbox, "en")

    events = sandbox.events
    assert [e.event_date for e in events] == sorted(e.event_date for e in events)
    assert sandbox.event_types == [e.event_type for e in events]
    assert sandbox.event_types[0] == "activity.created"
    assert sandbox.event_types.index("task.created") < len(sandbox.event_types) - 1
    alerts = sandbox.alerts
    assert [int(a.error_code) for a in alerts] == [55555]
    assert all(a.resource_sid or a.request_url or a.alert_text for a in alerts)
    (delivery,) = sandbox.callbacks
    assert delivery.params["TaskSid"] == first.sid
    assert delivery.as_dict()["kind"] == "assignment"
    assert sandbox.assignment_callbacks == [delivery] and sandbox.event_callbacks == []


def test_event_callbacks_are_read_apart_from_assignment_callbacks(
    sandbox: TaskRouterSandbox,
) -> None:
    answering(sandbox, lambda form: jsonify({}))
    origin = sandbox.serve_callbacks(_ok_app(), "http://events.test")
    sandbox.workspace.update(event_callback_url=f"{origin}/events")
    go_idle(sandbox, "Alice")
    create_task(sandbox, "es")
    kinds = [delivery.kind for delivery in sandbox.callbacks]
    assert sandbox.assignment_callbacks == [d for d in sandbox.callbacks if d.kind == "assignment"]
    assert sandbox.event_callbacks == [d for d in sandbox.callbacks if d.kind == "event"]
    assert kinds.count("assignment") == 1 and kinds.count("event") >= 2
    assert {d.event_type for d in sandbox.event_callbacks} >= {
        "task.created",
        "reservation.created",
    }


@pytest.mark.parametrize("transport", ["wsgi", "http"])
def test_close_leaves_no_thread_or_server_behind(transport: str) -> None:
    before = live_threads()
    sandbox = TaskRouterSandbox(transport=transport)
    answering(sandbox)
    go_idle(sandbox, "Alice")
    create_task(sandbox, "es")
    base_url = sandbox.base_url
    assert live_threads() - before, "a started sandbox runs its delivery thread"

    sandbox.close()

    assert wait_for_threads(before) == set()
    if transport == "http":
        import requests

        with pytest.raises(requests.ConnectionError):
            requests.get(base_url, timeout=2)


def test_the_context_manager_closes_its_sandbox() -> None:
    before = live_threads()
    with taskrouter_sandbox(seed="empty", start=datetime(2030, 1, 1, tzinfo=UTC)) as sandbox:
        assert sandbox.seeded.kind == "empty"
        assert repr(sandbox).startswith("<TaskRouterSandbox wsgi ")
    assert wait_for_threads(before) == set()


def test_a_bad_transport_is_refused_by_the_harness() -> None:
    with pytest.raises(ValueError, match="transport is one of wsgi, http, not 'pigeon'"):
        TaskRouterSandbox(transport="pigeon")  # type: ignore[arg-type]


def test_a_client_kept_from_a_closed_sandbox_is_a_stranger_to_the_next() -> None:
    """A closed sandbox's Flask app serves the next one (the harness keeps spent apps: most of
    a setup was building one); what the old client sends is refused as a stranger's."""
    first = TaskRouterSandbox()
    stale, app = first.client, first.app
    first.close()
    with TaskRouterSandbox() as second:
        assert second.app is app, "the spent app is served again"
        assert second.account_sid != first.account_sid
        with pytest.raises(TwilioRestException) as refused:
            stale.taskrouter.v1.workspaces(second.workspace_sid).fetch()
        assert (refused.value.status, refused.value.code) == (401, 20003)
        assert second.workspace.fetch().sid == second.workspace_sid
    first.close()  # closing twice is harmless


def test_an_app_the_test_changed_is_not_handed_on() -> None:
    with TaskRouterSandbox() as first:
        # A hook of the test's own (Flask refuses new routes on an app that has served).
        first.app.before_request_funcs.setdefault(None, []).append(lambda: None)
        changed = first.app
    with TaskRouterSandbox() as second:
        assert second.app is not changed
        assert None not in second.app.before_request_funcs


def test_sandboxes_open_at_once_never_share_an_app() -> None:
    with TaskRouterSandbox() as first, TaskRouterSandbox() as second:
        assert first.app is not second.app
        assert first.sandbox is not second.sandbox
        assert first.app.extensions["sandbox"] is first.sandbox
        assert second.app.blueprints["sandbox"].sandbox is second.sandbox


def test_each_sandbox_seeds_its_own_workspace_on_a_copied_schema() -> None:
    """Only the schema is copied from one made once per process: every sandbox has its own
    SIDs, credentials, and seeded resources dated at its own start."""
    with (
        TaskRouterSandbox(start=datetime(2030, 1, 1, tzinfo=UTC)) as first,
        TaskRouterSandbox(start=datetime(2031, 6, 1, tzinfo=UTC)) as second,
    ):
        assert first.workspace_sid != second.workspace_sid
        assert set(first.workers.values()).isdisjoint(second.workers.values())
        assert first.auth_token != second.auth_token
        assert first.workspace.fetch().date_created == datetime(2030, 1, 1, tzinfo=UTC)
        assert second.workspace.fetch().date_created == datetime(2031, 6, 1, tzinfo=UTC)
        assert first.event_types == second.event_types


def test_a_file_database_is_opened_as_usual(tmp_path) -> None:
    database = str(tmp_path / "sandbox.sqlite3")
    with TaskRouterSandbox(database=database) as first:
        workspace_sid = first.workspace_sid
        create_task(first, "en")
    with TaskRouterSandbox(database=database) as again:
        assert again.workspace_sid == workspace_sid
        assert len(again.workspace.tasks.list()) == 1
