"""The sandbox's HTTP face: TaskRouter v1 paths, parameters, JSON shapes, errors and paging.

A Flask blueprint that turns requests as the twilio library sends them into engine calls.

Over 600 lines: one view per TaskRouter operation, all in one create_blueprint. It is split
by resource in the sandbox's planned restructure (one module per resource behind a route
table), in one step with the engine, rather than piecemeal.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from flask import Blueprint, Response, request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException

from sandbox.clock import parse_twilio, to_twilio
from sandbox.engine import (
    QUEUE_ORDERS,
    RESERVATION_STATUSES,
    TASK_STATUSES,
    EngineError,
    NotFound,
    Paging,
    truthy,
)
from sandbox.store import Page

if TYPE_CHECKING:
    from sandbox import Sandbox

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 50
# OPTIONS is listed so that Flask adds no automatic (HTML, 200) answer of its own.
METHODS = ("GET", "POST", "DELETE", "PUT", "PATCH", "OPTIONS")
_PAGING_PARAMETERS = ("PageSize", "Page", "PageToken")


# -- errors -------------------------------------------------------------------------------


class ApiError(Exception):
    """An HTTP answer in Twilio's error shape."""

    def __init__(
        self, status: int, code: int, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_body(status: int, code: int, message: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body), status=status, mimetype="application/json", headers=headers or {}
    )


def _error(error: ApiError) -> Response:
    return _json(error_body(error.status, error.code, error.message), error.status, error.headers)


# -- parameters ---------------------------------------------------------------------------


class Params:
    """Typed access to form or query parameters, each bad value a 400 naming the parameter."""

    def __init__(self, source: MultiDict, where: str) -> None:
        self.source = source
        self.where = where

    def has(self, name: str) -> bool:
        return name in self.source

    def text(self, name: str, *, required: bool = False) -> str | None:
        values = self.source.getlist(name)
        if not values:
            if required:
                raise ApiError(400, 20001, f"Missing required parameter {name} in the {self.where}")
            return None
        if len(values) > 1:
            raise ApiError(
                400, 20001, f"Parameter {name} was given {len(values)} times: give it once"
            )
        return values[0]

    def boolean(self, name: str) -> bool | None:
        value = self.text(name)
        if value is None:
            return None
        lowered = value.strip().lower()
        if lowered not in ("true", "false"):
            raise ApiError(400, 20001, f"Parameter {name} must be true or false, got {value!r}")
        return lowered == "true"

    def flag(self, name: str) -> bool | None:
        """Twilio's loose flags (Available): true, 1 or yes is true, anything else false."""
        value = self.text(name)
        return None if value is None else truthy(value)

    def integer(self, name: str, low: int | None = None, high: int | None = None) -> int | None:
        value = self.text(name)
        if value is None:
            return None
        if not re.fullmatch(r"[+-]?\d{1,19}", value.strip()):
            raise ApiError(400, 20001, f"Parameter {name} must be an integer, got {value!r}")
        number = int(value)
        # SQLite stores 64-bit integers; anything wider is out of range for every parameter.
        low = -(2**63) if low is None else low
        high = 2**63 - 1 if high is None else high
        if not low <= number <= high:
            raise ApiError(
                400, 20001, f"Parameter {name} must be between {low} and {high}, got {number}"
            )
        return number

    def choice(self, name: str, choices: Iterable[str]) -> str | None:
        value = self.text(name)
        choices = tuple(choices)
        if value is not None and value not in choices:
            raise ApiError(
                400,
                20001,
                f"Parameter {name} must be one of {', '.join(choices)}, got {value!r}",
            )
        return value

    def date(self, name: str) -> datetime | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            return parse_twilio(value)
        except (ValueError, OverflowError):
            raise ApiError(
                400,
                20001,
                f"Parameter {name} must be an ISO 8601 date such as 2024-01-01T09:00:00Z, "
                f"got {value!r}",
            ) from None

    def strings(self, name: str) -> list[str] | None:
        """A list parameter: repeated keys (as the twilio library sends) or comma-separated."""
        values = self.source.getlist(name)
        if not values:
            return None
        items = [item.strip() for value in values for item in value.split(",")]
        return [item for item in items if item]

    def paging(self) -> Paging:
        page_size = self.integer("PageSize", 1, MAX_PAGE_SIZE)
        page_number = self.integer("Page", 0, 10**9)
        page_token = self.text("PageToken")
        return Paging(
            page_size=DEFAULT_PAGE_SIZE if page_size is None else page_size,
            page_number=page_number or 0,
            page_token=page_token or None,
        )


