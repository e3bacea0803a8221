"""The assignment callback's fast path: a signed form POST is answered before Flask's request
machinery, exactly as the Flask view answers, logs and records it; anything else goes on to the
view.
"""

from __future__ import annotations

import io
import json
import logging
from urllib.parse import parse_qsl, urlencode

import pytest
from flask import request
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from taskrouter_quickstart.routes.assignment import CallbackFastPath, _is_json_object, parse_form

CALLBACK = "/assignment_callback"
LOCAL_URL = "http://localhost/assignment_callback"
PUBLIC = "https://abc123.ngrok.app"


def views_entered(app) -> list[str]:
    """The paths of the requests that reached Flask's dispatch, from now on."""
    entered: list[str] = []
    app.before_request(lambda: entered.append(request.path))
    return entered


def post(client, params, signature, **kwargs):
    return client.post(CALLBACK, data=params, headers={"X-Twilio-Signature": signature}, **kwargs)


@pytest.mark.parametrize(
    ("settings", "signed_url", "headers"),
    [
        ({}, LOCAL_URL, {}),
        (
            {},
            f"{PUBLIC}/assignment_callback",
            {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "abc123.ngrok.app"},
        ),
        ({"PUBLIC_BASE_URL": PUBLIC}, f"{PUBLIC}/assignment_callback", {}),
    ],
    ids=["local", "forwarded", "public-base-url"],
)
def test_a_signed_form_callback_takes_the_fast_path(
    make_app, sign, callback_params, settings, signed_url, headers
):
    app = make_app(**settings)
    entered = views_entered(app)
    response = app.test_client().post(
        CALLBACK,
        data=callback_params,
        headers={"X-Twilio-Signature": sign(signed_url, callback_params), **headers},
    )
    assert response.status_code == 200
    assert response.data == b"{}"
    assert response.headers["Content-Type"] == "application/json"
    assert entered == []


def _answer_through(app, sign, callback_params, caplog):
    caplog.clear()
    response = post(app.test_client(), callback_params, sign(LOCAL_URL, callback_params))
    log = app.extensions["callback_log"]
    [row] = log.recent()
    row.pop("received_at")
    messages = [record.getMessage() for record in caplog.records if record.name == "app"]
    return response.status_code, dict(response.headers), response.data, messages, row


@pytest.mark.parametrize("mode", ["manual", "accept"])
@pytest.mark.parametrize(
    "change",
    [{}, {"TaskAttributes": "not json", "WorkerSid": "WK-bad\nline"}, {"TaskSid": ["WT1", "WT2"]}],
    ids=["good", "bad", "repeated"],
)
def test_the_fast_path_answers_logs_and_records_as_the_view_does(
    make_app, sign, callback_params, caplog, monkeypatch, tmp_path, mode, change
):
    caplog.set_level(logging.INFO, logger="taskrouter_quickstart.app")
    params = MultiDict(callback_params)
    for name, value in change.items():
        params.setlist(name, value if isinstance(value, list) else [value])
    fast_app = make_app(ASSIGNMENT_MODE=mode)
    fast_entered = views_entered(fast_app)
    fast = _answer_through(fast_app, sign, params, caplog)

    monkeypatch.setattr(CallbackFastPath, "_signed_values", lambda self, environ: None)
    view_app = make_app(ASSIGNMENT_MODE=mode, CALLBACK_LOG_PATH=str(tmp_path / "view.sqlite3"))
    view_entered = views_entered(view_app)
    through_view = _answer_through(view_app, sign, params, caplog)

    assert (fast_entered, view_entered) == ([], [CALLBACK])
    assert fast == through_view
    assert fast[0] == 200


# Requests the fast path leaves to the view: name -> (send(client, sign, params), the answer).
LEFT_TO_THE_VIEW = {
    "get": (
        lambda c, sign, params: c.get(
            f"{CALLBACK}?{urlencode(params)}",
            headers={"X-Twilio-Signature": sign(f"{LOCAL_URL}?{urlencode(params)}", {})},
        ),
        200,
    ),
    "query string": (
        lambda c, sign, params: c.post(
            f"{CALLBACK}?source=test",
            data=params,
            headers={"X-Twilio-Signature": sign(f"{LOCAL_URL}?source=test", params)},
        ),
        200,
    ),
    "wrong signature": (
        lambda c, sign, params: post(c, params, sign(LOCAL_URL, params)[::-1]),
        403,
    ),
    "no signature": (lambda c, sign, params: c.post(CALLBACK, data=params), 403),
    "json body": (
        lambda c, sign, params: c.post(
            CALLBACK,
            data=urlencode(params),
            content_type="application/json",
            headers={"X-Twilio-Signature": sign(LOCAL_URL, params)},
        ),
        403,
    ),
    "not utf-8": (
        lambda c, sign, params: c.post(
            CALLBACK,
            data=b"TaskSid=\xff",
            content_type="application/x-www-form-urlencoded",
            headers={"X-Twilio-Signature": sign(LOCAL_URL, params)},
        ),
        403,
    ),
}


@pytest.mark.parametrize("case", sorted(LEFT_TO_THE_VIEW))
def test_other_requests_go_on_to_the_view(make_app, sign, callback_params, case):
    app = make_app()
    entered = views_entered(app)
    send, status = LEFT_TO_THE_VIEW[case]
    response = send(app.test_client(), sign, callback_params)
    assert response.status_code == status
    assert response.is_json
    assert entered == [CALLBACK]


def test_with_signature_checks_off_the_view_answers_and_warns(make_app, callback_params, caplog):
    app = make_app(VALIDATE_SIGNATURES="false")
    entered = views_entered(app)
    response = app.test_client().post(CALLBACK, data=callback_params)
    assert response.status_code == 200
    assert entered == [CALLBACK]
    assert "VALIDATE_SIGNATURES is false" in caplog.text


