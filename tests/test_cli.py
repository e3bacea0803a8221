"""The `flask taskrouter` commands, against a Twilio account mocked with `responses` (exact
requests asserted) and against the local sandbox served on a free port.
"""

from __future__ import annotations

import json
import re
import threading
from types import SimpleNamespace

import pytest
import requests
from werkzeug.serving import make_server

from taskrouter_quickstart.app import create_app
from taskrouter_sandbox.domain.values import Paging
from taskrouter_sandbox.seed import ENGLISH_QUEUE, SPANISH_QUEUE, WORKFLOW_NAME, WORKSPACE_NAME
from tests.contract import load_contract

V1 = "https://taskrouter.twilio.com/v1"
DATE = "2024-05-14T14:26:54Z"
CALLBACK_URL = "https://abc123.ngrok-free.app/assignment_callback"
ALL = Paging(page_size=1000)


def sid(prefix: str, number: int) -> str:
    return f"{prefix}{number:032x}"


def quickstart_configuration(spanish_sid: str, english_sid: str) -> str:
    return json.dumps(
        {
            "task_routing": {
                "filters": [
                    {
                        "filter_friendly_name": "Spanish",
                        "expression": 'selected_language == "es"',
                        "targets": [{"queue": spanish_sid}],
                    },
                    {
                        "filter_friendly_name": "English",
                        "expression": 'selected_language == "en"',
                        "targets": [{"queue": english_sid}],
                    },
                ]
            }
        }
    )


class Account:
    """TaskRouter resources as a Twilio account answers them (field names from TaskRouter v1)."""

    def __init__(self, sids: SimpleNamespace) -> None:
        self.account_sid = sids.account
        self.workspace_sid = sids.workspace
        self.workflow_sid = sids.workflow
        self.workspace_url = f"{V1}/Workspaces/{sids.workspace}"
        self.activity_sids = {
            name: sid("WA", number)
            for number, name in enumerate(("Offline", "Idle", "Busy", "Reserved"), 1)
        }
        self.worker_sids = {"Alice": sid("WK", 1), "Bob": sid("WK", 2)}
        self.task_queue_sids = {SPANISH_QUEUE: sid("WQ", 1), ENGLISH_QUEUE: sid("WQ", 2)}

    def _base(self, url: str, sid_: str, fields: dict, changes: dict) -> dict[str, object]:
        return {
            "account_sid": self.account_sid,
            "sid": sid_,
            "date_created": DATE,
            "date_updated": DATE,
            "url": f"{url}/{sid_}",
            "links": {},
            **fields,
            **changes,
        }

    def workspace(self, **changes: object) -> dict[str, object]:
        offline = self.activity_sids["Offline"]
        fields = {
            "friendly_name": WORKSPACE_NAME,
            "default_activity_sid": offline,
            "default_activity_name": "Offline",
            "timeout_activity_sid": offline,
            "timeout_activity_name": "Offline",
            "event_callback_url": None,
            "events_filter": None,
            "multi_task_enabled": False,
            "prioritize_queue_order": "FIFO",
        }
        return self._base(f"{V1}/Workspaces", self.workspace_sid, fields, changes)

    def activity(self, name: str, available: bool, sid_: str | None = None):
        fields = {
            "workspace_sid": self.workspace_sid,
            "friendly_name": name,
            "available": available,
        }
        url = f"{self.workspace_url}/Activities"
        return self._base(url, sid_ or self.activity_sids[name], fields, {})

    def activities(self) -> list[dict[str, object]]:
        return [
            self.activity("Offline", False),
            self.activity("Idle", True),
            self.activity("Busy", False),
            self.activity("Reserved", False),
        ]

    def worker(self, name: str, activity: str = "Offline") -> dict[str, object]:
        fields = {
            "workspace_sid": self.workspace_sid,
            "friendly_name": name,
            "attributes": None,  # null in lists, as TaskRouter answers them
            "activity_sid": self.activity_sids[activity],
            "activity_name": activity,
            "available": activity == "Idle",
            "date_status_changed": DATE,
        }
        return self._base(f"{self.workspace_url}/Workers", self.worker_sids[name], fields, {})

    def task_queue(self, name: str, **changes: object) -> dict[str, object]:
        fields = {
            "workspace_sid": self.workspace_sid,
            "friendly_name": name,
            "target_workers": 'languages HAS "es"'
            if name == SPANISH_QUEUE
            else 'languages HAS "en"',
            "reservation_activity_sid": self.activity_sids["Reserved"],
            "reservation_activity_name": "Reserved",
            "assignment_activity_sid": self.activity_sids["Busy"],
            "assignment_activity_name": "Busy",
            "max_reserved_workers": 1,
            "task_order": "FIFO",
        }
        url = f"{self.workspace_url}/TaskQueues"
        return self._base(url, self.task_queue_sids[name], fields, changes)

    def queue_statistics(self, name: str, **changes: object) -> dict[str, object]:
        """A TaskQueue's RealTimeStatistics, as the description's example answers them."""
        queue_sid = self.task_queue_sids[name]
        statistics = {
            "account_sid": self.account_sid,
            "workspace_sid": self.workspace_sid,
            "task_queue_sid": queue_sid,
            "longest_task_waiting_age": 0,
            "longest_task_waiting_sid": None,
            "longest_relative_task_age_in_queue": 0,
            "longest_relative_task_sid_in_queue": None,
            "tasks_by_status": {"reserved": 0, "pending": 0, "assigned": 0, "wrapping": 0},
            "tasks_by_priority": {},
            "total_tasks": 0,
            "total_available_workers": 0,
            "total_eligible_workers": 0,
            "activity_statistics": [
                {"friendly_name": activity, "workers": 0, "sid": activity_sid}
                for activity, activity_sid in self.activity_sids.items()
            ],
            "url": f"{self.workspace_url}/TaskQueues/{queue_sid}/RealTimeStatistics",
        }
        statistics.update(changes)
        return statistics

    def configuration(self) -> str:
        return quickstart_configuration(
            self.task_queue_sids[SPANISH_QUEUE], self.task_queue_sids[ENGLISH_QUEUE]
        )

    def workflow(self, **changes: object) -> dict[str, object]:
        fields = {
            "workspace_sid": self.workspace_sid,
            "friendly_name": WORKFLOW_NAME,
            "configuration": self.configuration(),
            "assignment_callback_url": None,
            "fallback_assignment_callback_url": None,
            "task_reservation_timeout": 1200,
            "document_content_type": "application/json",
        }
        return self._base(f"{self.workspace_url}/Workflows", self.workflow_sid, fields, changes)


