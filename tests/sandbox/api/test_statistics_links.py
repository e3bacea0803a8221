"""The resources' `links` name their statistics, as the OpenAPI description's examples show.

Twilio's pages behind these tests: the Workspace, TaskQueue, Workflow and Worker resources,
whose `links` property holds "the URLs of related resources", and the OpenAPI description's
response examples for each (fetch, create, update, list), which list the statistics URLs:
statistics, real_time_statistics and cumulative_statistics of a Workspace, TaskQueue and
Workflow; for a TaskQueue also the queues' list_statistics and bulk_real_time_statistics;
for a Worker the statistics of all workers plus its own worker_statistics. Every link is
followed, so each one names a resource the sandbox serves.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.contract import MISSING, contract_path, load_contract
from tests.sandbox.conftest import Live, routing

pytestmark = pytest.mark.skipif(contract_path() is None, reason=MISSING)

TWILIO = "https://taskrouter.twilio.com"
JSON = "application/json"

# The response examples to compare with: (path, method, status, example name, list key).
EXAMPLES = {
    "workspace": [
        ("/v1/Workspaces/{Sid}", "get", "200", "fetch", None),
        ("/v1/Workspaces/{Sid}", "post", "200", "update", None),
        ("/v1/Workspaces", "post", "201", "create", None),
        ("/v1/Workspaces", "get", "200", "readFull", "workspaces"),
    ],
    "task_queue": [
        ("/v1/Workspaces/{WorkspaceSid}/TaskQueues/{Sid}", "get", "200", "fetch", None),
        ("/v1/Workspaces/{WorkspaceSid}/TaskQueues/{Sid}", "post", "200", "update", None),
        ("/v1/Workspaces/{WorkspaceSid}/TaskQueues", "post", "201", "create", None),
        ("/v1/Workspaces/{WorkspaceSid}/TaskQueues", "get", "200", "readFull", "task_queues"),
    ],
    "workflow": [
        ("/v1/Workspaces/{WorkspaceSid}/Workflows/{Sid}", "get", "200", "fetch", None),
        ("/v1/Workspaces/{WorkspaceSid}/Workflows/{Sid}", "post", "200", "update", None),
        ("/v1/Workspaces/{WorkspaceSid}/Workflows", "post", "201", "create", None),
        ("/v1/Workspaces/{WorkspaceSid}/Workflows", "get", "200", "readFull", "workflows"),
    ],
    "worker": [
        ("/v1/Workspaces/{WorkspaceSid}/Workers/{Sid}", "get", "200", "fetch", None),
        ("/v1/Workspaces/{WorkspaceSid}/Workers/{Sid}", "post", "200", "update", None),
        ("/v1/Workspaces/{WorkspaceSid}/Workers", "post", "201", "create", None),
        ("/v1/Workspaces/{WorkspaceSid}/Workers", "get", "200", "readFull", "workers"),
    ],
}


@pytest.fixture(scope="module")
def contract() -> dict[str, Any]:
    return load_contract()


def example_links(contract: dict[str, Any], kind: str) -> dict[str, str]:
    """The links of kind's examples, which must all agree (they do in Twilio's file)."""
    seen = []
    for path, method, status, name, key in EXAMPLES[kind]:
        responses = contract["paths"][path][method]["responses"][status]
        value = responses["content"][JSON]["examples"][name]["value"]
        seen.append((value[key][0] if key else value)["links"])
    assert all(links == seen[0] for links in seen), kind
    return seen[0]


def at_the_sandbox(links: dict[str, str], live: Live, sids: dict[str, str]) -> dict[str, str]:
    """The example's links with the sandbox's base URL and these SIDs for the placeholders."""

    def real(url: str) -> str:
        url = url.replace(TWILIO, live.base_url)
        for prefix, sid in sids.items():
            url = url.replace(prefix + "a" * 32, sid)
        return url

    return {name: real(url) for name, url in links.items()}


@pytest.fixture(scope="module")
def resources(live: Live) -> dict[str, Any]:
    """A workspace with a queue (both activities set), a workflow into it and a worker."""
    workspace = live.new_workspace("Links")
    context = live.v1.workspaces(workspace.sid)
    (available,) = context.activities.list(friendly_name="Available")
    queue = context.task_queues.create(
        friendly_name="Support",
        assignment_activity_sid=available.sid,
        reservation_activity_sid=available.sid,
    )
    workflow = context.workflows.create(
        friendly_name="Inbound", configuration=routing(("1==1", queue.sid))
    )
    worker = context.workers.create(friendly_name="Ann", activity_sid=available.sid)
    return {
        "context": context,
        "activity": available,
        "workspace": workspace,
        "task_queue": queue,
        "workflow": workflow,
        "worker": worker,
    }


def test_a_workspace_links_to_its_statistics_as_in_the_example(live, contract, resources):
    """Workspace resource (links) and its OpenAPI examples: statistics, real_time_statistics
    and cumulative_statistics beside the workspace's lists."""
    workspace = resources["workspace"]
    expected = at_the_sandbox(example_links(contract, "workspace"), live, {"WS": workspace.sid})
    assert live.v1.workspaces(workspace.sid).fetch().links == expected
    assert expected["real_time_statistics"] == f"{workspace.url}/RealTimeStatistics"
    listed = live.http("GET", "/v1/Workspaces").json()["workspaces"]
    assert next(w for w in listed if w["sid"] == workspace.sid)["links"] == expected


