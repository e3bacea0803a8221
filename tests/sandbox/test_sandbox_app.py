"""The sandbox as a Flask extension and as an app of its own: seed, restart, reset, settings.

Databases live in pytest's tmp_path; servers run on free ports and stop at the end of each test.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import click
import pytest
from flask import Flask

from taskrouter_sandbox import Sandbox, create_app, init_app
from taskrouter_sandbox.api import create_blueprint
from taskrouter_sandbox.clock import ManualClock
from taskrouter_sandbox.seed import Seeded
from tests.sandbox.conftest import Live, list_error, live_sandbox, make_client, serve, twilio_error


def test_seed_is_the_quickstart_workspace(live: Live) -> None:
    seeded = live.sandbox.seeded
    workspace = live.seeded_workspace
    fetched = workspace.fetch()
    assert fetched.friendly_name == "TaskRouter Quickstart"
    assert fetched.default_activity_name == "Offline"
    assert fetched.timeout_activity_name == "Offline"
    assert fetched.multi_task_enabled is False
    activities = [(a.friendly_name, a.available) for a in workspace.activities.list()]
    assert activities == [("Offline", False), ("Idle", True), ("Busy", False), ("Reserved", False)]
    assert {a.friendly_name: a.sid for a in workspace.activities.list()} == seeded.activity_sids
    workers = {w.friendly_name: workspace.workers(w.sid).fetch() for w in workspace.workers.list()}
    assert set(workers) == {"Alice", "Bob"}
    assert json.loads(workers["Alice"].attributes) == {"languages": ["en", "es"]}
    assert json.loads(workers["Bob"].attributes) == {"languages": ["en"]}
    assert {w.activity_name for w in workers.values()} == {"Offline"}
    assert {name: w.sid for name, w in workers.items()} == seeded.worker_sids
    queues = {q.friendly_name: q for q in workspace.task_queues.list()}
    assert {name: q.target_workers for name, q in queues.items()} == {
        "Customer Care Requests - Spanish": 'languages HAS "es"',
        "Customer Care Requests - English": 'languages HAS "en"',
    }
    for queue in queues.values():
        assert queue.reservation_activity_name == "Reserved"
        assert queue.assignment_activity_name == "Busy"
    assert {name: q.sid for name, q in queues.items()} == seeded.task_queue_sids
    workflow = workspace.workflows(seeded.workflow_sid).fetch()
    assert workflow.friendly_name == "Incoming Customer Care Requests"
    assert workflow.task_reservation_timeout == 1200
    filters = json.loads(workflow.configuration)["task_routing"]["filters"]
    assert [(f["expression"], f["targets"][0]["queue"]) for f in filters] == [
        ('selected_language == "es"', seeded.task_queue_sids["Customer Care Requests - Spanish"]),
        ('selected_language == "en"', seeded.task_queue_sids["Customer Care Requests - English"]),
    ]
    assert workspace.task_channels("default").fetch().sid == seeded.task_channel_sid


def test_restart_keeps_data_credentials_and_seed(tmp_path: Path) -> None:
    database = str(tmp_path / "sandbox.sqlite3")
    with live_sandbox(database) as first:
        credentials = first.auth
        seeded = first.sandbox.seeded
        task = first.seeded_workspace.tasks.create(attributes='{"selected_language": "es"}')
        first.seeded_workspace.workers(seeded.worker_sids["Alice"]).update(
            activity_sid=seeded.activity_sids["Idle"]
        )
    with live_sandbox(database) as second:
        assert second.auth == credentials
        assert second.sandbox.seeded == seeded
        assert len(second.v1.workspaces.list()) == 1  # seeded once, not again
        again = second.seeded_workspace.tasks(task.sid).fetch()
        assert again.task_queue_friendly_name == "Customer Care Requests - Spanish"
        assert again.assignment_status == "reserved"  # routing offered it to Alice
        alice = second.seeded_workspace.workers(seeded.worker_sids["Alice"]).fetch()
        assert alice.activity_name == "Reserved"


def test_a_deleted_seed_workspace_is_seeded_again_at_start(tmp_path: Path) -> None:
    database = str(tmp_path / "sandbox.sqlite3")
    with live_sandbox(database) as first:
        old = first.sandbox.seeded.workspace_sid
        first.seeded_workspace.delete()
    with live_sandbox(database) as second:
        assert second.sandbox.seeded.workspace_sid != old
        assert [w.sid for w in second.v1.workspaces.list()] == [second.sandbox.seeded.workspace_sid]


def test_two_processes_starting_together_seed_once(tmp_path: Path) -> None:
    database = str(tmp_path / "sandbox.sqlite3")
    sandboxes: list[Sandbox] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            sandboxes.append(Sandbox(database, clock=ManualClock()))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert len({s.seeded.workspace_sid for s in sandboxes}) == 1
        assert len({s.account_sid for s in sandboxes}) == 1
        with sandboxes[0].store.read() as tx:
            assert tx.scalar("SELECT count(*) FROM workspaces") == 1
    finally:
        for sandbox in sandboxes:
            sandbox.close()


def test_flask_sandbox_reset(tmp_path: Path) -> None:
    database = str(tmp_path / "sandbox.sqlite3")
    with live_sandbox(database) as running:
        old_seed = running.sandbox.seeded
        credentials = running.auth
        task = running.seeded_workspace.tasks.create(attributes='{"selected_language": "en"}')
        result = running.app.test_cli_runner().invoke(args=["sandbox", "reset"])
        assert result.exit_code == 0, result.output
        new_seed = running.sandbox.seeded
        assert new_seed.workspace_sid != old_seed.workspace_sid
        assert new_seed.workspace_sid in result.output
        assert running.auth == credentials
        assert [w.sid for w in running.v1.workspaces.list()] == [new_seed.workspace_sid]
        with twilio_error(404, 20404):
            running.v1.workspaces(old_seed.workspace_sid).tasks(task.sid).fetch()
        with running.sandbox.store.read() as tx:
            for table in ("events", "event_journal"):
                assert (
                    tx.scalar(
                        f"SELECT count(*) FROM {table} WHERE workspace_sid = ?",
                        (old_seed.workspace_sid,),
                    )
                    == 0
                )

        result = running.app.test_cli_runner().invoke(
            args=["sandbox", "reset", "--new-credentials"]
        )
        assert result.exit_code == 0, result.output
        assert running.auth != credentials
        assert running.sandbox.account_sid in result.output


def test_pinned_credentials(tmp_path: Path) -> None:
    account_sid, auth_token = "AC" + "ab" * 16, "pinned-token"
    with live_sandbox(
        str(tmp_path / "s.sqlite3"), SANDBOX_ACCOUNT_SID=account_sid, SANDBOX_AUTH_TOKEN=auth_token
    ) as running:
        assert running.auth == (account_sid, auth_token)
        workspace = running.seeded_workspace.fetch()
        assert workspace.account_sid == account_sid


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"SANDBOX_ACCOUNT_SID": "AC123"}, "SANDBOX_ACCOUNT_SID"),
        ({"SANDBOX_ACCOUNT_SID": "WS" + "0" * 32}, "SANDBOX_ACCOUNT_SID"),
        ({"SANDBOX_AUTH_TOKEN": "   "}, "SANDBOX_AUTH_TOKEN"),
    ],
)
def test_bad_settings_fail_at_start(config: dict, fragment: str) -> None:
    app = Flask("bad_settings")
    app.config.update(SANDBOX_DATABASE=":memory:", **config)
    with pytest.raises(ValueError, match=fragment):
        init_app(app)


def test_a_standalone_command_other_than_run_prints_no_credentials(capsys) -> None:
    app = create_app({"SANDBOX_DATABASE": ":memory:"})
    try:
        assert app.extensions["sandbox"].auth_token not in capsys.readouterr().err
    finally:
        app.extensions["sandbox"].close()


def test_default_database_lives_in_the_instance_folder(tmp_path: Path) -> None:
    app = Flask("instance_default", instance_path=str(tmp_path / "instance"))
    sandbox = init_app(app)
    try:
        assert sandbox.store.database == str(tmp_path / "instance" / "sandbox.sqlite3")
        assert (tmp_path / "instance" / "sandbox.sqlite3").exists()
        assert app.extensions["sandbox"] is sandbox
    finally:
        sandbox.close()


def test_standalone_app_serves_at_the_root(capsys: pytest.CaptureFixture[str]) -> None:
    # As `flask --app taskrouter_sandbox run --port 5001` builds it: the serving process prints
    # the banner.
    run = click.Context(click.Command("run"), info_name="run")
    run.params = {"host": "127.0.0.1", "port": 5001}
    with run:
        app = create_app({"SANDBOX_DATABASE": ":memory:"})
    sandbox: Sandbox = app.extensions["sandbox"]
    try:
        banner = capsys.readouterr().err
        assert "http://127.0.0.1:5001" in banner
        assert sandbox.account_sid in banner and sandbox.auth_token in banner
        assert sandbox.seeded.workspace_sid in banner and sandbox.seeded.workflow_sid in banner
        client = app.test_client()
        auth = (sandbox.account_sid, sandbox.auth_token)
        response = client.get("/v1/Workspaces", auth=auth)
        assert response.status_code == 200
        url = response.get_json()["workspaces"][0]["url"]
        assert url == f"http://localhost/v1/Workspaces/{sandbox.seeded.workspace_sid}"
        missing = client.get("/nowhere", auth=auth)
        assert missing.status_code == 404 and missing.get_json()["code"] == 20404
    finally:
        sandbox.close()


def test_seeded_sids_round_trip() -> None:
    seeded = Seeded(
        workspace_sid="WS" + "1" * 32,
        workflow_sid="WW" + "2" * 32,
        task_channel_sid="TC" + "3" * 32,
        activity_sids={"Offline": "WA" + "4" * 32},
        worker_sids={"Alice": "WK" + "5" * 32},
        task_queue_sids={"Q": "WQ" + "6" * 32},
    )
    assert Seeded.from_json(seeded.to_json()) == seeded


def test_two_sandboxes_mount_in_one_app_under_two_prefixes() -> None:
    """Each prefix gets a blueprint of its own name, so both register and each answers with
    its own sandbox's data, credentials and URLs, through the twilio library."""
    app = Flask("two_sandboxes")
    first = Sandbox(":memory:", clock=ManualClock())
    second = Sandbox(":memory:", clock=ManualClock())
    try:
        app.register_blueprint(create_blueprint(first, "/east"), url_prefix="/east")
        app.register_blueprint(create_blueprint(second, "/west"), url_prefix="/west")
        assert {"sandbox_east", "sandbox_west"} <= set(app.blueprints)
        with serve(app) as root:
            for sandbox, prefix in ((first, "/east"), (second, "/west")):
                v1 = make_client(sandbox, root + prefix).taskrouter.v1
                workspaces = v1.workspaces.list()
                assert [w.sid for w in workspaces] == [sandbox.seeded.workspace_sid]
                assert workspaces[0].url.startswith(root + prefix + "/v1/Workspaces/")
            # One sandbox's credentials do not open the other.
            with list_error(401, 20003):
                make_client(first, root + "/west").taskrouter.v1.workspaces.list()
    finally:
        first.close()
        second.close()


def test_blueprint_names() -> None:
    """The default mounts keep the name "sandbox" (and so their endpoint names); another
    prefix gets its own, and a name can be given."""
    sandbox = Sandbox(":memory:", clock=ManualClock())
    try:
        assert create_blueprint(sandbox, "").name == "sandbox"
        assert create_blueprint(sandbox, "/sandbox").name == "sandbox"
        assert create_blueprint(sandbox, "/api/v2-sandbox/").name == "sandbox_api_v2_sandbox"
        assert create_blueprint(sandbox, "/x", name="mine").name == "mine"
    finally:
        sandbox.close()
