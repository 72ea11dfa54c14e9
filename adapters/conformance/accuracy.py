"""Accuracy against ground truth, pure: aligned intervals in, per-lane errors, intervals and
verdicts out.

**Alignment.** The device's sample periods are matched to the truth's by their end time
(``sampleEndTime``, s since the station started, which the harness starts at the simulation's
begin). A truth interval the device never reported counts as missing, never as zero.

**Volume.** Per lane, the error over the run is ``(device - true) / true`` in %; its 95 %
confidence interval treats the run's intervals as the sample of a ratio estimator
(``r = sum d / sum t``, variance ``n/(n-1) * sum (d_i - r t_i)^2 / (sum t)^2``, Student's t).
Blocks gather consecutive intervals until they hold ``block_vehicles`` true vehicles or last
``block_s`` (CDOT's "50 vehicles or 10 minutes"); a trailing block that reaches neither is left
out. **Occupancy** errors are in percentage points per interval (device - true).

**How many vehicles.** If a device misses each vehicle independently with probability ``p``,
telling ``p0`` from ``p1`` needs ``n = ((z_{1-a/2} sqrt(p0 q0) + z_{power} sqrt(p1 q1)) /
(p1 - p0))^2`` vehicles (normal approximation to the binomial).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scipy import stats

from adapters.conformance.cases import CaseResult, judged, not_applicable


@dataclass(frozen=True)
class LaneInterval:
    """One lane in one interval: true and reported volume (vehicles) and occupancy (%); the true
    occupancy is None when the truth is a reference count file (it has none)."""

    end_s: float
    true_volume: int
    true_occupancy_pct: float | None
    device_volume: int | None
    device_occupancy_pct: float | None


def align(
    lanes: Sequence[str],
    truth: Mapping[float, tuple[Sequence[int], Sequence[float]]],
    device: Mapping[float, tuple[Sequence[int | None], Sequence[float | None]]],
) -> dict[str, list[LaneInterval]]:
    """Per lane, the truth's intervals (end s -> volumes, occupancy 0..1 per lane) beside the
    device's (end s -> volumes, occupancy 0..1, None where missing or unreadable)."""
    out: dict[str, list[LaneInterval]] = {lane: [] for lane in lanes}
    for end in sorted(truth):
        volumes, occupancy = truth[end]
        reported = device.get(end)
        for k, lane in enumerate(lanes):
            dev_v = reported[0][k] if reported is not None else None
            dev_o = reported[1][k] if reported is not None else None
            out[lane].append(
                LaneInterval(
                    end, int(volumes[k]), 100.0 * float(occupancy[k]), dev_v,
                    None if dev_o is None else 100.0 * dev_o,
                )
            )  # fmt: skip
    return out


@dataclass(frozen=True)
class VolumeError:
    """Error of the device's volume over some intervals: % with its 95 % interval."""

    true: int
    device: int
    intervals: int
    error_pct: float | None
    low_pct: float | None
    high_pct: float | None

    def to_dict(self) -> dict[str, Any]:
        return {k: _round(v) for k, v in self.__dict__.items()}


def _round(v: Any) -> Any:
    return round(v, 3) if isinstance(v, float) else v


def volume_error(rows: Sequence[LaneInterval]) -> VolumeError:
    """The ratio-estimator error and 95 % interval over ``rows`` that the device reported."""
    pairs = [(r.true_volume, r.device_volume) for r in rows if r.device_volume is not None]
    t = sum(p[0] for p in pairs)
    d = sum(p[1] for p in pairs if p[1] is not None)
    n = len(pairs)
    if t == 0:
        return VolumeError(t, d, n, None, None, None)
    ratio = d / t
    if n < 2:
        return VolumeError(t, d, n, 100 * (ratio - 1), None, None)
    residual = sum((dv - ratio * tv) ** 2 for tv, dv in pairs if dv is not None)
    se = math.sqrt(n / (n - 1) * residual) / t
    half = float(stats.t.ppf(0.975, n - 1)) * se
    return VolumeError(t, d, n, 100 * (ratio - 1), 100 * (ratio - half - 1), 100 * (ratio + half - 1))


