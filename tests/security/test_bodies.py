"""A body the server cannot read is refused, never dropped: every action (/create_task, the
reservation actions and the console's /update_worker and /update_task) answers a 400 naming the
problem and calls nobody, where it used to act on its query string or its defaults.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import SIDS

TASK = {"TaskSid": SIDS.task}
RESERVATION = {"TaskSid": SIDS.task, "ReservationSid": SIDS.reservation}
# Each action with a query string it would act on if the body were dropped.
ACTIONS = {
    "/create_task": {},
    "/accept_reservation": RESERVATION,
    "/reject_reservation": RESERVATION,
    "/update_worker": {"WorkerSid": SIDS.worker, "ActivitySid": SIDS.activity},
    "/update_task": {**TASK, "AssignmentStatus": "canceled"},
}
# A parameter each action takes, for the body to carry.
BODY_PARAMETER = {
    "/create_task": ("selected_language", "en"),
    "/accept_reservation": ("WorkerActivitySid", SIDS.activity),
    "/reject_reservation": ("WorkerActivitySid", SIDS.activity),
    "/update_worker": ("ActivitySid", SIDS.activity),
    "/update_task": ("Reason", "Caf\u00e9 closed"),
}
BOUNDARY = "b0undary"

# (body, Content-Type, what the message must name)
UNREADABLE = {
    "text/plain": (b"Reason=x", "text/plain", "text/plain"),
    "text/plain in UTF-16": (
        "Reason=x".encode("utf-16"),
        "text/plain; charset=utf-16",
        "text/plain",
    ),
    "multipart without its boundary": (
        b'--b0undary\r\nContent-Disposition: form-data; name="Reason"\r\n\r\nx\r\n--b0undary--',
        "multipart/form-data",
        "multipart",
    ),
    "multipart that is not multipart": (
        b"Reason=x",
        f"multipart/form-data; boundary={BOUNDARY}",
        "multipart",
    ),
    "multipart cut short": (
        b'--b0undary\r\nContent-Disposition: form-data; name="Reason"\r\n\r\nx',
        f"multipart/form-data; boundary={BOUNDARY}",
        "multipart",
    ),
    "multipart part not UTF-8": (
        b'--b0undary\r\nContent-Disposition: form-data; name="Reason"\r\n\r\ncaf\xe9\r\n'
        b"--b0undary--\r\n",
        f"multipart/form-data; boundary={BOUNDARY}",
        "UTF-8",
    ),
    "form not UTF-8": (b"Reason=caf\xe9", "application/x-www-form-urlencoded", "UTF-8"),
    "form escaping bytes that are not UTF-8": (
        b"Reason=caf%E9",
        "application/x-www-form-urlencoded",
        "UTF-8",
    ),
    "form in UTF-16": (
        "Reason=x".encode("utf-16"),
        "application/x-www-form-urlencoded",
        "UTF-8",
    ),
    "form in UTF-16 without its byte order mark": (
        "Reason=x".encode("utf-16-le"),
        "application/x-www-form-urlencoded",
        "UTF-8",
    ),
    "JSON not UTF-8": (b'{"Reason": "caf\xe9"}', "application/json", "UTF-8"),
    "JSON claiming UTF-8 in Latin-1": (
        '{"Reason": "café"}'.encode("latin-1"),
        "application/json; charset=utf-8",
        "UTF-8",
    ),
    "JSON in broken UTF-16": (b"\xff\xfe{\x00\x00\xd8", "application/json", "UTF-16"),
}


def _post(client, path, body, content_type):
    return client.post(path, query_string=ACTIONS[path], data=body, content_type=content_type)


@pytest.mark.parametrize("path", ACTIONS)
@pytest.mark.parametrize("case", UNREADABLE)
def test_a_body_that_cannot_be_read_is_refused_and_nothing_is_called(client, upstream, path, case):
    body, content_type, named = UNREADABLE[case]

    response = _post(client, path, body, content_type)

    assert len(upstream.calls) == 0
    assert response.status_code in (400, 415), response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["status"] == response.status_code
    assert named.lower() in error["message"].lower(), error["message"]


@pytest.mark.parametrize("path", ["/update_worker", "/update_task"])
def test_the_console_actions_refuse_a_json_body_they_cannot_use(client, upstream, path):
    response = _post(client, path, json.dumps({"Color": "blue"}), "application/json")

    assert len(upstream.calls) == 0
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "unknown_parameter"
    assert "Color" in response.get_json()["error"]["message"]


@pytest.mark.parametrize("path", ["/update_worker", "/update_task"])
def test_the_console_actions_refuse_a_form_field_they_do_not_take(client, upstream, path):
    response = _post(client, path, {"Colour": "blue"}, "application/x-www-form-urlencoded")

    assert len(upstream.calls) == 0
    assert response.status_code == 400
    assert "Colour" in response.get_json()["error"]["message"]


def test_update_task_reads_its_reason_from_a_json_body(
    client, upstream, sent_form, task_json, tasks_url
):
    upstream.post(
        f"{tasks_url}/{SIDS.task}",
        json=task_json(assignment_status="canceled", reason="Caf\u00e9 closed"),
    )

    response = _post(
        client, "/update_task", json.dumps({"Reason": "Caf\u00e9 closed"}), "application/json"
    )

    assert response.status_code == 200, response.get_json()
    assert sent_form(upstream.calls[0])["Reason"] == ["Caf\u00e9 closed"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-8-sig"])
def test_a_json_body_in_another_unicode_encoding_is_read_as_such(
    client, upstream, sent_form, task_json, tasks_url, encoding
):
    # RFC 8259 asks senders for UTF-8; a UTF-16 or UTF-32 JSON text (with or without its byte
    # order mark) is still told apart by its first bytes (RFC 4627, section 3) and read right.
    upstream.post(tasks_url, json=task_json(), status=201)
    body = json.dumps({"selected_language": "en"}).encode(encoding)

    response = _post(client, "/create_task", body, "application/json")

    assert response.status_code == 201, response.get_json()
    attributes = json.loads(sent_form(upstream.calls[0])["Attributes"][0])
    assert attributes == {"selected_language": "en"}


@pytest.mark.parametrize("path", ACTIONS)
def test_a_readable_multipart_body_is_still_read(client, upstream, path):
    # The strict reading refuses only what is broken: a good multipart form reaches the checks
    # (here, of a value too long for each action's parameter).
    name, _ = BODY_PARAMETER[path]
    body = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        f"{'x' * 300}\r\n--{BOUNDARY}--\r\n"
    ).encode()

    response = _post(client, path, body, f"multipart/form-data; boundary={BOUNDARY}")

    assert len(upstream.calls) == 0
    assert response.status_code == 400
    assert name in response.get_json()["error"]["message"]


ATTRIBUTES_NOT_UTF8 = b'{"selected_language": "es", "name": "caf\xe9"}'


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"Attributes=" + ATTRIBUTES_NOT_UTF8, "application/x-www-form-urlencoded"),
        (
            b"Attributes=" + ATTRIBUTES_NOT_UTF8.replace(b"\xe9", b"%E9"),
            "application/x-www-form-urlencoded",
        ),
        (
            b'--b0undary\r\nContent-Disposition: form-data; name="Attributes"\r\n\r\n'
            + ATTRIBUTES_NOT_UTF8
            + b"\r\n--b0undary--\r\n",
            f"multipart/form-data; boundary={BOUNDARY}",
        ),
    ],
    ids=["form", "form %-escaped", "multipart"],
)
def test_attributes_that_are_not_utf8_are_refused_not_mangled(client, upstream, body, content_type):
    # Werkzeug read the bytes as U+FFFD: the task was created with "name": "caf\ufffd".
    response = _post(client, "/create_task", body, content_type)

    assert len(upstream.calls) == 0
    assert response.status_code == 400
    assert "UTF-8" in response.get_json()["error"]["message"]
