"""A worker's resources in the event bridge's shape (payloads.py), read from the engine.

What the SDK is sent after a change (hub.py) and what answers its reservation requests: the
engine's rows, rendered to REST JSON by the API's own renderer, then shaped for the SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from taskrouter_sandbox.api.rendering import Renderer, Urls
from taskrouter_sandbox.clock import from_storage
from taskrouter_sandbox.domain.values import Paging
from taskrouter_sandbox.eventbridge import payloads

if TYPE_CHECKING:
    from taskrouter_sandbox.runtime import Sandbox

# Reservations the SDK loads on connect: those still open for the worker (its "Active").
ACTIVE_STATUSES = ("pending", "accepted", "wrapping")
_ALL = Paging(page_size=1000)


class Resources:
    """Reads one sandbox's workers, tasks and reservations as the SDK's payloads."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.engine = sandbox.engine

    @property
    def render(self) -> Renderer:
        # The account SID changes with a reset to new credentials; the URLs are not sent.
        return Renderer(self.sandbox.account_sid, Urls(""))

    def worker(self, workspace_sid: str, worker_sid: str, **override: Any) -> dict[str, Any]:
        row = self.engine.get_worker(workspace_sid, worker_sid)
        rest = self.render.worker(row)
        return {**payloads.worker(rest, str(row["version"])), **override}

    def task(self, workspace_sid: str, task_sid: str, **override: Any) -> dict[str, Any]:
        row = self.engine.get_task(workspace_sid, task_sid)
        rest = self.render.task(row)
        return {**payloads.task(rest, str(row["version"])), **override}

    def reservation(
        self, workspace_sid: str, reservation_sid: str, *, status: str | None = None
    ) -> dict[str, Any]:
        """status: the reservation's status as an event recorded it, which a later change
        may have moved on since."""
        row = self.engine.get_reservation(workspace_sid, reservation_sid)
        rest = self.render.reservation(row, under="worker")
        if status is not None:
            rest["reservation_status"] = status
        offered = from_storage(row["timeout_at"]) - from_storage(row["date_created"])
        task = self.task(workspace_sid, row["task_sid"])
        return payloads.reservation(rest, str(row["version"]), task, round(offered.total_seconds()))

    def task_workers(self, workspace_sid: str, task_sid: str) -> set[str]:
        """The workers with a reservation of the task: its task events are theirs too."""
        page = self.engine.list_reservations(workspace_sid, _ALL, task_sid=task_sid)
        return {row["worker_sid"] for row in page.rows}

    def channel(self, workspace_sid: str, worker_sid: str, channel: str) -> dict[str, Any]:
        """channel: the WorkerChannel's SID or its task channel's unique name."""
        row = self.engine.get_worker_channel(workspace_sid, worker_sid, channel)
        return payloads.channel(self.render.worker_channel(row))
