"""Sensor profiles: their errors match their figures, their faults are found from the data."""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from sim.detectors import Detector, DetectorKind
from sim.errors import ScenarioError, UnknownNameError
from sim.messages import MessageBus, MessageLog
from sim.readings import Readings
from sim.sensor_health import STUCK_ON_S, SensorHealth
from sim.sensor_profiles import BUNDLED, Fault, FaultSpec, NoisyProfile, load_profile, read_profile
from sim.sensors import RECALL, SensorLayer, StationZone, station_observation

LANES = 400


def truth(rng: np.random.Generator, n: int = LANES) -> Readings:
    present = rng.integers(0, 8, n)
    return Readings(
        count=rng.poisson(0.4, n), gap_s=rng.uniform(0, 10, n), queue=present // 2, present=present,
        occupancy=rng.uniform(0.1, 0.6, n), buses=rng.poisson(0.05, n), emergency=np.zeros(n, np.int64),
        valid=np.ones(n, np.bool_),
    )  # fmt: skip


def bound(spec_name: str, *, faults: bool) -> NoisyProfile:
    spec = read_profile(BUNDLED / f"{spec_name}.toml")
    if not faults:
        spec = dataclasses.replace(spec, faults={}, latency_s=0.0)
    profile = NoisyProfile(spec)
    profile.bind([f"l{i}" for i in range(LANES)], np.full(LANES, 8, np.int64), seed=3)
    return profile


@pytest.mark.parametrize("name", ["good-loop", "cheap-magnetometer", "degraded-radar"])
def test_error_statistics_match_the_profile(name: str) -> None:
    profile = bound(name, faults=False)
    spec = profile.spec
    rng = np.random.default_rng(1)
    true_counts = reported = true_present = seen_present = 0.0
    noise: list[np.ndarray] = []
    periods = 200
    for k in range(periods):
        real = truth(rng)
        out = profile.apply(float(k + 1), real)
        true_counts += real.count.sum()
        reported += out.count.sum()
        true_present += real.present.sum()
        seen_present += out.present.sum()
        inside = (real.occupancy > 0.3) & (real.occupancy < 0.5)  # away from the clipping bounds
        noise.append((out.occupancy - real.occupancy)[inside])
    hours = periods * LANES / 3600.0
    false_rate = (reported - spec.detection_probability * true_counts) / hours
    assert seen_present / true_present == pytest.approx(spec.detection_probability, abs=0.01)
    assert false_rate == pytest.approx(spec.false_detections_per_h, rel=0.15, abs=3.0)
    assert np.concatenate(noise).std() == pytest.approx(spec.occupancy_noise_sd, rel=0.1, abs=0.002)


def test_latency_delays_reports() -> None:
    spec = dataclasses.replace(read_profile(BUNDLED / "cheap-magnetometer.toml"), faults={})
    profile = NoisyProfile(dataclasses.replace(spec, detection_probability=1.0, false_detections_per_h=0,
                                               occupancy_noise_sd=0.0))  # fmt: skip
    profile.bind(["a"], np.array([8]), seed=1)
    sent = []
    for k in range(6):
        real = truth(np.random.default_rng(k), 1)
        sent.append(real)
        out = profile.apply(float(k), real)
        if k < spec.latency_s:
            assert not out.valid.any()
        else:
            assert out.count[0] == sent[k - int(spec.latency_s)].count[0]


@pytest.mark.parametrize("fault", [Fault.STUCK_ON, Fault.CHATTER, Fault.COMM_LOSS])
def test_fault_onsets_and_durations_follow_their_rates(fault: Fault) -> None:
    rate_per_h, duration_s = 2.0, 120.0
    spec = dataclasses.replace(read_profile(BUNDLED / "good-loop.toml"),
                               faults={fault: FaultSpec(rate_per_h, duration_s)})  # fmt: skip
    profile = NoisyProfile(spec)
    profile.bind([f"l{i}" for i in range(LANES)], np.full(LANES, 8, np.int64), seed=9)
    rng = np.random.default_rng(2)
    onsets, in_fault, previous = 0, 0, np.zeros(LANES, np.int64)
    seconds = 1800
    for k in range(seconds):
        profile.apply(float(k + 1), truth(rng))
        now = profile.fault
        onsets += int(((now == fault.value) & (previous != fault.value)).sum())
        in_fault += int((now == fault.value).sum())
        previous = now.copy()
    healthy_hours = (LANES * seconds - in_fault) / 3600.0
    assert onsets / healthy_hours == pytest.approx(rate_per_h, rel=0.15)
    assert in_fault / onsets == pytest.approx(duration_s, rel=0.2)


