"""Every kind of sandbox response checked against Twilio's OpenAPI description of TaskRouter v1.

Bodies come from a live sandbox; schemas from the description tests/contract.py finds (skipped
when there is none).
"""

from __future__ import annotations

import copy
import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from jsonschema import Draft7Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from tests.contract import MISSING, contract_path, load_contract
from tests.sandbox.conftest import Live, routing

DOCUMENT_URI = "urn:twilio:taskrouter:v1"

# Skipped as a whole, before the live sandbox starts, when no description is found.
pytestmark = pytest.mark.skipif(contract_path() is None, reason=MISSING)

# The OpenAPI file describes no error body; this is the shape the twilio library reads
# (twilio.base.version.Version.exception) and Twilio documents for its REST errors.
ERROR_SCHEMA = {
    "type": "object",
    "required": ["code", "message", "more_info", "status"],
    "additionalProperties": False,
    "properties": {
        "code": {"type": "integer"},
        "message": {"type": "string", "minLength": 1},
        "more_info": {"type": "string", "format": "uri"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
    },
}

# (operationId, path template, method, status) for every operation the sandbox serves.
OPERATIONS = [
    ("ListWorkspace", "/v1/Workspaces", "get", "200"),
    ("CreateWorkspace", "/v1/Workspaces", "post", "201"),
    ("FetchWorkspace", "/v1/Workspaces/{Sid}", "get", "200"),
    ("UpdateWorkspace", "/v1/Workspaces/{Sid}", "post", "200"),
    ("ListActivity", "/v1/Workspaces/{WorkspaceSid}/Activities", "get", "200"),
    ("CreateActivity", "/v1/Workspaces/{WorkspaceSid}/Activities", "post", "201"),
    ("FetchActivity", "/v1/Workspaces/{WorkspaceSid}/Activities/{Sid}", "get", "200"),
    ("UpdateActivity", "/v1/Workspaces/{WorkspaceSid}/Activities/{Sid}", "post", "200"),
    ("ListTaskChannel", "/v1/Workspaces/{WorkspaceSid}/TaskChannels", "get", "200"),
    ("CreateTaskChannel", "/v1/Workspaces/{WorkspaceSid}/TaskChannels", "post", "201"),
    ("FetchTaskChannel", "/v1/Workspaces/{WorkspaceSid}/TaskChannels/{Sid}", "get", "200"),
    ("UpdateTaskChannel", "/v1/Workspaces/{WorkspaceSid}/TaskChannels/{Sid}", "post", "200"),
    ("ListWorker", "/v1/Workspaces/{WorkspaceSid}/Workers", "get", "200"),
    ("CreateWorker", "/v1/Workspaces/{WorkspaceSid}/Workers", "post", "201"),
    ("FetchWorker", "/v1/Workspaces/{WorkspaceSid}/Workers/{Sid}", "get", "200"),
    ("UpdateWorker", "/v1/Workspaces/{WorkspaceSid}/Workers/{Sid}", "post", "200"),
    (
        "ListWorkerChannel",
        "/v1/Workspaces/{WorkspaceSid}/Workers/{WorkerSid}/Channels",
        "get",
        "200",
    ),
    (
        "FetchWorkerChannel",
        "/v1/Workspaces/{WorkspaceSid}/Workers/{WorkerSid}/Channels/{Sid}",
        "get",
        "200",
    ),
    (
        "UpdateWorkerChannel",
        "/v1/Workspaces/{WorkspaceSid}/Workers/{WorkerSid}/Channels/{Sid}",
        "post",
        "200",
    ),
    ("ListTaskQueue", "/v1/Workspaces/{WorkspaceSid}/TaskQueues", "get", "200"),
    ("CreateTaskQueue", "/v1/Workspaces/{WorkspaceSid}/TaskQueues", "post", "201"),
    ("FetchTaskQueue", "/v1/Workspaces/{WorkspaceSid}/TaskQueues/{Sid}", "get", "200"),
    ("UpdateTaskQueue", "/v1/Workspaces/{WorkspaceSid}/TaskQueues/{Sid}", "post", "200"),
    ("ListWorkflow", "/v1/Workspaces/{WorkspaceSid}/Workflows", "get", "200"),
    ("CreateWorkflow", "/v1/Workspaces/{WorkspaceSid}/Workflows", "post", "201"),
    ("FetchWorkflow", "/v1/Workspaces/{WorkspaceSid}/Workflows/{Sid}", "get", "200"),
    ("UpdateWorkflow", "/v1/Workspaces/{WorkspaceSid}/Workflows/{Sid}", "post", "200"),
    ("ListTask", "/v1/Workspaces/{WorkspaceSid}/Tasks", "get", "200"),
    ("CreateTask", "/v1/Workspaces/{WorkspaceSid}/Tasks", "post", "201"),
    ("FetchTask", "/v1/Workspaces/{WorkspaceSid}/Tasks/{Sid}", "get", "200"),
    ("UpdateTask", "/v1/Workspaces/{WorkspaceSid}/Tasks/{Sid}", "post", "200"),
    (
        "ListTaskReservation",
        "/v1/Workspaces/{WorkspaceSid}/Tasks/{TaskSid}/Reservations",
        "get",
        "200",
    ),
    (
        "FetchTaskReservation",
        "/v1/Workspaces/{WorkspaceSid}/Tasks/{TaskSid}/Reservations/{Sid}",
        "get",
        "200",
    ),
    (
        "UpdateTaskReservation",
        "/v1/Workspaces/{WorkspaceSid}/Tasks/{TaskSid}/Reservations/{Sid}",
        "post",
        "200",
    ),
    (
        "ListWorkerReservation",
        "/v1/Workspaces/{WorkspaceSid}/Workers/{WorkerSid}/Reservations",
        "get",
        "200",
    ),
    (
        "FetchWorkerReservation",
        "/v1/Workspaces/{WorkspaceSid}/Workers/{WorkerSid}/Reservations/{Sid}",
        "get",
        "200",
    ),
    (
        "UpdateWorkerReservation",
        "/v1/Workspaces/{WorkspaceSid}/Workers/{WorkerSid}/Reservations/{Sid}",
        "post",
        "200",
    ),
    ("ListEvent", "/v1/Workspaces/{WorkspaceSid}/Events", "get", "200"),
    ("FetchEvent", "/v1/Workspaces/{WorkspaceSid}/Events/{Sid}", "get", "200"),
    # -- real-time statistics
    (
        "FetchWorkspaceRealTimeStatistics",
        "/v1/Workspaces/{WorkspaceSid}/RealTimeStatistics",
        "get",
        "200",
    ),
    (
        "FetchTaskQueueRealTimeStatistics",
        "/v1/Workspaces/{WorkspaceSid}/TaskQueues/{TaskQueueSid}/RealTimeStatistics",
        "get",
        "200",
    ),
    (
        "CreateTaskQueueBulkRealTimeStatistics",
        "/v1/Workspaces/{WorkspaceSid}/TaskQueues/RealTimeStatistics",
        "post",
        "200",
    ),
    (
        "FetchWorkflowRealTimeStatistics",
        "/v1/Workspaces/{WorkspaceSid}/Workflows/{WorkflowSid}/RealTimeStatistics",
        "get",
        "200",
    ),
    (
        "FetchWorkersRealTimeStatistics",
        "/v1/Workspaces/{WorkspaceSid}/Workers/RealTimeStatistics",
        "get",
        "200",
    ),
    # -- cumulative statistics and the combined Statistics
    (
        "FetchWorkspaceCumulativeStatistics",
        "/v1/Workspaces/{WorkspaceSid}/CumulativeStatistics",
        "get",
        "200",
    ),
    (
        "FetchTaskQueueCumulativeStatistics",
        "/v1/Workspaces/{WorkspaceSid}/TaskQueues/{TaskQueueSid}/CumulativeStatistics",
        "get",
        "200",
    ),
    (
        "FetchWorkflowCumulativeStatistics",
        "/v1/Workspaces/{WorkspaceSid}/Workflows/{WorkflowSid}/CumulativeStatistics",
        "get",
        "200",
    ),
    (
        "FetchWorkersCumulativeStatistics",
        "/v1/Workspaces/{WorkspaceSid}/Workers/CumulativeStatistics",
        "get",
        "200",
    ),
    (
        "FetchWorkerInstanceStatistics",
        "/v1/Workspaces/{WorkspaceSid}/Workers/{WorkerSid}/Statistics",
        "get",
        "200",
    ),
    (
        "FetchWorkspaceStatistics",
        "/v1/Workspaces/{WorkspaceSid}/Statistics",
        "get",
        "200",
    ),
    (
        "FetchTaskQueueStatistics",
        "/v1/Workspaces/{WorkspaceSid}/TaskQueues/{TaskQueueSid}/Statistics",
        "get",
        "200",
    ),
    (
        "ListTaskQueuesStatistics",
        "/v1/Workspaces/{WorkspaceSid}/TaskQueues/Statistics",
        "get",
        "200",
    ),
    (
        "FetchWorkflowStatistics",
        "/v1/Workspaces/{WorkspaceSid}/Workflows/{WorkflowSid}/Statistics",
        "get",
        "200",
    ),
    (
        "FetchWorkerStatistics",
        "/v1/Workspaces/{WorkspaceSid}/Workers/Statistics",
        "get",
        "200",
    ),
]
DELETES = [
    ("DeleteWorkspace", "/v1/Workspaces/{Sid}"),
    ("DeleteActivity", "/v1/Workspaces/{WorkspaceSid}/Activities/{Sid}"),
    ("DeleteTaskChannel", "/v1/Workspaces/{WorkspaceSid}/TaskChannels/{Sid}"),
    ("DeleteWorker", "/v1/Workspaces/{WorkspaceSid}/Workers/{Sid}"),
    ("DeleteTaskQueue", "/v1/Workspaces/{WorkspaceSid}/TaskQueues/{Sid}"),
    ("DeleteWorkflow", "/v1/Workspaces/{WorkspaceSid}/Workflows/{Sid}"),
    ("DeleteTask", "/v1/Workspaces/{WorkspaceSid}/Tasks/{Sid}"),
]


# -- the schema side -------------------------------------------------------------------


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0's `nullable` spelled the JSON Schema way (type lists, anyOf null)."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        if "$ref" in converted:
            return {"anyOf": [converted, {"type": "null"}]}
        if "type" in converted:
            converted["type"] = [converted["type"], "null"]
        if "enum" in converted:
            converted["enum"] = [*converted["enum"], None]
    return converted


@pytest.fixture(scope="module")
def contract() -> dict[str, Any]:
    return load_contract()


@pytest.fixture(scope="module")
def registry(contract: dict[str, Any]) -> Registry:
    resource = Resource(contents=_json_schema(copy.deepcopy(contract)), specification=DRAFT7)
    return Registry().with_resource(DOCUMENT_URI, resource)


def _pointer(*parts: str) -> str:
    return "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


_TWILIO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_checker = FormatChecker()


@_checker.checks("date-time")
def _is_twilio_date(value: object) -> bool:
    if not isinstance(value, str) or not _TWILIO_DATE.match(value):
        return False
    datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
    return True


@_checker.checks("uri")
def _is_absolute_url(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


@_checker.checks("uri-map")
def _is_url_map(value: object) -> bool:
    return isinstance(value, dict) and all(_is_absolute_url(url) for url in value.values())


def _validate(registry: Registry, schema: dict[str, Any], body: Any) -> None:
    validator = Draft7Validator(schema, registry=registry, format_checker=_checker)
    problems = [
        f"{'/'.join(map(str, error.absolute_path)) or '(body)'}: {error.message}"
        for error in validator.iter_errors(body)
    ]
    assert not problems, "\n".join(problems[:20])


def _response_schema(
    contract: dict[str, Any], template: str, method: str, status: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The $ref schema for an operation's response, and the raw schema it points at."""
    raw = contract["paths"][template][method]["responses"][status]["content"]["application/json"][
        "schema"
    ]
    pointer = _pointer(
        "paths", template, method, "responses", status, "content", "application/json", "schema"
    )
    return {"$ref": f"{DOCUMENT_URI}#/{pointer}"}, raw


def _resolve(contract: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        path = schema["$ref"].removeprefix("#/").split("/")
        schema = contract
        for part in path:
            schema = schema[part.replace("~1", "/").replace("~0", "~")]
    return schema


# -- the sandbox side ------------------------------------------------------------------


@pytest.fixture(scope="module")
def exchanges(live: Live) -> dict[str, tuple[int, Any]]:
    """Call every operation once over raw HTTP; operationId -> (status, JSON body)."""
    seen: dict[str, tuple[int, Any]] = {}

    def call(operation: str, method: str, path: str, **kwargs: Any) -> Any:
        response = live.http(method, path, **kwargs)
        body = response.json() if response.content else None
        seen[operation] = (response.status_code, body)
        assert response.status_code < 400, (operation, response.text)
        return body

    workspace = call(
        "CreateWorkspace",
        "POST",
        "/v1/Workspaces",
        data={"FriendlyName": "Contract", "EventCallbackUrl": "https://example.com/events"},
    )
    ws = f"/v1/Workspaces/{workspace['sid']}"
    call("FetchWorkspace", "GET", ws)
    call("ListWorkspace", "GET", "/v1/Workspaces")

    activity = call("CreateActivity", "POST", f"{ws}/Activities", data={"FriendlyName": "Reserved"})
    busy = live.http("POST", f"{ws}/Activities", data={"FriendlyName": "Busy"}).json()
    call("FetchActivity", "GET", f"{ws}/Activities/{activity['sid']}")
    call(
        "UpdateActivity",
        "POST",
        f"{ws}/Activities/{activity['sid']}",
        data={"FriendlyName": "Held"},
    )
    call("ListActivity", "GET", f"{ws}/Activities")
    available = next(
        a for a in live.http("GET", f"{ws}/Activities").json()["activities"] if a["available"]
    )
    call("UpdateWorkspace", "POST", ws, data={"TimeoutActivitySid": available["sid"]})

    channel = call(
        "CreateTaskChannel",
        "POST",
        f"{ws}/TaskChannels",
        data={"FriendlyName": "Callbacks", "UniqueName": "callbacks"},
    )
    call("FetchTaskChannel", "GET", f"{ws}/TaskChannels/{channel['sid']}")
    call(
        "UpdateTaskChannel",
        "POST",
        f"{ws}/TaskChannels/{channel['sid']}",
        data={"FriendlyName": "CB"},
    )
    call("ListTaskChannel", "GET", f"{ws}/TaskChannels")

    worker = call(
        "CreateWorker",
        "POST",
        f"{ws}/Workers",
        data={"FriendlyName": "Alice", "Attributes": '{"languages": ["es"]}'},
    )
    call("FetchWorker", "GET", f"{ws}/Workers/{worker['sid']}")
    call(
        "UpdateWorker",
        "POST",
        f"{ws}/Workers/{worker['sid']}",
        data={"ActivitySid": available["sid"]},
    )
    call("ListWorker", "GET", f"{ws}/Workers")
    channels = f"{ws}/Workers/{worker['sid']}/Channels"
    listed = call("ListWorkerChannel", "GET", channels)
    call("FetchWorkerChannel", "GET", f"{channels}/{listed['channels'][0]['sid']}")
    call("UpdateWorkerChannel", "POST", f"{channels}/chat", data={"Capacity": "3"})

    queue = call(
        "CreateTaskQueue",
        "POST",
        f"{ws}/TaskQueues",
        data={
            "FriendlyName": "Spanish",
            "TargetWorkers": 'languages HAS "es"',
            "ReservationActivitySid": activity["sid"],
            "AssignmentActivitySid": busy["sid"],
        },
    )
    call("FetchTaskQueue", "GET", f"{ws}/TaskQueues/{queue['sid']}")
    call("UpdateTaskQueue", "POST", f"{ws}/TaskQueues/{queue['sid']}", data={"TaskOrder": "LIFO"})
    call("ListTaskQueue", "GET", f"{ws}/TaskQueues")

    workflow = call(
        "CreateWorkflow",
        "POST",
        f"{ws}/Workflows",
        data={
            "FriendlyName": "Flow",
            "Configuration": routing(('lang == "es"', queue["sid"]), default=queue["sid"]),
            "AssignmentCallbackUrl": "https://example.com/assign",
        },
    )
    call("FetchWorkflow", "GET", f"{ws}/Workflows/{workflow['sid']}")
    call(
        "UpdateWorkflow",
        "POST",
        f"{ws}/Workflows/{workflow['sid']}",
        data={"TaskReservationTimeout": "300"},
    )
    call("ListWorkflow", "GET", f"{ws}/Workflows")

    task = call("CreateTask", "POST", f"{ws}/Tasks", data={"Attributes": '{"lang": "es"}'})
    call("FetchTask", "GET", f"{ws}/Tasks/{task['sid']}")
    call("UpdateTask", "POST", f"{ws}/Tasks/{task['sid']}", data={"Priority": "5"})
    call("ListTask", "GET", f"{ws}/Tasks")

    by_task = f"{ws}/Tasks/{task['sid']}/Reservations"
    # Routing offered the task to Alice, available in the only queue.
    (reservation,) = live.http("GET", by_task).json()["reservations"]
    by_worker = f"{ws}/Workers/{worker['sid']}/Reservations"
    call("ListTaskReservation", "GET", by_task)
    call("FetchTaskReservation", "GET", f"{by_task}/{reservation['sid']}")
    call("ListWorkerReservation", "GET", by_worker)
    call("FetchWorkerReservation", "GET", f"{by_worker}/{reservation['sid']}")
    call(
        "UpdateWorkerReservation",
        "POST",
        f"{by_worker}/{reservation['sid']}",
        data={"ReservationStatus": "accepted"},
    )
    call(
        "UpdateTaskReservation",
        "POST",
        f"{by_task}/{reservation['sid']}",
        data={"ReservationStatus": "completed"},
    )

    events = call("ListEvent", "GET", f"{ws}/Events")
    call("FetchEvent", "GET", f"{ws}/Events/{events['events'][0]['sid']}")

    # -- real-time statistics (a second task waits, so the longest waiting task is named)
    live.http("POST", f"{ws}/Tasks", data={"Attributes": '{"lang": "es"}', "Priority": "3"})
    call("FetchWorkspaceRealTimeStatistics", "GET", f"{ws}/RealTimeStatistics")
    call(
        "FetchTaskQueueRealTimeStatistics",
        "GET",
        f"{ws}/TaskQueues/{queue['sid']}/RealTimeStatistics",
        params={"TaskChannel": "default"},
    )
    call(
        "CreateTaskQueueBulkRealTimeStatistics",
        "POST",
        f"{ws}/TaskQueues/RealTimeStatistics",
        json={"QueueSids": [queue["sid"]]},
    )
    call(
        "FetchWorkflowRealTimeStatistics",
        "GET",
        f"{ws}/Workflows/{workflow['sid']}/RealTimeStatistics",
    )
    call("FetchWorkersRealTimeStatistics", "GET", f"{ws}/Workers/RealTimeStatistics")

    # -- cumulative statistics and the combined Statistics (with every optional part shown)
    split = {"SplitByWaitTime": "5,30"}
    call("FetchWorkspaceCumulativeStatistics", "GET", f"{ws}/CumulativeStatistics", params=split)
    call(
        "FetchTaskQueueCumulativeStatistics",
        "GET",
        f"{ws}/TaskQueues/{queue['sid']}/CumulativeStatistics",
        params=split,
    )
    call(
        "FetchWorkflowCumulativeStatistics",
        "GET",
        f"{ws}/Workflows/{workflow['sid']}/CumulativeStatistics",
        params=split,
    )
    call("FetchWorkersCumulativeStatistics", "GET", f"{ws}/Workers/CumulativeStatistics")
    call("FetchWorkerInstanceStatistics", "GET", f"{ws}/Workers/{worker['sid']}/Statistics")
    call("FetchWorkspaceStatistics", "GET", f"{ws}/Statistics", params=split)
    call("FetchTaskQueueStatistics", "GET", f"{ws}/TaskQueues/{queue['sid']}/Statistics")
    call("ListTaskQueuesStatistics", "GET", f"{ws}/TaskQueues/Statistics")
    call("FetchWorkflowStatistics", "GET", f"{ws}/Workflows/{workflow['sid']}/Statistics")
    call("FetchWorkerStatistics", "GET", f"{ws}/Workers/Statistics")

    spare_task = live.http("POST", f"{ws}/Tasks", data={"Attributes": "{}"}).json()
    call("DeleteTask", "DELETE", f"{ws}/Tasks/{spare_task['sid']}")
    spare_worker = live.http("POST", f"{ws}/Workers", data={"FriendlyName": "Spare"}).json()
    call("DeleteWorker", "DELETE", f"{ws}/Workers/{spare_worker['sid']}")
    call("DeleteTaskChannel", "DELETE", f"{ws}/TaskChannels/{channel['sid']}")
    spare_flow = live.http(
        "POST",
        f"{ws}/Workflows",
        data={"FriendlyName": "Spare", "Configuration": routing(default=queue["sid"])},
    ).json()
    call("DeleteWorkflow", "DELETE", f"{ws}/Workflows/{spare_flow['sid']}")
    spare_queue = live.http("POST", f"{ws}/TaskQueues", data={"FriendlyName": "Spare"}).json()
    call("DeleteTaskQueue", "DELETE", f"{ws}/TaskQueues/{spare_queue['sid']}")
    spare_activity = live.http("POST", f"{ws}/Activities", data={"FriendlyName": "Spare"}).json()
    call("DeleteActivity", "DELETE", f"{ws}/Activities/{spare_activity['sid']}")
    spare_workspace = live.http("POST", "/v1/Workspaces", data={"FriendlyName": "Spare"}).json()
    call("DeleteWorkspace", "DELETE", f"/v1/Workspaces/{spare_workspace['sid']}")
    return seen


# -- the tests ---------------------------------------------------------------------------


def test_the_operation_table_matches_the_contract(contract: dict[str, Any]) -> None:
    for operation, template, method, status in OPERATIONS:
        entry = contract["paths"][template][method]
        assert entry["operationId"] == operation
        assert status in entry["responses"]
    for operation, template in DELETES:
        assert contract["paths"][template]["delete"]["operationId"] == operation
        assert "204" in contract["paths"][template]["delete"]["responses"]


@pytest.mark.parametrize(
    ("operation", "template", "method", "status"),
    OPERATIONS,
    ids=[operation for operation, *_ in OPERATIONS],
)
def test_response_matches_the_contract(
    contract: dict[str, Any],
    registry: Registry,
    exchanges: dict[str, tuple[int, Any]],
    operation: str,
    template: str,
    method: str,
    status: str,
) -> None:
    got_status, body = exchanges[operation]
    assert str(got_status) == status
    schema, raw = _response_schema(contract, template, method, status)
    _validate(registry, schema, body)

    # The schemas require nothing; the sandbox promises every listed field, and no others.
    resolved = _resolve(contract, raw)
    if "meta" in resolved["properties"]:
        key = body["meta"]["key"]
        assert set(body) == {key, "meta"}
        assert set(body["meta"]) == set(resolved["properties"]["meta"]["properties"])
        assert body[key], f"{operation}: the list should not be empty for this check"
        record_schema = _resolve(contract, resolved["properties"][key]["items"])
        records = body[key]
    else:
        record_schema, records = resolved, [body]
    for record in records:
        assert set(record) == set(record_schema["properties"]), operation


@pytest.mark.parametrize(("operation", "template"), DELETES, ids=[op for op, _ in DELETES])
def test_delete_answers_204_without_body(
    exchanges: dict[str, tuple[int, Any]], operation: str, template: str
) -> None:
    assert exchanges[operation] == (204, None)


def test_error_bodies_have_twilio_shape(live: Live, registry: Registry) -> None:
    ws = f"/v1/Workspaces/{live.sandbox.seeded.workspace_sid}"
    for method, path, kwargs, status in (
        ("GET", ws, {"auth": None}, 401),
        ("GET", f"{ws}/Tasks/WT{'0' * 32}", {}, 404),
        ("POST", f"{ws}/Workers", {"data": {}}, 400),
        ("DELETE", f"{ws}/Events", {}, 405),
    ):
        response = live.http(method, path, **kwargs)
        assert response.status_code == status
        body = response.json()
        _validate(registry, ERROR_SCHEMA, body)
        assert body["status"] == status
