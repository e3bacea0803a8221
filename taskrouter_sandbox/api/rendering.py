"""Twilio's JSON for each resource, the list envelope with its paging links, and alerts.

URLs are absolute, at the host and prefix that answered the request.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode

from flask import Response, request

from taskrouter_sandbox.clock import to_twilio
from taskrouter_sandbox.domain.values import Paging
from taskrouter_sandbox.engine.worker_channels import available_capacity_percentage
from taskrouter_sandbox.store import Page

PAGING_PARAMETERS = ("PageSize", "Page", "PageToken")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body), status=status, mimetype="application/json", headers=headers or {}
    )


def fetched(body: dict[str, Any], etag: str | None = None) -> Response:
    return json_response(body, 200, {"ETag": etag} if etag else None)


def created(body: dict[str, Any], etag: str | None = None) -> Response:
    return json_response(body, 201, {"ETag": etag} if etag else None)


def deleted() -> Response:
    return Response(status=204)


# -- URLs ---------------------------------------------------------------------------------


class Urls:
    """Absolute URLs at the host and prefix that answered this request."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")

    def workspace(self, workspace_sid: str) -> str:
        return f"{self.base}/v1/Workspaces/{workspace_sid}"

    def child(self, workspace_sid: str, *parts: str) -> str:
        return "/".join((self.workspace(workspace_sid), *parts))


def statistics_links(url: str) -> dict[str, str]:
    """The three statistics resources under a Workspace, TaskQueue or Workflow at url."""
    return {
        "statistics": f"{url}/Statistics",
        "real_time_statistics": f"{url}/RealTimeStatistics",
        "cumulative_statistics": f"{url}/CumulativeStatistics",
    }


# -- rendering ----------------------------------------------------------------------------


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


