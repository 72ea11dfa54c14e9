"""``ccsim conformance PLAN --impact`` for parking sensors: what their measured accuracy costs the
street's users and its public space.

The conformance run fits a bay sensor profile (``profile.toml``: detection probability, false
occupancies per free bay-hour, latency). The plan's scenario - or the ``[impact]`` one, e.g.
the district - then runs twice per seed, its bay sensors under that profile and under ``ideal``
ones, seeds paired, each run in its own process, both arms under the ``[impact] variant``
(default ``parking.guidance=true``: sensors change what drivers do only where guidance - or
pricing - reads them). The cost is the per-seed difference, as a mean with its 95 % interval,
in the parking KPIs (sim/kpi.py): **public-space efficiency** (share of bay-time legitimately
used; of all bays and of rotating and loading bays) and **parking search** (cruising) per
parker, in s and m, and in total: vehicle-hours and vehicle-km of cruising per run and per
year (the run's hours standing for ``hours_per_year`` hours of the same traffic). Parkers per
run are the turnover KPI times the scenario's bays and the run's hours.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters.conformance.plan import Plan
from controlcenter.conformance_impact import _estimate, metric, paired_runs
from sim.errors import CcsimError
from sim.network import read_network
from sim.parking import read_zones
from sim.scenario import load_scenario
from sim.stats import estimate, paired_change

DEFAULT_VARIANT = "parking.guidance=true"
PER_PARKER = ("parking_search_time_mean_s", "parking_search_distance_mean_m")
SHARES = ("public_space_efficiency", "public_space_efficiency_rotating_loading")


def price_parking(
    plan: Plan, results: dict[str, Any], out: Path, *, jobs: int = 2,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:  # fmt: skip
    """Run the paired study and return ``results['impact']``."""
    profile = out / "profile.toml"
    if not profile.exists() or not results.get("fitted_profile"):
        raise CcsimError(f"{plan.path}: --impact needs a fitted bay sensor profile, which only an "
                         "accuracy run against emulated parking sensors gives")  # fmt: skip
    impact = plan.doc.impact
    sc = results["scenario"]
    own = impact.scenario is None
    scenario = plan.scenario_spec() if own else impact.scenario
    assert scenario is not None
    begin = sc["begin_s"] if own else None
    end = impact.end_s or (sc["end_s"] if own else None)
    base = impact.variant or DEFAULT_VARIANT
    arms = {"ideal": '"ideal"', "measured": f'"{profile.resolve()}"'}
    loaded = load_scenario(scenario, base)  # a bad scenario or variant fails before any run
    if loaded.parking is None:
        raise CcsimError(f"{plan.path}: [impact] scenario {scenario} has no [parking] to price "
                         "parking sensors on")  # fmt: skip
    bays = sum(z.bays for z in read_zones(list(loaded.additional_files), read_network(loaded.net_file)))
    variants = {arm: f"{base};parking.bay_sensor_profile={value}" for arm, value in arms.items()}
    by_arm, run_h = paired_runs(impact, scenario, out, begin, end, variants, jobs=jobs, say=say,
                                what=f"{base}; ideal and measured bay sensors")  # fmt: skip

    def compared(key: str, digits: int) -> dict[str, Any] | None:
        change = paired_change(metric(by_arm, "ideal", key), metric(by_arm, "measured", key))
        if change is None:
            return None
        return {"ideal": round(change.baseline_mean, digits), "difference": _estimate(change.difference)}

    def totals(key: str, scale: float) -> dict[str, dict[int, float]]:
        """Per arm and seed: parkers x the per-parker figure x ``scale``."""
        parkers = {arm: metric(by_arm, arm, "parking_turnover_per_bay_h") for arm in arms}
        per = {arm: metric(by_arm, arm, key) for arm in arms}
        return {arm: {s: parkers[arm][s] * bays * run_h * per[arm][s] * scale
                      for s in per[arm] if s in parkers[arm]} for arm in arms}  # fmt: skip

    cruising_h, cruising_km = totals(PER_PARKER[0], 1 / 3600), totals(PER_PARKER[1], 1 / 1000)
    hours = paired_change(cruising_h["ideal"], cruising_h["measured"])
    km = paired_change(cruising_km["ideal"], cruising_km["measured"])
    if hours is None or km is None:
        raise CcsimError(f"{plan.path}: the impact runs recorded no parking search (did anyone park "
                         f"in {scenario} before {end or 'its end'} s?)")  # fmt: skip
    year = impact.hours_per_year / run_h
    return {
        "kind": "parking", "scenario": scenario, "variant": base, "controller": impact.controller,
        "seeds": impact.seeds, "hours_per_year": impact.hours_per_year, "run_h": round(run_h, 3),
        "profile": str(profile), "bays": bays,
        **{key: compared(key, 4) for key in SHARES},
        **{key: compared(key, 2) for key in PER_PARKER},
        "cruising_vehicle_hours_per_run": {"ideal": round(hours.baseline_mean, 3),
                                           "difference": _estimate(hours.difference)},
        "cruising_vehicle_hours_per_year": _estimate(estimate(_diffs(cruising_h, year))),
        "cruising_vehicle_km_per_year": _estimate(estimate(_diffs(cruising_km, year))),
        "runs": {arm: {str(s): {k: v.get(k) for k in (*SHARES, *PER_PARKER,
                                                       "parking_turnover_per_bay_h")}
                       for s, v in seeds.items()} for arm, seeds in by_arm.items()},
    }  # fmt: skip


def _diffs(per_arm: dict[str, dict[int, float]], scale: float) -> list[float]:
    seeds = sorted(set(per_arm["ideal"]) & set(per_arm["measured"]))
    return [(per_arm["measured"][s] - per_arm["ideal"][s]) * scale for s in seeds]
