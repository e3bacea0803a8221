"""The callback log in Redis (REDIS_URL), against a real redis-server: its setting, what it
does while Redis is slow, down or back, its change notifications, and the page over it.

What both logs promise alike is in test_callback_log_stores.py.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from twilio.request_validator import RequestValidator

from taskrouter_quickstart import console_state
from taskrouter_quickstart.app import create_app
from taskrouter_quickstart.callback_log import CallbackLogError, redis_log
from taskrouter_quickstart.callback_log.redis_log import (
    CHANNEL,
    LIST_KEY,
    RedisCallbackLog,
    redacted,
)
from taskrouter_quickstart.config import ConfigError, load_settings
from tests.redis_server import RedisServer
from tests.servers import BLANK_SETTINGS
from tests.test_callback_log import fields

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "redis-password-never-logged-0123"


def wait_for(condition, timeout: float = 10.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.01)


def listed(log: RedisCallbackLog) -> list[str | None] | None:
    """The task SIDs the log lists, or None while it cannot be read."""
    try:
        return [row["task_sid"] for row in log.recent()]
    except CallbackLogError:
        return None


@pytest.fixture
def make_log():
    logs: list[RedisCallbackLog] = []

    def make(url: str, **options) -> RedisCallbackLog:
        logs.append(RedisCallbackLog(url, **options))
        return logs[-1]

    yield make
    for log in logs:
        log.close()


# -- the setting --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            f"http://:{PASSWORD}@127.0.0.1:6379",
            "REDIS_URL must be a redis://, rediss:// or unix:// URL, such as "
            "redis://127.0.0.1:6379/0",
        ),
        (
            "127.0.0.1:6379",
            "REDIS_URL must be a redis://, rediss:// or unix:// URL, such as "
            "redis://127.0.0.1:6379/0",
        ),
        (f"redis://:{PASSWORD}@127.0.0.1:port/0", "REDIS_URL has a malformed port"),
        (
            f"redis://:{PASSWORD}@127.0.0.1:6379/cache",
            "REDIS_URL may end only in a database number, such as /0",
        ),
        ("unix://", "REDIS_URL must name the socket's path, such as unix:///run/redis.sock"),
        (f"redis://:{PASSWORD}@[::1/0", "REDIS_URL is not a URL, such as redis://127.0.0.1:6379/0"),
        # redis-py reads the query's options: each is refused at start-up, not at first use.
        (
            f"redis://:{PASSWORD}@127.0.0.1:6379/0?socket_timeout=abc",
            "REDIS_URL has a malformed option in its query",
        ),
        ("unix:///run/r.sock?db=zz", "REDIS_URL has a malformed option in its query"),
        (
            f"redis://:{PASSWORD}@127.0.0.1/0?ssl_cert_reqs=bogus",
            "REDIS_URL has a malformed option in its query",
        ),
        ("redis://127.0.0.1/0?protocol=9", "REDIS_URL has a malformed option in its query"),
    ],
)
def test_a_bad_redis_url_is_named_without_its_password(value, message):
    with pytest.raises(ConfigError) as caught:
        load_settings({"REDIS_URL": value})
    assert str(caught.value) == (
        f"{message} (unset keeps the callback log in SQLite; see Running on several hosts "
        "in README.md)"
    )
    assert PASSWORD not in str(caught.value)


@pytest.mark.parametrize(
    "value",
    [
        "redis://127.0.0.1:6379/0",
        "rediss://:secret@redis.example:6380",
        "unix:///run/r.sock",
        "redis://",
        "rediss://redis.example:6380/1?ssl_cert_reqs=none",
        "redis://127.0.0.1/0?socket_timeout=1.5&protocol=3",
    ],
)
def test_good_redis_urls_are_kept_as_written(value):
    assert load_settings({"REDIS_URL": value})["REDIS_URL"] == value


def test_the_server_stops_at_start_on_a_bad_redis_url(tmp_path, monkeypatch, capsys):
    """As `flask run` and gunicorn's workers start (no test_config): one line, exit status 3."""
    monkeypatch.chdir(tmp_path)  # no .env
    for name, value in {
        **BLANK_SETTINGS,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "REDIS_URL": f"http://:{PASSWORD}@127.0.0.1:6379",
    }.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as stopped:
        create_app()
    assert stopped.value.code == 3
    error = capsys.readouterr().err
    assert error.startswith("error: REDIS_URL must be a redis://")
    assert error.count("\n") == 1
    assert PASSWORD not in error