def test_a_declined_request_reaches_the_view_with_its_whole_body(app):
    seen = []

    def view(environ, start_response):
        seen.append(environ["wsgi.input"].read())
        start_response("204 No Content", [])
        return []

    body = b"TaskSid=WT123&ReservationSid=WR456"
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": CALLBACK,
        "QUERY_STRING": "",
        "SCRIPT_NAME": "",
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_X_TWILIO_SIGNATURE": "not-the-signature",
        "HTTP_HOST": "localhost",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
    }
    CallbackFastPath(app, view)(environ, lambda status, headers: None)
    assert seen == [body]


def test_a_failed_record_still_gets_the_answer_once(
    make_app, sign, callback_params, monkeypatch, caplog
):
    caplog.set_level(logging.INFO, logger="taskrouter_quickstart.app")
    app = make_app()
    entered = views_entered(app)
    calls = []

    def fail(row):
        calls.append(row)
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(app.extensions["callback_log"], "record", fail)
    response = post(app.test_client(), callback_params, sign(LOCAL_URL, callback_params))
    assert (response.status_code, response.data) == (200, b"{}")
    assert entered == []
    assert len(calls) == 1
    assert [r.getMessage() for r in caplog.records].count(
        f"Assignment callback ReservationSid={callback_params['ReservationSid']} "
        f"TaskSid={callback_params['TaskSid']} WorkerSid={callback_params['WorkerSid']} "
        f"TaskQueueSid={callback_params['TaskQueueSid']} answer={{}}"
    ) == 1
    assert "Could not record the callback" in caplog.text


def test_a_failure_while_checking_is_left_to_the_view(
    make_app, sign, callback_params, monkeypatch, caplog
):
    caplog.set_level(logging.INFO, logger="taskrouter_quickstart.app")
    app = make_app()
    entered = views_entered(app)

    def broken(*args):
        raise RuntimeError("validator broke")

    monkeypatch.setattr("taskrouter_quickstart.routes.assignment.signature_matches", broken)
    response = post(app.test_client(), callback_params, sign(LOCAL_URL, callback_params))
    assert (response.status_code, response.data) == (200, b"{}")
    assert entered == [CALLBACK]
    assert "fast path failed" in caplog.text
    lines = [r for r in caplog.records if r.getMessage().startswith("Assignment callback Res")]
    assert len(lines) == 1


@pytest.mark.parametrize("length", ["\u00b2", "9" * 5000, "-1", ""])
def test_an_odd_content_length_is_left_to_the_view_quietly(
    make_app, sign, callback_params, caplog, length
):
    app = make_app()
    entered = views_entered(app)
    response = app.test_client().post(
        CALLBACK,
        data=callback_params,
        headers={"X-Twilio-Signature": sign(LOCAL_URL, callback_params)},
        environ_overrides={"CONTENT_LENGTH": length},
    )
    # Werkzeug reads no body for such a length, so the signature cannot match.
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "invalid_signature"
    assert entered == [CALLBACK]
    assert "fast path failed" not in caplog.text


def test_the_host_is_signed_as_sent_on_both_paths(
    make_app, sign, callback_params, monkeypatch, tmp_path
):
    # Twilio signs the URL as typed in the Workflow: neither path lowercases or decodes it.
    url = "http://LOCALHOST/assignment_callback"
    headers = {"Host": "LOCALHOST", "X-Twilio-Signature": sign(url, callback_params)}
    fast_app = make_app()
    fast_entered = views_entered(fast_app)
    assert fast_app.test_client().post(CALLBACK, data=callback_params, headers=headers).data == (
        b"{}"
    )

    monkeypatch.setattr(CallbackFastPath, "_signed_values", lambda self, environ: None)
    view_app = make_app(CALLBACK_LOG_PATH=str(tmp_path / "view.sqlite3"))
    view_entered = views_entered(view_app)
    response = view_app.test_client().post(CALLBACK, data=callback_params, headers=headers)
    assert (response.status_code, response.data) == (200, b"{}")
    assert (fast_entered, view_entered) == ([], [CALLBACK])


# Any text a client could send as a body: escapes good and bad, UTF-8 and not, separators,
# plus signs, blank fields, and backslashes (the fast unescape makes its own).
_FORM_TEXT = st.lists(
    st.sampled_from(
        [
            *"ab=&+%;09AFafx zé€\x80\\",
            *("%20", "%2B", "%C3%A9", "%C3", "%ff", "%e2%82", "%80", "%5C", "%5c%78", "%00"),
        ]
    ),
    max_size=30,
).map("".join)


@settings(max_examples=2000, deadline=None)
@given(text=_FORM_TEXT | st.text(max_size=40))
def test_the_fast_path_parses_a_form_exactly_as_werkzeug_does(text):
    expected = parse_qsl(text, keep_blank_values=True, errors="werkzeug.url_quote")
    assert parse_form(text) == expected


def _json_object_verdict(text):
    try:
        return isinstance(json.loads(text), dict)
    except (ValueError, RecursionError):
        return False


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
_PADDING = st.sampled_from(["", " ", "\n", "\t ", "x", "}", " ]", "\ufeff"])


@settings(max_examples=1000, deadline=None)
@given(
    text=st.tuples(_PADDING, _JSON_VALUES.map(json.dumps), _PADDING).map("".join)
    | st.text(alphabet='{}[]":, 0123456789.eE-+tnrufalsx\\', max_size=20)
    | st.just("[" * 100_000)
)
def test_the_attribute_check_says_what_json_loads_would(text):
    assert _is_json_object(text) == _json_object_verdict(text)
