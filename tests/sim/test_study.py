"""Studies: the study file, what identifies a run, when a run folder is trusted, the dataset,
and the Dask backend on a real LocalCluster."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sim.errors import CcsimError, StudyError
from sim.kpi import SUMMARY_KEYS
from sim.scenario import bundled_root, load_scenario
from sim.study_dask import DaskCluster
from sim.study_file import load_study
from sim.study_runner import run_study
from sim.study_runs import DONE, finished, run_key

SMALLEST = 'scenarios = ["single"]\ncontrollers = ["fixed", "actuated"]\nseeds = [1, 2]\nend_s = 600\n'


def study_file(folder: Path, text: str, name: str = "study.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


# --- the study file ------------------------------------------------------------------------------


def test_smallest_study_expands_to_paired_runs(tmp_path: Path) -> None:
    study = load_study(study_file(tmp_path, SMALLEST), tmp_path / "out")
    assert study.name == "study"
    assert [(r.group, r.spec.seed) for r in study.runs] == [
        ("fixed", 1), ("fixed", 2), ("actuated", 1), ("actuated", 2)
    ]  # fmt: skip
    assert all(r.spec.end_s == 600 and r.spec.scale == 1.0 for r in study.runs)
    assert len({r.key for r in study.runs}) == 4
    assert [(c.factor, c.baseline) for c in study.comparisons] == [("controller", "fixed")]
    assert all(r.folder.parent == tmp_path / "out" / "runs" for r in study.runs)


def test_every_factor_and_explicit_comparisons(tmp_path: Path) -> None:
    text = """
