"""Which messages raise alarms: rules by message kind and severity, loadable from TOML.

A rule watches messages of one ``kind`` (a glob: ``sensor.*``) whose payload fields match
``when``; ``key`` names the payload field that tells alarms of the rule apart (one alarm per
signal, per lane...). How the alarm's condition ends is the rule's ``clear``:

* ``momentary`` - the condition returns to normal at once (a teleport, a refused request);
* ``condition`` - it lasts while the rule's messages for that key keep matching ``when`` (a queue
  above a threshold in each interval);
* ``latched`` - it lasts until a message of ``clear_kind`` for the same key matches
  ``clear_when`` (a fail-safe flash until an operator puts the signal back to automatic).

``severity`` is fixed by the rule, or ``"from-payload"`` for messages that carry their own
``severity`` field (device faults, air quality...), optionally only from ``min_severity`` up.

```toml
[[alarm]]
name = "queue"
kind = "intersection.interval"
when = { queue_max_veh = { at_least = 40 } }
key = "tls"
clear = "condition"
severity = "medium"
category = "traffic"
subcategory = "trafficJam"
description = "queue of {queue_max_veh} vehicles at {tls}"
```

The rule engine is a message-bus subscriber: it runs beside the simulation and hands out
:class:`ConditionChange` values, which the alarm book turns into alarm transitions.
"""

from __future__ import annotations

import fnmatch
import math
import tomllib
from collections import deque
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from controlcenter.alarms import CATEGORIES, CCSIM_SUBCATEGORIES, SUBCATEGORIES, Severity
from sim.config_model import ConfigModel, Text, invalid, validate
from sim.errors import FileFieldError
from sim.messages import Message

FROM_PAYLOAD = "from-payload"
SEVERITIES = tuple(s.value for s in Severity)


class Clear(Enum):
    MOMENTARY = "momentary"
    CONDITION = "condition"
    LATCHED = "latched"


@dataclass(frozen=True)
class Match:
    """A test on one payload field: equal to a value, one of several, or within bounds."""

    field: str
    equals: tuple[Any, ...] = ()
    at_least: float | None = None
    at_most: float | None = None

    def test(self, payload: dict[str, Any]) -> bool:
        if self.field not in payload:
            return False
        value = payload[self.field]
        if self.equals and value not in self.equals:
            return False
        if self.at_least is not None or self.at_most is not None:
            if not isinstance(value, int | float) or isinstance(value, bool):
                return False
            if self.at_least is not None and value < self.at_least:
                return False
            if self.at_most is not None and value > self.at_most:
                return False
        return True


@dataclass(frozen=True)
class Rule:
    name: str
    kind: str
    severity: Severity | None
    """None: taken from the payload's ``severity`` field."""
    category: str
    subcategory: str
    description: str
    key: str = ""
    when: tuple[Match, ...] = ()
    clear: Clear = Clear.MOMENTARY
    clear_kind: str = ""
    clear_when: tuple[Match, ...] = ()
    min_severity: Severity = Severity.INFORMATIONAL


@dataclass(frozen=True)
class ConditionChange:
    """The condition of ``rule`` for ``key`` became active or returned to normal at ``t`` (s)."""

    rule: str
    key: str
    active: bool
    t: float
    source: str
    severity: Severity
    category: str
    subcategory: str
    description: str


class _Fields(dict[str, Any]):
    def __missing__(self, name: str) -> str:
        return "{" + name + "}"


def _describe(template: str, payload: dict[str, Any]) -> str:
    try:
        return template.format_map(_Fields(payload))
    except (ValueError, IndexError, AttributeError, KeyError, TypeError):
        return template


