"""Speed, presence calls and latency of a detector station against ground truth, pure: the
truth and what the station reported in, per-lane statistics, verdicts and fitted parameters out.

**Speed.** Per lane and sample period, the true mean speed of the vehicles that reached the loop
(km/h, ``n`` of them) beside the station's ``sampleSpeedData``. If the station measures each
vehicle with a bias ``b`` and Gaussian noise of sd ``s``, a period's error ``e = device - true``
is ``N(b, s^2 / n)``; so ``b = sum(n e) / sum(n)`` with the 95 % interval ``b +- t(P-1) s /
sqrt(sum n)``, and ``s^2 = sum(n (e - b)^2) / (P - 1)`` with the chi-square interval (``P``
periods). Periods are split by their true mean speed: **stop-and-go** under 15 km/h,
**congestion** 15-35, **free flow** from 35 (:data:`SPEED_CONDITIONS`).

**Presence.** Per lane, the zone's true occupancies (intervals with a vehicle in the zone,
sampled every step) and the station's presence calls (its output on, polled every step). A call
is an occupancy's when it is on at some moment after the vehicle arrived and starts at most
``window_s`` after the zone emptied. Calls are matched in time order, each to the unmatched
occupancy whose start lies nearest the call's start less the station's typical delay (the
median, over calls, of the time since the last vehicle that came before), so neither a late
station's calls nor a missed occupancy shift the pairs. An occupancy without a call is
**missed** (share, Clopper-Pearson interval), a call without one is **false** (per hour the zone
is truly empty, exact Poisson interval): a call over before the vehicle came is false, however
close. Occupancies and calls that start in the run's last ``window_s`` are left out: their
partner may come after the end.

**Latency.** How long after the vehicle arrived each matched call came on (s; 0 for a call
already on): mean with its t-interval, and the 95th percentile. A false call that starts just
after a missed occupancy cannot be told from its late call, and is counted as one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from adapters.conformance.cases import CaseResult, judged, not_applicable

SPEED_CONDITIONS = (("stop-and-go", 0.0, 15.0), ("congestion", 15.0, 35.0), ("free-flow", 35.0, 1e9))
"""Traffic conditions by a period's true mean speed at the loop (km/h)."""


def _r(v: float | None, digits: int = 3) -> float | None:
    return None if v is None or not math.isfinite(v) else round(v, digits)


# --- speed ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpeedPeriod:
    """One lane in one period: the true mean speed of its ``vehicles`` (km/h) and the
    station's (None where either is missing)."""

    end_s: float
    true_kmh: float | None
    vehicles: int
    device_kmh: float | None


def speed_error(rows: Sequence[SpeedPeriod]) -> dict[str, Any]:
    """Bias and per-vehicle noise of the station's speeds over ``rows`` (see the module
    docstring): km/h, with 95 % intervals, periods and vehicles judged."""
    pairs = [(r.vehicles, r.device_kmh - r.true_kmh) for r in rows
             if r.vehicles > 0 and r.true_kmh is not None and r.device_kmh is not None]  # fmt: skip
    periods = len(pairs)
    vehicles = sum(n for n, _ in pairs)
    out: dict[str, Any] = {"periods": periods, "vehicles": vehicles, "bias_kmh": None,
                           "bias_low_kmh": None, "bias_high_kmh": None, "noise_kmh": None,
                           "noise_low_kmh": None, "noise_high_kmh": None, "mae_kmh": None}  # fmt: skip
    if not pairs:
        return out
    bias = sum(n * e for n, e in pairs) / vehicles
    out["bias_kmh"] = _r(bias)
    out["mae_kmh"] = _r(sum(abs(e) for _, e in pairs) / periods)
    if periods < 2:
        return out
    var = sum(n * (e - bias) ** 2 for n, e in pairs) / (periods - 1)
    half = float(stats.t.ppf(0.975, periods - 1)) * math.sqrt(var / vehicles)
    dof = periods - 1
    out |= {
        "bias_low_kmh": _r(bias - half), "bias_high_kmh": _r(bias + half),
        "noise_kmh": _r(math.sqrt(var)),
        "noise_low_kmh": _r(math.sqrt(dof * var / float(stats.chi2.ppf(0.975, dof)))),
        "noise_high_kmh": _r(math.sqrt(dof * var / float(stats.chi2.ppf(0.025, dof)))),
    }  # fmt: skip
    return out


