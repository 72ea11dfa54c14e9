"""``[devices]`` of scenario.toml: which field devices a district has, where, and how they behave.

Each device kind is a sub-table; a kind is in the run only if its table is declared. ``sites``
is ``"auto"`` (the default: ``count`` sites chosen from the network, see ``sim/devices/sites.py``)
or a list of ids (junction ids for enforcement, pedestrian counters and air stations; edge ids
for radar points and gates). Every field is checked; a bad one is a :class:`ScenarioError`
naming the file, the field, the value and what was expected.

Times in s, distances in m, shares and rates 0..1.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.errors import ScenarioError

Sites = tuple[str, ...] | None
"""Explicit site ids, or None for automatic placement."""


@dataclass(frozen=True)
class DriversConfig:
    """Imperfect drivers, given to a share of departing cars and vans (SUMO driver parameters).

    * ``speeding_share`` of drivers get a speed factor drawn from N(``speeding_factor``, 0.08),
      at least 1.1 (they aim 10% or more over every limit); the others keep their type's spread;
    * ``red_light_share`` drive on into the junction up to ``drive_after_red_s`` after their
      signal turned red (SUMO's ``jmDriveAfterRedTime``);
    * ``keep_clear_share`` enter a junction they cannot leave after waiting
      ``ignore_keep_clear_s`` (SUMO's ``jmIgnoreKeepClearTime``): they block the box.
    """

    speeding_share: float = 0.10
    speeding_factor: float = 1.3
    red_light_share: float = 0.05
    drive_after_red_s: float = 3.0
    keep_clear_share: float = 0.10
    ignore_keep_clear_s: float = 5.0


@dataclass(frozen=True)
class EnforcementConfig:
    """Infrared cameras at signalised junctions: red light, box blocking, crosswalk, turns."""

    sites: Sites = None
    count: int = 6
    crosswalk_m: float = 4.0
    """Depth of a crosswalk at each end of a path across the junction (m)."""
    ban_u_turns: bool = True


@dataclass(frozen=True)
class RadarConfig:
    """Radar speed points on edges, optionally with a radar speed sign upstream."""

    sites: Sites = None
    count: int = 6
    tolerance: float = 0.10
    """Speeding is faster than the limit times (1 + tolerance)."""
    interval_s: float = 300.0
    signs: bool = False
    sign_distance_m: float = 80.0
    """How far upstream of the radar point the sign measures and shows the speed (m)."""
    sign_compliance: float = 0.5
    """Share of speeding drivers shown their speed who slow to the limit until the radar point."""


@dataclass(frozen=True)
class GatesConfig:
    """Access gates with plate recognition on district entries (edges)."""

    secret: str = field(default="", repr=False)
    """Per-deployment HMAC key (16+ characters), or ``env:NAME`` to read it from the environment
    variable NAME; plates are hashed with it inside the gate."""
    sites: Sites = None
    count: int = 4
    read_error_rate: float = 0.03
    """Plates read with one wrong character."""
    unreadable_rate: float = 0.02
    """Plates not read at all (dirt, glare, occlusion)."""
    watchlist_share: float = 0.01
    """Share of vehicles whose plate is on the watch list (stolen, wanted)."""
    retention_s: float = 3600.0
    """Reads older than this are purged from the gate's store."""
    interval_s: float = 300.0


@dataclass(frozen=True)
class PedestriansConfig:
    """Group-only pedestrian counters on the crossings of signalised junctions."""

    sites: Sites = None
    count: int = 34
    period_s: float = 2.0
    interval_s: float = 300.0


@dataclass(frozen=True)
class AirConfig:
    """Air-quality stations at junctions fed by SUMO's emissions (see sim/devices/air.py)."""

    sites: Sites = None
    count: int = 4
    radius_m: float = 150.0
    period_s: float = 10.0
    wind_mps: float = 1.5
    mixing_height_m: float = 10.0
    width_m: float = 30.0
    decay_m: float = 50.0
    background_nox_ugm3: float = 25.0
    background_pm10_ugm3: float = 35.0
    background_co2_ppm: float = 420.0
    alarm_index: float = 100.0


@dataclass(frozen=True)
class InjectedIncident:
    """An incident from the scenario: at ``at_s`` on lane ``lane`` (index) of ``edge``."""

    at_s: float
    edge: str
    lane: int = 0
    pos_m: float = 50.0
    duration_s: float = 600.0
    cause: str = "stopped_vehicle"


@dataclass(frozen=True)
class IncidentsConfig:
    """Incidents (injected, collisions) and their detection from detector data."""

    inject: tuple[InjectedIncident, ...] = ()
    collisions: bool = True
    detection: bool = True
    period_s: float = 10.0
    persist_s: float = 150.0
    """Halting vehicles in a zone in every sample for this long is an incident."""
    clear_m: float = 60.0
    """Zones leave this much of a lane before its stop line free (queues at red are normal)."""
    stopline_occupancy: float = 0.30
    """A queue whose stop-line stretch (the last ``clear_m``) is on average less occupied than
    this stands behind something mid-block (0..1)."""


@dataclass(frozen=True)
class InfoSignsConfig:
    """Variable message signs on district entries (edges): travel time, parking, incidents."""

    sites: Sites = None
    count: int = 4
    on: bool = True
    """Off: the signs stay dark (to measure what they are worth)."""
    reroute_share: float = 0.3
    """Share of drivers who see an incident warning on their route and take another way."""
    warning_s: float = 900.0
    """How long a detected incident stays on the signs (s)."""
    period_s: float = 60.0


@dataclass(frozen=True)
class DevicesConfig:
    """Every declared device kind (None: not in this scenario)."""

    drivers: DriversConfig | None = None
    enforcement: EnforcementConfig | None = None
    radar: RadarConfig | None = None
    gates: GatesConfig | None = None
    pedestrians: PedestriansConfig | None = None
    air: AirConfig | None = None
    incidents: IncidentsConfig | None = None
    info_signs: InfoSignsConfig | None = None


_NUMBER_LIMITS: dict[str, tuple[float, float]] = {
    "period_s": (0.1, 3600.0), "interval_s": (1.0, 86400.0), "height_m": (0.1, 1e4),
    "width_m": (0.1, 1e4), "decay_m": (1.0, 1e5),
    "share": (0.0, 1.0), "rate": (0.0, 1.0), "occupancy": (0.0, 1.0), "compliance": (0.0, 1.0),
    "tolerance": (0.0, 2.0),
    "factor": (1.0, 3.0), "_s": (0.0, 1e7), "_m": (0.0, 1e5), "_mps": (0.1, 50.0),
    "_ugm3": (0.0, 1e5), "_ppm": (0.0, 1e5), "index": (1.0, 500.0), "count": (1, 10000),
    "lane": (0, 64),
}  # fmt: skip
"""Accepted range by field-name ending (the first that matches): periods and the lengths the
dispersion model divides by must be positive."""

CAUSES = ("stopped_vehicle", "blocked_lane")
_REQUIRED: dict[str, Any] = {"at_s": 0.0, "edge": ""}
"""Fields without a default, by the type they take."""
_KINDS: dict[str, type] = {
    "drivers": DriversConfig, "enforcement": EnforcementConfig, "radar": RadarConfig,
    "gates": GatesConfig, "pedestrians": PedestriansConfig, "air": AirConfig,
    "incidents": IncidentsConfig, "info_signs": InfoSignsConfig,
}  # fmt: skip


def _limits(name: str) -> tuple[float, float]:
    for ending, bounds in _NUMBER_LIMITS.items():
        if name.endswith(ending):
            return bounds
    raise KeyError(name)


def _value(path: Path, dotted: str, name: str, default: Any, value: Any) -> Any:
    """One field checked against the type of its default and the range its name implies."""
    if name == "sites":
        if value == "auto":
            return None
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise ScenarioError(path, "wrong value", field=dotted, value=value,
                                expected='"auto" or a non-empty list of ids')  # fmt: skip
        return tuple(value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ScenarioError(path, "wrong type", field=dotted, value=value, expected="true or false")
        return value
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ScenarioError(path, "wrong type", field=dotted, value=value, expected="a string")
        return value
    integer = isinstance(default, int)
    ok = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok or not math.isfinite(value):
        kind = "an integer" if integer else "a number"
        raise ScenarioError(path, "wrong type", field=dotted, value=value, expected=kind)
    low, high = _limits(name)
    if not low <= value <= high:
        raise ScenarioError(
            path, "out of range", field=dotted, value=value, expected=f"{low:g}..{high:g}"
        )
    return value if integer else float(value)


def _dataclass_from(path: Path, prefix: str, cls: type, table: Any) -> Any:
    if not isinstance(table, dict):
        raise ScenarioError(path, "not a table", field=prefix, value=table, expected=f"[{prefix}]")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{prefix}.{key}"
        if key not in fields or key == "inject":
            if key == "inject" and cls is IncidentsConfig:
                values[key] = _incidents(path, dotted, value)
                continue
            known = ", ".join(sorted(fields))
            raise ScenarioError(path, "unknown field", field=dotted, expected=f"one of {known}")
        f = fields[key]
        default = f.default if f.default is not dataclasses.MISSING else _REQUIRED[key]
        values[key] = _value(path, dotted, key, default, value)
    missing = [n for n, f in fields.items() if f.default is dataclasses.MISSING and n not in values]
    if missing:
        raise ScenarioError(path, "missing field", field=f"{prefix}.{missing[0]}", expected="a value")
    return cls(**values)


def _incidents(path: Path, dotted: str, value: Any) -> tuple[InjectedIncident, ...]:
    if not isinstance(value, list):
        raise ScenarioError(path, "wrong type", field=dotted, value=value,
                            expected="[[devices.incidents.inject]] tables")  # fmt: skip
    incidents = []
    for i, table in enumerate(value):
        incident = _dataclass_from(path, f"{dotted}[{i}]", InjectedIncident, table)
        if incident.cause not in CAUSES:
            expected = "one of " + ", ".join(CAUSES)
            raise ScenarioError(path, "unknown cause", field=f"{dotted}[{i}].cause",
                                value=incident.cause, expected=expected)  # fmt: skip
        incidents.append(incident)
    return tuple(incidents)


def devices_config(path: Path, table: Any) -> DevicesConfig:
    """Validate ``[devices]`` of ``path``; see the module docstring."""
    if not isinstance(table, dict):
        raise ScenarioError(path, "not a table", field="devices", value=table, expected="[devices]")
    kinds: dict[str, Any] = {}
    for key, sub in table.items():
        if key not in _KINDS:
            raise ScenarioError(path, "unknown device kind", field=f"devices.{key}",
                                expected="one of " + ", ".join(sorted(_KINDS)))  # fmt: skip
        kinds[key] = _dataclass_from(path, f"devices.{key}", _KINDS[key], sub)
    gates = kinds.get("gates")
    if gates is not None and gates.secret.startswith("env:"):
        # The key may live outside the scenario file, in the deployment's environment.
        gates = kinds["gates"] = dataclasses.replace(gates, secret=os.environ.get(gates.secret[4:], ""))
    if gates is not None and len(gates.secret) < 16:
        raise ScenarioError(path, "secret too short", field="devices.gates.secret",
                            expected="a per-deployment key of at least 16 characters")  # fmt: skip
    return DevicesConfig(**kinds)


def declared(config: DevicesConfig) -> list[tuple[str, Any]]:
    """(kind, its config) for every declared kind, in a stable order."""
    return [(k, getattr(config, k)) for k in _KINDS if getattr(config, k) is not None]
