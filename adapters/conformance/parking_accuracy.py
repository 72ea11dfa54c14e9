"""Accuracy of parking sensors against ground truth, pure: each bay's true changes and the states
its uplinks reported (after ingest: duplicates and replays dropped) in; state accuracy, change
detection, false occupancy and latency, with their intervals and verdicts, out.

**State accuracy** is the share of bay-time in which the last reported state equals the true
one (a bay not yet heard from counts as wrong). Its 95 % interval treats the bays as the sample
(their shares, Student's t), since the seconds of one bay are far from independent.

**Changes.** A true change is *eligible* when the sensor was in step with the truth just before
it: its reported state was the old true state, and no missed change had left it behind (after a
missed change a sensor is out of step until the truth comes back to what it senses, and what
it does meanwhile says nothing new); and when it is not censored (unreported when the run ended
before its window did). It is *detected* when the reported state turns to the new one within
``window_s``, after the bay's last detected change and before the bay's next true change to the
same state; the delay is its **latency**. Detection
has a Wilson interval, latency a Student's t interval for its mean and the 95th percentile.
A reported change to occupied that matches no true change, while the bay is truly free, is a
**false occupancy**; their rate per free bay-hour has an exact Poisson interval.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scipy import stats

from adapters.conformance.cases import CaseResult, judged, not_applicable

Bay = tuple[str, int]
Changes = Sequence[tuple[float, bool]]
"""A bay's timeline: (t s, occupied) in time order."""


@dataclass(frozen=True)
class ParkingThresholds:
    state_accuracy_pct: float = 98.0
    change_detection_pct: float = 95.0
    false_per_bay_h: float = 0.1
    change_latency_p95_s: float = 60.0
    window_s: float = 300.0


def _state_at(timeline: Changes, times: list[float], t: float) -> bool | None:
    """The state of ``timeline`` at ``t`` (the last entry at or before it), None before any."""
    k = bisect.bisect_right(times, t)
    return timeline[k - 1][1] if k else None


def _state_before(timeline: Changes, times: list[float], t: float) -> bool | None:
    """The state of ``timeline`` just before ``t``."""
    k = bisect.bisect_left(times, t)
    return timeline[k - 1][1] if k else None


def _agreement(truth: Changes, reported: Changes, begin: float, end: float) -> float:
    """Seconds in [begin, end] where the reported state equals the true one (truth starts free)."""
    cuts = sorted({begin, end, *(t for t, _ in truth if begin < t < end),
                   *(t for t, _ in reported if begin < t < end)})  # fmt: skip
    t_times = [t for t, _ in truth]
    r_times = [t for t, _ in reported]
    agree = 0.0
    for a, b in itertools.pairwise(cuts):
        true = _state_at(truth, t_times, a)
        said = _state_at(reported, r_times, a)
        if said is not None and said == (bool(true) if true is not None else False):
            agree += b - a
    return agree


def _changes_only(reported: Changes) -> list[tuple[float, bool]]:
    """The reported timeline without restatements (heartbeats repeating the same state)."""
    out: list[tuple[float, bool]] = []
    for t, state in reported:
        if not out or out[-1][1] != state:
            out.append((t, state))
    return out


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float | None, float | None]:
    if n == 0:
        return None, None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def poisson_rate(k: int, exposure_h: float) -> tuple[float | None, float | None]:
    """Exact (Garwood) 95 % interval of a Poisson rate, events per hour."""
    if exposure_h <= 0:
        return None, None
    low = 0.0 if k == 0 else float(stats.chi2.ppf(0.025, 2 * k)) / 2
    high = float(stats.chi2.ppf(0.975, 2 * k + 2)) / 2
    return low / exposure_h, high / exposure_h


def _r(v: float | None, digits: int = 4) -> float | None:
    return None if v is None else round(v, digits)


