"""The console page in a real browser (Debian's Chromium driven by Playwright) against the app
and its local sandbox served over HTTP: the quickstart clicked through, narrow screens, CSRF.
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

from taskrouter_quickstart.app import create_app
from tests.conftest import LiveApp

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
SPANISH_QUEUE = "Customer Care Requests - Spanish"
# Long enough for a callback round trip and the page's next poll, on a slow shared machine.
LIVE_TIMEOUT_MS = 10_000

if not CHROMIUM.exists():
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing and CI must run the browser tests", pytrace=False)
    pytest.skip(
        f"{CHROMIUM} is missing: install Debian's chromium package (make test does so as root)",
        allow_module_level=True,
    )

from playwright.sync_api import expect, sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


class Page:
    """A browser tab that records every console error and uncaught exception it sees."""

    def __init__(self, browser, name: str, **context_options) -> None:
        self.context = browser.new_context(**context_options)
        self.context.set_default_timeout(LIVE_TIMEOUT_MS)
        self.page = self.context.new_page()
        self.name = name
        self.problems: list[str] = []
        self.page.on(
            "console",
            lambda message: (
                self.problems.append(f"console {message.type}: {message.text}")
                if message.type in ("error", "warning")
                else None
            ),
        )
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.step = 0

    def screenshot(self, label: str, full_page: bool = True) -> None:
        self.step += 1
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{self.name}-{self.step:02d}-{label}.png"
        self.page.screenshot(path=str(path), full_page=full_page)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser):
    opened: list[Page] = []

    def open_tab(name: str, **context_options) -> Page:
        page = Page(browser, name, **context_options)
        opened.append(page)
        return page

    yield open_tab
    for page in opened:
        page.close()


def worker_row(page, name: str):
    return page.locator(f'#workers tr[data-worker-name="{name}"]')


def set_activity(page, name: str, activity: str, shown: str | None = None) -> None:
    """Choose the activity in the worker's row and wait until the row shows `shown`."""
    row = worker_row(page, name)
    row.get_by_label(f"Activity for {name}").select_option(label=activity)
    row.get_by_role("button", name="Set").click()
    answer = page.locator("#workers-answer")
    expect(answer.locator(".answer-title")).to_have_text("Set: done (HTTP 200)")
    expect(answer.locator(".answer-body")).to_contain_text(f'"activity_name":"{activity}"')
    expect(row.locator(".activity-name")).to_have_text(shown or activity)


def create_spanish_task(page) -> str:
    page.get_by_label("Language").select_option("es")
    page.locator("form").filter(has=page.get_by_label("Language")).get_by_role(
        "button", name="Create task"
    ).click()
    expect(page.locator("#tasks-answer .answer-title")).to_contain_text(
        "Create task: done (HTTP 201)"
    )
    # The answer is the task just created; the live list shows it within a poll.
    answer = json.loads(page.locator("#tasks-answer .answer-body").inner_text())
    task_sid = answer["sid"]
    expect(page.locator(f'#tasks tr[data-sid="{task_sid}"]')).to_be_visible()
    return task_sid


