"""What every `flask taskrouter` command shares: the command group, REST calls whose failures
become one `Error: ...` line and exit status 1, argument checks and the table layout.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import click
from flask import current_app
from flask.cli import AppGroup
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.base.version import Version
from twilio.http.response import Response

from taskrouter_quickstart.taskrouter import TaskRouter, TaskRouterError, current_taskrouter

T = TypeVar("T")

# TaskRouter's largest page: one request per list for any workspace of quickstart size.
PAGE_SIZE = 1000
ACTIVE_TASK_STATUSES = ("pending", "reserved", "assigned", "wrapping")
# How the commands are spelled in the hints they print.
COMMAND = "flask --app app taskrouter"


class _TaskRouterGroup(AppGroup):
    """A TaskRouterError raised anywhere in a command (such as a SID not configured yet)
    becomes one line and exit status 1, like the failures call maps."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TaskRouterError as exc:
            raise click.ClickException(exc.message) from None


taskrouter_cli = _TaskRouterGroup(
    "taskrouter",
    help="Set up and drive the TaskRouter workspace this server uses (Twilio or the sandbox).",
)


# -- talking to TaskRouter --------------------------------------------------------------


def call(action: str, request: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run one REST call; any upstream failure becomes a one-line message and exit status 1."""
    taskrouter = current_taskrouter()
    try:
        # The same mapping of TwilioRestException and network failures the endpoints use.
        with taskrouter._upstream(action):
            try:
                return request(*args, **kwargs)
            except (TwilioRestException, TwilioServiceException):
                raise
            except TwilioException as exc:
                raise _page_failure(exc, action) from exc
    except TaskRouterError as exc:
        raise click.ClickException(explain(exc, action, taskrouter)) from None
    except TwilioException as exc:
        raise click.ClickException(
            f"TaskRouter at {taskrouter.base_url} answered with something that is not TaskRouter "
            f"JSON while trying to {action}: {exc.args[0] if exc.args else exc}"
        ) from None


def call_taskrouter(action: str, request: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run one of TaskRouter's own methods (which raise TaskRouterError, with the endpoints'
    hints such as the one for a reservation no longer pending) as a command step."""
    try:
        return request(*args, **kwargs)
    except TaskRouterError as exc:
        raise click.ClickException(explain(exc, action, current_taskrouter())) from None


def _page_failure(exc: TwilioException, action: str) -> TwilioException:
    """A list page answered with anything but 200 raises a bare TwilioException holding the
    response; the library's own Version.exception reads Twilio's error body out of it."""
    response = exc.args[1] if len(exc.args) > 1 else None
    if isinstance(response, Response):
        return Version.exception("GET", action, response, str(exc.args[0]))
    return exc


def explain(exc: TaskRouterError, action: str, taskrouter: TaskRouter) -> str:
    code = exc.code
    if code == "not_configured":
        return exc.message
    if isinstance(code, str) and code.startswith("upstream_"):
        # These messages already name TaskRouter's URL and the action.
        text = exc.message
        if current_app.config.get("BACKEND") == "sandbox":
            text += (
                ". The local sandbox is served by this server: start it first with `make run` "
                "(in another terminal), with the same HOST and PORT"
            )
        return text
    if exc.status < 500:
        text = f"TaskRouter refused to {action}: {exc.message} (HTTP {exc.status}"
    else:
        text = f"{exc.message} (while trying to {action}"
    if code is not None:
        text += f", Twilio error {code}"
    if exc.more_info:
        text += f", {exc.more_info}"
    text += ")"
    if exc.status == 401:
        text += (
            ". Check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN "
            "(or TWILIO_API_KEY and TWILIO_API_SECRET)"
        )
    elif exc.status == 404:
        text += (
            f". Check TWILIO_WORKSPACE_SID ({taskrouter.workspace_sid}) and "
            f"TWILIO_WORKFLOW_SID ({taskrouter.workflow_sid})"
        )
    return text


def list_all(action: str, resource: Any, **filters: Any) -> list[Any]:
    return call(action, resource.list, page_size=PAGE_SIZE, **filters)


def find(records: Iterable[Any], name: str) -> Any | None:
    """The record with this friendly name; TaskRouter treats names case-insensitively."""
    wanted = name.casefold()
    return next((r for r in records if (r.friendly_name or "").casefold() == wanted), None)


def names(records: Iterable[Any]) -> str:
    return ", ".join(r.friendly_name for r in records) or "none"


def note(message: str) -> None:
    # Progress and hints go to stderr so that stdout stays what the command promises.
    click.echo(message, err=True)


def pending_reservations(workspace: Any, tasks: Iterable[Any]) -> list[Any]:
    """The pending reservations of these tasks, each with its task_sid and worker_name."""
    reservations: list[Any] = []
    for task in tasks:
        # Only a reserved task can have a pending reservation: one request per such task.
        if task.assignment_status == "reserved":
            reservations += list_all(
                f"list the reservations of task {task.sid}",
                workspace.tasks(task.sid).reservations,
                reservation_status="pending",
            )
    return reservations


# -- input ----------------------------------------------------------------------------


def name_argument(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    if not value.strip():
        raise click.BadParameter("must not be empty", ctx, param)
    return value.strip()


def sid_argument(prefix: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A click callback accepting an optional SID: prefix followed by 32 hex characters."""
    pattern = re.compile(rf"{prefix}[0-9a-fA-F]{{32}}")

    def check(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if value is not None and not pattern.fullmatch(value):
            raise click.BadParameter(
                f"{value!r} must be {prefix} followed by 32 hex characters", ctx, param
            )
        return value

    return check


# -- output ---------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    if not rows:
        return ["  (none)"]
    cells = [[str(value) for value in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return [
        "  "
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]


def age(seconds: int | float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(int(seconds), 0)
    for unit, size, smaller, smaller_size in (("d", 86400, "h", 3600), ("h", 3600, "m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} {seconds % size // smaller_size:02d}{smaller}"
    if seconds >= 60:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds}s"


def since(moment: datetime | None) -> float | None:
    if moment is None:
        return None
    return (datetime.now(UTC) - moment).total_seconds()


def reservation_rows(reservations: Iterable[Any]) -> list[tuple[object, ...]]:
    return [(r.sid, r.task_sid, r.worker_name, age(since(r.date_created))) for r in reservations]


RESERVATION_HEADERS = ("SID", "TASK", "WORKER", "AGE")