def speed_summary(periods: Mapping[str, Sequence[SpeedPeriod]]) -> dict[str, Any]:
    """results.json's ``accuracy.speed``: per lane, per condition (all lanes) and pooled, from
    the rows as results.json keeps them (rounded), so they reproduce the figures exactly."""
    periods = {lane: [SpeedPeriod(r.end_s, _r(r.true_kmh), r.vehicles, _r(r.device_kmh)) for r in rs]
               for lane, rs in periods.items()}  # fmt: skip
    rows = [r for lane in periods.values() for r in lane]
    conditions = {}
    for name, low, high in SPEED_CONDITIONS:
        chosen = [r for r in rows if r.true_kmh is not None and low <= r.true_kmh < high]
        conditions[name] = {"true_kmh": [low, min(high, 255.0)], **speed_error(chosen)}
    return {
        "reported": any(r.device_kmh is not None for r in rows),
        "intervals": {lane: [[r.end_s, _r(r.true_kmh), r.vehicles, _r(r.device_kmh)] for r in rs]
                      for lane, rs in periods.items()},
        "lanes": {lane: speed_error(rs) for lane, rs in periods.items()},
        "conditions": conditions,
        "pooled": speed_error(rows),
    }  # fmt: skip


def speed_periods(doc: Mapping[str, Any]) -> dict[str, list[SpeedPeriod]]:
    """``accuracy.speed.intervals`` of results.json back as :class:`SpeedPeriod` rows."""
    return {lane: [SpeedPeriod(*row) for row in rows] for lane, rows in doc["intervals"].items()}


# --- presence -------------------------------------------------------------------------------------


def intervals(times: Sequence[float], states: Sequence[bool]) -> list[list[float]]:
    """[start, end] (s) of each run of ``True`` in a series sampled at ``times``: on from the
    first sample it is on, off at the first it is off (or the last sample)."""
    out: list[list[float]] = []
    start: float | None = None
    for t, on in zip(times, states, strict=True):
        if on and start is None:
            start = t
        elif not on and start is not None:
            out.append([start, t])
            start = None
    if start is not None and times:
        out.append([start, times[-1]])
    return out


@dataclass(frozen=True)
class Matching:
    latencies_s: list[float]
    missed: list[list[float]]
    false: list[list[float]]
    occupancies: int
    calls: int


def _candidates(
    truth: Sequence[Sequence[float]], calls: Sequence[Sequence[float]], window_s: float
) -> list[tuple[Sequence[float], list[int]]]:
    """Each call (in time order) with the occupancies it may be the call of: on at some moment
    after the vehicle arrived, starting at most ``window_s`` after the zone emptied."""
    out = []
    first = 0
    for call in sorted(calls, key=lambda c: c[0]):
        start, end = call[0], call[1]
        while first < len(truth) and truth[first][1] + window_s < start:
            first += 1
        near = []
        for k in range(first, len(truth)):
            on, off = truth[k]
            if on >= end:  # this and every later occupancy begin after the call is over
                break
            if start <= off + window_s:
                near.append(k)
        out.append((call, near))
    return out


