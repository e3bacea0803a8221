"""Fixtures for the quickstart server's tests: apps built from explicit settings, never from
the developer's environment or .env, and TaskRouter mocked at the HTTP level with `responses`.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import traceback
from types import SimpleNamespace
from urllib.parse import parse_qs

import pytest
import responses
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from werkzeug.serving import make_server

from taskrouter_quickstart import serving
from taskrouter_quickstart.app import create_app
from taskrouter_sandbox.eventbridge import views as eventbridge
from tests.redis_server import RedisServer

TASKROUTER = "https://taskrouter.twilio.com"

# Python 3.11's traceback module runs ast.parse on each source line to place its ^ carets, and
# 3.11's AST converter keeps its recursion depth in state shared by all threads. When a server
# thread logs an exception while the test thread formats a failure, the second parse can fail
# with "SystemError: AST constructor recursion depth mismatch" and crash the xdist worker (seen
# here on 3.11.7). The carets are cosmetic, so the tests go without them on 3.11.
if sys.version_info < (3, 12):
    traceback._extract_caret_anchors_from_line_segment = lambda segment: None

SIDS = SimpleNamespace(
    account="AC" + "0123456789abcdef" * 2,
    workspace="WS" + "1" * 32,
    workflow="WW" + "2" * 32,
    task="WT" + "3" * 32,
    reservation="WR" + "4" * 32,
    worker="WK" + "5" * 32,
    task_queue="WQ" + "6" * 32,
    activity="WA" + "7" * 32,
    api_key="SK" + "8" * 32,
)
AUTH_TOKEN = "f" * 32
CONTROL_TOKEN = "control-token-for-tests-0123456789"

ACCOUNT_ENVIRON = {
    "TWILIO_ACCOUNT_SID": SIDS.account,
    "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
    "TWILIO_WORKSPACE_SID": SIDS.workspace,
    "TWILIO_WORKFLOW_SID": SIDS.workflow,
}


@pytest.fixture
def refused_port():
    """A loopback port that refuses connections for the whole test: bound but never listening,
    so no other test process can take it between the test's choosing and its connecting."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        yield probe.getsockname()[1]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """One real redis-server for this test process (each xdist worker has its own)."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server) -> str:
    """The shared redis-server's URL, emptied for this test."""
    with redis_server.client() as client:
        client.flushall()
    return redis_server.url


@pytest.fixture
def own_redis_server(tmp_path):
    """A redis-server of this test's own, which it may stop, pause and start again."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def sids() -> SimpleNamespace:
    return SIDS


@pytest.fixture
def auth_token() -> str:
    return AUTH_TOKEN


@pytest.fixture
def control_token() -> str:
    return CONTROL_TOKEN


@pytest.fixture
def account_environ() -> dict[str, str]:
    return dict(ACCOUNT_ENVIRON)


@pytest.fixture
def make_app(tmp_path):
    """Build an app from `environ` (default: a configured account) plus config overrides."""

    made = []

    def make(environ=None, **overrides):
        test_config = {
            "TESTING": True,
            "ENVIRON": dict(ACCOUNT_ENVIRON if environ is None else environ),
            "CALLBACK_LOG_PATH": str(tmp_path / "instance" / "callbacks.sqlite3"),
            # Without an account the app runs the sandbox: keep its database out of the
            # repository, and its callbacks and timers off unless a test drives them.
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "SANDBOX_START_THREADS": False,
            **overrides,
        }
        made.append(create_app(test_config))
        return made[-1]

    yield make
    # A serving app holds a lock file beside its sandbox's database until it is closed.
    for app in made:
        if "sandbox" in app.extensions:
            app.extensions["sandbox"].close()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def upstream():
    """TaskRouter over HTTP: register answers; any unregistered request fails to connect."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def sign():
    """The X-Twilio-Signature Twilio would send for `url` and form `params`."""

    def compute(url, params=None, token=AUTH_TOKEN):
        return RequestValidator(token).compute_signature(url, params or {})

    return compute


def form_of(call) -> dict[str, list[str]]:
    body = call.request.body or ""
    if isinstance(body, bytes):
        body = body.decode()
    return parse_qs(body, keep_blank_values=True)


@pytest.fixture
def sent_form():
    """The form fields of a request `responses` recorded, as lists of values."""
    return form_of


def task_resource(**fields) -> dict[str, object]:
    """A Task as TaskRouter answers it (field names from the TaskRouter v1 description)."""
    task = {
        "account_sid": SIDS.account,
        "workspace_sid": SIDS.workspace,
        "sid": SIDS.task,
        "age": 0,
        "assignment_status": "pending",
        "attributes": json.dumps({"selected_language": "es"}),
        "addons": "{}",
        "date_created": "2024-05-14T14:26:54Z",
        "date_updated": "2024-05-14T14:26:54Z",
        "task_queue_entered_date": "2024-05-14T14:26:54Z",
        "priority": 0,
        "reason": None,
        "task_queue_sid": SIDS.task_queue,
        "task_queue_friendly_name": "Customer Care Requests - Spanish",
        "task_channel_sid": "TC" + "9" * 32,
        "task_channel_unique_name": "default",
        "timeout": 86400,
        "workflow_sid": SIDS.workflow,
        "workflow_friendly_name": "Incoming Customer Care Requests",
        "url": f"{TASKROUTER}/v1/Workspaces/{SIDS.workspace}/Tasks/{SIDS.task}",
        "links": {},
        "virtual_start_time": "2024-05-14T14:26:54Z",
        "ignore_capacity": False,
        "routing_target": None,
    }
    task.update(fields)
    return task