def page(key: str, url: str, records: list[dict[str, object]]) -> dict[str, object]:
    return {
        key: records,
        "meta": {
            "key": key,
            "page": 0,
            "page_size": 1000,
            "first_page_url": f"{url}?PageSize=1000&Page=0",
            "previous_page_url": None,
            "next_page_url": None,
            "url": f"{url}?PageSize=1000&Page=0",
        },
    }


@pytest.fixture
def account(sids) -> Account:
    return Account(sids)


@pytest.fixture
def sent(upstream, sent_form):
    """Every request made so far: (method, url, form fields with one value each)."""

    def requests_made():
        made = []
        for call in upstream.calls:
            form = {name: values[0] for name, values in sent_form(call).items()}
            assert all(len(values) == 1 for values in sent_form(call).values())
            made.append((call.request.method, call.request.url, form))
        return made

    return requests_made


def invoke(app, *args: str):
    return app.test_cli_runner().invoke(args=["taskrouter", *args])


def list_answer(upstream, key: str, url: str, records) -> None:
    upstream.get(url, json=page(key, url, records))


def answer_queue_figures(upstream, account: Account, **figures: dict) -> list[tuple]:
    """The queue list and each queue's RealTimeStatistics (figures by queue name); returns
    the requests `status` makes for them."""
    ws = account.workspace_url
    names = (SPANISH_QUEUE, ENGLISH_QUEUE)
    queues = [account.task_queue(name) for name in names]
    list_answer(upstream, "task_queues", f"{ws}/TaskQueues", queues)
    made = [("GET", f"{ws}/TaskQueues?PageSize=1000", {})]
    for name in names:
        url = f"{ws}/TaskQueues/{account.task_queue_sids[name]}/RealTimeStatistics"
        upstream.get(url, json=account.queue_statistics(name, **figures.get(name, {})))
        made.append(("GET", url, {}))
    return made


def answer_existing_quickstart(upstream, account: Account, **changes) -> None:
    """The list answers of an account where the quickstart workspace already exists."""
    ws = account.workspace_url
    list_answer(
        upstream,
        "workspaces",
        f"{V1}/Workspaces",
        [account.workspace(**changes.get("workspace", {}))],
    )
    list_answer(upstream, "activities", f"{ws}/Activities", account.activities())
    workers = [account.worker("Alice"), account.worker("Bob")]
    list_answer(upstream, "workers", f"{ws}/Workers", workers)
    queues = [
        account.task_queue(SPANISH_QUEUE, **changes.get("spanish", {})),
        account.task_queue(ENGLISH_QUEUE),
    ]
    list_answer(upstream, "task_queues", f"{ws}/TaskQueues", queues)
    workflow = account.workflow(**changes.get("workflow", {}))
    list_answer(upstream, "workflows", f"{ws}/Workflows", [workflow])


def list_requests(account: Account):
    """The five lists `setup` reads, in order."""
    ws = account.workspace_url
    return [
        ("GET", f"{V1}/Workspaces?FriendlyName=TaskRouter+Quickstart&PageSize=1000", {}),
        ("GET", f"{ws}/Activities?PageSize=1000", {}),
        ("GET", f"{ws}/Workers?PageSize=1000", {}),
        ("GET", f"{ws}/TaskQueues?PageSize=1000", {}),
        ("GET", f"{ws}/Workflows?PageSize=1000", {}),
    ]


# -- setup against a Twilio account ------------------------------------------------------


