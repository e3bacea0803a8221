"""Access log records with a worker's token in a request line, as werkzeug (a tuple of
arguments) and gunicorn (a dict of atoms: r the request line, q the query) write them."""

from __future__ import annotations

import logging

from taskrouter_sandbox.eventbridge.logs import HideTokens

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJBQyJ9.c2lnbmF0dXJl"


def _record(msg: str, args: object) -> logging.LogRecord:
    return logging.LogRecord("werkzeug", logging.INFO, __file__, 1, msg, args, None)  # type: ignore[arg-type]


def test_werkzeugs_request_line_keeps_its_place_and_loses_the_token() -> None:
    line = f"GET /v1/wschannels?token={TOKEN}&closeExistingSessions=false HTTP/1.1"
    record = _record('%s - - [%s] "%s" %s %s', ("127.0.0.1", "now", line, "101", "-"))
    assert HideTokens().filter(record)
    message = record.getMessage()
    assert TOKEN not in message
    assert "/v1/wschannels?token=[redacted]&closeExistingSessions=false" in message


def test_gunicorns_atoms_lose_the_token_too() -> None:
    atoms = {
        "r": f"GET /sandbox/v1/wschannels?token={TOKEN} HTTP/1.1",
        "q": f"token={TOKEN}",
        "s": 101,
    }
    record = _record("%(r)s %(s)s", ())
    record.args = atoms
    HideTokens().filter(record)
    assert TOKEN not in record.getMessage() and TOKEN not in str(record.args)
