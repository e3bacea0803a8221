"""The testing harness reuses a closed sandbox's Flask app for the next sandbox of the process
(its app pool): the event bridge must then serve the new sandbox, as the REST API does, or a
Worker SDK desk of any later test is refused (its token checked against the closed sandbox's
API key) and never gets `ready`."""

from __future__ import annotations

from taskrouter_sandbox.testing import taskrouter_sandbox
from tests.worker_sdk import SdkWorker


def test_a_reused_app_bridges_the_new_sandbox() -> None:
    with taskrouter_sandbox(transport="http") as first:
        first_app = first.app
    with taskrouter_sandbox(transport="http") as second:
        assert second.app is first_app, "the harness gave the second sandbox a new app"
        with SdkWorker(second.worker_token("Alice"), **second.event_bridge) as desk:
            ready = desk.wait_for("ready")
            assert ready["worker"]["sid"] == second.workers["Alice"]
            assert ready["worker"]["workspaceSid"] == second.workspace_sid
