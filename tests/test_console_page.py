"""The page at /: settings without secrets, the Assignment Callback URL to paste, the steps,
and recent callbacks with ready accept links whose forms work from the page itself.
"""

from __future__ import annotations

import html
import re
import sqlite3
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests
from responses import matchers

from taskrouter_quickstart import console_state
from taskrouter_quickstart.console_state import StateCache

ROOT = Path(__file__).resolve().parent.parent
PUBLIC_HOST = "abc123.ngrok.app"
NGROK = {
    "X-Forwarded-For": "198.51.100.20",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": PUBLIC_HOST,
}


class Forms(HTMLParser):
    """The page's forms as (method, action, {field name: value}), as a browser would send them."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, str, dict[str, str]]] = []
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "form":
            self.forms.append((attributes["method"], attributes["action"], {}))
            return
        if not self.forms:
            return
        fields = self.forms[-1][2]
        if tag == "input":
            fields[attributes["name"]] = attributes.get("value", "")
        elif tag == "select":
            self._select = attributes["name"]
        elif tag == "option" and self._select and "selected" in attributes:
            fields[self._select] = attributes["value"]
        elif tag == "textarea":
            self._textarea = attributes["name"]
            fields[self._textarea] = ""

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea and self.forms:
            self.forms[-1][2][self._textarea] += data


def forms_of(page: str) -> list[tuple[str, str, dict[str, str]]]:
    parser = Forms()
    parser.feed(page)
    return parser.forms


def record_callback(app, sids, **fields):
    app.extensions["callback_log"].record(
        {
            "reservation_sid": sids.reservation,
            "task_sid": sids.task,
            "worker_sid": sids.worker,
            "task_queue_sid": sids.task_queue,
            "workflow_sid": sids.workflow,
            "task_attributes": '{"selected_language": "es"}',
            "worker_attributes": '{"languages": ["en", "es"]}',
            "answer": "{}",
            **fields,
        }
    )


def test_page_shows_the_settings_without_secrets(make_app, account_environ, sids, control_token):
    environ = {
        **account_environ,
        "TWILIO_API_KEY": sids.api_key,
        "TWILIO_API_SECRET": "api-secret-value",
        "CONTROL_TOKEN": control_token,
    }
    response = make_app(environ).test_client().get("/")

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    for shown in (sids.account, sids.workspace, sids.workflow, sids.api_key, "manual"):
        assert shown in page
    for secret in (account_environ["TWILIO_AUTH_TOKEN"], "api-secret-value", control_token):
        assert secret not in page
    assert "Twilio account" in page


def test_local_page_shows_its_callback_url_with_the_ngrok_note(client):
    page = client.get("/").get_data(as_text=True)
    assert '<code id="callback-url">http://localhost/assignment_callback</code>' in page
    assert "ngrok http 5000" in page
    assert "None yet." in page


def test_page_through_ngrok_shows_the_public_callback_url_with_no_token_in_it(
    make_app, control_token, sids
):
    app = make_app(CONTROL_TOKEN=control_token)
    record_callback(app, sids)
    client = app.test_client()
    client.get(f"/?token={control_token}", headers=NGROK)  # exchanged for the cookie
    response = client.get("/", headers=NGROK)

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert f'<code id="callback-url">https://{PUBLIC_HOST}/assignment_callback</code>' in page
    assert "Twilio cannot reach" not in page
    accept_link = (
        f"https://{PUBLIC_HOST}/accept_reservation?TaskSid={sids.task}"
        f"&ReservationSid={sids.reservation}"
    )
    assert html.escape(accept_link) in page
    assert control_token not in page
    assert ("post", "/create_task", {"selected_language": "es"}) in forms_of(page)


def test_page_with_public_base_url(make_app):
    page = make_app(PUBLIC_BASE_URL=f"https://{PUBLIC_HOST}").test_client().get("/")
    text = page.get_data(as_text=True)
    assert f'<code id="callback-url">https://{PUBLIC_HOST}/assignment_callback</code>' in text


def test_recent_callbacks_with_ready_accept_links(app, client, sids):
    record_callback(app, sids)
    page = client.get("/").get_data(as_text=True)

    assert sids.reservation in page
    assert sids.worker in page
    accept_link = (
        f"http://localhost/accept_reservation?TaskSid={sids.task}&ReservationSid={sids.reservation}"
    )
    assert f'<code class="accept-link">{html.escape(accept_link)}</code>' in page
    actions = [action for method, action, _ in forms_of(page) if method == "post"]
    assert accept_link in actions
    assert accept_link.replace("accept_", "reject_") in actions


def test_accept_mode_rows_have_no_accept_button(make_app, sids):
    app = make_app(ASSIGNMENT_MODE="accept")
    record_callback(app, sids, answer='{"instruction": "accept"}')
    page = app.test_client().get("/").get_data(as_text=True)
    assert sids.reservation in page
    assert "accept_reservation?" not in page
    assert "accepted at once" in page


def test_malformed_sids_get_no_link_and_are_escaped(app, client, sids):
    record_callback(app, sids, reservation_sid="<script>alert(1)</script>")
    page = client.get("/").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page
    assert "accept_reservation?" not in page


def test_an_unreadable_callback_log_still_renders(app, client, monkeypatch):
    def broken(limit=20, **workspace):
        raise sqlite3.DatabaseError("file is not a database")

    monkeypatch.setattr(app.extensions["callback_log"], "recent", broken)
    response = client.get("/")
    assert response.status_code == 200
    assert "file is not a database" in response.get_data(as_text=True)


@pytest.mark.parametrize("use_form", ["create", "create_custom", "accept"])
def test_the_page_forms_work_as_a_browser_posts_them(
    app,
    client,
    sids,
    upstream,
    tasks_url,
    reservation_url,
    task_json,
    reservation_json,
    sent_form,
    use_form,
):
    record_callback(app, sids)
    page = client.get("/").get_data(as_text=True)
    browser = {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"}
    create_forms = [form for form in forms_of(page) if "create_task" in form[1]]

    if use_form.startswith("create"):
        upstream.post(tasks_url, json=task_json(), status=201)
        [(_, action, inputs)] = [
            form for form in create_forms if ("Attributes" in form[2]) == (use_form != "create")
        ]
        response = client.post(action, data=inputs, headers=browser)
        assert response.status_code == 201
        assert sent_form(upstream.calls[0])["Attributes"] == ['{"selected_language":"es"}']
    else:
        upstream.post(reservation_url, json=reservation_json())
        [(_, action, inputs)] = [form for form in forms_of(page) if "accept_res" in form[1]]
        response = client.post(action, data=inputs, headers=browser)
        assert response.status_code == 200
        assert response.get_json()["reservation_status"] == "accepted"
        assert sent_form(upstream.calls[0]) == {"ReservationStatus": ["accepted"]}


def test_the_page_runs_no_inline_code_under_a_strict_policy(make_app, tmp_path):
    # With the desks' Worker SDK installed, as make run does.
    sdk = tmp_path / "twilio-taskrouter.js"
    sdk.write_text("var Twilio;")
    response = make_app(DESK_SDK_PATH=str(sdk)).test_client().get("/")
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "unsafe-inline" not in policy
    page = response.get_data(as_text=True)
    # Only external scripts and style sheets, no inline handlers or style attributes.
    assert re.findall(r"<script\b[^>]*>", page) == [
        '<script src="/static/dom.js" defer>',
        '<script src="/static/console.js" defer>',
        '<script src="/desk/twilio-taskrouter.js" defer>',
        '<script src="/static/desk.js" defer>',
    ]
    assert "<style" not in page
    assert not re.search(r"\son[a-z]+\s*=", page)
    assert " style=" not in page
    assert response.headers["Cache-Control"] == "no-store"


def test_the_page_script_and_style_are_served(client):
    for path, mimetype in (
        ("/static/console.js", "text/javascript"),
        ("/static/desk.js", "text/javascript"),
        ("/static/dom.js", "text/javascript"),
        ("/static/console.css", "text/css"),
        ("/static/favicon.svg", "image/svg+xml"),
    ):
        response = client.get(path)
        assert response.status_code == 200
        assert response.mimetype == mimetype
        response.close()


def test_the_pages_live_urls_carry_no_token(make_app, control_token):
    """The browser holds the token as a cookie after its ?token= visit: no URL repeats it."""
    client = make_app(CONTROL_TOKEN=control_token).test_client()
    assert client.get(f"/?token={control_token}", headers=NGROK).status_code == 303
    text = client.get("/", headers=NGROK).get_data(as_text=True)
    assert control_token not in text
    for path in ("/console/state", "/update_worker", "/update_task", "/accept_reservation"):
        assert f'"{path}"' in text


# -- the live state, against TaskRouter mocked at the HTTP level ---------------------------

TASKROUTER = "https://taskrouter.twilio.com"


def workspace_url(sids) -> str:
    return f"{TASKROUTER}/v1/Workspaces/{sids.workspace}"


BOB = "WK" + "b" * 32
IDLE = "WA" + "1" * 32
OFFLINE = "WA" + "0" * 32
ALICE_RESERVATION = "WR" + "a" * 32
# The GETs one state build makes here: activities, workers, tasks, each worker's pending
# reservations, events and the workflow (its queue's members only while a task is pending),
# then the task queues, each queue's real-time statistics and the workspace's last hour.
STATE_READS = 10


def page_of(key: str, records: list[dict]) -> dict:
    return {
        key: records,
        "meta": {
            "key": key,
            "page": 0,
            "page_size": 50,
            "first_page_url": f"{TASKROUTER}/v1/{key}?PageSize=50&Page=0",
            "next_page_url": None,
            "previous_page_url": None,
            "url": f"{TASKROUTER}/v1/{key}?PageSize=50&Page=0",
        },
    }


def activity_json(sids, sid: str, name: str, available: bool) -> dict:
    return {
        "account_sid": sids.account,
        "workspace_sid": sids.workspace,
        "sid": sid,
        "friendly_name": name,
        "available": available,
        "date_created": "2024-05-14T14:00:00Z",
        "date_updated": "2024-05-14T14:00:00Z",
        "url": f"{workspace_url(sids)}/Activities/{sid}",
        "links": {},
    }


def worker_json(sids, sid: str, name: str, activity_sid: str, activity_name: str) -> dict:
    return {
        "account_sid": sids.account,
        "workspace_sid": sids.workspace,
        "sid": sid,
        "friendly_name": name,
        "attributes": None,
        "activity_sid": activity_sid,
        "activity_name": activity_name,
        "available": activity_name == "Idle",
        "date_created": "2024-05-14T14:00:00Z",
        "date_updated": "2024-05-14T14:26:54Z",
        "date_status_changed": "2024-05-14T14:26:54Z",
        "url": f"{workspace_url(sids)}/Workers/{sid}",
        "links": {},
    }


def event_json(sids, event_type: str, **data: str) -> dict:
    return {
        "account_sid": sids.account,
        "workspace_sid": sids.workspace,
        "sid": "EV" + "e" * 32,
        "actor_sid": sids.workspace,
        "actor_type": "workspace",
        "actor_url": workspace_url(sids),
        "description": f"{event_type} happened",
        "event_data": data,
        "event_date": "2024-05-14T14:27:01Z",
        "event_date_ms": 1715696821000,
        "event_type": event_type,
        "resource_sid": data.get("reservation_sid", sids.task),
        "resource_type": "reservation",
        "resource_url": workspace_url(sids),
        "source": "twilio",
        "source_ip_address": "127.0.0.1",
        "url": f"{workspace_url(sids)}/Events/EV{'e' * 32}",
    }


def workflow_json(sids, callback_url: str | None = "https://example.com/assignment_callback"):
    return {
        "account_sid": sids.account,
        "workspace_sid": sids.workspace,
        "sid": sids.workflow,
        "friendly_name": "Incoming Customer Care Requests",
        "assignment_callback_url": callback_url,
        "fallback_assignment_callback_url": None,
        "configuration": "{}",
        "task_reservation_timeout": 120,
        "document_content_type": "application/json",
        "date_created": "2024-05-14T14:00:00Z",
        "date_updated": "2024-05-14T14:00:00Z",
        "url": f"{workspace_url(sids)}/Workflows/{sids.workflow}",
        "links": {},
    }


def task_queue_json(sids, name: str = "Customer Care Requests - Spanish") -> dict:
    return {
        "account_sid": sids.account,
        "workspace_sid": sids.workspace,
        "sid": sids.task_queue,
        "friendly_name": name,
        "target_workers": 'languages HAS "es"',
        "assignment_activity_sid": "WA" + "b" * 32,
        "assignment_activity_name": "Busy",
        "reservation_activity_sid": "WA" + "c" * 32,
        "reservation_activity_name": "Reserved",
        "max_reserved_workers": 1,
        "task_order": "FIFO",
        "date_created": "2024-05-14T14:00:00Z",
        "date_updated": "2024-05-14T14:00:00Z",
        "url": f"{workspace_url(sids)}/TaskQueues/{sids.task_queue}",
        "links": {},
    }


def queue_real_time_json(sids, **fields) -> dict:
    """A TaskQueue's RealTimeStatistics as Twilio answers it: counts by status as strings,
    as the field's description shows them."""
    statistics = {
        "account_sid": sids.account,
        "workspace_sid": sids.workspace,
        "task_queue_sid": sids.task_queue,
        "activity_statistics": [
            {"friendly_name": "Offline", "sid": OFFLINE, "workers": 1},
            {"friendly_name": "Idle", "sid": IDLE, "workers": 1},
        ],
        "longest_task_waiting_age": 42,
        "longest_task_waiting_sid": sids.task,
        "longest_relative_task_age_in_queue": 42,
        "longest_relative_task_sid_in_queue": sids.task,
        "tasks_by_priority": {"0": "1"},
        "tasks_by_status": {"pending": "0", "reserved": "1", "assigned": "0", "wrapping": "0"},
        "total_available_workers": 1,
        "total_eligible_workers": 1,
        "total_tasks": 1,
        "url": f"{workspace_url(sids)}/TaskQueues/{sids.task_queue}/RealTimeStatistics",
    }
    statistics.update(fields)
    return statistics