def run_fresh_setup(app, upstream, account: Account, *options: str):
    """`setup` on an account without the quickstart workspace, with TaskRouter's answers."""
    ws = account.workspace_url
    list_answer(upstream, "workspaces", f"{V1}/Workspaces", [])
    upstream.post(f"{V1}/Workspaces", json=account.workspace(), status=201)
    # A new workspace comes with Offline, Available and Unavailable.
    defaults = [
        account.activity("Offline", False),
        account.activity("Available", True, sid("WA", 8)),
        account.activity("Unavailable", False, sid("WA", 9)),
    ]
    list_answer(upstream, "activities", f"{ws}/Activities", defaults)
    for name, available in (("Idle", True), ("Busy", False), ("Reserved", False)):
        upstream.post(f"{ws}/Activities", json=account.activity(name, available), status=201)
    list_answer(upstream, "workers", f"{ws}/Workers", [])
    for name in ("Alice", "Bob"):
        upstream.post(f"{ws}/Workers", json=account.worker(name), status=201)
    list_answer(upstream, "task_queues", f"{ws}/TaskQueues", [])
    for name in (SPANISH_QUEUE, ENGLISH_QUEUE):
        upstream.post(f"{ws}/TaskQueues", json=account.task_queue(name), status=201)
    list_answer(upstream, "workflows", f"{ws}/Workflows", [])
    upstream.post(f"{ws}/Workflows", json=account.workflow(), status=201)
    return invoke(app, "setup", *options)


def test_setup_creates_the_quickstart_workspace_on_a_twilio_account(app, upstream, account, sent):
    result = run_fresh_setup(app, upstream, account, "--callback-url", CALLBACK_URL)

    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"TWILIO_WORKSPACE_SID={account.workspace_sid}\n"
        f"TWILIO_WORKFLOW_SID={account.workflow_sid}\n"
    )
    ws = account.workspace_url
    activities = account.activity_sids
    queue = {
        "ReservationActivitySid": activities["Reserved"],
        "AssignmentActivitySid": activities["Busy"],
    }
    assert sent() == [
        ("GET", f"{V1}/Workspaces?FriendlyName=TaskRouter+Quickstart&PageSize=1000", {}),
        (
            "POST",
            f"{V1}/Workspaces",
            {"FriendlyName": "TaskRouter Quickstart", "MultiTaskEnabled": "false"},
        ),
        ("GET", f"{ws}/Activities?PageSize=1000", {}),
        ("POST", f"{ws}/Activities", {"FriendlyName": "Idle", "Available": "true"}),
        ("POST", f"{ws}/Activities", {"FriendlyName": "Busy", "Available": "false"}),
        ("POST", f"{ws}/Activities", {"FriendlyName": "Reserved", "Available": "false"}),
        ("GET", f"{ws}/Workers?PageSize=1000", {}),
        (
            "POST",
            f"{ws}/Workers",
            {
                "FriendlyName": "Alice",
                "ActivitySid": activities["Offline"],
                "Attributes": '{"languages": ["en", "es"]}',
            },
        ),
        (
            "POST",
            f"{ws}/Workers",
            {
                "FriendlyName": "Bob",
                "ActivitySid": activities["Offline"],
                "Attributes": '{"languages": ["en"]}',
            },
        ),
        ("GET", f"{ws}/TaskQueues?PageSize=1000", {}),
        (
            "POST",
            f"{ws}/TaskQueues",
            {"FriendlyName": SPANISH_QUEUE, "TargetWorkers": 'languages HAS "es"', **queue},
        ),
        (
            "POST",
            f"{ws}/TaskQueues",
            {"FriendlyName": ENGLISH_QUEUE, "TargetWorkers": 'languages HAS "en"', **queue},
        ),
        ("GET", f"{ws}/Workflows?PageSize=1000", {}),
        (
            "POST",
            f"{ws}/Workflows",
            {
                "FriendlyName": WORKFLOW_NAME,
                "Configuration": account.configuration(),
                "AssignmentCallbackUrl": CALLBACK_URL,
                "TaskReservationTimeout": "1200",
            },
        ),
    ]
    assert f"created workspace  {account.workspace_sid}" in result.stderr


def test_setup_again_creates_nothing(app, upstream, account, sent):
    answer_existing_quickstart(upstream, account)

    result = invoke(app, "setup")

    assert result.exit_code == 0, result.output
    assert sent() == list_requests(account)
    assert result.stdout == (
        f"TWILIO_WORKSPACE_SID={account.workspace_sid}\n"
        f"TWILIO_WORKFLOW_SID={account.workflow_sid}\n"
    )
    assert "created" not in result.stderr
    assert "updated" not in result.stderr


def test_setup_with_a_new_callback_url_only_updates_the_workflow(app, upstream, account, sent):
    answer_existing_quickstart(
        upstream, account, workflow={"assignment_callback_url": "https://old.ngrok.app/x"}
    )
    workflow_url = f"{account.workspace_url}/Workflows/{account.workflow_sid}"
    upstream.post(workflow_url, json=account.workflow(assignment_callback_url=CALLBACK_URL))

    result = invoke(app, "setup", "--callback-url", CALLBACK_URL)

    assert result.exit_code == 0, result.output
    update = ("POST", workflow_url, {"AssignmentCallbackUrl": CALLBACK_URL})
    assert sent() == [*list_requests(account), update]


