"""Errors for requests too big or too broken to serve: the app's own JSON 414 and 431 for the
limits it enforces itself (request_limits.py), below both servers' limits, and what the server
layer still answers by itself for what never reaches the app (as the README lists it).

Werkzeug's dev server is driven through `make_server`, the server `flask run` starts; gunicorn
is started with the README's command.
"""

from __future__ import annotations

import http.client
import json
import socket

import pytest

from taskrouter_quickstart import callback_log, request_limits
from taskrouter_quickstart.request_limits import MAX_HEADER_COUNT, MAX_HEADER_LENGTH, MAX_URL_LENGTH
from tests.servers import gunicorn_app

ERROR_KEYS = {"status", "code", "message", "more_info"}
HOST = b"Host: 127.0.0.1\r\nConnection: close\r\n"


def url_of_length(length: int, path: str = "/healthz") -> str:
    """A path and query string `length` characters long together (as the app counts them)."""
    prefix = f"{path}?pad="
    return prefix + "a" * (length - len(prefix) + 1)  # "?" is not in PATH_INFO or QUERY_STRING


def padding_headers(count: int) -> dict[str, str]:
    return {f"X-Pad-{number}": "v" for number in range(count)}


def assert_json_error(status: int, headers, body: bytes, expected: int, code: str) -> None:
    assert status == expected, body
    assert headers["Content-Type"] == "application/json"
    error = json.loads(body)["error"]
    assert set(error) == ERROR_KEYS
    assert error["status"] == expected
    assert error["code"] == code
    assert error["more_info"] is None


# -- the app's limits, through the test client ---------------------------------------------------


@pytest.fixture
def sandbox_client(make_app):
    return make_app({}).test_client()


def test_a_url_over_the_limit_is_a_json_414(sandbox_client):
    response = sandbox_client.get(url_of_length(MAX_URL_LENGTH + 1))

    assert_json_error(
        response.status_code, response.headers, response.data, 414, "request_uri_too_large"
    )
    assert f"{MAX_URL_LENGTH:,} characters" in response.get_json()["error"]["message"]


def test_a_url_at_the_limit_is_served(sandbox_client):
    assert sandbox_client.get(url_of_length(MAX_URL_LENGTH)).status_code == 200


def test_a_5000_character_url_is_a_json_414(sandbox_client):
    # Under the dev server this reaches the app; gunicorn refuses it itself (below).
    response = sandbox_client.get(url_of_length(5000))
    assert response.status_code == 414
    assert response.get_json()["error"]["code"] == "request_uri_too_large"


def test_a_long_path_counts_like_a_long_query(sandbox_client):
    response = sandbox_client.get("/" + "a" * MAX_URL_LENGTH)
    assert response.status_code == 414


def test_too_many_headers_is_a_json_431(sandbox_client):
    response = sandbox_client.get("/healthz", headers=padding_headers(MAX_HEADER_COUNT + 1))

    assert_json_error(
        response.status_code,
        response.headers,
        response.data,
        431,
        "request_header_fields_too_large",
    )
    assert "header fields" in response.get_json()["error"]["message"]


def test_a_header_over_the_limit_is_a_json_431(sandbox_client):
    response = sandbox_client.get("/healthz", headers={"X-Pad": "a" * (MAX_HEADER_LENGTH + 1)})

    assert_json_error(
        response.status_code,
        response.headers,
        response.data,
        431,
        "request_header_fields_too_large",
    )
    assert f"{MAX_HEADER_LENGTH:,} characters" in response.get_json()["error"]["message"]


def test_a_9000_byte_header_is_a_json_431(sandbox_client):
    response = sandbox_client.get("/healthz", headers={"X-Big": "b" * 9000})
    assert response.status_code == 431


def test_a_header_at_the_limit_is_served(sandbox_client):
    response = sandbox_client.get("/healthz", headers={"X-Pad": "a" * MAX_HEADER_LENGTH})
    assert response.status_code == 200


def test_head_gets_the_status_without_a_body(sandbox_client):
    response = sandbox_client.head(url_of_length(MAX_URL_LENGTH + 1))
    assert response.status_code == 414
    assert response.data == b""


def test_a_refused_action_does_nothing(client, upstream):
    # `upstream` fails the test on any call to TaskRouter.
    response = client.get(url_of_length(MAX_URL_LENGTH + 1, "/create_task"))
    assert response.status_code == 414
    assert len(upstream.calls) == 0