def blocks(
    rows: Sequence[LaneInterval], period_s: float, block_vehicles: int, block_s: float
) -> list[VolumeError]:
    """Consecutive reported intervals of ``period_s`` gathered until ``block_vehicles`` true
    vehicles or ``block_s`` seconds (see the module docstring)."""
    out: list[VolumeError] = []
    current: list[LaneInterval] = []
    for row in rows:
        if row.device_volume is None:
            continue
        current.append(row)
        vehicles = sum(r.true_volume for r in current)
        if vehicles >= block_vehicles or len(current) * period_s >= block_s - 1e-9:
            out.append(volume_error(current))
            current = []
    return out


def vehicles_to_distinguish(
    miss_good: float = 0.05, miss_bad: float = 0.10, alpha: float = 0.05, power: float = 0.80
) -> int:
    """Vehicles a test needs to tell a device missing ``miss_good`` of them from one missing
    ``miss_bad`` (two-sided ``alpha``, ``power``)."""
    z_a = float(stats.norm.ppf(1 - alpha / 2))
    z_b = float(stats.norm.ppf(power))
    spread = z_a * math.sqrt(miss_good * (1 - miss_good)) + z_b * math.sqrt(miss_bad * (1 - miss_bad))
    return math.ceil((spread / abs(miss_bad - miss_good)) ** 2)


CONDITIONS = (("light", 0.0, 15.0), ("busy", 15.0, 40.0), ("queued", 40.0, 101.0))
"""Traffic conditions by the zone's true occupancy in the period (%). At a stop line occupancy
says how long vehicles stood in the zone: a proxy, not the free-flow / congestion / stop-and-go
of a speed-measuring station (the emulated zones measure no speed)."""


def by_condition(aligned: Mapping[str, Sequence[LaneInterval]]) -> dict[str, dict[str, Any]]:
    """Volume error pooled over every lane's periods of each condition (:data:`CONDITIONS`)."""
    out = {}
    for name, low, high in CONDITIONS:
        rows = [
            r
            for lane in aligned.values()
            for r in lane
            if r.true_occupancy_pct is not None and low <= r.true_occupancy_pct < high
        ]
        out[name] = {"occupancy_pct": [low, min(high, 100.0)], "periods": len(rows),
                     **volume_error(rows).to_dict()}  # fmt: skip
    return out


@dataclass(frozen=True)
class AccuracyThresholds:
    volume_error_pct: float
    block_vehicles: int
    block_s: float
    block_pass_share: float
    occupancy_error_points: float


def lane_summaries(
    aligned: Mapping[str, Sequence[LaneInterval]], period_s: float, th: AccuracyThresholds
) -> dict[str, dict[str, Any]]:
    """Per lane: volume error over the run, its blocks, occupancy errors, missing periods."""
    out: dict[str, dict[str, Any]] = {}
    for lane, rows in aligned.items():
        occ = [
            r.device_occupancy_pct - r.true_occupancy_pct
            for r in rows
            if r.device_occupancy_pct is not None and r.true_occupancy_pct is not None
        ]
        lane_blocks = blocks(rows, period_s, th.block_vehicles, th.block_s)
        judged_blocks = [b for b in lane_blocks if b.error_pct is not None]
        within = [b for b in judged_blocks if abs(b.error_pct or 0.0) <= th.volume_error_pct]
        bias = sum(occ) / len(occ) if occ else None
        sd = None
        if bias is not None and len(occ) > 1:
            sd = math.sqrt(sum((e - bias) ** 2 for e in occ) / (len(occ) - 1))
        out[lane] = {
            "volume": volume_error(rows).to_dict(),
            "blocks": [b.to_dict() for b in lane_blocks],
            "blocks_within": len(within),
            "blocks_judged": len(judged_blocks),
            "missing_periods": sum(1 for r in rows if r.device_volume is None),
            "occupancy_mae_points": _round(sum(abs(e) for e in occ) / len(occ)) if occ else None,
            "occupancy_bias_points": _round(bias),
            "occupancy_sd_points": _round(sd),
            "occupancy_periods": len(occ),
        }
    return out