def test_setup_puts_back_the_quickstart_routing_where_it_drifted(app, upstream, account, sent):
    answer_existing_quickstart(
        upstream,
        account,
        workspace={"multi_task_enabled": True},
        spanish={"reservation_activity_sid": account.activity_sids["Busy"]},
        workflow={"task_reservation_timeout": 120, "configuration": "{}"},
    )
    ws = account.workspace_url
    spanish_url = f"{ws}/TaskQueues/{account.task_queue_sids[SPANISH_QUEUE]}"
    workflow_url = f"{ws}/Workflows/{account.workflow_sid}"
    upstream.post(ws, json=account.workspace())
    upstream.post(spanish_url, json=account.task_queue(SPANISH_QUEUE))
    upstream.post(workflow_url, json=account.workflow())

    result = invoke(app, "setup")

    assert result.exit_code == 0, result.output
    made = sent()
    assert [request for request in made if request[0] == "POST"] == [
        ("POST", ws, {"MultiTaskEnabled": "false"}),
        ("POST", spanish_url, {"ReservationActivitySid": account.activity_sids["Reserved"]}),
        (
            "POST",
            workflow_url,
            {"Configuration": account.configuration(), "TaskReservationTimeout": "1200"},
        ),
    ]


def test_setup_refuses_an_activity_of_the_wrong_availability(app, upstream, account, sent):
    ws = account.workspace_url
    list_answer(upstream, "workspaces", f"{V1}/Workspaces", [account.workspace()])
    activities = account.activities()
    activities[1] = account.activity("Idle", False)
    list_answer(upstream, "activities", f"{ws}/Activities", activities)

    result = invoke(app, "setup")

    assert result.exit_code == 1
    assert (
        f"Error: Activity 'Idle' ({account.activity_sids['Idle']}) exists but is not "
        "available, as the quickstart needs"
    ) in result.stderr
    assert "Traceback" not in result.output
    assert all(method == "GET" for method, _, _ in sent())


# -- callback-url, worker, status against a Twilio account --------------------------------


def test_callback_url_updates_the_configured_workflow(app, upstream, account, sent):
    workflow_url = f"{account.workspace_url}/Workflows/{account.workflow_sid}"
    upstream.post(workflow_url, json=account.workflow(assignment_callback_url=CALLBACK_URL))

    result = invoke(app, "callback-url", CALLBACK_URL)

    assert result.exit_code == 0, result.output
    assert sent() == [("POST", workflow_url, {"AssignmentCallbackUrl": CALLBACK_URL})]
    assert result.stdout == (
        f"Workflow {account.workflow_sid} ({WORKFLOW_NAME}) now calls {CALLBACK_URL}\n"
    )
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("url", "note"),
    [
        ("https://abc123.ngrok-free.app", "has the path '/'"),
        ("http://127.0.0.1:5000/assignment_callback", "Twilio cannot reach 127.0.0.1"),
    ],
)
def test_callback_url_notes_a_likely_mistake(app, upstream, account, url, note):
    workflow_url = f"{account.workspace_url}/Workflows/{account.workflow_sid}"
    upstream.post(workflow_url, json=account.workflow(assignment_callback_url=url))

    result = invoke(app, "callback-url", url)

    assert result.exit_code == 0, result.output
    assert note in result.stderr


def test_worker_finds_worker_and_activity_by_name_case_insensitively(app, upstream, account, sent):
    ws = account.workspace_url
    alice_url = f"{ws}/Workers/{account.worker_sids['Alice']}"
    workers = [account.worker("Alice"), account.worker("Bob")]
    list_answer(upstream, "workers", f"{ws}/Workers", workers)
    list_answer(upstream, "activities", f"{ws}/Activities", account.activities())
    upstream.post(alice_url, json=account.worker("Alice", "Idle"))

    result = invoke(app, "worker", "alice", "IDLE")

    assert result.exit_code == 0, result.output
    assert result.stdout == "Alice: Offline -> Idle\n"
    assert sent() == [
        ("GET", f"{ws}/Workers?PageSize=1000", {}),
        ("GET", f"{ws}/Activities?PageSize=1000", {}),
        ("POST", alice_url, {"ActivitySid": account.activity_sids["Idle"]}),
    ]


