// One Worker of Twilio's own Worker SDK (twilio-taskrouter, unmodified) for the Python tests: an
// agent's desk in a Node.js process, so that a test can drive it and watch what it sees.
//
// Started as `node worker.js '<config>'`, config being JSON {"token": ..., "options": {...}}:
// the token and the options of `new Worker(token, options)` (ebServer, wsServer,
// closeExistingSessions, setWorkerOfflineIfDisconnected, ...).
//
// stdout carries one JSON object a line, of two kinds:
// - {"event": name, ...}: every event the SDK emits, as it emits it: the Worker's (ready,
//   activityUpdated, attributesUpdated, reservationCreated, reservationFailed, tokenExpired,
//   tokenUpdated, disconnected, error), a reservation's ("reservation.accepted", ...), its task's
//   ("task.updated", ...) and a channel's ("channel.capacityUpdated", ...), with what the SDK's
//   objects hold at that moment (see the snapshots below).
// - {"id": n, "ok": value} or {"id": n, "error": {"name", "message"}}: the answer to a command.
//
// stdin carries one command a line, {"id": n, "command": name, ...}:
//   state                                   the worker as the SDK holds it, and the URLs of the
//                                           websockets the process opened
//   activity {name, options}                Activity.setAsCurrent(options), by the activity's name
//   reservation {sid, action, options}      Reservation.accept() / reject(options) / complete() /
//                                           wrap()
//   task {reservation, action, argument}    the reservation's Task: complete(argument) /
//                                           wrapUp(argument) / setAttributes(argument)
//   attributes {attributes}                 Worker.setAttributes(attributes)
//   createTask {to, from, workflowSid,      Worker.createTask(...): a task routed to this worker;
//     taskQueueSid, options}                answers its SID
//   updateToken {token}                     Worker.updateToken(token)
//   request {method, url, params}           one call of the SDK's own transport (its Request, with
//                                           its token), for a path no public method names
//   disconnect                              Worker.disconnect()
"use strict";

const readline = require("node:readline");

// Every websocket this process opens, by URL, to show which ones the SDK opens (its event
// bridge's, and no GraphQL one unless asked). The SDK takes the global WebSocket class where
// there is one (Node.js 22 on), else the "ws" package's: a subclass of each that notes the URL
// stands in, and does everything else as the original does.
const sockets = [];
function noting(WebSocketClass) {
  return class extends WebSocketClass {
    constructor(address, ...rest) {
      super(address, ...rest);
      sockets.push(String(address));
    }
  };
}
require("ws"); // loaded now, so that the SDK's require("ws") gets the noting class from the cache
const wsModule = require.cache[require.resolve("ws")];
wsModule.exports = noting(wsModule.exports);
if (globalThis.WebSocket) globalThis.WebSocket = noting(globalThis.WebSocket);

const { Worker } = require("twilio-taskrouter");

const config = JSON.parse(process.argv[2]);
const worker = new Worker(config.token, config.options || {});

function write(message) {
  process.stdout.write(JSON.stringify(message) + "\n");
}

// -- what a test reads of the SDK's objects ------------------------------------------------------

function activityOf(activity) {
  if (!activity) return null;
  return { sid: activity.sid, name: activity.name, available: activity.available };
}

function taskOf(task) {
  if (!task) return null;
  return {
    sid: task.sid,
    status: task.status,
    attributes: task.attributes,
    reason: task.reason ?? null,
    queueName: task.queueName ?? null,
    version: task.version ?? null,
  };
}

function reservationOf(reservation) {
  return {
    sid: reservation.sid,
    status: reservation.status,
    workerSid: reservation.workerSid,
    timeout: reservation.timeout,
    canceledReasonCode: reservation.canceledReasonCode ?? null,
    task: taskOf(reservation.task),
  };
}

function channelOf(channel) {
  return {
    sid: channel.sid,
    taskChannelUniqueName: channel.taskChannelUniqueName,
    capacity: channel.capacity,
    available: channel.available,
    assignedTasks: channel.assignedTasks,
    availableCapacityPercentage: channel.availableCapacityPercentage,
  };
}

function workerOf() {
  const signaling = worker._signaling;
  return {
    sid: worker.sid,
    name: worker.name,
    workspaceSid: worker.workspaceSid,
    activity: activityOf(worker.activity),
    // Unset until the first update: the SDK leaves it out of what it loads on connect.
    available: worker.available ?? null,
    attributes: worker.attributes,
    version: worker.version,
    activities: Array.from(worker.activities.values(), activityOf),
    channels: Array.from(worker.channels.values(), channelOf),
    reservations: Array.from(worker.reservations.values(), reservationOf),
    // The SDK's own sockets: the event bridge's, and the GraphQL one it makes only if asked.
    socketState: signaling && signaling.webSocket ? signaling.webSocket.readyState : null,
    graphQLSignaling: worker._gqlSignaling !== undefined,
    sockets,
  };
}

