"""Vendor sensor profiles: how real detectors miss, invent, blur, delay and fail.

A profile is a TOML file (the bundled ones are in ``sim/profiles/``; a scenario may point at its
own with ``[detectors] profile = "path/to/x.toml"``)::

    name = "cheap-magnetometer"
    description = "..."
    detection_probability = 0.93      # each vehicle counted / seen with this probability
    false_detections_per_h = 30       # spurious counts per detector-hour (Poisson)
    occupancy_noise_sd = 0.05         # additive Gaussian noise on occupancy (0..1), clipped
    latency_s = 2                     # reports arrive this much later

    [faults.stuck_on]                 # any of: stuck_on, stuck_off, chatter, comm_loss, dead_battery
    rate_per_h = 0.05                 # onsets per detector-hour (Poisson)
    duration_s = 900                  # mean duration (exponential); dead_battery lasts for good

During a fault a detector reports: **stuck-on** a full zone (occupancy 1, no counts); **stuck-off**
nothing at all but still reporting; **chatter** a burst of spurious counts and flickering
presence; **comm loss** and **dead battery** no report. All randomness comes from the run's seed.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Annotated

import numpy as np

from sim.config_model import ConfigModel, Text, validate, within
from sim.errors import ScenarioError, UnknownNameError
from sim.readings import IntArray, Readings
from sim.sensors import SensorProfile, create_profile, profile_names, register_profile

BUNDLED = Path(__file__).resolve().parent / "profiles"
CHATTER_COUNTS_PER_S = 1.5


class Fault(Enum):
    NONE = 0
    STUCK_ON = 1
    STUCK_OFF = 2
    CHATTER = 3
    COMM_LOSS = 4
    DEAD_BATTERY = 5


FAULT_NAMES = {f.name.lower(): f for f in Fault if f is not Fault.NONE}


@dataclass(frozen=True)
class FaultSpec:
    rate_per_h: float
    duration_s: float


@dataclass(frozen=True)
class ProfileSpec:
    """A sensor profile's figures (see the module docstring for units)."""

    name: str
    description: str = ""
    detection_probability: float = 1.0
    false_detections_per_h: float = 0.0
    occupancy_noise_sd: float = 0.0
    latency_s: float = 0.0
    faults: dict[Fault, FaultSpec] = field(default_factory=dict)


Share = Annotated[float, within(0.0, 1.0)]


class _FaultFile(ConfigModel):
    rate_per_h: Annotated[float, within(0.0, 3600.0)] = 0.0
    duration_s: Annotated[float, within(1.0, 1e9)] = 600.0


class _FaultsFile(ConfigModel):
    stuck_on: _FaultFile | None = None
    stuck_off: _FaultFile | None = None
    chatter: _FaultFile | None = None
    comm_loss: _FaultFile | None = None
    dead_battery: _FaultFile | None = None


class _ProfileFile(ConfigModel):
    """A profile file as written (see the module docstring)."""

    name: Text | None = None
    description: Text = ""
    detection_probability: Share = 1.0
    false_detections_per_h: Annotated[float, within(0.0, 36000.0)] = 0.0
    occupancy_noise_sd: Share = 0.0
    latency_s: Annotated[float, within(0.0, 600.0)] = 0.0
    faults: _FaultsFile = _FaultsFile()


