"""Speed, presence calls and latency against ground truth (pure), and the emulated station's error
model for them: a station that errs in one way fails exactly that case, and the fitted parameters
recover the emulator's within their intervals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from adapters.conformance.detection import (
    DetectionThresholds,
    SpeedPeriod,
    detection_cases,
    fitted_detection,
    intervals,
    match,
    presence_from,
    presence_summary,
    speed_error,
    speed_periods,
    speed_summary,
)
from adapters.conformance.plan import PlanError, bundled_plans, load_plan
from adapters.conformance.station import (
    EmulatedStation,
    ErrorModel,
    output_groups,
    outputs_from_groups,
    station_values,
)
from adapters.ntcip.model import MISSING
from adapters.ntcip.oids import Syntax, objects_1209

LIMITS = DetectionThresholds(speed_error_kmh=5.0, presence_miss_pct=2.0, false_presence_per_h=6.0,
                             latency_p95_s=1.0)  # fmt: skip
CASES = ["ACC-SPD-1", "ACC-PRS-1", "ACC-PRS-2", "ACC-LAT-1"]


def test_intervals_and_matching_count_missed_false_calls_and_latency() -> None:
    times = [float(t) for t in range(1, 11)]
    assert intervals(times, [0, 1, 1, 0, 0, 1, 0, 0, 1, 1]) == [[2.0, 4.0], [6.0, 7.0], [9.0, 10.0]]
    truth = [[10.0, 14.0], [30.0, 31.0], [50.0, 60.0]]
    calls = [[12.0, 15.0], [40.0, 41.0], [50.0, 61.0], [98.0, 99.0]]  # the last: too near the end
    m = match(truth, calls, window_s=3.0, end_s=100.0)
    assert m.latencies_s == [2.0, 0.0]
    assert m.missed == [[30.0, 31.0]] and m.false == [[40.0, 41.0]]
    assert (m.occupancies, m.calls) == (3, 3)


def test_a_call_over_before_the_vehicle_came_is_false_one_still_on_has_no_delay() -> None:
    m = match([[10.0, 12.0]], [[8.0, 9.0], [11.0, 13.0]], window_s=3.0, end_s=100.0)
    assert m.latencies_s == [1.0] and m.missed == [] and m.false == [[8.0, 9.0]]
    m = match([[10.0, 12.0]], [[8.0, 13.0]], window_s=3.0, end_s=100.0)
    assert m.latencies_s == [0.0] and m.false == []


def test_speed_intervals_cover_the_bias_and_noise_as_often_as_they_claim() -> None:
    rng = np.random.default_rng(1)
    covered = {"bias": 0, "noise": 0}
    for _ in range(200):
        rows = []
        for p in range(200):
            n = int(rng.integers(1, 6))
            true = rng.normal(40.0, 8.0, n)
            device = true + 3.0 + rng.normal(0.0, 5.0, n)
            rows.append(SpeedPeriod(60.0 * p, float(true.mean()), n, float(device.mean())))
        e = speed_error(rows)
        covered["bias"] += e["bias_low_kmh"] < 3.0 < e["bias_high_kmh"]
        covered["noise"] += e["noise_low_kmh"] < 5.0 < e["noise_high_kmh"]
    assert e["periods"] == 200
    assert all(180 <= c <= 198 for c in covered.values()), covered  # 95 % of 200: 190
    # periods without vehicles or without a reported speed are left out
    assert (
        speed_error([SpeedPeriod(60.0, None, 0, None), SpeedPeriod(120, 40.0, 2, None)])["periods"] == 0
    )


def test_the_station_reports_mean_speeds_and_presence_outputs() -> None:
    station = EmulatedStation(("a", "b"), 60.0, ErrorModel(speed_bias_kmh=2.0))
    for t in range(1, 61):
        speeds = [[40.0, 50.0], []] if t == 10 else [[], []]
        station.feed(float(t), [len(s) for s in speeds], [0.0, 0.0], speeds, [t >= 30, False])
    sample = station.completed[0]
    assert sample.speed_kmh == (47.0, None)
    values = station_values(station)
    speed = objects_1209()["sampleSpeedData"]
    assert values[speed.instance(1, 2, 1)] == (Syntax.INTEGER, 470)
    assert values[speed.instance(2, 2, 1)] == (Syntax.INTEGER, MISSING)  # no vehicle: missing
    state = objects_1209()["outputGroupOutputState"]
    assert values[state.instance(1)] == (Syntax.OCTETS, bytes((0b01,)))
    assert values[objects_1209()["maxOutputNumber"].instance()] == (Syntax.INTEGER, 2)
    assert output_groups([True] + [False] * 8 + [True]) == [0b1, 0b10]
    assert outputs_from_groups([0b1, 0b10], 10) == [True] + [False] * 8 + [True]


def synthetic_run(model: ErrorModel, hours: float, seed: int = 11) -> tuple[dict, dict]:
    """Two lanes of Poisson traffic (108 veh/h each, 2-6 s in the zone, 25-55 km/h) through an
    emulated station, read as the harness reads one: per-period speeds and per-step presence."""
    rng = np.random.default_rng(seed)
    lanes, period, steps = ("a", "b"), 60.0, int(hours * 3600)
    station = EmulatedStation(lanes, period, model, seed=seed)
    busy_until = np.zeros(2)
    times, truth_on, device_on = [], [[], []], [[], []]
    sums, ns = np.zeros(2), np.zeros(2, np.int64)
    truth_periods: dict[float, tuple[list[float | None], list[int]]] = {}
    device_periods: dict[float, list[float | None]] = {}
    for step in range(1, steps + 1):
        t = float(step)
        arrivals = rng.random(2) < 0.03
        speeds: list[list[float]] = [[], []]
        for k in range(2):
            if arrivals[k]:
                speeds[k].append(float(rng.uniform(25.0, 55.0)))
                busy_until[k] = max(busy_until[k], t + rng.uniform(2.0, 6.0))
                sums[k] += speeds[k][0]
                ns[k] += 1
        present = [bool(busy_until[k] > t) for k in range(2)]
        sequence = station.sequence
        station.feed(t, [len(s) for s in speeds], [float(p) for p in present], speeds, present)
        times.append(t)
        for k in range(2):
            truth_on[k].append(present[k])
            device_on[k].append(bool(station.outputs[k]))
        if step % int(period) == 0:
            truth_periods[t] = ([float(s / n) if n else None for s, n in zip(sums, ns, strict=True)],
                                ns.tolist())  # fmt: skip
            sums[:], ns[:] = 0.0, 0
            assert station.sequence == sequence + 1
            device_periods[t] = list(station.completed[0].speed_kmh)
    periods = {lane: [SpeedPeriod(end, truth_periods[end][0][k], truth_periods[end][1][k],
                                  device_periods[end][k]) for end in sorted(truth_periods)]
               for k, lane in enumerate(lanes)}  # fmt: skip
    speed = speed_summary(periods)
    presence = presence_summary(
        {lane: intervals(times, truth_on[k]) for k, lane in enumerate(lanes)},
        {lane: intervals(times, device_on[k]) for k, lane in enumerate(lanes)},
        0.0, float(steps), 3.0,
    )  # fmt: skip
    return speed, presence


def within(fit: dict, key: str, true: float) -> bool:
    low, high = fit[f"{key}_ci"]
    return bool(low <= true <= high)


def test_the_fit_recovers_the_emulators_parameters_within_their_intervals() -> None:
    model = ErrorModel(speed_bias_kmh=4.0, speed_noise_kmh=6.0, presence_miss=0.2,
                       false_presence_per_h=20.0)  # fmt: skip
    speed, presence = synthetic_run(model, hours=4)
    fit = fitted_detection({"speed": speed, "presence": presence})
    for key, true in (("speed_bias_kmh", 4.0), ("speed_noise_kmh", 6.0), ("presence_miss", 0.2),
                      ("false_presence_per_h", 20.0)):  # fmt: skip
        assert within(fit, key, true), (key, fit[key], fit[f"{key}_ci"])
    assert presence["pooled"]["occupancies"] > 500
    # A false call just after a missed occupancy reads as its late call: latency on its own.

    late, late_presence = synthetic_run(ErrorModel(latency_s=3.0), hours=1)
    fit = fitted_detection({"speed": late, "presence": late_presence})
    assert within(fit, "latency_s", 3.0) and late_presence["pooled"]["missed"] == 0


@pytest.mark.parametrize(
    ("model", "failing"),
    [
        (ErrorModel(), set()),
        (ErrorModel(speed_bias_kmh=8.0), {"ACC-SPD-1"}),
        (ErrorModel(presence_miss=0.1), {"ACC-PRS-1"}),
        (ErrorModel(false_presence_per_h=40.0), {"ACC-PRS-2"}),
        (ErrorModel(latency_s=3.0), {"ACC-LAT-1"}),
    ],
)
def test_a_station_that_errs_one_way_fails_exactly_that_case(
    model: ErrorModel, failing: set[str]
) -> None:
    speed, presence = synthetic_run(model, hours=1)
    results = detection_cases(speed, presence, LIMITS, CASES)
    assert [r.id for r in results] == CASES
    assert {r.id for r in results if r.outcome.value == "fail"} == failing
    assert all(r.outcome.value == "pass" for r in results if r.id not in failing)


def test_results_json_reproduces_the_figures() -> None:
    speed, presence = synthetic_run(ErrorModel(speed_noise_kmh=3.0, presence_miss=0.1), hours=0.5)
    assert speed_summary(speed_periods(speed)) == speed
    assert presence_from(presence) == presence


def test_without_speeds_or_presence_the_cases_are_not_applicable() -> None:
    speed = speed_summary({"a": [SpeedPeriod(60.0, 40.0, 3, None)]})
    results = detection_cases(speed, None, LIMITS, CASES)
    assert {r.outcome.value for r in results} == {"not-applicable"}
    assert "reports no speed" in results[0].evidence[0]


def test_plan_thresholds_default_and_override(tmp_path: Path) -> None:
    plan = load_plan(bundled_plans()["detector-good"])
    th = plan.thresholds
    assert (th.speed_error_kmh, th.presence_miss_pct, th.false_presence_per_h, th.latency_p95_s) == (
        5.0, 2.0, 6.0, 1.0)  # fmt: skip
    text = bundled_plans()["detector-good"].read_text()
    path = tmp_path / "p.toml"
    path.write_text(text.replace('preset = "cdot"', 'preset = "cdot"\nspeed_error_kmh = 3\n'
                                 "latency_p95_s = 2.5"))  # fmt: skip
    th = load_plan(path).thresholds
    assert (th.speed_error_kmh, th.latency_p95_s, th.presence_miss_pct) == (3.0, 2.5, 2.0)
    path.write_text(text.replace("undercount = 0.0", "undercount = 0.0\npresence_miss = 1.5"))
    with pytest.raises(PlanError) as error:
        load_plan(path)
    assert "device.emulator.presence_miss" in str(error.value)
