"""X-Twilio-Signature on the assignment callback: the URL Twilio called (directly, behind a proxy,
with PUBLIC_BASE_URL, with escapes in the raw query string), and every way it can be wrong.
"""

from __future__ import annotations

import hashlib
import json

import pytest

CALLBACK = "/assignment_callback"
LOCAL_URL = "http://localhost/assignment_callback"
PUBLIC_HOST = "abc123.ngrok.app"
PUBLIC_URL = f"https://{PUBLIC_HOST}/assignment_callback"
PROXY_HEADERS = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": PUBLIC_HOST}


def assert_refused(response, problem: str) -> None:
    assert response.status_code == 403
    assert response.is_json
    error = response.get_json()["error"]
    assert error["status"] == 403
    assert error["code"] == "invalid_signature"
    assert error["message"].startswith(f"X-Twilio-Signature {problem} for ")
    assert "PUBLIC_BASE_URL" in error["message"]


def test_valid_signature_is_answered(client, sign, callback_params, upstream):
    signature = sign(LOCAL_URL, callback_params)
    response = client.post(
        CALLBACK, data=callback_params, headers={"X-Twilio-Signature": signature}
    )
    assert response.status_code == 200
    assert response.get_json() == {}
    assert len(upstream.calls) == 0


def test_missing_signature_is_refused_with_a_hint_in_the_log(client, callback_params, caplog):
    response = client.post(CALLBACK, data=callback_params)
    assert_refused(response, "is missing")
    assert "Hint: set PUBLIC_BASE_URL" in caplog.text
    assert "TWILIO_AUTH_TOKEN" in caplog.text


def test_signature_made_with_another_token_is_refused(client, sign, callback_params, caplog):
    signature = sign(LOCAL_URL, callback_params, token="e" * 32)
    response = client.post(
        CALLBACK, data=callback_params, headers={"X-Twilio-Signature": signature}
    )
    assert_refused(response, "does not match")
    # The log helps without repeating what was presented.
    assert signature not in caplog.text


@pytest.mark.parametrize(
    ("name", "value"),
    [("ReservationSid", "WR" + "9" * 32), ("TaskAttributes", '{"selected_language": "en"}')],
)
def test_tampered_parameter_is_refused(client, sign, callback_params, name, value):
    signature = sign(LOCAL_URL, callback_params)
    tampered = {**callback_params, name: value}
    response = client.post(CALLBACK, data=tampered, headers={"X-Twilio-Signature": signature})
    assert_refused(response, "does not match")


def test_extra_parameter_is_refused(client, sign, callback_params):
    signature = sign(LOCAL_URL, callback_params)
    extra = {**callback_params, "Injected": "1"}
    response = client.post(CALLBACK, data=extra, headers={"X-Twilio-Signature": signature})
    assert_refused(response, "does not match")


def test_behind_a_proxy_the_forwarded_https_url_is_checked(client, sign, callback_params):
    headers = {**PROXY_HEADERS, "X-Twilio-Signature": sign(PUBLIC_URL, callback_params)}
    response = client.post(CALLBACK, data=callback_params, headers=headers)
    assert response.status_code == 200

    headers = {**PROXY_HEADERS, "X-Twilio-Signature": sign(LOCAL_URL, callback_params)}
    response = client.post(CALLBACK, data=callback_params, headers=headers)
    assert_refused(response, "does not match")


def test_public_base_url_is_the_url_checked(make_app, sign, callback_params):
    client = make_app(PUBLIC_BASE_URL=f"https://{PUBLIC_HOST}").test_client()

    signature = sign(PUBLIC_URL, callback_params)
    response = client.post(
        CALLBACK, data=callback_params, headers={"X-Twilio-Signature": signature}
    )
    assert response.status_code == 200

    signature = sign(LOCAL_URL, callback_params)
    response = client.post(
        CALLBACK, data=callback_params, headers={"X-Twilio-Signature": signature}
    )
    assert_refused(response, "does not match")


