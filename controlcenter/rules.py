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
import tomllib
from collections import deque
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from controlcenter.alarms import CATEGORIES, CCSIM_SUBCATEGORIES, SUBCATEGORIES, Severity
from sim.errors import CcsimError
from sim.messages import Message

FROM_PAYLOAD = "from-payload"


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
    except (ValueError, IndexError, AttributeError):
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

_RULE_FIELDS = {
    "name", "kind", "severity", "min_severity", "category", "subcategory", "description", "key",
    "when", "clear", "clear_kind", "clear_when",
}  # fmt: skip


def load_rules(path: Path) -> tuple[Rule, ...]:
    """Read ``[[alarm]]`` tables from a TOML file; errors name the file, the rule and the field."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CcsimError(f"{path}: cannot read the alarm rules ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise CcsimError(f"{path}: malformed TOML: {exc}") from None
    tables = data.get("alarm")
    if not isinstance(tables, list) or not tables:
        raise CcsimError(f"{path}: expected one or more [[alarm]] tables")
    rules = tuple(_rule(table, f"{path}: alarm {i + 1}") for i, table in enumerate(tables))
    names = [r.name for r in rules]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise CcsimError(f"{path}: alarm names must be unique; repeated: {', '.join(duplicates)}")
    return rules


def _text(table: dict[str, Any], name: str, origin: str, default: str | None = None) -> str:
    value = table.get(name, default)
    if not isinstance(value, str) or (default is None and not value):
        raise CcsimError(f"{origin}: field '{name}': expected a non-empty string (got {value!r})")
    return value


def _rule(table: Any, origin: str) -> Rule:
    if not isinstance(table, dict):
        raise CcsimError(f"{origin}: expected a table")
    unknown = sorted(set(table) - _RULE_FIELDS)
    if unknown:
        raise CcsimError(f"{origin}: unknown field '{unknown[0]}'; fields: {sorted(_RULE_FIELDS)}")
    name = _text(table, "name", origin)
    origin = f"{origin} ('{name}')"
    severity_text = _text(table, "severity", origin)
    severity = None if severity_text == FROM_PAYLOAD else Severity.parse(severity_text, origin)
    category = _text(table, "category", origin)
    if category not in CATEGORIES:
        raise CcsimError(f"{origin}: field 'category': '{category}' is not one of {sorted(CATEGORIES)}")
    subcategory = _text(table, "subcategory", origin)
    if subcategory not in SUBCATEGORIES | CCSIM_SUBCATEGORIES:
        raise CcsimError(
            f"{origin}: field 'subcategory': '{subcategory}' is not a Smart Data Models Alert "
            "subCategory (trafficJam, roadClosed, hazardOnRoad, airPollution...) nor one of "
            f"{sorted(CCSIM_SUBCATEGORIES)}"
        )
    clear_text = _text(table, "clear", origin, Clear.MOMENTARY.value)
    try:
        clear = Clear(clear_text)
    except ValueError:
        raise CcsimError(
            f"{origin}: field 'clear': '{clear_text}': expected momentary, condition or latched"
        ) from None
    clear_kind = _text(table, "clear_kind", origin, "")
    if clear is Clear.LATCHED and not clear_kind:
        raise CcsimError(f"{origin}: field 'clear_kind': a latched alarm needs the kind that clears it")
    return Rule(
        name=name,
        kind=_text(table, "kind", origin),
        severity=severity,
        min_severity=Severity.parse(_text(table, "min_severity", origin, "informational"), origin),
        category=category,
        subcategory=subcategory,
        description=_text(table, "description", origin, name),
        key=_text(table, "key", origin, ""),
        when=_matches(table.get("when", {}), f"{origin}: field 'when'"),
        clear=clear,
        clear_kind=clear_kind,
        clear_when=_matches(table.get("clear_when", {}), f"{origin}: field 'clear_when'"),
    )


def _matches(table: Any, origin: str) -> tuple[Match, ...]:
    if not isinstance(table, dict):
        raise CcsimError(f"{origin}: expected a table of payload field = value or bounds")
    matches = []
    for name, test in table.items():
        if isinstance(test, dict):
            unknown = sorted(set(test) - {"at_least", "at_most"})
            bounds = [test.get("at_least"), test.get("at_most")]
            if (
                unknown
                or not test
                or any(
                    b is not None and (not isinstance(b, int | float) or isinstance(b, bool))
                    for b in bounds
                )
            ):
                raise CcsimError(
                    f"{origin}.{name}: expected {{ at_least = N }} and/or {{ at_most = N }}"
                )
            matches.append(Match(name, at_least=bounds[0], at_most=bounds[1]))
        elif isinstance(test, list):
            matches.append(Match(name, equals=tuple(test)))
        else:
            matches.append(Match(name, equals=(test,)))
    return tuple(matches)