def test_dead_battery_never_comes_back() -> None:
    spec = dataclasses.replace(read_profile(BUNDLED / "good-loop.toml"),
                               faults={Fault.DEAD_BATTERY: FaultSpec(3600.0, 1.0)})  # fmt: skip
    profile = NoisyProfile(spec)
    profile.bind(["a", "b"], np.full(2, 8, np.int64), seed=1)
    rng = np.random.default_rng(0)
    for k in range(30):
        out = profile.apply(float(k + 1), truth(rng, 2))
    assert not out.valid.any()


# --- fault detection from the data ---------------------------------------------------------------


def healthy(rng: np.random.Generator, n: int) -> Readings:
    """Plausible traffic: a vehicle over the loop about every 3 s, the zone never empty for long."""
    r = truth(rng, n)
    r.count = rng.binomial(1, 0.35, n)
    r.present = rng.integers(1, 8, n)
    r.queue = r.present // 2
    return r


@pytest.mark.parametrize(
    ("fault", "symptom", "detected_within_s"),
    [("stuck_on", Fault.STUCK_ON, STUCK_ON_S + 2), ("stuck_off", Fault.STUCK_OFF, 302.0),
     ("chatter", Fault.CHATTER, 60.0), ("comm_loss", Fault.COMM_LOSS, 11.0)],
)  # fmt: skip
def test_each_fault_is_detected_and_recovers(
    fault: str, symptom: Fault, detected_within_s: float
) -> None:
    rng = np.random.default_rng(4)
    spec = dataclasses.replace(read_profile(BUNDLED / "good-loop.toml"), faults={})
    profile = NoisyProfile(spec)
    n = 4  # lane 0 breaks; lanes 1-3 are its intersection's other approaches
    profile.bind([f"l{i}" for i in range(n)], np.full(n, 8, np.int64), seed=1)
    health = SensorHealth([0] * n, 0.0)
    changes = []
    for k in range(1, 1500):
        t = float(k)
        if k == 100:
            profile.inject(0, symptom, until_s=800.0)
        out = profile.apply(t, healthy(rng, n))
        changes += [(t, c) for c in health.check(t, out)]
    lane0 = [(t, c) for t, c in changes if c.lane == 0]
    assert [c.fault for _t, c in lane0] == [fault, fault]
    (t_fault, first), (t_back, back) = lane0
    assert not first.recovered and back.recovered
    assert 100 < t_fault <= 100 + detected_within_s
    assert 800 < t_back <= 900
    assert all(c.lane == 0 for _t, c in changes), "healthy lanes must not be flagged"


def test_a_long_red_queue_is_not_a_stuck_detector() -> None:
    health = SensorHealth([0, 0], 0.0)
    rng = np.random.default_rng(5)
    for k in range(1, 2000):
        r = healthy(rng, 2)
        if k % 200 < 150:  # 150 s of red: zone full, nothing passes the loop
            r.occupancy[0], r.count[0] = 1.0, 0
        assert not health.check(float(k), r)


# --- the sensor layer falls back to recall for a faulty lane -------------------------------------


class _World:
    """Detector values for two lanes: a fake of SumoWorld's detector reads (pure unit test)."""

    def __init__(self) -> None:
        self.passed = 0

    def loops_vehicle_ids(self, loops: list[str]) -> list[tuple[str, ...]]:
        self.passed += 1  # a new vehicle a second over every loop
        return [(f"v{self.passed}",) for _ in loops]

    def loop_gaps(self, loops: list[str]) -> list[float]:
        return [0.5 for _ in loops]

    def area_counts(self, areas: list[str]) -> list[tuple[int, int, float]]:
        return [(2, 1, 30.0) for _ in areas]