def test_status_prints_aligned_tables(app, upstream, account, sent, task_json, reservation_json):
    ws = account.workspace_url
    reserved_sid, pending_sid = sid("WT", 1), sid("WT", 2)
    workers = [account.worker("Alice", "Reserved"), account.worker("Bob", "Idle")]
    list_answer(upstream, "workers", f"{ws}/Workers", workers)
    tasks = [
        task_json(sid=reserved_sid, assignment_status="reserved", age=75),
        task_json(
            sid=pending_sid,
            assignment_status="pending",
            age=4000,
            priority=5,
            task_queue_friendly_name=ENGLISH_QUEUE,
        ),
    ]
    list_answer(upstream, "tasks", f"{ws}/Tasks", tasks)
    reservations_url = f"{ws}/Tasks/{reserved_sid}/Reservations"
    reservation = reservation_json(
        sid=sid("WR", 1), task_sid=reserved_sid, reservation_status="pending"
    )
    list_answer(upstream, "reservations", reservations_url, [reservation])
    workflow_url = f"{ws}/Workflows/{account.workflow_sid}"
    upstream.get(workflow_url, json=account.workflow(assignment_callback_url=CALLBACK_URL))
    queue_requests = answer_queue_figures(
        upstream,
        account,
        **{
            SPANISH_QUEUE: {
                "tasks_by_status": {"reserved": 1, "pending": 0, "assigned": 0, "wrapping": 0},
                "longest_task_waiting_age": 75,
                "longest_task_waiting_sid": reserved_sid,
                "total_tasks": 1,
                "total_eligible_workers": 1,
            },
            ENGLISH_QUEUE: {
                "tasks_by_status": {"reserved": 0, "pending": 1, "assigned": 0, "wrapping": 0},
                "longest_task_waiting_age": 4000,
                "longest_task_waiting_sid": pending_sid,
                "total_tasks": 1,
                "total_available_workers": 1,
                "total_eligible_workers": 2,
            },
        },
    )

    result = invoke(app, "status")

    assert result.exit_code == 0, result.output
    statuses = "AssignmentStatus=pending&AssignmentStatus=reserved&AssignmentStatus=assigned"
    assert sent() == [
        ("GET", f"{ws}/Workers?PageSize=1000", {}),
        ("GET", f"{ws}/Tasks?{statuses}&AssignmentStatus=wrapping&PageSize=1000", {}),
        ("GET", f"{reservations_url}?ReservationStatus=pending&PageSize=1000", {}),
        ("GET", workflow_url, {}),
        *queue_requests,
    ]
    lines = result.stdout.splitlines()
    assert lines[:2] == [
        f"Workspace {account.workspace_sid} at https://taskrouter.twilio.com",
        f"Workflow {account.workflow_sid} ({WORKFLOW_NAME})",
    ]
    # The URL the workflow calls, as TaskRouter answers it, not this server's setting.
    assert lines[2] == f"  Assignment Callback URL  {CALLBACK_URL}"
    assert lines[3:8] == [
        "",
        "Queues (real-time statistics)",
        "  QUEUE                             WAITING  LONGEST WAIT  AVAILABLE WORKERS  "
        "ELIGIBLE WORKERS",
        f"  {SPANISH_QUEUE}  1        1m 15s        0                  1",
        f"  {ENGLISH_QUEUE}  1        1h 06m        1                  2",
    ]
    del lines[1:8]
    assert lines[:12] == [
        f"Workspace {account.workspace_sid} at https://taskrouter.twilio.com",
        "",
        "Workers",
        "  NAME   ACTIVITY  AVAILABLE",
        "  Alice  Reserved  no",
        "  Bob    Idle      yes",
        "",
        "Tasks (pending, reserved, assigned, wrapping)",
        f"  SID{' ' * 33}STATUS    QUEUE                             PRIORITY  AGE",
        f"  {reserved_sid}  reserved  {SPANISH_QUEUE}  0         1m 15s",
        f"  {pending_sid}  pending   {ENGLISH_QUEUE}  5         1h 06m",
        "",
    ]
    assert lines[12] == "Pending reservations"
    assert lines[13] == f"  SID{' ' * 33}TASK{' ' * 32}WORKER  AGE"
    assert re.fullmatch(rf"  {sid('WR', 1)}  {reserved_sid}  Alice   \d+d \d\dh", lines[14])
    assert len(lines) == 15


def test_status_all_lists_every_task_and_says_none(app, upstream, account, sent):
    ws = account.workspace_url
    list_answer(upstream, "workers", f"{ws}/Workers", [])
    list_answer(upstream, "tasks", f"{ws}/Tasks", [])
    upstream.get(f"{ws}/Workflows/{account.workflow_sid}", json=account.workflow())
    list_answer(upstream, "task_queues", f"{ws}/TaskQueues", [])

    result = invoke(app, "status", "--all")

    assert result.exit_code == 0, result.output
    assert sent()[1] == ("GET", f"{ws}/Tasks?PageSize=1000", {})
    assert result.stdout.count("  (none)") == 4
    assert "Tasks (all)" in result.stdout
    assert (
        "  Assignment Callback URL  none: reservations stay pending until accepted over REST; "
        "set one with `flask --app app taskrouter callback-url URL`"
    ) in result.stdout.splitlines()


# -- bad input -----------------------------------------------------------------------------

BAD_URLS = [
    ("ftp://abc123.ngrok-free.app/assignment_callback", "must be an http:// or https:// URL"),
    ("abc123.ngrok-free.app/assignment_callback", "must be an http:// or https:// URL"),
    ("https:///assignment_callback", "must be an http:// or https:// URL with a host"),
    ("https://abc.ngrok.app:99999/assignment_callback", "has a malformed port"),
    ("https://abc.ngrok.app/assignment_callback#x", "must not carry a #fragment"),
    ("https://abc.ngrok.app/assignment callback", "must be a URL without spaces"),
    (" https://abc.ngrok.app/assignment_callback", "must be a URL without spaces"),
    ("", "must be a URL without spaces"),
]


@pytest.mark.parametrize(("url", "message"), BAD_URLS)
def test_callback_url_refuses_a_bad_url_before_any_request(app, upstream, url, message):
    result = invoke(app, "callback-url", url)

    assert result.exit_code == 2
    assert "Error: Invalid value for 'URL'" in result.stderr
    assert message in result.stderr
    assert len(upstream.calls) == 0


