"""The pytest plugin this package registers (entry point pytest11): the taskrouter_sandbox fixture.

    def test_reservation_times_out(taskrouter_sandbox):
        workspace = taskrouter_sandbox.workspace
        ...
        taskrouter_sandbox.clock.advance(120)

Options, per test with the marker `@pytest.mark.taskrouter_sandbox(seed="empty")` (seed,
transport, start), or for the whole run: `--taskrouter-sandbox-transport=http` (or the ini
option `taskrouter_sandbox_transport`) serves every fixture over real HTTP on a local port
instead of in-process, so the same tests check both; the ini option `taskrouter_sandbox_seed`
sets the seed of every test the marker does not.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from taskrouter_sandbox.seed import SEEDS
from taskrouter_sandbox.testing.harness import TRANSPORTS, TaskRouterSandbox

OPTION = "--taskrouter-sandbox-transport"
INI = "taskrouter_sandbox_transport"
SEED_INI = "taskrouter_sandbox_seed"
MARKER = "taskrouter_sandbox"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("taskrouter-sandbox", "the local TaskRouter sandbox")
    group.addoption(
        OPTION,
        choices=TRANSPORTS,
        default=None,
        help="how the taskrouter_sandbox fixture's client reaches it: in-process (wsgi, the "
        "default) or over HTTP on a local port (http)",
    )
    parser.addini(INI, "the taskrouter_sandbox fixture's transport: wsgi or http", default="wsgi")
    parser.addini(
        SEED_INI,
        "the workspace each taskrouter_sandbox starts with: quickstart or empty",
        default="quickstart",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(seed='quickstart'|'empty', transport='wsgi'|'http', start=datetime): "
        "options for the taskrouter_sandbox fixture",
    )


# What the marker may set: TaskRouterSandbox's own options.
MARKER_OPTIONS = ("seed", "transport", "start")


def _sandbox_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """TaskRouterSandbox's options for this test: the marker's, else the run's transport.
    A bad value fails the test with a message naming where it came from."""
    marker = request.node.get_closest_marker(MARKER)
    options = dict(marker.kwargs) if marker else {}
    if marker is not None and marker.args:
        raise pytest.UsageError(
            f"the {MARKER} marker takes keyword options only ({', '.join(MARKER_OPTIONS)})"
        )
    unknown = sorted(set(options) - set(MARKER_OPTIONS))
    if unknown:
        raise pytest.UsageError(
            f"the {MARKER} marker has no option {', '.join(unknown)}: it takes "
            f"{', '.join(MARKER_OPTIONS)}"
        )
    if "transport" in options:
        source = f"the {MARKER} marker's transport"
    elif request.config.getoption(OPTION) is not None:
        source, options["transport"] = OPTION, request.config.getoption(OPTION)
    else:
        source, options["transport"] = INI, request.config.getini(INI)
    if options["transport"] not in TRANSPORTS:
        raise pytest.UsageError(
            f"{source} is one of {', '.join(TRANSPORTS)}, not {options['transport']!r}"
        )
    if "seed" in options:
        source = f"the {MARKER} marker's seed"
    else:
        source, options["seed"] = SEED_INI, request.config.getini(SEED_INI)
    if options["seed"] not in SEEDS:
        raise pytest.UsageError(f"{source} is one of {', '.join(SEEDS)}, not {options['seed']!r}")
    return options


@pytest.fixture
def taskrouter_sandbox(request: pytest.FixtureRequest) -> Iterator[TaskRouterSandbox]:
    """A fresh TaskRouter sandbox for this test: .client (a twilio Client pointed at it), the
    seeded workspace's SIDs, .clock.advance(seconds), .serve_callbacks(app), .events,
    .alerts and .callbacks. Closed after the test."""
    with TaskRouterSandbox(**_sandbox_options(request)) as sandbox:
        yield sandbox