@pytest.mark.parametrize(
    "query",
    ["name=O%27Brien", "city=S%C3%A3o%20Paulo&tilde=%7E", "path=%2Fa%2Fb&list=%5B1%5D"],
)
def test_raw_query_string_is_signed_as_sent(client, sign, callback_params, query):
    # Werkzeug's request.url would turn %27 into ' and %7E into ~, and the signature with it.
    url = f"{PUBLIC_URL}?{query}"
    headers = {**PROXY_HEADERS, "X-Twilio-Signature": sign(url, callback_params)}
    response = client.post(f"{CALLBACK}?{query}", data=callback_params, headers=headers)
    assert response.status_code == 200


def test_raw_query_string_with_public_base_url(make_app, sign, callback_params):
    client = make_app(PUBLIC_BASE_URL=f"https://{PUBLIC_HOST}").test_client()
    url = f"{PUBLIC_URL}?name=O%27Brien"
    response = client.post(
        f"{CALLBACK}?name=O%27Brien",
        data=callback_params,
        headers={"X-Twilio-Signature": sign(url, callback_params)},
    )
    assert response.status_code == 200


def test_signature_with_the_port_in_the_url(client, sign, callback_params):
    # Twilio may sign https://host:443/...; the validator tries the URL with and without it.
    signature = sign(f"https://{PUBLIC_HOST}:443/assignment_callback", callback_params)
    headers = {**PROXY_HEADERS, "X-Twilio-Signature": signature}
    response = client.post(CALLBACK, data=callback_params, headers=headers)
    assert response.status_code == 200


def test_get_callback_signs_the_url_only(client, sign, sids):
    query = f"TaskSid={sids.task}&ReservationSid={sids.reservation}"
    signature = sign(f"{LOCAL_URL}?{query}")
    response = client.get(f"{CALLBACK}?{query}", headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200
    assert response.get_json() == {}


def test_json_body_signed_with_body_sha256(client, sign):
    body = json.dumps({"TaskSid": "WT" + "3" * 32})
    digest = hashlib.sha256(body.encode()).hexdigest()
    url = f"{LOCAL_URL}?bodySHA256={digest}"
    headers = {"X-Twilio-Signature": sign(url)}
    response = client.post(
        f"{CALLBACK}?bodySHA256={digest}",
        data=body,
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code == 200

    response = client.post(
        f"{CALLBACK}?bodySHA256={digest}",
        data=body.replace("3", "4"),
        content_type="application/json",
        headers=headers,
    )
    assert_refused(response, "does not match")


@pytest.mark.parametrize("query", ["bodySHA256=", "bodySHA256"])
def test_empty_body_sha256_is_refused_not_a_crash(client, query):
    response = client.post(
        f"{CALLBACK}?{query}",
        data="hello",
        content_type="text/plain",
        headers={"X-Twilio-Signature": "bm9wZQ=="},
    )
    assert_refused(response, "does not match")


def test_refused_callback_is_not_recorded(app, client, callback_params):
    client.post(CALLBACK, data=callback_params, headers={"X-Twilio-Signature": "bm9wZQ=="})
    assert app.extensions["callback_log"].count() == 0


def test_validation_switched_off_accepts_and_warns_each_time(make_app, callback_params, caplog):
    client = make_app(VALIDATE_SIGNATURES="false").test_client()
    for _ in range(2):
        response = client.post(CALLBACK, data=callback_params)
        assert response.status_code == 200
    warnings = [
        record
        for record in caplog.records
        if record.levelname == "WARNING" and "VALIDATE_SIGNATURES is false" in record.getMessage()
    ]
    assert len(warnings) == 2


def test_api_key_account_checks_signatures_with_the_auth_token(
    make_app, account_environ, sign, callback_params, sids
):
    environ = {**account_environ, "TWILIO_API_KEY": sids.api_key, "TWILIO_API_SECRET": "s3cret"}
    client = make_app(environ).test_client()
    signature = sign(LOCAL_URL, callback_params)
    response = client.post(
        CALLBACK, data=callback_params, headers={"X-Twilio-Signature": signature}
    )
    assert response.status_code == 200

    signature = sign(LOCAL_URL, callback_params, token="s3cret")
    response = client.post(
        CALLBACK, data=callback_params, headers={"X-Twilio-Signature": signature}
    )
    assert_refused(response, "does not match")
