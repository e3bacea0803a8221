"""The callback log in Redis, for servers on several hosts behind one load balancer.

With REDIS_URL set, every server process, on every host, writes its callbacks to one Redis list
(newest first, trimmed to `keep`, rows as JSON) and reads the page's list from it, so a page
served by any host lists a callback whichever host received it. Each written batch is also
PUBLISHed on a channel every serving process listens to: its page's cached state is dropped at
once, instead of at the end of the cache's short period. record() still only queues: the
writer thread pipelines a batch into one MULTI, and a callback never waits on the network.

Imported only when REDIS_URL is set, so the embedded default needs no redis package.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from taskrouter_quickstart.callback_log.rows import (
    DEFAULT_KEEP,
    FIELDS,
    CallbackLogError,
    Row,
    in_workspace,
)
from taskrouter_quickstart.callback_log.writer import DEFAULT_QUEUE_SIZE, MAX_BATCH, QueuedLog

# One fixed prefix: a second deployment on the same Redis takes another database (/1, /2...).
KEY_PREFIX = "taskrouter-quickstart:"
LIST_KEY = f"{KEY_PREFIX}callbacks"
CHANNEL = f"{KEY_PREFIX}callbacks:changed"
# The writer's batches give up on a Redis this slow, and report the batch they lost.
SOCKET_TIMEOUT_SECONDS = 2.0
# The page's reads give up sooner: the page's whole state waits on them, and each open page
# holds a server thread (which callbacks are served from too) while it waits.
READ_TIMEOUT_SECONDS = 0.5
# After a failed read, the page is told at once for this long instead of waiting again.
READ_FAILURE_SECONDS = 3.0
# How long a page waits for this process's own queued rows before reading without them.
READ_FLUSH_SECONDS = 0.5
# The listener waits this long for a message before checking that it should go on, and pings
# Redis this often, so that a connection gone quiet is noticed and made again.
LISTEN_POLL_SECONDS = 0.5
HEALTH_CHECK_SECONDS = 10
# After a lost connection the listener tries again after this long, doubling up to the cap.
RECONNECT_FIRST_SECONDS = 0.2
RECONNECT_MAX_SECONDS = 5.0

_ERRORS = (redis.RedisError, OSError)


def redacted(url: str) -> str:
    """The URL without its credentials or query (a password may sit in either), for logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _client(url: str, name: str, retries: int, timeout: float = SOCKET_TIMEOUT_SECONDS):
    # Retries at once, with no backoff, only for a connection that failed (a Redis restart
    # drops them, and the next command makes one again), never for a timeout: a command whose
    # answer was late may still have run, and a second LPUSH would record a batch twice.
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), retries, supported_errors=(redis.ConnectionError,)),
        health_check_interval=HEALTH_CHECK_SECONDS,
        client_name=name,
    )


class _RedisSink:
    """One writer thread's batches: LPUSH them, LTRIM to keep and PUBLISH, in one MULTI."""

    def __init__(self, client: redis.Redis, keep: int) -> None:
        self.client = client
        self.keep = keep

    def write(self, batch: list[Row]) -> None:
        pipeline = self.client.pipeline(transaction=True)
        # LPUSH puts each value at the head in turn: the batch's last row ends up newest.
        pipeline.lpush(LIST_KEY, *(json.dumps(row, separators=(",", ":")) for row in batch))
        pipeline.ltrim(LIST_KEY, 0, self.keep - 1)
        pipeline.publish(CHANNEL, str(len(batch)))
        pipeline.execute()

    def discard(self) -> None:
        # redis-py drops a failed connection itself; the next batch makes a new one.
        pass

    def close(self) -> None:
        pass


