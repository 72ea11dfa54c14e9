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
import os
from dataclasses import field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field
from pydantic.dataclasses import dataclass

from sim.config_model import CONFIG, Flag, Text, invalid, validate, within
from sim.errors import ScenarioError


def _sites(value: Any) -> Any:
    if value == "auto" or value is None:
        return None
    if not isinstance(value, list | tuple) or not value or not all(isinstance(v, str) for v in value):
        raise invalid("wrong value", '"auto" or a non-empty list of ids')
    return tuple(value)


Sites = Annotated[tuple[str, ...] | None, BeforeValidator(_sites)]
"""Explicit site ids, or None for automatic placement (``"auto"`` in the file)."""
Count = Annotated[int, Field(strict=True, ge=1, le=10000)]
Share = Annotated[float, within(0.0, 1.0)]
"""A share or a rate, 0..1."""
Seconds = Annotated[float, within(0.0, 1e7)]
Metres = Annotated[float, within(0.0, 1e5)]
Period = Annotated[float, within(0.1, 3600.0)]
"""How often a device samples (s)."""
Interval = Annotated[float, within(1.0, 86400.0)]
"""How often a device reports its aggregates (s)."""
Concentration = Annotated[float, within(0.0, 1e5)]
Length = Annotated[float, within(0.1, 1e4)]
"""A length the dispersion model divides by (m)."""


@dataclass(frozen=True, config=CONFIG)
class DriversConfig:
    """Imperfect drivers, given to a share of departing cars and vans (SUMO driver parameters).

    * ``speeding_share`` of drivers get a speed factor drawn from N(``speeding_factor``, 0.08),
      at least 1.1 (they aim 10% or more over every limit); the others keep their type's spread;
    * ``red_light_share`` drive on into the junction up to ``drive_after_red_s`` after their
      signal turned red (SUMO's ``jmDriveAfterRedTime``);
    * ``keep_clear_share`` enter a junction they cannot leave after waiting
      ``ignore_keep_clear_s`` (SUMO's ``jmIgnoreKeepClearTime``): they block the box.
    """

    speeding_share: Share = 0.10
    speeding_factor: Annotated[float, within(1.0, 3.0)] = 1.3
    red_light_share: Share = 0.05
    drive_after_red_s: Seconds = 3.0
    keep_clear_share: Share = 0.10
    ignore_keep_clear_s: Seconds = 5.0


@dataclass(frozen=True, config=CONFIG)
class EnforcementConfig:
    """Infrared cameras at signalised junctions: red light, box blocking, crosswalk, turns."""

    sites: Sites = None
    count: Count = 6
    crosswalk_m: Metres = 4.0
    """Depth of a crosswalk at each end of a path across the junction (m)."""
    ban_u_turns: Flag = True


@dataclass(frozen=True, config=CONFIG)
class RadarConfig:
    """Radar speed points on edges, optionally with a radar speed sign upstream."""

    sites: Sites = None
    count: Count = 6
    tolerance: Annotated[float, within(0.0, 2.0)] = 0.10
    """Speeding is faster than the limit times (1 + tolerance)."""
    interval_s: Interval = 300.0
    signs: Flag = False
    sign_distance_m: Metres = 80.0
    """How far upstream of the radar point the sign measures and shows the speed (m)."""
    sign_compliance: Share = 0.5
    """Share of speeding drivers shown their speed who slow to the limit until the radar point."""


@dataclass(frozen=True, config=CONFIG)
class GatesConfig:
    """Access gates with plate recognition on district entries (edges)."""

    secret: Text = field(default="", repr=False)
    """Per-deployment HMAC key (16+ characters), or ``env:NAME`` to read it from the environment
    variable NAME; plates are hashed with it inside the gate."""
    sites: Sites = None
    count: Count = 4
    read_error_rate: Share = 0.03
    """Plates read with one wrong character."""
    unreadable_rate: Share = 0.02
    """Plates not read at all (dirt, glare, occlusion)."""
    watchlist_share: Share = 0.01
    """Share of vehicles whose plate is on the watch list (stolen, wanted)."""
    retention_s: Seconds = 3600.0
    """Reads older than this are purged from the gate's store."""
    interval_s: Interval = 300.0


