"""A workflow's configuration document: checked on the way in, parsed once into a plan.

The plan is what routing walks: filters in order, each with its targets, then the default
queue. Checking needs to know which queues exist, which the caller answers.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from taskrouter_sandbox import expressions, jsonlimits
from taskrouter_sandbox.domain.errors import EngineError
from taskrouter_sandbox.domain.validation import (
    MAX_CONFIGURATION,
    MAX_PRIORITY,
    MAX_TASK_TIMEOUT,
    is_sid,
)

# Roots a workflow target's expression may name: it sees the task and the candidate worker.
TARGET_EXPRESSION_ROOTS = frozenset({"task", "worker", "taskrouter", "workers"})
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

OrderBy = tuple[tuple[tuple[str, ...], bool], ...]

# Every key a configuration may hold, by where it sits: TaskRouter's documented document
# (workflow-configuration, known-agent-routing; twilio-java's WorkflowRule and
# WorkflowRuleTarget). The sandbox implements each one; any other key is refused, so that
# nothing a configuration says is accepted and then silently ignored.
_DOCUMENT_KEYS = ("task_routing",)
_ROUTING_KEYS = ("filters", "default_filter")
_FILTER_KEYS = ("filter_friendly_name", "friendly_name", "expression", "targets")
KNOWN_WORKER_KEYS = ("known_worker_sid", "known_worker_friendly_name")
_TARGET_KEYS = (
    "queue",
    "expression",
    "priority",
    "timeout",
    "order_by",
    "skip_if",
    *KNOWN_WORKER_KEYS,
)
_DEFAULT_FILTER_KEYS = ("queue",)
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class KnownWorker:
    """A target's known agent: the task attribute (its path below `task.`) that holds the
    worker's SID (by == "sid") or friendly name (by == "friendly_name")."""

    by: str
    attribute: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class Target:
    queue: str
    expression: expressions.Expression | None
    priority: int | None
    timeout: int | None
    order_by: OrderBy
    skip_if: expressions.Expression | None
    known_worker: KnownWorker | None = None


@dataclass(frozen=True)
class Filter:
    name: str | None
    source: str
    expression: expressions.Expression
    targets: tuple[Target, ...]


@dataclass(frozen=True)
class Plan:
    filters: tuple[Filter, ...]
    default_queue: str | None


def parse_order_by(text: str) -> OrderBy:
    """`worker.level DESC, worker.skill.rank` -> ((("level",), True), (("skill", "rank"), False)).

    Raises ValueError naming the problem."""
    keys = []
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2:
            raise ValueError(f"order_by {text!r}: expected 'worker.<attribute> [ASC|DESC]'")
        name = words[0]
        direction = words[1].upper() if len(words) == 2 else "ASC"
        segments = tuple(name.split("."))
        if segments[0] != "worker" or len(segments) < 2 or not all(segments):
            raise ValueError(f"order_by {text!r}: every key must be worker.<attribute>")
        if direction not in ("ASC", "DESC"):
            raise ValueError(f"order_by {text!r}: direction must be ASC or DESC")
        keys.append((segments[1:], direction == "DESC"))
    return tuple(keys)


def parse_known_worker_attribute(text: str) -> tuple[str, ...]:
    """`task.agent.sid` -> ("agent", "sid"): the task attribute a known-worker key names.

    Raises ValueError naming the problem."""
    segments = text.strip().split(".") if isinstance(text, str) else []
    if (
        len(segments) < 2
        or segments[0] != "task"
        or not all(_ATTRIBUTE_NAME.fullmatch(segment) for segment in segments[1:])
    ):
        raise ValueError(f'must name a task attribute, as in "task.agent_sid"; got {text!r}')
    return tuple(segments[1:])


def _known_worker(target: dict[str, Any]) -> KnownWorker | None:
    for key in KNOWN_WORKER_KEYS:
        if key in target:
            source = target[key]
            try:
                attribute = parse_known_worker_attribute(source)
            except ValueError:
                # Only a configuration stored before these keys were checked can get here:
                # its known worker names no attribute, so no worker.
                attribute = ()
            return KnownWorker(key.removeprefix("known_worker_"), attribute, str(source))
    return None


@functools.lru_cache(maxsize=256)
def routing_plan(configuration: str) -> Plan:
    """A stored (already validated) workflow configuration as Filters and Targets."""
    routing = json.loads(configuration)["task_routing"]
    filters = []
    for item in routing.get("filters", []):
        targets = tuple(
            Target(
                queue=target["queue"],
                expression=expressions.parse(target["expression"])
                if target.get("expression")
                else None,
                priority=target.get("priority"),
                timeout=target.get("timeout"),
                order_by=parse_order_by(target["order_by"]) if target.get("order_by") else (),
                skip_if=expressions.parse(target["skip_if"]) if target.get("skip_if") else None,
                known_worker=_known_worker(target),
            )
            for target in item["targets"]
        )
        filters.append(
            Filter(
                name=item.get("filter_friendly_name", item.get("friendly_name")),
                source=item["expression"],
                expression=expressions.parse(item["expression"]),
                targets=targets,
            )
        )
    default = routing.get("default_filter")
    return Plan(tuple(filters), default["queue"] if default else None)


def taskrouter_context(moment: datetime) -> dict[str, Any]:
    """The `taskrouter.` names an expression may use: the day and time of routing."""
    return {
        "dayOfWeek": _DAYS[moment.weekday()],
        "currentTime": moment.hour * 100 + moment.minute,
        "currentHour": moment.hour,
    }