class RuleEngine:
    """Subscribe it to the message bus; :meth:`drain` hands out what changed (thread-safe)."""

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        self.rules = rules
        self._raising: dict[str, list[Rule]] = {}
        self._clearing: dict[str, list[Rule]] = {}
        self._active: set[tuple[str, str]] = set()
        self._changes: deque[ConditionChange] = deque()

    def _raise_rules(self, kind: str) -> list[Rule]:
        rules = self._raising.get(kind)
        if rules is None:
            rules = self._raising[kind] = [r for r in self.rules if fnmatch.fnmatchcase(kind, r.kind)]
        return rules

    def _clear_rules(self, kind: str) -> list[Rule]:
        rules = self._clearing.get(kind)
        if rules is None:
            rules = self._clearing[kind] = [
                r
                for r in self.rules
                if r.clear is Clear.LATCHED and fnmatch.fnmatchcase(kind, r.clear_kind)
            ]
        return rules

    def __call__(self, message: Message) -> None:
        raising, clearing = self._raise_rules(message.kind), self._clear_rules(message.kind)
        if not raising and not clearing:
            return
        payload = message.payload.to_dict()
        for rule in clearing:
            key = str(payload.get(rule.key, "")) if rule.key else ""
            if (rule.name, key) in self._active and all(m.test(payload) for m in rule.clear_when):
                self._active.discard((rule.name, key))
                self._emit(rule, key, False, message, payload)
        for rule in raising:
            severity = rule.severity or _payload_severity(payload)
            if severity is None or severity.rank < rule.min_severity.rank:
                continue
            key = str(payload.get(rule.key, "")) if rule.key else ""
            matched = all(m.test(payload) for m in rule.when)
            was_active = (rule.name, key) in self._active
            if rule.clear is Clear.MOMENTARY:
                if matched:
                    self._emit(rule, key, True, message, payload, severity)
                    self._emit(rule, key, False, message, payload, severity)
            elif matched and not was_active:
                self._active.add((rule.name, key))
                self._emit(rule, key, True, message, payload, severity)
            elif rule.clear is Clear.CONDITION and was_active and not matched:
                self._active.discard((rule.name, key))
                self._emit(rule, key, False, message, payload, severity)

    def _emit(
        self,
        rule: Rule,
        key: str,
        active: bool,
        message: Message,
        payload: dict[str, Any],
        severity: Severity | None = None,
    ) -> None:
        self._changes.append(
            ConditionChange(
                rule=rule.name,
                key=key,
                active=active,
                t=message.t,
                source=message.source,
                severity=severity or rule.severity or Severity.MEDIUM,
                category=rule.category,
                subcategory=rule.subcategory,
                description=_describe(rule.description, payload),
            )
        )

    def drain(self) -> list[ConditionChange]:
        changes = []
        while self._changes:
            changes.append(self._changes.popleft())
        return changes


def _payload_severity(payload: dict[str, Any]) -> Severity | None:
    try:
        return Severity(payload.get("severity"))
    except ValueError:
        return None


# --- the default rules and the rules file --------------------------------------------------------

_BACK_TO_AUTOMATIC = (Match("action", ("automatic",)), Match("accepted", (True,)))