@pytest.mark.parametrize(("url", "message"), BAD_URLS[:3])
def test_setup_refuses_a_bad_callback_url_before_any_request(app, upstream, url, message):
    result = invoke(app, "setup", "--callback-url", url)

    assert result.exit_code == 2
    assert "Error: Invalid value for '--callback-url'" in result.stderr
    assert message in result.stderr
    assert len(upstream.calls) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["worker", "Alice"], "Error: Missing argument 'ACTIVITY'"),
        (["worker"], "Error: Missing argument 'NAME'"),
        (["worker", " ", "Idle"], "Error: Invalid value for 'NAME': must not be empty"),
        (["worker", "Alice", ""], "Error: Invalid value for 'ACTIVITY': must not be empty"),
        (["callback-url"], "Error: Missing argument 'URL'"),
        (["status", "--every"], "Error: No such option '--every'"),
        (["shutdown"], "Error: No such command 'shutdown'"),
    ],
)
def test_bad_arguments_are_usage_errors(app, upstream, args, message):
    result = invoke(app, *args)

    assert result.exit_code == 2
    assert message in result.stderr
    assert len(upstream.calls) == 0


def test_worker_unknown_name_lists_the_workers(app, upstream, account, sent):
    ws = account.workspace_url
    workers = [account.worker("Alice"), account.worker("Bob")]
    list_answer(upstream, "workers", f"{ws}/Workers", workers)

    result = invoke(app, "worker", "Carol", "Idle")

    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: No worker named 'Carol' in workspace {account.workspace_sid} "
        "(its workers: Alice, Bob)\n"
    )
    assert sent() == [("GET", f"{ws}/Workers?PageSize=1000", {})]


def test_worker_unknown_activity_lists_the_activities(app, upstream, account, sent):
    ws = account.workspace_url
    list_answer(upstream, "workers", f"{ws}/Workers", [account.worker("Alice")])
    list_answer(upstream, "activities", f"{ws}/Activities", account.activities())

    result = invoke(app, "worker", "Alice", "Lunch")

    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: No activity named 'Lunch' in workspace {account.workspace_sid} "
        "(its activities: Offline, Idle, Busy, Reserved)\n"
    )
    assert all(method == "GET" for method, _, _ in sent())


# -- upstream errors -----------------------------------------------------------------------


def twilio_error(status: int, code: int, message: str) -> dict[str, object]:
    return {
        "status": status,
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
    }


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            {"status": 401, "json": twilio_error(401, 20003, "Authenticate")},
            "Error: TaskRouter refused to list workers: Unable to fetch page: Authenticate "
            "(HTTP 401, Twilio error 20003, https://www.twilio.com/docs/errors/20003). "
            "Check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (or TWILIO_API_KEY and "
            "TWILIO_API_SECRET)\n",
        ),
        (
            {
                "status": 404,
                "json": twilio_error(404, 20404, "The requested resource was not found"),
            },
            "Error: TaskRouter refused to list workers: Unable to fetch page: The requested "
            "resource was not found "
            "(HTTP 404, Twilio error 20404, https://www.twilio.com/docs/errors/20404). Check "
            "TWILIO_WORKSPACE_SID (WS{ws}) and TWILIO_WORKFLOW_SID (WW{ww})\n",
        ),
        (
            {"status": 500, "json": twilio_error(500, 20500, "Internal Server Error")},
            "Error: TaskRouter failed with HTTP 500: Unable to fetch page: Internal Server "
            "Error (while trying to list workers, Twilio error 20500, https://www.twilio.com/docs/errors/20500)\n",
        ),
        (
            {"body": requests.exceptions.ConnectionError("refused")},
            "Error: Could not reach TaskRouter at https://taskrouter.twilio.com to list "
            "workers: ConnectionError\n",
        ),
        (
            {"body": requests.exceptions.ReadTimeout("slow")},
            "Error: TaskRouter at https://taskrouter.twilio.com did not answer in time while "
            "trying to list workers (TWILIO_HTTP_TIMEOUT)\n",
        ),
        (
            {"body": "<html>proxy</html>", "status": 200},
            "Error: TaskRouter at https://taskrouter.twilio.com answered with something that "
            "is not TaskRouter JSON while trying to list workers (check TASKROUTER_BASE_URL)\n",
        ),
        (
            {"json": {"workers": [], "tasks": []}},
            "Error: TaskRouter at https://taskrouter.twilio.com answered with something that "
            "is not TaskRouter JSON while trying to list workers: Page Records can not be "
            "deserialized\n",
        ),
    ],
    ids=["401", "404", "500", "unreachable", "timeout", "not-json", "not-a-list"],
)
def test_upstream_errors_are_one_line_and_exit_1(app, upstream, account, answer, message):
    upstream.get(f"{account.workspace_url}/Workers", **answer)

    result = invoke(app, "status")

    assert result.exit_code == 1
    expected = message.replace("WS{ws}", account.workspace_sid)
    assert result.stderr == expected.replace("WW{ww}", account.workflow_sid)
    assert result.stdout == ""


def test_an_upstream_error_midway_through_setup_stops_it(app, upstream, account, sent):
    list_answer(upstream, "workspaces", f"{V1}/Workspaces", [])
    error = twilio_error(400, 20001, "FriendlyName is required")
    upstream.post(f"{V1}/Workspaces", status=400, json=error)

    result = invoke(app, "setup")

    assert result.exit_code == 1
    assert result.stderr.startswith(
        "Error: TaskRouter refused to create the workspace: Unable to create record: "
        "FriendlyName is required "
        "(HTTP 400, Twilio error 20001"
    )
    assert result.stdout == ""
    assert len(sent()) == 2


