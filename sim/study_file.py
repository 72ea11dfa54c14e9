"""A study declared in one file (``ccsim study STUDY.toml``), and the runs it expands to.

The smallest study::

    scenarios = ["single"]
    controllers = ["fixed", "actuated"]
    seeds = [1, 2]
    end_s = 600

Every scenario runs with every variant, demand scale, controller and seed (seeds are paired
across everything else). The file is checked whole before any run starts; a problem is a
:class:`StudyError` naming the file, the field, the value and what was expected.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from sim.config_model import ConfigModel, Integer, Number, Text, invalid, validate
from sim.controllers import create_controller
from sim.errors import CcsimError, StudyError
from sim.kpi import SUMMARY_KEYS
from sim.scenario import Scenario, load_scenario
from sim.study import MAX_SEED, RunSpec, check_window, parse_seeds
from sim.study_runs import PlannedRun, folder_name, run_key, scenario_entry

Factor = Literal["scenario", "controller", "variant", "scale"]


class ComparisonDoc(ConfigModel):
    factor: Factor
    baseline: Text | Number


class StudyDoc(ConfigModel):
    """The fields of a study file (units in the names)."""

    name: Text | None = None
    scenarios: list[Text] = Field(min_length=1)
    controllers: list[Text] = Field(min_length=1)
    variants: list[Text] | None = Field(default=None, min_length=1)
    scales: list[Number] = Field(default=[1.0], min_length=1)
    seeds: list[Integer]
    begin_s: Number | None = Field(default=None, ge=0)
    end_s: Number | None = Field(default=None, gt=0)
    kpis: list[Text] | None = Field(default=None, min_length=1)
    comparisons: list[ComparisonDoc] | None = None

    @field_validator("seeds", mode="before")
    @classmethod
    def _seeds(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return parse_seeds(value)
            except CcsimError:
                raise invalid(
                    "not seeds",
                    "a range like 1-5, a list like 1,3,7, or a list of seeds "
                    f"(non-negative seeds up to {MAX_SEED})",
                ) from None
        return value

    @field_validator("scales")
    @classmethod
    def _scales(cls, value: list[float]) -> list[float]:
        for scale in value:
            if not scale > 0:
                raise invalid("out of range", "demand scales above 0")
        return value

    @field_validator("seeds")
    @classmethod
    def _non_negative(cls, value: list[int]) -> list[int]:
        if not value or any(not 0 <= seed <= MAX_SEED for seed in value):
            raise invalid("out of range", f"non-negative seeds up to {MAX_SEED}")
        return sorted(set(value))


@dataclass(frozen=True)
class Comparison:
    """Compare every level of ``factor`` with ``baseline``, within each group of the others."""

    factor: Factor
    baseline: str


@dataclass(frozen=True)
class Study:
    name: str
    runs: tuple[PlannedRun, ...]
    kpis: tuple[str, ...] | None
    """The KPIs the report shows (None: the usual ones the runs have)."""
    comparisons: tuple[Comparison, ...]
    source: Path | None = None


def load_study(path: Path, out: Path) -> Study:
    """Read and check the study file ``path``; its runs go under ``out/runs``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise StudyError(path, f"cannot read the study file ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise StudyError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise StudyError(path, f"invalid TOML: {exc}") from None
    doc = validate(StudyDoc, raw, path, error=StudyError)
    scenarios = [_scenario_spec(path, s) for s in doc.scenarios]
    for i, name in enumerate(doc.kpis or []):
        if name not in SUMMARY_KEYS:
            raise StudyError(path, "unknown KPI", field=f"kpis[{i}]", value=name,
                             expected="a summary.json key, e.g. mean_delay_s")  # fmt: skip
    runs = plan_runs(
        scenarios,
        doc.controllers,
        doc.variants,
        doc.scales,
        doc.seeds,
        begin_s=doc.begin_s,
        end_s=doc.end_s,
        runs_dir=out / "runs",
        source=path,
    )
    comparisons = _comparisons(path, doc, runs)
    return Study(
        name=doc.name or path.stem,
        runs=tuple(runs),
        kpis=tuple(doc.kpis) if doc.kpis else None,
        comparisons=comparisons,
        source=path,
    )


def plan_runs(
    scenarios: Sequence[str],
    controllers: Sequence[str],
    variants: Sequence[str] | None,
    scales: Sequence[float],
    seeds: Sequence[int],
    *,
    begin_s: float | None,
    end_s: float | None,
    runs_dir: Path,
    source: Path | None = None,
    keyed_folders: bool = True,
) -> list[PlannedRun]:
    """Every combination, checked before anything runs (controllers, scenarios, variants,
    window). Folders are ``<group>-seed<N>-<key>`` (or ``<group>-seed<N>`` without
    ``keyed_folders``, where the key is checked from done.json alone)."""
    for i, controller in enumerate(controllers):
        _checked(source, f"controllers[{i}]", lambda c=controller: create_controller(c))
    choices: list[str | None] = list(variants) if variants else [None]
    loaded: dict[tuple[str, str | None], Scenario] = {}
    for i, spec in enumerate(scenarios):
        for j, variant in enumerate(choices):
            where = f"scenarios[{i}]" if variant is None else f"variants[{j}]"
            scenario = _checked(source, where, lambda s=spec, v=variant: load_scenario(s, v))
            _checked(source, "end_s", lambda sc=scenario: check_window(sc, begin_s, end_s))
            loaded[spec, variant] = scenario
    names = [loaded[s, choices[0]].name for s in scenarios]

    def label(scenario: str, controller: str, variant: str | None, scale: float) -> str:
        parts = []
        if len(scenarios) > 1:
            parts.append(names[scenarios.index(scenario)])
        if len(controllers) > 1 or variant is None:
            parts.append(controller)
        if variant is not None:
            parts.append(variant)
        if len(scales) > 1:
            parts.append(f"x{scale:g}")
        return " ".join(parts)

    runs = []
    for spec in scenarios:
        for variant in choices:
            scenario = loaded[spec, variant]
            begin = scenario.begin_s if begin_s is None else begin_s
            end = scenario.end_s if end_s is None else end_s
            for scale in scales:
                for controller in controllers:
                    group = label(spec, controller, variant, scale)
                    for seed in seeds:
                        key = run_key(scenario, controller=controller, variant=variant,
                                      scale=scale, seed=seed, begin_s=begin, end_s=end)  # fmt: skip
                        name = folder_name(f"{group}-seed{seed}", key)
                        if not keyed_folders:
                            name = name.rsplit("-", 1)[0]
                        run = RunSpec(
                            scenario=str(scenario_entry(scenario)),
                            controller=controller,
                            seed=seed,
                            out=runs_dir / name,
                            begin_s=begin_s,
                            end_s=end_s,
                            variant=variant,
                            scale=scale,
                        )
                        factors = {"scenario": scenario.name, "controller": controller,
                                   "variant": variant, "scale": scale}  # fmt: skip
                        runs.append(PlannedRun(run, key, scenario.name, group, factors))
    return runs


def _checked(source: Path | None, field: str, check: Any) -> Any:
    """``check()``, with its error put in the study file's terms when there is a study file."""
    try:
        return check()
    except CcsimError as exc:
        if source is None:
            raise
        raise StudyError(source, str(exc), field=field) from None


def _scenario_spec(path: Path, spec: str) -> str:
    """A scenario path is relative to the study file's folder; anything else is a bundled name."""
    candidate = path.parent / spec
    return str(candidate.resolve()) if candidate.exists() else spec


def _comparisons(path: Path, doc: StudyDoc, runs: Sequence[PlannedRun]) -> tuple[Comparison, ...]:
    levels: dict[str, list[str]] = {}
    for run in runs:
        for factor, value in run.factors.items():
            if value is not None:
                text = _level(value)
                if text not in levels.setdefault(factor, []):
                    levels[factor].append(text)
    if doc.comparisons is None:  # by default: each factor that varies, against its first level
        default = [(f, v[0]) for f, v in levels.items() if len(v) > 1 and f != "scenario"]
        return tuple(Comparison(f, b) for f, b in default)  # type: ignore[arg-type]
    comparisons = []
    for i, comparison in enumerate(doc.comparisons):
        baseline = _level(comparison.baseline)
        known = levels.get(comparison.factor, [])
        if baseline not in known:
            raise StudyError(path, "not a level of the study", field=f"comparisons[{i}].baseline",
                             value=comparison.baseline,
                             expected=f"one of: {', '.join(known) or 'none'}")  # fmt: skip
        comparisons.append(Comparison(comparison.factor, baseline))
    return tuple(comparisons)


def _level(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