function errorOf(error) {
  return { name: error?.name ?? null, message: error?.message ?? String(error) };
}

// -- the events ----------------------------------------------------------------------------------

const RESERVATION_EVENTS = [
  "accepted",
  "rejected",
  "timeout",
  "canceled",
  "rescinded",
  "completed",
  "wrapup",
];
const TASK_EVENTS = ["updated", "completed", "wrapup", "canceled"];
const CHANNEL_EVENTS = ["capacityUpdated", "availabilityUpdated"];
// A reconnect loads new Reservation and Channel objects: each is listened to once.
const listened = new WeakSet();

function listenToReservation(reservation) {
  if (listened.has(reservation)) return;
  listened.add(reservation);
  for (const name of RESERVATION_EVENTS) {
    reservation.on(name, (updated) =>
      write({ event: `reservation.${name}`, reservation: reservationOf(updated) }),
    );
  }
  const task = reservation.task;
  if (task && !listened.has(task)) {
    listened.add(task);
    for (const name of TASK_EVENTS) {
      task.on(name, (updated) =>
        write({ event: `task.${name}`, reservationSid: reservation.sid, task: taskOf(updated) }),
      );
    }
  }
}

function listenToChannels() {
  for (const channel of worker.channels.values()) {
    if (listened.has(channel)) continue;
    listened.add(channel);
    for (const name of CHANNEL_EVENTS) {
      channel.on(name, (updated) =>
        write({ event: `channel.${name}`, channel: channelOf(updated) }),
      );
    }
  }
}

worker.on("ready", () => {
  for (const reservation of worker.reservations.values()) listenToReservation(reservation);
  listenToChannels();
  write({ event: "ready", worker: workerOf() });
});
for (const name of ["activityUpdated", "attributesUpdated"]) {
  worker.on(name, () => write({ event: name, worker: workerOf() }));
}
worker.on("reservationCreated", (reservation) => {
  listenToReservation(reservation);
  write({ event: "reservationCreated", reservation: reservationOf(reservation) });
});
worker.on("reservationFailed", (payload) => write({ event: "reservationFailed", payload }));
worker.on("tokenExpired", () => write({ event: "tokenExpired" }));
worker.on("tokenUpdated", () => write({ event: "tokenUpdated" }));
worker.on("disconnected", (reason) =>
  write({ event: "disconnected", reason: reason?.message ?? null }),
);
worker.on("error", (error) => write({ event: "error", error: errorOf(error) }));

// -- the commands --------------------------------------------------------------------------------

function reservationNamed(sid) {
  const reservation = worker.reservations.get(sid);
  if (!reservation) throw new Error(`the worker holds no reservation ${sid}`);
  return reservation;
}

const COMMANDS = {
  state: async () => workerOf(),
  activity: async ({ name, options }) => {
    const activity = Array.from(worker.activities.values()).find((a) => a.name === name);
    if (!activity) throw new Error(`the worker has no activity named ${name}`);
    await activity.setAsCurrent(options || {});
    return workerOf();
  },
  reservation: async ({ sid, action, options }) => {
    const reservation = reservationNamed(sid);
    if (!["accept", "reject", "complete", "wrap"].includes(action)) {
      throw new Error(`no action ${action}`);
    }
    const updated =
      action === "reject" ? await reservation.reject(options || {}) : await reservation[action]();
    return reservationOf(updated);
  },
  task: async ({ reservation, action, argument }) => {
    const task = reservationNamed(reservation).task;
    if (!["complete", "wrapUp", "setAttributes"].includes(action)) {
      throw new Error(`no action ${action}`);
    }
    return taskOf(await task[action](argument));
  },
  attributes: async ({ attributes }) => {
    await worker.setAttributes(attributes);
    return workerOf();
  },
  request: async ({ method, url, params }) =>
    method === "GET"
      ? worker._request.get(url, "v1", params || {})
      : worker._request.post(url, params || {}, "v1"),
  createTask: async ({ to, from, workflowSid, taskQueueSid, options }) =>
    worker.createTask(to, from, workflowSid, taskQueueSid, options || {}),
  updateToken: async ({ token }) => {
    worker.updateToken(token);
    return null;
  },
  disconnect: async () => {
    worker.disconnect();
    return null;
  },
};

const lines = readline.createInterface({ input: process.stdin });
lines.on("line", async (line) => {
  const message = JSON.parse(line);
  const command = COMMANDS[message.command];
  try {
    if (!command) throw new Error(`no command ${message.command}`);
    write({ id: message.id, ok: await command(message) });
  } catch (error) {
    write({ id: message.id, error: errorOf(error) });
  }
});
// stdin closed: the test is done with this desk.
lines.on("close", () => {
  worker.disconnect();
  setTimeout(() => process.exit(0), 100);
});