def test_callback_url_on_a_missing_workflow(app, upstream, account):
    workflow_url = f"{account.workspace_url}/Workflows/{account.workflow_sid}"
    upstream.post(workflow_url, status=404, json=twilio_error(404, 20404, "Not found"))

    result = invoke(app, "callback-url", CALLBACK_URL)

    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"Error: TaskRouter refused to set the Assignment Callback URL of workflow "
        f"{account.workflow_sid}: Unable to update record: Not found (HTTP 404"
    )


# -- the mocks and the requests against TaskRouter's v1 description -----------------------


@pytest.fixture(scope="module")
def contract() -> dict:
    return load_contract()


def test_mocked_resources_have_the_contract_fields(contract, sids):
    account = Account(sids)
    schemas = contract["components"]["schemas"]
    for name, resource in [
        ("taskrouter.v1.workspace", account.workspace()),
        ("taskrouter.v1.workspace.activity", account.activity("Idle", True)),
        ("taskrouter.v1.workspace.worker", account.worker("Alice")),
        ("taskrouter.v1.workspace.task_queue", account.task_queue(SPANISH_QUEUE)),
        ("taskrouter.v1.workspace.workflow", account.workflow()),
        (
            "taskrouter.v1.workspace.task_queue.task_queue_real_time_statistics",
            account.queue_statistics(SPANISH_QUEUE),
        ),
    ]:
        assert set(resource) == set(schemas[name]["properties"]), name


def test_sent_form_fields_and_filters_exist_in_the_contract(contract, app, upstream, sids, sent):
    account = Account(sids)
    run_fresh_setup(app, upstream, account, "--callback-url", CALLBACK_URL)
    paths = {
        f"{V1}/Workspaces": "/v1/Workspaces",
        f"{account.workspace_url}/Activities": "/v1/Workspaces/{WorkspaceSid}/Activities",
        f"{account.workspace_url}/Workers": "/v1/Workspaces/{WorkspaceSid}/Workers",
        f"{account.workspace_url}/TaskQueues": "/v1/Workspaces/{WorkspaceSid}/TaskQueues",
        f"{account.workspace_url}/Workflows": "/v1/Workspaces/{WorkspaceSid}/Workflows",
    }
    for method, url, form in sent():
        path, _, query = url.partition("?")
        operation = contract["paths"][paths[path]][method.lower()]
        if method == "POST":
            body = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]
            assert set(form) <= set(body["schema"]["properties"]), url
        else:
            names = {parameter["name"] for parameter in operation["parameters"]}
            assert {pair.split("=")[0] for pair in query.split("&")} <= names, url


# -- against the local sandbox, served on a free port ---------------------------------------


class _LateApp:
    """A WSGI app bound after the server, so the app can be told the port it is served on."""

    app = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


@pytest.fixture
def served(tmp_path):
    """Start the app with its sandbox on a free port; its twilio client talks to that port."""
    started = []

    def serve(**environ: str):
        late = _LateApp()
        server = make_server("127.0.0.1", 0, late, threaded=True)
        instance = tmp_path / f"instance{len(started)}"
        app = late.app = create_app(
            {
                "TESTING": True,
                "ENVIRON": {
                    "PORT": str(server.server_port),
                    "INSTANCE_PATH": str(instance),
                    **environ,
                },
                "SANDBOX_START_THREADS": False,
            }
        )
        # A short poll interval keeps shutdown at teardown quick.
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        started.append((server, thread, app))
        return app

    yield serve
    for server, thread, app in started:
        server.shutdown()
        thread.join(5)
        server.server_close()
        app.extensions["sandbox"].close()


def env_lines(stdout: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in stdout.splitlines())


def test_setup_on_the_sandbox_reuses_the_seeded_workspace(served):
    app = served()
    box = app.extensions["sandbox"]
    engine = box.engine
    before = len(engine.list_workspaces(ALL).rows)

    result = invoke(app, "setup")

    assert result.exit_code == 0, result.output
    assert env_lines(result.stdout) == {
        "TWILIO_WORKSPACE_SID": box.seeded.workspace_sid,
        "TWILIO_WORKFLOW_SID": box.seeded.workflow_sid,
    }
    # The seeded workspace is the quickstart's exactly: nothing created, nothing updated.
    assert "created" not in result.stderr
    assert "updated" not in result.stderr
    assert len(engine.list_workspaces(ALL).rows) == before


