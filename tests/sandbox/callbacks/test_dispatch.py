"""Tests for sandbox.callbacks: signed callback delivery against a live local HTTP server.

Covers the answer table (Twilio's alert codes), fallback, timeouts, refused connections,
the pool not blocking its caller, event callbacks and what is (not) logged.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import certifi
import pytest
import urllib3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator
from urllib3.util.ssl_ import resolve_cert_reqs
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from taskrouter_sandbox.callbacks import (
    MAX_ANSWER_BYTES,
    Dispatcher,
    form_params,
    interpret_assignment_answer,
    new_pool,
    redact_url,
)
from taskrouter_sandbox.domain.values import Alert, AssignmentOutcome

AUTH_TOKEN = "sandbox-test-auth-token-0123456789"
ACTIVITY_SID = "WA" + "0" * 31 + "1"
RESERVATION_SID = "WR" + "ab" * 16
JSON = "application/json"

ASSIGNMENT_PARAMS = {
    "AccountSid": "AC" + "1" * 32,
    "WorkspaceSid": "WS" + "2" * 32,
    "WorkflowSid": "WW" + "3" * 32,
    "TaskQueueSid": "WQ" + "4" * 32,
    "WorkerSid": "WK" + "5" * 32,
    "WorkerAttributes": json.dumps({"languages": ["en", "es"]}),
    "TaskSid": "WT" + "6" * 32,
    "TaskAttributes": json.dumps({"selected_language": "es"}),
    "TaskAge": 3,
    "TaskPriority": 0,
    "ReservationSid": RESERVATION_SID,
    "Timestamp": 1700000000,
}
EXPECTED_FORM = {name: str(value) for name, value in ASSIGNMENT_PARAMS.items()}


# -- a live callback receiver ---------------------------------------------------------------


@dataclass
class Answer:
    status: int = 200
    content_type: str | None = JSON
    body: bytes = b"{}"
    hold: threading.Event | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Received:
    path: str
    url: str
    form: dict[str, str]
    headers: dict[str, str]
    signature_valid: bool
    remote_port: int


class CallbackServer:
    """Records every request, checks its signature and answers as a test tells it."""

    def __init__(self) -> None:
        self.answers: dict[str, Answer] = {}
        self.received: list[Received] = []
        self._changed = threading.Condition()
        self._holds: list[threading.Event] = []
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        # A short poll keeps shutdown() from waiting out the default half second per test.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def url(self, path: str) -> str:
        return self.base_url + path

    def answer(self, path: str, **kwargs: object) -> str:
        answer = Answer(**kwargs)  # type: ignore[arg-type]
        if answer.hold is not None:
            self._holds.append(answer.hold)
        self.answers[path.split("?", 1)[0]] = answer
        return self.url(path)

    def hold(self) -> threading.Event:
        event = threading.Event()
        self._holds.append(event)
        return event

    def wait_for_requests(self, count: int, timeout: float = 3.0) -> list[Received]:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.received) >= count, timeout), (
                f"expected {count} requests, got {len(self.received)}"
            )
            return list(self.received)

    def release_all(self) -> None:
        for event in self._holds:
            event.set()

    def _app(self, environ, start_response):
        request = Request(environ)
        url = request.base_url
        if request.query_string:
            url += "?" + request.query_string.decode("ascii")
        form = request.form.to_dict()
        signature = request.headers.get("X-Twilio-Signature", "")
        received = Received(
            path=request.path,
            url=url,
            form=form,
            headers=dict(request.headers),
            signature_valid=RequestValidator(AUTH_TOKEN).validate(url, request.form, signature),
            remote_port=int(environ["REMOTE_PORT"]),
        )
        with self._changed:
            self.received.append(received)
            self._changed.notify_all()
        answer = self.answers.get(request.path, Answer(status=404, body=b"no such path"))
        if answer.hold is not None:
            answer.hold.wait(5.0)
        response = Response(answer.body, status=answer.status, headers=answer.headers)
        if answer.content_type is None:
            del response.headers["Content-Type"]
        else:
            response.headers["Content-Type"] = answer.content_type
        return response(environ, start_response)

    def __enter__(self) -> CallbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release_all()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5.0)


@pytest.fixture
def server():
    with CallbackServer() as callback_server:
        yield callback_server


class Outcomes:
    def __init__(self) -> None:
        self.items: list[AssignmentOutcome] = []
        self.alerts: list[Alert] = []
        self._lock = threading.Lock()

    def __call__(self, outcome: AssignmentOutcome) -> None:
        with self._lock:
            self.items.append(outcome)

    def on_alert(self, alert: Alert) -> None:
        with self._lock:
            self.alerts.append(alert)

    def only(self) -> AssignmentOutcome:
        assert len(self.items) == 1, self.items
        return self.items[0]


@pytest.fixture
def outcomes():
    return Outcomes()


@pytest.fixture
def make_dispatcher(server, outcomes):
    made: list[Dispatcher] = []

    def make(**kwargs: object) -> Dispatcher:
        # Far above a local round trip on a loaded machine; the timeout tests set their own.
        kwargs.setdefault("assignment_timeout", 10.0)
        kwargs.setdefault("event_timeout", 10.0)
        kwargs.setdefault("on_alert", outcomes.on_alert)
        on_outcome = kwargs.pop("on_assignment_outcome", outcomes)
        dispatcher = Dispatcher(AUTH_TOKEN, on_outcome, **kwargs)  # type: ignore[arg-type]
        made.append(dispatcher)
        return dispatcher

    yield make
    server.release_all()
    for dispatcher in made:
        dispatcher.close()


@pytest.fixture
def dispatcher(make_dispatcher):
    return make_dispatcher()


def deliver(dispatcher: Dispatcher, outcomes: Outcomes, url: str, fallback_url=None):
    dispatcher.send_assignment(RESERVATION_SID, url, fallback_url, ASSIGNMENT_PARAMS)
    assert dispatcher.drain(5.0)
    return outcomes.only()


# -- the request itself --------------------------------------------------------------------


def test_assignment_callback_is_a_signed_form_post_with_exact_parameters(
    server, dispatcher, outcomes
):
    url = server.answer("/assignment", body=b'{"instruction": "accept"}')
    outcome = deliver(dispatcher, outcomes, url)

    (request,) = server.received
    assert request.form == EXPECTED_FORM
    assert request.signature_valid
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.headers["User-Agent"] == "TwilioProxy/1.1"
    assert len(request.headers["I-Twilio-Idempotency-Token"]) == 32
    # The receiving check really depends on the token: another one rejects the request.
    signature = request.headers["X-Twilio-Signature"]
    assert not RequestValidator("another-token").validate(request.url, request.form, signature)
    assert signature == RequestValidator(AUTH_TOKEN).compute_signature(url, EXPECTED_FORM)

    assert outcome.reservation_sid == RESERVATION_SID
    assert outcome.instruction == "accept"
    assert outcome.accept is True
    assert outcome.reject is False
    assert outcome.alerts == ()
    assert outcome.url_used == url
    assert outcome.status_code == 200
    assert outcome.params == {"instruction": "accept"}
    assert outcome.elapsed_ms > 0


def test_signature_covers_the_query_string(server, dispatcher, outcomes):
    url = server.answer("/assignment?tenant=a%20b&x=1", body=b"{}")
    deliver(dispatcher, outcomes, url)
    (request,) = server.received
    assert request.url == url
    assert request.signature_valid


def test_redirects_are_not_followed(server, dispatcher, outcomes):
    target = server.answer("/elsewhere", body=b'{"instruction": "accept"}')
    url = server.answer("/assignment", status=302, headers={"Location": target}, body=b"")
    outcome = deliver(dispatcher, outcomes, url)
    assert [r.path for r in server.received] == ["/assignment"]
    assert outcome.status_code == 302
    assert outcome.accept is False
    assert [a.code for a in outcome.alerts] == [11200]


# -- each kind of answer, end to end -------------------------------------------------------

# (status, content type, body) -> (instruction, accept, reject, activity_sid, alert codes,
# fallback used). The fallback answers a reject so its use shows in the outcome.
ANSWER_TABLE = [
    pytest.param(200, JSON, b'{"instruction": "accept"}', "accept", True, False, None, [], False,
                 id="accept"),
    pytest.param(200, JSON, b"{}", None, False, False, None, [], False, id="empty-object"),
    pytest.param(200, "text/plain", b"", None, False, False, None, [], False, id="empty-body"),
    pytest.param(200, JSON, b'{"instruction": "reject", "activity_sid": "%s"}'
                 % ACTIVITY_SID.encode(), "reject", False, True, ACTIVITY_SID, [], False,
                 id="reject-with-activity"),
    pytest.param(200, JSON, b'{"instruction": "reject"}', "reject", False, True, None, [], False,
                 id="reject"),
    pytest.param(200, JSON, b'{"instruction": "dequeue", "from": "+15558675310"}', "dequeue",
                 True, False, None, [], False, id="dequeue"),
    pytest.param(200, JSON, b'{"instruction": "conference"}', "conference", True, False, None,
                 [], False, id="conference"),
    pytest.param(200, JSON, b'{"instruction": "call", "accept": true, "url": "http://x/y"}',
                 "call", True, False, None, [], False, id="call-accept"),
    pytest.param(200, JSON, b'{"instruction": "call", "url": "http://x/y"}', "call", False,
                 False, None, [], False, id="call-no-accept"),
    pytest.param(200, JSON, b'{"instruction": "redirect", "accept": true}', "redirect", True,
                 False, None, [], False, id="redirect-accept"),
    pytest.param(200, "text/html", b"<html>ok</html>", "reject", False, True, None, [40000],
                 True, id="html-40000"),
    pytest.param(200, None, b'{"instruction": "accept"}', "reject", False, True, None, [40000],
                 True, id="no-content-type-40000"),
    pytest.param(200, JSON, b'{"instruction": ', None, False, False, None, [40001], False,
                 id="unparsable-40001"),
    pytest.param(200, JSON, b'{"task": 1}', None, False, False, None, [40005], False,
                 id="no-instruction-40005"),
    pytest.param(200, JSON, b'{"instruction": "transfer"}', None, False, False, None, [55555],
                 False, id="unknown-55555"),
    pytest.param(200, JSON, b'{"instruction": "Accept"}', None, False, False, None, [55555],
                 False, id="case-matters-55555"),
    pytest.param(500, JSON, b'{"instruction": "accept"}', "reject", False, True, None, [11200],
                 True, id="http-500-11200"),
    pytest.param(404, "text/html", b"not found", "reject", False, True, None, [11200], True,
                 id="http-404-11200"),
    pytest.param(204, None, b"", "reject", False, True, None, [11200], True,
                 id="http-204-is-not-200"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("status", "content_type", "body", "instruction", "accept", "reject", "activity_sid",
     "codes", "fallback_used"),
    ANSWER_TABLE,
)  # fmt: skip
def test_answer_table(
    server,
    dispatcher,
    outcomes,
    status,
    content_type,
    body,
    instruction,
    accept,
    reject,
    activity_sid,
    codes,
    fallback_used,
):
    url = server.answer("/assignment", status=status, content_type=content_type, body=body)
    fallback = server.answer("/fallback", body=b'{"instruction": "reject"}')
    outcome = deliver(dispatcher, outcomes, url, fallback)

    assert outcome.instruction == instruction
    assert outcome.accept is accept
    assert outcome.reject is reject
    assert outcome.activity_sid == activity_sid
    assert [alert.code for alert in outcome.alerts] == codes
    assert all(alert.url == url for alert in outcome.alerts)
    expected_paths = ["/assignment", "/fallback"] if fallback_used else ["/assignment"]
    assert [request.path for request in server.received] == expected_paths
    assert outcome.url_used == (fallback if fallback_used else url)


# -- fallback, timeout, refused connection -------------------------------------------------


def test_fallback_gets_the_same_parameters_signed_for_its_own_url(server, dispatcher, outcomes):
    url = server.answer("/assignment", status=503, body=b"busy")
    fallback = server.answer("/fallback?via=backup", body=b'{"instruction": "accept"}')
    outcome = deliver(dispatcher, outcomes, url, fallback)

    first, second = server.received
    assert first.form == second.form == EXPECTED_FORM
    assert first.signature_valid and second.signature_valid
    assert first.headers["X-Twilio-Signature"] != second.headers["X-Twilio-Signature"]
    assert second.url == fallback
    assert outcome.accept is True
    assert outcome.url_used == fallback
    assert outcome.status_code == 200
    (alert,) = outcome.alerts
    assert alert == Alert(
        11200,
        "error",
        "HTTP retrieval failure: the assignment callback answered 503, expected 200",
        server.url("/assignment"),
    )


def test_both_callbacks_failing_leave_no_instruction_with_both_alerts(server, dispatcher, outcomes):
    url = server.answer("/assignment", status=500, body=b"boom")
    fallback = server.answer("/fallback", status=200, content_type="text/xml", body=b"<x/>")
    outcome = deliver(dispatcher, outcomes, url, fallback)
    assert outcome.instruction is None
    assert not outcome.accept and not outcome.reject
    assert [(a.code, a.level, a.url) for a in outcome.alerts] == [
        (11200, "error", url),
        (40000, "error", fallback),
    ]
    assert outcome.status_code == 200
    assert outcome.url_used == fallback


def test_failure_without_fallback_is_an_alert_and_no_instruction(server, dispatcher, outcomes):
    url = server.answer("/assignment", status=500, body=b"boom")
    outcome = deliver(dispatcher, outcomes, url, None)
    assert outcome.instruction is None
    assert [a.code for a in outcome.alerts] == [11200]
    assert outcome.status_code == 500
    assert outcome.url_used == url


def test_timeout_goes_to_the_fallback(server, make_dispatcher, outcomes):
    # Long enough for the fallback to answer on a loaded machine; the held URL never does.
    dispatcher = make_dispatcher(assignment_timeout=2.0)
    url = server.answer("/slow", hold=server.hold(), body=b'{"instruction": "reject"}')
    fallback = server.answer("/fallback", body=b'{"instruction": "accept"}')
    outcome = deliver(dispatcher, outcomes, url, fallback)
    assert outcome.accept is True
    assert outcome.url_used == fallback
    (alert,) = outcome.alerts
    assert alert.code == 11200
    assert alert.message == "HTTP retrieval failure: timed out after 2 s"
    assert outcome.elapsed_ms >= 2000


def test_timeout_without_fallback_has_no_status(server, make_dispatcher, outcomes):
    dispatcher = make_dispatcher(assignment_timeout=0.3)
    url = server.answer("/slow", hold=server.hold())
    outcome = deliver(dispatcher, outcomes, url)
    assert outcome.status_code is None
    assert outcome.instruction is None
    assert [a.code for a in outcome.alerts] == [11200]


def test_connection_refused_goes_to_the_fallback(server, dispatcher, outcomes, refused_port):
    url = f"http://127.0.0.1:{refused_port}/assignment"
    fallback = server.answer("/fallback", body=b"{}")
    outcome = deliver(dispatcher, outcomes, url, fallback)
    (alert,) = outcome.alerts
    assert alert.code == 11200
    assert "ConnectionRefusedError" in alert.message
    assert outcome.url_used == fallback
    assert outcome.status_code == 200
    assert outcome.instruction is None


def test_a_url_that_cannot_be_requested_goes_to_the_fallback(server, dispatcher, outcomes):
    fallback = server.answer("/fallback", body=b"{}")
    outcome = deliver(dispatcher, outcomes, "http://127.0.0.1:99999/assignment", fallback)
    (alert,) = outcome.alerts
    assert alert.code == 11200
    assert "LocationParseError" in alert.message
    assert outcome.url_used == fallback
    assert outcome.status_code == 200


def test_oversized_answer_is_a_retrieval_failure(server, dispatcher, outcomes):
    body = b'{"instruction": "accept", "pad": "' + b"x" * MAX_ANSWER_BYTES + b'"}'
    url = server.answer("/assignment", body=body)
    outcome = deliver(dispatcher, outcomes, url)
    assert outcome.accept is False
    assert [a.code for a in outcome.alerts] == [11200]
    assert "larger than" in outcome.alerts[0].message


# -- the pool -------------------------------------------------------------------------------


def test_send_returns_at_once_while_the_callback_is_slow(server, dispatcher, outcomes):
    release = server.hold()
    url = server.answer("/slow", hold=release, body=b'{"instruction": "accept"}')
    started = time.perf_counter()
    dispatcher.send_assignment(RESERVATION_SID, url, None, ASSIGNMENT_PARAMS)
    # Starting the first worker thread can take a while on a busy machine; a send that
    # waited for the answer would take the held server's 5 s.
    assert time.perf_counter() - started < 1.0
    assert outcomes.items == []
    server.wait_for_requests(1)
    # Delivery is really in flight on another thread, not finished.
    assert not dispatcher.drain(0.05)
    assert outcomes.items == []
    release.set()
    assert dispatcher.drain(5.0)
    assert outcomes.only().accept is True


def test_delivery_threads_are_named_after_callbacks(server, dispatcher, outcomes):
    """A thread dump names the delivery threads for what they do: sandbox-callbacks-N."""
    url = server.answer("/named", body=b'{"instruction": "accept"}')
    deliver(dispatcher, outcomes, url)
    names = [thread.name for thread in dispatcher._threads]
    assert names == ["sandbox-callbacks-1"]
    assert not any(thread.name.startswith("sandbox-dispatch") for thread in threading.enumerate())


def test_workers_deliver_in_parallel_up_to_max_workers(server, make_dispatcher, outcomes):
    dispatcher = make_dispatcher(max_workers=3)
    release = server.hold()
    url = server.answer("/slow", hold=release, body=b"{}")
    for _ in range(4):
        dispatcher.send_assignment(RESERVATION_SID, url, None, ASSIGNMENT_PARAMS)
    server.wait_for_requests(3)
    assert len(server.received) == 3  # the fourth waits for a free worker
    release.set()
    assert dispatcher.drain(5.0)
    assert len(outcomes.items) == 4
    assert len(server.received) == 4


class _StdlibHandler(BaseHTTPRequestHandler):
    # Werkzeug's development server closes every connection and writes each answer in one
    # go, so keep-alive and slow bodies are checked against the standard library's server.
    protocol_version = "HTTP/1.1"
    server: _StdlibServer

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.server.client_ports.append(self.client_address[1])
        self.answer()

    def answer(self) -> None:
        raise NotImplementedError

    def start_answer(self, length: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", JSON)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class _StdlibServer(ThreadingHTTPServer):
    def __init__(self, handler: type[_StdlibHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.client_ports: list[int] = []
        self.release = threading.Event()
        self.url = f"http://127.0.0.1:{self.server_port}/assignment"
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def __enter__(self) -> _StdlibServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()
        self._thread.join(5.0)


class _AcceptHandler(_StdlibHandler):
    def answer(self) -> None:
        body = b'{"instruction": "accept"}'
        self.start_answer(len(body))
        self.wfile.write(body)


class _StallingBodyHandler(_StdlibHandler):
    def answer(self) -> None:
        self.start_answer(100)
        self.wfile.write(b'{"instruction"')
        self.wfile.flush()
        self.server.release.wait(5.0)


class _DrippingBodyHandler(_StdlibHandler):
    def answer(self) -> None:
        body = b'{"instruction": "accept"}' + b" " * 40
        self.start_answer(len(body))
        try:
            for index in range(len(body)):
                self.wfile.write(body[index : index + 1])
                self.wfile.flush()
                if self.server.release.wait(0.05):
                    return
        except OSError:
            pass  # the dispatcher gave up and closed the connection, as it should


class _GzipHandler(_StdlibHandler):
    def answer(self) -> None:
        body = gzip.compress(
            b'{"instruction": "reject", "activity_sid": "%s"}' % ACTIVITY_SID.encode()
        )
        self.send_response(200)
        self.send_header("Content-Type", JSON)
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_a_compressed_answer_is_decoded(dispatcher, outcomes):
    with _StdlibServer(_GzipHandler) as http_server:
        outcome = deliver(dispatcher, outcomes, http_server.url)
    assert (outcome.reject, outcome.activity_sid, outcome.alerts) == (True, ACTIVITY_SID, ())


def test_each_worker_keeps_its_connection_alive(make_dispatcher, outcomes):
    pools: list[urllib3.PoolManager] = []

    def pool_factory() -> urllib3.PoolManager:
        pool = urllib3.PoolManager()
        pools.append(pool)
        return pool

    with _StdlibServer(_AcceptHandler) as http_server:
        dispatcher = make_dispatcher(max_workers=1, pool_factory=pool_factory)
        for _ in range(3):
            dispatcher.send_assignment(RESERVATION_SID, http_server.url, None, ASSIGNMENT_PARAMS)
        assert dispatcher.drain(5.0)
        dispatcher.close()
    assert len(pools) == 1
    assert len(http_server.client_ports) == 3
    assert len(set(http_server.client_ports)) == 1
    assert [o.accept for o in outcomes.items] == [True, True, True]


def test_https_callbacks_verify_against_certifi_like_requests():
    pool = new_pool()
    assert pool.connection_pool_kw["ca_certs"] == certifi.where()
    # None is urllib3's default: certificates required.
    assert resolve_cert_reqs(pool.connection_pool_kw.get("cert_reqs")) == ssl.CERT_REQUIRED


@pytest.mark.parametrize("handler", [_StallingBodyHandler, _DrippingBodyHandler])
def test_a_body_slower_than_the_timeout_is_cut_off(make_dispatcher, outcomes, handler):
    # Stalling trips the socket read timeout; dripping never does, only the total deadline.
    dispatcher = make_dispatcher(assignment_timeout=0.3)
    with _StdlibServer(handler) as http_server:
        started = time.monotonic()
        outcome = deliver(dispatcher, outcomes, http_server.url)
        # Well under the 5 s a stalled body could otherwise take, with room for a loaded CI.
        assert time.monotonic() - started < 3.0
    assert outcome.accept is False
    assert outcome.status_code is None
    assert [(a.code, a.message) for a in outcome.alerts] == [
        (11200, "HTTP retrieval failure: timed out after 0.3 s")
    ]


def test_a_failing_outcome_handler_does_not_kill_the_pool(server, make_dispatcher, caplog):
    seen: list[AssignmentOutcome] = []

    def on_outcome(outcome: AssignmentOutcome) -> None:
        seen.append(outcome)
        if len(seen) == 1:
            raise RuntimeError("engine exploded")

    dispatcher = make_dispatcher(max_workers=1, on_assignment_outcome=on_outcome)
    url = server.answer("/assignment", body=b'{"instruction": "accept"}')
    with caplog.at_level(logging.ERROR, logger="taskrouter_sandbox.callbacks.delivery"):
        dispatcher.send_assignment(RESERVATION_SID, url, None, ASSIGNMENT_PARAMS)
        dispatcher.send_assignment("WR" + "cd" * 16, url, None, ASSIGNMENT_PARAMS)
        assert dispatcher.drain(5.0)
    assert [o.reservation_sid for o in seen] == [RESERVATION_SID, "WR" + "cd" * 16]
    assert "on_assignment_outcome failed for reservation " + RESERVATION_SID in caplog.text
    assert "engine exploded" in caplog.text


def test_close_without_wait_drops_what_is_queued(server, make_dispatcher, outcomes, caplog):
    dispatcher = make_dispatcher(max_workers=1)
    release = server.hold()
    url = server.answer("/slow", hold=release, body=b"{}")
    for _ in range(3):
        dispatcher.send_assignment(RESERVATION_SID, url, None, ASSIGNMENT_PARAMS)
    server.wait_for_requests(1)
    with caplog.at_level(logging.WARNING, logger="taskrouter_sandbox.callbacks.delivery"):
        dispatcher.close(wait=False)
    assert "2 queued callbacks dropped" in caplog.text
    release.set()
    assert dispatcher.drain(5.0)
    assert len(outcomes.items) == 1
    assert len(server.received) == 1


def test_close_with_wait_delivers_everything_queued(server, make_dispatcher, outcomes):
    dispatcher = make_dispatcher(max_workers=2)
    url = server.answer("/assignment", body=b"{}")
    for _ in range(5):
        dispatcher.send_assignment(RESERVATION_SID, url, None, ASSIGNMENT_PARAMS)
    dispatcher.close()
    assert len(outcomes.items) == 5


def test_sending_after_close_is_refused(server, dispatcher):
    dispatcher.close()
    with pytest.raises(RuntimeError, match="the dispatcher is closed"):
        dispatcher.send_event(server.url("/events"), {"EventType": "task.created"})
    with pytest.raises(RuntimeError, match="the dispatcher is closed"):
        dispatcher.send_assignment(RESERVATION_SID, server.url("/a"), None, {})


# -- event callbacks ------------------------------------------------------------------------

EVENT_PARAMS = {
    "EventType": "reservation.created",
    "AccountSid": ASSIGNMENT_PARAMS["AccountSid"],
    "WorkspaceSid": ASSIGNMENT_PARAMS["WorkspaceSid"],
    "ResourceType": "reservation",
    "ResourceSid": RESERVATION_SID,
    "TaskAge": 3,
}


def test_event_callback_is_signed_and_exact(server, dispatcher, outcomes):
    url = server.answer("/events?source=sandbox", status=204, content_type=None, body=b"")
    dispatcher.send_event(url, EVENT_PARAMS)
    assert dispatcher.drain(5.0)
    (request,) = server.received
    assert request.form == {name: str(value) for name, value in EVENT_PARAMS.items()}
    assert request.signature_valid
    assert request.headers["User-Agent"] == "TwilioProxy/1.1"
    assert outcomes.alerts == []
    assert outcomes.items == []


def test_failed_event_callback_is_an_alert_and_not_retried(server, dispatcher, outcomes):
    url = server.answer("/events", status=500, body=b"down")
    dispatcher.send_event(url, EVENT_PARAMS)
    assert dispatcher.drain(5.0)
    assert len(server.received) == 1
    assert outcomes.alerts == [
        Alert(
            11200,
            "error",
            "HTTP retrieval failure: event callback reservation.created answered 500, expected 2xx",
            url,
        )
    ]


def test_unreachable_event_callback_is_an_alert(dispatcher, outcomes, refused_port):
    url = f"http://127.0.0.1:{refused_port}/events"
    dispatcher.send_event(url, EVENT_PARAMS)
    assert dispatcher.drain(5.0)
    (alert,) = outcomes.alerts
    assert alert.code == 11200
    assert "ConnectionRefusedError" in alert.message
    assert alert.url == url


def test_a_failing_alert_handler_is_logged(server, make_dispatcher, caplog):
    def on_alert(alert: Alert) -> None:
        raise RuntimeError("console gone")

    dispatcher = make_dispatcher(on_alert=on_alert)
    url = server.answer("/events", status=500, body=b"down")
    with caplog.at_level(logging.ERROR, logger="taskrouter_sandbox.callbacks.delivery"):
        dispatcher.send_event(url, EVENT_PARAMS)
        assert dispatcher.drain(5.0)
    assert "on_alert failed" in caplog.text
    # The pool still works afterwards.
    ok = server.answer("/ok", status=200, body=b"")
    dispatcher.send_event(ok, EVENT_PARAMS)
    assert dispatcher.drain(5.0)
    assert [r.path for r in server.received] == ["/events", "/ok"]


# -- logging --------------------------------------------------------------------------------


def test_log_line_names_url_without_query_or_credentials_and_no_secrets(
    server, dispatcher, outcomes, caplog
):
    server.answer("/assignment", body=b'{"instruction": "accept"}')
    url = f"http://user:app-password@127.0.0.1:{server.url('').rsplit(':', 1)[1]}"
    url += "/assignment?key=query-secret"
    with caplog.at_level(logging.INFO, logger="taskrouter_sandbox.callbacks.delivery"):
        deliver(dispatcher, outcomes, url)
    (request,) = server.received
    lines = [
        r.getMessage() for r in caplog.records if r.name == "taskrouter_sandbox.callbacks.delivery"
    ]
    assert lines == [
        f"assignment callback {RESERVATION_SID} POST {server.url('/assignment')} -> 200 in "
        + lines[0].split(" in ", 1)[1]
    ]
    assert lines[0].endswith("ms, instruction accept")
    text = "\n".join(lines)
    for secret in (AUTH_TOKEN, request.headers["X-Twilio-Signature"], "app-password",
                   "query-secret"):  # fmt: skip
        assert secret not in text


def test_credentials_in_the_url_are_sent_as_basic_auth(server, dispatcher, outcomes):
    server.answer("/assignment", body=b'{"instruction": "accept"}')
    port = server.url("").rsplit(":", 1)[1]
    outcome = deliver(dispatcher, outcomes, f"http://app%40user:p%3Ass@127.0.0.1:{port}/assignment")
    (request,) = server.received
    assert request.path == "/assignment"
    assert (
        request.headers["Authorization"] == "Basic " + base64.b64encode(b"app@user:p:ss").decode()
    )
    assert outcome.accept


def test_alerts_are_logged_at_their_level(server, dispatcher, outcomes, caplog):
    url = server.answer("/assignment", body=b'{"note": 1}')
    with caplog.at_level(logging.INFO, logger="taskrouter_sandbox.callbacks.delivery"):
        deliver(dispatcher, outcomes, url)
    (record,) = [r for r in caplog.records if "alert" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert "alert 40005 (warning)" in record.getMessage()


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "fallback", "message"),
    [
        ("ftp://example.com/cb", None, "assignment callback URL must be an absolute http"),
        ("/relative", None, "assignment callback URL must be an absolute http"),
        ("http://", None, "assignment callback URL must be an absolute http"),
        ("http://example.com/cb", "mailto:a@b", "fallback assignment callback URL must be"),
    ],
)
def test_bad_callback_urls_are_refused_before_queueing(dispatcher, url, fallback, message):
    with pytest.raises(ValueError, match=message):
        dispatcher.send_assignment(RESERVATION_SID, url, fallback, ASSIGNMENT_PARAMS)
    assert dispatcher.drain(0)


def test_bad_event_url_and_params_are_refused(dispatcher, server):
    with pytest.raises(ValueError, match="event callback URL must be an absolute http"):
        dispatcher.send_event("example.com/events", EVENT_PARAMS)
    with pytest.raises(TypeError, match="callback params must be a mapping, not list"):
        dispatcher.send_event(server.url("/events"), [("EventType", "x")])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="parameter names must be non-empty strings"):
        dispatcher.send_event(server.url("/events"), {1: "x"})  # type: ignore[dict-item]
    assert server.received == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"auth_token": ""}, "auth_token must be a non-empty string"),
        ({"assignment_timeout": 0}, "callback timeouts must be positive"),
        ({"event_timeout": -1}, "callback timeouts must be positive"),
        ({"max_workers": 0}, "max_workers must be at least 1"),
    ],
)
def test_bad_dispatcher_settings_are_refused(kwargs, message):
    kwargs = {"auth_token": AUTH_TOKEN, **kwargs}
    token = kwargs.pop("auth_token")
    with pytest.raises(ValueError, match=message):
        Dispatcher(token, lambda outcome: None, **kwargs)


def test_form_params_are_strings_as_twilio_writes_them():
    assert form_params(
        {"A": True, "B": False, "C": 3, "D": None, "E": {"k": [1]}, "F": "x", "G": 1.5}
    ) == {"A": "true", "B": "false", "C": "3", "E": '{"k":[1]}', "F": "x", "G": "1.5"}


def test_redact_url_drops_credentials_query_and_fragment():
    assert redact_url("https://u:p@host:8443/a/b?token=1#frag") == "https://host:8443/a/b"


# -- interpret_assignment_answer, unit table ------------------------------------------------

URL = "https://app.example.com/assignment?secret=1"


@pytest.mark.parametrize(
    ("status", "content_type", "body", "failed", "instruction", "accept", "reject", "alerts"),
    [
        (200, JSON, b'{"instruction":"accept"}', False, "accept", True, False, []),
        (200, "application/json; charset=utf-8", b'{"instruction":"accept"}', False, "accept",
         True, False, []),
        (200, "Application/JSON", b'{"instruction":"accept"}', False, "accept", True, False, []),
        (200, JSON, b"  {}\n", False, None, False, False, []),
        (200, JSON, b"", False, None, False, False, []),
        (200, None, b"", False, None, False, False, []),
        (200, "text/html", b" \r\n", False, None, False, False, []),
        (200, "text/plain", b"{}", True, None, False, False, [(40000, "error")]),
        (200, "application/javascript", b"{}", True, None, False, False, [(40000, "error")]),
        (200, "", b"{}", True, None, False, False, [(40000, "error")]),
        (200, JSON, b"{'instruction': 'accept'}", False, None, False, False,
         [(40001, "warning")]),
        (200, JSON, b'"{\\"instruction\\": \\"accept\\"}"', False, None, False, False,
         [(40001, "warning")]),
        (200, JSON, b"null", False, None, False, False, [(40001, "warning")]),
        (200, JSON, b'[{"instruction": "accept"}]', False, None, False, False,
         [(40001, "warning")]),
        (200, JSON, b"\xff\xfe\xfa", False, None, False, False, [(40001, "warning")]),
        (200, JSON, b"[" * 100000, False, None, False, False, [(40001, "warning")]),
        (200, JSON, b'{"accept": true}', False, None, False, False, [(40005, "warning")]),
        (200, JSON, b'{"instruction": null}', False, None, False, False, [(55555, "error")]),
        (200, JSON, b'{"instruction": 1}', False, None, False, False, [(55555, "error")]),
        (200, JSON, b'{"instruction": "ACCEPT"}', False, None, False, False, [(55555, "error")]),
        (200, JSON, b'{"instruction": " accept"}', False, None, False, False,
         [(55555, "error")]),
        (200, JSON, b'{"instruction": "supervise"}', False, None, False, False,
         [(55555, "error")]),
        (200, JSON, b'{"instruction": "reject", "activity_sid": "Offline"}', False, None, False,
         False, [(55555, "error")]),
        (200, JSON, b'{"instruction": "reject", "activity_sid": 7}', False, None, False, False,
         [(55555, "error")]),
        (200, JSON, b'{"instruction": "reject", "activity_sid": null}', False, "reject", False,
         True, []),
        (200, JSON, b'{"instruction": "call", "accept": "true"}', False, "call", False, False,
         []),
        (200, JSON, b'{"instruction": "call", "accept": false}', False, "call", False, False, []),
        (200, JSON, b'{"instruction": "redirect", "call_sid": "CA1"}', False, "redirect", False,
         False, []),
        (200, JSON, b'{"instruction": "dequeue", "accept": false}', False, "dequeue", True,
         False, []),
        (201, JSON, b'{"instruction":"accept"}', True, None, False, False, [(11200, "error")]),
        (301, JSON, b"", True, None, False, False, [(11200, "error")]),
        (502, "text/html", b"bad gateway", True, None, False, False, [(11200, "error")]),
    ],
)  # fmt: skip
def test_interpret_assignment_answer(
    status, content_type, body, failed, instruction, accept, reject, alerts
):
    answer = interpret_assignment_answer(status, content_type, body, url=URL)
    assert answer.failed is failed
    assert answer.instruction == instruction
    assert answer.accept is accept
    assert answer.reject is reject
    assert [(a.code, a.level) for a in answer.alerts] == alerts
    assert all(a.url == "https://app.example.com/assignment" for a in answer.alerts)


def test_interpreted_answer_keeps_the_whole_object():
    body = b'{"instruction": "dequeue", "from": "+15558675310", "post_work_activity_sid": "WA1"}'
    answer = interpret_assignment_answer(200, JSON, body)
    assert answer.params == json.loads(body)
    assert answer.activity_sid is None


def test_reject_carries_its_activity_sid():
    body = json.dumps({"instruction": "reject", "activity_sid": ACTIVITY_SID}).encode()
    answer = interpret_assignment_answer(200, JSON, body)
    assert (answer.reject, answer.accept, answer.activity_sid) == (True, False, ACTIVITY_SID)


def test_alert_messages_say_what_was_wrong():
    (alert,) = interpret_assignment_answer(200, "text/html; charset=utf-8", b"<p>").alerts
    assert alert.message == "Content-Type of 'application/json' not set (got text/html)"
    (alert,) = interpret_assignment_answer(200, JSON, b'{"instruction": "Accept"}').alerts
    assert alert.message.startswith("Invalid instruction 'Accept': expected one of accept, call")
    (alert,) = interpret_assignment_answer(200, JSON, b'{"x": 1}').alerts
    assert alert.message == "Assignment callback answer does not contain 'instruction'"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    status=st.integers(100, 599),
    content_type=st.one_of(st.none(), st.sampled_from([JSON, "text/plain"]), st.text()),
    body=st.one_of(
        st.binary(max_size=200),
        st.builds(
            lambda obj: json.dumps(obj).encode(),
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                lambda children: (
                    st.lists(children, max_size=3)
                    | st.dictionaries(
                        st.sampled_from(["instruction", "accept", "activity_sid", "x"]),
                        children | st.sampled_from(["accept", "reject", "call", ACTIVITY_SID]),
                        max_size=3,
                    )
                ),
                max_leaves=8,
            ),
        ),
    ),
)
def test_interpret_never_raises_and_never_both_accepts_and_rejects(status, content_type, body):
    answer = interpret_assignment_answer(status, content_type, body)
    assert not (answer.accept and answer.reject)
    if answer.failed:
        assert answer.instruction is None and not answer.accept and not answer.reject
        assert answer.alerts
    if answer.accept or answer.reject:
        assert answer.instruction is not None and answer.alerts == ()
    assert all(alert.code in {11200, 40000, 40001, 40005, 55555} for alert in answer.alerts)