def test_the_quickstart_clicked_through_on_the_page(live_app, tab):
    server = live_app()
    browser_tab = tab("quickstart")
    page = browser_tab.page
    page.goto(f"{server.url}/")
    expect(page.locator("#live-status")).to_contain_text("Live")
    expect(worker_row(page, "Alice")).to_be_visible()
    browser_tab.screenshot("opened")

    set_activity(page, "Alice", "Offline")
    browser_tab.screenshot("alice-offline")

    task_sid = create_spanish_task(page)
    task = page.locator(f'#tasks tr[data-sid="{task_sid}"]')
    expect(task.locator(".task-status")).to_have_text("pending")
    expect(task.locator(".task-queue")).to_have_text(SPANISH_QUEUE)
    browser_tab.screenshot("task-pending")

    # The live list re-renders as the task ages; a keyboard user's focus stays put.
    cancel = task.get_by_role("button", name="Cancel")
    cancel.focus()
    age = task.locator("td").nth(4).inner_text()
    expect(task.locator("td").nth(4)).not_to_have_text(age)
    expect(cancel).to_be_focused()

    # Idle, and at once Reserved: only she speaks Spanish and the task is waiting.
    set_activity(page, "Alice", "Idle", shown="Reserved")
    # No reload: the poll brings the reservation, and the callback the sandbox made.
    pending = page.locator(f'#pending-reservations tr[data-task-sid="{task_sid}"]')
    expect(pending).to_be_visible()
    expect(pending).to_contain_text("Alice")
    expect(task.locator(".task-status")).to_have_text("reserved")
    reservation_sid = pending.get_attribute("data-sid")
    expect(page.locator(f'#callbacks tr[data-sid="{reservation_sid}"]')).to_contain_text("{}")
    browser_tab.screenshot("reservation-pending")

    # By keyboard, with the focus ring showing.
    pending.get_by_role("button", name="Reject").focus()
    page.keyboard.press("Shift+Tab")
    expect(pending.get_by_role("button", name="Accept")).to_be_focused()
    assert page.evaluate("document.activeElement.matches(':focus-visible')")
    browser_tab.screenshot("accept-focused", full_page=False)
    page.keyboard.press("Enter")
    expect(page.locator("#reservations-answer .answer-title")).to_contain_text(
        "Accept: done (HTTP 200)"
    )
    expect(page.locator("#reservations-answer .answer-body")).to_contain_text(
        '"reservation_status":"accepted"'
    )
    expect(task.locator(".task-status")).to_have_text("assigned")
    expect(worker_row(page, "Alice").locator(".activity-name")).to_have_text("Busy")
    expect(page.locator(f'#recent-reservations tr[data-sid="{reservation_sid}"]')).to_contain_text(
        "accepted"
    )
    expect(page.locator("#pending-reservations tr.empty")).to_have_text("None pending.")
    answered = page.locator(f'#callbacks tr[data-sid="{reservation_sid}"]')
    expect(answered.get_by_role("button", name="Accept")).to_have_count(0)
    browser_tab.screenshot("task-assigned")

    # Done with it: complete the task from its row.
    task.get_by_role("button", name="Complete").click()
    expect(task.locator(".task-status")).to_contain_text("completed")
    browser_tab.screenshot("task-completed")

    # Then accept mode: the callback accepts, nobody clicks Accept.
    accept_server = live_app(ASSIGNMENT_MODE="accept")
    page.goto(f"{accept_server.url}/")
    expect(page.locator("#mode")).to_have_text("accept")
    expect(worker_row(page, "Alice")).to_be_visible()
    set_activity(page, "Alice", "Idle")
    task_sid = create_spanish_task(page)
    task = page.locator(f'#tasks tr[data-sid="{task_sid}"]')
    expect(task.locator(".task-status")).to_have_text("assigned")
    expect(worker_row(page, "Alice").locator(".activity-name")).to_have_text("Busy")
    expect(page.locator("#callbacks tbody tr").first).to_contain_text('"instruction": "accept"')
    browser_tab.screenshot("accept-mode-assigned")

    assert browser_tab.problems == []


def queue_row(page, name: str):
    return page.locator(f'#queue-statistics tr[data-queue-name="{name}"]')


def figure(page, name: str):
    return page.locator(f'#cumulative-statistics tr[data-figure="{name}"] .figure-value')


