"""The page at /: settings without secrets, the Assignment Callback URL to paste, the steps,
and recent callbacks with ready accept links whose forms work from the page itself.
"""

from __future__ import annotations

import html
import sqlite3
from html.parser import HTMLParser

import pytest

PUBLIC_HOST = "abc123.ngrok.app"
NGROK = {
    "X-Forwarded-For": "198.51.100.20",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": PUBLIC_HOST,
}


class Forms(HTMLParser):
    """The page's forms as (method, action, {input name: value})."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, str, dict[str, str]]] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "form":
            self.forms.append((attributes["method"], attributes["action"], {}))
        elif tag == "input" and self.forms:
            self.forms[-1][2][attributes["name"]] = attributes.get("value", "")


def forms_of(page: str) -> list[tuple[str, str, dict[str, str]]]:
    parser = Forms()
    parser.feed(page)
    return parser.forms


def record_callback(app, sids, **fields):
    app.extensions["callback_log"].record(
        {
            "reservation_sid": sids.reservation,
            "task_sid": sids.task,
            "worker_sid": sids.worker,
            "task_queue_sid": sids.task_queue,
            "workflow_sid": sids.workflow,
            "task_attributes": '{"selected_language": "es"}',
            "worker_attributes": '{"languages": ["en", "es"]}',
            "answer": "{}",
            **fields,
        }
    )


def test_page_shows_the_settings_without_secrets(make_app, account_environ, sids, control_token):
    environ = {
        **account_environ,
        "TWILIO_API_KEY": sids.api_key,
        "TWILIO_API_SECRET": "api-secret-value",
        "CONTROL_TOKEN": control_token,
    }
    response = make_app(environ).test_client().get("/")

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    for shown in (sids.account, sids.workspace, sids.workflow, sids.api_key, "manual"):
        assert shown in page
    for secret in (account_environ["TWILIO_AUTH_TOKEN"], "api-secret-value", control_token):
        assert secret not in page
    assert "Twilio account" in page


def test_local_page_shows_its_callback_url_with_the_ngrok_note(client):
    page = client.get("/").get_data(as_text=True)
    assert '<code id="callback-url">http://localhost/assignment_callback</code>' in page
    assert "ngrok http 5000" in page
    assert "None yet." in page


def test_page_through_ngrok_shows_the_public_callback_url_and_carries_the_token(
    make_app, control_token, sids
):
    app = make_app(CONTROL_TOKEN=control_token)
    record_callback(app, sids)
    response = app.test_client().get(f"/?token={control_token}", headers=NGROK)

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert f'<code id="callback-url">https://{PUBLIC_HOST}/assignment_callback</code>' in page
    assert "Twilio cannot reach" not in page
    accept_link = (
        f"https://{PUBLIC_HOST}/accept_reservation?TaskSid={sids.task}"
        f"&ReservationSid={sids.reservation}&token={control_token}"
    )
    assert html.escape(accept_link) in page
    assert ("post", f"/create_task?token={control_token}", {"selected_language": "es"}) in (
        forms_of(page)
    )


def test_page_with_public_base_url(make_app):
    page = make_app(PUBLIC_BASE_URL=f"https://{PUBLIC_HOST}").test_client().get("/")
    text = page.get_data(as_text=True)
    assert f'<code id="callback-url">https://{PUBLIC_HOST}/assignment_callback</code>' in text


def test_recent_callbacks_with_ready_accept_links(app, client, sids):
    record_callback(app, sids)
    page = client.get("/").get_data(as_text=True)

    assert sids.reservation in page
    assert sids.worker in page
    accept_link = (
        f"http://localhost/accept_reservation?TaskSid={sids.task}&ReservationSid={sids.reservation}"
    )
    assert f'<code class="accept-link">{html.escape(accept_link)}</code>' in page
    actions = [action for method, action, _ in forms_of(page) if method == "post"]
    assert accept_link in actions
    assert accept_link.replace("accept_", "reject_") in actions


def test_accept_mode_rows_have_no_accept_button(make_app, sids):
    app = make_app(ASSIGNMENT_MODE="accept")
    record_callback(app, sids, answer='{"instruction": "accept"}')
    page = app.test_client().get("/").get_data(as_text=True)
    assert sids.reservation in page
    assert "accept_reservation?" not in page
    assert "accepted at once" in page


def test_malformed_sids_get_no_link_and_are_escaped(app, client, sids):
    record_callback(app, sids, reservation_sid="<script>alert(1)</script>")
    page = client.get("/").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page
    assert "accept_reservation?" not in page


def test_an_unreadable_callback_log_still_renders(app, client, monkeypatch):
    def broken(limit=20):
        raise sqlite3.DatabaseError("file is not a database")

    monkeypatch.setattr(app.extensions["callback_log"], "recent", broken)
    response = client.get("/")
    assert response.status_code == 200
    assert "file is not a database" in response.get_data(as_text=True)


@pytest.mark.parametrize("use_form", ["create", "accept"])
def test_the_page_forms_work_as_a_browser_posts_them(
    app,
    client,
    sids,
    upstream,
    tasks_url,
    reservation_url,
    task_json,
    reservation_json,
    sent_form,
    use_form,
):
    record_callback(app, sids)
    page = client.get("/").get_data(as_text=True)
    browser = {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"}

    if use_form == "create":
        upstream.post(tasks_url, json=task_json(), status=201)
        [(_, action, inputs)] = [form for form in forms_of(page) if "create_task" in form[1]]
        response = client.post(action, data=inputs, headers=browser)
        assert response.status_code == 201
        assert sent_form(upstream.calls[0])["Attributes"] == ['{"selected_language":"es"}']
    else:
        upstream.post(reservation_url, json=reservation_json())
        [(_, action, inputs)] = [form for form in forms_of(page) if "accept_res" in form[1]]
        response = client.post(action, data=inputs, headers=browser)
        assert response.status_code == 200
        assert response.get_json()["reservation_status"] == "accepted"
        assert sent_form(upstream.calls[0]) == {"ReservationStatus": ["accepted"]}