def workspace_cumulative_json(sids, **fields) -> dict:
    """The Workspace's CumulativeStatistics over the last hour, with every schema field."""
    waits = {"avg": 0, "min": 0, "max": 0, "total": 0}
    statistics = {
        "account_sid": sids.account,
        "workspace_sid": sids.workspace,
        "start_time": "2024-05-14T13:27:01Z",
        "end_time": "2024-05-14T14:27:01Z",
        "avg_task_acceptance_time": 0,
        "reservations_created": 2,
        "reservations_accepted": 0,
        "reservations_rejected": 1,
        "reservations_timed_out": 0,
        "reservations_canceled": 0,
        "reservations_rescinded": 0,
        "split_by_wait_time": None,
        "wait_duration_until_accepted": waits,
        "wait_duration_until_canceled": waits,
        "tasks_canceled": 0,
        "tasks_completed": 0,
        "tasks_created": 1,
        "tasks_deleted": 0,
        "tasks_moved": 0,
        "tasks_timed_out_in_workflow": 0,
        "url": f"{workspace_url(sids)}/CumulativeStatistics",
    }
    statistics.update(fields)
    return statistics


def mock_statistics(sids, upstream, realtime=None, cumulative=None):
    """The statistics the state reads: the queues, each one's real-time figures, the hour."""
    query = matchers.query_param_matcher
    upstream.get(
        f"{workspace_url(sids)}/TaskQueues",
        match=[query({"PageSize": "20"})],
        json=page_of("task_queues", [task_queue_json(sids)]),
    )
    upstream.get(
        f"{workspace_url(sids)}/TaskQueues/{sids.task_queue}/RealTimeStatistics",
        match=[query({})],
        json=realtime or queue_real_time_json(sids),
    )
    upstream.get(
        f"{workspace_url(sids)}/CumulativeStatistics",
        match=[query({"Minutes": "60"})],
        json=cumulative or workspace_cumulative_json(sids),
    )


