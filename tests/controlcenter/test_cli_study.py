"""``ccsim study`` as a user runs it: a real process, real SUMO, real files; resumed, failed,
interrupted with Ctrl-C, and given bad input."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sim.kpi import SUMMARY_KEYS
from sim.scenario import bundled_root
from tests.controlcenter.test_cli import assert_bad_input, ccsim

SMALLEST = 'scenarios = ["single"]\ncontrollers = ["fixed", "actuated"]\nseeds = [1, 2]\nend_s = 600\n'


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def done_records(out: Path) -> dict[str, str]:
    """Trusted runs: folder name -> when it finished."""
    return {
        p.parent.name: json.loads(p.read_text())["finished_at"]
        for p in (out / "runs").glob("*/done.json")
    }


@pytest.fixture(scope="module")
def smallest(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The smallest study, run once through the CLI: (study file, its --out folder)."""
    folder = tmp_path_factory.mktemp("smallest")
    path = write(folder / "smallest.toml", SMALLEST)
    result = ccsim("study", path, "--out", folder / "out", "--jobs", "2")
    assert result.returncode == 0, result.stderr
    assert "4 to run" in result.stdout and "4 done now, 0 failed" in result.stdout
    return path, folder / "out"


def test_smallest_study_writes_runs_series_and_report(smallest: tuple[Path, Path]) -> None:
    _, out = smallest
    rows = pq.read_table(out / "runs.parquet").to_pylist()
    assert len(rows) == 4 and {r["status"] for r in rows} == {"done"}
    assert set(SUMMARY_KEYS) <= set(rows[0])  # every summary key, as it comes
    assert {(r["controller"], r["seed"]) for r in rows} == {
        ("fixed", 1), ("fixed", 2), ("actuated", 1), ("actuated", 2)
    }  # fmt: skip
    series = pq.read_table(out / "series.parquet").to_pylist()
    assert {r["run"] for r in series} == {r["run"] for r in rows}
    assert {r["end_s"] for r in series if r["metric"] == "arrived"} == {300.0, 600.0}
    report = (out / "report.md").read_text()
    assert "| fixed |" in report and "## controller: change against `fixed`" in report
    assert "| mean_delay_s |" in report and "±" in report
    html = (out / "report.html").read_text()
    assert "<table>" in html and "data:image/png;base64," in html
    assert (out / "plots" / "distributions.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "plots" / "change-controller.png").is_file()


def test_query_sees_runs_and_series(smallest: tuple[Path, Path]) -> None:
    path, out = smallest
    result = ccsim("study", path, "--out", out, "--query",
                   "SELECT controller, count(*) AS n, avg(mean_delay_s) > 0 AS delayed "
                   "FROM runs GROUP BY controller ORDER BY controller")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["controller,n,delayed", "actuated,2,True", "fixed,2,True"]
    result = ccsim("study", path, "--out", out, "--query",
                   "SELECT count(DISTINCT run) FROM series WHERE scope = 'network'")  # fmt: skip
    assert result.stdout.splitlines()[1] == "4"
    assert_bad_input(ccsim("study", path, "--out", out, "--query", "SELEC 1"), "--query", "SELEC")


def test_rerun_skips_finished_runs_and_reruns_untrusted_ones(
    smallest: tuple[Path, Path], tmp_path: Path
) -> None:
    path, first = smallest
    out = tmp_path / "out"
    shutil.copytree(first, out)
    before = done_records(out)
    result = ccsim("study", path, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "4 finished before (skipped), 0 to run" in result.stdout
    assert done_records(out) == before

    folders = sorted(before)
    (out / "runs" / folders[0] / "summary.json").unlink()  # a result deleted
    (out / "runs" / folders[1] / "done.json").unlink()  # no completion marker: not trusted
    result = ccsim("study", path, "--out", out, "--jobs", "2")
    assert result.returncode == 0, result.stderr
    assert "2 finished before (skipped), 2 to run" in result.stdout
    after = done_records(out)
    assert set(after) == set(before)
    assert {f for f in folders if after[f] != before[f]} == set(folders[:2])
    assert len(pq.read_table(out / "runs.parquet")) == 4


def test_failed_run_is_recorded_and_the_study_goes_on(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(bundled_root() / "single", broken)
    (broken / "single.rou.xml").write_text(
        "<routes><vehicle id='v0' depart='0'><route edges='nowhere'/></vehicle></routes>"
    )
    text = 'scenarios = ["single", "broken"]\ncontrollers = ["fixed"]\nseeds = [1]\nend_s = 120\n'
    path = write(tmp_path / "s.toml", text)
    result = ccsim("study", path, "--out", tmp_path / "out")
    assert result.returncode == 1, result.stderr
    assert "1 done now, 1 failed" in result.stdout and "nowhere" in result.stdout
    rows = pq.read_table(tmp_path / "out" / "runs.parquet").to_pylist()
    assert sorted(r["status"] for r in rows) == ["done", "failed"]
    failed = next(r for r in rows if r["status"] == "failed")
    assert "SUMO refused the scenario" in failed["error"] and failed["mean_delay_s"] is None
    assert "| single fixed |" in (tmp_path / "out" / "report.md").read_text()

    result = ccsim("study", path, "--out", tmp_path / "out")  # the failed run is retried
    assert result.returncode == 1
    assert "1 finished before (skipped), 1 to run (1 failed before, retried)" in result.stdout


def test_demand_scale_reaches_sumo_and_the_report(tmp_path: Path) -> None:
    path = write(tmp_path / "s.toml",
                 'scenarios = ["single"]\ncontrollers = ["fixed"]\nscales = [0.5, 1.0]\n'
                 "seeds = [1]\nend_s = 300\n")  # fmt: skip
    result = ccsim("study", path, "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    rows = {r["scale"]: r for r in pq.read_table(tmp_path / "out" / "runs.parquet").to_pylist()}
    assert rows[0.5]["vehicles_departed"] < 0.7 * rows[1.0]["vehicles_departed"]
    assert (tmp_path / "out" / "plots" / "delay-vs-scale.png").is_file()
    assert "## scale: change against `0.5`" in (tmp_path / "out" / "report.md").read_text()


def test_ctrl_c_leaves_nothing_a_rerun_would_trust(tmp_path: Path) -> None:
    """SIGINT to ``ccsim study`` while a run is going: it stops (exit 130), the finished run is
    kept, the interrupted one is not trusted and runs again on resume."""
    text = 'scenarios = ["single"]\ncontrollers = ["fixed"]\nseeds = [1, 2, 3]\nend_s = 3600\n'
    path = write(tmp_path / "s.toml", text)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "controlcenter.cli", "study", str(path), "--out", str(out),
               "--jobs", "1"]  # fmt: skip
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as study:
        assert study.stdout is not None
        for line in study.stdout:  # the next run starts as soon as this one is reported done
            if line.strip().startswith("done"):
                break
        os.kill(study.pid, signal.SIGINT)
        try:
            _, stderr = study.communicate(timeout=60)
        finally:
            study.kill()
    assert study.returncode == 130, stderr
    assert "interrupted" in stderr and "resumes" in stderr
    kept = done_records(out)
    assert len(kept) == 1
    assert not (out / "runs.parquet").exists()

    result = ccsim("study", path, "--out", out, "--jobs", "2")
    assert result.returncode == 0, result.stderr
    assert "1 finished before (skipped), 2 to run" in result.stdout
    after = done_records(out)
    assert len(after) == 3 and {k: after[k] for k in kept} == kept
    assert not (out / "runs" / ".partial").exists()
    rows = pq.read_table(out / "runs.parquet").to_pylist()
    assert sorted(r["seed"] for r in rows) == [1, 2, 3] and all(r["end_s"] == 3600 for r in rows)


def test_bad_study_file_is_one_line_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path / "s.toml", SMALLEST.replace('"actuated"', '"magic"'))
    assert_bad_input(
        ccsim("study", path), str(path), "field 'controllers[1]'", "unknown controller 'magic'"
    )
    assert_bad_input(ccsim("study", tmp_path / "none.toml"), "none.toml", "cannot read the study file")


def test_dask_local_through_the_cli(smallest: tuple[Path, Path], tmp_path: Path) -> None:
    path, local = smallest
    result = ccsim("study", path, "--out", tmp_path / "out", "--dask", "local", "--jobs", "2")
    assert result.returncode == 0, result.stderr
    assert "4 done now, 0 failed" in result.stdout
    assert sorted(done_records(tmp_path / "out")) == sorted(done_records(local))
