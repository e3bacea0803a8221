"""Issue 18's deployment on several hosts, on one machine: two servers under the README's
gunicorn command, on different ports and instance folders (nothing on disk shared), with one
REDIS_URL and one TaskRouter (the sandbox served alone, standing in for Twilio). A callback
received by one is listed on the other's page, and the other's cached state learns of it from
Redis at once, not when its cache runs out."""

from __future__ import annotations

import json
import time
from contextlib import ExitStack

import requests
from twilio.request_validator import RequestValidator

from taskrouter_quickstart.callback_log.redis_log import CHANNEL
from taskrouter_sandbox.testing import TaskRouterSandbox
from tests.redis_server import RedisServer
from tests.servers import gunicorn_app

PASSWORD = "redis-password-never-logged-4567"
# Each worker keeps its page's state this long (the default is a quarter of a second): only a
# notification can show it a new callback within the test's bound.
GUNICORN_CONFIG = """
def post_worker_init(worker):
    app = worker.wsgi
    app.extensions["console_state"].ttl = 60.0
    # As the worker's first request would: listen from the start, so the test can wait for it.
    app.extensions["callback_log"].start_listening()
"""
BOUND_SECONDS = 5.0


def post_callback(server, sandbox, task_number: int) -> requests.Response:
    url = f"{server.url}/assignment_callback"
    params = {
        "AccountSid": sandbox.account_sid,
        "WorkspaceSid": sandbox.workspace_sid,
        "WorkflowSid": sandbox.workflow_sid,
        "TaskQueueSid": sandbox.task_queues["Customer Care Requests - Spanish"],
        "WorkerSid": sandbox.workers["Alice"],
        "WorkerAttributes": json.dumps({"languages": ["en", "es"]}),
        "TaskSid": f"WT{task_number:032x}",
        "TaskAttributes": json.dumps({"selected_language": "es"}),
        "ReservationSid": f"WR{task_number:032x}",
    }
    signature = RequestValidator(sandbox.auth_token).compute_signature(url, params)
    return requests.post(url, data=params, headers={"X-Twilio-Signature": signature}, timeout=10)


def listed(server) -> list[str]:
    state = requests.get(f"{server.url}/console/state", timeout=10)
    assert state.status_code == 200, state.text
    return [callback["task_sid"] for callback in state.json()["callbacks"]]


def test_a_callback_received_by_one_host_is_listed_on_the_others_page(tmp_path):
    config = tmp_path / "gunicorn.conf.py"
    config.write_text(GUNICORN_CONFIG)
    with ExitStack() as stack:
        redis_server = RedisServer(tmp_path / "redis", password=PASSWORD).start()
        stack.callback(redis_server.stop)
        sandbox = stack.enter_context(TaskRouterSandbox(transport="http"))
        settings = {
            "TWILIO_ACCOUNT_SID": sandbox.account_sid,
            "TWILIO_AUTH_TOKEN": sandbox.auth_token,
            "TASKROUTER_BASE_URL": sandbox.base_url,
            "TWILIO_WORKSPACE_SID": sandbox.workspace_sid,
            "TWILIO_WORKFLOW_SID": sandbox.workflow_sid,
            "ASSIGNMENT_MODE": "accept",
            "REDIS_URL": redis_server.url,
        }
        options = ("--config", str(config))
        first = stack.enter_context(gunicorn_app(tmp_path / "a", options=options, **settings))
        second = stack.enter_context(gunicorn_app(tmp_path / "b", options=options, **settings))
        assert first.port != second.port

        # Both servers' two workers listen.
        with redis_server.client() as client:
            deadline = time.monotonic() + 15
            while dict(client.pubsub_numsub(CHANNEL))[CHANNEL.encode()] < 4:
                assert time.monotonic() < deadline, "the workers did not all subscribe"
                time.sleep(0.05)
        # Each of the second server's workers builds its state now and keeps it for 60 s.
        for _ in range(8):
            assert listed(second) == []

        answer = post_callback(first, sandbox, 1)
        assert (answer.status_code, answer.json()) == (200, {"instruction": "accept"})
        received = time.monotonic()
        while f"WT{1:032x}" not in listed(second):
            assert time.monotonic() - received < BOUND_SECONDS, "not listed on the other host"
            time.sleep(0.02)
        # Whichever worker of the second server answers.
        for _ in range(8):
            assert listed(second) == [f"WT{1:032x}"]
        page = requests.get(second.url, timeout=10)
        assert page.status_code == 200
        assert f"WT{1:032x}" in page.text

        # Redis goes away: callbacks are still answered, the pages say why the list is empty.
        redis_server.stop()
        answer = post_callback(second, sandbox, 2)
        assert (answer.status_code, answer.json()) == (200, {"instruction": "accept"})
        page = requests.get(first.url, timeout=10)
        assert page.status_code == 200
        assert f"Redis at redis://127.0.0.1:{redis_server.port}/0" in page.text

        # It comes back: the callbacks received from then on are listed on both.
        redis_server.start()
        answer = post_callback(second, sandbox, 3)
        assert answer.status_code == 200
        received = time.monotonic()
        # Either of first's two workers answers a read, and each reads Redis again on its own
        # (see below): wait until eight reads in a row, whichever worker serves them, list it.
        in_a_row = 0
        while in_a_row < 8:
            assert time.monotonic() - received < BOUND_SECONDS + 10, "not listed after Redis"
            now_listed = listed(first)
            if f"WT{3:032x}" in now_listed:
                assert now_listed == [f"WT{3:032x}"]
                in_a_row += 1
            else:
                in_a_row = 0
                time.sleep(0.05)
        # Each worker process reads Redis again once its listener is back, or its last failed
        # read is READ_FAILURE_SECONDS old, whichever comes first.
        while f"WT{3:032x}" not in requests.get(first.url, timeout=10).text:
            assert time.monotonic() - received < BOUND_SECONDS + 10, "not on the page after Redis"
            time.sleep(0.05)
    logs = "".join(first.log + second.log)
    assert "Could not record 1 callback(s) in Redis at redis://127.0.0.1:" in logs
    assert PASSWORD not in logs