def test_redis_url_without_the_redis_package_is_one_line_saying_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "redis", None)  # as if it were not installed
    with pytest.raises(ConfigError) as caught:
        load_settings({"REDIS_URL": f"redis://:{PASSWORD}@127.0.0.1:6379/0"})
    message = str(caught.value)
    assert message.startswith("REDIS_URL needs the redis package (")
    assert "pip install -r requirements.txt" in message and "\n" not in message
    assert PASSWORD not in message


def test_without_redis_url_redis_is_not_even_imported(tmp_path):
    script = (
        "import sys; from taskrouter_quickstart.app import create_app; "
        f"create_app({{'ENVIRON': {{'INSTANCE_PATH': {str(tmp_path)!r}}}, "
        "'SANDBOX_START_THREADS': False, 'TESTING': True}); "
        "print('redis' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_redacted_urls_carry_no_credentials():
    assert redacted(f"redis://user:{PASSWORD}@10.0.0.5:6380/2") == "redis://10.0.0.5:6380/2"
    assert redacted(f"rediss://:{PASSWORD}@[::1]/0") == "rediss://[::1]/0"
    assert redacted(f"unix:///run/redis.sock?password={PASSWORD}") == "unix:///run/redis.sock"


# -- the store ----------------------------------------------------------------------------


def test_rows_are_json_in_one_list_newest_first(make_log, redis_server, redis_url):
    log = make_log(redis_url, keep=3)
    for number in range(5):
        log.record(fields(number))
    assert log.flush(timeout=10)
    with redis_server.client() as client:
        stored = [json.loads(value) for value in client.lrange(LIST_KEY, 0, -1)]
    assert [row["task_sid"] for row in stored] == [f"WT{n:032x}" for n in (4, 3, 2)]


def test_record_returns_at_once_while_redis_does_not_answer(make_log, own_redis_server):
    log = make_log(own_redis_server.url, max_batch=10)
    assert log.count() == 0
    own_redis_server.pause()
    try:
        started = time.monotonic()
        for number in range(50):
            assert log.record(fields(number)) is True
        # A record() that wrote on the caller's thread would wait for Redis.
        assert time.monotonic() - started < 0.5
        # The writer waits on Redis, so the flush gives up and says so.
        assert log.flush(timeout=0.05) is False
    finally:
        own_redis_server.resume()
    assert log.flush(timeout=10) is True
    assert log.count() == 50
    # One MULTI per batch of up to 10 queued rows, not one per row.
    assert 5 <= log.batches <= 6


def test_a_frozen_redis_fails_the_pages_read_soon_and_the_next_ones_at_once(
    make_log, own_redis_server
):
    log = make_log(own_redis_server.url)
    assert log.count() == 0
    own_redis_server.pause()
    try:
        # The writer now waits on Redis with this row: the page does not wait on it long.
        log.record(fields(1))
        started = time.monotonic()
        with pytest.raises(CallbackLogError, match="Timeout"):
            log.recent()
        first = time.monotonic() - started
        started = time.monotonic()
        with pytest.raises(CallbackLogError, match="Timeout"):
            log.recent()
        again = time.monotonic() - started
    finally:
        own_redis_server.resume()
    # The wait for this process's row, then one read's timeout, not retried; the writer's
    # own timeout (SOCKET_TIMEOUT_SECONDS) is longer than both.
    assert first < redis_log.READ_FLUSH_SECONDS + redis_log.READ_TIMEOUT_SECONDS + 0.5
    assert first < redis_log.SOCKET_TIMEOUT_SECONDS
    assert again < 0.1


def test_a_batch_whose_answer_came_late_is_not_written_twice(make_log, own_redis_server, caplog):
    log = make_log(own_redis_server.url)
    assert log.count() == 0
    own_redis_server.pause()
    try:
        log.record(fields(1))
        # Long enough for the writer's MULTI to time out; Redis runs it once it resumes.
        time.sleep(redis_log.SOCKET_TIMEOUT_SECONDS + 0.5)
    finally:
        own_redis_server.resume()
    assert log.flush(timeout=10)
    # The writer gave the batch up and said so; a retry of the MULTI would have sent it again
    # on a new connection, and Redis could then run both.
    assert "Could not record 1 callback(s)" in caplog.text
    time.sleep(0.5)
    assert own_redis_server.client().llen(redis_log.LIST_KEY) <= 1


def test_redis_down_at_start_up_is_a_warning_and_the_log_recovers(make_log, tmp_path, caplog):
    server = RedisServer(tmp_path / "redis", password=PASSWORD)
    caplog.set_level(logging.INFO)
    log = make_log(server.url)
    assert "does not answer" in caplog.text
    assert f"Redis at redis://127.0.0.1:{server.port}/0" in caplog.text

    # Callbacks are still taken; the writer says what it could not record.
    assert log.record(fields(1)) is True
    assert log.flush(timeout=10)
    assert "Could not record 1 callback(s) in Redis at redis://127.0.0.1:" in caplog.text
    with pytest.raises(CallbackLogError, match=r"Redis at redis://127\.0\.0\.1:"):
        log.recent()
    with pytest.raises(CallbackLogError):
        log.count()

    server.start()
    try:
        log.record(fields(2))
        # A failed read answers the next ones at once for READ_FAILURE_SECONDS.
        wait_for(lambda: listed(log) == [f"WT{2:032x}"], what="the log answering again")
    finally:
        server.stop()
    assert PASSWORD not in caplog.text


def test_a_redis_restart_loses_nothing_recorded_after_it(make_log, own_redis_server, caplog):
    log = make_log(own_redis_server.url)
    log.record(fields(1))
    assert log.count() == 1
    own_redis_server.stop()
    log.record(fields(2))
    assert log.flush(timeout=10)
    own_redis_server.start()
    # Nothing was saved across the restart (--save ''); the pooled connection is made again.
    log.record(fields(3))
    assert [row["task_sid"] for row in log.recent()] == [f"WT{3:032x}"]


def test_other_programs_values_under_the_key_are_skipped(make_log, redis_server, redis_url):
    log = make_log(redis_url)
    log.record(fields(1))
    assert log.flush(timeout=10)
    with redis_server.client() as client:
        client.lpush(LIST_KEY, b"not json", b"[1, 2]", json.dumps({"task_sid": 7}))
    rows = log.recent()
    assert [row["task_sid"] for row in rows] == ["7", f"WT{1:032x}"]


# -- change notifications ------------------------------------------------------------------


def test_a_batch_written_anywhere_notifies_every_listening_log(make_log, redis_url):
    writer, reader = make_log(redis_url), make_log(redis_url)
    heard = threading.Event()
    reader.on_change(heard.set)
    reader.start_listening()
    wait_for(reader._listener.subscribed.is_set, what="the subscription")
    heard.clear()

    writer.record(fields(1))
    assert heard.wait(10)
    # The same listener again, not a second one.
    listener = reader._listener
    reader.start_listening()
    assert reader._listener is listener


def test_the_listener_subscribes_again_when_redis_comes_back(make_log, own_redis_server, caplog):
    caplog.set_level(logging.INFO)
    writer, reader = make_log(own_redis_server.url), make_log(own_redis_server.url)
    heard = threading.Event()
    reader.on_change(heard.set)
    reader.start_listening()
    wait_for(reader._listener.subscribed.is_set, what="the subscription")

    own_redis_server.stop()
    wait_for(lambda: not reader._listener.subscribed.is_set(), what="noticing Redis gone")
    assert "Change notifications from Redis at" in caplog.text
    own_redis_server.start()
    wait_for(reader._listener.subscribed.is_set, what="subscribing again")
    assert "Change notifications from Redis at" in caplog.text and "are back" in caplog.text
    heard.clear()
    writer.record(fields(1))
    assert heard.wait(10)


def test_a_forked_child_listens_on_its_own_thread(redis_url):
    script = f"""
import os, sys, threading
sys.path.insert(0, {str(ROOT)!r})
from taskrouter_quickstart.callback_log.redis_log import RedisCallbackLog
log = RedisCallbackLog({redis_url!r})
log.start_listening()
parent = log._listener
pid = os.fork()
if pid == 0:
    heard = threading.Event()
    log.on_change(heard.set)
    log.start_listening()
    assert log._listener is not parent and log._listener.thread.is_alive()
    assert log._listener.subscribed.wait(10)
    heard.clear()
    RedisCallbackLog({redis_url!r}).record({{"task_sid": "WT-child", "answer": "{{}}"}})
    os._exit(0 if heard.wait(10) else 1)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0"


# -- the server over it ---------------------------------------------------------------------


def signed_callback(url: str, auth_token: str, workspace_sid: str, task_number: int):
    params = {
        "AccountSid": "AC" + "0" * 32,
        "WorkspaceSid": workspace_sid,
        "WorkflowSid": "WW" + "2" * 32,
        "TaskQueueSid": "WQ" + "6" * 32,
        "WorkerSid": "WK" + "5" * 32,
        "WorkerAttributes": json.dumps({"languages": ["en", "es"]}),
        "TaskSid": f"WT{task_number:032x}",
        "TaskAttributes": json.dumps({"selected_language": "es"}),
        "ReservationSid": f"WR{task_number:032x}",
    }
    signature = RequestValidator(auth_token).compute_signature(url, params)
    return requests.post(url, data=params, headers={"X-Twilio-Signature": signature}, timeout=10)


def test_the_page_says_redis_is_down_and_callbacks_are_still_answered(live_app, tmp_path, caplog):
    server = RedisServer(tmp_path / "redis", password=PASSWORD).start()
    try:
        live = live_app(REDIS_URL=server.url, ASSIGNMENT_MODE="accept")
        callback_url = f"{live.url}/assignment_callback"
        auth_token, workspace_sid = live.sandbox.auth_token, live.sandbox.seeded.workspace_sid

        answer = signed_callback(callback_url, auth_token, workspace_sid, 1)
        assert (answer.status_code, answer.json()) == (200, {"instruction": "accept"})
        state = requests.get(f"{live.url}/console/state", timeout=10).json()
        assert [c["task_sid"] for c in state["callbacks"]] == [f"WT{1:032x}"]

        server.stop()
        answer = signed_callback(callback_url, auth_token, workspace_sid, 2)
        assert (answer.status_code, answer.json()) == (200, {"instruction": "accept"})
        live.app.extensions["console_state"].invalidate()
        state = requests.get(f"{live.url}/console/state", timeout=10)
        assert state.status_code == 200
        assert state.json()["callbacks"] == []
        assert state.json()["callbacks_error"].startswith(
            f"The callback log could not be read: Redis at redis://127.0.0.1:{server.port}/0"
        )
        page = requests.get(live.url, timeout=10)
        assert page.status_code == 200
        assert f"Redis at redis://127.0.0.1:{server.port}/0" in page.text

        server.start()
        answer = signed_callback(callback_url, auth_token, workspace_sid, 3)
        assert answer.status_code == 200

        def state_once_redis_answers():
            live.app.extensions["console_state"].invalidate()
            state = requests.get(f"{live.url}/console/state", timeout=10).json()
            return state if state["callbacks_error"] is None else None

        wait_for(state_once_redis_answers, what="the page reading Redis again")
        state = state_once_redis_answers()
        # The one received while Redis was down is lost (the log said so); the rest is listed.
        assert [c["task_sid"] for c in state["callbacks"]] == [f"WT{3:032x}"]
        assert f"WT{3:032x}" in requests.get(live.url, timeout=10).text
    finally:
        server.stop()
    assert "Could not record 1 callback(s) in Redis at" in caplog.text
    assert PASSWORD not in caplog.text


def test_another_apps_callback_drops_this_apps_cached_state(make_app, redis_url, sids):
    environ = {
        "TWILIO_ACCOUNT_SID": sids.account,
        "TWILIO_AUTH_TOKEN": "f" * 32,
        "TWILIO_WORKSPACE_SID": sids.workspace,
        "TWILIO_WORKFLOW_SID": sids.workflow,
        "REDIS_URL": redis_url,
    }
    receiving, showing = make_app(environ), make_app(environ)
    # A cache that would otherwise keep its state for an hour.
    cache = console_state.StateCache(ttl=3600)
    showing.extensions["console_state"] = cache
    showing.extensions["callback_log"].on_change(cache.invalidate)
    builds = []
    cache.get(lambda: builds.append(1) or {"built": len(builds)})
    # Any request served starts the process's listener.
    showing.test_client().get("/healthz")
    log = showing.extensions["callback_log"]
    wait_for(lambda: log._listener is not None and log._listener.subscribed.is_set())
    assert cache.get(lambda: {"built": "again"}) == {"built": "again"}

    receiving.extensions["callback_log"].record(fields(1))
    wait_for(
        lambda: (
            cache.get(lambda: {"built": "after the callback"}) == {"built": "after the callback"}
        ),
        what="the other app's notification",
    )
    assert [row["task_sid"] for row in log.recent()] == [f"WT{1:032x}"]
    assert CHANNEL.startswith("taskrouter-quickstart:")
