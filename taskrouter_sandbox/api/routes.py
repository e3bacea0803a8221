"""The route table: each TaskRouter path and the view that answers each of its methods.

A method a path does not list (OPTIONS included) is a 405 in Twilio's shape that names the
methods it does list; HEAD is answered as GET. Any other path under the prefix is a 404 in
the same shape, never Flask's HTML.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from flask import Response, request

from taskrouter_sandbox.api import (
    activities,
    alerts,
    control,
    cumulative_statistics,
    events,
    realtime_statistics,
    reservations,
    statistics,
    task_channels,
    task_queues,
    tasks,
    worker_channels,
    workers,
    workflows,
    workspaces,
)
from taskrouter_sandbox.api.context import current_sandbox, resource_path
from taskrouter_sandbox.api.errors import ApiError, not_found

# OPTIONS is listed so that Flask adds no automatic (HTML, 200) answer of its own.
METHODS = ("GET", "POST", "DELETE", "PUT", "PATCH", "OPTIONS")

View = Callable[..., Response]


class Route:
    """One path: Flask sends it every method, and it picks the view or answers 405."""

    def __init__(self, rule: str, **views: View) -> None:
        self.rule = rule
        self.views = views
        self.allowed = ", ".join(sorted(views))
        self.endpoint = re.sub(r"[^A-Za-z]+", "_", rule).strip("_") or "root"

    def __call__(self, **path: str) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        view = self.views.get(method)
        if view is None:
            raise ApiError(
                405,
                20004,
                f"Method {request.method} not allowed on {resource_path()}: use {self.allowed}",
                {"Allow": self.allowed},
            )
        response = view(**path)
        # The engine's writes commit behind (store/behind.py): this answer may be relied on (a
        # 201 is a task that survives a kill -9 of the server), so they commit before it.
        current_sandbox().store.sync()
        return response


WORKSPACE = "/v1/Workspaces/<workspace_sid>"

ROUTES = (
    # -- workspaces
    Route("/v1/Workspaces", GET=workspaces.list_workspaces, POST=workspaces.create_workspace),
    Route(
        WORKSPACE,
        GET=workspaces.fetch_workspace,
        POST=workspaces.update_workspace,
        DELETE=workspaces.delete_workspace,
    ),
    # -- activities
    Route(
        f"{WORKSPACE}/Activities",
        GET=activities.list_activities,
        POST=activities.create_activity,
    ),
    Route(
        f"{WORKSPACE}/Activities/<sid>",
        GET=activities.fetch_activity,
        POST=activities.update_activity,
        DELETE=activities.delete_activity,
    ),
    # -- task channels
    Route(
        f"{WORKSPACE}/TaskChannels",
        GET=task_channels.list_task_channels,
        POST=task_channels.create_task_channel,
    ),
    Route(
        f"{WORKSPACE}/TaskChannels/<sid>",
        GET=task_channels.fetch_task_channel,
        POST=task_channels.update_task_channel,
        DELETE=task_channels.delete_task_channel,
    ),
    # -- workers
    Route(f"{WORKSPACE}/Workers", GET=workers.list_workers, POST=workers.create_worker),
    Route(
        f"{WORKSPACE}/Workers/<sid>",
        GET=workers.fetch_worker,
        POST=workers.update_worker,
        DELETE=workers.delete_worker,
    ),
    # -- a worker's channels (its capacity and availability per task channel)
    Route(
        f"{WORKSPACE}/Workers/<worker_sid>/Channels",
        GET=worker_channels.list_worker_channels,
    ),
    Route(
        f"{WORKSPACE}/Workers/<worker_sid>/Channels/<sid>",
        GET=worker_channels.fetch_worker_channel,
        POST=worker_channels.update_worker_channel,
    ),
    # -- task queues
    Route(
        f"{WORKSPACE}/TaskQueues",
        GET=task_queues.list_task_queues,
        POST=task_queues.create_task_queue,
    ),
    Route(
        f"{WORKSPACE}/TaskQueues/<sid>",
        GET=task_queues.fetch_task_queue,
        POST=task_queues.update_task_queue,
        DELETE=task_queues.delete_task_queue,
    ),
    # -- workflows
    Route(f"{WORKSPACE}/Workflows", GET=workflows.list_workflows, POST=workflows.create_workflow),
    Route(
        f"{WORKSPACE}/Workflows/<sid>",
        GET=workflows.fetch_workflow,
        POST=workflows.update_workflow,
        DELETE=workflows.delete_workflow,
    ),
    # -- tasks
    Route(f"{WORKSPACE}/Tasks", GET=tasks.list_tasks, POST=tasks.create_task),
    Route(
        f"{WORKSPACE}/Tasks/<sid>",
        GET=tasks.fetch_task,
        POST=tasks.update_task,
        DELETE=tasks.delete_task,
    ),
    # -- reservations, under their task and under their worker
    Route(
        f"{WORKSPACE}/Tasks/<task_sid>/Reservations",
        GET=reservations.list_task_reservations,
    ),
    Route(
        f"{WORKSPACE}/Tasks/<task_sid>/Reservations/<sid>",
        GET=reservations.fetch_task_reservation,
        POST=reservations.update_task_reservation,
    ),
    Route(
        f"{WORKSPACE}/Workers/<worker_sid>/Reservations",
        GET=reservations.list_worker_reservations,
    ),
    Route(
        f"{WORKSPACE}/Workers/<worker_sid>/Reservations/<sid>",
        GET=reservations.fetch_worker_reservation,
        POST=reservations.update_worker_reservation,
    ),
    # -- events
    Route(f"{WORKSPACE}/Events", GET=events.list_events),
    Route(f"{WORKSPACE}/Events/<sid>", GET=events.fetch_event),
    # -- cumulative statistics (what happened over a window, from the event log)
    Route(
        f"{WORKSPACE}/CumulativeStatistics",
        GET=cumulative_statistics.fetch_workspace_cumulative,
    ),
    Route(
        f"{WORKSPACE}/TaskQueues/<task_queue_sid>/CumulativeStatistics",
        GET=cumulative_statistics.fetch_task_queue_cumulative,
    ),
    Route(
        f"{WORKSPACE}/Workflows/<workflow_sid>/CumulativeStatistics",
        GET=cumulative_statistics.fetch_workflow_cumulative,
    ),
    Route(
        f"{WORKSPACE}/Workers/CumulativeStatistics",
        GET=cumulative_statistics.fetch_workers_cumulative,
    ),
    Route(
        f"{WORKSPACE}/Workers/<worker_sid>/Statistics",
        GET=cumulative_statistics.fetch_worker_statistics,
    ),
    # -- real-time statistics: the workspace, a task queue (and up to 50 in bulk), a workflow,
    # the workers. Static segments win over <sid>, so these never read as a SID.
    Route(f"{WORKSPACE}/RealTimeStatistics", GET=realtime_statistics.fetch_workspace_statistics),
    Route(
        f"{WORKSPACE}/TaskQueues/RealTimeStatistics",
        POST=realtime_statistics.create_bulk_task_queue_statistics,
    ),
    Route(
        f"{WORKSPACE}/TaskQueues/<sid>/RealTimeStatistics",
        GET=realtime_statistics.fetch_task_queue_statistics,
    ),
    Route(
        f"{WORKSPACE}/Workflows/<sid>/RealTimeStatistics",
        GET=realtime_statistics.fetch_workflow_statistics,
    ),
    Route(
        f"{WORKSPACE}/Workers/RealTimeStatistics",
        GET=realtime_statistics.fetch_workers_statistics,
    ),
    # -- the combined statistics (cumulative over the window, realtime of now). Static
    # segments win over <sid>, so TaskQueues/Statistics never reads as a SID.
    Route(f"{WORKSPACE}/Statistics", GET=statistics.fetch_workspace_statistics),
    Route(f"{WORKSPACE}/TaskQueues/Statistics", GET=statistics.list_task_queues_statistics),
    Route(
        f"{WORKSPACE}/TaskQueues/<task_queue_sid>/Statistics",
        GET=statistics.fetch_task_queue_statistics,
    ),
    Route(
        f"{WORKSPACE}/Workflows/<workflow_sid>/Statistics",
        GET=statistics.fetch_workflow_statistics,
    ),
    Route(f"{WORKSPACE}/Workers/Statistics", GET=statistics.fetch_workers_statistics),
    # -- alerts (the shape of Twilio's Monitor API, for client.monitor.v1.alerts)
    Route("/v1/Alerts", GET=alerts.list_alerts),
    Route("/v1/Alerts/<sid>", GET=alerts.fetch_alert),
    # -- the control API (api/control.py): the sandbox's own, outside /v1
    Route("/control/clock", GET=control.fetch_clock),
    Route("/control/clock/advance", POST=control.advance_clock),
    Route("/control/settle", POST=control.settle),
    Route("/control/reset", POST=control.reset),
    Route("/control/seed", GET=control.fetch_seed),
    Route("/control/callbacks", GET=control.list_callbacks, DELETE=control.clear_callbacks),
)


# -- anything else under the prefix -------------------------------------------------------


def unknown(**_: str) -> Response:
    raise not_found()


# (rule, endpoint); registered with Flask's default strict slashes, as every method.
UNKNOWN_RULES = (("/", "unknown_root"), ("/<path:unknown_path>", "unknown_path"))
# Only under a prefix: the bare prefix itself (no trailing slash) would otherwise get an
# HTML redirect.
UNKNOWN_PREFIX_RULE = ("", "unknown_prefix")