def read_profile(path: Path) -> ProfileSpec:
    """Parse and validate a profile file; errors name the file, field, value and expectation."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(path, f"cannot read sensor profile ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(path, f"invalid TOML: {exc}") from None
    profile = validate(_ProfileFile, doc, path)
    faults: dict[Fault, FaultSpec] = {}
    for name in doc.get("faults", {}):  # in the file's order: it is the order of the draws
        spec = getattr(profile.faults, name)
        faults[FAULT_NAMES[name]] = FaultSpec(spec.rate_per_h, spec.duration_s)
    return ProfileSpec(
        name=path.stem if profile.name is None else profile.name,
        description=profile.description,
        detection_probability=profile.detection_probability,
        false_detections_per_h=profile.false_detections_per_h,
        occupancy_noise_sd=profile.occupancy_noise_sd,
        latency_s=profile.latency_s,
        faults=faults,
    )


class NoisyProfile(SensorProfile):
    """Distorts readings as a :class:`ProfileSpec` says, lane by lane, vectorised over lanes."""

    def __init__(self, spec: ProfileSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self._rng = np.random.default_rng(0)
        self._capacity: IntArray = np.zeros(0, np.int64)
        self.fault: IntArray = np.zeros(0, np.int64)
        """Current fault of each lane (a :class:`Fault` value): ground truth, for tests and KPIs."""
        self._fault_end = np.zeros(0)
        self._delayed: list[tuple[float, Readings]] = []
        self._last_t: float | None = None

    def bind(self, lanes: list[str], zone_capacity: IntArray, seed: int) -> None:
        # Its own stream, derived from the run seed, so profiles do not disturb SUMO's randomness.
        self._rng = np.random.default_rng([seed, 0x5E115])
        self._capacity = zone_capacity.astype(np.int64)
        self.fault = np.zeros(len(lanes), np.int64)
        self._fault_end = np.zeros(len(lanes))

    def inject(self, lane: int, fault: Fault, until_s: float) -> None:
        """Put lane ``lane`` (index) into ``fault`` until ``until_s`` (for drills and tests)."""
        self.fault[lane] = fault.value
        self._fault_end[lane] = until_s

    def _update_faults(self, t: float, period: float) -> None:
        rng, fault, end = self._rng, self.fault, self._fault_end
        over = (fault != Fault.NONE.value) & (fault != Fault.DEAD_BATTERY.value) & (t >= end)
        fault[over] = Fault.NONE.value
        for kind, spec in self.spec.faults.items():
            if spec.rate_per_h <= 0:
                continue
            onset = (fault == Fault.NONE.value) & (
                rng.random(fault.size) < spec.rate_per_h * period / 3600.0
            )
            if onset.any():
                fault[onset] = kind.value
                end[onset] = t + rng.exponential(spec.duration_s, int(onset.sum()))

    def apply(self, t: float, truth: Readings) -> Readings:
        period = 1.0 if self._last_t is None else max(t - self._last_t, 1e-9)
        self._last_t = t
        self._update_faults(t, period)
        spec, rng = self.spec, self._rng
        out = truth.copy()
        p = spec.detection_probability
        if p < 1.0:
            out.count = rng.binomial(out.count, p)
            out.present = rng.binomial(out.present, p)
            out.queue = np.minimum(rng.binomial(out.queue, p), out.present)
            out.buses = rng.binomial(out.buses, p)
        if spec.false_detections_per_h > 0:
            out.count = out.count + rng.poisson(
                spec.false_detections_per_h * period / 3600.0, out.count.size
            )
        if spec.occupancy_noise_sd > 0:
            noise = rng.normal(0.0, spec.occupancy_noise_sd, out.occupancy.size)
            out.occupancy = np.clip(out.occupancy + noise, 0.0, 1.0)
        self._apply_faults(out, period)
        if spec.latency_s <= 0:
            return out
        self._delayed.append((t + spec.latency_s, out))
        ready = [r for due, r in self._delayed if due <= t + 1e-9]
        self._delayed = [(due, r) for due, r in self._delayed if due > t + 1e-9]
        if ready:
            return ready[-1]
        silent = out.copy()
        silent.valid[:] = False
        return silent

    def _apply_faults(self, out: Readings, period: float) -> None:
        fault = self.fault
        on = fault == Fault.STUCK_ON.value
        out.count[on], out.gap_s[on], out.occupancy[on] = 0, 0.0, 1.0
        out.present[on] = out.queue[on] = self._capacity[on]
        off = fault == Fault.STUCK_OFF.value
        out.count[off] = out.present[off] = out.queue[off] = out.buses[off] = 0
        out.occupancy[off] = 0.0
        out.gap_s[off] = np.maximum(out.gap_s[off], 3600.0)
        chatter = fault == Fault.CHATTER.value
        if chatter.any():
            n = int(chatter.sum())
            out.count[chatter] += self._rng.poisson(CHATTER_COUNTS_PER_S * period, n)
            out.present[chatter] = self._rng.integers(0, 2, n) * self._capacity[chatter]
            out.gap_s[chatter] = 0.0
        silent = (fault == Fault.COMM_LOSS.value) | (fault == Fault.DEAD_BATTERY.value)
        out.valid[silent] = False


def _bundled(name: str) -> type[SensorProfile]:
    spec = read_profile(BUNDLED / f"{name}.toml")

    class Bundled(NoisyProfile):
        def __init__(self) -> None:
            super().__init__(spec)

    Bundled.__name__ = f"Profile_{name.replace('-', '_')}"
    return Bundled


def register_bundled() -> None:
    """Register every profile file shipped in ``sim/profiles/`` under its file name."""
    for path in sorted(BUNDLED.glob("*.toml")):
        register_profile(path.stem)(_bundled(path.stem))


def load_profile(name_or_path: str, base: Path | None = None) -> SensorProfile:
    """A profile by registered name, or from a ``.toml`` path (relative to ``base``)."""
    if name_or_path.endswith(".toml"):
        path = Path(name_or_path)
        if base is not None and not path.is_absolute():
            path = base / path
        return NoisyProfile(read_profile(path))
    try:
        return create_profile(name_or_path)
    except UnknownNameError:
        raise UnknownNameError("sensor profile", name_or_path, profile_names()) from None


register_bundled()