def match(truth: Sequence[Sequence[float]], calls: Sequence[Sequence[float]], window_s: float,
          end_s: float) -> Matching:  # fmt: skip
    """Pair calls with occupancies (see the module docstring)."""
    cutoff = end_s - window_s
    candidates = _candidates(truth, calls, window_s)
    # The station's typical delay: the median, over calls, of the time since the last vehicle
    # that came before the call did.
    delays = [call[0] - max(truth[k][0] for k in near if truth[k][0] <= call[0])
              for call, near in candidates if any(truth[k][0] <= call[0] for k in near)]  # fmt: skip
    typical = float(np.median(delays)) if delays else 0.0
    used = [False] * len(truth)
    latencies, false = [], []
    for call, near in candidates:
        free = [k for k in near if not used[k]]
        if free:
            chosen = min(free, key=lambda k: (abs(call[0] - truth[k][0] - typical), k))
            used[chosen] = True
            latencies.append(max(0.0, call[0] - truth[chosen][0]))
        elif call[0] < cutoff:
            false.append(list(call))
    missed = [list(o) for o, u in zip(truth, used, strict=True) if not u and o[0] < cutoff]
    occupancies = sum(1 for o in truth if o[0] < cutoff)
    calls_n = sum(1 for c in calls if c[0] < cutoff)
    return Matching(latencies, missed, false, occupancies, calls_n)


def _share_ci(k: int, n: int) -> tuple[float | None, float | None]:
    if n == 0:
        return None, None
    ci = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
    return float(ci.low), float(ci.high)


def _rate_ci(k: int, hours: float) -> tuple[float | None, float | None]:
    if hours <= 0:
        return None, None
    low = float(stats.chi2.ppf(0.025, 2 * k)) / 2 if k else 0.0
    return low / hours, float(stats.chi2.ppf(0.975, 2 * k + 2)) / 2 / hours


def presence_stats(m: Matching, empty_h: float) -> dict[str, Any]:
    """Missed and false calls and latency of one lane (or pooled lanes)."""
    miss_low, miss_high = _share_ci(len(m.missed), m.occupancies)
    false_low, false_high = _rate_ci(len(m.false), empty_h)
    lat = np.asarray(m.latencies_s, np.float64)
    n = lat.size
    mean = float(lat.mean()) if n else None
    half = None
    if n > 1:
        half = float(stats.t.ppf(0.975, n - 1)) * float(lat.std(ddof=1)) / math.sqrt(n)
    return {
        "occupancies": m.occupancies, "calls": m.calls, "missed": len(m.missed),
        "missed_pct": _r(100 * len(m.missed) / m.occupancies) if m.occupancies else None,
        "missed_low_pct": _r(None if miss_low is None else 100 * miss_low),
        "missed_high_pct": _r(None if miss_high is None else 100 * miss_high),
        "false": len(m.false), "empty_h": _r(empty_h, 4),
        "false_per_h": _r(len(m.false) / empty_h) if empty_h > 0 else None,
        "false_low_per_h": _r(false_low), "false_high_per_h": _r(false_high),
        "latency_n": n, "latency_mean_s": _r(mean),
        "latency_low_s": _r(None if half is None or mean is None else mean - half),
        "latency_high_s": _r(None if half is None or mean is None else mean + half),
        "latency_p95_s": _r(float(np.percentile(lat, 95))) if n else None,
    }  # fmt: skip


def presence_summary(truth: Mapping[str, list[list[float]]], calls: Mapping[str, list[list[float]]],
                     begin_s: float, end_s: float, window_s: float) -> dict[str, Any]:  # fmt: skip
    """results.json's ``accuracy.presence``: the intervals, per-lane and pooled statistics."""
    lanes, matchings, empties = {}, [], []
    for lane, occupied in truth.items():
        m = match(occupied, calls.get(lane, []), window_s, end_s)
        cutoff = end_s - window_s
        busy = sum(max(0.0, min(off, cutoff) - on) for on, off in occupied if on < cutoff)
        empty_h = max(0.0, cutoff - begin_s - busy) / 3600
        lanes[lane] = presence_stats(m, empty_h)
        matchings.append(m)
        empties.append(empty_h)
    pooled = Matching(
        [x for m in matchings for x in m.latencies_s],
        [x for m in matchings for x in m.missed],
        [x for m in matchings for x in m.false],
        sum(m.occupancies for m in matchings),
        sum(m.calls for m in matchings),
    )
    return {
        "begin_s": begin_s, "end_s": end_s, "window_s": window_s,
        "truth": dict(truth), "calls": dict(calls), "lanes": lanes,
        "pooled": presence_stats(pooled, sum(empties)),
    }  # fmt: skip