DEFAULT_RULES: tuple[Rule, ...] = (
    Rule(
        name="guard-violation",
        kind="guard.violation",
        severity=Severity.CRITICAL,
        category="traffic",
        subcategory="hazardOnRoad",
        description="signal {tls} in fail-safe flashing: {reason}",
        key="tls",
        clear=Clear.LATCHED,
        clear_kind="signal.override",
        clear_when=_BACK_TO_AUTOMATIC,
    ),
    Rule(
        name="monitor-flash",
        kind="signal.monitor",
        severity=Severity.CRITICAL,
        category="traffic",
        subcategory="hazardOnRoad",
        description="signal {tls} flashing: the conflict monitor tripped on its external "
        "controller {controller}: {reason}",
        key="tls",
        clear=Clear.LATCHED,
        clear_kind="signal.override",
        clear_when=_BACK_TO_AUTOMATIC,
    ),
    Rule(
        name="control-degraded",
        kind="control.degraded",
        severity=Severity.HIGH,
        category="traffic",
        subcategory="hazardOnRoad",
        description="signal {tls} out of ccsim control ({reason})",
        key="tls",
        clear=Clear.LATCHED,
    ),
    Rule(
        name="signal-manual",
        kind="signal.override",
        severity=Severity.LOW,
        category="traffic",
        subcategory="hazardOnRoad",
        description="signal {tls} under manual control: {action} {argument} by {user}",
        key="tls",
        when=(Match("action", ("hold", "plan", "flash")), Match("accepted", (True,))),
        clear=Clear.LATCHED,
        clear_kind="signal.override",
        clear_when=_BACK_TO_AUTOMATIC,
    ),
    Rule(
        name="lane-closed",
        kind="lane.status",
        severity=Severity.INFORMATIONAL,
        category="traffic",
        subcategory="roadClosed",
        description="lane {lane} closed by {user}",
        key="lane",
        when=(Match("closed", (True,)), Match("accepted", (True,))),
        clear=Clear.LATCHED,
        clear_kind="lane.status",
        clear_when=(Match("closed", (False,)), Match("accepted", (True,))),
    ),
    Rule(
        name="queue",
        kind="intersection.interval",
        severity=Severity.MEDIUM,
        category="traffic",
        subcategory="trafficJam",
        description="queue of {queue_max_veh} vehicles at signal {tls}",
        key="tls",
        when=(Match("queue_max_veh", at_least=40),),
        clear=Clear.CONDITION,
    ),
    Rule(
        name="teleport",
        kind="vehicles.teleported",
        severity=Severity.LOW,
        category="traffic",
        subcategory="trafficJam",
        description="vehicles taken out of a jam: {ids}",
    ),
    Rule(
        name="sensor-fault",
        kind="sensor.fault",
        severity=Severity.MEDIUM,
        category="traffic",
        subcategory="sensorFault",
        description="detectors of lane {lane} (signal {tls}) look faulty: {fault}",
        key="lane",
        clear=Clear.LATCHED,
        clear_kind="sensor.recovered",
    ),
    Rule(
        name="incident",
        kind="incident.detected",
        severity=Severity.HIGH,
        category="traffic",
        subcategory="carStopped",
        description="possible incident on lane {lane}: stopped traffic that does not clear",
        key="lane",
    ),
    Rule(
        name="air-quality",
        kind="air.threshold",
        severity=Severity.MEDIUM,
        category="environment",
        subcategory="airPollution",
        description="air quality at {station}: index {index:.0f} above {threshold:.0f} ({pollutant})",
        key="station",
        when=(Match("raised", (True,)),),
        clear=Clear.LATCHED,
        clear_kind="air.threshold",
        clear_when=(Match("raised", (False,)),),
    ),
    Rule(
        name="watch-list",
        kind="gate.watchlist_hit",
        severity=Severity.HIGH,
        category="security",
        subcategory="suspiciousAction",
        description="a plate on the watch list at gate {gate}",
        key="gate",
    ),
    Rule(
        name="parking-overstay",
        kind="parking.overstay",
        severity=Severity.LOW,
        category="traffic",
        subcategory="parkingOverstay",
        description="bay {bay} of {zone} occupied for {dwell_s:.0f} s (limit {limit_s:.0f} s)",
        key="zone",
    ),
    Rule(
        name="parking-misuse",
        kind="parking.misuse",
        severity=Severity.LOW,
        category="traffic",
        subcategory="parkingMisuse",
        description="bay {bay} of {zone} ({zone_kind}): {reason}",
        key="zone",
    ),
)
"""What raises alarms unless ``ccsim serve --alarms FILE`` says otherwise."""


class RulesError(FileFieldError):
    """An alarm rules file (``ccsim serve --alarms FILE``) is missing or malformed."""


def _severity(value: Any) -> Any:
    if isinstance(value, str) and value != FROM_PAYLOAD and value not in SEVERITIES:
        raise invalid("unknown severity", f"one of {', '.join(SEVERITIES)}, or {FROM_PAYLOAD}")
    return value


def _min_severity(value: Any) -> Any:
    if isinstance(value, str) and value not in SEVERITIES:
        raise invalid("unknown severity", f"one of {', '.join(SEVERITIES)}")
    return value


def _category(value: Any) -> Any:
    if isinstance(value, str) and value not in CATEGORIES:
        raise invalid("unknown category", f"one of {', '.join(sorted(CATEGORIES))}")
    return value