def score(
    truth: Mapping[Bay, Changes], reported: Mapping[Bay, Changes], begin_s: float, end_s: float,
    window_s: float = 300.0,
) -> dict[str, Any]:  # fmt: skip
    """Every figure of the module docstring, as results.json holds them."""
    span = end_s - begin_s
    shares, eligible, detected, latencies = [], 0, 0, []
    false, free_s, unmatched_other, unknown_s, censored = 0, 0.0, 0, 0.0, 0
    for bay, true_line in truth.items():
        said = sorted(reported.get(bay, ()))
        shares.append(_agreement(true_line, said, begin_s, end_s) / span)
        unknown_s += min(span, (said[0][0] - begin_s) if said else span)
        said_changes = _changes_only(said)
        s_times = [t for t, _ in said]
        matched: set[int] = set()
        believed, after = False, begin_s  # what the sensor is taken to sense; last match
        for i, (t, state) in enumerate(true_line):
            old = not state
            in_step = believed == old and _state_before(said, s_times, t) == old
            if not in_step:
                if believed == old:  # in step but its report differs (a false occupancy)
                    believed = state
                continue
            # a later change to the same state would take this one's report
            again = next((t2 for t2, s2 in true_line[i + 1 :] if s2 == state), end_s)
            limit = min(t + window_s, again, end_s)
            found = next((j for j, (tr, s) in enumerate(said_changes)
                          if max(t, after) <= tr <= limit and s == state and j not in matched),
                         None)  # fmt: skip
            if found is None and t + window_s > end_s and again >= end_s:
                censored += 1  # the run ended before its window did: not judged
                continue
            eligible += 1
            if found is None:
                continue  # missed: the sensor stays where it was
            believed, after = state, said_changes[found][0]
            matched.add(found)
            detected += 1
            latencies.append(after - t)
        t_times = [t for t, _ in true_line]
        for j, (tr, s) in enumerate(said_changes):
            if j in matched or tr <= begin_s:
                continue
            truly = bool(_state_at(true_line, t_times, tr))
            if s and not truly:
                false += 1
            elif s != truly:
                unmatched_other += 1
        free_s += _free_seconds(true_line, begin_s, end_s)
    n = len(shares)
    mean = sum(shares) / n if n else None
    half = None
    if n > 1 and mean is not None:
        sd = math.sqrt(sum((s - mean) ** 2 for s in shares) / (n - 1))
        half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    low, high = wilson(detected, eligible)
    f_low, f_high = poisson_rate(false, free_s / 3600)
    latency: dict[str, Any] = {"n": len(latencies), "mean_s": None, "low_s": None, "high_s": None,
                               "p95_s": None, "max_s": None}  # fmt: skip
    if latencies:
        m = sum(latencies) / len(latencies)
        latency.update(mean_s=round(m, 2), p95_s=round(_p95(latencies), 2),
                       max_s=round(max(latencies), 2))  # fmt: skip
        if len(latencies) > 1:
            sd = math.sqrt(sum((x - m) ** 2 for x in latencies) / (len(latencies) - 1))
            h = float(stats.t.ppf(0.975, len(latencies) - 1)) * sd / math.sqrt(len(latencies))
            latency.update(low_s=round(m - h, 2), high_s=round(m + h, 2))
    true_changes = sum(len(line) for line in truth.values())
    return {
        "bays": n,
        "bay_hours": round(n * span / 3600, 2),
        "true_changes": true_changes,
        "state": {
            "accuracy_pct": _r(None if mean is None else 100 * mean, 3),
            "low_pct": _r(None if half is None or mean is None else 100 * (mean - half), 3),
            "high_pct": _r(None if half is None or mean is None else 100 * (mean + half), 3),
            "unknown_bay_s": round(unknown_s, 1),
        },
        "changes": {
            "eligible": eligible, "detected": detected, "missed": eligible - detected,
            "detection": _r(detected / eligible if eligible else None),
            "low": _r(low), "high": _r(high),
            "other_unmatched": unmatched_other, "censored": censored,
        },
        "false_occupancy": {
            "count": false, "free_bay_h": round(free_s / 3600, 2),
            "per_bay_h": _r(false / (free_s / 3600) if free_s else None),
            "low": _r(f_low), "high": _r(f_high),
        },
        "latency": latency,
    }  # fmt: skip


