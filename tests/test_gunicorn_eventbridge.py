"""The Worker SDK's websocket under the README's gunicorn command: two worker processes, the
socket held by one of them while the REST calls that change the worker land on either, so its
events come from the database the processes share."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

from twilio.rest import Client

from taskrouter_sandbox.runtime import Sandbox
from tests.servers import gunicorn_app
from tests.websocket_client import WebSocketClient


def test_a_workers_socket_under_gunicorn_hears_changes_made_through_either_process(tmp_path):
    account_sid, auth_token = "AC" + "cd" * 16, "sandbox-token-for-this-test"
    with gunicorn_app(
        tmp_path,
        TASKROUTER_BACKEND="sandbox",
        TWILIO_ACCOUNT_SID=account_sid,
        TWILIO_AUTH_TOKEN=auth_token,
    ) as server:
        # The test mints the token from the sandbox's database, as the server would.
        database = str(tmp_path / "instance" / "sandbox.sqlite3")
        sandbox = Sandbox(database, account_sid=account_sid, auth_token=auth_token)
        try:
            alice = sandbox.seeded.worker_sids["Alice"]
            token = sandbox.worker_token(alice)
            idle = sandbox.seeded.activity_sids["Idle"]
            workspace_sid = sandbox.seeded.workspace_sid
        finally:
            sandbox.close()
        query = urlencode({"token": token, "closeExistingSessions": "false"})
        ws = WebSocketClient.connect(f"ws://127.0.0.1:{server.port}/sandbox/v1/wschannels?{query}")
        try:
            assert json.loads(ws.receive(timeout=10))["event_type"] == "init"
            client = Client(
                account_sid, auth_token, environment={"TWILIO_EDGE": "", "TWILIO_REGION": ""}
            )
            client.taskrouter.base_url = f"{server.url}/sandbox"
            workspace = client.taskrouter.v1.workspaces(workspace_sid)
            workspace.workers(alice).update(activity_sid=idle)
            # Several tasks, so that the REST calls reach both processes.
            for _ in range(4):
                workspace.tasks.create(
                    attributes=json.dumps({"selected_language": "es"}),
                    workflow_sid=sandbox.seeded.workflow_sid,
                )
            seen: list[str] = []
            deadline = time.monotonic() + 10
            while "reservation.created" not in seen and time.monotonic() < deadline:
                message = ws.receive(timeout=deadline - time.monotonic())
                if message and message.strip():
                    seen.append(json.loads(message)["event_type"])
            assert "worker.activity.update" in seen
            assert "reservation.created" in seen, seen
        finally:
            ws.close()
