"""Alice's and Bob's desks on the console page: Twilio's Worker SDK (the unmodified browser build
of twilio-taskrouter that `make test` installs) in Debian's Chromium, driven by Playwright,
against the app and its local sandbox served over HTTP.

What the desks show and do is the SDK's documented API (twilio.github.io/twilio-taskrouter.js:
Worker, Reservation, Task, Activity); what TaskRouter does with it is its REST pages' (Task
Reservation resource: a rejected reservation's task is routed again, and WorkerActivitySid is
the activity a rejecting worker moves to, so a worker who gives none is not moved on).
"""

from __future__ import annotations

import json
import os
import time

import pytest

from taskrouter_quickstart.routes.desk import DEFAULT_SDK_PATH
from tests import test_console_browser as console_browser

if not DEFAULT_SDK_PATH.exists():
    if os.environ.get("CI"):
        pytest.fail(f"{DEFAULT_SDK_PATH} is missing and CI must run the desks", pytrace=False)
    pytest.skip(
        "Twilio's Worker SDK is not installed (.cache/desk): `make test` installs it with npm",
        allow_module_level=True,
    )

from playwright.sync_api import expect

pytestmark = pytest.mark.browser

# The console's browser and its tabs, which record every console error.
browser = console_browser.browser
tab = console_browser.tab

# The figure: a reservation shows in the desk within a second of the worker going Idle.
POP_UP_MS = 1000


def desk(page, name: str):
    return page.locator(f'#desk-panes .desk[data-worker-name="{name}"]')


def log_in(page, name: str) -> None:
    pane = desk(page, name)
    pane.get_by_role("button", name=f"Log in as {name}").click()
    expect(pane.locator(".desk-connection")).to_have_text("Connected")


def choose_activity(page, name: str, activity: str) -> None:
    """The desk's own control: Activity.setAsCurrent() through the SDK."""
    pane = desk(page, name)
    pane.get_by_label(f"{name}'s activity").select_option(label=activity)
    pane.get_by_role("button", name="Set").click()


def create_task(page, language: str) -> str:
    """The page's own Create task button: POST /create_task, as the quickstart creates one."""
    page.get_by_label("Language").select_option(language)
    page.locator("form").filter(has=page.get_by_label("Language")).get_by_role(
        "button", name="Create task"
    ).click()
    expect(page.locator("#tasks-answer .answer-title")).to_contain_text(
        "Create task: done (HTTP 201)"
    )
    body = page.locator("#tasks-answer .answer-body").inner_text()
    return json.loads(body)["sid"]


def reservation_in(page, name: str, task_sid: str):
    return desk(page, name).locator(f'.desk-reservation[data-task-sid="{task_sid}"]')


def test_alice_takes_the_quickstarts_task_at_her_desk_and_a_rejected_one_goes_to_bob(live_app, tab):
    server = live_app()
    browser_tab = tab("desks")
    page = browser_tab.page
    page.goto(f"{server.url}/")
    expect(desk(page, "Alice")).to_be_visible()
    expect(desk(page, "Bob")).to_be_visible()
    browser_tab.screenshot("logged-out")

    log_in(page, "Alice")
    alice = desk(page, "Alice")
    expect(alice.locator(".desk-activity-name")).to_have_text("Offline")

    # Part one of the quickstart from the agent's chair: the task waits for Alice.
    task_sid = create_task(page, "es")
    assert server.workspace.tasks(task_sid).fetch().assignment_status == "pending"
    browser_tab.screenshot("alice-logged-in")

    started = time.monotonic()
    choose_activity(page, "Alice", "Idle")
    offer = reservation_in(page, "Alice", task_sid)
    expect(offer).to_be_visible(timeout=POP_UP_MS)
    popped_up = time.monotonic() - started
    assert popped_up < POP_UP_MS / 1000, popped_up
    expect(offer).to_have_attribute("data-status", "pending")
    expect(alice.locator(".desk-activity-name")).to_have_text("Reserved")
    browser_tab.screenshot("reservation-popped-up")

    offer.get_by_role("button", name="Accept").click()
    expect(offer).to_have_attribute("data-status", "accepted")
    assert server.workspace.tasks(task_sid).fetch().assignment_status == "assigned"
    assert server.workspace.workers(server.workers["Alice"]).fetch().activity_name == "Busy"
    expect(alice.locator(".desk-activity-name")).to_have_text("Busy")
    # The console's own lists say the same at their next poll.
    expect(page.locator(f'#tasks tr[data-sid="{task_sid}"] .task-status')).to_have_text("assigned")
    browser_tab.screenshot("task-assigned")

    # Task.wrapUp(), then Task.complete(reason).
    offer.get_by_role("button", name="Wrap up").click()
    expect(offer.locator(".desk-task-status")).to_have_text(" (task wrapping)")
    assert server.workspace.tasks(task_sid).fetch().assignment_status == "wrapping"
    offer.get_by_role("button", name="Complete").click()
    expect(offer).to_have_attribute("data-status", "completed")
    done = server.workspace.tasks(task_sid).fetch()
    assert (done.assignment_status, done.reason) == ("completed", "Done at Alice's desk")
    browser_tab.screenshot("task-completed")

    # A rejection: an English task is offered to Alice (Bob is Offline); Bob logs in and goes
    # Idle; Alice rejects, and the task is routed again, to Bob.
    choose_activity(page, "Alice", "Idle")
    expect(alice.locator(".desk-activity-name")).to_have_text("Idle")
    english_sid = create_task(page, "en")
    english_offer = reservation_in(page, "Alice", english_sid)
    expect(english_offer).to_have_attribute("data-status", "pending")
    log_in(page, "Bob")
    bob = desk(page, "Bob")
    choose_activity(page, "Bob", "Idle")
    expect(bob.locator(".desk-activity-name")).to_have_text("Idle")
    browser_tab.screenshot("english-task-offered-to-alice")

    english_offer.get_by_role("button", name="Reject").click()
    expect(english_offer).to_have_attribute("data-status", "rejected")
    bobs_offer = reservation_in(page, "Bob", english_sid)
    expect(bobs_offer).to_have_attribute("data-status", "pending")
    expect(bob.locator(".desk-activity-name")).to_have_text("Reserved")
    # No WorkerActivitySid given: Alice is back where she was before the offer.
    expect(alice.locator(".desk-activity-name")).to_have_text("Idle")
    statuses = {
        r.worker_name: r.reservation_status
        for r in server.workspace.tasks(english_sid).reservations.list()
    }
    assert statuses == {"Alice": "rejected", "Bob": "pending"}
    browser_tab.screenshot("rejected-task-offered-to-bob")

    bobs_offer.get_by_role("button", name="Accept").click()
    expect(bobs_offer).to_have_attribute("data-status", "accepted")
    task = server.workspace.tasks(english_sid).fetch()
    assert task.assignment_status == "assigned"
    expect(bob.locator(".desk-activity-name")).to_have_text("Busy")
    browser_tab.screenshot("bob-assigned")

    assert browser_tab.problems == []


