"""What a task and a reservation may become next, and what each instruction does: as data.

state/transitions.py is the one writer of every status and checks each write against these
tables; the API's own rules (which statuses a client may ask for) are drawn from them too.
"""

from __future__ import annotations

from dataclasses import dataclass

from taskrouter_sandbox.domain.errors import EngineError

TASK_STATUSES = ("pending", "reserved", "assigned", "canceled", "completed", "wrapping")
FINAL_TASK_STATUSES = ("canceled", "completed")
ACTIVE_TASK_STATUSES = tuple(s for s in TASK_STATUSES if s not in FINAL_TASK_STATUSES)

# Every move a task makes. reserved -> reserved: a task offered to several workers at once
# (max_reserved_workers > 1) gets one reservation after another.
TASK_TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"reserved", "canceled"}),
    "reserved": frozenset({"reserved", "pending", "assigned", "canceled"}),
    "assigned": frozenset({"wrapping", "completed"}),
    "wrapping": frozenset({"completed"}),
    "canceled": frozenset(),
    "completed": frozenset(),
}


def ignores_capacity(task: dict) -> bool:
    """Whether a task goes to its RoutingTarget worker whatever that worker's availability and
    capacity: IgnoreCapacity, true by default once RoutingTarget names a worker (the Task
    resource's IgnoreCapacity)."""
    return bool(task["routing_target"]) and task["ignore_capacity"] != 0


RESERVATION_STATUSES = (
    "pending",
    "accepted",
    "rejected",
    "timeout",
    "canceled",
    "rescinded",
    "wrapping",
    "completed",
)
RESERVATION_TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"accepted", "rejected", "timeout", "canceled", "rescinded"}),
    "accepted": frozenset({"wrapping", "completed"}),
    "wrapping": frozenset({"completed"}),
    "rejected": frozenset(),
    "timeout": frozenset(),
    "canceled": frozenset(),
    "rescinded": frozenset(),
    "completed": frozenset(),
}
# Reservations that hold their worker's attention (and, in multitasking, a channel's capacity).
OPEN_RESERVATION_STATUSES = ("pending", "accepted", "wrapping")

# The statuses a client may ask for over the API, with the verb its refusal uses; the states
# each may come from are those of the tables above.
TASK_API_TARGETS = {"canceled": "cancel", "wrapping": "wrap up", "completed": "complete"}
RESERVATION_API_TARGETS = ("accepted", "rejected", "wrapping", "completed")

TTL_REASON = "Task TTL Exceeded"
TARGET_TIMEOUT_REASON = "Workflow Timeout: no worker accepted the task before its last target"
SKIPPED_REASON = "Task skipped every filter it matched, and its workflow has no default_filter"
NO_FILTER_REASON = "Task did not match any filter of its workflow, which has no default_filter"
MAX_REJECTIONS = 1000
REJECTED_REASON = f"Task rejected {MAX_REJECTIONS} times"


def task_sources(target: str) -> tuple[str, ...]:
    """The task statuses that may move to target, in TASK_STATUSES order."""
    return tuple(s for s in TASK_STATUSES if target in TASK_TRANSITIONS[s])


def reservation_sources(target: str) -> tuple[str, ...]:
    """The reservation statuses that may move to target, in RESERVATION_STATUSES order."""
    return tuple(s for s in RESERVATION_STATUSES if target in RESERVATION_TRANSITIONS[s])


@dataclass(frozen=True)
class InstructionRule:
    """What an assignment instruction does to its pending reservation.

    `leads_to` is the status it always moves the reservation to; a telephony instruction
    with an `accept_parameter` accepts only when that flag is set (over REST) or the answer
    says "accept": true (in an assignment callback answer).
    """

    leads_to: str | None
    accept_parameter: str | None = None
    # Whether it places a call to the worker, whose SID TaskRouter adds to the task's
    # attributes as worker_call_sid (Handling Assignment Callbacks: dequeue and call).
    calls_worker: bool = False


# Instruction names are matched exactly, in lower case: Twilio's documentation only ever
# spells them that way and never promises case folding, so an answer that passes here passes
# at Twilio too. The sandbox has no calls: dequeue and conference simply accept, and the
# worker_call_sid that dequeue and call add names a call that was never placed.
#
# What each adds, besides its reservation status: accept, reject, redirect (it moves a call
# that exists) and conference add nothing the sandbox records on the task; dequeue and call
# add worker_call_sid to the task's attributes.
INSTRUCTIONS: dict[str, InstructionRule] = {
    "accept": InstructionRule("accepted"),
    "reject": InstructionRule("rejected"),
    "dequeue": InstructionRule("accepted", calls_worker=True),
    "call": InstructionRule(None, accept_parameter="CallAccept", calls_worker=True),
    "redirect": InstructionRule(None, accept_parameter="RedirectAccept"),
    "conference": InstructionRule("accepted"),
}


def instruction_target(instruction: str, accept_flag: bool) -> str | None:
    """The reservation status an instruction moves to (None: it stays pending)."""
    rule = INSTRUCTIONS[instruction]
    if rule.leads_to is not None:
        return rule.leads_to
    return "accepted" if accept_flag else None


def check_task_request(task_sid: str, status: str, target: str) -> None:
    """Refuse an AssignmentStatus a client may not ask for, or not from the task's status."""
    verb = TASK_API_TARGETS.get(target)
    if verb is None:
        raise EngineError(
            f"AssignmentStatus {target} cannot be set over the API: TaskRouter moves a task "
            "to pending, reserved and assigned itself; use canceled, wrapping or completed"
        )
    sources = task_sources(target)
    if status not in sources:
        raise EngineError(f"Cannot {verb} task {task_sid} because it is not {' or '.join(sources)}")


def check_reservation_request(reservation_sid: str, status: str, target: str) -> None:
    """Refuse a ReservationStatus a client may not ask for, or not from the current one."""
    if target not in RESERVATION_API_TARGETS:
        raise EngineError(
            f"ReservationStatus {target} cannot be set over the API: use accepted, "
            "rejected, wrapping or completed"
        )
    if status not in reservation_sources(target):
        raise EngineError(
            f"Reservation {reservation_sid} is already in state [{status}] and cannot be "
            f"updated to [{target}]"
        )
