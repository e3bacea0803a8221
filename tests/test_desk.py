"""The agents' desks' server side: POST /desk/token, a worker's login for Twilio's Worker SDK
(its access token, and the event bridge to give it as ebServer and wsServer), guarded like the
page's other actions; /desk/twilio-taskrouter.js, the SDK the desks load; and the page's
desks section with and without the SDK installed.
"""

from __future__ import annotations

import time

import pytest
import requests
from twilio.jwt import Jwt

from taskrouter_quickstart.routes.desk import HOW_TO_ENABLE
from taskrouter_sandbox.eventbridge.tokens import check
from tests.test_console_page import worker_json, workspace_url

TOKEN_URL = "/desk/token"


def error_of(response) -> dict[str, object]:
    body = response.json() if isinstance(response, requests.Response) else response.get_json()
    return body["error"]


# -- against the local sandbox, over HTTP -------------------------------------------------------


@pytest.fixture
def server(live_app):
    return live_app()


def login(server, **form: str) -> requests.Response:
    return requests.post(f"{server.url}{TOKEN_URL}", data=form, timeout=10)


@pytest.mark.parametrize("form", [{"WorkerName": "Alice"}, {"WorkerName": " alice "}, "sid"])
def test_a_sandbox_worker_gets_a_token_for_the_sandboxs_event_bridge(server, form):
    alice = server.workers["Alice"]
    response = login(server, **({"WorkerSid": alice} if form == "sid" else form))

    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    bridge = f"{server.url}/sandbox/v1/wschannels"
    assert {key: body[key] for key in ("ebServer", "wsServer", "workerSid", "workerName")} == {
        "ebServer": bridge,
        "wsServer": "ws" + bridge.removeprefix("http"),
        "workerSid": alice,
        "workerName": "Alice",
    }
    assert body["workspaceSid"] == server.sandbox.seeded.workspace_sid
    # Signed with the sandbox's API key, as the event bridge checks it.
    box = server.sandbox
    grant = check(body["token"], box.account_sid, box.api_key_sid, box.api_key_secret)
    assert (grant.worker_sid, grant.workspace_sid) == (alice, body["workspaceSid"])


def test_the_token_lives_an_hour_unless_ttl_says_otherwise(server):
    box = server.sandbox
    lifetimes = []
    for form in ({"WorkerName": "Alice"}, {"WorkerName": "Alice", "Ttl": "8"}):
        token = login(server, **form).json()["token"]
        grant = check(token, box.account_sid, box.api_key_sid, box.api_key_secret)
        lifetimes.append(round(grant.expires - time.time()))
    # Seconds, as the event bridge counts them (this machine's clock, whatever the sandbox's).
    assert lifetimes[0] in range(3590, 3601)
    assert lifetimes[1] in range(0, 9)