class Renderer:
    """Twilio's JSON for each resource: every field its schema lists, null where unset."""

    def __init__(self, account_sid: str, urls: Urls) -> None:
        self.account_sid = account_sid
        self.urls = urls

    def workspace(self, row: dict[str, Any]) -> dict[str, Any]:
        sid = row["sid"]
        url = self.urls.workspace(sid)
        return {
            "account_sid": self.account_sid,
            "date_created": to_twilio(row["date_created"]),
            "date_updated": to_twilio(row["date_updated"]),
            "default_activity_name": row["default_activity_name"],
            "default_activity_sid": row["default_activity_sid"],
            "event_callback_url": row["event_callback_url"],
            "events_filter": row["events_filter"],
            "friendly_name": row["friendly_name"],
            "multi_task_enabled": bool(row["multi_task_enabled"]),
            "sid": sid,
            "timeout_activity_name": row["timeout_activity_name"],
            "timeout_activity_sid": row["timeout_activity_sid"],
            "prioritize_queue_order": row["prioritize_queue_order"],
            "url": url,
            "links": {
                "activities": f"{url}/Activities",
                "task_queues": f"{url}/TaskQueues",
                "tasks": f"{url}/Tasks",
                "workers": f"{url}/Workers",
                "workflows": f"{url}/Workflows",
                "task_channels": f"{url}/TaskChannels",
                "events": f"{url}/Events",
                **statistics_links(url),
            },
        }

    def activity(self, row: dict[str, Any]) -> dict[str, Any]:
        workspace_sid = row["workspace_sid"]
        return {
            "account_sid": self.account_sid,
            "available": bool(row["available"]),
            "date_created": to_twilio(row["date_created"]),
            "date_updated": to_twilio(row["date_updated"]),
            "friendly_name": row["friendly_name"],
            "sid": row["sid"],
            "workspace_sid": workspace_sid,
            "url": self.urls.child(workspace_sid, "Activities", row["sid"]),
            "links": {"workspace": self.urls.workspace(workspace_sid)},
        }

    def task_channel(self, row: dict[str, Any]) -> dict[str, Any]:
        workspace_sid = row["workspace_sid"]
        return {
            "account_sid": self.account_sid,
            "date_created": to_twilio(row["date_created"]),
            "date_updated": to_twilio(row["date_updated"]),
            "friendly_name": row["friendly_name"],
            "sid": row["sid"],
            "unique_name": row["unique_name"],
            "workspace_sid": workspace_sid,
            "channel_optimized_routing": _bool(row["channel_optimized_routing"]),
            "url": self.urls.child(workspace_sid, "TaskChannels", row["sid"]),
            "links": {"workspace": self.urls.workspace(workspace_sid)},
        }

    def worker(self, row: dict[str, Any], *, listed: bool = False) -> dict[str, Any]:
        workspace_sid = row["workspace_sid"]
        url = self.urls.child(workspace_sid, "Workers", row["sid"])
        workers = self.urls.child(workspace_sid, "Workers")
        return {
            "account_sid": self.account_sid,
            "activity_name": row["activity_name"],
            "activity_sid": row["activity_sid"],
            # TaskRouter leaves attributes out of lists; a fetch shows them.
            "attributes": None if listed else row["attributes"],
            "available": bool(row["available"]),
            "date_created": to_twilio(row["date_created"]),
            "date_status_changed": to_twilio(row["date_status_changed"]),
            "date_updated": to_twilio(row["date_updated"]),
            "friendly_name": row["friendly_name"],
            "sid": row["sid"],
            "workspace_sid": workspace_sid,
            "url": url,
            "links": {
                "activity": self.urls.child(workspace_sid, "Activities", row["activity_sid"]),
                "workspace": self.urls.workspace(workspace_sid),
                "reservations": f"{url}/Reservations",
                # The OpenAPI example names the one list twice.
                "channels": f"{url}/Channels",
                "worker_channels": f"{url}/Channels",
                # The OpenAPI example links a worker to the statistics of all workers, and to
                # its own under worker_statistics.
                **statistics_links(workers),
                "worker_statistics": f"{url}/Statistics",
            },
        }

    def worker_channel(self, row: dict[str, Any]) -> dict[str, Any]:
        workspace_sid = row["workspace_sid"]
        return {
            "account_sid": self.account_sid,
            "assigned_tasks": row["assigned_tasks"],
            "available": bool(row["available"]),
            "available_capacity_percentage": available_capacity_percentage(row),
            "configured_capacity": row["capacity"],
            "date_created": to_twilio(row["date_created"]),
            "date_updated": to_twilio(row["date_updated"]),
            "sid": row["sid"],
            "task_channel_sid": row["task_channel_sid"],
            "task_channel_unique_name": row["task_channel_unique_name"],
            "worker_sid": row["worker_sid"],
            "workspace_sid": workspace_sid,
            "url": self.urls.child(
                workspace_sid, "Workers", row["worker_sid"], "Channels", row["sid"]
            ),
        }

    def task_queue(self, row: dict[str, Any]) -> dict[str, Any]:
        workspace_sid = row["workspace_sid"]
        url = self.urls.child(workspace_sid, "TaskQueues", row["sid"])
        queues = self.urls.child(workspace_sid, "TaskQueues")
        links = {"workspace": self.urls.workspace(workspace_sid)}
        for kind in ("assignment_activity", "reservation_activity"):
            if row[f"{kind}_sid"]:
                links[kind] = self.urls.child(workspace_sid, "Activities", row[f"{kind}_sid"])
        links.update(statistics_links(url))
        links["list_statistics"] = f"{queues}/Statistics"
        links["bulk_real_time_statistics"] = f"{queues}/RealTimeStatistics"
        return {
            "account_sid": self.account_sid,
            "assignment_activity_sid": row["assignment_activity_sid"],
            "assignment_activity_name": row["assignment_activity_name"],
            "date_created": to_twilio(row["date_created"]),
            "date_updated": to_twilio(row["date_updated"]),
            "friendly_name": row["friendly_name"],
            "max_reserved_workers": row["max_reserved_workers"],
            "reservation_activity_sid": row["reservation_activity_sid"],
            "reservation_activity_name": row["reservation_activity_name"],
            "sid": row["sid"],
            "target_workers": row["target_workers"],
            "task_order": row["task_order"],
            "url": url,
            "workspace_sid": workspace_sid,
            "links": links,
        }

    def workflow(self, row: dict[str, Any]) -> dict[str, Any]:
        workspace_sid = row["workspace_sid"]
        url = self.urls.child(workspace_sid, "Workflows", row["sid"])
        return {
            "account_sid": self.account_sid,
            "assignment_callback_url": row["assignment_callback_url"],
            "configuration": row["configuration"],
            "date_created": to_twilio(row["date_created"]),
            "date_updated": to_twilio(row["date_updated"]),
            "document_content_type": row["document_content_type"],
            "fallback_assignment_callback_url": row["fallback_assignment_callback_url"],
            "friendly_name": row["friendly_name"],
            "sid": row["sid"],
            "task_reservation_timeout": row["task_reservation_timeout"],
            "workspace_sid": workspace_sid,
            "url": url,
            # The OpenAPI example shows only the statistics; workspace is kept as every
            # other resource of the workspace has it.
            "links": {"workspace": self.urls.workspace(workspace_sid), **statistics_links(url)},
        }

    def task(self, row: dict[str, Any], *, listed: bool = False) -> dict[str, Any]:
        workspace_sid = row["workspace_sid"]
        url = self.urls.child(workspace_sid, "Tasks", row["sid"])
        links = {
            "workspace": self.urls.workspace(workspace_sid),
            "reservations": f"{url}/Reservations",
        }
        if row["task_queue_sid"]:
            links["task_queue"] = self.urls.child(
                workspace_sid, "TaskQueues", row["task_queue_sid"]
            )
        if row["workflow_sid"]:
            links["workflow"] = self.urls.child(workspace_sid, "Workflows", row["workflow_sid"])
        return {
            "account_sid": self.account_sid,
            "age": row["age"],
            "assignment_status": row["assignment_status"],
            "attributes": None if listed else row["attributes"],
            "addons": row["addons"],
            "date_created": to_twilio(row["date_created"]),
            "date_updated": to_twilio(row["date_updated"]),
            "task_queue_entered_date": to_twilio(row["task_queue_entered_date"]),
            "priority": row["priority"],
            "reason": row["reason"],
            "sid": row["sid"],
            "task_queue_sid": row["task_queue_sid"],
            "task_queue_friendly_name": row["task_queue_friendly_name"],
            "task_channel_sid": row["task_channel_sid"],
            "task_channel_unique_name": row["task_channel_unique_name"],
            "timeout": row["timeout"],
            "workflow_sid": row["workflow_sid"],
            "workflow_friendly_name": row["workflow_friendly_name"],
            "workspace_sid": workspace_sid,
            "url": url,
            "links": links,
            "virtual_start_time": to_twilio(row["virtual_start_time"] or row["date_created"]),
            "ignore_capacity": _bool(row["ignore_capacity"]),
            "routing_target": row["routing_target"],
        }

    def reservation(self, row: dict[str, Any], *, under: str) -> dict[str, Any]:
        """under is "task" or "worker": the path the reservation was reached by."""
        workspace_sid = row["workspace_sid"]
        if under == "worker":
            url = self.urls.child(
                workspace_sid, "Workers", row["worker_sid"], "Reservations", row["sid"]
            )
        else:
            url = self.urls.child(
                workspace_sid, "Tasks", row["task_sid"], "Reservations", row["sid"]
            )
        return {
            "account_sid": self.account_sid,
            "date_created": to_twilio(row["date_created"]),
            "date_updated": to_twilio(row["date_updated"]),
            "reservation_status": row["reservation_status"],
            "sid": row["sid"],
            "task_sid": row["task_sid"],
            "worker_name": row["worker_name"],
            "worker_sid": row["worker_sid"],
            "workspace_sid": workspace_sid,
            "url": url,
            "links": {
                "task": self.urls.child(workspace_sid, "Tasks", row["task_sid"]),
                "worker": self.urls.child(workspace_sid, "Workers", row["worker_sid"]),
                "workspace": self.urls.workspace(workspace_sid),
            },
        }

    def _resource_url(self, workspace_sid: str, kind: str, sid: str, data: dict) -> str | None:
        collection = {
            "activity": "Activities",
            "task": "Tasks",
            "task_channel": "TaskChannels",
            "task_queue": "TaskQueues",
            "worker": "Workers",
            "workflow": "Workflows",
        }
        if kind == "workspace":
            return self.urls.workspace(sid)
        if kind == "reservation" and data.get("TaskSid"):
            return self.urls.child(workspace_sid, "Tasks", data["TaskSid"], "Reservations", sid)
        if kind in collection:
            return self.urls.child(workspace_sid, collection[kind], sid)
        return None

    def event(self, row: dict[str, Any]) -> dict[str, Any]:
        workspace_sid = row["workspace_sid"]
        data = json.loads(row["event_data"])
        return {
            "account_sid": self.account_sid,
            "actor_sid": row["actor_sid"],
            "actor_type": row["actor_type"],
            "actor_url": self._resource_url(workspace_sid, row["actor_type"], row["actor_sid"], {}),
            "description": row["description"],
            "event_data": {_snake(name): value for name, value in data.items()},
            "event_date": to_twilio(row["event_date"]),
            "event_date_ms": row["event_date_ms"],
            "event_type": row["event_type"],
            "resource_sid": row["resource_sid"],
            "resource_type": row["resource_type"],
            "resource_url": self._resource_url(
                workspace_sid, row["resource_type"], row["resource_sid"], data
            ),
            "sid": row["sid"],
            "source": row["source"],
            "source_ip_address": row["source_ip_address"],
            "url": self.urls.child(workspace_sid, "Events", row["sid"]),
            "workspace_sid": workspace_sid,
        }


