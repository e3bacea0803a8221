"""Delivery of the sandbox's assignment and event callbacks, signed and off the request thread.

Owns the HTTP POSTs to the user's callback URLs, the fallback URL, the timeouts and the worker
threads that send; what an answer means is answers.py's.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote, urlencode, urlsplit

import certifi
import urllib3
from twilio.request_validator import RequestValidator

from taskrouter_sandbox.callbacks.answers import (
    AssignmentAnswer,
    assignment_idempotency_token,
    form_params,
    interpret_assignment_answer,
    redact_url,
)
from taskrouter_sandbox.domain.values import (
    ALERT_HTTP_RETRIEVAL_FAILURE,
    CALLBACK_ANSWER_TEXT_LIMIT,
    Alert,
    AssignmentOutcome,
    CallbackDelivery,
)

logger = logging.getLogger(__name__)

USER_AGENT = "TwilioProxy/1.1"
SIGNATURE_HEADER = "X-Twilio-Signature"
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"
REQUEST_HEADERS = {
    "User-Agent": USER_AGENT,
    "Accept": "*/*",
    "Content-Type": "application/x-www-form-urlencoded",
    # Answers may come compressed; read1 decodes them.
    **urllib3.make_headers(accept_encoding=True),
}

# An answer larger than this is not an instruction document; stop reading rather than
# buffer whatever the far end streams at us.
MAX_ANSWER_BYTES = 1024 * 1024
# The delivery threads are named after what they do: sandbox-callbacks-1, -2, ...
THREAD_NAME_PREFIX = "sandbox-callbacks-"
# Marks the delivery threads, so that code an in-process callback runs can tell it is on one.
_delivery_thread = threading.local()


def on_delivery_thread() -> bool:
    """Whether this thread is delivering a callback (waiting for deliveries here would wait
    for itself)."""
    return getattr(_delivery_thread, "active", False)


def _check_url(url: str, what: str) -> None:
    if not isinstance(url, str):
        raise ValueError(f"{what} must be a string, not {type(url).__name__}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} must be an absolute http(s) URL: {redact_url(url)!r}")


def new_pool() -> urllib3.PoolManager:
    """Connections for one dispatch worker. certifi's CA bundle, as requests and twilio use,
    so https callbacks verify alike everywhere, even where the OS offers Python no CA store."""
    return urllib3.PoolManager(ca_certs=certifi.where())


@dataclass(frozen=True)
class HttpAnswer:
    """An HTTP answer to a callback: what the sandbox reads of it."""

    status_code: int
    content_type: str | None
    body: bytes


# A callback URL served in this process, without a socket (taskrouter_sandbox.testing): given
# the URL, the signed request's headers and its form body, the app's answer; None for a URL it
# does not serve, which then goes out over HTTP.
LocalTransport = Callable[[str, Mapping[str, str], bytes], "HttpAnswer | None"]


class _DeliveryFailure(Exception):
    """No usable HTTP answer: timeout, connection failure, oversized body."""


@dataclass(order=True)
class _Job:
    seq: int
    run: Callable[[urllib3.PoolManager], None] = field(compare=False)


class Dispatcher:
    """Sends signed callbacks from a small pool of worker threads.

    send_assignment/send_event only enqueue; each worker keeps one urllib3 PoolManager so
    deliveries to the same app reuse connections. on_assignment_outcome is called on the
    worker thread for every assignment delivery; on_alert (optional) receives alerts about
    event deliveries (assignment alerts travel inside the outcome); on_delivery (optional)
    receives a CallbackDelivery for every POST made. local_transport (optional) serves some
    URLs in this process: the request is signed and timed exactly as one sent over HTTP.
    """

    def __init__(
        self,
        auth_token: str,
        on_assignment_outcome: Callable[[AssignmentOutcome], None],
        *,
        assignment_timeout: float = 5.0,
        event_timeout: float = 15.0,
        max_workers: int = 4,
        pool_factory: Callable[[], urllib3.PoolManager] | None = None,
        on_alert: Callable[[Alert], None] | None = None,
        on_delivery: Callable[[CallbackDelivery], None] | None = None,
        local_transport: LocalTransport | None = None,
    ) -> None:
        if not isinstance(auth_token, str) or not auth_token:
            raise ValueError("auth_token must be a non-empty string")
        if assignment_timeout <= 0 or event_timeout <= 0:
            raise ValueError("callback timeouts must be positive")
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self._validator = RequestValidator(auth_token)
        self._on_assignment_outcome = on_assignment_outcome
        self._on_alert = on_alert
        self._on_delivery = on_delivery
        self._local_transport = local_transport
        self._assignment_timeout = assignment_timeout
        self._event_timeout = event_timeout
        self._max_workers = max_workers
        self._pool_factory = pool_factory or new_pool
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._threads: list[threading.Thread] = []
        self._spare = 0
        self._next_seq = 0
        self._unfinished: set[int] = set()
        self._closed = False

    # -- public API ---------------------------------------------------------------------

    def send_assignment(
        self,
        reservation_sid: str,
        url: str,
        fallback_url: str | None,
        params: Mapping[str, Any],
    ) -> None:
        """Queue an assignment callback for reservation_sid; returns at once."""
        _check_url(url, "assignment callback URL")
        if fallback_url:
            _check_url(fallback_url, "fallback assignment callback URL")
        form = form_params(params)
        self._enqueue(
            lambda pool: self._deliver_assignment(
                pool, reservation_sid, url, fallback_url or None, form
            )
        )

    def send_event(self, url: str, params: Mapping[str, Any]) -> None:
        """Queue an event callback; delivered once, a failure becomes an alert."""
        _check_url(url, "event callback URL")
        form = form_params(params)
        self._enqueue(lambda pool: self._deliver_event(pool, url, form))

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every delivery queued before this call has finished; False on timeout."""
        with self._changed:
            last = self._next_seq - 1
            return self._changed.wait_for(
                lambda: not self._unfinished or min(self._unfinished) > last, timeout
            )

    def mark(self) -> int:
        """Where the queue stands: wait_idle(since=mark) waits only for what comes after."""
        return self._next_seq  # one int read: atomic, and only ever grows

    def wait_idle(self, timeout: float | None = None, *, since: int = 0) -> bool:
        """Wait until nothing queued at or after the mark `since` (0: ever) is still queued or
        being delivered, nor what those deliveries queue themselves; False on timeout."""
        with self._changed:
            done = lambda: all(seq < since for seq in self._unfinished)  # noqa: E731
            return self._changed.wait_for(done, timeout)

    def close(self, wait: bool = True) -> None:
        """Stop the workers: with wait, after delivering what is queued; without, drop it."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            threads = list(self._threads)
        if not wait:
            dropped = 0
            while True:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    dropped += 1
                    self._finish(job.seq)
            if dropped:
                logger.warning("dispatcher closed: %d queued callbacks dropped", dropped)
        for _ in threads:
            self._queue.put(None)
        if wait:
            for thread in threads:
                thread.join()

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- pool ---------------------------------------------------------------------------

    def _enqueue(self, run: Callable[[urllib3.PoolManager], None]) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the dispatcher is closed")
            job = _Job(self._next_seq, run)
            self._next_seq += 1
            self._unfinished.add(job.seq)
            # _spare counts waiting workers minus queued jobs. Threads start on demand, so
            # an idle sandbox holds no threads or sockets; a new thread takes this job.
            if self._spare <= 0 and len(self._threads) < self._max_workers:
                thread = threading.Thread(
                    target=self._work,
                    name=f"{THREAD_NAME_PREFIX}{len(self._threads) + 1}",
                    daemon=True,
                )
                self._threads.append(thread)
                thread.start()
            else:
                self._spare -= 1
            self._queue.put(job)

    def _work(self) -> None:
        _delivery_thread.active = True
        pool = self._pool_factory()
        try:
            while True:
                job = self._queue.get()
                if job is None:
                    return
                try:
                    job.run(pool)
                except Exception:
                    logger.exception("callback delivery failed unexpectedly")
                finally:
                    with self._lock:
                        self._spare += 1
                    self._finish(job.seq)
        finally:
            pool.clear()

    def _finish(self, seq: int) -> None:
        with self._changed:
            self._unfinished.discard(seq)
            self._changed.notify_all()

    # -- HTTP ---------------------------------------------------------------------------

    def _post(
        self,
        pool: urllib3.PoolManager,
        url: str,
        form: dict[str, str],
        timeout: float,
        idempotency_token: str,
    ) -> HttpAnswer:
        headers = {
            **REQUEST_HEADERS,
            SIGNATURE_HEADER: self._validator.compute_signature(url, form),
            IDEMPOTENCY_HEADER: idempotency_token,
        }
        deadline = time.monotonic() + timeout
        body = urlencode(form).encode()
        try:
            target = urllib3.util.parse_url(url)
            if target.auth:
                # Credentials in a callback URL travel as HTTP basic auth.
                headers.update(urllib3.make_headers(basic_auth=unquote(target.auth)))
                url = target._replace(auth=None).url
            if self._local_transport is not None:
                local = _answer_locally(
                    self._local_transport, url, headers, body, deadline, timeout
                )
                if local is not None:
                    return local
            response = pool.request(
                "POST",
                url,
                body=body,
                headers=headers,
                timeout=timeout,
                redirect=False,
                retries=False,
                preload_content=False,
            )
            try:
                # The timeout bounds the connect and each socket read, not the whole answer,
                # so a slowly dripping body is cut off here against the total deadline; read1
                # returns what has arrived instead of waiting for a full chunk.
                chunks: list[bytes] = []
                size = 0
                while chunk := response.read1(16384, decode_content=True):
                    size += len(chunk)
                    if size > MAX_ANSWER_BYTES:
                        raise _DeliveryFailure(f"answer larger than {MAX_ANSWER_BYTES} bytes")
                    if time.monotonic() > deadline:
                        raise _DeliveryFailure(f"timed out after {timeout:g} s")
                    chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise _DeliveryFailure(f"timed out after {timeout:g} s")
                answer = HttpAnswer(
                    response.status, response.headers.get("Content-Type"), b"".join(chunks)
                )
            except BaseException:
                # Unread bytes would spoil the next answer on this connection: drop it.
                response.close()
                raise
            finally:
                response.release_conn()
            return answer
        # ValueError: a URL urllib3 cannot use (a port out of range) or a header it cannot
        # encode. Like any failed request it becomes an 11200 alert, not an exception.
        except (urllib3.exceptions.HTTPError, ValueError) as exc:
            root = _root_cause(exc)
            # A refused connection is a NewConnectionError, which urllib3 files under its
            # connect timeouts; only the socket's own error says whether time ran out.
            timed_out = isinstance(root, TimeoutError) or (
                isinstance(exc, urllib3.exceptions.TimeoutError)
                and not isinstance(exc, urllib3.exceptions.NewConnectionError)
            )
            if timed_out:
                raise _DeliveryFailure(f"timed out after {timeout:g} s") from exc
            raise _DeliveryFailure(f"request failed: {_describe(root)}") from exc

    def _deliver_assignment(
        self,
        pool: urllib3.PoolManager,
        reservation_sid: str,
        url: str,
        fallback_url: str | None,
        form: dict[str, str],
    ) -> None:
        started = time.monotonic()
        # One token per reservation, fallback included: both POSTs carry the same news, and
        # so does a callback sent again after a crash (state/outbox.py), which the app can
        # tell by it.
        idempotency_token = assignment_idempotency_token(reservation_sid)
        alerts: list[Alert] = []
        answer, status_code, url_used = self._attempt_assignment(
            pool, reservation_sid, url, form, idempotency_token, fallback=False
        )
        alerts.extend(answer.alerts)
        if answer.failed and fallback_url:
            answer, status_code, url_used = self._attempt_assignment(
                pool, reservation_sid, fallback_url, form, idempotency_token, fallback=True
            )
            alerts.extend(answer.alerts)
        outcome = AssignmentOutcome(
            reservation_sid=reservation_sid,
            instruction=answer.instruction,
            accept=answer.accept,
            reject=answer.reject,
            activity_sid=answer.activity_sid,
            params=answer.params,
            alerts=tuple(alerts),
            url_used=url_used,
            status_code=status_code,
            elapsed_ms=(time.monotonic() - started) * 1000.0,
        )
        try:
            self._on_assignment_outcome(outcome)
        except Exception:
            logger.exception("on_assignment_outcome failed for reservation %s", reservation_sid)

    def _attempt_assignment(
        self,
        pool: urllib3.PoolManager,
        reservation_sid: str,
        url: str,
        form: dict[str, str],
        idempotency_token: str,
        *,
        fallback: bool,
    ) -> tuple[AssignmentAnswer, int | None, str]:
        started = time.monotonic()
        http: HttpAnswer | None = None
        error: str | None = None
        try:
            http = self._post(pool, url, form, self._assignment_timeout, idempotency_token)
        except _DeliveryFailure as exc:
            error = str(exc)
            answer = AssignmentAnswer(
                failed=True,
                alerts=(
                    Alert(
                        ALERT_HTTP_RETRIEVAL_FAILURE,
                        "error",
                        f"HTTP retrieval failure: {exc}",
                        redact_url(url),
                    ),
                ),
            )
            status_code = None
        else:
            answer = interpret_assignment_answer(
                http.status_code, http.content_type, http.body, url=url
            )
            status_code = http.status_code
        elapsed_ms = (time.monotonic() - started) * 1000.0
        logger.info(
            "assignment callback %s POST %s -> %s in %.0f ms, instruction %s",
            reservation_sid,
            redact_url(url),
            status_code if status_code is not None else "no answer",
            elapsed_ms,
            answer.instruction or "none",
        )
        _record(
            self._on_delivery,
            _delivery(
                "assignment",
                url,
                form,
                http,
                error,
                elapsed_ms,
                reservation_sid=reservation_sid,
                instruction=answer.instruction,
                fallback=fallback,
            ),
        )
        for alert in answer.alerts:
            _log_alert(alert)
        return answer, status_code, url

    def _deliver_event(self, pool: urllib3.PoolManager, url: str, form: dict[str, str]) -> None:
        started = time.monotonic()
        event_type = form.get("EventType", "event")
        alert: Alert | None = None
        status: int | str
        http: HttpAnswer | None = None
        error: str | None = None
        try:
            http = self._post(pool, url, form, self._event_timeout, uuid.uuid4().hex)
        except _DeliveryFailure as exc:
            error = str(exc)
            status = "no answer"
            alert = Alert(
                ALERT_HTTP_RETRIEVAL_FAILURE,
                "error",
                f"HTTP retrieval failure: event callback {event_type}: {exc}",
                redact_url(url),
            )
        else:
            status = http.status_code
            if not 200 <= http.status_code < 300:
                alert = Alert(
                    ALERT_HTTP_RETRIEVAL_FAILURE,
                    "error",
                    f"HTTP retrieval failure: event callback {event_type} answered "
                    f"{http.status_code}, expected 2xx",
                    redact_url(url),
                )
        elapsed_ms = (time.monotonic() - started) * 1000.0
        logger.info(
            "event callback %s POST %s -> %s in %.0f ms",
            event_type,
            redact_url(url),
            status,
            elapsed_ms,
        )
        _record(
            self._on_delivery,
            _delivery(
                "event", url, form, http, error, elapsed_ms, event_type=form.get("EventType")
            ),
        )
        if alert is None:
            return
        _log_alert(alert)
        if self._on_alert is not None:
            try:
                self._on_alert(alert)
            except Exception:
                logger.exception("on_alert failed")


def _answer_locally(
    transport: LocalTransport,
    url: str,
    headers: dict[str, str],
    body: bytes,
    deadline: float,
    timeout: float,
) -> HttpAnswer | None:
    """The answer of an app served in this process, held to the same limits as one over
    HTTP: an app that raises is a failed request, one slower than the timeout timed out
    (it cannot be interrupted, so it is judged when it returns)."""
    try:
        answer = transport(url, headers, body)
    except Exception as exc:
        logger.exception("the in-process app at %s raised", redact_url(url))
        raise _DeliveryFailure(f"request failed: the app raised {type(exc).__name__}") from exc
    if answer is None:
        return None
    if time.monotonic() > deadline:
        raise _DeliveryFailure(f"timed out after {timeout:g} s")
    if len(answer.body) > MAX_ANSWER_BYTES:
        raise _DeliveryFailure(f"answer larger than {MAX_ANSWER_BYTES} bytes")
    return answer


def _delivery(
    kind: Literal["assignment", "event"],
    url: str,
    form: dict[str, str],
    http: HttpAnswer | None,
    error: str | None,
    elapsed_ms: float,
    **details: Any,
) -> CallbackDelivery:
    answer = None
    if http is not None:
        answer = http.body.decode("utf-8", "replace")[:CALLBACK_ANSWER_TEXT_LIMIT]
    return CallbackDelivery(
        kind=kind,
        url=redact_url(url),
        params=dict(form),
        status_code=http.status_code if http is not None else None,
        content_type=http.content_type if http is not None else None,
        answer=answer,
        error=error,
        elapsed_ms=elapsed_ms,
        **details,
    )


def _record(
    on_delivery: Callable[[CallbackDelivery], None] | None, delivery: CallbackDelivery
) -> None:
    if on_delivery is None:
        return
    try:
        on_delivery(delivery)
    except Exception:
        logger.exception("on_delivery failed")


def _root_cause(exc: BaseException) -> BaseException:
    # urllib3 wraps socket errors; the innermost one says what happened.
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc = inner
    return exc


def _describe(exc: BaseException) -> str:
    # Unlike urllib3's own message this carries no URL, whose query may hold secrets.
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__} ({exc.strerror})"
    return type(exc).__name__


def _log_alert(alert: Alert) -> None:
    logger.log(
        logging.ERROR if alert.level == "error" else logging.WARNING,
        "alert %d (%s) for %s: %s",
        alert.code,
        alert.level,
        alert.url,
        alert.message,
    )