def test_a_task_queue_links_to_its_statistics_and_the_queues_statistics(live, contract, resources):
    """TaskQueue resource (links) and its OpenAPI examples: the queue's three statistics, the
    list of all queues' statistics and the bulk real-time statistics."""
    context, queue = resources["context"], resources["task_queue"]
    sids = {"WS": queue.workspace_sid, "WQ": queue.sid, "WA": resources["activity"].sid}
    expected = at_the_sandbox(example_links(contract, "task_queue"), live, sids)
    assert queue.links == expected
    assert context.task_queues(queue.sid).fetch().links == expected
    assert context.task_queues(queue.sid).update(friendly_name="Sales").links == expected
    assert [q.links for q in context.task_queues.list()] == [expected]
    assert expected["cumulative_statistics"] == f"{queue.url}/CumulativeStatistics"
    assert expected["list_statistics"].endswith(f"/{queue.workspace_sid}/TaskQueues/Statistics")


def test_a_workflow_links_to_its_statistics_and_keeps_its_workspace(live, contract, resources):
    """Workflow resource (links) and its OpenAPI examples: the workflow's three statistics.
    The examples show no workspace link; the sandbox keeps the one it always had."""
    context, workflow = resources["context"], resources["workflow"]
    sids = {"WS": workflow.workspace_sid, "WW": workflow.sid}
    expected = at_the_sandbox(example_links(contract, "workflow"), live, sids)
    workspace_link = {"workspace": live.v1.workspaces(workflow.workspace_sid).fetch().url}
    assert workflow.links == {**expected, **workspace_link}
    assert context.workflows(workflow.sid).fetch().links == {**expected, **workspace_link}
    assert [w.links for w in context.workflows.list()] == [{**expected, **workspace_link}]
    assert expected["statistics"] == f"{workflow.url}/Statistics"


def test_a_worker_links_to_all_workers_statistics_and_its_own(live, contract, resources):
    """Worker resource (links) and its OpenAPI examples: statistics, real_time_statistics and
    cumulative_statistics are those of all the workspace's workers, worker_statistics the
    worker's own."""
    context, worker = resources["context"], resources["worker"]
    sids = {"WS": worker.workspace_sid, "WK": worker.sid, "WA": worker.activity_sid}
    expected = at_the_sandbox(example_links(contract, "worker"), live, sids)
    assert worker.links == expected
    assert context.workers(worker.sid).fetch().links == expected
    assert [w.links for w in context.workers.list()] == [expected]
    assert expected["worker_statistics"] == f"{worker.url}/Statistics"
    assert expected["statistics"].endswith(f"/{worker.workspace_sid}/Workers/Statistics")


def test_every_statistics_link_answers(live, resources):
    """Each statistics URL a resource links to is a statistics resource the sandbox serves:
    a GET answers 200, the bulk real-time statistics a POST naming the queue (the TaskQueue
    Statistics page: "POST /v1/Workspaces/{WorkspaceSid}/TaskQueues/RealTimeStatistics")."""
    queue = resources["task_queue"]
    links: dict[str, str] = {}
    for kind in ("workspace", "task_queue", "workflow", "worker"):
        for name, url in resources[kind].links.items():
            if "statistics" in name:
                links[f"{kind}.{name}"] = url
    assert len(links) == 3 + 5 + 3 + 4
    for name, url in links.items():
        path = url.removeprefix(live.base_url)
        if name == "task_queue.bulk_real_time_statistics":
            response = live.http("POST", path, json={"QueueSids": [queue.sid]})
            assert response.status_code == 200, (name, response.text)
            assert response.json()["task_queue_data"][0]["task_queue_sid"] == queue.sid
        else:
            response = live.http("GET", path)
            assert response.status_code == 200, (name, response.text)
            body = response.json()
            # A list carries its URL in the envelope's meta, with the paging parameters.
            if "meta" in body:
                assert body["meta"]["url"].startswith(f"{url}?"), name
            else:
                assert body["url"] == url, name
