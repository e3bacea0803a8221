// The console page's live part: polls the JSON state twice a second, re-renders the
// lists that changed, and sends the page's forms with fetch() so answers show in place.
"use strict";

(() => {
  const root = document.getElementById("console");
  if (!root) return;
  const urls = {
    state: root.dataset.stateUrl,
    updateWorker: root.dataset.updateWorkerUrl,
    updateTask: root.dataset.updateTaskUrl,
    accept: root.dataset.acceptUrl,
    reject: root.dataset.rejectUrl,
    createTask: root.dataset.createTaskUrl,
  };
  // The guide's action kinds (console_state.derive_guide) and the form each one posts to.
  const actionUrls = {
    update_worker: urls.updateWorker,
    accept: urls.accept,
    create_task: urls.createTask,
  };
  const POLL_MS = 500;
  const HIDDEN_POLL_MS = 5000;
  // A result banner goes after a few seconds, or once the state it reports has moved on
  // (but never sooner than a person can read it).
  const BANNER_MS = 6000;
  const PROBLEM_BANNER_MS = 15000;
  const BANNER_MIN_MS = 1500;
  const rendered = {};

  const { el } = window.pageDom;

  const code = (text) => el("code", {}, text || "-");
  const status = (text) => el("span", { class: `status status-${text}` }, text);

  function hidden(name, value) {
    return el("input", { type: "hidden", name, value });
  }

  function actionForm(action, fields, label, key, extraClass) {
    return el(
      "form",
      { class: "inline", method: "post", action, "data-fetch": true },
      Object.entries(fields).map(([name, value]) => hidden(name, value)),
      el("button", { type: "submit", "data-key": key, class: extraClass }, label),
    );
  }

  function age(seconds) {
    if (typeof seconds !== "number") return "-";
    if (seconds < 120) return `${seconds} s`;
    if (seconds < 7200) return `${Math.floor(seconds / 60)} min`;
    return `${Math.floor(seconds / 3600)} h`;
  }

  function time(iso) {
    // ISO 8601 UTC from TaskRouter: the time of day is what a person scans for.
    if (!iso) return "-";
    const match = /T(\d\d:\d\d:\d\d)/.exec(iso);
    return el("time", { datetime: iso, title: iso }, match ? match[1] : iso);
  }

  function emptyRow(columns, text) {
    return el("tr", { class: "empty" }, el("td", { colspan: columns }, text));
  }

  function workerRows(state) {
    if (!state.workers.length) return [emptyRow(2, "No workers in this workspace.")];
    return state.workers.map((worker) => {
      const selectId = `activity-${worker.sid}`;
      const select = el(
        "select",
        { id: selectId, name: "ActivitySid", "data-key": selectId },
        state.activities.map((activity) =>
          el(
            "option",
            { value: activity.sid, selected: activity.sid === worker.activity_sid },
            activity.friendly_name,
          ),
        ),
      );
      const form = el(
        "form",
        { class: "inline activity", method: "post", action: urls.updateWorker, "data-fetch": true },
        hidden("WorkerSid", worker.sid),
        el("label", { for: selectId, class: "visually-hidden" }, `Activity for ${worker.friendly_name}`),
        select,
        el("button", { type: "submit", "data-key": `set-${worker.sid}` }, "Set"),
      );
      return el(
        "tr",
        { "data-sid": worker.sid, "data-worker-name": worker.friendly_name },
        el("td", {}, worker.friendly_name, el("br"), code(worker.sid)),
        el(
          "td",
          {},
          el(
            "span",
            {
              class: `status activity-name ${worker.available ? "status-available" : "status-unavailable"}`,
            },
            worker.activity_name,
          ),
          form,
        ),
      );
    });
  }

  function taskRows(state) {
    if (!state.tasks.length) return [emptyRow(6, "No tasks yet.")];
    return state.tasks.map((task) => {
      const actions = [];
      if (task.assignment_status === "pending" || task.assignment_status === "reserved") {
        actions.push(
          actionForm(urls.updateTask, { TaskSid: task.sid, AssignmentStatus: "canceled" },
            "Cancel", `cancel-${task.sid}`),
        );
      }
      if (task.assignment_status === "assigned" || task.assignment_status === "wrapping") {
        actions.push(
          actionForm(urls.updateTask, { TaskSid: task.sid, AssignmentStatus: "completed" },
            "Complete", `complete-${task.sid}`),
        );
      }
      return el(
        "tr",
        { "data-sid": task.sid, "data-status": task.assignment_status },
        el("td", {}, code(task.sid)),
        el("td", { class: "task-status" }, status(task.assignment_status),
          task.reason ? el("br") : null, task.reason ? el("small", {}, task.reason) : null),
        el("td", { class: "task-queue" }, task.task_queue_friendly_name || "-"),
        el("td", {}, task.priority),
        el("td", {}, age(task.age)),
        el("td", {}, actions.length ? actions : "-"),
      );
    });
  }

  function answerForms(taskSid, reservationSid) {
    const fields = { TaskSid: taskSid, ReservationSid: reservationSid };
    return [
      actionForm(urls.accept, fields, "Accept", `accept-${reservationSid}`, "primary"),
      actionForm(urls.reject, fields, "Reject", `reject-${reservationSid}`),
    ];
  }

  function pendingRows(state) {
    if (!state.pending_reservations.length) return [emptyRow(5, "None pending.")];
    return state.pending_reservations.map((reservation) =>
      el(
        "tr",
        { "data-sid": reservation.sid, "data-task-sid": reservation.task_sid },
        el("td", {}, code(reservation.sid)),
        el("td", {}, code(reservation.task_sid)),
        el("td", {}, reservation.worker_name || code(reservation.worker_sid)),
        el("td", {}, time(reservation.date_created)),
        el("td", { class: "actions" }, answerForms(reservation.task_sid, reservation.sid)),
      ),
    );
  }

  function recentRows(state) {
    if (!state.recent_reservations.length) return [emptyRow(5, "None yet.")];
    return state.recent_reservations.map((reservation) =>
      el(
        "tr",
        { "data-sid": reservation.sid },
        el("td", {}, code(reservation.sid)),
        el("td", {}, code(reservation.task_sid)),
        el("td", {}, reservation.worker_name || "-"),
        el("td", {}, status(reservation.reservation_status)),
        el("td", {}, time(reservation.date)),
      ),
    );
  }

  function callbackRows(state) {
    // Buttons only while the reservation is still pending: the log keeps answered ones too.
    const pending = new Set(state.pending_reservations.map((reservation) => reservation.sid));
    return state.callbacks.map((callback) => {
      let actions = "-";
      if (callback.actionable && pending.has(callback.reservation_sid)) {
        const link = new URL(urls.accept, window.location.href);
        link.searchParams.set("TaskSid", callback.task_sid);
        link.searchParams.set("ReservationSid", callback.reservation_sid);
        actions = [
          ...answerForms(callback.task_sid, callback.reservation_sid).map((form) => {
            form.querySelector("button").dataset.key += "-callback";
            return form;
          }),
          el("br"),
          el("code", { class: "accept-link" }, link.href),
        ];
      }
      return el(
        "tr",
        { "data-sid": callback.reservation_sid },
        el("td", {}, callback.received_at),
        el("td", {}, code(callback.reservation_sid), el("br"), code(callback.task_sid)),
        el("td", {}, callback.worker_name ? `${callback.worker_name} ` : null,
          code(callback.worker_sid), el("br"), code(callback.task_queue_sid)),
        el("td", {}, code(callback.answer)),
        el("td", {}, actions),
      );
    });
  }

  function alertRows(state) {
    if (!state.alerts || !state.alerts.length) return [emptyRow(5, "No alerts.")];
    return state.alerts.map((alert) =>
      el(
        "tr",
        { "data-sid": alert.sid },
        el("td", {}, time(alert.date_created)),
        el("td", {}, status(alert.log_level)),
        el("td", {}, alert.error_code),
        el("td", {}, alert.alert_text),
        el("td", {}, alert.url ? code(alert.url) : "-"),
      ),
    );
  }

  function eventRows(state) {
    if (!state.events.length) return [emptyRow(3, "No events yet.")];
    return state.events.map((event) =>
      el(
        "tr",
        {},
        el("td", {}, time(event.event_date)),
        el("td", {}, code(event.event_type)),
        el("td", {}, event.description),
      ),
    );
  }

  function queueStatisticsRows(state) {
    if (!state.queue_statistics) return [emptyRow(4, "Not available.")];
    if (!state.queue_statistics.length) return [emptyRow(4, "No queues in this workspace.")];
    return state.queue_statistics.map((queue) =>
      el(
        "tr",
        { "data-sid": queue.sid, "data-queue-name": queue.friendly_name },
        el("td", {}, queue.friendly_name, el("br"), code(queue.sid)),
        el(
          "td",
          { class: "queue-waiting", title: `${queue.pending} pending, ${queue.reserved} reserved` },
          queue.waiting,
        ),
        el("td", { class: "queue-longest-wait" },
          queue.waiting ? age(queue.longest_waiting_age) : "-"),
        el("td", { class: "queue-workers" },
          `${queue.available_workers} / ${queue.eligible_workers}`),
      ),
    );
  }

  // The workspace's cumulative figures, in the order a person reads a shift's story.
  const CUMULATIVE_FIGURES = [
    ["tasks_created", "Tasks created"],
    ["tasks_completed", "Tasks completed"],
    ["tasks_canceled", "Tasks canceled"],
    ["reservations_created", "Reservations created"],
    ["reservations_accepted", "Reservations accepted"],
    ["reservations_rejected", "Reservations rejected"],
    ["reservations_timed_out", "Reservations timed out"],
    ["avg_task_acceptance_time", "Average time to accept", age],
  ];

  function cumulativeRows(state) {
    const figures = state.cumulative_statistics;
    if (!figures) return [emptyRow(2, "Not available.")];
    const until = figures.wait_duration_until_accepted;
    const rows = CUMULATIVE_FIGURES.map(([name, label, format]) => [
      name, label, format ? format(figures[name]) : figures[name],
    ]);
    rows.push(["longest_wait_until_accepted", "Longest wait until accepted", age(until.max)]);
    return rows.map(([name, label, value]) =>
      el("tr", { "data-figure": name }, el("th", { scope: "row" }, label),
        el("td", { class: "figure-value" }, value)),
    );
  }

  const sections = [
    ["queue-statistics", (state) => state.queue_statistics, queueStatisticsRows],
    ["cumulative-statistics", (state) => state.cumulative_statistics, cumulativeRows],
    ["workers", (state) => [state.workers, state.activities], workerRows],
    ["tasks", (state) => state.tasks, taskRows],
    ["pending-reservations", (state) => state.pending_reservations, pendingRows],
    ["recent-reservations", (state) => state.recent_reservations, recentRows],
    ["callbacks", (state) => [state.callbacks, state.pending_reservations], callbackRows],
    ["alerts", (state) => state.alerts, alertRows],
    ["events", (state) => state.events, eventRows],
  ];

  // Narrow screens show each row as a card: every cell carries its column's name.
  function labelCells(table) {
    const names = [...table.tHead.rows[0].cells].map((cell) => cell.textContent.trim());
    for (const row of table.tBodies[0].rows) {
      if (row.classList.contains("empty")) continue;
      [...row.cells].forEach((cell, index) => {
        cell.dataset.label = names[index] || "";
        // One box for the value, so the label and the value sit side by side.
        cell.replaceChildren(el("div", { class: "value" }, [...cell.childNodes]));
      });
    }
  }

  function renderSection(id, data, rows, state) {
    const table = document.getElementById(id);
    if (!table) return;
    const body = table.tBodies[0];
    const active = document.activeElement;
    // A person choosing in a select keeps it until they leave it.
    if (active && active.tagName === "SELECT" && body.contains(active)) return;
    const key = JSON.stringify(data);
    if (rendered[id] === key) return;
    const focusKey = active && body.contains(active) ? active.dataset.key : null;
    body.replaceChildren(...rows(state));
    labelCells(table);
    rendered[id] = key;
    if (focusKey) {
      const again = body.querySelector(`[data-key="${CSS.escape(focusKey)}"]`);
      if (again) again.focus();
    }
  }

  const PART_NAMES = { 1: "part one", 2: "part two" };

  function renderGuide(state) {
    const guide = state.guide;
    if (!guide) return;
    const key = JSON.stringify(guide);
    if (rendered.guide === key) return;
    rendered.guide = key;
    document.getElementById("guide-part").textContent = `(${PART_NAMES[guide.part] || ""})`;
    for (const item of document.querySelectorAll("#guide-steps .step")) {
      const number = Number(item.dataset.step);
      item.classList.toggle("step-done", number < guide.step);
      item.classList.toggle("step-current", number === guide.step);
      if (number === guide.step) item.setAttribute("aria-current", "step");
      else item.removeAttribute("aria-current");
    }
    const form = document.getElementById("guide-action");
    const button = document.getElementById("guide-button");
    const none = document.getElementById("guide-no-action");
    const action = guide.action;
    if (action && actionUrls[action.kind]) {
      // The same form and button each time: a keyboard user's focus stays on the next step.
      form.action = actionUrls[action.kind];
      for (const input of form.querySelectorAll("input[type=hidden]")) input.remove();
      form.prepend(...Object.entries(action.fields).map(([name, value]) => hidden(name, value)));
      button.textContent = action.label;
      button.dataset.kind = action.kind;
      if (action.sid) button.title = action.sid;
      else button.removeAttribute("title");
      form.hidden = false;
      none.hidden = true;
    } else {
      form.hidden = true;
      none.hidden = false;
      none.textContent = guide.why ? "Nothing can happen yet" : "Nothing to do";
    }
    for (const [id, text] of [["guide-why", guide.why], ["guide-note", guide.note]]) {
      const line = document.getElementById(id);
      line.textContent = text || "";
      line.hidden = !text;
    }
  }

  function renderWorkflow(state) {
    const workflow = state.workflow;
    const url = workflow && workflow.assignment_callback_url;
    const fallback = workflow && workflow.fallback_assignment_callback_url;
    document.getElementById("workflow-callback-url").textContent =
      url || (workflow ? "no URL" : "no workflow configured");
    document.getElementById("workflow-fallback").hidden = !fallback;
    document.getElementById("workflow-fallback-url").textContent = fallback || "";
    const problem = document.getElementById("workflow-problem");
    problem.hidden = !workflow || !!url;
    problem.textContent = "The workflow has no Assignment Callback URL: TaskRouter reserves " +
      "workers but tells nobody, so each reservation waits until it is accepted over REST.";
  }

  function render(state) {
    for (const [id, data, rows] of sections) renderSection(id, data(state), rows, state);
    // The agents' desks (desk.js) take their workers from the same state.
    document.dispatchEvent(new CustomEvent("console:state", { detail: state }));
    renderGuide(state);
    renderWorkflow(state);
    clearStaleBanners(state);
    const hasCallbacks = state.callbacks.length > 0;
    document.getElementById("callbacks").hidden = !hasCallbacks;
    document.getElementById("no-callbacks").hidden = hasCallbacks || !!state.callbacks_error;
    for (const key of ["queue_statistics", "cumulative_statistics"]) {
      const text = state[`${key}_error`];
      const line = document.getElementById(`${key.replaceAll("_", "-")}-problem`);
      line.hidden = !text;
      line.textContent = text ? `Not shown: ${text}` : "";
    }
    const problem = document.getElementById("callbacks-problem");
    problem.hidden = !state.callbacks_error;
    problem.textContent = state.callbacks_error || "";
  }

  function errorMessage(body, response) {
    if (body && body.error && body.error.message) return body.error.message;
    return `HTTP ${response.status}`;
  }

  async function readJson(response) {
    try {
      return await response.json();
    } catch {
      return null;
    }
  }

  const liveStatus = document.getElementById("live-status");
  const upstreamProblem = document.getElementById("upstream-problem");

  function showProblem(text) {
    upstreamProblem.textContent = text;
    upstreamProblem.hidden = false;
    liveStatus.textContent = "Not updating";
    liveStatus.className = "live live-problem";
  }

  let pollTimer = null;
  let polling = false;
  let pollAgain = false;

  async function poll() {
    // A poll asked for during another may read a state from before an action: run it after.
    if (polling) {
      pollAgain = true;
      return;
    }
    polling = true;
    pollAgain = false;
    clearTimeout(pollTimer);
    try {
      const response = await fetch(urls.state, { headers: { Accept: "application/json" } });
      const body = await readJson(response);
      if (response.ok && body) {
        render(body);
        upstreamProblem.hidden = true;
        liveStatus.textContent = `Live, updated ${new Date().toLocaleTimeString()}`;
        liveStatus.className = "live live-ok";
      } else {
        showProblem(`Could not read the workspace: ${errorMessage(body, response)}`);
      }
    } catch {
      showProblem("The server did not answer; retrying.");
    } finally {
      polling = false;
      const delay = pollAgain ? 0 : document.hidden ? HIDDEN_POLL_MS : POLL_MS;
      pollTimer = setTimeout(poll, delay);
    }
  }

  // What a banner reports, as a value the live state also shows, so it can tell it is stale.
  function reportedBy(body) {
    if (!body || typeof body !== "object") return null;
    if (body.reservation_sid && body.reservation_status) {
      return { kind: "reservation", sid: body.reservation_sid, value: body.reservation_status };
    }
    if (body.worker_sid && body.activity_name) {
      return { kind: "worker", sid: body.worker_sid, value: body.activity_name };
    }
    const taskSid = body.task_sid || body.sid;
    if (taskSid && body.assignment_status) {
      return { kind: "task", sid: taskSid, value: body.assignment_status };
    }
    return null;
  }

  function valueNow(reported, state) {
    const bySid = (list) => (list || []).find((item) => item.sid === reported.sid);
    if (reported.kind === "worker") return (bySid(state.workers) || {}).activity_name;
    if (reported.kind === "task") return (bySid(state.tasks) || {}).assignment_status;
    if (bySid(state.pending_reservations)) return "pending";
    return (bySid(state.recent_reservations) || {}).reservation_status;
  }

  // Shown banners: the answer element -> when it was shown and what it reports.
  const banners = new Map();

  function forgetBanner(answer) {
    const banner = banners.get(answer);
    if (banner) clearTimeout(banner.timer);
    banners.delete(answer);
  }

  function hideBanner(answer) {
    // A keyboard user on the banner's Dismiss button keeps it until they leave it.
    if (answer.contains(document.activeElement)) return false;
    forgetBanner(answer);
    answer.hidden = true;
    return true;
  }

  function armBanner(answer, ok, body) {
    forgetBanner(answer);
    const banner = { shownAt: Date.now(), reported: ok ? reportedBy(body) : null };
    const expire = () => {
      if (!hideBanner(answer)) banner.timer = setTimeout(expire, BANNER_MIN_MS);
    };
    banner.timer = setTimeout(expire, ok ? BANNER_MS : PROBLEM_BANNER_MS);
    banners.set(answer, banner);
  }

  function clearStaleBanners(state) {
    for (const [answer, banner] of banners) {
      if (!banner.reported || Date.now() - banner.shownAt < BANNER_MIN_MS) continue;
      const now = valueNow(banner.reported, state);
      if (now !== undefined && now !== banner.reported.value) hideBanner(answer);
    }
  }

  // The answer shows in the section of the form that was sent, above its list.
  function showAnswer(form, ok, title, body, final = true) {
    const section = form.closest("section");
    const answer = section && section.querySelector(".answer");
    if (!answer) return;
    const close = el("button", { type: "button", class: "dismiss" }, "Dismiss");
    close.addEventListener("click", () => {
      forgetBanner(answer);
      answer.hidden = true;
    });
    answer.replaceChildren(
      el("p", {}, el("strong", { class: "answer-title" }, title), close),
      body ? el("pre", { class: "answer-body" }, JSON.stringify(body)) : null,
    );
    answer.className = ok ? "answer answer-ok" : "answer answer-problem";
    answer.hidden = false;
    if (final) armBanner(answer, ok, body);
    else forgetBanner(answer);
  }

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-fetch")) return;
    event.preventDefault();
    const button = event.submitter || form.querySelector("button");
    const label = button ? button.textContent : "Request";
    // Disabling a button drops its focus: a keyboard user gets it back once it is enabled.
    const hadFocus = button && document.activeElement === button;
    if (button) button.disabled = true;
    // Clear the last answer first, so an old one is never read as this one's.
    showAnswer(form, true, `${label}: sending…`, null, false);
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body: new URLSearchParams(new FormData(form)),
        headers: { Accept: "application/json" },
      });
      const body = await readJson(response);
      const title = response.ok
        ? `${label}: done (HTTP ${response.status})`
        : `${label}: refused (HTTP ${response.status}) ${errorMessage(body, response)}`;
      showAnswer(form, response.ok, title, body);
    } catch {
      showAnswer(form, false, `${label}: the server did not answer`, null);
    } finally {
      if (button && button.isConnected) {
        button.disabled = false;
        const focusLost = !document.activeElement || document.activeElement === document.body;
        if (hadFocus && focusLost) button.focus();
      }
      poll();
    }
  });

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) poll();
  });
  poll();
})();