def test_the_limits_come_before_the_callbacks_fast_path(make_app, sign, callback_params):
    app = make_app()
    log = app.extensions[callback_log.EXTENSION_KEY]
    response = app.test_client().post(
        "/assignment_callback",
        data=callback_params,
        headers={
            "X-Twilio-Signature": sign("http://localhost/assignment_callback", callback_params),
            "X-Pad": "a" * (MAX_HEADER_LENGTH + 1),
        },
    )
    assert response.status_code == 431
    assert log.count() == 0


def environ_with(**entries: object) -> dict[str, object]:
    return {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "QUERY_STRING": "", **entries}


def test_the_header_count_is_exact_at_the_limit():
    headers = {f"HTTP_X_{number}": "v" for number in range(MAX_HEADER_COUNT - 1)}
    # The dev server always sets these two, empty when the request has no such header.
    at_limit = environ_with(CONTENT_TYPE="text/plain", CONTENT_LENGTH="", **headers)
    assert request_limits.refusal(at_limit) is None
    over = environ_with(CONTENT_TYPE="text/plain", CONTENT_LENGTH="1", **headers)
    assert request_limits.refusal(over) is request_limits.TOO_MANY_HEADERS


def test_a_long_entry_that_is_no_header_is_not_refused():
    # A percent-encoded target is longer in RAW_URI than in PATH_INFO; it is not a header.
    environ = environ_with(PATH_INFO="/" + "a" * 3000, RAW_URI="/" + "%61" * 3000)
    assert request_limits.refusal(environ) is None


def test_a_long_content_type_is_a_header():
    environ = environ_with(CONTENT_TYPE="text/plain;" + "a" * MAX_HEADER_LENGTH)
    assert request_limits.refusal(environ) is request_limits.HEADER_TOO_LONG


# -- over a socket --------------------------------------------------------------------------------


def raw_exchange(port: int, request: bytes) -> bytes:
    """Send bytes as they are and read everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def raw_request(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, dict(response.getheaders()), response.read()


def get(target: str, headers: bytes = b"") -> bytes:
    return b"GET " + target.encode() + b" HTTP/1.1\r\n" + HOST + headers + b"\r\n"


def header_lines(count: int) -> bytes:
    return b"".join(b"X-Pad-%d: v\r\n" % number for number in range(count))


def post_with_content_length(value: bytes) -> bytes:
    return (
        b"POST /assignment_callback HTTP/1.1\r\n" + HOST + b"Content-Type: "
        b"application/x-www-form-urlencoded\r\nContent-Length: " + value + b"\r\n\r\nhello"
    )


# Requests each server refuses itself, before the app; HOST and Connection are 2 header fields.
MALFORMED_LINE = b"this is not http\r\n\r\n"
HTTP_09 = b"GET /healthz\r\n\r\n"


@pytest.fixture
def dev_server(live_app):
    """The app with its sandbox under Werkzeug's dev server, as `flask run` serves it."""
    return live_app().server.server_port


def test_dev_server_answers_the_apps_json_for_its_limits(dev_server):
    assert_json_error(
        *raw_request(dev_server, get(url_of_length(5000))), 414, "request_uri_too_large"
    )
    assert_json_error(
        *raw_request(dev_server, get(url_of_length(10_000))), 414, "request_uri_too_large"
    )
    big_header = b"X-Pad: " + b"a" * 9000 + b"\r\n"
    assert_json_error(
        *raw_request(dev_server, get("/healthz", big_header)),
        431,
        "request_header_fields_too_large",
    )
    assert_json_error(
        *raw_request(dev_server, get("/healthz", header_lines(90))),
        431,
        "request_header_fields_too_large",
    )