def test_the_queues_live_figures_and_the_last_hour_follow_the_quickstart(live_app, tab):
    """REST API: TaskQueue Statistics and REST API: Workspace Statistics on the page: the
    Spanish queue's waiting task, its longest wait growing, its workers available and
    eligible, then the last hour's counts once the reservation is accepted; no reload."""
    server = live_app()
    browser_tab = tab("statistics")
    page = browser_tab.page
    page.goto(f"{server.url}/")
    spanish = queue_row(page, SPANISH_QUEUE)
    expect(spanish.locator(".queue-waiting")).to_have_text("0")
    # Alice speaks Spanish; Bob does not. Both start Offline.
    expect(spanish.locator(".queue-workers")).to_have_text("0 / 1")
    expect(
        queue_row(page, "Customer Care Requests - English").locator(".queue-workers")
    ).to_have_text("0 / 2")
    expect(figure(page, "tasks_created")).to_have_text("0")
    browser_tab.screenshot("no-tasks")

    task_sid = create_spanish_task(page)
    expect(spanish.locator(".queue-waiting")).to_have_text("1")
    # The longest wait grows as the task waits, poll after poll.
    longest = spanish.locator(".queue-longest-wait")
    expect(longest).to_have_text(re.compile(r"^\d+ s$"))
    shown = longest.inner_text()
    expect(longest).not_to_have_text(shown)
    expect(figure(page, "tasks_created")).to_have_text("1")
    browser_tab.screenshot("task-waiting")

    set_activity(page, "Alice", "Idle", shown="Reserved")
    pending = page.locator(f'#pending-reservations tr[data-task-sid="{task_sid}"]')
    # Reserved is still waiting: nobody has accepted it, and Alice is no longer available.
    expect(spanish.locator(".queue-waiting")).to_have_text("1")
    expect(spanish.locator(".queue-workers")).to_have_text("0 / 1")
    expect(figure(page, "reservations_created")).to_have_text("1")

    pending.get_by_role("button", name="Accept").click()
    expect(page.locator(f'#tasks tr[data-sid="{task_sid}"] .task-status')).to_have_text("assigned")
    expect(spanish.locator(".queue-waiting")).to_have_text("0")
    expect(spanish.locator(".queue-longest-wait")).to_have_text("-")
    expect(figure(page, "reservations_accepted")).to_have_text("1")
    expect(figure(page, "avg_task_acceptance_time")).to_have_text(re.compile(r"^\d+ s$"))
    expect(page.locator("#queue-statistics-problem")).to_be_hidden()
    expect(page.locator("#cumulative-statistics-problem")).to_be_hidden()
    browser_tab.screenshot("task-accepted")
    assert browser_tab.problems == []


def test_figures_that_could_not_be_read_say_why_and_the_lists_stay(live_app, tab):
    """The state as it comes when TaskRouter refuses the statistics calls (a rate limit):
    each part says so where its figures would be, and the workers are still listed."""
    server = live_app()
    browser_tab = tab("statistics-refused")
    page = browser_tab.page
    refused = "Unable to fetch record: Too Many Requests"

    def without_statistics(route):
        state = route.fetch().json()
        for key in ("queue_statistics", "cumulative_statistics"):
            state[key], state[f"{key}_error"] = None, refused
        route.fulfill(json=state)

    page.route("**/console/state", without_statistics)
    page.goto(f"{server.url}/")
    expect(worker_row(page, "Alice")).to_be_visible()
    for part in ("queue-statistics", "cumulative-statistics"):
        expect(page.locator(f"#{part}-problem")).to_have_text(f"Not shown: {refused}")
        expect(page.locator(f"#{part} tr.empty")).to_have_text("Not available.")
    expect(page.locator("#live-status")).to_contain_text("Live")
    browser_tab.screenshot("refused")
    # A poll may be in flight through the route: let it go before the tab closes.
    page.unroute_all(behavior="ignoreErrors")
    assert browser_tab.problems == []


def test_narrow_screen_has_no_horizontal_overflow(live_app, tab):
    server = live_app()
    server.workspace.tasks.create(
        workflow_sid=server.app.config["TWILIO_WORKFLOW_SID"],
        attributes='{"selected_language": "en", "customer": "a rather long customer name"}',
    )
    # Bob takes it: a pending reservation fills that list too.
    server.set_activity("Bob", "Idle")
    browser_tab = tab("narrow", viewport={"width": 375, "height": 800})
    page = browser_tab.page
    page.goto(f"{server.url}/")
    expect(page.locator("#tasks tbody tr[data-sid]")).to_have_count(1)
    expect(page.locator("#pending-reservations tbody tr[data-sid]")).to_have_count(1)
    expect(worker_row(page, "Bob")).to_be_visible()
    browser_tab.screenshot("375px")
    for section in ("queue-statistics", "workers", "tasks", "pending-reservations", "events"):
        page.locator(f"#{section}").scroll_into_view_if_needed()
        browser_tab.screenshot(f"375px-{section}", full_page=False)

    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    # The lists sit in boxes that scroll sideways, which would hide a table too wide for
    # the screen from the check above: none of them may need to scroll.
    too_wide = page.evaluate(
        """[...document.querySelectorAll('.scroll')]
            .filter((box) => box.scrollWidth > box.clientWidth)
            .map((box) => `${box.closest('section').id}: ${box.scrollWidth}>${box.clientWidth}`)"""
    )
    assert too_wide == []
    # Keyboard users reach the controls: the first Tab stops on a real control.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.tagName") in ("A", "BUTTON", "SELECT", "INPUT")
    assert browser_tab.problems == []