def mock_workspace(
    sids, upstream, task_json, reservation_json, worker_status="pending", statistics=True
):
    """The REST answers the state is built from, each matched on its exact query."""
    query = matchers.query_param_matcher
    upstream.get(f"{workspace_url(sids)}/Workflows/{sids.workflow}", json=workflow_json(sids))
    upstream.get(
        f"{workspace_url(sids)}/Activities",
        match=[query({"PageSize": "50"})],
        json=page_of(
            "activities",
            [
                activity_json(sids, OFFLINE, "Offline", False),
                activity_json(sids, IDLE, "Idle", True),
            ],
        ),
    )
    upstream.get(
        f"{workspace_url(sids)}/Workers",
        match=[query({"PageSize": "50"})],
        json=page_of(
            "workers",
            [
                worker_json(sids, sids.worker, "Alice", IDLE, "Idle"),
                worker_json(sids, BOB, "Bob", OFFLINE, "Offline"),
            ],
        ),
    )
    upstream.get(
        f"{workspace_url(sids)}/Tasks",
        match=[query({"Ordering": "DateCreated:desc", "PageSize": "20"})],
        json=page_of("tasks", [task_json(assignment_status="reserved", age=42, attributes=None)]),
    )
    pending = {"ReservationStatus": "pending", "PageSize": "20"}
    upstream.get(
        f"{workspace_url(sids)}/Workers/{sids.worker}/Reservations",
        match=[query(pending)],
        json=page_of(
            "reservations",
            [reservation_json(sid=ALICE_RESERVATION, reservation_status=worker_status)],
        ),
    )
    upstream.get(
        f"{workspace_url(sids)}/Workers/{BOB}/Reservations",
        match=[query(pending)],
        json=page_of("reservations", []),
    )
    upstream.get(
        f"{workspace_url(sids)}/Events",
        match=[query({"PageSize": "50"})],
        json=page_of(
            "events",
            [
                event_json(
                    sids,
                    "reservation.rejected",
                    reservation_sid=sids.reservation,
                    task_sid=sids.task,
                    worker_sid=BOB,
                    worker_name="Bob",
                ),
                event_json(sids, "task.created", task_sid=sids.task),
            ],
        ),
    )
    if statistics:
        mock_statistics(sids, upstream)