def test_layer_shows_recall_for_a_faulty_lane_and_publishes_it() -> None:
    detectors = [
        Detector(f"{kind.value}.{lane}", kind, "J", lane, 0.0, 60.0)
        for lane in ("a_0", "b_0") for kind in (DetectorKind.STOPLINE, DetectorKind.ADVANCE)
    ]  # fmt: skip
    spec = dataclasses.replace(read_profile(BUNDLED / "good-loop.toml"), faults={},
                               detection_probability=1.0, false_detections_per_h=0.0,
                               occupancy_noise_sd=0.0)  # fmt: skip
    profile = NoisyProfile(spec)
    bus, log = MessageBus(), MessageLog()
    bus.subscribe(log)
    layer = SensorLayer(_World(), detectors, profile, 1.0, bus=bus, seed=1)  # type: ignore[arg-type]
    layer.attach(0.0)
    for k in range(1, 400):
        if k == 50:
            profile.inject(0, Fault.STUCK_ON, until_s=300.0)
        layer.update(float(k))
        if k == 250:
            assert layer.lane("a_0") == RECALL and layer.faulty_lanes() == ["a_0"]
            assert layer.lane("b_0").present == 2
    faults = [m.kind for m in log.messages if m.kind.startswith("sensor.")]  # beside the readings
    assert faults == ["sensor.fault", "sensor.recovered"]
    assert layer.lane("a_0").present == 2 and layer.faulty_lanes() == []


# --- profile files --------------------------------------------------------------------------------


def test_bundled_profiles_are_registered() -> None:
    for name in ("ideal", "good-loop", "cheap-magnetometer", "degraded-radar"):
        assert load_profile(name).name == name
    with pytest.raises(UnknownNameError, match="degraded-radar"):
        load_profile("perfect-unicorn")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("detection_probability = 1.5", "'detection_probability'.*1.5.*0..1"),
     ("colour = 'red'", "'colour'.*unknown field"),
     ("[faults.melting]\nrate_per_h = 1", "'faults.melting'.*stuck_on"),
     ("[faults.chatter]\nrate = 1", "'faults.chatter.rate'"),
     ("latency_s = 'soon'", "'latency_s'.*expected a number"),
     ("name = ", "invalid TOML")],
)  # fmt: skip
def test_bad_profile_files_are_named(text: str, fragment: str, tmp_path: Path) -> None:
    path = tmp_path / "vendor.toml"
    path.write_text(text + "\n")
    with pytest.raises(ScenarioError, match=f"vendor.toml.*{fragment}"):
        load_profile(str(path))


def test_an_external_station_period_becomes_what_controllers_see() -> None:
    zone = StationZone("e_0", volume=30, occupancy_pct=20.0, speed_kmh=None, ok=True)
    counts, carry = [], 0.0
    for k in range(60):  # one 60 s period seen through 1 s reports
        seen, carry = station_observation(zone, 60.0, 1.0, 10, carry, float(k))
        counts.append(seen.count)
    assert sum(counts) == 30 and set(counts) == {0, 1}  # the flow, spread, none lost
    assert (seen.occupancy, seen.present, seen.queue, seen.gap_s, seen.t_s) == (0.2, 2, 0, 2.0, 59.0)
    # slow or (speed missing) mostly occupied: the vehicles present are queued
    slow, _ = station_observation(replace(zone, speed_kmh=4.0), 60.0, 1.0, 10, 0.0, 0.0)
    full, _ = station_observation(replace(zone, occupancy_pct=70.0), 60.0, 1.0, 10, 0.0, 0.0)
    assert (slow.queue, full.queue, full.present) == (2, 7, 7)
    empty, _ = station_observation(replace(zone, volume=0, occupancy_pct=0.0), 60.0, 1.0, 10, 0.0, 0.0)
    assert (empty.count, empty.present, empty.gap_s) == (0, 0, 3600.0)
    # a faulty zone, or volume or occupancy missing: recall, as for a faulty detector
    for bad in (replace(zone, ok=False), replace(zone, volume=None), replace(zone, occupancy_pct=None)):
        assert station_observation(bad, 60.0, 1.0, 10, 0.7, 0.0) == (RECALL, 0.0)