# The token's lifetime in this test, in seconds: the SDK emits tokenExpired 5 s before the end.
SHORT_TTL = 8


def test_a_desk_renews_its_token_and_carries_on_past_the_first_tokens_end(live_app, tab):
    """Worker: tokenExpired, then updateToken(); TaskRouter.js v2's reconnect page: a socket
    closed at the token's end opens again with the token updated, and the worker's state is
    fetched anew. Tokens here live SHORT_TTL seconds of real time, as the SDK's timers do."""
    server = live_app()
    browser_tab = tab("desk-token")
    page = browser_tab.page
    logins = []

    def short_lived(route):
        logins.append(route.request.post_data)
        route.continue_(post_data=f"{route.request.post_data}&Ttl={SHORT_TTL}")

    page.route("**/desk/token", short_lived)
    page.goto(f"{server.url}/")
    log_in(page, "Alice")
    alice = desk(page, "Alice")
    connection = alice.locator(".desk-connection")
    expect(connection).to_have_text("Connected (token renewed)", timeout=SHORT_TTL * 1000)
    # The first token's socket is closed at its end; the SDK opens another with the new one.
    expect(connection).to_have_text("Connected", timeout=(SHORT_TTL + 5) * 1000)
    assert len(logins) >= 2
    expect(alice.locator(".desk-problem")).to_be_hidden()

    task_sid = create_task(page, "es")
    choose_activity(page, "Alice", "Idle")
    # Tokens this short make the SDK reconnect every SHORT_TTL seconds, and an event sent
    # while it reconnects is lost, as on Twilio (the reconnect page): the desk then shows the
    # reservation from the state the SDK fetches on reconnecting, at most a token later.
    expect(reservation_in(page, "Alice", task_sid)).to_have_attribute(
        "data-status", "pending", timeout=(SHORT_TTL + 5) * 1000
    )
    browser_tab.screenshot("after-renewal")
    page.unroute_all(behavior="ignoreErrors")
    assert browser_tab.problems == []


def test_a_refused_token_shows_as_the_sdks_error_in_the_desk(live_app, tab):
    """Worker: error. The bridge refuses a token signed with another key (HTTP 401 to the
    websocket's upgrade), which the SDK reports as its error event, and the desk shows it."""
    server = live_app()
    browser_tab = tab("desk-refused")
    page = browser_tab.page

    def forged(route):
        login = route.fetch().json()
        header, payload, _ = login["token"].split(".")
        route.fulfill(json={**login, "token": f"{header}.{payload}.forged-signature"})

    page.route("**/desk/token", forged)
    page.goto(f"{server.url}/")
    alice = desk(page, "Alice")
    alice.get_by_role("button", name="Log in as Alice").click()
    expect(alice.locator(".desk-problem")).to_have_text(
        "The Worker SDK: Could not connect to Twilio's servers."
    )
    expect(alice.locator(".desk-connection")).not_to_have_text("Connected")
    browser_tab.screenshot("refused")
    alice.get_by_role("button", name="Log out").click()
    expect(alice.locator(".desk-connection")).to_have_text("Logged out")
    page.unroute_all(behavior="ignoreErrors")
    # The browser reports the refused upgrade, and the SDK logs its error; nothing else.
    others = [
        problem
        for problem in browser_tab.problems
        if "failed: HTTP Authentication failed" not in problem
        and "WebSocket error occurred" not in problem
        # Logging out while the SDK retries closes a socket still connecting.
        and "WebSocket is closed before the connection is established" not in problem
    ]
    assert others == []
    assert browser_tab.problems, "the refusal left no trace in the console"