def test_state_reads_the_workspace_through_the_twilio_client(
    app, client, sids, upstream, task_json, reservation_json
):
    mock_workspace(sids, upstream, task_json, reservation_json)
    record_callback(app, sids, reservation_sid=ALICE_RESERVATION)

    response = client.get("/console/state")

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    state = response.get_json()
    assert [call.request.method for call in upstream.calls] == ["GET"] * STATE_READS
    assert state["mode"] == "manual"
    assert state["backend"] == "twilio"
    assert state["activities"] == [
        {"sid": OFFLINE, "friendly_name": "Offline", "available": False},
        {"sid": IDLE, "friendly_name": "Idle", "available": True},
    ]
    assert [(w["friendly_name"], w["activity_name"]) for w in state["workers"]] == [
        ("Alice", "Idle"),
        ("Bob", "Offline"),
    ]
    assert state["tasks"] == [
        {
            "sid": sids.task,
            "assignment_status": "reserved",
            "task_queue_sid": sids.task_queue,
            "task_queue_friendly_name": "Customer Care Requests - Spanish",
            "priority": 0,
            "age": 42,
            "reason": None,
            "date_created": "2024-05-14T14:26:54Z",
        }
    ]
    assert state["pending_reservations"] == [
        {
            "sid": ALICE_RESERVATION,
            "task_sid": sids.task,
            "worker_sid": sids.worker,
            "worker_name": "Alice",
            "date_created": "2024-05-14T14:26:54Z",
        }
    ]
    assert state["recent_reservations"] == [
        {
            "sid": sids.reservation,
            "task_sid": sids.task,
            "worker_name": "Bob",
            "reservation_status": "rejected",
            "date": "2024-05-14T14:27:01Z",
        }
    ]
    assert [event["event_type"] for event in state["events"]] == [
        "reservation.rejected",
        "task.created",
    ]
    # Alerts are the sandbox's; a Twilio account has its own debugger.
    assert state["alerts"] is None
    [callback] = state["callbacks"]
    assert callback["reservation_sid"] == ALICE_RESERVATION
    assert callback["worker_name"] == "Alice"
    assert callback["actionable"] is True
    assert state["callbacks_error"] is None
    assert state["workflow"]["assignment_callback_url"] == "https://example.com/assignment_callback"
    # Reserved, with Alice's reservation pending: accepting it is what moves the task on.
    assert state["guide"]["step"] == 3
    assert state["guide"]["action"]["fields"] == {
        "TaskSid": sids.task,
        "ReservationSid": ALICE_RESERVATION,
    }


