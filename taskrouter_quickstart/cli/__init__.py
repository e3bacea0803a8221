"""The `flask taskrouter` commands: set up the quickstart workspace, point its workflow at a
callback URL, walk the quickstart (create a task, move a worker, accept or reject its
reservation, complete the task) and show workers, tasks and reservations.
"""

from __future__ import annotations

from flask import Flask

# Importing the command modules registers their commands on the group.
from taskrouter_quickstart.cli import actions, setup, status
from taskrouter_quickstart.cli.common import taskrouter_cli

__all__ = ["actions", "init_app", "setup", "status", "taskrouter_cli"]


def init_app(app: Flask) -> None:
    """Register `flask taskrouter ...` on the app."""
    app.cli.add_command(taskrouter_cli)
