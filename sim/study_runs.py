"""The runs of a study on disk: what identifies a run, and when its folder can be trusted.

A run is keyed by a hash of everything that determines its results: the content of the
scenario's files, controller, variant, demand scale, seed, simulated window and the ccsim
version. Its folder ``runs/<label>-<hash>/`` is trusted only once it holds ``done.json``; a run
is written into ``runs/.partial/`` and moved into place (one rename) only after it finished, so
an interrupted run never looks finished. A run that failed leaves ``failed.json`` (its error)
and is retried by the next run of the study.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import traceback
import uuid
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from sim.errors import CcsimError
from sim.scenario import Scenario
from sim.study import RunSpec

DONE = "done.json"
FAILED = "failed.json"
PARTIAL = ".partial"


def ccsim_version() -> str:
    try:
        return metadata.version("ccsim")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def scenario_files(scenario: Scenario) -> list[Path]:
    """Every file the scenario is read from: scenario.toml, .sumocfg, net, routes, additional
    files, and its sensor profile when that is a file (absolute, sorted, no duplicates)."""
    files = [scenario.net_file, *scenario.route_files, *scenario.additional_files]
    files += [p for p in (scenario.source, scenario.sumocfg) if p is not None]
    if scenario.sensor_profile.endswith(".toml"):
        profile = Path(scenario.sensor_profile)
        files.append(profile if profile.is_absolute() else scenario.root / profile)
    return sorted({p.resolve() for p in files})


def scenario_base(scenario: Scenario) -> Path:
    """The folder that the scenario's files are named relative to: the one above their common
    folder, so that the scenario folder's own name (a scenario's default name) stays part of it."""
    files = [*scenario_files(scenario), scenario.root.resolve()]
    return Path(os.path.commonpath([str(p) for p in files])).parent


def scenario_entry(scenario: Scenario) -> Path:
    """The path that loads this scenario again: its scenario.toml, .sumocfg or folder."""
    return scenario.source or scenario.sumocfg or scenario.root


@dataclass(frozen=True)
class PlannedRun:
    """One run of a study: what runs (``spec``, with ``spec.out`` its final folder) and its key."""

    spec: RunSpec
    key: str
    scenario_name: str
    group: str
    """What the run is compared as: the labels of the factors the study varies."""
    factors: dict[str, Any]
    """scenario, controller, variant, scale: the values the study's comparisons work on."""

    @property
    def folder(self) -> Path:
        return self.spec.out


def run_key(
    scenario: Scenario,
    *,
    controller: str,
    variant: str | None,
    scale: float,
    seed: int,
    begin_s: float,
    end_s: float,
) -> str:
    """A hex digest of everything that determines a run's results."""
    base = scenario_base(scenario)
    contents = {
        str(path.relative_to(base)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in scenario_files(scenario)
    }
    identity = {
        "ccsim": ccsim_version(),
        "scenario_files": contents,
        "controller": controller,
        "variant": variant,
        "scale": scale,
        "seed": seed,
        "begin_s": begin_s,
        "end_s": end_s,
    }
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def folder_name(label: str, key: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
    return f"{safe}-{key[:12]}"


# --- the folder protocol -------------------------------------------------------------------------


def finished(run: PlannedRun) -> dict[str, Any] | None:
    """The run's record if its folder holds a completed run of the same key, else None."""
    try:
        record: dict[str, Any] = json.loads((run.folder / DONE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if record.get("key") != run.key or not (run.folder / "summary.json").is_file():
        return None
    return record


def failure(run: PlannedRun) -> dict[str, Any] | None:
    """The error a previous attempt recorded, if the run failed last time."""
    try:
        record: dict[str, Any] = json.loads((run.folder / FAILED).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if record.get("key") == run.key else None


def partial_folder(runs_dir: Path, run: PlannedRun) -> Path:
    """A fresh folder for the run to write into until it is complete."""
    return runs_dir / PARTIAL / f"{run.folder.name}.{uuid.uuid4().hex[:8]}"


def clear_partial(runs_dir: Path) -> None:
    """Remove what interrupted runs left behind (never trusted, never reused)."""
    shutil.rmtree(runs_dir / PARTIAL, ignore_errors=True)


def describe(error: BaseException) -> tuple[str, str]:
    """One line for the user (a CcsimError is already one), and the traceback for failed.json
    (for an error from a pool process, the traceback of that process)."""
    line = str(error) if isinstance(error, CcsimError) else f"{type(error).__name__}: {error}"
    cause = error.__cause__
    if cause is not None and type(cause).__name__ == "_RemoteTraceback":
        detail = str(cause)
    else:
        detail = "".join(traceback.format_exception(error))
    return " ".join(line.split()), detail


def _record(run: PlannedRun, status: str, **extra: Any) -> dict[str, Any]:
    spec = asdict(run.spec)
    spec["out"] = str(run.folder)
    return {
        "key": run.key,
        "status": status,
        "group": run.group,
        "spec": spec,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **extra,
    }


def _write_json_durably(path: Path, value: dict[str, Any]) -> None:
    with path.open("w", encoding="utf-8") as f:
        f.write(json.dumps(value, indent=2) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _move_into_place(source: Path, target: Path) -> None:
    # A crash between the two steps leaves no folder at all: the run is simply run again.
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.rename(source, target)


def commit_done(run: PlannedRun, written: Path) -> None:
    """Mark the complete run in ``written`` done and move it to its folder."""
    _write_json_durably(written / DONE, _record(run, "done"))
    _move_into_place(written, run.folder)


def commit_failed(run: PlannedRun, error: str, detail: str, written: Path | None) -> None:
    """Record that the run failed (``error``: one line; ``detail``: traceback or log), keeping
    what it wrote (SUMO's log) beside the record."""
    if written is None or not written.is_dir():
        written = run.folder.parent / PARTIAL / f"{run.folder.name}.{uuid.uuid4().hex[:8]}"
        written.mkdir(parents=True)
    _write_json_durably(written / FAILED, _record(run, "failed", error=error, detail=detail))
    _move_into_place(written, run.folder)
