// One twilio-node client for the Python tests: each line on stdin is a JSON call, each line on
// stdout its JSON answer, so a test can mix Node.js calls with moves of the sandbox's clock.
//
// A call is {"path": [step, ...]} walked from client.taskrouter.v1, where a step is a name
// (a property: "workspaces") or [name, ...args] (a method call: ["workspaces", "WS..."],
// ["create", {"friendlyName": "x"}]). The answer is {"ok": value} with the library's own
// toJSON() of what the last step returned (lists element by element), or {"error": {...}}
// carrying RestException's status, code and message as twilio-node reports them.
//
// {"control": {"method": "post", "path": "clock/advance", "data": {"Seconds": 130}}} is a call
// of the sandbox's control API beside /v1 (data: its parameters), made through twilio-node's
// own client.request with the account's basic auth, as any Node.js client would move the
// sandbox's time; answered {"ok": {"status": <HTTP status>, "body": <its JSON or null>}}.
"use strict";

const readline = require("node:readline");
const twilio = require("twilio");

const baseUrl = process.env.TASKROUTER_BASE_URL;
const client = twilio(process.env.TWILIO_ACCOUNT_SID, process.env.TWILIO_AUTH_TOKEN);
client.taskrouter.baseUrl = baseUrl;

function plain(value) {
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value.toJSON === "function") return value.toJSON();
  return value === undefined ? null : value;
}

async function walk(path) {
  let target = client.taskrouter.v1;
  for (const step of path) {
    if (typeof step === "string") {
      target = target[step];
    } else {
      const [name, ...args] = step;
      if (typeof target[name] !== "function") throw new TypeError(`${name} is not a method`);
      target = await target[name](...args);
    }
    if (target === undefined) throw new TypeError(`no ${JSON.stringify(step)} here`);
  }
  return plain(target);
}

async function control({ method, path, data }) {
  // A GET's parameters go in the query string, the others' in a form body, as for /v1.
  const inQuery = method.toLowerCase() === "get";
  const response = await client.request({
    method,
    uri: `${baseUrl}/control/${path}`,
    params: inQuery ? data || undefined : undefined,
    data: inQuery ? undefined : data || undefined,
  });
  let body = response.body;
  if (typeof body === "string") body = body ? JSON.parse(body) : null;
  return { status: response.statusCode, body: body ?? null };
}

const lines = readline.createInterface({ input: process.stdin });
lines.on("line", async (line) => {
  const message = JSON.parse(line);
  let answer;
  try {
    answer = { ok: message.control ? await control(message.control) : await walk(message.path) };
  } catch (error) {
    answer = {
      error: {
        name: error.constructor.name,
        status: error.status ?? null,
        code: error.code ?? null,
        message: error.message,
      },
    };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
});