name = "sweep"
scenarios = ["single", "corridor"]
controllers = ["fixed", "actuated"]
variants = ["ideal", "degraded-radar"]
scales = [0.8, 1.2]
seeds = "1-3"
begin_s = 0
end_s = 300
kpis = ["mean_delay_s", "co2_kg"]
[[comparisons]]
factor = "variant"
baseline = "ideal"
[[comparisons]]
factor = "scale"
baseline = 0.8
"""
    study = load_study(study_file(tmp_path, text), tmp_path / "out")
    assert len(study.runs) == 2 * 2 * 2 * 2 * 3
    assert study.runs[0].group == "single fixed ideal x0.8"
    assert study.kpis == ("mean_delay_s", "co2_kg")
    assert [(c.factor, c.baseline) for c in study.comparisons] == [
        ("variant", "ideal"), ("scale", "0.8")
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (SMALLEST + "colour = 1\n", ["field 'colour'", "unknown field", "expected one of"]),
        (SMALLEST.replace("[1, 2]", '"two"'), ["field 'seeds'", "'two'", "expected a range like 1-5"]),
        (SMALLEST.replace("[1, 2]", "[1, -2]"), ["field 'seeds'", "non-negative"]),
        # SUMO takes a seed up to 2**31 - 1: a larger one failed every run of the study
        (SMALLEST.replace("[1, 2]", "[1, 2147483648]"),
         ["field 'seeds'", "(got [1, 2147483648])", "expected non-negative seeds up to 2147483647"]),
        (SMALLEST.replace("[1, 2]", '"1-2147483648"'),
         ["field 'seeds'", "'1-2147483648'", "non-negative seeds up to 2147483647"]),
        (SMALLEST.replace('"actuated"', '"magic"'),
         ["field 'controllers[1]'", "unknown controller 'magic'"]),
        (SMALLEST.replace('"single"', '"atlantis"'), ["field 'scenarios[0]'", "no such scenario"]),
        (SMALLEST.replace("end_s = 600", "end_s = 'late'"),
         ["field 'end_s'", "'late'", "wrong type", "expected a number"]),
        (SMALLEST.replace("end_s = 600", "begin_s = 600\nend_s = 300"),
         ["field 'end_s'", "expected 0 <= begin < end"]),
        (SMALLEST + "scales = [1.0, 0]\n", ["field 'scales'", "expected demand scales above 0"]),
        (SMALLEST + "scales = []\n", ["field 'scales'", "expected a list with at least one entry"]),
        (SMALLEST + 'variants = ["sunny"]\n', ["field 'variants[0]'", "unknown variant 'sunny'"]),
        (SMALLEST + 'kpis = ["happiness"]\n', ["field 'kpis[0]'", "'happiness'", "summary.json key"]),
        (SMALLEST + '[[comparisons]]\nfactor = "controller"\nbaseline = "webster"\n',
         ["field 'comparisons[0].baseline'", "'webster'", "one of: fixed, actuated"]),
        (SMALLEST + '[[comparisons]]\nfactor = "weather"\nbaseline = "rain"\n',
         ["field 'comparisons[0].factor'", "'weather'"]),
        ('controllers = ["fixed"]\nseeds = [1]\n', ["field 'scenarios'", "missing"]),
        ("scenarios = [\n", ["invalid TOML"]),
    ],
)  # fmt: skip
def test_bad_study_files_name_file_field_value_and_expectation(
    tmp_path: Path, text: str, fragments: list[str]
) -> None:
    path = study_file(tmp_path, text)
    with pytest.raises(StudyError) as caught:
        load_study(path, tmp_path / "out")
    message = str(caught.value)
    assert message.startswith(f"{path}:") and "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_missing_study_file(tmp_path: Path) -> None:
    with pytest.raises(StudyError, match="cannot read the study file"):
        load_study(tmp_path / "nope.toml", tmp_path / "out")


def test_scenario_paths_are_relative_to_the_study_file(tmp_path: Path) -> None:
    shutil.copytree(bundled_root() / "single", tmp_path / "mine")
    path = study_file(tmp_path / "studies", SMALLEST.replace('"single"', '"../mine"'))
    study = load_study(path, tmp_path / "out")
    assert Path(study.runs[0].spec.scenario) == (tmp_path / "mine" / "scenario.toml").resolve()


# --- what identifies a run -------------------------------------------------------------------------


def key(folder: Path, **changes: object) -> str:
    fields: dict[str, object] = {"controller": "fixed", "variant": None, "scale": 1.0, "seed": 1,
                                 "begin_s": 0.0, "end_s": 600.0}  # fmt: skip
    fields.update(changes)
    return run_key(load_scenario(str(folder)), **fields)  # type: ignore[arg-type]


def test_run_key_follows_what_determines_the_run(tmp_path: Path) -> None:
    here = tmp_path / "a" / "single"
    shutil.copytree(bundled_root() / "single", here)
    base = key(here)
    assert key(bundled_root() / "single") == base  # the same files elsewhere: the same run
    for change in ({"seed": 2}, {"scale": 1.2}, {"controller": "actuated"},
                   {"variant": "degraded-radar"}, {"end_s": 300.0}):  # fmt: skip
        assert key(here, **change) != base, change
    routes = here / "single.rou.xml"
    routes.write_text(routes.read_text().replace("</routes>", "<!-- changed -->\n</routes>"))
    assert key(here) != base  # a scenario file's content


# --- running, resuming, failing (in-process, local pool) ----------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.events: list[str] = []

    def started(self, to_run: int, skipped: int, retried: int) -> None:
        self.events.append(f"start {to_run} {skipped} {retried}")

    def run_done(self, run: object) -> None:
        self.events.append("done")

    def run_failed(self, run: object, error: str) -> None:
        self.events.append(f"failed {error}")


def test_dask_local_cluster_runs_the_study_like_the_local_pool(tmp_path: Path) -> None:
    """A real LocalCluster (2 worker processes), each run in a child process of its worker;
    the results equal the local pool's (same seeds, same runs)."""
    from sim.study_runner import LocalPool

    path = study_file(tmp_path, SMALLEST.replace("end_s = 600", "end_s = 300"))
    local = load_study(path, tmp_path / "local")
    with LocalPool(2) as pool:
        run_study(local, tmp_path / "local", pool, Recorder())
    dask = load_study(path, tmp_path / "dask")
    recorder = Recorder()
    with DaskCluster("local", workers=2) as cluster:
        outcome = run_study(dask, tmp_path / "dask", cluster, recorder)
    assert recorder.events == ["start 4 0 0"] + ["done"] * 4
    assert len(outcome.done) == 4
    for run in dask.runs:
        assert finished(run) is not None
        assert (run.folder / "events.parquet").is_file() and (run.folder / "sumo" / "sumo.log").is_file()
    by_key = {r["run"]: r for r in pq.read_table(tmp_path / "local" / "runs.parquet").to_pylist()}
    rows = pq.read_table(tmp_path / "dask" / "runs.parquet").to_pylist()
    assert set(SUMMARY_KEYS) <= set(rows[0])
    for row in rows:
        assert row["status"] == "done"
        assert row["mean_delay_s"] == by_key[row["run"]]["mean_delay_s"]
        assert row["vehicles_arrived"] == by_key[row["run"]]["vehicles_arrived"]


def test_dask_failed_run_is_recorded_with_the_users_paths(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(bundled_root() / "single", broken)
    (broken / "single.rou.xml").write_text(
        "<routes><vehicle id='v0' depart='0'><route edges='nowhere'/></vehicle></routes>"
    )
    path = study_file(
        tmp_path, 'scenarios = ["broken"]\ncontrollers = ["fixed"]\nseeds = [1]\nend_s = 120\n'
    )
    study = load_study(path, tmp_path / "out")
    recorder = Recorder()
    with DaskCluster("local", workers=1) as cluster:
        run_study(study, tmp_path / "out", cluster, recorder)
    assert recorder.events[1].startswith("failed SUMO refused the scenario")
    record = json.loads((study.runs[0].folder / "failed.json").read_text())
    assert "nowhere" in record["error"] and "ccsim-run-" not in record["detail"]
    assert not (study.runs[0].folder / DONE).exists()


def test_unreachable_dask_scheduler_is_bad_input() -> None:
    with pytest.raises(CcsimError, match=r"--dask tcp://127.0.0.1:9: cannot reach the Dask scheduler"):
        DaskCluster("tcp://127.0.0.1:9", connect_timeout_s=0.5).__enter__()
