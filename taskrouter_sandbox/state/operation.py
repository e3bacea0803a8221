"""The Operation: one engine call's transaction and everything it collects until commit."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from taskrouter_sandbox.clock import Clock, to_storage
from taskrouter_sandbox.domain.values import Effect
from taskrouter_sandbox.store import Transaction


@dataclass(frozen=True)
class RoutingHint:
    """Something routing may need to look at again, noted during an operation: `kind` names
    what happened (task.created, worker.activity.update, reservation.rejected, ...)."""

    kind: str
    workspace_sid: str
    sid: str


@dataclass(eq=False)
class Operation:
    """One engine operation: its transaction and clock, and what it collects until commit.

    Routing settles the hints before commit; the events are written then too; the effects
    are published and the soonest deadline told to the timer thread after the commit.
    """

    tx: Transaction
    clock: Clock
    account_sid: str
    # The outbox owner whose dispatcher sends this process's assignment callbacks (None while
    # no delivery runs here): a reservation's owed callback row names it.
    callback_owner: str | None = None
    effects: list[Effect] = field(default_factory=list)
    hints: list[RoutingHint] = field(default_factory=list)
    # Event rows (in state.events' column order) not yet written.
    events: list[tuple[Any, ...]] = field(default_factory=list)
    # Journal rows its flushes wrote (state.events.flush): Operations moves the journal into
    # `events` every few.
    journaled: int = 0
    # Seconds to the soonest deadline the operation set, which the timer thread must learn of.
    deadline_in: float | None = None
    # Per-operation caches: routing looks a workspace up many times per reservation.
    workspaces: dict[str, dict[str, Any]] = field(default_factory=dict)
    workspace_names: dict[str, str | None] = field(default_factory=dict)
    # workspace_sid -> (event_callback_url, events_filter) or None.
    event_callbacks: dict[str, tuple[str, frozenset[str]] | None] = field(default_factory=dict)
    # workflow_sid -> (workflow row, routing plan) or None, for routing.
    workflow_plans: dict[str, Any] = field(default_factory=dict)
    # Tasks that entered a target with skip_if in this operation and have not yet been
    # offered to workers: skip_if is evaluated only when that first offer reserves nobody.
    skip_checks: set[str] = field(default_factory=set)

    def now(self) -> datetime:
        return self.clock.now()

    def stamp(self) -> str:
        """The clock's now as stored text."""
        return to_storage(self.clock.now())

    def route_again(self, kind: str, workspace_sid: str, sid: str) -> None:
        self.hints.append(RoutingHint(kind, workspace_sid, sid))

    def publish(self, effect: Effect) -> None:
        """Hand effect to callback delivery once the operation has committed."""
        self.effects.append(effect)

    def deadline_at(self, due: datetime) -> None:
        due_in = (due - self.now()).total_seconds()
        if self.deadline_in is None or due_in < self.deadline_in:
            self.deadline_in = due_in

    def forget_workspace(self, workspace_sid: str) -> None:
        """Drop what this operation cached about a workspace whose row just changed."""
        self.workspaces.pop(workspace_sid, None)
        self.workspace_names.pop(workspace_sid, None)
        self.event_callbacks.pop(workspace_sid, None)