def _form() -> Params:
    return Params(request.form, "post body")


def _query() -> Params:
    return Params(request.args, "query string")


# -- URLs ---------------------------------------------------------------------------------


class Urls:
    """Absolute URLs at the host and prefix that answered this request."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")

    def workspace(self, workspace_sid: str) -> str:
        return f"{self.base}/v1/Workspaces/{workspace_sid}"

    def child(self, workspace_sid: str, *parts: str) -> str:
        return "/".join((self.workspace(workspace_sid), *parts))


def _base_url(url_prefix: str) -> str:
    return request.url_root.rstrip("/") + url_prefix


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
            },
        }

    def task_queue(self, row: dict[str, Any]) -> dict[str, Any]:
        workspace_sid = row["workspace_sid"]
        links = {"workspace": self.urls.workspace(workspace_sid)}
        for kind in ("assignment_activity", "reservation_activity"):
            if row[f"{kind}_sid"]:
                links[kind] = self.urls.child(workspace_sid, "Activities", row[f"{kind}_sid"])
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
            "url": self.urls.child(workspace_sid, "TaskQueues", row["sid"]),
            "workspace_sid": workspace_sid,
            "links": links,
        }

    def workflow(self, row: dict[str, Any]) -> dict[str, Any]:
        workspace_sid = row["workspace_sid"]
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
            "url": self.urls.child(workspace_sid, "Workflows", row["sid"]),
            "links": {"workspace": self.urls.workspace(workspace_sid)},
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


def _list_body(
    key: str, result: Page, paging: Paging, records: list[dict[str, Any]], path_url: str
) -> dict[str, Any]:
    """TaskRouter's list envelope; the filters of this request carry over to every page."""
    filters = [
        (name, value)
        for name, values in request.args.lists()
        if name not in _PAGING_PARAMETERS
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


ALERT_LEVELS = ("error", "warning")


def _alert(row: dict[str, Any], account_sid: str, base: str) -> dict[str, Any]:
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
        "request_method": "POST",
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


# -- the blueprint ------------------------------------------------------------------------


def create_blueprint(sandbox: Sandbox, url_prefix: str = "") -> Blueprint:
    """The sandbox's REST API, to be registered at url_prefix ("" or "/sandbox")."""
    url_prefix = url_prefix.rstrip("/")
    blueprint = Blueprint("sandbox", __name__)
    engine = sandbox.engine

    def urls() -> Urls:
        return Urls(_base_url(url_prefix))

    def render() -> Renderer:
        return Renderer(sandbox.account_sid, urls())

    def resource_path() -> str:
        path = request.path
        return path[len(url_prefix) :] if url_prefix and path.startswith(url_prefix) else path

    def not_found() -> ApiError:
        return ApiError(404, 20404, f"The requested resource {resource_path()} was not found")

    def list_url() -> str:
        return urls().base + resource_path().rstrip("/")

    # -- request lifecycle ---------------------------------------------------------

    @blueprint.before_request
    def authenticate() -> Response | None:
        auth = request.authorization
        if (
            auth is None
            or auth.type != "basic"
            or not hmac.compare_digest((auth.username or "").encode(), sandbox.account_sid.encode())
            or not hmac.compare_digest((auth.password or "").encode(), sandbox.auth_token.encode())
        ):
            return _error(
                ApiError(
                    401,
                    20003,
                    "Authenticate: use HTTP basic auth with the sandbox's account SID as the "
                    "username and its auth token as the password",
                    {"WWW-Authenticate": 'Basic realm="TaskRouter sandbox"'},
                )
            )
        return None

    @blueprint.errorhandler(ApiError)
    def api_error(error: ApiError) -> Response:
        return _error(error)

    @blueprint.errorhandler(EngineError)
    def engine_error(error: EngineError) -> Response:
        if isinstance(error, NotFound):
            return _error(not_found())
        return _error(ApiError(error.status, error.code, error.message))

    @blueprint.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        known = {401: 20003, 404: 20404, 405: 20004}
        code = known.get(status, 20500 if status >= 500 else 20001)
        return _error(ApiError(status, code, error.description or error.name))

    @blueprint.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        logger.exception("sandbox: unexpected error answering %s %s", request.method, request.path)
        return _error(ApiError(500, 20500, "Internal Server Error: the sandbox logged the details"))

    def route(rule: str, **handlers: Callable[..., Response]) -> None:
        allowed = ", ".join(sorted(handlers))

        def dispatch(**path: str) -> Response:
            method = "GET" if request.method == "HEAD" else request.method
            handler = handlers.get(method)
            if handler is None:
                raise ApiError(
                    405,
                    20004,
                    f"Method {request.method} not allowed on {resource_path()}: use {allowed}",
                    {"Allow": allowed},
                )
            return handler(**path)

        endpoint = re.sub(r"[^A-Za-z]+", "_", rule).strip("_") or "root"
        blueprint.add_url_rule(
            rule, endpoint, dispatch, methods=list(METHODS), strict_slashes=False
        )

    def fetched(body: dict[str, Any]) -> Response:
        return _json(body, 200)

    def created(body: dict[str, Any]) -> Response:
        return _json(body, 201)

    def deleted() -> Response:
        return Response(status=204)

    # -- workspaces ----------------------------------------------------------------

    def list_workspaces() -> Response:
        params = _query()
        paging = params.paging()
        result = engine.list_workspaces(paging, friendly_name=params.text("FriendlyName"))
        renderer = render()
        records = [renderer.workspace(row) for row in result.rows]
        return fetched(_list_body("workspaces", result, paging, records, list_url()))

    def create_workspace() -> Response:
        params = _form()
        row = engine.create_workspace(
            params.text("FriendlyName", required=True),
            event_callback_url=params.text("EventCallbackUrl"),
            events_filter=params.text("EventsFilter"),
            multi_task_enabled=bool(params.boolean("MultiTaskEnabled")),
            prioritize_queue_order=params.choice("PrioritizeQueueOrder", QUEUE_ORDERS) or "FIFO",
            template=params.choice("Template", ("NONE", "FIFO")),
        )
        return created(render().workspace(row))

    def fetch_workspace(workspace_sid: str) -> Response:
        return fetched(render().workspace(engine.get_workspace(workspace_sid)))

    def update_workspace(workspace_sid: str) -> Response:
        params = _form()
        row = engine.update_workspace(
            workspace_sid,
            friendly_name=params.text("FriendlyName"),
            default_activity_sid=params.text("DefaultActivitySid"),
            timeout_activity_sid=params.text("TimeoutActivitySid"),
            event_callback_url=params.text("EventCallbackUrl"),
            events_filter=params.text("EventsFilter"),
            multi_task_enabled=params.boolean("MultiTaskEnabled"),
            prioritize_queue_order=params.choice("PrioritizeQueueOrder", QUEUE_ORDERS),
        )
        return fetched(render().workspace(row))

    def delete_workspace(workspace_sid: str) -> Response:
        engine.delete_workspace(workspace_sid)
        return deleted()

    route("/v1/Workspaces", GET=list_workspaces, POST=create_workspace)
    route(
        "/v1/Workspaces/<workspace_sid>",
        GET=fetch_workspace,
        POST=update_workspace,
        DELETE=delete_workspace,
    )

    # -- activities ----------------------------------------------------------------

    def list_activities(workspace_sid: str) -> Response:
        params = _query()
        paging = params.paging()
        result = engine.list_activities(
            workspace_sid,
            paging,
            friendly_name=params.text("FriendlyName"),
            available=params.flag("Available"),
        )
        renderer = render()
        records = [renderer.activity(row) for row in result.rows]
        return fetched(_list_body("activities", result, paging, records, list_url()))

    def create_activity(workspace_sid: str) -> Response:
        params = _form()
        row = engine.create_activity(
            workspace_sid,
            params.text("FriendlyName", required=True),
            available=bool(params.flag("Available")),
        )
        return created(render().activity(row))

    def fetch_activity(workspace_sid: str, sid: str) -> Response:
        return fetched(render().activity(engine.get_activity(workspace_sid, sid)))

    def update_activity(workspace_sid: str, sid: str) -> Response:
        params = _form()
        if params.has("Available"):
            raise ApiError(
                400, 20001, "Parameter Available cannot be changed after an Activity is created"
            )
        row = engine.update_activity(workspace_sid, sid, friendly_name=params.text("FriendlyName"))
        return fetched(render().activity(row))

    def delete_activity(workspace_sid: str, sid: str) -> Response:
        engine.delete_activity(workspace_sid, sid)
        return deleted()

    route("/v1/Workspaces/<workspace_sid>/Activities", GET=list_activities, POST=create_activity)
    route(
        "/v1/Workspaces/<workspace_sid>/Activities/<sid>",
        GET=fetch_activity,
        POST=update_activity,
        DELETE=delete_activity,
    )

    # -- task channels -------------------------------------------------------------

    def list_task_channels(workspace_sid: str) -> Response:
        paging = _query().paging()
        result = engine.list_task_channels(workspace_sid, paging)
        renderer = render()
        records = [renderer.task_channel(row) for row in result.rows]
        return fetched(_list_body("channels", result, paging, records, list_url()))

    def create_task_channel(workspace_sid: str) -> Response:
        params = _form()
        row = engine.create_task_channel(
            workspace_sid,
            params.text("FriendlyName", required=True),
            params.text("UniqueName", required=True),
            channel_optimized_routing=params.boolean("ChannelOptimizedRouting"),
        )
        return created(render().task_channel(row))

    def fetch_task_channel(workspace_sid: str, sid: str) -> Response:
        return fetched(render().task_channel(engine.get_task_channel(workspace_sid, sid)))

    def update_task_channel(workspace_sid: str, sid: str) -> Response:
        params = _form()
        row = engine.update_task_channel(
            workspace_sid,
            sid,
            friendly_name=params.text("FriendlyName"),
            channel_optimized_routing=params.boolean("ChannelOptimizedRouting"),
        )
        return fetched(render().task_channel(row))

    def delete_task_channel(workspace_sid: str, sid: str) -> Response:
        engine.delete_task_channel(workspace_sid, sid)
        return deleted()

    route(
        "/v1/Workspaces/<workspace_sid>/TaskChannels",
        GET=list_task_channels,
        POST=create_task_channel,
    )
    route(
        "/v1/Workspaces/<workspace_sid>/TaskChannels/<sid>",
        GET=fetch_task_channel,
        POST=update_task_channel,
        DELETE=delete_task_channel,
    )

    # -- workers -------------------------------------------------------------------

    def list_workers(workspace_sid: str) -> Response:
        params = _query()
        paging = params.paging()
        result = engine.list_workers(
            workspace_sid,
            paging,
            activity_name=params.text("ActivityName"),
            activity_sid=params.text("ActivitySid"),
            available=params.flag("Available"),
            friendly_name=params.text("FriendlyName"),
            target_workers_expression=params.text("TargetWorkersExpression"),
            task_queue_name=params.text("TaskQueueName"),
            task_queue_sid=params.text("TaskQueueSid"),
            ordering=params.text("Ordering"),
        )
        renderer = render()
        records = [renderer.worker(row, listed=True) for row in result.rows]
        return fetched(_list_body("workers", result, paging, records, list_url()))

    def create_worker(workspace_sid: str) -> Response:
        params = _form()
        row = engine.create_worker(
            workspace_sid,
            params.text("FriendlyName", required=True),
            activity_sid=params.text("ActivitySid"),
            attributes=params.text("Attributes"),
        )
        return created(render().worker(row))

    def fetch_worker(workspace_sid: str, sid: str) -> Response:
        return fetched(render().worker(engine.get_worker(workspace_sid, sid)))

    def update_worker(workspace_sid: str, sid: str) -> Response:
        params = _form()
        row = engine.update_worker(
            workspace_sid,
            sid,
            activity_sid=params.text("ActivitySid"),
            attributes=params.text("Attributes"),
            friendly_name=params.text("FriendlyName"),
            reject_pending_reservations=bool(params.boolean("RejectPendingReservations")),
        )
        return fetched(render().worker(row))

    def delete_worker(workspace_sid: str, sid: str) -> Response:
        engine.delete_worker(workspace_sid, sid)
        return deleted()

    route("/v1/Workspaces/<workspace_sid>/Workers", GET=list_workers, POST=create_worker)
    route(
        "/v1/Workspaces/<workspace_sid>/Workers/<sid>",
        GET=fetch_worker,
        POST=update_worker,
        DELETE=delete_worker,
    )

    # -- task queues ---------------------------------------------------------------

    def list_task_queues(workspace_sid: str) -> Response:
        params = _query()
        paging = params.paging()
        result = engine.list_task_queues(
            workspace_sid,
            paging,
            friendly_name=params.text("FriendlyName"),
            evaluate_worker_attributes=params.text("EvaluateWorkerAttributes"),
            worker_sid=params.text("WorkerSid"),
            ordering=params.text("Ordering"),
        )
        renderer = render()
        records = [renderer.task_queue(row) for row in result.rows]
        return fetched(_list_body("task_queues", result, paging, records, list_url()))

    def queue_fields(params: Params) -> dict[str, Any]:
        return {
            "target_workers": params.text("TargetWorkers"),
            "max_reserved_workers": params.integer("MaxReservedWorkers"),
            "task_order": params.choice("TaskOrder", QUEUE_ORDERS),
            "reservation_activity_sid": params.text("ReservationActivitySid"),
            "assignment_activity_sid": params.text("AssignmentActivitySid"),
        }

    def create_task_queue(workspace_sid: str) -> Response:
        params = _form()
        row = engine.create_task_queue(
            workspace_sid, params.text("FriendlyName", required=True), **queue_fields(params)
        )
        return created(render().task_queue(row))

    def fetch_task_queue(workspace_sid: str, sid: str) -> Response:
        return fetched(render().task_queue(engine.get_task_queue(workspace_sid, sid)))

    def update_task_queue(workspace_sid: str, sid: str) -> Response:
        params = _form()
        row = engine.update_task_queue(
            workspace_sid, sid, friendly_name=params.text("FriendlyName"), **queue_fields(params)
        )
        return fetched(render().task_queue(row))

    def delete_task_queue(workspace_sid: str, sid: str) -> Response:
        engine.delete_task_queue(workspace_sid, sid)
        return deleted()

    route("/v1/Workspaces/<workspace_sid>/TaskQueues", GET=list_task_queues, POST=create_task_queue)
    route(
        "/v1/Workspaces/<workspace_sid>/TaskQueues/<sid>",
        GET=fetch_task_queue,
        POST=update_task_queue,
        DELETE=delete_task_queue,
    )

    # -- workflows -----------------------------------------------------------------

    def list_workflows(workspace_sid: str) -> Response:
        params = _query()
        paging = params.paging()
        result = engine.list_workflows(
            workspace_sid, paging, friendly_name=params.text("FriendlyName")
        )
        renderer = render()
        records = [renderer.workflow(row) for row in result.rows]
        return fetched(_list_body("workflows", result, paging, records, list_url()))

    def create_workflow(workspace_sid: str) -> Response:
        params = _form()
        row = engine.create_workflow(
            workspace_sid,
            params.text("FriendlyName", required=True),
            params.text("Configuration", required=True),
            assignment_callback_url=params.text("AssignmentCallbackUrl"),
            fallback_assignment_callback_url=params.text("FallbackAssignmentCallbackUrl"),
            task_reservation_timeout=params.integer("TaskReservationTimeout"),
        )
        return created(render().workflow(row))

    def fetch_workflow(workspace_sid: str, sid: str) -> Response:
        return fetched(render().workflow(engine.get_workflow(workspace_sid, sid)))

    def update_workflow(workspace_sid: str, sid: str) -> Response:
        params = _form()
        re_evaluate = params.text("ReEvaluateTasks")
        if re_evaluate is not None and re_evaluate.lower() not in ("true", "false"):
            raise ApiError(
                400, 20001, f"Parameter ReEvaluateTasks must be true or false, got {re_evaluate!r}"
            )
        row = engine.update_workflow(
            workspace_sid,
            sid,
            friendly_name=params.text("FriendlyName"),
            configuration=params.text("Configuration"),
            assignment_callback_url=params.text("AssignmentCallbackUrl"),
            fallback_assignment_callback_url=params.text("FallbackAssignmentCallbackUrl"),
            task_reservation_timeout=params.integer("TaskReservationTimeout"),
            re_evaluate_tasks=(re_evaluate or "").lower() == "true",
        )
        return fetched(render().workflow(row))

    def delete_workflow(workspace_sid: str, sid: str) -> Response:
        engine.delete_workflow(workspace_sid, sid)
        return deleted()

    route("/v1/Workspaces/<workspace_sid>/Workflows", GET=list_workflows, POST=create_workflow)
    route(
        "/v1/Workspaces/<workspace_sid>/Workflows/<sid>",
        GET=fetch_workflow,
        POST=update_workflow,
        DELETE=delete_workflow,
    )

    # -- tasks ---------------------------------------------------------------------

    def list_tasks(workspace_sid: str) -> Response:
        params = _query()
        paging = params.paging()
        result = engine.list_tasks(
            workspace_sid,
            paging,
            priority=params.integer("Priority"),
            assignment_status=params.strings("AssignmentStatus"),
            workflow_sid=params.text("WorkflowSid"),
            workflow_name=params.text("WorkflowName"),
            task_queue_sid=params.text("TaskQueueSid"),
            task_queue_name=params.text("TaskQueueName"),
            evaluate_task_attributes=params.text("EvaluateTaskAttributes"),
            routing_target=params.text("RoutingTarget"),
            ordering=params.text("Ordering"),
            has_addons=params.boolean("HasAddons"),
        )
        renderer = render()
        records = [renderer.task(row, listed=True) for row in result.rows]
        return fetched(_list_body("tasks", result, paging, records, list_url()))

    def create_task(workspace_sid: str) -> Response:
        params = _form()
        row = engine.create_task(
            workspace_sid,
            attributes=params.text("Attributes"),
            workflow_sid=params.text("WorkflowSid"),
            priority=params.integer("Priority"),
            timeout=params.integer("Timeout"),
            task_channel=params.text("TaskChannel"),
            virtual_start_time=params.date("VirtualStartTime"),
            routing_target=params.text("RoutingTarget"),
            ignore_capacity=params.boolean("IgnoreCapacity"),
            task_queue_sid=params.text("TaskQueueSid"),
        )
        return created(render().task(row))

    def fetch_task(workspace_sid: str, sid: str) -> Response:
        return fetched(render().task(engine.get_task(workspace_sid, sid)))

    def update_task(workspace_sid: str, sid: str) -> Response:
        params = _form()
        row = engine.update_task(
            workspace_sid,
            sid,
            assignment_status=params.choice("AssignmentStatus", TASK_STATUSES),
            reason=params.text("Reason"),
            attributes=params.text("Attributes"),
            priority=params.integer("Priority"),
            task_channel=params.text("TaskChannel"),
            virtual_start_time=params.date("VirtualStartTime"),
        )
        return fetched(render().task(row))

    def delete_task(workspace_sid: str, sid: str) -> Response:
        engine.delete_task(workspace_sid, sid)
        return deleted()

    route("/v1/Workspaces/<workspace_sid>/Tasks", GET=list_tasks, POST=create_task)
    route(
        "/v1/Workspaces/<workspace_sid>/Tasks/<sid>",
        GET=fetch_task,
        POST=update_task,
        DELETE=delete_task,
    )

    # -- reservations --------------------------------------------------------------

    def reservation_update(params: Params) -> dict[str, Any]:
        instruction_params: dict[str, Any] = {}
        for name in ("CallAccept", "RedirectAccept"):
            value = params.boolean(name)
            if value is not None:
                instruction_params[name] = value
        for name, values in params.source.lists():
            if name not in ("ReservationStatus", "WorkerActivitySid", "Instruction"):
                instruction_params.setdefault(name, values[0] if len(values) == 1 else values)
        return {
            "reservation_status": params.choice("ReservationStatus", RESERVATION_STATUSES),
            "worker_activity_sid": params.text("WorkerActivitySid"),
            "instruction": params.text("Instruction"),
            "instruction_params": instruction_params,
        }

    def list_task_reservations(workspace_sid: str, task_sid: str) -> Response:
        params = _query()
        paging = params.paging()
        result = engine.list_reservations(
            workspace_sid,
            paging,
            task_sid=task_sid,
            reservation_status=params.choice("ReservationStatus", RESERVATION_STATUSES),
            filter_worker_sid=params.text("WorkerSid"),
        )
        renderer = render()
        records = [renderer.reservation(row, under="task") for row in result.rows]
        return fetched(_list_body("reservations", result, paging, records, list_url()))

    def fetch_task_reservation(workspace_sid: str, task_sid: str, sid: str) -> Response:
        row = engine.get_reservation(workspace_sid, sid, task_sid=task_sid)
        return fetched(render().reservation(row, under="task"))

    def update_task_reservation(workspace_sid: str, task_sid: str, sid: str) -> Response:
        row = engine.update_reservation(
            workspace_sid, sid, task_sid=task_sid, **reservation_update(_form())
        )
        return fetched(render().reservation(row, under="task"))

    def list_worker_reservations(workspace_sid: str, worker_sid: str) -> Response:
        params = _query()
        paging = params.paging()
        result = engine.list_reservations(
            workspace_sid,
            paging,
            worker_sid=worker_sid,
            reservation_status=params.choice("ReservationStatus", RESERVATION_STATUSES),
        )
        renderer = render()
        records = [renderer.reservation(row, under="worker") for row in result.rows]
        return fetched(_list_body("reservations", result, paging, records, list_url()))

    def fetch_worker_reservation(workspace_sid: str, worker_sid: str, sid: str) -> Response:
        row = engine.get_reservation(workspace_sid, sid, worker_sid=worker_sid)
        return fetched(render().reservation(row, under="worker"))

    def update_worker_reservation(workspace_sid: str, worker_sid: str, sid: str) -> Response:
        row = engine.update_reservation(
            workspace_sid, sid, worker_sid=worker_sid, **reservation_update(_form())
        )
        return fetched(render().reservation(row, under="worker"))

    route(
        "/v1/Workspaces/<workspace_sid>/Tasks/<task_sid>/Reservations", GET=list_task_reservations
    )
    route(
        "/v1/Workspaces/<workspace_sid>/Tasks/<task_sid>/Reservations/<sid>",
        GET=fetch_task_reservation,
        POST=update_task_reservation,
    )
    route(
        "/v1/Workspaces/<workspace_sid>/Workers/<worker_sid>/Reservations",
        GET=list_worker_reservations,
    )
    route(
        "/v1/Workspaces/<workspace_sid>/Workers/<worker_sid>/Reservations/<sid>",
        GET=fetch_worker_reservation,
        POST=update_worker_reservation,
    )

    # -- events --------------------------------------------------------------------

    def list_events(workspace_sid: str) -> Response:
        params = _query()
        paging = params.paging()
        result = engine.list_events(
            workspace_sid,
            paging,
            event_type=params.text("EventType"),
            task_sid=params.text("TaskSid"),
            worker_sid=params.text("WorkerSid"),
            reservation_sid=params.text("ReservationSid"),
            task_queue_sid=params.text("TaskQueueSid"),
            workflow_sid=params.text("WorkflowSid"),
            task_channel=params.text("TaskChannel"),
            sid=params.text("Sid"),
            minutes=params.integer("Minutes"),
            start_date=params.date("StartDate"),
            end_date=params.date("EndDate"),
        )
        renderer = render()
        records = [renderer.event(row) for row in result.rows]
        return fetched(_list_body("events", result, paging, records, list_url()))

    def fetch_event(workspace_sid: str, sid: str) -> Response:
        return fetched(render().event(engine.get_event(workspace_sid, sid)))

    route("/v1/Workspaces/<workspace_sid>/Events", GET=list_events)
    route("/v1/Workspaces/<workspace_sid>/Events/<sid>", GET=fetch_event)

    # -- alerts (the shape of Twilio's Monitor API, for client.monitor.v1.alerts) ------

    def list_alerts() -> Response:
        params = _query()
        paging = params.paging()
        result = engine.page_alerts(paging, log_level=params.choice("LogLevel", ALERT_LEVELS))
        base = urls().base
        records = [_alert(row, sandbox.account_sid, base) for row in result.rows]
        return fetched(_list_body("alerts", result, paging, records, list_url()))

    def fetch_alert(sid: str) -> Response:
        return fetched(_alert(engine.get_alert(sid), sandbox.account_sid, urls().base))

    route("/v1/Alerts", GET=list_alerts)
    route("/v1/Alerts/<sid>", GET=fetch_alert)

    # -- anything else under the prefix --------------------------------------------

    def unknown(**_: str) -> Response:
        raise not_found()

    rules = [("/", "unknown_root"), ("/<path:unknown_path>", "unknown_path")]
    if url_prefix:
        # The bare prefix itself (no trailing slash) would otherwise get an HTML redirect.
        rules.append(("", "unknown_prefix"))
    for rule, endpoint in rules:
        blueprint.add_url_rule(rule, endpoint, unknown, methods=list(METHODS))

    return blueprint