def presence_from(doc: Mapping[str, Any]) -> dict[str, Any]:
    """``accuracy.presence`` recomputed from its own intervals (results.json reproduces it)."""
    return presence_summary(doc["truth"], doc["calls"], doc["begin_s"], doc["end_s"], doc["window_s"])


# --- cases ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DetectionThresholds:
    speed_error_kmh: float
    presence_miss_pct: float
    false_presence_per_h: float
    latency_p95_s: float


def detection_cases(
    speed: Mapping[str, Any] | None, presence: Mapping[str, Any] | None, th: DetectionThresholds,
    wanted: Sequence[str],
) -> list[CaseResult]:  # fmt: skip
    """ACC-SPD-1, ACC-PRS-1, ACC-PRS-2 and ACC-LAT-1 (not applicable without the data)."""
    results = []
    if "ACC-SPD-1" in wanted:
        results.append(_speed_case(speed, th))
    no_presence = ("no presence calls read: the station serves no presence outputs "
                   "(outputGroupOutputState), or the truth has no occupancy to compare")  # fmt: skip
    for case in ("ACC-PRS-1", "ACC-PRS-2", "ACC-LAT-1"):
        if case not in wanted:
            continue
        if presence is None:
            results.append(not_applicable(case, no_presence))
            continue
        results.append(_PRESENCE_CASES[case](presence["lanes"], presence["pooled"], th))
    return results


def _speed_case(speed: Mapping[str, Any] | None, th: DetectionThresholds) -> CaseResult:
    if speed is None or not speed["reported"]:
        return not_applicable("ACC-SPD-1", "the station reports no speed (sampleSpeedData "
                              "missing in every period)")  # fmt: skip
    limit = th.speed_error_kmh
    failures, judged_lanes = [], 0
    for lane, s in speed["lanes"].items():
        if s["bias_kmh"] is None:
            continue
        judged_lanes += 1
        if abs(s["bias_kmh"]) > limit:
            failures.append(f"{lane}: mean speed error {s['bias_kmh']:+.1f} km/h (95 % CI "
                            f"{_ci(s, 'bias_low_kmh', 'bias_high_kmh', '+.1f')}) over "
                            f"{s['vehicles']} vehicles, limit +-{limit:g} km/h")  # fmt: skip
    if not judged_lanes:
        return not_applicable("ACC-SPD-1", "no period with both a true and a reported speed")
    p = speed["pooled"]
    return judged("ACC-SPD-1", failures, f"{judged_lanes} lanes within +-{limit:g} km/h; pooled "
                  f"{p['bias_kmh']:+.2f} km/h over {p['vehicles']} vehicles",
                  bias_kmh=p["bias_kmh"])  # fmt: skip


def _missed_case(lanes: Mapping[str, Any], pooled: Mapping[str, Any], th: DetectionThresholds
                 ) -> CaseResult:  # fmt: skip
    limit = th.presence_miss_pct
    if not pooled["occupancies"]:
        return not_applicable("ACC-PRS-1", "no vehicle occupied a zone")
    failures = [
        f"{lane}: {s['missed']} of {s['occupancies']} occupancies without a call "
        f"({s['missed_pct']:.1f} %, 95 % CI {_ci(s, 'missed_low_pct', 'missed_high_pct', '.1f')}), "
        f"limit {limit:g} %"
        for lane, s in lanes.items() if s["missed_pct"] is not None and s["missed_pct"] > limit
    ]  # fmt: skip
    return judged("ACC-PRS-1", failures, f"{pooled['missed']} of {pooled['occupancies']} "
                  f"occupancies missed, every lane <= {limit:g} %",
                  missed_pct=pooled["missed_pct"])  # fmt: skip


