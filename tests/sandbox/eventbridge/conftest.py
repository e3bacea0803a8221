"""Agents' desks for the event bridge's tests: Twilio's Worker SDK, unmodified, in Node.js,
connected to the test's sandbox (the taskrouter_sandbox fixture over real HTTP)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from taskrouter_sandbox.testing import TaskRouterSandbox
from tests.worker_sdk import SdkWorker

OpenDesk = Callable[..., SdkWorker]


@pytest.fixture
def desks(taskrouter_sandbox: TaskRouterSandbox) -> Iterator[OpenDesk]:
    """open_desk(worker="Alice", token=None, ready=True, **options): a Worker of the SDK for
    the worker (a name of the quickstart's or a SID) with a fresh token, or with token; once
    it is ready unless ready=False. Every desk is closed after the test."""
    opened: list[SdkWorker] = []

    def open_desk(
        worker: str = "Alice", *, token: str | None = None, ready: bool = True, **options: Any
    ) -> SdkWorker:
        desk = SdkWorker(
            token or taskrouter_sandbox.worker_token(worker),
            **taskrouter_sandbox.event_bridge,
            **options,
        )
        opened.append(desk)
        if ready:
            desk.wait_for("ready")
        return desk

    try:
        yield open_desk
    finally:
        for desk in opened:
            desk.close()