def test_state_is_shared_for_a_quarter_of_a_second(
    app, client, sids, upstream, task_json, reservation_json
):
    now = [100.0]
    app.extensions["console_state"] = StateCache(clock=lambda: now[0])
    mock_workspace(sids, upstream, task_json, reservation_json)

    first = client.get("/console/state").get_json()
    now[0] += 0.2
    assert client.get("/console/state").get_json() == first
    assert len(upstream.calls) == STATE_READS

    now[0] += 0.1
    assert client.get("/console/state").status_code == 200
    assert len(upstream.calls) == 2 * STATE_READS


def test_an_action_during_a_build_does_not_wait_and_the_build_is_not_reused():
    cache = StateCache(clock=lambda: 100.0)
    builds = []

    def build():
        builds.append(len(builds))
        if len(builds) == 1:
            # An action lands while the page's REST calls are under way (same thread: were
            # invalidate() to wait for the build, this would never return).
            cache.invalidate()
        return {"build": builds[-1]}

    assert cache.get(build) == {"build": 0}
    assert cache.get(build) == {"build": 1}
    assert cache.get(build) == {"build": 1}


def test_a_change_reaches_the_page_within_a_second():
    # The page polls every POLL_MS and may be answered from a state CACHE_SECONDS old: a
    # change made anywhere (a worker set Idle over REST) shows within the sum.
    script = (ROOT / "taskrouter_quickstart" / "static" / "console.js").read_text()
    poll_ms = int(re.search(r"const POLL_MS = (\d+);", script).group(1))
    assert poll_ms > console_state.CACHE_SECONDS * 1000
    assert poll_ms + console_state.CACHE_SECONDS * 1000 < 1000