def check_configuration(text: object, workspace_sid: str, is_queue: Callable[[str], bool]) -> str:
    """Configuration must be TaskRouter's JSON document, its queues the workspace's (is_queue
    answers for a TaskQueue SID), its expressions parseable (targets naming only task.,
    worker., taskrouter., workers.)."""
    if not isinstance(text, str) or not text.strip():
        raise EngineError("Configuration must be a JSON document")
    if len(text) > MAX_CONFIGURATION:
        raise EngineError(f"Configuration must be at most {MAX_CONFIGURATION} characters")
    try:
        document = jsonlimits.loads(text)
    except jsonlimits.TooDeep as error:
        raise EngineError(f"Configuration {error}") from None
    except ValueError as error:
        raise EngineError(f"Configuration is not valid JSON: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("task_routing"), dict):
        raise EngineError('Configuration must be a JSON object with a "task_routing" object')
    _only_known_keys(document, "", _DOCUMENT_KEYS)
    routing = document["task_routing"]
    _only_known_keys(routing, " task_routing", _ROUTING_KEYS)
    filters = routing.get("filters", [])
    if not isinstance(filters, list):
        raise EngineError("Configuration task_routing.filters must be an array")

    def queue(value: object, where: str) -> None:
        if not is_sid(value, "WQ"):
            raise EngineError(f"Configuration {where}.queue must be a TaskQueue SID")
        if not is_queue(value):  # type: ignore[arg-type]
            raise EngineError(
                f"Configuration {where}.queue {value} is not a TaskQueue of workspace "
                f"{workspace_sid}"
            )

    def expression(value: object, where: str) -> expressions.Expression:
        if not isinstance(value, str) or not value.strip():
            raise EngineError(f"Configuration {where} must be a non-empty expression")
        try:
            return expressions.parse(value)
        except expressions.ExpressionError as error:
            raise EngineError(f"Configuration {where} is not valid: {error}") from None

    for index, item in enumerate(filters):
        where = f"task_routing.filters[{index}]"
        if not isinstance(item, dict):
            raise EngineError(f"Configuration {where} must be an object")
        _only_known_keys(item, f" {where}", _FILTER_KEYS)
        name = item.get("filter_friendly_name", item.get("friendly_name"))
        if name is not None and not isinstance(name, str):
            raise EngineError(f"Configuration {where}.filter_friendly_name must be a string")
        expression(item.get("expression"), f"{where}.expression")
        targets = item.get("targets")
        if not isinstance(targets, list) or not targets:
            raise EngineError(f"Configuration {where}.targets must be a non-empty array")
        for position, target in enumerate(targets):
            _check_target(target, f"{where}.targets[{position}]", queue, expression)
    default = routing.get("default_filter")
    if default is not None:
        if not isinstance(default, dict):
            raise EngineError("Configuration task_routing.default_filter must be an object")
        _only_known_keys(default, " task_routing.default_filter", _DEFAULT_FILTER_KEYS)
        queue(default.get("queue"), "task_routing.default_filter")
    return text


def _check_target(
    target: object,
    here: str,
    queue: Callable[[object, str], None],
    expression: Callable[[object, str], expressions.Expression],
) -> None:
    if not isinstance(target, dict):
        raise EngineError(f"Configuration {here} must be an object")
    _only_known_keys(target, f" {here}", _TARGET_KEYS)
    queue(target.get("queue"), here)
    if "expression" in target:
        parsed = expression(target["expression"], f"{here}.expression")
        stray = sorted(parsed.roots - TARGET_EXPRESSION_ROOTS)
        if stray:
            raise EngineError(
                f"Configuration {here}.expression names {', '.join(stray)}: a "
                "target expression must prefix every name with task. or worker."
            )
    if "skip_if" in target:
        expression(target["skip_if"], f"{here}.skip_if")
    for key, low, high in (
        ("priority", 0, MAX_PRIORITY),
        ("timeout", 0, MAX_TASK_TIMEOUT),
    ):
        if key in target:
            value = target[key]
            if isinstance(value, bool) or not isinstance(value, int):
                raise EngineError(f"Configuration {here}.{key} must be an integer")
            if not low <= value <= high:
                raise EngineError(f"Configuration {here}.{key} must be between {low} and {high}")
    if "order_by" in target:
        if not isinstance(target["order_by"], str):
            raise EngineError(f"Configuration {here}.order_by must be a string")
        try:
            parse_order_by(target["order_by"])
        except ValueError as error:
            raise EngineError(f"Configuration {here}.{error}") from None
    known = [key for key in KNOWN_WORKER_KEYS if key in target]
    if len(known) > 1:
        raise EngineError(
            f"Configuration {here} has both known_worker_sid and known_worker_friendly_name: "
            "a target names its known worker by one of them"
        )
    for key in known:
        try:
            parse_known_worker_attribute(target[key])
        except ValueError as error:
            raise EngineError(f"Configuration {here}.{key} {error}") from None


def _only_known_keys(value: dict[str, Any], where: str, allowed: tuple[str, ...]) -> None:
    """Refuse the first key the sandbox does not implement, naming it and where it is."""
    for key in value:
        if key not in allowed:
            raise EngineError(
                f"Configuration{where} has unknown key {key!r}; the keys there are "
                + ", ".join(allowed)
            )


def configuration_queues(text: str) -> set[str]:
    """Every TaskQueue SID a stored workflow configuration routes to."""
    try:
        routing = json.loads(text).get("task_routing", {})
    except (ValueError, AttributeError):
        return set()
    queues = {
        target.get("queue")
        for item in routing.get("filters", [])
        if isinstance(item, dict)
        for target in item.get("targets", [])
        if isinstance(target, dict)
    }
    default = routing.get("default_filter")
    if isinstance(default, dict):
        queues.add(default.get("queue"))
    queues.discard(None)
    return queues
