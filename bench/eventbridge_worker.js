// The event bridge benchmark's worker: Twilio's Worker SDK (twilio-taskrouter, unmodified) as
// Alice, and twilio-node creating the tasks over REST, in one Node.js process so that both ends
// of each latency are read on one clock (performance.now(), monotonic).
//
// Environment: what the standalone sandbox exports (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN,
// TWILIO_WORKSPACE_SID, TWILIO_WORKFLOW_SID, TWILIO_API_KEY, TWILIO_API_SECRET), plus
// BRIDGE_URL (the server holding Alice's websocket: ebServer is BRIDGE_URL/v1/wschannels),
// REST_URL (the server the tasks are created through; the same one or another process over the
// same database), WORKER_SID, IDLE_SID, TASKS and WARMUP.
//
// For each task: t0 just before tasks.create(), t1 when its answer has been read, t2 when the
// SDK emits reservationCreated for it. Then accept and complete through the SDK, and Idle again
// (its answer read) before the next task. stdout gets one JSON line at the end:
// {"samples": [{"create": t1 - t0, "event": t2 - t0}, ...]} in ms, warm-up left out.
"use strict";

const { performance } = require("node:perf_hooks");
const twilio = require("twilio");
const { Worker } = require("twilio-taskrouter");

// A step that has not happened by then never will: fail rather than hang the benchmark.
const STEP_TIMEOUT_MS = 10000;
const TOKEN_TTL_S = 3600;

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

function count(name) {
  const text = required(name);
  const value = Number(text);
  if (!/^[0-9]+$/.test(text)) throw new Error(`${name} must be a count (0 or more), not ${JSON.stringify(text)}`);
  return value;
}

function within(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${STEP_TIMEOUT_MS} ms`)), STEP_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Resolves when the worker emits event with an argument that passes test.
function next(worker, event, test) {
  return new Promise((resolve) => {
    const listener = (value) => {
      if (test(value)) {
        worker.off(event, listener);
        resolve(value);
      }
    };
    worker.on(event, listener);
  });
}

function workerToken(workspaceSid, workerSid) {
  const { AccessToken } = twilio.jwt;
  const token = new AccessToken(required("TWILIO_ACCOUNT_SID"), required("TWILIO_API_KEY"), required("TWILIO_API_SECRET"), {
    identity: workerSid,
    ttl: TOKEN_TTL_S,
  });
  token.addGrant(new AccessToken.TaskRouterGrant({ workspaceSid, workerSid, role: "worker" }));
  return token.toJwt();
}

async function main() {
  const workspaceSid = required("TWILIO_WORKSPACE_SID");
  const workflowSid = required("TWILIO_WORKFLOW_SID");
  const workerSid = required("WORKER_SID");
  const idleSid = required("IDLE_SID");
  const tasks = count("TASKS");
  const warmup = count("WARMUP");
  const bridge = `${required("BRIDGE_URL")}/v1/wschannels`;

  const client = twilio(required("TWILIO_ACCOUNT_SID"), required("TWILIO_AUTH_TOKEN"));
  client.taskrouter.baseUrl = required("REST_URL");
  const workspace = client.taskrouter.v1.workspaces(workspaceSid);

  const worker = new Worker(workerToken(workspaceSid, workerSid), {
    ebServer: bridge,
    wsServer: bridge.replace(/^http/, "ws"),
    logLevel: "error",
  });
  worker.on("error", (error) => console.error(`the Worker SDK reported: ${error.message || error}`));
  await within(next(worker, "ready", () => true), "ready");

  // reservationCreated is stamped the moment the SDK emits it, before anything else runs.
  const arrived = new Map();
  const waiting = new Map();
  worker.on("reservationCreated", (reservation) => {
    const at = performance.now();
    const taskSid = reservation.task.sid;
    arrived.set(taskSid, { at, reservation });
    const resolve = waiting.get(taskSid);
    if (resolve) resolve();
  });
  const reservationOf = (taskSid) =>
    arrived.has(taskSid) ? Promise.resolve() : new Promise((resolve) => waiting.set(taskSid, resolve));

  // Always asked for, never skipped on the SDK's own view: the events that moved Alice to
  // Reserved and Busy may still be on their way when the task's completion is answered.
  const goIdle = async () => {
    await within(worker.activities.get(idleSid).setAsCurrent(), "setting Idle");
    if (worker.activity.sid !== idleSid) {
      await within(next(worker, "activityUpdated", (w) => w.activity.sid === idleSid), "Idle");
    }
  };
  await goIdle();

  // What the sandbox says, for a reservation that never came.
  const stateOf = async (taskSid) => {
    const [task, alice] = await Promise.all([workspace.tasks(taskSid).fetch(), workspace.workers(workerSid).fetch()]);
    return `the task is ${task.assignmentStatus}, Alice is ${alice.activityName}`;
  };

  const attributes = JSON.stringify({ selected_language: "es" });
  const samples = [];
  for (let index = 0; index < warmup + tasks; index++) {
    const started = performance.now();
    const task = await workspace.tasks.create({ workflowSid, attributes });
    const answered = performance.now();
    try {
      await within(reservationOf(task.sid), `reservationCreated for task ${index}`);
    } catch (error) {
      throw new Error(`${error.message} (${await stateOf(task.sid)})`);
    }
    const { at, reservation } = arrived.get(task.sid);
    arrived.delete(task.sid);
    waiting.delete(task.sid);
    if (index >= warmup) samples.push({ create: answered - started, event: at - started });
    await within(reservation.accept(), "accept");
    await within(reservation.task.complete("benchmark"), "complete");
    await goIdle();
  }
  process.stdout.write(JSON.stringify({ samples }) + "\n");
  worker.disconnect();
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error && error.stack ? error.stack : String(error));
    process.exit(1);
  },
);
