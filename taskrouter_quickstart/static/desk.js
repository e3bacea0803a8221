// The agents' desks: a pane per worker of the workspace that runs Twilio's Worker SDK
// (twilio-taskrouter, the npm package's own browser build) as an agent's desktop does. The
// workers come from the console's live state, which console.js hands out as "console:state".
"use strict";

(() => {
  const section = document.getElementById("desks");
  const panes = document.getElementById("desk-panes");
  if (!section || !panes) return;
  const sectionProblem = document.getElementById("desks-problem");
  // The bundle defines Twilio.TaskRouter, the name Twilio's pages use.
  const sdk = window.Twilio && window.Twilio.TaskRouter;
  if (!sdk || !sdk.Worker) {
    sectionProblem.textContent = "Twilio's Worker SDK did not load, so the desks are off.";
    sectionProblem.hidden = false;
    panes.replaceChildren();
    return;
  }
  const tokenUrl = section.dataset.tokenUrl;
  // A reservation that is over stays in its desk a while, so the agent sees how it ended.
  const FINISHED_SHOWN = 3;
  const OPEN_STATUSES = new Set(["pending", "accepted", "wrapping"]);
  const RESERVATION_EVENTS = [
    "accepted", "rejected", "timeout", "canceled", "rescinded", "completed", "wrapup",
  ];
  const TASK_EVENTS = ["updated", "canceled", "completed", "wrapup"];

  const { el } = window.pageDom;

  function messageOf(error) {
    return (error && error.message) || String(error);
  }

  // A worker's login from this server: its token and the event bridge to give the SDK.
  async function fetchLogin(workerSid) {
    const response = await fetch(tokenUrl, {
      method: "POST",
      headers: { Accept: "application/json" },
      body: new URLSearchParams({ WorkerSid: workerSid }),
    });
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    if (!response.ok || !body || !body.token) {
      const message = body && body.error && body.error.message;
      throw new Error(message || `HTTP ${response.status}`);
    }
    return body;
  }

  class Desk {
    constructor(worker) {
      this.sid = worker.sid;
      this.name = worker.friendly_name;
      this.worker = null; // the SDK's Worker while logged in
      this.reservations = new Map(); // sid -> the SDK's Reservation, in the order they came
      this.renderedKey = null;
      this.build();
    }

    build() {
      const id = `desk-${this.sid}`;
      this.connection = el(
        "p", { class: "desk-connection", role: "status", "aria-live": "polite" }, "Logged out",
      );
      this.loginButton = el(
        "button", { type: "button", class: "primary desk-login" }, `Log in as ${this.name}`,
      );
      this.logoutButton = el("button", { type: "button", class: "desk-logout", hidden: true },
        "Log out");
      this.activityName = el("span", { class: "status desk-activity-name" }, "-");
      this.activitySelect = el("select", { id: `${id}-activity`, disabled: true });
      this.setButton = el("button", { type: "button", class: "desk-set", disabled: true }, "Set");
      this.empty = el("p", { class: "hint desk-empty" }, "No reservations.");
      this.list = el("ul", { class: "desk-reservations", "aria-label": `${this.name}'s reservations` });
      this.problem = el("p", { class: "problem desk-problem", role: "alert", hidden: true });
      this.root = el(
        "article",
        {
          class: "desk card",
          "data-worker-sid": this.sid,
          "data-worker-name": this.name,
          "aria-labelledby": `${id}-name`,
        },
        el("h3", { id: `${id}-name` }, this.name),
        this.connection,
        el("p", { class: "desk-buttons" }, this.loginButton, this.logoutButton),
        el("p", { class: "desk-activity" }, "Activity: ", this.activityName),
        el(
          "div",
          { class: "activity" },
          el("label", { for: `${id}-activity` }, `${this.name}'s activity`),
          this.activitySelect,
          this.setButton,
        ),
        el("h4", {}, "Reservations"),
        this.empty,
        this.list,
        this.problem,
      );
      this.loginButton.addEventListener("click", () => this.logIn());
      this.logoutButton.addEventListener("click", () => this.logOut());
      this.setButton.addEventListener("click", () => this.setActivity());
    }

    setConnection(text) {
      this.connection.textContent = text;
    }

    showProblem(text) {
      this.problem.textContent = text || "";
      this.problem.hidden = !text;
    }

    async logIn() {
      this.loginButton.disabled = true;
      this.showProblem(null);
      this.setConnection("Logging in…");
      try {
        const login = await fetchLogin(this.sid);
        // The SDK's default log level prints a warning about ebServer and wsServer; errors
        // still reach the console, and the desk shows them.
        const worker = new sdk.Worker(login.token, {
          ebServer: login.ebServer,
          wsServer: login.wsServer,
          logLevel: "error",
        });
        this.worker = worker;
        this.listen(worker);
        this.setConnection("Connecting…");
        this.loginButton.hidden = true;
        this.logoutButton.hidden = false;
      } catch (error) {
        this.setConnection("Logged out");
        this.showProblem(`Could not log in: ${messageOf(error)}`);
      } finally {
        this.loginButton.disabled = false;
      }
    }

    logOut() {
      const worker = this.worker;
      this.worker = null;
      if (worker) {
        worker.disconnect();
        worker.removeAllListeners();
      }
      this.reservations.clear();
      this.renderReservations();
      this.activitySelect.replaceChildren();
      this.activitySelect.disabled = this.setButton.disabled = true;
      this.activityName.textContent = "-";
      this.activityName.className = "status desk-activity-name";
      this.loginButton.hidden = false;
      this.logoutButton.hidden = true;
      this.setConnection("Logged out");
      this.loginButton.focus();
    }

    listen(worker) {
      const mine = (handler) => (...args) => {
        if (this.worker === worker) handler(...args);
      };
      // ready comes again after each reconnection, with the pending reservations fetched anew.
      worker.on("ready", mine(() => {
        this.setConnection("Connected");
        this.showProblem(null);
        this.fillActivities();
        for (const reservation of worker.reservations.values()) this.add(reservation);
      }));
      worker.on("activityUpdated", mine(() => this.renderActivity()));
      worker.on("reservationCreated", mine((reservation) => this.add(reservation)));
      worker.on("disconnected", mine((reason) => {
        const why = reason && reason.message ? `: ${reason.message}` : "";
        this.setConnection(`Disconnected${why}`);
      }));
      worker.on("error", mine((error) => this.showProblem(`The Worker SDK: ${messageOf(error)}`)));
      // The SDK does not reconnect with an expired token: hand it a new one.
      worker.on("tokenExpired", mine(() => this.renewToken(worker)));
    }

    async renewToken(worker) {
      this.setConnection("Token expiring: getting a new one…");
      try {
        const login = await fetchLogin(this.sid);
        if (this.worker !== worker) return;
        worker.updateToken(login.token);
        this.setConnection("Connected (token renewed)");
      } catch (error) {
        this.showProblem(`Could not renew the token: ${messageOf(error)}. Log in again.`);
      }
    }

    fillActivities() {
      const worker = this.worker;
      const options = [...worker.activities.values()].map((activity) =>
        el("option", { value: activity.sid }, activity.name),
      );
      this.activitySelect.replaceChildren(...options);
      this.activitySelect.disabled = this.setButton.disabled = false;
      this.renderActivity(true);
    }

    renderActivity(force = false) {
      const activity = this.worker && this.worker.activity;
      if (!activity) return;
      this.activityName.textContent = activity.name;
      this.activityName.className = `status desk-activity-name ${
        activity.available ? "status-available" : "status-unavailable"}`;
      // A person choosing in the select keeps the choice until they leave it.
      if (force || document.activeElement !== this.activitySelect) {
        this.activitySelect.value = activity.sid;
      }
    }

    async setActivity() {
      const worker = this.worker;
      const activity = worker && worker.activities.get(this.activitySelect.value);
      if (!activity) return;
      this.setButton.disabled = true;
      this.showProblem(null);
      try {
        await activity.setAsCurrent();
        this.renderActivity(true);
      } catch (error) {
        this.showProblem(`Could not set ${activity.name}: ${messageOf(error)}`);
      } finally {
        this.setButton.disabled = false;
      }
    }

    add(reservation) {
      // After a reconnection the SDK loads its reservations anew, as new objects: their
      // events go to those, so they take the old ones' place.
      if (this.reservations.get(reservation.sid) === reservation) return;
      this.reservations.set(reservation.sid, reservation);
      const render = () => this.renderReservations();
      for (const event of RESERVATION_EVENTS) reservation.on(event, render);
      if (reservation.task) for (const event of TASK_EVENTS) reservation.task.on(event, render);
      render();
    }

    shownReservations() {
      const all = [...this.reservations.values()];
      const open = all.filter((reservation) => OPEN_STATUSES.has(reservation.status));
      const finished = all.filter((reservation) => !OPEN_STATUSES.has(reservation.status));
      return [...open, ...finished.slice(-FINISHED_SHOWN).reverse()];
    }

    renderReservations() {
      const shown = this.shownReservations();
      const key = JSON.stringify(shown.map((reservation) => [
        reservation.sid, reservation.status, reservation.task && reservation.task.status,
      ]));
      if (key === this.renderedKey) return;
      this.renderedKey = key;
      // The focused button is found again by its key, so a keyboard user stays put.
      const focused = this.list.contains(document.activeElement)
        ? document.activeElement.dataset.key : null;
      this.list.replaceChildren(...shown.map((reservation) => this.reservationItem(reservation)));
      this.empty.hidden = shown.length > 0;
      if (focused) {
        const again = this.list.querySelector(`[data-key="${CSS.escape(focused)}"]`);
        if (again) again.focus();
      }
    }

    button(reservation, label, action, primary = false) {
      const button = el(
        "button",
        { type: "button", class: primary ? "primary" : null, "data-key": `${label}-${reservation.sid}` },
        label,
      );
      button.addEventListener("click", async () => {
        button.disabled = true;
        this.showProblem(null);
        try {
          await action();
        } catch (error) {
          this.showProblem(`${label} failed: ${messageOf(error)}`);
        } finally {
          if (button.isConnected) button.disabled = false;
          this.renderReservations();
        }
      });
      return button;
    }

    actions(reservation) {
      const task = reservation.task;
      const reason = `Done at ${this.name}'s desk`;
      if (reservation.status === "pending") {
        return [
          this.button(reservation, "Accept", () => reservation.accept(), true),
          this.button(reservation, "Reject", () => reservation.reject()),
        ];
      }
      if (!task || !OPEN_STATUSES.has(reservation.status)) return [];
      const complete = this.button(reservation, "Complete", () => task.complete(reason), true);
      if (task.status === "assigned") {
        return [this.button(reservation, "Wrap up", () => task.wrapUp({ reason })), complete];
      }
      return task.status === "wrapping" ? [complete] : [];
    }

    reservationItem(reservation) {
      const task = reservation.task;
      const attributes = task ? JSON.stringify(task.attributes) : "";
      const actions = this.actions(reservation);
      return el(
        "li",
        {
          class: "desk-reservation",
          "data-reservation-sid": reservation.sid,
          "data-task-sid": task ? task.sid : null,
          "data-status": reservation.status,
        },
        el(
          "p",
          {},
          el("span", { class: `status status-${reservation.status} desk-reservation-status` },
            reservation.status),
          " task ",
          el("code", {}, task ? task.sid : "-"),
          task && task.status ? el("span", { class: "desk-task-status" }, ` (task ${task.status})`) : null,
        ),
        task ? el("p", { class: "desk-task" }, task.queueName || "", " ", el("code", {}, attributes)) : null,
        actions.length ? el("p", { class: "desk-actions" }, actions) : null,
      );
    }
  }

  const desks = new Map(); // worker sid -> Desk

  document.addEventListener("console:state", (event) => {
    const workers = (event.detail && event.detail.workers) || [];
    if (!desks.size && workers.length) panes.replaceChildren();
    for (const worker of workers) {
      if (desks.has(worker.sid)) continue;
      const desk = new Desk(worker);
      desks.set(worker.sid, desk);
      panes.append(desk.root);
    }
    if (!desks.size) panes.replaceChildren(el("p", { class: "hint" }, "No workers in this workspace."));
  });
})();
