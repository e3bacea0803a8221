"""Benchmark 1: the assignment callback under the README's gunicorn command, signatures checked,
beside a bare Flask app under the same settings, both loaded in turn by the same generator.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import tempfile
import time
import timeit
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from flask import Flask
from twilio.request_validator import RequestValidator

from bench.common import (
    BenchError,
    Report,
    Row,
    Server,
    free_port,
    gunicorn_argv,
    gunicorn_command_from_readme,
    median,
    number,
    wait_all_ready,
)
from bench.loadgen import LoadResult, choose_generator, run_load
from taskrouter_quickstart import config
from taskrouter_quickstart.routes.assignment import ANSWERS, CALLBACK_LOG_LINE, LOGGED_SIDS

PATH = "/assignment_callback"
TARGET_RATIO = 0.9
TARGET_P99_MS = 10.0


@dataclass(frozen=True)
class Size:
    connections: int = 16
    duration: float = 10.0
    # Five: gunicorn spreads the keep-alive connections over its workers unevenly from one
    # load to the next, which moves a single figure far more than the median.
    rounds: int = 5
    warmup: float = 1.0


FULL = Size()
SMOKE = Size(duration=0.3, rounds=1, warmup=0.0)


def _sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


@dataclass(frozen=True)
class Account:
    """A throwaway, well-formed Twilio account: the callback makes no REST call with it."""

    account_sid: str
    auth_token: str
    workspace_sid: str
    workflow_sid: str

    @classmethod
    def make(cls) -> Account:
        return cls(_sid("AC"), secrets.token_hex(16), _sid("WS"), _sid("WW"))


def callback_params(account: Account) -> dict[str, str]:
    """What TaskRouter posts for a new reservation of the quickstart's Spanish task."""
    return {
        "AccountSid": account.account_sid,
        "WorkspaceSid": account.workspace_sid,
        "WorkflowSid": account.workflow_sid,
        "TaskQueueSid": _sid("WQ"),
        "WorkerSid": _sid("WK"),
        "WorkerAttributes": json.dumps({"languages": ["en", "es"], "contact_uri": "client:alice"}),
        "TaskSid": _sid("WT"),
        "TaskAttributes": json.dumps({"selected_language": "es", "call_sid": _sid("CA")}),
        "TaskAge": "3",
        "TaskPriority": "0",
        "ReservationSid": _sid("WR"),
        "Timestamp": str(int(time.time())),
    }


def server_environment(account: Account, port: int) -> dict[str, str]:
    """The process environment with every setting given, so `.env` cannot change the run."""
    env = {key: value for key, value in os.environ.items() if key not in config.SETTING_NAMES}
    # An empty value counts as unset and, being a real variable, wins over `.env`.
    env.update({name: "" for name in config.SETTING_NAMES})
    env.update(
        TWILIO_ACCOUNT_SID=account.account_sid,
        TWILIO_AUTH_TOKEN=account.auth_token,
        TWILIO_WORKSPACE_SID=account.workspace_sid,
        TWILIO_WORKFLOW_SID=account.workflow_sid,
        ASSIGNMENT_MODE="accept",
        VALIDATE_SIGNATURES="true",
        HOST="127.0.0.1",
        PORT=str(port),
    )
    return env


def _post(url: str, body: str, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def check_answers(ours: str, peer: str, body: str, headers: dict[str, str]) -> None:
    """Both answer the same JSON to the signed body, and ours refuses a wrong signature."""
    expected = json.loads(ANSWERS["accept"])
    for name, url in (("this server", ours), ("bare Flask", peer)):
        status, text = _post(url, body, headers)
        if status != 200 or json.loads(text) != expected:
            raise BenchError(f"{name} answered {status} {text[:300]!r} to the signed callback")
    forged = {**headers, "X-Twilio-Signature": "AAAA" + headers["X-Twilio-Signature"][4:]}
    status, text = _post(ours, body, forged)
    if status != 403:
        raise BenchError(f"this server answered {status} to a forged signature: is checking on?")


def run(size: Size = FULL, *, generator: str = "auto") -> Report:
    generator = choose_generator(generator)
    command, source = gunicorn_command_from_readme()
    account = Account.make()
    with tempfile.TemporaryDirectory(prefix="bench-callback-") as scratch_dir:
        scratch = Path(scratch_dir)
        ours_port, peer_port = free_port(), free_port()
        # A literal argument to the factory: the callback log goes to the scratch folder.
        ours_spec = f"app:create_app({{'CALLBACK_LOG_PATH': '{scratch / 'callbacks.sqlite3'}'}})"
        ours = Server(
            "this server",
            gunicorn_argv(command, ours_port, ours_spec),
            ours_port,
            server_environment(account, ours_port),
            scratch / "ours.log",
        )
        peer = Server(
            "bare Flask",
            gunicorn_argv(command, peer_port, "bench.bare_app:create_app()"),
            peer_port,
            server_environment(account, peer_port),
            scratch / "peer.log",
        )
        with ours, peer:
            ours.start()
            peer.start()
            wait_all_ready([ours, peer])
            ours_url, peer_url = ours.url + PATH, peer.url + PATH
            params = callback_params(account)
            body = urlencode(params)
            headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                "User-Agent": "TwilioProxy/1.1",
                # Signed for the exact URL the generator hits.
                "X-Twilio-Signature": RequestValidator(account.auth_token).compute_signature(
                    ours_url, params
                ),
            }
            check_answers(ours_url, peer_url, body, headers)

            def load(server: Server, duration: float) -> Loaded:
                cpu = server.cpu_seconds()
                result = run_load(
                    server.url + PATH,
                    body,
                    headers,
                    connections=size.connections,
                    duration=duration,
                    generator=generator,
                )
                cpu_us = (server.cpu_seconds() - cpu) / max(result.requests, 1) * 1e6
                return Loaded(result, cpu_us)

            if size.warmup:
                load(ours, size.warmup)
                load(peer, size.warmup)
            rounds: list[tuple[Loaded, Loaded]] = []
            for index in range(size.rounds):
                # Alternate which goes first, so a drift in the machine's load hits both.
                if index % 2 == 0:
                    mine = load(ours, size.duration)
                    theirs = load(peer, size.duration)
                else:
                    theirs = load(peer, size.duration)
                    mine = load(ours, size.duration)
                rounds.append((mine, theirs))
            floor = handler_floor(ours_url, params, account.auth_token)
    return _report(rounds, floor, size, command, source, generator)