@dataclass(frozen=True, config=CONFIG)
class PedestriansConfig:
    """Group-only pedestrian counters on the crossings of signalised junctions."""

    sites: Sites = None
    count: Count = 34
    period_s: Period = 2.0
    interval_s: Interval = 300.0


@dataclass(frozen=True, config=CONFIG)
class AirConfig:
    """Air-quality stations at junctions fed by SUMO's emissions (see sim/devices/air.py)."""

    sites: Sites = None
    count: Count = 4
    radius_m: Metres = 150.0
    period_s: Period = 10.0
    wind_mps: Annotated[float, within(0.1, 50.0)] = 1.5
    mixing_height_m: Length = 10.0
    width_m: Length = 30.0
    decay_m: Annotated[float, within(1.0, 1e5)] = 50.0
    background_nox_ugm3: Concentration = 25.0
    background_pm10_ugm3: Concentration = 35.0
    background_co2_ppm: Concentration = 420.0
    alarm_index: Annotated[float, within(1.0, 500.0)] = 100.0


CAUSES = ("stopped_vehicle", "blocked_lane")


def _cause(value: Any) -> Any:
    if isinstance(value, str) and value not in CAUSES:
        raise invalid("unknown cause", "one of " + ", ".join(CAUSES))
    return value


@dataclass(frozen=True, config=CONFIG)
class InjectedIncident:
    """An incident from the scenario: at ``at_s`` on lane ``lane`` (index) of ``edge``."""

    at_s: Annotated[float, Field(strict=True, ge=0.0)]
    edge: Text
    lane: Annotated[int, Field(strict=True, ge=0, le=64)] = 0
    pos_m: Metres = 50.0
    duration_s: Seconds = 600.0
    cause: Annotated[Text, BeforeValidator(_cause)] = "stopped_vehicle"


@dataclass(frozen=True, config=CONFIG)
class IncidentsConfig:
    """Incidents (injected, collisions) and their detection from detector data."""

    inject: tuple[InjectedIncident, ...] = ()
    collisions: Flag = True
    detection: Flag = True
    period_s: Period = 10.0
    persist_s: Seconds = 150.0
    """Halting vehicles in a zone in every sample for this long is an incident."""
    clear_m: Metres = 60.0
    """Zones leave this much of a lane before its stop line free (queues at red are normal)."""
    stopline_occupancy: Share = 0.30
    """A queue whose stop-line stretch (the last ``clear_m``) is on average less occupied than
    this stands behind something mid-block (0..1)."""


@dataclass(frozen=True, config=CONFIG)
class InfoSignsConfig:
    """Variable message signs on district entries (edges): travel time, parking, incidents."""

    sites: Sites = None
    count: Count = 4
    on: Flag = True
    """Off: the signs stay dark (to measure what they are worth)."""
    reroute_share: Share = 0.3
    """Share of drivers who see an incident warning on their route and take another way."""
    warning_s: Seconds = 900.0
    """How long a detected incident stays on the signs (s)."""
    period_s: Period = 60.0


@dataclass(frozen=True, config=CONFIG)
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


def devices_config(path: Path, table: Any) -> DevicesConfig:
    """Validate ``[devices]`` of ``path``; see the module docstring."""
    return resolve_secret(path, validate(DevicesConfig, table, path, at=("devices",)))


def resolve_secret(path: Path, config: DevicesConfig) -> DevicesConfig:
    """The gates' key read from the environment for ``env:NAME``, and checked (16+ characters)."""
    gates = config.gates
    if gates is not None and gates.secret.startswith("env:"):
        # The key may live outside the scenario file, in the deployment's environment.
        gates = dataclasses.replace(gates, secret=os.environ.get(gates.secret[4:], ""))
        config = dataclasses.replace(config, gates=gates)
    if gates is not None and len(gates.secret) < 16:
        raise ScenarioError(path, "secret too short", field="devices.gates.secret",
                            expected="a per-deployment key of at least 16 characters")  # fmt: skip
    return config


def declared(config: DevicesConfig) -> list[tuple[str, Any]]:
    """(kind, its config) for every declared kind, in a stable order."""
    kinds = [f.name for f in dataclasses.fields(config)]
    return [(k, getattr(config, k)) for k in kinds if getattr(config, k) is not None]
