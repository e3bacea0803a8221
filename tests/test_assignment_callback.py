"""The assignment callback's answer in each mode, its one log line, its record for the page, and
its behaviour with malformed bodies (still 200 once the signature is valid).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

import pytest

from taskrouter_quickstart import callback_log

CALLBACK = "/assignment_callback"
LOCAL_URL = "http://localhost/assignment_callback"


def post_signed(client, sign, params, **kwargs):
    signature = sign(LOCAL_URL, params)
    return client.post(CALLBACK, data=params, headers={"X-Twilio-Signature": signature}, **kwargs)


@pytest.mark.parametrize(
    ("mode", "body"),
    [("manual", b"{}"), ("accept", b'{"instruction": "accept"}')],
)
def test_answer_by_mode(make_app, sign, callback_params, upstream, mode, body):
    client = make_app(ASSIGNMENT_MODE=mode).test_client()
    started = time.monotonic()
    response = post_signed(client, sign, callback_params)
    elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.data == body
    # TaskRouter waits 5 s at most; no REST call is made from here.
    assert elapsed < 3.0
    assert len(upstream.calls) == 0


def test_one_log_line_per_callback(client, sign, callback_params, sids, auth_token, caplog):
    caplog.set_level(logging.INFO, logger="taskrouter_quickstart.app")
    signature = sign(LOCAL_URL, callback_params)
    client.post(CALLBACK, data=callback_params, headers={"X-Twilio-Signature": signature})

    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Assignment")]
    assert lines == [
        f"Assignment callback ReservationSid={sids.reservation} TaskSid={sids.task} "
        f"WorkerSid={sids.worker} TaskQueueSid={sids.task_queue} answer={{}}"
    ]
    assert signature not in caplog.text
    assert auth_token not in caplog.text


def test_the_log_line_is_an_ordinary_record_of_the_callback_view(
    app, client, sign, callback_params, caplog
):
    # Made without logger.info(): it must still say where it comes from (Flask's format
    # prints its module), and the logger's level and filters must still decide.
    caplog.set_level(logging.INFO, logger=app.logger.name)
    signature = sign(LOCAL_URL, callback_params)

    def lines():
        client.post(CALLBACK, data=callback_params, headers={"X-Twilio-Signature": signature})
        found = [r for r in caplog.records if r.getMessage().startswith("Assignment callback Res")]
        caplog.clear()
        return found

    [line] = lines()
    assert (line.name, line.levelname, line.module, line.funcName) == (
        app.logger.name,
        "INFO",
        "assignment",
        "answer_callback",
    )
    source = Path(line.pathname).read_text().splitlines()[line.lineno - 1]
    assert "here.f_lineno" in source  # the line the record is made on
    assert line.threadName and line.process

    def not_the_callback(record):
        return not record.getMessage().startswith("Assignment")

    app.logger.addFilter(not_the_callback)
    try:
        assert lines() == []
    finally:
        app.logger.removeFilter(not_the_callback)
    app.logger.setLevel(logging.WARNING)
    assert lines() == []


def test_a_logger_class_of_its_own_makes_the_callbacks_line(app, client, sign, callback_params):
    made = []

    class OwnLogger(logging.Logger):
        def info(self, msg, *args, **kwargs):
            made.append(msg % args)

    signature = sign(LOCAL_URL, callback_params)
    plain = app.logger.__class__
    app.logger.__class__ = OwnLogger
    try:
        client.post(CALLBACK, data=callback_params, headers={"X-Twilio-Signature": signature})
    finally:
        app.logger.__class__ = plain
    assert [text for text in made if text.startswith("Assignment callback Res")]


def test_callback_is_recorded_without_the_signature(app, client, sign, callback_params, sids):
    signature = sign(LOCAL_URL, callback_params)
    client.post(CALLBACK, data=callback_params, headers={"X-Twilio-Signature": signature})

    [row] = app.extensions["callback_log"].recent()
    assert row["reservation_sid"] == sids.reservation
    assert row["task_sid"] == sids.task
    assert row["worker_sid"] == sids.worker
    assert row["task_queue_sid"] == sids.task_queue
    assert row["workflow_sid"] == sids.workflow
    assert row["workspace_sid"] == sids.workspace
    assert row["task_attributes"] == callback_params["TaskAttributes"]
    assert row["worker_attributes"] == callback_params["WorkerAttributes"]
    assert row["answer"] == "{}"
    assert row["received_at"].endswith("Z")

    with sqlite3.connect(app.extensions["callback_log"].path) as connection:
        stored = connection.execute("SELECT * FROM assignment_callbacks").fetchall()
    assert all(signature not in str(value) for value in stored[0])


def test_accept_mode_records_its_answer(make_app, sign, callback_params):
    app = make_app(ASSIGNMENT_MODE="accept")
    post_signed(app.test_client(), sign, callback_params)
    [row] = app.extensions["callback_log"].recent()
    assert row["answer"] == '{"instruction": "accept"}'


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"TaskSid": "not-a-sid", "ReservationSid": "WR\n123"},
        {"TaskAttributes": "{not json", "WorkerAttributes": "[1, 2]"},
        {"TaskAttributes": "[" * 5000 + "]" * 5000},
        {"TaskAttributes": "x" * (callback_log.MAX_ATTRIBUTES_LENGTH + 10)},
    ],
    ids=["empty", "bad-sids", "bad-attributes", "deep-nesting", "too-long"],
)
def test_malformed_body_still_gets_the_answer(app, client, sign, params, caplog):
    response = post_signed(client, sign, params)

    assert response.status_code == 200
    assert response.data == b"{}"
    assert "Assignment callback is malformed" in caplog.text
    [row] = app.extensions["callback_log"].recent()
    assert row["answer"] == "{}"
    assert len(row["task_attributes"] or "") <= callback_log.MAX_ATTRIBUTES_LENGTH


SID_NAMES = (
    "ReservationSid",
    "TaskSid",
    "WorkerSid",
    "TaskQueueSid",
    "WorkflowSid",
    "WorkspaceSid",
)


@pytest.mark.parametrize("name", SID_NAMES)
@pytest.mark.parametrize(
    "bad",
    [
        None,
        "",
        "short",
        # The right prefix and length but a NUL in it, or another SID after a NUL: the checks
        # join the six SIDs by NUL, and no SID may pass by lining up with that.
        "@" + "0" * 31 + "\0",
        "@" + "0" * 32 + "\0WT" + "0" * 32,
        "@" + "0" * 31 + "g",
        "@" + "0" * 33,
        "XX" + "0" * 32,
    ],
)
def test_each_sid_is_checked_by_itself(callback_params, name, bad):
    from taskrouter_quickstart.routes.assignment import SID_PARAMETERS, _problems

    assert _problems(callback_params) == []
    prefix = SID_PARAMETERS[name][1]
    values = dict(callback_params)
    if bad is None:
        del values[name]
    else:
        values[name] = bad.replace("@", prefix)
    expected = f"{name} missing" if bad is None else f"{name} is not {prefix} + 32 hex"
    assert _problems(values) == [expected]


def test_log_line_stays_one_line_for_hostile_values(client, sign, caplog):
    caplog.set_level(logging.INFO, logger="taskrouter_quickstart.app")
    post_signed(client, sign, {"ReservationSid": "WR1\nFAKE LOG LINE"})
    lines = [
        record.getMessage()
        for record in caplog.records
        if record.getMessage().startswith("Assignment callback ReservationSid")
    ]
    assert len(lines) == 1
    assert "\n" not in lines[0]
    assert "ReservationSid='WR1\\nFAKE LOG LINE'" in lines[0]


def test_non_form_body_still_gets_the_answer(client, sign):
    response = client.post(
        CALLBACK,
        data=b"\xff\xfe\x00garbage",
        content_type="application/octet-stream",
        headers={"X-Twilio-Signature": sign(LOCAL_URL)},
    )
    assert response.status_code == 200
    assert response.data == b"{}"


def test_undecodable_form_still_gets_the_answer(client, sign):
    # Werkzeug keeps undecodable escapes as they came (upper-cased); sign what it parses.
    params = {"TaskSid": "%FF%FE"}
    response = client.post(
        CALLBACK,
        data=b"TaskSid=%ff%fe",
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": sign(LOCAL_URL, params)},
    )
    assert response.status_code == 200


def test_a_failing_record_does_not_fail_the_callback(
    app, client, sign, callback_params, monkeypatch, caplog
):
    def locked(fields):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(app.extensions["callback_log"], "record", locked)
    response = post_signed(client, sign, callback_params)

    assert response.status_code == 200
    assert response.data == b"{}"
    assert "Could not record the callback" in caplog.text
    assert "database is locked" in caplog.text
