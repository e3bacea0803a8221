"""The in-process transport is faithful: every kind of request the twilio library sends gets
the same answer from WSGIHttpClient as over real HTTP.

Both clients talk to one sandbox (served over HTTP, and handed to in-process), so the same
state answers both; the answers differ only in the base URL their links are built from.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from taskrouter_sandbox.testing import TaskRouterSandbox, WSGIHttpClient
from taskrouter_sandbox.testing.harness import WSGI_BASE_URL
from tests.sandbox.testing.conftest import create_task


@dataclass
class Pair:
    sandbox: TaskRouterSandbox
    clients: dict[str, Client]
    bases: dict[str, str]

    def workspace(self, transport: str) -> Any:
        return self.clients[transport].taskrouter.v1.workspaces(self.sandbox.workspace_sid)

    def last(self, transport: str) -> tuple[int, Any, dict[str, str]]:
        """The last answer on transport: status, body (base URL replaced) and headers."""
        response = self.clients[transport].http_client._test_only_last_response
        text = response.text.replace(self.bases[transport], "BASE")
        body = json.loads(text) if text else None
        return response.status_code, body, response.headers

    def both(self, call: Any) -> dict[str, Any]:
        return {transport: call(transport) for transport in self.clients}


@pytest.fixture
def pair() -> Iterator[Pair]:
    with TaskRouterSandbox(transport="http") as sandbox:
        in_process = Client(
            sandbox.account_sid,
            sandbox.auth_token,
            http_client=WSGIHttpClient(sandbox.app, settle=sandbox._settler),
        )
        in_process.taskrouter.base_url = WSGI_BASE_URL
        yield Pair(
            sandbox,
            {"http": sandbox.client, "wsgi": in_process},
            {"http": sandbox.base_url, "wsgi": WSGI_BASE_URL},
        )


def _same(answers: dict[str, Any]) -> Any:
    assert answers["wsgi"] == answers["http"]
    return answers["wsgi"]


def test_reads_answer_the_same(pair: Pair) -> None:
    sandbox = pair.sandbox
    for read in (
        lambda ws: ws.fetch(),
        lambda ws: ws.workers.list(),
        lambda ws: ws.activities.list(),
        lambda ws: ws.workflows(sandbox.workflow_sid).fetch(),
        lambda ws: ws.task_queues.list(friendly_name="Customer Care Requests - English"),
        lambda ws: ws.cumulative_statistics().fetch(),
    ):

        def answer(transport: str, read: Any = read) -> Any:
            read(pair.workspace(transport))
            return pair.last(transport)[:2]

        status, body = _same(pair.both(answer))
        assert status == 200 and body


def test_form_bodies_carry_every_character_alike(pair: Pair) -> None:
    attributes = json.dumps({"name": "Zoë & Co", "plus": "a+b=c", "selected_language": "en"})

    def create(transport: str) -> Any:
        task = pair.workspace(transport).tasks.create(
            workflow_sid=pair.sandbox.workflow_sid, attributes=attributes, priority=5
        )
        status, body, _ = pair.last(transport)
        return status, json.dumps(body).replace(task.sid, "SID"), task.attributes

    status, _, sent = _same(pair.both(create))
    assert status == 201
    assert json.loads(sent) == json.loads(attributes)


def test_repeated_list_parameters_filter_alike(pair: Pair) -> None:
    pending = create_task(pair.sandbox, "en")
    canceled = create_task(pair.sandbox, "en")
    pair.sandbox.workspace.tasks(canceled.sid).update(assignment_status="canceled")

    both = _same(
        pair.both(
            lambda t: sorted(
                task.sid
                for task in pair.workspace(t).tasks.list(assignment_status=["pending", "canceled"])
            )
        )
    )
    assert both == sorted([pending.sid, canceled.sid])
    only_pending = _same(
        pair.both(
            lambda t: [
                task.sid for task in pair.workspace(t).tasks.list(assignment_status=["pending"])
            ]
        )
    )
    assert only_pending == [pending.sid]


def test_paging_follows_next_page_url_alike(pair: Pair) -> None:
    created = {create_task(pair.sandbox, "en").sid for _ in range(5)}

    def walk(transport: str) -> Any:
        tasks = pair.workspace(transport).tasks
        sids = [task.sid for task in tasks.stream(page_size=2)]
        first = tasks.page(page_size=2)
        second = first.next_page()
        _, body, _ = pair.last(transport)
        return sids, [t.sid for t in second], body["meta"]

    sids, second, meta = _same(pair.both(walk))
    assert set(sids) == created and len(sids) == 5
    assert len(second) == 2 and meta["page"] == 1 and meta["page_size"] == 2
    assert meta["next_page_url"].startswith("BASE/v1/Workspaces/")


def test_if_match_on_update_and_delete_alike(pair: Pair) -> None:
    """twilio 9.13's TaskContext.delete drops its if_match argument (it builds the header,
    then replaces the headers with an empty set), so the delete goes through Client.request
    with the header, as the library sends it on update."""

    def conditional(transport: str) -> Any:
        client = pair.clients[transport]
        task = create_task(pair.sandbox, "en")
        context = pair.workspace(transport).tasks(task.sid)
        context.fetch()
        etag = pair.last(transport)[2]["ETag"]
        stale = '"0"' if etag != '"0"' else '"1"'
        with pytest.raises(TwilioRestException) as refused:
            context.update(priority=3, if_match=stale)
        context.update(priority=3, if_match=etag)
        etag = pair.last(transport)[2]["ETag"]
        uri = f"{pair.bases[transport]}/v1/Workspaces/{pair.sandbox.workspace_sid}/Tasks/{task.sid}"
        kept = client.request("DELETE", uri, headers={"If-Match": stale})
        deleted = client.request("DELETE", uri, headers={"If-Match": etag})
        with pytest.raises(TwilioRestException) as gone:
            context.fetch()
        return (
            (refused.value.status, refused.value.code),
            (kept.status_code, json.loads(kept.text)["code"]),
            deleted.status_code,
            (gone.value.status, gone.value.code),
        )

    assert _same(pair.both(conditional)) == ((412, 20412), (412, 20412), 204, (404, 20404))


def test_errors_raise_the_same_twilio_rest_exception(pair: Pair) -> None:
    def failures(transport: str) -> Any:
        client = pair.clients[transport]
        caught = []
        for call in (
            lambda: pair.workspace(transport).tasks("WT" + "0" * 32).fetch(),
            lambda: pair.workspace(transport).tasks.create(attributes="{not json"),
            lambda: client.taskrouter.v1.workspaces("WS" + "0" * 32).fetch(),
        ):
            with pytest.raises(TwilioRestException) as error:
                call()
            caught.append(
                (
                    error.value.status,
                    error.value.code,
                    error.value.msg,
                    error.value.uri.replace(pair.bases[transport], "BASE"),
                )
            )
        return caught

    caught = _same(pair.both(failures))
    assert caught[0][:2] == (404, 20404)
    assert all(400 <= status < 500 for status, *_ in caught)


def test_wrong_credentials_are_refused_alike(pair: Pair) -> None:
    def refused(transport: str) -> Any:
        client = pair.clients[transport]
        intruder = Client(pair.sandbox.account_sid, "wrong-token", http_client=client.http_client)
        intruder.taskrouter.base_url = pair.bases[transport]
        with pytest.raises(TwilioRestException) as error:
            intruder.taskrouter.v1.workspaces(pair.sandbox.workspace_sid).fetch()
        return error.value.status, error.value.code

    assert _same(pair.both(refused)) == (401, 20003)


def test_json_bodies_are_sent_as_json_alike(pair: Pair) -> None:
    """twilio sends a JSON body where an API's Content-Type says so (none of TaskRouter's
    do): the transport carries it as JSON, and the sandbox answers as it does over HTTP."""

    def post_json(transport: str) -> Any:
        http_client = pair.clients[transport].http_client
        response = http_client.request(
            "POST",
            f"{pair.bases[transport]}/v1/Workspaces/{pair.sandbox.workspace_sid}/Tasks",
            data={"WorkflowSid": pair.sandbox.workflow_sid, "Attributes": "{}"},
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            auth=(pair.sandbox.account_sid, pair.sandbox.auth_token),
        )
        text = response.text.replace(pair.bases[transport], "BASE")
        sid = json.loads(text).get("sid")
        return response.status_code, text.replace(sid, "SID") if sid else text

    status, text = _same(pair.both(post_json))
    assert status in (201, 400, 415), text