def test_state_names_an_upstream_failure_and_does_not_repeat_it_at_once(
    app, client, sids, upstream
):
    now = [100.0]
    app.extensions["console_state"] = StateCache(clock=lambda: now[0])
    upstream.get(
        f"{workspace_url(sids)}/Activities",
        status=401,
        json={"code": 20003, "message": "Authenticate", "more_info": "", "status": 401},
    )

    for _ in range(2):
        response = client.get("/console/state")
        assert response.status_code == 401
        error = response.get_json()["error"]
        assert error["code"] == 20003
        assert error["message"] == "Authenticate"
    assert len(upstream.calls) == 1


def test_state_answers_a_network_failure_as_a_bad_gateway(client, upstream):
    # Nothing registered: the connection is refused.
    response = client.get("/console/state")
    assert response.status_code == 502
    error = response.get_json()["error"]
    assert error["code"] == "upstream_unreachable"
    assert "read the workspace for the console" in error["message"]


def test_state_reports_an_unreadable_callback_log(
    app, client, sids, monkeypatch, upstream, task_json, reservation_json
):
    mock_workspace(sids, upstream, task_json, reservation_json)

    def broken(limit=20, **workspace):
        raise sqlite3.DatabaseError("file is not a database")

    monkeypatch.setattr(app.extensions["callback_log"], "recent", broken)
    state = client.get("/console/state").get_json()
    assert state["callbacks"] == []
    assert "file is not a database" in state["callbacks_error"]


def test_state_is_guarded_like_the_page(make_app, control_token, upstream):
    app = make_app(CONTROL_TOKEN=control_token)
    response = app.test_client().get("/console/state", headers=NGROK)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "control_token_required"
    wrong = app.test_client().get("/console/state?token=wrong", headers=NGROK)
    assert wrong.status_code == 403
    assert wrong.get_json()["error"]["code"] == "control_token_invalid"
    assert len(upstream.calls) == 0


def test_state_is_read_only(client, upstream):
    response = client.post("/console/state")
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"
    assert len(upstream.calls) == 0


# -- the page's controls --------------------------------------------------------------------