@dataclass(frozen=True)
class Loaded:
    """One load on one server, and the server's CPU time per request answered (us)."""

    result: LoadResult
    cpu_us: float


@dataclass(frozen=True)
class HandlerFloor:
    """Microseconds to parse the form, to compute its signature and to log the line."""

    parse: float
    signature: float
    log_line: float

    @property
    def total(self) -> float:
        return self.parse + self.signature + self.log_line


def handler_floor(url: str, params: dict[str, str], auth_token: str) -> HandlerFloor:
    """The least work a signed, logged callback adds to a bare handler, timed in this
    process: medians of 5 timings of each part."""
    body = urlencode(params)
    validator = RequestValidator(auth_token)
    # The log line through a Flask app's default handler, as the server writes it.
    logger = Flask("bench_log_line").logger
    logger.setLevel(logging.INFO)
    sids = [params.get(name, "") for name in LOGGED_SIDS]
    times = 2000

    def per_call(work: Callable[[], object]) -> float:
        return median(timeit.repeat(work, number=times, repeat=5)) / times * 1e6

    with open(os.devnull, "w") as null, contextlib.redirect_stderr(null):
        log_line = per_call(lambda: logger.info(CALLBACK_LOG_LINE, *sids, ANSWERS["accept"]))
    return HandlerFloor(
        parse=per_call(lambda: dict(parse_qsl(body, keep_blank_values=True))),
        signature=per_call(lambda: validator.compute_signature(url, params)),
        log_line=log_line,
    )


def _report(
    loads: list[tuple[Loaded, Loaded]],
    floor: HandlerFloor,
    size: Size,
    command: str,
    source: str,
    generator: str,
) -> Report:
    rounds = [(mine.result, theirs.result) for mine, theirs in loads]

    def med(index: int, attribute: str) -> float:
        return median(getattr(pair[index], attribute) for pair in rounds)

    ours_rps, peer_rps = med(0, "requests_per_second"), med(1, "requests_per_second")
    ours_p99 = med(0, "p99_ms")
    ours_cpu = median(mine.cpu_us for mine, _ in loads)
    peer_cpu = median(theirs.cpu_us for _, theirs in loads)
    ours_errors = sum(pair[0].errors for pair in rounds)
    peer_errors = sum(pair[1].errors for pair in rounds)
    report = Report("1. Assignment callback", "this server", "bare Flask")
    report.add(
        Row(
            "requests/s",
            ours_rps,
            "req/s",
            peer_rps,
            target=f"ratio >= {TARGET_RATIO}",
            met=ours_rps / peer_rps >= TARGET_RATIO,
            headline=True,
        ),
        Row("p50 latency", med(0, "p50_ms"), "ms", med(1, "p50_ms")),
        Row(
            "p99 latency",
            ours_p99,
            "ms",
            med(1, "p99_ms"),
            target=f"< {TARGET_P99_MS:g} ms",
            met=ours_p99 < TARGET_P99_MS,
            headline=True,
        ),
        Row("server CPU per request", ours_cpu, "us", peer_cpu),
        Row(
            "failed or non-2xx",
            ours_errors,
            "requests",
            peer_errors,
            target="0",
            met=ours_errors == 0,
        ),
    )
    report.notes.append(
        f"CPU: a ratio of {TARGET_RATIO} allows ours {peer_cpu / TARGET_RATIO - peer_cpu:.0f} us "
        f"of server CPU per request more than bare Flask's {peer_cpu:.0f} us; it used "
        f"{ours_cpu - peer_cpu:.0f} us more. Checking the signature and logging the callback's "
        f"line cost {floor.total:.0f} us here: {floor.parse:.0f} us to parse the form, "
        f"{floor.signature:.0f} us for twilio's compute_signature and {floor.log_line:.0f} us "
        "for the log line through Flask's default handler (timed in the benchmark's process)."
    )
    report.notes += [
        f"Generator: {generator}, {size.connections} connections, {size.duration:g} s per load, "
        f"{len(rounds)} rounds alternating which server goes first; figures are medians.",
        f"Server command ({source}): `{command}`; the peer is bench/bare_app.py under the same "
        "settings.",
        "Ours runs in Twilio mode with a throwaway account, ASSIGNMENT_MODE=accept, "
        "VALIDATE_SIGNATURES=true, its callback log in a temporary folder; each request carries "
        "a realistic form body signed with RequestValidator.compute_signature for the URL hit.",
        "Rounds (ours / peer req/s, p99 ms): "
        + "; ".join(
            f"{number(a.requests_per_second)} / {number(b.requests_per_second)}, "
            f"{number(a.p99_ms)} / {number(b.p99_ms)}"
            for a, b in rounds
        ),
    ]
    return report