def _subcategory(value: Any) -> Any:
    if isinstance(value, str) and value not in SUBCATEGORIES | CCSIM_SUBCATEGORIES:
        raise invalid(
            "not a Smart Data Models Alert subCategory",
            "one of theirs (trafficJam, roadClosed, hazardOnRoad, airPollution...) or of "
            + ", ".join(sorted(CCSIM_SUBCATEGORIES)),
        )
    return value


def _test(value: Any) -> Any:
    """A payload field test: a value, a list of values, or ``{ at_least = N, at_most = N }``."""
    if isinstance(value, dict):
        bounds = [value.get("at_least"), value.get("at_most")]
        if (
            not value
            or set(value) - {"at_least", "at_most"}
            or any(b is not None and (not isinstance(b, int | float) or isinstance(b, bool))
                   for b in bounds)
        ):  # fmt: skip
            raise invalid("not a test", "{ at_least = N } and/or { at_most = N }")
    values = value.values() if isinstance(value, dict) else value if isinstance(value, list) else [value]
    if any(isinstance(v, float) and not math.isfinite(v) for v in values):
        raise invalid("not a finite number", "finite numbers (nan and inf match nothing)")
    return value


Name = Annotated[str, Field(strict=True, min_length=1)]
Tests = dict[str, Annotated[Any, BeforeValidator(_test)]]


class _RuleFile(ConfigModel):
    """One ``[[alarm]]`` table (see the module docstring)."""

    name: Name
    kind: Name
    severity: Annotated[Name, BeforeValidator(_severity)]
    min_severity: Annotated[Text, BeforeValidator(_min_severity)] = Severity.INFORMATIONAL.value
    category: Annotated[Text, BeforeValidator(_category)]
    subcategory: Annotated[Text, BeforeValidator(_subcategory)]
    description: Text | None = None
    key: Text = ""
    when: Tests = Field(default_factory=dict)
    clear: Clear = Clear.MOMENTARY
    clear_kind: Text = ""
    clear_when: Tests = Field(default_factory=dict)


class _RulesFile(ConfigModel):
    alarm: list[_RuleFile]


def load_rules(path: Path) -> tuple[Rule, ...]:
    """Read ``[[alarm]]`` tables from a TOML file; errors name the file, the field
    (``alarm[2].severity``), the value and what was expected."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RulesError(path, f"cannot read the alarm rules ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise RulesError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(path, f"malformed TOML: {exc}") from None
    if not isinstance(data.get("alarm"), list) or not data["alarm"]:
        raise RulesError(path, "no alarm rules", field="alarm", expected="one or more [[alarm]] tables")
    doc = validate(_RulesFile, data, path, error=RulesError)
    rules = []
    for i, table in enumerate(doc.alarm):
        if table.clear is Clear.LATCHED and not table.clear_kind:
            raise RulesError(path, "a latched alarm needs the kind that clears it",
                             field=f"alarm[{i}].clear_kind", expected="a message kind")  # fmt: skip
        rules.append(_rule(table))
    names = [r.name for r in rules]
    for i, name in enumerate(names):
        if name in names[:i]:
            first = f"alarm[{names.index(name)}]"
            raise RulesError(path, "repeated name", field=f"alarm[{i}].name", value=name,
                             expected=f"a name no other rule has ({first} has it)")  # fmt: skip
    return tuple(rules)


def _rule(table: _RuleFile) -> Rule:
    return Rule(
        name=table.name,
        kind=table.kind,
        severity=None if table.severity == FROM_PAYLOAD else Severity(table.severity),
        min_severity=Severity(table.min_severity),
        category=table.category,
        subcategory=table.subcategory,
        description=table.name if table.description is None else table.description,
        key=table.key,
        when=_matches(table.when),
        clear=table.clear,
        clear_kind=table.clear_kind,
        clear_when=_matches(table.clear_when),
    )


def _matches(tests: dict[str, Any]) -> tuple[Match, ...]:
    matches = []
    for name, test in tests.items():
        if isinstance(test, dict):
            matches.append(Match(name, at_least=test.get("at_least"), at_most=test.get("at_most")))
        elif isinstance(test, list):
            matches.append(Match(name, equals=tuple(test)))
        else:
            matches.append(Match(name, equals=(test,)))
    return tuple(matches)