def _false_case(lanes: Mapping[str, Any], pooled: Mapping[str, Any], th: DetectionThresholds
                ) -> CaseResult:  # fmt: skip
    limit = th.false_presence_per_h
    failures = [
        f"{lane}: {s['false']} false calls in {s['empty_h']:.2f} empty zone-hours "
        f"({s['false_per_h']:.1f}/h, 95 % CI "
        f"{_ci(s, 'false_low_per_h', 'false_high_per_h', '.1f')}), limit {limit:g}/h"
        for lane, s in lanes.items() if s["false_per_h"] is not None and s["false_per_h"] > limit
    ]  # fmt: skip
    return judged("ACC-PRS-2", failures, f"{pooled['false']} false calls in "
                  f"{pooled['empty_h']:.2f} empty zone-hours, every lane <= {limit:g}/h",
                  false_per_h=pooled["false_per_h"])  # fmt: skip


def _latency_case(lanes: Mapping[str, Any], pooled: Mapping[str, Any], th: DetectionThresholds
                  ) -> CaseResult:  # fmt: skip
    limit = th.latency_p95_s
    if not pooled["latency_n"]:
        return not_applicable("ACC-LAT-1", "no presence call matched an occupancy")
    failures = [
        f"{lane}: 95th percentile {s['latency_p95_s']:g} s after the vehicle (mean "
        f"{s['latency_mean_s']:.2f} s, 95 % CI {_ci(s, 'latency_low_s', 'latency_high_s', '.2f')}, "
        f"{s['latency_n']} calls), limit {limit:g} s"
        for lane, s in lanes.items() if s["latency_p95_s"] is not None and s["latency_p95_s"] > limit
    ]  # fmt: skip
    return judged("ACC-LAT-1", failures, f"{pooled['latency_n']} calls, 95th percentile "
                  f"{pooled['latency_p95_s']:g} s, every lane <= {limit:g} s",
                  latency_p95_s=pooled["latency_p95_s"])  # fmt: skip


_PRESENCE_CASES = {"ACC-PRS-1": _missed_case, "ACC-PRS-2": _false_case, "ACC-LAT-1": _latency_case}


def _ci(s: Mapping[str, Any], low: str, high: str, spec: str) -> str:
    if s.get(low) is None or s.get(high) is None:
        return "n/a"
    return f"{s[low]:{spec}} .. {s[high]:{spec}}"


# --- the fit --------------------------------------------------------------------------------------


def fitted_detection(accuracy: Mapping[str, Any]) -> dict[str, Any]:
    """The station's speed, presence and latency parameters as the emulator's error model names
    them, each with its 95 % interval (pooled over the lanes); empty where not measured."""
    out: dict[str, Any] = {}
    speed = accuracy.get("speed")
    if speed and speed["reported"] and speed["pooled"]["bias_kmh"] is not None:
        p = speed["pooled"]
        out |= {"speed_bias_kmh": p["bias_kmh"], "speed_bias_kmh_ci": [p["bias_low_kmh"],
                p["bias_high_kmh"]], "speed_noise_kmh": p["noise_kmh"],
                "speed_noise_kmh_ci": [p["noise_low_kmh"], p["noise_high_kmh"]]}  # fmt: skip
    presence = accuracy.get("presence")
    if presence and presence["pooled"]["occupancies"]:
        p = presence["pooled"]

        def share(v: float | None) -> float | None:
            return None if v is None else round(v / 100, 5)

        out |= {
            "presence_miss": share(p["missed_pct"]),
            "presence_miss_ci": [share(p["missed_low_pct"]), share(p["missed_high_pct"])],
            "false_presence_per_h": p["false_per_h"],
            "false_presence_per_h_ci": [p["false_low_per_h"], p["false_high_per_h"]],
        }  # fmt: skip
        if p["latency_n"]:
            low, high = p["latency_low_s"], p["latency_high_s"]
            if low is None and p["latency_n"] == 1:
                low = high = p["latency_mean_s"]
            out |= {"latency_s": p["latency_mean_s"], "latency_s_ci": [low, high]}
    return out


