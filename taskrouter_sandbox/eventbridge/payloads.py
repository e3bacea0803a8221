"""The resources as the event bridge carries them to the Worker SDK, made from their REST JSON.

The Worker SDK reads its own shape, not the REST API's (its descriptors in twilio-taskrouter
name every field they require): times as seconds since the epoch (a channel's
last_reserved_time in milliseconds), a task's status as assignment_status and its queue as
queue_sid and queue_name, a reservation's as reservation_status with its task inside, and the
version that If-Match takes beside each Task, Worker and Reservation. The SDK refuses a
payload that lacks one of them, so every field it requires is always present (None where the
resource has no value).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any


def _epoch(value: str | None) -> int | None:
    """Seconds since the epoch of an ISO 8601 time (the REST API's format)."""
    if not value:
        return None
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())


def version_of(etag: str | None) -> str | None:
    """The version inside an ETag ('"3"' -> '3'), which the SDK sends back as If-Match."""
    return etag.strip('"') if etag else None


def _dates(rest: dict[str, Any], *names: str) -> dict[str, int | None]:
    return {name: _epoch(rest.get(name)) for name in names}


def worker(rest: dict[str, Any], version: str | None) -> dict[str, Any]:
    return {
        "account_sid": rest["account_sid"],
        "activity_name": rest["activity_name"],
        "activity_sid": rest["activity_sid"],
        "attributes": rest["attributes"],
        "available": rest["available"],
        **_dates(rest, "date_created", "date_status_changed", "date_updated"),
        "friendly_name": rest["friendly_name"],
        "sid": rest["sid"],
        "workspace_sid": rest["workspace_sid"],
        "version": version,
    }


def activity(rest: dict[str, Any]) -> dict[str, Any]:
    return {
        "account_sid": rest["account_sid"],
        "available": rest["available"],
        **_dates(rest, "date_created", "date_updated"),
        "friendly_name": rest["friendly_name"],
        "sid": rest["sid"],
        "workspace_sid": rest["workspace_sid"],
    }


def task(rest: dict[str, Any], version: str | None) -> dict[str, Any]:
    return {
        "account_sid": rest["account_sid"],
        "addons": rest.get("addons") or "{}",
        "age": rest["age"],
        "assignment_status": rest["assignment_status"],
        "attributes": rest["attributes"],
        **_dates(rest, "date_created", "date_updated"),
        "priority": rest["priority"],
        "queue_name": rest.get("task_queue_friendly_name"),
        "queue_sid": rest.get("task_queue_sid"),
        "reason": rest.get("reason"),
        "routing_target": rest.get("routing_target"),
        "sid": rest["sid"],
        "task_channel_sid": rest.get("task_channel_sid"),
        "task_channel_unique_name": rest.get("task_channel_unique_name"),
        "timeout": rest["timeout"],
        "version": version,
        "virtual_start_time": _epoch(rest.get("virtual_start_time")),
        "workflow_name": rest.get("workflow_friendly_name"),
        "workflow_sid": rest.get("workflow_sid"),
        "workspace_sid": rest["workspace_sid"],
    }


def reservation(
    rest: dict[str, Any],
    version: str | None,
    task_payload: dict[str, Any] | None,
    timeout: int | None,
) -> dict[str, Any]:
    """task_payload: the reservation's task (task()); timeout: seconds it was offered for."""
    return {
        "account_sid": rest["account_sid"],
        **_dates(rest, "date_created", "date_updated"),
        "reservation_status": rest["reservation_status"],
        "reservation_timeout": timeout,
        "sid": rest["sid"],
        "task": task_payload,
        "task_sid": rest["task_sid"],
        "version": version,
        "worker_name": rest.get("worker_name"),
        "worker_sid": rest["worker_sid"],
        "workspace_sid": rest["workspace_sid"],
    }


def channel(rest: dict[str, Any]) -> dict[str, Any]:
    return {
        "account_sid": rest["account_sid"],
        "assigned_tasks": rest["assigned_tasks"],
        "available": rest["available"],
        "available_capacity_percentage": rest["available_capacity_percentage"],
        "configured_capacity": rest["configured_capacity"],
        **_dates(rest, "date_created", "date_updated"),
        # The sandbox keeps no last reservation time (REST's WorkerChannel has none either).
        "last_reserved_time": None,
        "sid": rest["sid"],
        "task_channel_sid": rest["task_channel_sid"],
        "task_channel_unique_name": rest["task_channel_unique_name"],
        "worker_sid": rest["worker_sid"],
        "workspace_sid": rest["workspace_sid"],
    }