class _Listener:
    """One process's subscription to the channel, on a daemon thread, made again whenever the
    connection is lost (after a backoff); every message, and every new subscription (which
    may have missed some), calls the log's change callbacks."""

    def __init__(self, log: RedisCallbackLog) -> None:
        self.log = log
        self.pid = os.getpid()
        self.stopping = threading.Event()
        self.subscribed = threading.Event()
        self.thread = threading.Thread(
            target=self._run, name=f"callback-log-listener-{self.pid}", daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.pid == os.getpid() and threading.current_thread() is not self.thread:
            self.thread.join(LISTEN_POLL_SECONDS * 3)

    def _run(self) -> None:
        delay = RECONNECT_FIRST_SECONDS
        failing = False
        while not self.stopping.is_set():
            client = _client(self.log.url, f"{KEY_PREFIX}listener:{self.pid}", retries=0)
            pubsub = client.pubsub()
            try:
                pubsub.subscribe(CHANNEL)
                while not self.stopping.is_set():
                    message = pubsub.get_message(timeout=LISTEN_POLL_SECONDS)
                    if message is None:
                        continue
                    subscribing = message["type"] == "subscribe"
                    if subscribing:
                        # Redis answers again: the page need not wait out a failed read.
                        self.log.forget_read_failure()
                    self.log.changed()
                    if subscribing:
                        # After changed(): whoever waits on it sees only later messages.
                        self.subscribed.set()
                        delay = RECONNECT_FIRST_SECONDS
                        if failing:
                            failing = False
                            self.log.logger.info(
                                "Change notifications from %s are back", self.log.where
                            )
            except Exception as exc:
                # Redis gone, or anything else: the page falls back to its cache's period.
                self.subscribed.clear()
                if not failing:
                    failing = True
                    self.log.logger.warning(
                        "Change notifications from %s stopped: %s; trying again every %g s at most",
                        self.log.where,
                        exc,
                        RECONNECT_MAX_SECONDS,
                    )
            finally:
                with suppress(Exception):
                    pubsub.close()
                    client.close()
            self.stopping.wait(delay)
            delay = min(delay * 2, RECONNECT_MAX_SECONDS)


class RedisCallbackLog(QueuedLog):
    """The callbacks in one Redis list shared by every host, newest first, at most `keep`."""

    def __init__(
        self,
        url: str,
        keep: int = DEFAULT_KEEP,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        max_batch: int = MAX_BATCH,
        logger: logging.Logger | None = None,
    ) -> None:
        super().__init__(keep, queue_size=queue_size, max_batch=max_batch, logger=logger)
        self.url = url
        self.where = f"Redis at {redacted(url)}"
        self._clients: dict[int, redis.Redis] = {}
        self._readers: dict[int, redis.Redis] = {}
        # (until when, the message): a failed read answers the next pages at once.
        self._read_failure: tuple[float, str] | None = None
        self._callbacks: list[Callable[[], None]] = []
        self._listener: _Listener | None = None
        self._listener_lock = threading.Lock()
        # A Redis that is down at start-up is no reason not to answer callbacks: the server
        # starts and says so, and the page shows the log's error until Redis answers.
        # A client of its own, closed at once: under gunicorn's --preload this runs in the
        # master, whose connection every worker would otherwise inherit and leave idle.
        pinger = _client(url, f"{KEY_PREFIX}start", 0, READ_TIMEOUT_SECONDS)
        try:
            pinger.ping()
        except _ERRORS as exc:
            self.logger.warning(
                "The callback log's %s does not answer (%s): callbacks are answered, "
                "but not recorded or listed until it does",
                self.where,
                exc,
            )
        finally:
            pinger.close()

    def client(self) -> redis.Redis:
        """This process's client (its pool is thread-safe; a forked child makes its own)."""
        pid = os.getpid()
        client = self._clients.get(pid)
        if client is None:
            client = self._clients.setdefault(pid, _client(self.url, f"{KEY_PREFIX}{pid}", 1))
        return client

    def reader(self) -> redis.Redis:
        """This process's client for the page's reads, which wait less than the writer."""
        pid = os.getpid()
        client = self._readers.get(pid)
        if client is None:
            name = f"{KEY_PREFIX}{pid}:reader"
            client = self._readers.setdefault(pid, _client(self.url, name, 1, READ_TIMEOUT_SECONDS))
        return client

    def forget_read_failure(self) -> None:
        self._read_failure = None

    def _read(self, command: Callable[[redis.Redis], object]) -> object:
        failure = self._read_failure
        if failure is not None and time.monotonic() < failure[0]:
            raise CallbackLogError(failure[1])
        try:
            result = command(self.reader())
        except _ERRORS as exc:
            message = f"{self.where}: {exc}"
            self._read_failure = (time.monotonic() + READ_FAILURE_SECONDS, message)
            raise CallbackLogError(message) from exc
        self._read_failure = None
        return result

    def _make_sink(self) -> _RedisSink:
        return _RedisSink(self.client(), self.keep)

    def recent(
        self,
        limit: int = 20,
        *,
        workspace_sid: str | None = None,
        workflow_sid: str | None = None,
    ) -> list[Row]:
        """The newest callbacks first, as plain dicts of FIELDS, this process's included.

        With workspace_sid, only that workspace's, as the SQLite log filters them.
        """
        if self._read_failure is None:
            # While reads fail, the writer is failing too: the page does not wait on it.
            self._flush_for_reading(READ_FLUSH_SECONDS)
        # Filtered, the whole list in one read: reads in parts would see rows that other
        # hosts pushed meanwhile shift from one part into the next.
        last = (limit if workspace_sid is None else self.keep) - 1
        values = self._read(lambda client: client.lrange(LIST_KEY, 0, last))
        found: list[Row] = []
        for value in values:
            row = _parsed(value)
            if row is None:
                continue
            if workspace_sid is None or in_workspace(row, workspace_sid, workflow_sid):
                found.append(row)
                if len(found) == limit:
                    break
        return found

    def count(self) -> int:
        self.flush()
        return int(self._read(lambda client: client.llen(LIST_KEY)))

    def close(self) -> None:
        super().close()
        listener = self._listener
        if listener is not None:
            listener.stop()
            # start_listening() after close() starts a new one.
            self._listener = None
        for clients in (self._clients, self._readers):
            client = clients.pop(os.getpid(), None)
            if client is not None:
                client.close()

    def on_change(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    def changed(self) -> None:
        for callback in list(self._callbacks):
            try:
                callback()
            except Exception:
                self.logger.exception("A callback log change callback failed")

    def _after_fork_in_child(self) -> None:
        super()._after_fork_in_child()
        self._listener_lock = threading.Lock()

    def start_listening(self) -> None:
        """Start this process's listener at the first call in the process (fork-safe)."""
        listener = self._listener
        if listener is not None and listener.pid == os.getpid():
            return
        with self._listener_lock:
            listener = self._listener
            if listener is None or listener.pid != os.getpid():
                self._listener = _Listener(self)


def _parsed(value: bytes) -> Row | None:
    # A value another program put under the key is skipped, not a broken page.
    try:
        row = json.loads(value)
    except ValueError:
        return None
    if not isinstance(row, dict):
        return None
    return {name: _text(row.get(name)) for name in FIELDS}


def _text(value: object) -> str | None:
    return None if value is None else str(value)