def reservation_resource(**fields) -> dict[str, object]:
    """A Reservation as TaskRouter answers it under Tasks/{TaskSid}/Reservations."""
    reservation = {
        "account_sid": SIDS.account,
        "workspace_sid": SIDS.workspace,
        "sid": SIDS.reservation,
        "task_sid": SIDS.task,
        "worker_sid": SIDS.worker,
        "worker_name": "Alice",
        "reservation_status": "accepted",
        "date_created": "2024-05-14T14:26:54Z",
        "date_updated": "2024-05-14T14:27:01Z",
        "url": (
            f"{TASKROUTER}/v1/Workspaces/{SIDS.workspace}/Tasks/{SIDS.task}"
            f"/Reservations/{SIDS.reservation}"
        ),
        "links": {},
    }
    reservation.update(fields)
    return reservation


@pytest.fixture
def task_json():
    return task_resource


@pytest.fixture
def reservation_json():
    return reservation_resource


@pytest.fixture
def tasks_url() -> str:
    return f"{TASKROUTER}/v1/Workspaces/{SIDS.workspace}/Tasks"


@pytest.fixture
def reservation_url() -> str:
    task_url = f"{TASKROUTER}/v1/Workspaces/{SIDS.workspace}/Tasks/{SIDS.task}"
    return f"{task_url}/Reservations/{SIDS.reservation}"


@pytest.fixture
def callback_params() -> dict[str, str]:
    """The form TaskRouter posts to the Assignment Callback URL."""
    return {
        "AccountSid": SIDS.account,
        "WorkspaceSid": SIDS.workspace,
        "WorkflowSid": SIDS.workflow,
        "TaskQueueSid": SIDS.task_queue,
        "WorkerSid": SIDS.worker,
        "WorkerAttributes": json.dumps({"languages": ["en", "es"]}),
        "TaskSid": SIDS.task,
        "TaskAttributes": json.dumps({"selected_language": "es"}),
        "TaskAge": "12",
        "TaskPriority": "0",
        "ReservationSid": SIDS.reservation,
        "Timestamp": "1715696814",
    }


class _LateApp:
    """A WSGI app bound after the server, so the app can be told the port it is served on."""

    app = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


class LiveApp:
    """The app with its local sandbox, served over real HTTP on a free port of 127.0.0.1."""

    def __init__(self, instance_path, config=None, **environ: str) -> None:
        late = _LateApp()
        self.server = make_server("127.0.0.1", 0, late, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.app = late.app = create_app(
            {
                "TESTING": True,
                "ENVIRON": {
                    "PORT": str(self.server.server_port),
                    "INSTANCE_PATH": str(instance_path),
                    **environ,
                },
                **(config or {}),
            }
        )
        # As make run does once it serves: point the sandbox's workflow at this server.
        serving.start(self.app)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.sandbox = self.app.extensions["sandbox"]
        seeded = self.sandbox.seeded
        self.workers = seeded.worker_sids
        self.activities = seeded.activity_sids
        client = Client(
            self.sandbox.account_sid,
            self.sandbox.auth_token,
            environment={"TWILIO_EDGE": "", "TWILIO_REGION": ""},
        )
        client.taskrouter.base_url = f"{self.url}/sandbox"
        self.workspace = client.taskrouter.v1.workspaces(seeded.workspace_sid)

    def set_activity(self, worker: str, activity: str):
        """Move a seeded worker ("Alice") to a seeded activity ("Idle") over REST."""
        return self.workspace.workers(self.workers[worker]).update(
            activity_sid=self.activities[activity]
        )

    def callbacks_for(self, task_sid: str) -> list[dict]:
        """The assignment callbacks this app received (signed, or they were refused)."""
        log = self.app.extensions["callback_log"]
        return [row for row in log.recent(50) if row["task_sid"] == task_sid]

    def close(self) -> None:
        # As the harness and the standalone server do: the event bridge's sockets and feed
        # first, since a feed still reading when the store closes crashes the process.
        eventbridge.close_sockets(self.app)
        self.server.shutdown()
        self.thread.join(5)
        self.server.server_close()
        self.sandbox.close()


@pytest.fixture
def live_app(tmp_path):
    """Start LiveApp(**environ) servers; every one is shut down at teardown."""
    started: list[LiveApp] = []

    def start(config=None, **environ: str) -> LiveApp:
        server = LiveApp(tmp_path / f"live{len(started)}" / "instance", config, **environ)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()