def test_a_json_body_works_too(server):
    response = requests.post(f"{server.url}{TOKEN_URL}", json={"WorkerName": "Bob"}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["workerSid"] == server.workers["Bob"]


@pytest.mark.parametrize(
    ("form", "status", "code", "message"),
    [
        (
            {},
            400,
            "missing_parameter",
            "WorkerSid (WK...) or WorkerName (such as Alice) is required",
        ),
        (
            {"WorkerName": "   "},
            400,
            "missing_parameter",
            "WorkerSid (WK...) or WorkerName (such as Alice) is required",
        ),
        (
            {"WorkerSid": "WK123"},
            400,
            "invalid_parameter",
            "WorkerSid must be WK followed by 32 hex characters",
        ),
        (
            {"WorkerSid": "WK" + "0" * 32, "WorkerName": "Alice"},
            400,
            "invalid_parameter",
            "WorkerSid and WorkerName were both given: send one of them",
        ),
        (
            {"WorkerName": "A" * 256},
            400,
            "invalid_parameter",
            "WorkerName must be at most 255 characters",
        ),
        (
            {"Worker": "Alice"},
            400,
            "unknown_parameter",
            "/desk/token does not take Worker (given in the body): it takes WorkerSid, "
            "WorkerName, Ttl",
        ),
        (
            {"WorkerName": "Alice", "Ttl": "0"},
            400,
            "invalid_parameter",
            "Ttl must be a whole number from 1 to 86400",
        ),
        (
            {"WorkerName": "Alice", "Ttl": "86401"},
            400,
            "invalid_parameter",
            "Ttl must be a whole number from 1 to 86400",
        ),
    ],
)
def test_bad_input_is_refused_naming_the_problem(server, form, status, code, message):
    response = login(server, **form)
    assert response.status_code == status
    error = error_of(response)
    assert (error["code"], error["message"]) == (code, message)


def test_an_unknown_worker_name_lists_the_workers(server):
    response = login(server, WorkerName="Carol")
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "unknown_worker"
    workspace = server.sandbox.seeded.workspace_sid
    assert error["message"] == (
        f"No worker named 'Carol' in workspace {workspace} (its workers: Alice, Bob)"
    )


def test_an_unknown_worker_sid_is_taskrouters_404(server):
    response = login(server, WorkerSid="WK" + "0" * 32)
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == 20404
    assert "WK" + "0" * 32 in error["message"]


def test_the_token_endpoint_is_guarded_like_the_pages_actions(server):
    # A GET never logs in: a link cannot hand out a token.
    assert requests.get(f"{server.url}{TOKEN_URL}", timeout=10).status_code == 405
    # Another site's page cannot get one through the browser.
    refused = requests.post(
        f"{server.url}{TOKEN_URL}",
        data={"WorkerName": "Alice"},
        headers={"Origin": "http://localhost:1"},
        timeout=10,
    )
    assert refused.status_code == 403
    assert error_of(refused)["code"] == "cross_site_request"
    # Relayed by a proxy without CONTROL_TOKEN set: refused, as every action is.
    relayed = requests.post(
        f"{server.url}{TOKEN_URL}",
        data={"WorkerName": "Alice"},
        headers={"X-Forwarded-For": "198.51.100.20"},
        timeout=10,
    )
    assert relayed.status_code == 403
    assert error_of(relayed)["code"] == "control_token_not_set"


# -- against a Twilio account (TaskRouter mocked at the HTTP level) ---------------------------


def mock_worker(upstream, sids) -> None:
    upstream.get(
        f"{workspace_url(sids)}/Workers/{sids.worker}",
        json=worker_json(sids, sids.worker, "Alice", sids.activity, "Offline"),
    )


def test_against_an_account_without_an_api_key_the_answer_says_what_is_needed(
    client, upstream, sids
):
    mock_worker(upstream, sids)
    response = client.post(TOKEN_URL, data={"WorkerSid": sids.worker})
    assert response.status_code == 503
    error = error_of(response)
    assert error["code"] == "not_configured"
    assert error["message"].startswith(
        "TWILIO_API_KEY and TWILIO_API_SECRET are needed for a worker's access token"
    )


def test_against_an_account_the_token_is_signed_with_its_api_key_for_twilios_bridge(
    make_app, account_environ, upstream, sids
):
    secret = "s" * 32
    app = make_app({**account_environ, "TWILIO_API_KEY": sids.api_key, "TWILIO_API_SECRET": secret})
    mock_worker(upstream, sids)
    response = app.test_client().post(TOKEN_URL, data={"WorkerSid": sids.worker})
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["ebServer"] == "https://event-bridge.twilio.com/v1/wschannels"
    assert body["wsServer"] == "wss://event-bridge.twilio.com/v1/wschannels"
    decoded = Jwt.from_jwt(body["token"], secret)
    assert (decoded.issuer, decoded.subject) == (sids.api_key, sids.account)
    assert decoded.payload["grants"]["task_router"] == {
        "workspace_sid": sids.workspace,
        "worker_sid": sids.worker,
    }


# -- the SDK's script and the page's desks -----------------------------------------------------


def test_the_sdk_is_served_from_where_make_run_bundled_it(make_app, tmp_path):
    sdk = tmp_path / "twilio-taskrouter.js"
    sdk.write_text("var Twilio;(Twilio||={}).TaskRouter={};")
    client = make_app(DESK_SDK_PATH=str(sdk)).test_client()
    response = client.get("/desk/twilio-taskrouter.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.get_data(as_text=True) == sdk.read_text()
    # Cached as the static files are: the browser asks again with the ETag.
    again = client.get(
        "/desk/twilio-taskrouter.js", headers={"If-None-Match": response.headers["ETag"]}
    )
    assert again.status_code == 304
    response.close()
    again.close()

    page = client.get("/").get_data(as_text=True)
    assert '<script src="/desk/twilio-taskrouter.js" defer>' in page
    assert 'id="desk-panes"' in page
    assert 'data-token-url="/desk/token"' in page


def test_without_the_sdk_the_desks_say_how_to_turn_them_on(make_app, tmp_path):
    missing = tmp_path / "not-installed.js"
    client = make_app(DESK_SDK_PATH=str(missing)).test_client()

    response = client.get("/desk/twilio-taskrouter.js")
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "desk_sdk_not_installed"
    assert error["message"] == (
        f"Twilio's Worker SDK is not installed at {missing}: {HOW_TO_ENABLE}"
    )

    page = client.get("/").get_data(as_text=True)
    assert "twilio-taskrouter.js" not in page
    assert "desk.js" not in page
    assert 'id="desks-off"' in page
    assert "install npm (Node.js), then run `make run`" in page


def test_against_an_account_the_page_may_reach_twilios_event_bridge(client):
    policy = client.get("/").headers["Content-Security-Policy"]
    assert policy.endswith(
        "connect-src 'self' https://event-bridge.twilio.com wss://event-bridge.twilio.com"
    )


def test_with_the_sandbox_the_page_reaches_only_itself(server):
    policy = requests.get(f"{server.url}/", timeout=10).headers["Content-Security-Policy"]
    assert "connect-src" not in policy
    assert "default-src 'self'" in policy