def accuracy_cases(
    summaries: Mapping[str, Mapping[str, Any]], th: AccuracyThresholds, wanted: Sequence[str]
) -> list[CaseResult]:
    """ACC-VOL-1, ACC-VOL-2 and ACC-OCC-1 from :func:`lane_summaries`."""
    results = []
    limit = th.volume_error_pct
    if "ACC-VOL-1" in wanted:
        failures, judged_lanes, few = [], 0, []
        for lane, s in summaries.items():
            v = s["volume"]
            if v["true"] < th.block_vehicles or v["error_pct"] is None:
                few.append(f"{lane} ({v['true']} vehicles)")
                continue
            judged_lanes += 1
            if s["missing_periods"]:
                failures.append(f"{lane}: {s['missing_periods']} periods missing or unreadable")
            if abs(v["error_pct"]) > limit:
                failures.append(
                    f"{lane}: {v['device']} counted for {v['true']} true vehicles, error "
                    f"{v['error_pct']:+.1f} % (95 % CI {_ci(v)}), limit +-{limit:g} %"
                )
        note = f"; not judged (under {th.block_vehicles} vehicles): {', '.join(few)}" if few else ""
        if not judged_lanes:
            unreadable = [lane for lane, s in summaries.items() if s["missing_periods"]]
            results.append(
                judged("ACC-VOL-1", [f"{lane}: no readable volume" for lane in unreadable], "")
                if unreadable
                else not_applicable("ACC-VOL-1", f"no lane saw {th.block_vehicles} vehicles{note}")
            )
        else:
            results.append(
                judged("ACC-VOL-1", [f + note for f in failures[:1]] + failures[1:],
                       f"{judged_lanes} lanes within +-{limit:g} %{note}", lanes=judged_lanes)
            )  # fmt: skip
    if "ACC-VOL-2" in wanted:
        failures, total = [], 0
        for lane, s in summaries.items():
            n = s["blocks_judged"]
            total += n
            if n and s["blocks_within"] / n < th.block_pass_share:
                worst = max(s["blocks"], key=lambda b: abs(b["error_pct"] or 0.0))
                failures.append(
                    f"{lane}: {s['blocks_within']} of {n} blocks within +-{limit:g} % "
                    f"(need {100 * th.block_pass_share:g} %); worst {worst['error_pct']:+.1f} % "
                    f"({worst['device']} for {worst['true']})"
                )
            elif not n and s["missing_periods"]:
                failures.append(f"{lane}: no readable volume in {s['missing_periods']} periods")
        if total == 0 and not failures:
            results.append(not_applicable("ACC-VOL-2", "no complete block on any lane"))
        else:
            results.append(
                judged("ACC-VOL-2", failures, f"{total} blocks of {th.block_vehicles} vehicles or "
                       f"{th.block_s / 60:g} min, each lane >= {100 * th.block_pass_share:g} % within "
                       f"+-{limit:g} %", blocks=total)
            )  # fmt: skip
    if "ACC-OCC-1" in wanted:
        failures, periods = [], 0
        for lane, s in summaries.items():
            periods += s["occupancy_periods"]
            mae = s["occupancy_mae_points"]
            if mae is not None and mae > th.occupancy_error_points:
                failures.append(
                    f"{lane}: mean absolute error {mae:.2f} points (bias "
                    f"{s['occupancy_bias_points']:+.2f}), limit {th.occupancy_error_points:g}"
                )
        if periods == 0:
            results.append(not_applicable("ACC-OCC-1", "no interval with both a true and a "
                                          "reported occupancy"))  # fmt: skip
        else:
            results.append(
                judged("ACC-OCC-1", failures, f"{periods} lane-periods, every lane's mean absolute "
                       f"error <= {th.occupancy_error_points:g} points")
            )  # fmt: skip
    return results


def _ci(v: Mapping[str, Any]) -> str:
    if v["low_pct"] is None:
        return "n/a"
    return f"{v['low_pct']:+.1f} .. {v['high_pct']:+.1f} %"