def _free_seconds(true_line: Changes, begin: float, end: float) -> float:
    free, state, since = 0.0, False, begin
    for t, occupied in true_line:
        if not state:
            free += max(0.0, min(t, end) - since)
        state, since = occupied, max(begin, t)
    if not state:
        free += max(0.0, end - since)
    return free


def _p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def parking_cases(
    fig: Mapping[str, Any], th: ParkingThresholds, wanted: Sequence[str]
) -> list[CaseResult]:
    """ACC-PRK-1..4 from :func:`score`."""
    out = []
    if "ACC-PRK-1" in wanted:
        s = fig["state"]
        acc = s["accuracy_pct"]
        if acc is None:
            out.append(not_applicable("ACC-PRK-1", "no bay to judge"))
        else:
            ci = "n/a" if s["low_pct"] is None else f"{s['low_pct']:.2f} .. {s['high_pct']:.2f} %"
            what = (f"state right {acc:.2f} % of {fig['bay_hours']:g} bay-hours (95 % CI {ci}, "
                    f"{fig['bays']} bays), limit >= {th.state_accuracy_pct:g} %")  # fmt: skip
            bad = [what] if acc < th.state_accuracy_pct else []
            out.append(judged("ACC-PRK-1", bad, what))
    if "ACC-PRK-2" in wanted:
        c = fig["changes"]
        if not c["eligible"]:
            out.append(not_applicable("ACC-PRK-2", "no true change to detect"))
        else:
            what = (f"{c['detected']} of {c['eligible']} changes detected within "
                    f"{th.window_s:g} s ({100 * c['detection']:.1f} %, 95 % CI "
                    f"{100 * c['low']:.1f} .. {100 * c['high']:.1f} %), limit >= "
                    f"{th.change_detection_pct:g} %")  # fmt: skip
            bad = [what] if 100 * c["detection"] < th.change_detection_pct else []
            out.append(judged("ACC-PRK-2", bad, what))
    if "ACC-PRK-3" in wanted:
        f = fig["false_occupancy"]
        if f["per_bay_h"] is None:
            out.append(not_applicable("ACC-PRK-3", "no free bay-time"))
        else:
            what = (f"{f['count']} false occupancies in {f['free_bay_h']:g} free bay-hours "
                    f"({f['per_bay_h']:.3f}/h, 95 % CI {f['low']:.3f} .. {f['high']:.3f}), limit "
                    f"{th.false_per_bay_h:g}/h")  # fmt: skip
            bad = [what] if f["per_bay_h"] > th.false_per_bay_h else []
            out.append(judged("ACC-PRK-3", bad, what))
    if "ACC-PRK-4" in wanted:
        lat = fig["latency"]
        if not lat["n"]:
            out.append(not_applicable("ACC-PRK-4", "no change detected to time"))
        else:
            what = (f"p95 {lat['p95_s']:g} s over {lat['n']} detected changes (mean "
                    f"{lat['mean_s']:g} s), limit {th.change_latency_p95_s:g} s")  # fmt: skip
            bad = [what] if lat["p95_s"] > th.change_latency_p95_s else []
            out.append(judged("ACC-PRK-4", bad, what))
    return out


def fitted_bay_profile(fig: Mapping[str, Any]) -> dict[str, Any] | None:
    """The measured errors as a bay sensor profile's figures, with their intervals."""
    c, f, lat = fig["changes"], fig["false_occupancy"], fig["latency"]
    if not c["eligible"]:
        return None
    return {
        "detection_probability": c["detection"],
        "detection_probability_ci": [c["low"], c["high"]],
        "false_detections_per_h": f["per_bay_h"] or 0.0,
        "false_detections_per_h_ci": [f["low"], f["high"]],
        "latency_s": lat["mean_s"] or 0.0,
        "latency_s_ci": [lat["low_s"], lat["high_s"]],
        "changes": c["eligible"],
    }