BROWSER = {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"}


def test_update_worker_sets_the_activity(client, sids, upstream, sent_form):
    upstream.post(
        f"{workspace_url(sids)}/Workers/{sids.worker}",
        json=worker_json(sids, sids.worker, "Alice", IDLE, "Idle"),
    )
    response = client.post(
        "/update_worker", data={"WorkerSid": sids.worker, "ActivitySid": IDLE}, headers=BROWSER
    )
    assert response.status_code == 200
    assert response.get_json() == {
        "worker_sid": sids.worker,
        "friendly_name": "Alice",
        "activity_sid": IDLE,
        "activity_name": "Idle",
        "available": True,
    }
    assert sent_form(upstream.calls[0]) == {"ActivitySid": [IDLE]}


# Each action the page offers: the TaskRouter path it changes and the form it is sent.
ACTIONS = {
    "update_worker": ("Workers/{worker}", {"WorkerSid": "{worker}", "ActivitySid": OFFLINE}),
    "update_task": ("Tasks/{task}", {"TaskSid": "{task}", "AssignmentStatus": "canceled"}),
    "create_task": ("Tasks", {}),
    "accept_reservation": (
        "Tasks/{task}/Reservations/{reservation}",
        {"TaskSid": "{task}", "ReservationSid": "{reservation}"},
    ),
    "reject_reservation": (
        "Tasks/{task}/Reservations/{reservation}",
        {"TaskSid": "{task}", "ReservationSid": "{reservation}"},
    ),
}


def _action_answer(path, sids, task_json, reservation_json):
    if path.startswith("Workers"):
        return worker_json(sids, sids.worker, "Alice", OFFLINE, "Offline")
    if "Reservations" in path:
        return reservation_json()
    return task_json()


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_an_action_makes_the_next_poll_read_afresh(
    app, client, sids, upstream, task_json, reservation_json, action
):
    # The clock stands still: only the action can make the second poll read afresh.
    app.extensions["console_state"] = StateCache(clock=lambda: 100.0)
    mock_workspace(sids, upstream, task_json, reservation_json)
    path, form = ACTIONS[action]
    fill = vars(sids)
    path = path.format(**fill)
    upstream.post(
        f"{workspace_url(sids)}/{path}",
        json=_action_answer(path, sids, task_json, reservation_json),
        status=201 if path == "Tasks" else 200,
    )
    client.get("/console/state")
    response = client.post(
        f"/{action}", data={name: value.format(**fill) for name, value in form.items()}
    )
    assert response.status_code < 300, response.get_json()
    client.get("/console/state")
    assert [call.request.method for call in upstream.calls].count("GET") == 2 * STATE_READS


def test_a_refused_action_leaves_the_shared_state_alone(
    app, client, sids, upstream, task_json, reservation_json
):
    app.extensions["console_state"] = StateCache(clock=lambda: 100.0)
    mock_workspace(sids, upstream, task_json, reservation_json)
    client.get("/console/state")
    assert client.post("/update_worker", data={"WorkerSid": "nope"}).status_code == 400
    client.get("/console/state")
    assert len(upstream.calls) == STATE_READS


@pytest.mark.parametrize(
    ("status", "reason", "sent_reason"),
    [
        ("canceled", None, "Canceled on the console page"),
        ("completed", None, "Completed"),
        ("canceled", "Customer hung up", "Customer hung up"),
    ],
)
def test_update_task_cancels_or_completes(
    client, sids, upstream, task_json, tasks_url, sent_form, status, reason, sent_reason
):
    upstream.post(
        f"{tasks_url}/{sids.task}",
        json=task_json(assignment_status=status, reason=sent_reason),
    )
    data = {"TaskSid": sids.task, "AssignmentStatus": status}
    if reason:
        data["Reason"] = reason
    response = client.post("/update_task", data=data, headers=BROWSER)
    assert response.status_code == 200
    assert response.get_json() == {
        "task_sid": sids.task,
        "assignment_status": status,
        "reason": sent_reason,
    }
    assert sent_form(upstream.calls[0]) == {
        "AssignmentStatus": [status],
        "Reason": [sent_reason],
    }


GOOD_TASK = "WT" + "3" * 32
GOOD_WORKER = "WK" + "5" * 32


@pytest.mark.parametrize(
    ("path", "data", "code", "message"),
    [
        ("/update_worker", {"ActivitySid": IDLE}, "missing_parameter", "WorkerSid is required"),
        (
            "/update_worker",
            {"WorkerSid": "WK123", "ActivitySid": IDLE},
            "invalid_parameter",
            "WorkerSid must be WK followed by 32 hex characters",
        ),
        (
            "/update_worker",
            {"WorkerSid": GOOD_WORKER},
            "missing_parameter",
            "ActivitySid is required",
        ),
        (
            "/update_worker",
            {"WorkerSid": GOOD_WORKER, "ActivitySid": "Idle"},
            "invalid_parameter",
            "ActivitySid must be WA followed by 32 hex characters",
        ),
        (
            "/update_worker",
            {"WorkerSid": [GOOD_WORKER, GOOD_WORKER], "ActivitySid": IDLE},
            "invalid_parameter",
            "WorkerSid was given more than once",
        ),
        (
            "/update_task",
            {"AssignmentStatus": "canceled"},
            "missing_parameter",
            "TaskSid is required",
        ),
        (
            "/update_task",
            {"TaskSid": "WR" + "3" * 32, "AssignmentStatus": "canceled"},
            "invalid_parameter",
            "TaskSid must be WT followed by 32 hex characters",
        ),
        (
            "/update_task",
            {"TaskSid": GOOD_TASK},
            "missing_parameter",
            "AssignmentStatus is required",
        ),
        (
            "/update_task",
            {"TaskSid": GOOD_TASK, "AssignmentStatus": "assigned"},
            "invalid_parameter",
            "AssignmentStatus must be canceled or completed",
        ),
        (
            "/update_task",
            {"TaskSid": GOOD_TASK, "AssignmentStatus": "completed", "Reason": "x" * 256},
            "invalid_parameter",
            "Reason must be at most 255 characters",
        ),
    ],
)
def test_control_bad_input_is_refused_before_any_upstream_call(
    client, upstream, path, data, code, message
):
    response = client.post(path, data=data, headers=BROWSER)
    assert response.status_code == 400
    assert response.get_json() == {
        "error": {"status": 400, "code": code, "message": message, "more_info": None}
    }
    assert len(upstream.calls) == 0


@pytest.mark.parametrize(
    ("path", "data", "resource"),
    [
        ("/update_worker", {"WorkerSid": GOOD_WORKER, "ActivitySid": IDLE}, "Workers/"),
        ("/update_task", {"TaskSid": GOOD_TASK, "AssignmentStatus": "completed"}, "Tasks/"),
    ],
)
@pytest.mark.parametrize(
    ("upstream_status", "code", "status"),
    [(400, 20001, 400), (404, 20404, 404), (500, 20500, 502)],
)
def test_control_upstream_errors_are_mapped(
    client, sids, upstream, path, data, resource, upstream_status, code, status
):
    sid = data.get("WorkerSid") or data["TaskSid"]
    upstream.post(
        f"{workspace_url(sids)}/{resource}{sid}",
        status=upstream_status,
        json={"code": code, "message": "Refused by TaskRouter", "more_info": "", "status": 0},
    )
    response = client.post(path, data=data, headers=BROWSER)
    assert response.status_code == status
    error = response.get_json()["error"]
    assert error["code"] == code
    assert "Refused by TaskRouter" in error["message"]


@pytest.mark.parametrize("path", ["/update_worker", "/update_task"])
@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
        {"Origin": "https://evil.example"},
        {"Referer": "https://evil.example/page"},
    ],
)
def test_control_cross_site_post_is_refused(client, upstream, path, headers):
    data = {
        "WorkerSid": GOOD_WORKER,
        "ActivitySid": IDLE,
        "TaskSid": GOOD_TASK,
        "AssignmentStatus": "canceled",
    }
    response = client.post(path, data=data, headers=headers)
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "cross_site_request"
    assert len(upstream.calls) == 0