def test_setup_on_the_sandbox_builds_a_working_quickstart_workspace_once(served):
    app = served()
    engine = app.extensions["sandbox"].engine
    seeded = app.extensions["sandbox"].seeded
    engine.update_workspace(seeded.workspace_sid, friendly_name="An older quickstart")

    first = invoke(app, "setup", "--callback-url", CALLBACK_URL)

    assert first.exit_code == 0, first.output
    sids = env_lines(first.stdout)
    workspace_sid, workflow_sid = sids["TWILIO_WORKSPACE_SID"], sids["TWILIO_WORKFLOW_SID"]
    assert workspace_sid != seeded.workspace_sid
    workspace = engine.get_workspace(workspace_sid)
    assert workspace["friendly_name"] == WORKSPACE_NAME
    assert not workspace["multi_task_enabled"]
    assert workspace["default_activity_name"] == workspace["timeout_activity_name"] == "Offline"
    activities = {
        row["friendly_name"]: bool(row["available"])
        for row in engine.list_activities(workspace_sid, ALL).rows
    }
    assert {"Offline": False, "Idle": True, "Busy": False, "Reserved": False}.items() <= (
        activities.items()
    )
    workers = {
        row["friendly_name"]: (json.loads(row["attributes"]), row["activity_name"])
        for row in engine.list_workers(workspace_sid, ALL).rows
    }
    assert workers == {
        "Alice": ({"languages": ["en", "es"]}, "Offline"),
        "Bob": ({"languages": ["en"]}, "Offline"),
    }
    queues = {row["friendly_name"]: row for row in engine.list_task_queues(workspace_sid, ALL).rows}
    assert queues.keys() == {SPANISH_QUEUE, ENGLISH_QUEUE}
    for name, target in (
        (SPANISH_QUEUE, 'languages HAS "es"'),
        (ENGLISH_QUEUE, 'languages HAS "en"'),
    ):
        assert queues[name]["target_workers"] == target
        assert queues[name]["reservation_activity_name"] == "Reserved"
        assert queues[name]["assignment_activity_name"] == "Busy"
    workflow = engine.get_workflow(workspace_sid, workflow_sid)
    assert workflow["friendly_name"] == WORKFLOW_NAME
    assert workflow["task_reservation_timeout"] == 1200
    assert workflow["assignment_callback_url"] == CALLBACK_URL
    assert json.loads(workflow["configuration"]) == json.loads(
        quickstart_configuration(queues[SPANISH_QUEUE]["sid"], queues[ENGLISH_QUEUE]["sid"])
    )
    counts = [
        len(engine.list_workspaces(ALL).rows),
        len(engine.list_activities(workspace_sid, ALL).rows),
        len(engine.list_workers(workspace_sid, ALL).rows),
        len(engine.list_task_queues(workspace_sid, ALL).rows),
        len(engine.list_workflows(workspace_sid, ALL).rows),
    ]

    again = invoke(app, "setup", "--callback-url", CALLBACK_URL)

    assert again.exit_code == 0, again.output
    assert env_lines(again.stdout) == sids
    assert "created" not in again.stderr
    assert "updated" not in again.stderr
    assert counts == [
        len(engine.list_workspaces(ALL).rows),
        len(engine.list_activities(workspace_sid, ALL).rows),
        len(engine.list_workers(workspace_sid, ALL).rows),
        len(engine.list_task_queues(workspace_sid, ALL).rows),
        len(engine.list_workflows(workspace_sid, ALL).rows),
    ]


def test_worker_status_and_callback_url_on_the_sandbox(served):
    app = served()
    box = app.extensions["sandbox"]
    engine, seeded = box.engine, box.seeded
    with app.app_context():
        task = app.extensions["taskrouter"].create_task(json.dumps({"selected_language": "es"}))

    moved = invoke(app, "worker", "alice", "idle")

    assert moved.exit_code == 0, moved.output
    assert moved.stdout == "Alice: Offline -> Idle\n"
    # Alice is the one Spanish speaker: she is reserved for the task at once.
    alice = engine.get_worker(seeded.workspace_sid, seeded.worker_sids["Alice"])
    assert alice["activity_name"] == "Reserved"
    (reservation,) = engine.list_reservations(
        seeded.workspace_sid, ALL, task_sid=task.sid, reservation_status="pending"
    ).rows

    status = invoke(app, "status")

    assert status.exit_code == 0, status.output
    lines = status.stdout.splitlines()
    assert "  Alice  Reserved  no" in lines
    assert "  Bob    Offline   no" in lines
    assert re.search(
        rf"^  {task.sid}  reserved  {SPANISH_QUEUE}  0 +\d+s$", status.stdout, re.MULTILINE
    )
    assert re.search(
        rf"^  {reservation['sid']}  {task.sid}  Alice   \d+s$", status.stdout, re.MULTILINE
    )

    changed = invoke(app, "callback-url", CALLBACK_URL)

    assert changed.exit_code == 0, changed.output
    workflow = engine.get_workflow(seeded.workspace_sid, seeded.workflow_sid)
    assert workflow["assignment_callback_url"] == CALLBACK_URL
    assert "pointed back at this server each time the server starts" in changed.stderr


def test_a_missing_workspace_on_the_sandbox_is_a_clear_error(served):
    missing = "WS" + "e" * 32
    app = served(TASKROUTER_BACKEND="sandbox", TWILIO_WORKSPACE_SID=missing)

    result = invoke(app, "worker", "Alice", "Idle")

    assert result.exit_code == 1
    assert result.stderr.startswith("Error: TaskRouter refused to list workers: ")
    assert "(HTTP 404, Twilio error 20404" in result.stderr
    assert f"Check TWILIO_WORKSPACE_SID ({missing})" in result.stderr
    assert "Traceback" not in result.output


def test_a_sandbox_server_not_running_says_to_start_it(make_app, refused_port):
    app = make_app({"PORT": str(refused_port)})

    result = invoke(app, "status")

    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: Could not reach TaskRouter at http://127.0.0.1:{refused_port}/sandbox to list "
        "workers: ConnectionError. The local sandbox is served by this server: start it "
        "first with `make run` (in another terminal), with the same HOST and PORT\n"
    )
