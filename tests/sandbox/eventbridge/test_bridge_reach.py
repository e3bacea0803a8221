"""A worker's token and the reservations of other workers: the path the SDK names a
reservation by through its task (Tasks/WT.../Reservations/WR...) reaches the token's own
reservations only, as Workers/WK.../Reservations does.

Followed: the SDK (twilio-taskrouter 2.1.1): a Worker answers its own reservations through
Workers/<its sid>/Reservations/<sid> (lib/Reservation.js); only a Supervisor, "a privileged
TaskRouter Worker" (https://twilio.github.io/twilio-taskrouter.js/Supervisor.html), posts to
another worker's reservation, through Tasks/<task>/Reservations/<sid> (lib/Supervisor.js,
Instruction=supervise). The event bridge's own contract
(taskrouter_sandbox/eventbridge/requests.py): a worker's token reaches "its own worker,
channels and reservations".
"""

from __future__ import annotations

import json

from taskrouter_sandbox.testing import TaskRouterSandbox
from tests.sandbox.eventbridge.test_bridge_calls import assert_error, box, call

__all__ = ["box"]


def test_a_workers_token_cannot_answer_another_workers_reservation_through_its_task(
    box: TaskRouterSandbox,
) -> None:
    box.workspace.workers(box.workers["Bob"]).update(activity_sid=box.activities["Idle"])
    task = box.workspace.tasks.create(
        workflow_sid=box.workflow_sid, attributes=json.dumps({"selected_language": "en"})
    )
    (offered,) = box.workspace.tasks(task.sid).reservations.list()
    assert offered.worker_sid == box.workers["Bob"]
    path = f"Workspaces/{box.workspace_sid}/Tasks/{task.sid}/Reservations/{offered.sid}"
    assert_error(
        call(box, path, "POST", {"ReservationStatus": "rejected"}, worker="Alice"),
        403,
        20403,
        "another worker",
    )
    assert box.workspace.tasks(task.sid).reservations(offered.sid).fetch().reservation_status == (
        "pending"
    )
    # Bob's own token still may.
    status, body = call(box, path, "POST", {"ReservationStatus": "rejected"}, worker="Bob")
    assert status == 200 and body["payload"]["reservation_status"] == "rejected"