def test_a_cross_site_form_post_is_refused(live_app, tab):
    server = live_app()
    attacker_page = f"""<!doctype html><html><body>
<form id="f" method="post" action="{server.url}/create_task">
<input name="selected_language" value="es"></form>
<script>document.getElementById("f").submit();</script>
</body></html>"""

    def attacker(environ, start_response):
        return Response(attacker_page, mimetype="text/html")(environ, start_response)

    other_site = make_server("127.0.0.1", 0, attacker, threaded=True)
    thread = threading.Thread(target=other_site.serve_forever, daemon=True)
    thread.start()
    try:
        browser_tab = tab("cross-site")
        page = browser_tab.page
        # localhost and 127.0.0.1 are different sites to the browser.
        with page.expect_response(lambda response: "/create_task" in response.url) as answer:
            page.goto(f"http://localhost:{other_site.server_port}/")
        assert answer.value.status == 403
        assert answer.value.json()["error"]["code"] == "cross_site_request"
        browser_tab.screenshot("refused")
    finally:
        other_site.shutdown()
        thread.join(5)
        other_site.server_close()
    assert server.workspace.tasks.list() == []


def test_an_unreachable_taskrouter_shows_a_message_not_a_broken_page(tmp_path, tab, refused_port):
    app = create_app(
        {
            "TESTING": True,
            "ENVIRON": {
                "TWILIO_ACCOUNT_SID": "AC" + "0123456789abcdef" * 2,
                "TWILIO_AUTH_TOKEN": "f" * 32,
                "TWILIO_WORKSPACE_SID": "WS" + "1" * 32,
                "TWILIO_WORKFLOW_SID": "WW" + "2" * 32,
                "TASKROUTER_BASE_URL": f"http://127.0.0.1:{refused_port}",
                "INSTANCE_PATH": str(tmp_path / "instance"),
            },
        }
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        browser_tab = tab("unreachable")
        page = browser_tab.page
        page.goto(f"http://127.0.0.1:{server.server_port}/")
        problem = page.locator("#upstream-problem")
        expect(problem).to_be_visible()
        expect(problem).to_contain_text("Could not reach TaskRouter")
        expect(page.locator("#live-status")).to_have_text("Not updating")
        # The rest of the page still works: the settings and the callback URL are there.
        expect(page.locator("#callback-url")).to_be_visible()
        browser_tab.screenshot("message")
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()
    # The browser reports each failed poll (HTTP 502) itself; nothing else may appear.
    others = [p for p in browser_tab.problems if "status of 502" not in p]
    assert others == []


# -- the guide: the whole quickstart walked by its next-action button alone ---------------


def next_action(page, label: str, by_keyboard: bool = False) -> None:
    """Wait for the guide to offer `label`, take it, and wait for its answer."""
    button = page.locator("#guide-button")
    expect(button).to_have_text(label)
    if by_keyboard:
        button.focus()
        page.keyboard.press("Enter")
    else:
        button.click()
    expect(page.locator("#guide-answer .answer-title")).to_contain_text(f"{label}: done")


def expect_step(page, step: int, name: str) -> None:
    current = page.locator("#guide-steps .step-current")
    expect(current).to_have_attribute("data-step", str(step))
    expect(current).to_have_text(f"{step}{name}")
    expect(page.locator("#guide-steps .step-done")).to_have_count(step - 1)


# The guide as a person sees it: the current step and the offered action.
GUIDE_SHOWN = """() => [
    document.querySelector("#guide-steps .step-current")?.dataset.step ?? "",
    document.getElementById("guide-action").hidden
        ? "" : document.getElementById("guide-button").textContent,
]"""


def newest_task(page):
    return page.locator("#tasks tbody tr[data-sid]").first


def assert_fits_375(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    guide = page.locator("#guide").bounding_box()
    assert guide["x"] >= 0 and guide["x"] + guide["width"] <= 375


def test_the_guide_walks_both_parts_of_the_quickstart(live_app, tab):
    server = live_app()
    wide = tab("guide-1280", viewport={"width": 1280, "height": 900})
    narrow = tab("guide-375", viewport={"width": 375, "height": 800})
    page = wide.page

    def shoot(label: str) -> None:
        # The narrow tab polls the same server: wait until it shows the same step.
        shown = page.evaluate(GUIDE_SHOWN)
        narrow.page.wait_for_function(
            f"(shown) => JSON.stringify(({GUIDE_SHOWN})()) === JSON.stringify(shown)", arg=shown
        )
        wide.screenshot(label, full_page=False)
        narrow.screenshot(label, full_page=False)
        assert_fits_375(narrow.page)

    for browser_tab in (wide, narrow):
        browser_tab.page.goto(f"{server.url}/")
        expect(browser_tab.page.locator("#live-status")).to_contain_text("Live")
    expect(page.locator("#workflow-callback-url")).to_have_text(f"{server.url}/assignment_callback")

    # Part one, manual mode. Alice starts Offline, so the task waits for her.
    expect(page.locator("#guide-steps .step-current")).to_have_count(0)
    shoot("start")
    next_action(page, "Create a task")
    expect_step(page, 1, "Task created")
    expect(newest_task(page).locator(".task-status")).to_have_text("pending")
    expect(page.locator("#guide-why")).to_have_text(
        "The task waits in Customer Care Requests - Spanish: no eligible worker is available "
        "(Alice is Offline)."
    )
    shoot("task-pending")

    next_action(page, "Set Alice to Idle")
    expect_step(page, 3, "Worker reserved")
    expect(newest_task(page).locator(".task-status")).to_have_text("reserved")
    expect(page.locator("#guide-why")).to_be_hidden()
    # The banner said Alice is Idle; she is Reserved now, so it clears itself.
    expect(page.locator("#guide-answer")).to_be_hidden()
    reservation = page.locator("#pending-reservations tbody tr[data-sid]")
    expect(reservation).to_have_count(1)
    reservation_sid = reservation.get_attribute("data-sid")
    expect(page.locator(f'#callbacks tr[data-sid="{reservation_sid}"]')).to_contain_text("{}")
    shoot("reservation-pending")

    next_action(page, f"Accept reservation {reservation_sid[:8]}…", by_keyboard=True)
    expect_step(page, 5, "Task assigned")
    expect(newest_task(page).locator(".task-status")).to_have_text("assigned")
    expect(worker_row(page, "Alice").locator(".activity-name")).to_have_text("Busy")
    expect(page.locator("#guide-button")).to_be_focused()
    expect(page.locator("#guide-note")).to_contain_text("ASSIGNMENT_MODE=accept")
    shoot("task-assigned")

    # Part two: the quickstart answers accept in its callback and restarts its server; the
    # sandbox database (and the first task, still assigned) carries over. The tabs leave
    # first: a poll of the stopped server would be a console error of this test's making.
    for browser_tab in (wide, narrow):
        browser_tab.page.goto("about:blank")
    server.close()
    server = LiveApp(Path(server.app.config["INSTANCE_PATH"]), ASSIGNMENT_MODE="accept")
    try:
        for browser_tab in (wide, narrow):
            browser_tab.page.goto(f"{server.url}/")
            expect(browser_tab.page.locator("#mode")).to_have_text("accept")
        expect(page.locator("#guide-part")).to_have_text("(part two)")
        expect_step(page, 5, "Task assigned")
        shoot("part-two")

        next_action(page, "Set Alice to Offline")
        expect(worker_row(page, "Alice").locator(".activity-name")).to_have_text("Offline")
        next_action(page, "Create another task")
        expect_step(page, 1, "Task created")
        second_task = newest_task(page)
        expect(second_task.locator(".task-status")).to_have_text("pending")
        shoot("second-task-pending")

        # In accept mode the callback accepts: the task is assigned at once, nobody clicks.
        next_action(page, "Set Alice to Idle")
        expect_step(page, 5, "Task assigned")
        expect(second_task.locator(".task-status")).to_have_text("assigned")
        expect(worker_row(page, "Alice").locator(".activity-name")).to_have_text("Busy")
        expect(page.locator("#callbacks tbody tr").first).to_contain_text('"instruction": "accept"')
        expect(page.locator("#tasks .task-status", has_text="assigned")).to_have_count(2)
        expect(page.locator("#guide-note")).to_contain_text("Both parts are done")
        expect(page.locator("#guide-button")).to_be_hidden()
        shoot("both-parts-done")
        narrow.screenshot("both-parts-done-full")
    finally:
        server.close()

    assert wide.problems == []
    assert narrow.problems == []
