"""A live sandbox for the end-to-end benchmarks: the server under gunicorn on a free loopback
port, twilio clients pointed at it, and a benchmark workspace built over its REST API.
"""

from __future__ import annotations

import json
import os
import random
import secrets
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from bench.common import Server, free_port, gunicorn_argv, gunicorn_command_from_readme
from bench.receiver import ASSIGNED_EVENT, ASSIGNMENT_PATH, EVENTS_PATH

LANGUAGES = ("en", "es", "fr", "de")
PRIORITIES = (0, 0, 0, 5, 10)
SANDBOX_APP = "taskrouter_sandbox:create_app()"
HTTP_TIMEOUT = 30.0


@dataclass(frozen=True)
class SandboxAccount:
    account_sid: str
    auth_token: str

    @classmethod
    def make(cls) -> SandboxAccount:
        return cls("AC" + secrets.token_hex(16), secrets.token_hex(16))


def sandbox_server(scratch: Path, account: SandboxAccount) -> tuple[Server, str]:
    """The standalone sandbox under the README's gunicorn settings, its database in scratch."""
    command, source = gunicorn_command_from_readme()
    port = free_port()
    env = dict(os.environ)
    env.update(
        SANDBOX_DATABASE=str(scratch / "sandbox.sqlite3"),
        SANDBOX_ACCOUNT_SID=account.account_sid,
        SANDBOX_AUTH_TOKEN=account.auth_token,
        # `make` exports HOST and PORT for `make run`; here they must name this server.
        HOST="127.0.0.1",
        PORT=str(port),
    )
    server = Server(
        "the sandbox",
        gunicorn_argv(command, port, SANDBOX_APP),
        port,
        env,
        scratch / "sandbox.log",
        ready_path="/v1/Workspaces",
    )
    described = " ".join(["gunicorn", *server.argv[1:]]).replace(str(scratch), "<tmp>")
    return server, f"`{described}` (settings from {source})"


def client_for(base_url: str, account: SandboxAccount) -> Client:
    client = Client(
        account.account_sid,
        account.auth_token,
        http_client=TwilioHttpClient(timeout=HTTP_TIMEOUT),
        # Without a mapping the library reads TWILIO_EDGE/TWILIO_REGION and rewrites the host.
        environment={"TWILIO_EDGE": "", "TWILIO_REGION": ""},
    )
    client.taskrouter.base_url = base_url
    return client


@dataclass(frozen=True)
class BenchWorkspace:
    workspace_sid: str
    workflow_sid: str
    available_activity_sid: str
    worker_sids: tuple[str, ...]


def worker_languages(index: int, rng: random.Random) -> list[str]:
    """Every language is spoken by someone; most workers speak one or two."""
    first = LANGUAGES[index % len(LANGUAGES)]
    others = [language for language in LANGUAGES if language != first]
    return [first, *rng.sample(others, rng.choice((0, 0, 1, 2)))]


def task_attributes(index: int, rng: random.Random) -> tuple[str, int]:
    """(attributes, priority) of the index-th task: mixed languages and priorities."""
    language = rng.choice(LANGUAGES)
    return json.dumps({"selected_language": language, "ticket": index}), rng.choice(PRIORITIES)


def workflow_configuration(queue_sids: dict[str, str]) -> str:
    filters = [
        {
            "filter_friendly_name": f"Language {language}",
            "expression": f'selected_language == "{language}"',
            "targets": [{"queue": sid}],
        }
        for language, sid in queue_sids.items()
    ]
    return json.dumps(
        {"task_routing": {"filters": filters, "default_filter": {"queue": queue_sids["en"]}}}
    )


def build_workspace(
    clients: Sequence[Client],
    receiver_url: str,
    workers: int,
    *,
    polyglot: bool = False,
    seed: int = 7,
) -> BenchWorkspace:
    """A workspace whose workflow calls the receiver and whose events tell it what is assigned.

    Queues leave reservation and assignment activities unset, so workers stay Available and a
    worker is free for the next task once its task is completed (single-tasking workspace).
    polyglot workers speak every language; otherwise each speaks one to three.
    """
    rng = random.Random(seed)
    taskrouter = clients[0].taskrouter.v1
    workspace = taskrouter.workspaces.create(
        friendly_name=f"Benchmark {secrets.token_hex(4)}",
        event_callback_url=receiver_url + EVENTS_PATH,
        events_filter=ASSIGNED_EVENT,
        multi_task_enabled=False,
    )
    ws = taskrouter.workspaces(workspace.sid)
    available = ws.activities.list(friendly_name="Available")[0].sid
    queue_sids = {
        language: ws.task_queues.create(
            friendly_name=f"Language {language}", target_workers=f'languages HAS "{language}"'
        ).sid
        for language in LANGUAGES
    }
    workflow = ws.workflows.create(
        friendly_name="Benchmark workflow",
        configuration=workflow_configuration(queue_sids),
        assignment_callback_url=receiver_url + ASSIGNMENT_PATH,
        task_reservation_timeout=600,
    )
    attributes = [
        json.dumps({"languages": list(LANGUAGES) if polyglot else worker_languages(index, rng)})
        for index in range(workers)
    ]

    def create_worker(index: int) -> str:
        client = clients[index % len(clients)]
        return (
            client.taskrouter.v1.workspaces(workspace.sid)
            .workers.create(
                friendly_name=f"Agent {index:05d}",
                attributes=attributes[index],
                activity_sid=available,
            )
            .sid
        )

    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        worker_sids = tuple(pool.map(create_worker, range(workers)))
    return BenchWorkspace(workspace.sid, workflow.sid, available, worker_sids)