def test_what_the_dev_server_answers_itself(dev_server):
    """The README's list of the dev server's own answers, which no app code can change."""

    def html_error(answer: bytes, status_line: bytes) -> None:
        assert answer.startswith(status_line + b"\r\n"), answer[:200]
        assert b"Content-Type: text/html;charset=utf-8" in answer
        assert b"<!DOCTYPE HTML>" in answer

    # A request line over 65,536 characters.
    html_error(
        raw_exchange(dev_server, get(url_of_length(70_000))), b"HTTP/1.1 414 Request-URI Too Long"
    )
    # A header line over 65,536 characters.
    html_error(
        raw_exchange(dev_server, get("/healthz", b"X-Pad: " + b"a" * 70_000 + b"\r\n")),
        b"HTTP/1.1 431 Line too long",
    )
    # 100 header fields or more (98 + Host + Connection).
    html_error(
        raw_exchange(dev_server, get("/healthz", header_lines(98))),
        b"HTTP/1.1 431 Too many headers",
    )
    # 99 reach the app, which refuses more than its own limit.
    assert_json_error(
        *raw_request(dev_server, get("/healthz", header_lines(97))),
        431,
        "request_header_fields_too_large",
    )

    # A request line it cannot parse: an HTML page with no status line before it.
    for line in (MALFORMED_LINE, b"GET / HTTP/1.1 extra\r\n" + HOST + b"\r\n"):
        answer = raw_exchange(dev_server, line)
        assert answer.startswith(b"<!DOCTYPE HTML>"), answer[:200]
        assert b"Error code: 400" in answer
    answer = raw_exchange(dev_server, get("/healthz").replace(b"HTTP/1.1", b"HTTP/9.9"))
    assert answer.startswith(b"<!DOCTYPE HTML>") and b"Error code: 505" in answer

    # An HTTP/0.9 request is served as HTTP/0.9: the app's body alone, no status or headers.
    assert raw_exchange(dev_server, HTTP_09) == b'{"status":"ok"}\n'

    # A bad Content-Length reaches the app, which reads no body and answers JSON.
    for value in (b"abc", b"-5"):
        status, headers, _ = raw_request(dev_server, post_with_content_length(value))
        assert status == 403
        assert headers["Content-Type"] == "application/json"


# -- under gunicorn -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gunicorn_port(tmp_path_factory):
    """The app and its sandbox under the README's gunicorn command, on a free port."""
    with gunicorn_app(
        tmp_path_factory.mktemp("gunicorn"),
        TASKROUTER_BACKEND="sandbox",
        TWILIO_ACCOUNT_SID="AC" + "ef" * 16,
        TWILIO_AUTH_TOKEN="sandbox-token-for-the-server-layer-test",
    ) as server:
        yield server.port


def test_gunicorn_answers_the_apps_json_for_its_limits(gunicorn_port):
    assert_json_error(
        *raw_request(gunicorn_port, get(url_of_length(MAX_URL_LENGTH + 1))),
        414,
        "request_uri_too_large",
    )
    # 2 + 70 header fields: within gunicorn's 100.
    assert_json_error(
        *raw_request(gunicorn_port, get("/healthz", header_lines(70))),
        431,
        "request_header_fields_too_large",
    )
    # "X-Pad: " and 8,100 characters: within gunicorn's 8,190.
    assert_json_error(
        *raw_request(gunicorn_port, get("/healthz", b"X-Pad: " + b"a" * 8100 + b"\r\n")),
        431,
        "request_header_fields_too_large",
    )


@pytest.mark.parametrize(
    ("request_bytes", "status", "detail"),
    [
        (get(url_of_length(5000)), 414, b"Request Line is too large"),
        (get(url_of_length(10_000)), 414, b"Request Line is too large"),
        (get("/healthz", b"X-Pad: " + b"a" * 9000 + b"\r\n"), 431, b"fields size"),
        (get("/healthz", header_lines(99)), 431, b"limit request headers fields"),
        (get("/healthz", header_lines(118)), 431, b"limit request headers fields"),
        (MALFORMED_LINE, 400, b"Invalid Method"),
        (get("/healthz").replace(b"HTTP/1.1", b"HTTP/9.9"), 400, b"Invalid HTTP Version"),
        (HTTP_09, 400, b"Invalid Request Line"),
        (post_with_content_length(b"abc"), 400, b"Invalid HTTP Header"),
        (post_with_content_length(b"-5"), 400, b"Invalid HTTP Header"),
        (post_with_content_length(b"5\r\nContent-Length: 6"), 400, b"Invalid HTTP Header"),
    ],
    ids=[
        "url-5000",
        "url-10000",
        "header-9000",
        "101-headers",
        "120-headers",
        "malformed-line",
        "http-9.9",
        "http-0.9",
        "content-length-abc",
        "content-length-negative",
        "two-content-lengths",
    ],
)
def test_what_gunicorn_answers_itself(gunicorn_port, request_bytes, status, detail):
    """The README's list of gunicorn's own answers, which no app code can change."""
    answer_status, headers, body = raw_request(gunicorn_port, request_bytes)

    assert answer_status == status, body
    assert headers["Content-Type"] == "text/html"
    assert detail in body


def test_gunicorn_passes_100_header_fields_to_the_app(gunicorn_port):
    # gunicorn's limit is one field more; the app's own refuses them, in JSON.
    assert_json_error(
        *raw_request(gunicorn_port, get("/healthz", header_lines(98))),
        431,
        "request_header_fields_too_large",
    )
