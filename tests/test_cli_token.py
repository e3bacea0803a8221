"""`flask taskrouter token NAME`: a worker's access token for Twilio's Worker SDK and the event
bridge to hand it (its ebServer and wsServer options).

Twilio's access tokens (https://www.twilio.com/docs/iam/access-tokens): a JWT signed (HS256)
with an API key's secret, issued by the key, for the account, with grants; TaskRouter's grant
names the workspace and the worker.
"""

from __future__ import annotations

import json
import time

import jwt
import pytest

from taskrouter_sandbox.eventbridge import tokens
from tests.conftest import ACCOUNT_ENVIRON
from tests.test_cli import Account, invoke, list_answer

API_KEY = "SK" + "5" * 32
API_SECRET = "s" * 32


def test_against_the_sandbox_it_prints_a_token_the_sandbox_takes(live_app) -> None:
    server = live_app()
    result = invoke(server.app, "token", "alice", "--json")
    assert result.exit_code == 0, result.output
    login = json.loads(result.stdout)
    assert set(login) == {"token", "ebServer", "wsServer"}
    # As make run serves it: the sandbox's event bridge beside its REST API.
    assert login["ebServer"] == f"{server.url}/sandbox/v1/wschannels"
    assert login["wsServer"] == "ws" + login["ebServer"].removeprefix("http")
    box = server.sandbox
    grant = tokens.check(login["token"], box.account_sid, box.api_key_sid, box.api_key_secret)
    assert grant.worker_sid == server.workers["Alice"]
    assert grant.workspace_sid == box.seeded.workspace_sid
    assert 3590 <= grant.expires - time.time() <= 3600


def test_it_prints_the_token_alone_on_stdout_and_how_to_use_it_on_stderr(live_app) -> None:
    server = live_app()
    result = invoke(server.app, "token", "Bob", "--ttl", "60")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    claims = jwt.decode(token, server.sandbox.api_key_secret, algorithms=["HS256"])
    assert claims["grants"]["task_router"]["worker_sid"] == server.workers["Bob"]
    assert claims["exp"] - claims["nbf"] == 60
    assert "ebServer" in result.stderr and server.workers["Bob"] in result.stderr


def test_an_unknown_worker_lists_the_workers_there_are(live_app) -> None:
    result = invoke(live_app().app, "token", "Carol")
    assert result.exit_code == 1
    assert "No worker named 'Carol'" in result.output and "Alice, Bob" in result.output


@pytest.mark.parametrize("ttl", ["0", "86401", "soon"])
def test_a_bad_ttl_is_a_usage_error(app, ttl: str) -> None:
    result = invoke(app, "token", "Alice", "--ttl", ttl)
    assert result.exit_code == 2
    assert "--ttl" in result.output


def test_against_an_account_it_signs_with_the_api_key_for_twilios_event_bridge(
    make_app, upstream, sids
) -> None:
    app = make_app({**ACCOUNT_ENVIRON, "TWILIO_API_KEY": API_KEY, "TWILIO_API_SECRET": API_SECRET})
    account = Account(sids)
    workers = [account.worker("Alice"), account.worker("Bob")]
    list_answer(upstream, "workers", f"{account.workspace_url}/Workers", workers)
    result = invoke(app, "token", "Alice", "--json")
    assert result.exit_code == 0, result.output
    login = json.loads(result.stdout)
    assert login["ebServer"] == "https://event-bridge.twilio.com/v1/wschannels"
    assert login["wsServer"] == "wss://event-bridge.twilio.com/v1/wschannels"
    claims = jwt.decode(login["token"], API_SECRET, algorithms=["HS256"])
    assert claims["iss"] == API_KEY and claims["sub"] == account.account_sid
    assert claims["grants"]["task_router"] == {
        "workspace_sid": account.workspace_sid,
        "worker_sid": account.worker_sids["Alice"],
    }


def test_against_an_account_without_an_api_key_it_says_one_is_needed(app, upstream, sids) -> None:
    account = Account(sids)
    list_answer(upstream, "workers", f"{account.workspace_url}/Workers", [account.worker("Alice")])
    result = invoke(app, "token", "Alice")
    assert result.exit_code == 1
    assert "TWILIO_API_KEY and TWILIO_API_SECRET are needed" in result.output
