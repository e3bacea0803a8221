"""The sandbox in another project's tests: TaskRouterSandbox (one isolated sandbox, a twilio
Client pointed at it, a clock to move, callback apps served in-process) and the transports
under it. The pytest fixture taskrouter_sandbox (taskrouter_sandbox.pytest_plugin) wraps it.
"""

from taskrouter_sandbox.testing.harness import (
    DEFAULT_CALLBACK_ORIGIN,
    SandboxClock,
    TaskRouterSandbox,
    taskrouter_sandbox,
)
from taskrouter_sandbox.testing.transport import CallbackApps, SettlingHttpClient, WSGIHttpClient

__all__ = [
    "DEFAULT_CALLBACK_ORIGIN",
    "CallbackApps",
    "SandboxClock",
    "SettlingHttpClient",
    "TaskRouterSandbox",
    "WSGIHttpClient",
    "taskrouter_sandbox",
]