@pytest.mark.parametrize("path", ["/update_worker", "/update_task"])
def test_controls_are_guarded_and_post_only(make_app, control_token, upstream, path):
    app = make_app(CONTROL_TOKEN=control_token)
    client = app.test_client()
    through_ngrok = client.post(path, headers=NGROK)
    assert through_ngrok.status_code == 401
    assert through_ngrok.get_json()["error"]["code"] == "control_token_required"
    wrong = client.post(f"{path}?token=nope", headers=NGROK)
    assert wrong.status_code == 403
    assert wrong.get_json()["error"]["code"] == "control_token_invalid"
    get = client.get(path)
    assert get.status_code == 405
    assert get.get_json()["error"]["code"] == "method_not_allowed"
    assert len(upstream.calls) == 0


def test_sandbox_state_lists_its_alerts_and_events(live_app):
    """With the sandbox, a bad callback answer shows up as an alert, read through the twilio
    client's Monitor API pointed at the sandbox."""
    server = live_app()
    workflow_sid = server.app.config["TWILIO_WORKFLOW_SID"]
    # /healthz answers POST with 405: TaskRouter's error 11200.
    server.workspace.workflows(workflow_sid).update(assignment_callback_url=f"{server.url}/healthz")
    server.workspace.workers(server.workers["Alice"]).update(activity_sid=server.activities["Idle"])
    task = server.workspace.tasks.create(
        workflow_sid=workflow_sid, attributes='{"selected_language": "es"}'
    )

    deadline = time.monotonic() + 10
    while True:
        state = requests.get(f"{server.url}/console/state", timeout=10).json()
        if state["alerts"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)

    [alert] = state["alerts"]
    assert alert["error_code"] == "11200"
    assert alert["log_level"] == "error"
    assert "405" in alert["alert_text"]
    assert state["backend"] == "sandbox"
    assert {"task.created", "reservation.created"} <= {e["event_type"] for e in state["events"]}
    assert [t["sid"] for t in state["tasks"]] == [task.sid]
    assert [(r["task_sid"], r["worker_name"]) for r in state["pending_reservations"]] == [
        (task.sid, "Alice")
    ]
