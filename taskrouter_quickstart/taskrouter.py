"""The TaskRouter client this app talks through: one twilio Client per app, built from settings.

It also owns TaskRouterError, the one error type every upstream failure is turned into.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

import requests
from flask import Flask, current_app, has_request_context
from twilio.base.exceptions import (
    TwilioException,
    TwilioRestException,
    TwilioServiceException,
)
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.rest import Client

EXTENSION_KEY = "taskrouter"

# Tasks no worker has accepted yet: Flex's real-time queues view calls them waiting (accepted
# ones are active), and TaskRouter's longest waiting task is the oldest of them. The page and
# `flask taskrouter status` count a queue's waiting tasks alike.
WAITING_TASK_STATUSES = ("pending", "reserved")


def waiting_tasks(tasks_by_status: object) -> int:
    """The waiting tasks in a RealTimeStatistics answer's tasks_by_status (a missing status
    is 0); ValueError when it is not an object of counts. Twilio's description quotes the
    counts ({"pending": "1"}), its examples give numbers: both are read."""
    if not isinstance(tasks_by_status, Mapping):
        raise ValueError(f"tasks_by_status {tasks_by_status!r} is not an object")
    total = 0
    for status in WAITING_TASK_STATUSES:
        value = tasks_by_status.get(status, 0)
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError(f"a task count {value!r} is not a number")
        total += int(value)
    return total


RESERVATION_NOT_PENDING_HINT = (
    "The reservation is no longer pending: it may have timed out or been answered already. "
    "Set the worker available again (Alice to Idle) and create another task, "
    "or raise the Workflow's Task Reservation Timeout."
)

# What the server's own sandbox needs when nothing, or something else, answers at its URL.
_SANDBOX_PORT_FIX = (
    "set PORT (and HOST) to the address the server is bound to (gunicorn --bind and PORT must "
    "match)"
)

# Messages TaskRouter gives when a reservation is past the point of being accepted or rejected.
_NOT_PENDING = re.compile(
    r"not pending|already in state|cannot be updated|timed? ?out|rescinded|canceled",
    re.IGNORECASE,
)


class TaskRouterError(Exception):
    """A failure to hand to the client as JSON: {"error": {status, code, message, more_info}}."""

    def __init__(
        self,
        status: int,
        code: int | str | None,
        message: str,
        more_info: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.more_info = more_info

    def as_dict(self) -> dict[str, object]:
        return {
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "more_info": self.more_info,
        }


class NotTheSandbox(Exception):
    """An answer at the local sandbox's URL that the sandbox never gives: another server's."""

    def __init__(self, status: int, content_type: str) -> None:
        super().__init__(f"HTTP {status} {content_type}")
        self.status = status
        self.content_type = content_type


class LocalSandboxHttpClient(TwilioHttpClient):
    """The HTTP client for the server's own sandbox, which answers JSON with Twilio error codes.

    Anything else came from another server on that port (PORT not the port being served), and
    would otherwise reach the client as a TaskRouter 404 or an unreadable answer.
    """

    def request(self, *args, **kwargs) -> TwilioResponse:
        response = super().request(*args, **kwargs)
        content_type = (response.headers or {}).get("Content-Type") or "no Content-Type"
        if not response.text:
            # Deletes answer 204 with no body at all.
            return response
        if content_type.split(";")[0].strip().lower() != "application/json":
            raise NotTheSandbox(response.status_code, content_type)
        if response.status_code >= 400 and not _has_twilio_code(response.text):
            raise NotTheSandbox(response.status_code, content_type)
        return response


def _has_twilio_code(text: str) -> bool:
    try:
        body = json.loads(text)
    except ValueError:
        return False
    return isinstance(body, dict) and _more_info(body.get("code")) is not None


@dataclass(frozen=True)
class TaskRouter:
    """A configured TaskRouter backend: where REST calls go and how callbacks are signed."""

    client: Client
    # None until the account has a workspace: `flask taskrouter setup` creates one.
    workspace_sid: str | None
    workflow_sid: str | None
    base_url: str
    # Signatures are always made with the account's auth token, even when an API key
    # makes the REST calls; None only when signature checks are switched off.
    auth_token: str | None
    # True when base_url is this server's own sandbox, so a failure to reach it is a
    # PORT that does not match the port being served, not TaskRouter being down.
    local_sandbox: bool = False

    @property
    def workspace(self):  # -> WorkspaceContext
        return self.client.taskrouter.v1.workspaces(
            _required("TWILIO_WORKSPACE_SID", self.workspace_sid)
        )

    @property
    def workflow(self):  # -> WorkflowContext
        return self.workspace.workflows(_required("TWILIO_WORKFLOW_SID", self.workflow_sid))

    def create_task(
        self,
        attributes: str,
        priority: int | None = None,
        timeout: int | None = None,
    ):
        """Create a Task on the configured Workflow; returns the twilio TaskInstance."""
        with self._upstream("create the task"):
            return self.workspace.tasks.create(
                workflow_sid=_required("TWILIO_WORKFLOW_SID", self.workflow_sid),
                attributes=attributes,
                priority=priority,
                timeout=timeout,
            )

    def update_reservation(
        self,
        task_sid: str,
        reservation_sid: str,
        reservation_status: str,
        worker_activity_sid: str | None = None,
    ):
        """Accept or reject a pending Reservation; returns the twilio ReservationInstance."""
        action = f"update reservation {reservation_sid} to {reservation_status}"
        with self._upstream(action, reservation=True):
            return (
                self.workspace.tasks(task_sid)
                .reservations(reservation_sid)
                .update(
                    reservation_status=reservation_status,
                    worker_activity_sid=worker_activity_sid,
                )
            )

    def update_worker_activity(self, worker_sid: str, activity_sid: str):
        """Move a Worker to another Activity; returns the twilio WorkerInstance."""
        with self._upstream(f"set worker {worker_sid} to activity {activity_sid}"):
            return self.workspace.workers(worker_sid).update(activity_sid=activity_sid)

    def update_task_status(self, task_sid: str, assignment_status: str, reason: str):
        """Cancel or complete a Task; returns the twilio TaskInstance."""
        with self._upstream(f"update task {task_sid} to {assignment_status}"):
            return self.workspace.tasks(task_sid).update(
                assignment_status=assignment_status, reason=reason
            )

    def upstream(self, action: str) -> AbstractContextManager[None]:
        """Turn any failure of the REST calls made inside into a TaskRouterError naming action."""
        return self._upstream(action)

    @contextmanager
    def _upstream(self, action: str, reservation: bool = False) -> Iterator[None]:
        try:
            yield
        except NotTheSandbox as exc:
            message = (
                f"TaskRouter at {self.base_url} answered HTTP {exc.status} with "
                f"{exc.content_type}, not the sandbox's JSON, while trying to {action}"
            )
            if self._serving_own_sandbox():
                message += ". " + self._sandbox_hint("another server answers there")
            raise TaskRouterError(502, "upstream_invalid_response", message) from exc
        except TwilioRestException as exc:
            raise _from_rest_exception(exc, reservation) from exc
        except TwilioServiceException as exc:
            message = exc.detail or exc.title
            raise _from_status(exc.status, exc.code, message, exc.type, reservation) from exc
        except TwilioException as exc:
            # A list page that is not 200 comes as a bare TwilioException holding the response.
            response = exc.args[1] if len(exc.args) > 1 else None
            if not isinstance(response, TwilioResponse):
                raise
            raise _from_page_response(response, reservation) from exc
        # Timeout first: a connect timeout is both a Timeout and a ConnectionError.
        except requests.exceptions.Timeout as exc:
            message = (
                f"TaskRouter at {self.base_url} did not answer in time while trying to "
                f"{action} (TWILIO_HTTP_TIMEOUT)"
            )
            if self._serving_own_sandbox():
                # A gunicorn worker without threads cannot answer its own call either.
                message += ". " + self._sandbox_hint(
                    "nothing answered in time",
                    "; serve with threads (gunicorn --threads 8) so the server can answer "
                    "its own calls",
                )
            raise TaskRouterError(504, "upstream_timeout", message) from exc
        except requests.exceptions.RequestException as exc:
            message = (
                f"Could not reach TaskRouter at {self.base_url} to {action}: {type(exc).__name__}"
            )
            if self._serving_own_sandbox():
                message += ". " + self._sandbox_hint("nothing answers there")
            raise TaskRouterError(502, "upstream_unreachable", message) from exc
        except ValueError as exc:
            # The library parses the answer as JSON; anything else means a wrong base URL.
            raise TaskRouterError(
                502,
                "upstream_invalid_response",
                f"TaskRouter at {self.base_url} answered with something that is not "
                f"TaskRouter JSON while trying to {action} (check TASKROUTER_BASE_URL)",
            ) from exc

    def _serving_own_sandbox(self) -> bool:
        # Only a request makes this process the server its sandbox lives in; a `flask
        # taskrouter` command calls a server that may simply not be running (cli says so).
        return self.local_sandbox and has_request_context()

    def _sandbox_hint(self, problem: str, more: str = "") -> str:
        return (
            f"The server calls its own sandbox at {self.base_url} but {problem}: "
            f"{_SANDBOX_PORT_FIX}{more}"
        )


def _required(name: str, sid: str | None) -> str:
    if not sid:
        raise TaskRouterError(
            503,
            "not_configured",
            f"{name} is not set: run `.venv/bin/flask --app app taskrouter setup` to create the "
            "quickstart workspace, put the SIDs it prints in .env and restart",
        )
    return sid


def _more_info(code: object) -> str | None:
    # Twilio error codes have five digits; a bare HTTP status in `code` has no page.
    if isinstance(code, int) and code >= 10000:
        return f"https://www.twilio.com/docs/errors/{code}"
    return None


def _from_rest_exception(exc: TwilioRestException, reservation: bool) -> TaskRouterError:
    return _from_status(exc.status, exc.code, exc.msg, _more_info(exc.code), reservation)


def _from_page_response(response: TwilioResponse, reservation: bool) -> TaskRouterError:
    try:
        body = json.loads(response.text)
    except (TypeError, ValueError):
        body = None
    if not isinstance(body, dict):
        body = {}
    code = body.get("code")
    return _from_status(
        response.status_code,
        code,
        str(body.get("message") or "TaskRouter refused to list the page"),
        _more_info(code),
        reservation,
    )


def _from_status(
    status: int,
    code: object,
    message: str,
    more_info: str | None,
    reservation: bool,
) -> TaskRouterError:
    message = str(message or "TaskRouter refused the request")
    code = code if isinstance(code, int | str) else None
    if status >= 500 or status < 400:
        # TaskRouter's own failure, not the caller's: the caller sees a bad gateway.
        return TaskRouterError(
            502, code, f"TaskRouter failed with HTTP {status}: {message}", more_info
        )
    not_pending = status in (409, 410) or (status == 400 and _NOT_PENDING.search(message))
    if reservation and not_pending:
        message = f"{message.rstrip('. ')}. {RESERVATION_NOT_PENDING_HINT}"
    return TaskRouterError(status, code, message, more_info)


def build_taskrouter(settings: Mapping[str, object]) -> TaskRouter:
    """The TaskRouter for the settings (a Twilio account, or the sandbox's filled-in values)."""
    account_sid = str(settings["TWILIO_ACCOUNT_SID"])
    api_key = settings.get("TWILIO_API_KEY")
    if api_key:
        username, password = str(api_key), str(settings["TWILIO_API_SECRET"])
    else:
        username, password = account_sid, str(settings["TWILIO_AUTH_TOKEN"])
    base_url = str(settings["TASKROUTER_BASE_URL"]).rstrip("/")
    local_sandbox = settings.get("BACKEND") == "sandbox"
    http_client_type = LocalSandboxHttpClient if local_sandbox else TwilioHttpClient
    client = Client(
        username=username,
        password=password,
        account_sid=account_sid,
        http_client=http_client_type(timeout=float(settings["TWILIO_HTTP_TIMEOUT"])),
        # Given no mapping the library reads TWILIO_EDGE/TWILIO_REGION from os.environ and
        # rewrites the host, which would send calls for a local base URL to Twilio.
        environment={"TWILIO_EDGE": "", "TWILIO_REGION": ""},
    )
    client.taskrouter.base_url = base_url
    if local_sandbox:
        # The sandbox lists its alerts at {base_url}/v1/Alerts, where Twilio's Monitor API
        # has them, so client.monitor.v1.alerts works against either.
        client.monitor.base_url = base_url
    auth_token = settings.get("TWILIO_AUTH_TOKEN")
    return TaskRouter(
        client=client,
        workspace_sid=settings.get("TWILIO_WORKSPACE_SID") or None,
        workflow_sid=settings.get("TWILIO_WORKFLOW_SID") or None,
        base_url=base_url,
        auth_token=str(auth_token) if auth_token else None,
        local_sandbox=local_sandbox,
    )


def init_app(app: Flask) -> None:
    """Build the app's one TaskRouter from app.config."""
    app.extensions[EXTENSION_KEY] = build_taskrouter(app.config)


def current_taskrouter() -> TaskRouter:
    """The app's TaskRouter: the one place routes get it from."""
    return current_app.extensions[EXTENSION_KEY]
