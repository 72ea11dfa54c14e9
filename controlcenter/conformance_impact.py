"""``ccsim conformance PLAN --impact``: what the measured accuracy costs in delay.

The plan's scenario runs with the ``[impact]`` controller (``adaptive`` by default) twice per
seed - its detectors under the sensor profile the conformance run fitted (``profile.toml``) and
under ``ideal`` ones - seeds paired, each run in its own process. The cost is the per-seed
difference, as a mean with its 95 % interval: in mean delay per vehicle (s) and in total
vehicle delay, vehicle-hours per run and per year (the run's hours standing for
``hours_per_year`` hours of the same traffic: 3650 by default, ten such hours a day).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters.conformance.plan import ImpactDoc, Plan
from sim.errors import CcsimError
from sim.stats import Estimate, estimate, paired_change
from sim.study import RunSpec, run_many

Arms = dict[str, dict[int, dict[str, Any]]]
"""Run summaries by arm (``ideal``, ``measured``) and seed."""


def paired_runs(
    impact: ImpactDoc, scenario: str, out: Path, begin: float | None, end: float | None,
    variants: dict[str, str], *, jobs: int, say: Callable[[str], None], what: str,
) -> tuple[Arms, float]:  # fmt: skip
    """Each arm (its name -> the variant it runs) once per ``[impact]`` seed with the
    ``[impact]`` controller, each run in its own process; the summaries by arm and seed, and
    the runs' length in hours. ``what`` says in the progress line what the arms compare."""
    specs = [
        RunSpec(
            scenario=scenario, controller=impact.controller, seed=seed,
            out=out / "impact" / f"{arm}-seed{seed}", begin_s=begin, end_s=end, variant=variant,
        )
        for seed in impact.seeds
        for arm, variant in variants.items()
    ]  # fmt: skip
    say(f"impact: {len(specs)} runs of {scenario} with {impact.controller} "
        f"({what}, seeds {', '.join(map(str, impact.seeds))})")  # fmt: skip
    summaries = run_many(specs, jobs=max(1, jobs))
    by_arm: Arms = {arm: {} for arm in variants}
    arms = [arm for _seed in impact.seeds for arm in variants]
    for arm, spec, summary in zip(arms, specs, summaries, strict=True):
        by_arm[arm][spec.seed] = summary
    return by_arm, (summaries[0]["end_s"] - summaries[0]["begin_s"]) / 3600


def metric(by_arm: Arms, arm: str, key: str) -> dict[int, float]:
    """One summary key of an arm's runs by seed (runs without it left out)."""
    return {s: float(v[key]) for s, v in by_arm[arm].items() if v.get(key) is not None}


def _estimate(e: Estimate) -> dict[str, Any]:
    return {"mean": round(e.mean, 3), "low": _r(e.low), "high": _r(e.high), "n": e.n}


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def price(
    plan: Plan, results: dict[str, Any], out: Path, *, jobs: int = 2,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:  # fmt: skip
    """Run the paired study and return ``results['impact']`` (also written into results)."""
    profile = out / "profile.toml"
    if not profile.exists() or results.get("fitted_profile") is None:
        raise CcsimError(f"{plan.path}: --impact needs a fitted profile, which only an accuracy "
                         "run against an emulated station gives")  # fmt: skip
    impact = plan.doc.impact
    sc = results["scenario"]
    # On the plan's own scenario the impact runs cover the conformance run's window by default.
    own = impact.scenario is None
    begin = sc["begin_s"] if own else None
    end = impact.end_s or (sc["end_s"] if own else None)
    scenario = plan.scenario_spec() if own else impact.scenario
    assert scenario is not None
    arms = {"ideal": '"ideal"', "measured": f'"{profile.resolve()}"'}
    variants = {arm: f"detectors.profile={value}" for arm, value in arms.items()}
    by_arm, run_h = paired_runs(impact, scenario, out, begin, end, variants, jobs=jobs, say=say,
                                what="ideal and measured detectors")  # fmt: skip
    vehicle_hours = {
        arm: {s: v["mean_delay_s"] * v["vehicles_departed"] / 3600 for s, v in by_arm[arm].items()}
        for arm in arms
    }
    delay = paired_change(metric(by_arm, "ideal", "mean_delay_s"),
                          metric(by_arm, "measured", "mean_delay_s"))  # fmt: skip
    total = paired_change(vehicle_hours["ideal"], vehicle_hours["measured"])
    space = paired_change(metric(by_arm, "ideal", "public_space_efficiency"),
                          metric(by_arm, "measured", "public_space_efficiency"))  # fmt: skip
    assert delay is not None and total is not None
    per_year = estimate([d * impact.hours_per_year / run_h for d in _differences(vehicle_hours)])
    doc = {
        "scenario": scenario, "controller": impact.controller, "seeds": impact.seeds,
        "hours_per_year": impact.hours_per_year,
        "run_h": round(run_h, 3), "profile": str(profile),
        "mean_delay_s": {
            "ideal": round(delay.baseline_mean, 3), "difference": _estimate(delay.difference),
        },
        "vehicle_hours_per_run": {
            "ideal": round(total.baseline_mean, 3), "difference": _estimate(total.difference),
        },
        "vehicle_hours_per_year": _estimate(per_year),
        "public_space_efficiency": None if space is None else {
            "ideal": round(space.baseline_mean, 4), "difference": _estimate(space.difference),
        },
        "runs": {arm: {str(s): {k: v.get(k) for k in ("mean_delay_s", "vehicles_departed")}
                       for s, v in seeds.items()} for arm, seeds in by_arm.items()},
    }  # fmt: skip
    return doc


def _differences(vehicle_hours: dict[str, dict[int, float]]) -> list[float]:
    seeds = sorted(set(vehicle_hours["ideal"]) & set(vehicle_hours["measured"]))
    return [vehicle_hours["measured"][s] - vehicle_hours["ideal"][s] for s in seeds]