def list_body(
    key: str, result: Page, paging: Paging, records: list[dict[str, Any]], path_url: str
) -> dict[str, Any]:
    """TaskRouter's list envelope; the filters of this request carry over to every page."""
    filters = [
        (name, value)
        for name, values in request.args.lists()
        if name not in PAGING_PARAMETERS
        for value in values
    ]

    def page_url(page_number: int, token: str | None) -> str:
        query = [*filters, ("PageSize", paging.page_size), ("Page", page_number)]
        if token:
            query.append(("PageToken", token))
        return f"{path_url}?{urlencode(query)}"

    return {
        key: records,
        "meta": {
            "first_page_url": page_url(0, None),
            "key": key,
            "next_page_url": page_url(paging.page_number + 1, result.next_token)
            if result.next_token
            else None,
            "page": paging.page_number,
            "page_size": paging.page_size,
            "previous_page_url": page_url(max(paging.page_number - 1, 0), result.previous_token)
            if result.previous_token
            else None,
            "url": page_url(paging.page_number, paging.page_token),
        },
    }


def alert(row: dict[str, Any], account_sid: str, base: str) -> dict[str, Any]:
    """An alert as Twilio's Monitor API shows one (the sandbox keeps no request bodies)."""
    date = to_twilio(row["date_created"])
    return {
        "account_sid": account_sid,
        "alert_text": row["message"],
        "api_version": "v1",
        "date_created": date,
        "date_generated": date,
        "date_updated": date,
        "error_code": str(row["code"]),
        "log_level": row["level"],
        "more_info": f"https://www.twilio.com/docs/errors/{row['code']}",
        # Only callback alerts come from a request (Twilio's POST to the callback URL).
        "request_method": "POST" if row["url"] else None,
        "request_url": row["url"],
        "resource_sid": row["reservation_sid"] or row["workspace_sid"],
        "service_sid": row["workspace_sid"],
        "sid": row["sid"],
        "url": f"{base}/v1/Alerts/{row['sid']}",
        "request_variables": None,
        "request_headers": None,
        "response_body": None,
        "response_headers": None,
    }
