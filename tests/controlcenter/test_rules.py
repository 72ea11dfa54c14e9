"""Alarm rules: which messages raise alarms, by kind and severity, and the rules file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from controlcenter.alarms import Severity
from controlcenter.rules import DEFAULT_RULES, Clear, Match, Rule, RuleEngine, RulesError, load_rules
from sim.messages import (
    AirThreshold,
    GateWatchlistHit,
    GuardViolation,
    IntersectionInterval,
    Message,
    ParkingOverstay,
    Payload,
    SensorFault,
    SensorRecovered,
    SignalOverride,
    VehiclesTeleported,
)


@dataclass(frozen=True, slots=True)
class DeviceFault(Payload):
    """A device payload carrying its own severity."""

    kind: ClassVar[str] = "device.fault"
    device: str
    severity: str


def engine_fed(rules: tuple[Rule, ...], *payloads: Payload) -> RuleEngine:
    engine = RuleEngine(rules)
    for seq, payload in enumerate(payloads, start=1):
        engine(Message(float(seq), seq, "test", payload))
    return engine


def queue(tls: str, peak: int) -> IntersectionInterval:
    return IntersectionInterval(tls, 0.0, 300.0, peak / 2, peak)


def test_latched_alarm_lasts_until_its_clearing_message() -> None:
    engine = engine_fed(
        DEFAULT_RULES,
        GuardViolation("J1", "inconsistent state"),
        GuardViolation("J1", "again"),  # latched and still active: no new change
        SignalOverride("J2", "automatic", "", "ana", True, "automatic"),  # another signal
        SignalOverride("J1", "automatic", "", "ana", True, "automatic"),
    )
    changes = [(c.rule, c.key, c.active) for c in engine.drain()]
    assert changes == [("guard-violation", "J1", True), ("guard-violation", "J1", False)]


def test_condition_alarm_follows_each_interval() -> None:
    engine = engine_fed(
        DEFAULT_RULES, queue("J1", 12), queue("J1", 45), queue("J1", 50), queue("J1", 20)
    )
    changes = engine.drain()
    assert [(c.key, c.active) for c in changes] == [("J1", True), ("J1", False)]
    assert changes[0].description == "queue of 45 vehicles at signal J1"
    assert changes[0].severity is Severity.MEDIUM and changes[0].subcategory == "trafficJam"


def test_momentary_alarm_returns_to_normal_at_once() -> None:
    engine = engine_fed(DEFAULT_RULES, VehiclesTeleported(("car.1",)))
    assert [c.active for c in engine.drain()] == [True, False]


def test_severity_from_the_payload_and_a_minimum() -> None:
    rule = Rule("faults", "device.*", None, "security", "suspiciousAction", "{device} fault",
                key="device", min_severity=Severity.MEDIUM)  # fmt: skip
    engine = engine_fed(
        (rule,),
        DeviceFault("loop-1", "low"),
        DeviceFault("loop-2", "high"),
        DeviceFault("x", "nonsense"),
    )
    [raised, rtn] = engine.drain()
    assert raised.key == "loop-2" and raised.severity is Severity.HIGH and not rtn.active


def test_field_devices_raise_alarms_by_default() -> None:
    engine = engine_fed(
        DEFAULT_RULES,
        SensorFault("N_C_1", "C", "stuck_on"),
        SensorRecovered("N_C_1", "C", "stuck_on", 100.0),
        AirThreshold("aq1", 160.0, 150.0, "pm10", True),
        AirThreshold("aq1", 140.0, 150.0, "pm10", False),
        GateWatchlistHit("gate1", "ab12"),
        ParkingOverstay("pa_1", 3, "loading", 2400.0, 1800.0),
    )
    changes = [(c.rule, c.key, c.active, c.severity.value) for c in engine.drain()]
    assert changes == [
        ("sensor-fault", "N_C_1", True, "medium"), ("sensor-fault", "N_C_1", False, "medium"),
        ("air-quality", "aq1", True, "medium"), ("air-quality", "aq1", False, "medium"),
        ("watch-list", "gate1", True, "high"), ("watch-list", "gate1", False, "high"),
        ("parking-overstay", "pa_1", True, "low"), ("parking-overstay", "pa_1", False, "low"),
    ]  # fmt: skip
    described = {
        c.rule: c.description
        for c in engine_fed(
            DEFAULT_RULES,
            AirThreshold("aq1", 160.4, 150.0, "pm10", True),
            ParkingOverstay("pa_1", 3, "loading", 2400.0, 1800.0),
        ).drain()
    }
    assert described["air-quality"] == "air quality at aq1: index 160 above 150 (pm10)"
    assert described["parking-overstay"] == "bay 3 of pa_1 occupied for 2400 s (limit 1800 s)"


def test_matches() -> None:
    assert Match("action", ("hold", "flash")).test({"action": "flash"})
    assert not Match("action", ("hold",)).test({"action": "flash"})
    assert Match("q", at_least=3).test({"q": 3}) and not Match("q", at_least=3).test({"q": 2})
    assert not Match("q", at_most=3).test({"q": True}) and not Match("q").test({})


RULE = """
[[alarm]]
name = "jam"
kind = "intersection.interval"
when = { queue_max_veh = { at_least = 10 } }
key = "tls"
clear = "condition"
severity = "high"
category = "traffic"
subcategory = "trafficJam"
description = "jam at {tls}"
"""


def test_rules_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(RULE)
    [rule] = load_rules(path)
    assert rule.clear is Clear.CONDITION and rule.severity is Severity.HIGH
    assert rule.when == (Match("queue_max_veh", at_least=10),)


@pytest.mark.parametrize(
    ("edit", "field", "message"),
    [
        (('severity = "high"', 'severity = "urgent"'), "alarm[0].severity",
         "unknown severity (got 'urgent'); expected one of informational, low"),
        (('category = "traffic"', 'category = "roads"'), "alarm[0].category",
         "unknown category (got 'roads'); expected one of agriculture"),
        (('subcategory = "trafficJam"', 'subcategory = "jam"'), "alarm[0].subcategory",
         "not a Smart Data Models Alert subCategory (got 'jam')"),
        (('clear = "condition"', 'clear = "latched"'), "alarm[0].clear_kind",
         "a latched alarm needs the kind that clears it"),
        (('clear = "condition"', 'clear = "sometimes"'), "alarm[0].clear",
         "(got 'sometimes'); expected 'momentary', 'condition' or 'latched'"),
        (('key = "tls"', 'colour = "red"'), "alarm[0].colour", "unknown field; expected one of"),
        (("at_least = 10", "above = 10"), "alarm[0].when.queue_max_veh",
         "expected { at_least = N } and/or { at_most = N }"),
        (('name = "jam"', "name = 3"), "alarm[0].name", "wrong type (got 3); expected a string"),
        (('name = "jam"', 'name = ""'), "alarm[0].name", "expected a non-empty string"),
        (("[[alarm]]", "[alarm"), None, "malformed TOML"),
        (("at_least = 10", "at_least = nan"), "alarm[0].when.queue_max_veh",
         "(got {'at_least': nan}); expected finite numbers"),
        (("at_least = 10", "at_most = inf"), "alarm[0].when.queue_max_veh",
         "(got {'at_most': inf}); expected finite numbers"),
        (("{ at_least = 10 }", "nan"), "alarm[0].when.queue_max_veh",
         "(got nan); expected finite numbers"),
        (("{ at_least = 10 }", "[1, -inf]"), "alarm[0].when.queue_max_veh",
         "(got [1, -inf]); expected finite numbers"),
    ],
)  # fmt: skip
def test_rules_file_errors_name_the_file_the_field_value_and_expectation(
    tmp_path: Path, edit: tuple[str, str], field: str | None, message: str
) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(RULE.replace(*edit))
    with pytest.raises(RulesError) as error:
        load_rules(path)
    assert error.value.path == path and error.value.field == field
    assert str(error.value).startswith(str(path)) and message in str(error.value)


def test_an_error_in_a_later_rule_names_its_place(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(RULE + RULE.replace('"jam"', '"jam2"').replace("at_least = 10", "at_most = '9'"))
    with pytest.raises(RulesError) as error:
        load_rules(path)
    assert error.value.field == "alarm[1].when.queue_max_veh" and error.value.value == {"at_most": "9"}


def test_rules_file_needs_rules_with_unique_names(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text("title = 'none'\n")
    with pytest.raises(RulesError, match=r"expected one or more \[\[alarm\]\] tables"):
        load_rules(path)
    path.write_text(RULE + RULE)
    with pytest.raises(RulesError, match=r"'alarm\[1\].name': repeated name \(got 'jam'\)"):
        load_rules(path)


def test_a_description_that_does_not_fit_the_payload_is_shown_as_written(tmp_path: Path) -> None:
    """A template indexing a field that cannot be indexed (a number, a missing key) must not stop
    the rule engine (it runs in the simulation's process: an exception ends the run)."""
    path = tmp_path / "rules.toml"
    template = "jam of {queue_max_veh[0]} at {tls} ({tls[9]}, {begin_s[x]})"
    path.write_text(RULE.replace('"jam at {tls}"', f'"{template}"'))
    engine = engine_fed(load_rules(path), queue("J1", 45))
    [raised] = engine.drain()
    assert raised.active and raised.description == template
