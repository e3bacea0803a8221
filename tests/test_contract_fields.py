"""The mocks and requests in these tests against Twilio's TaskRouter v1 description: the fields
a mocked answer carries and the form fields this server sends must exist there.
"""

from __future__ import annotations

import pytest

from taskrouter_quickstart.routes.tasks import MAX_TASK_TIMEOUT
from tests.contract import load_contract

TASKS = "/v1/Workspaces/{WorkspaceSid}/Tasks"
RESERVATION = "/v1/Workspaces/{WorkspaceSid}/Tasks/{TaskSid}/Reservations/{Sid}"


@pytest.fixture(scope="module")
def contract() -> dict:
    return load_contract()


def schema_properties(contract: dict, name: str) -> set[str]:
    return set(contract["components"]["schemas"][name]["properties"])


def form_schema(contract: dict, path: str) -> dict[str, dict]:
    body = contract["paths"][path]["post"]["requestBody"]["content"]
    return body["application/x-www-form-urlencoded"]["schema"]["properties"]


def form_properties(contract: dict, path: str) -> set[str]:
    return set(form_schema(contract, path))


def test_mocked_task_has_the_contract_fields(contract, task_json):
    assert set(task_json()) == schema_properties(contract, "taskrouter.v1.workspace.task")


def test_mocked_reservation_has_the_contract_fields(contract, reservation_json):
    expected = schema_properties(contract, "taskrouter.v1.workspace.task.task_reservation")
    assert set(reservation_json()) == expected


def test_sent_form_fields_exist(contract):
    assert {"WorkflowSid", "Attributes", "Priority", "Timeout"} <= form_properties(contract, TASKS)
    assert {"ReservationStatus", "WorkerActivitySid"} <= form_properties(contract, RESERVATION)


def test_success_codes(contract):
    assert "201" in contract["paths"][TASKS]["post"]["responses"]
    assert "200" in contract["paths"][RESERVATION]["post"]["responses"]


def test_task_timeout_maximum_matches_the_description(contract):
    assert f"{MAX_TASK_TIMEOUT:,}" in form_schema(contract, TASKS)["Timeout"]["description"]