# --- report ---------------------------------------------------------------------------------------

SPEED_HEADER = ["speed error", "periods", "vehicles", "mean error (km/h)", "95 % CI",
                "noise per vehicle (km/h)", "95 % CI", "MAE per period (km/h)"]  # fmt: skip
PRESENCE_HEADER = ["lane", "occupancies", "calls", "missed", "missed 95 % CI", "false calls",
                   "false per empty h", "95 % CI", "latency mean (s)", "95 % CI",
                   "latency p95 (s)"]  # fmt: skip


def _num(v: Any, spec: str) -> str:
    return "n/a" if v is None else f"{v:{spec}}"


def speed_rows(results: Mapping[str, Any]) -> list[list[str]]:
    """Speed error per lane, then per condition (all lanes)."""
    speed = (results.get("accuracy") or {}).get("speed")
    if not speed or not speed["reported"]:
        return []
    named = [(lane, s) for lane, s in speed["lanes"].items()]
    named += [(f"{name} ({c['true_kmh'][0]:g}-{c['true_kmh'][1]:g} km/h)", c)
              for name, c in speed["conditions"].items()]  # fmt: skip
    return [[name, str(s["periods"]), str(s["vehicles"]), _num(s["bias_kmh"], "+.2f"),
             _ci(s, "bias_low_kmh", "bias_high_kmh", "+.2f"), _num(s["noise_kmh"], ".2f"),
             _ci(s, "noise_low_kmh", "noise_high_kmh", ".2f"), _num(s["mae_kmh"], ".2f")]
            for name, s in named]  # fmt: skip


def presence_rows(results: Mapping[str, Any]) -> list[list[str]]:
    """Missed and false presence calls and latency per lane, then pooled."""
    presence = (results.get("accuracy") or {}).get("presence")
    if not presence:
        return []
    named = [*presence["lanes"].items(), ("all lanes", presence["pooled"])]
    return [[lane, str(s["occupancies"]), str(s["calls"]),
             f"{s['missed']} ({_num(s['missed_pct'], '.1f')} %)",
             _ci(s, "missed_low_pct", "missed_high_pct", ".1f") + " %", str(s["false"]),
             _num(s["false_per_h"], ".2f"), _ci(s, "false_low_per_h", "false_high_per_h", ".2f"),
             _num(s["latency_mean_s"], ".2f"), _ci(s, "latency_low_s", "latency_high_s", ".2f"),
             _num(s["latency_p95_s"], "g")] for lane, s in named]  # fmt: skip


def fit_text(fit: Mapping[str, Any]) -> str:
    """The fitted speed, presence and latency parameters in a sentence ('' if none)."""
    parts = []
    for key, label, unit, spec in (
        ("speed_bias_kmh", "speed bias", " km/h", "+.2f"), ("speed_noise_kmh", "speed noise sd",
        " km/h", ".2f"), ("presence_miss", "missed occupancies", "", ".3f"),
        ("false_presence_per_h", "false presence calls", " per empty zone-hour", ".2f"),
        ("latency_s", "presence latency", " s", ".2f"),
    ):  # fmt: skip
        if fit.get(key) is not None:
            low, high = fit[f"{key}_ci"]
            ci = "n/a" if low is None or high is None else f"{low:{spec}} .. {high:{spec}}"
            parts.append(f"{label} {fit[key]:{spec}}{unit} (95 % CI {ci})")
    return "; ".join(parts)
