"""The ``ccsim`` command as a user runs it: a real process, real SUMO, real files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sim.kpi import SUMMARY_KEYS
from sim.outputs import EVENTS_SCHEMA

CCSIM = [sys.executable, "-m", "controlcenter.cli"]


def ccsim(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CCSIM, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600
    )


def assert_bad_input(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ccsim: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_run_writes_summary_timeseries_and_events(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = ccsim("run", "single", "--controller", "fixed", "--seed", "2", "--end", "600",
                   "--out", out)  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary) == list(SUMMARY_KEYS)
    assert summary["seed"] == 2 and summary["end_s"] == 600.0
    assert summary["vehicles_arrived"] > 0 and summary["mean_delay_s"] > 0
    events = pq.read_table(out / "events.parquet")
    assert events.column_names == ["t", "seq", "source", "kind", "payload"]
    seqs = events.column("seq").to_pylist()
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    series = pq.read_table(out / "timeseries.parquet").to_pylist()
    network_delay = [r for r in series if r["scope"] == "network" and r["metric"] == "arrived"]
    assert [r["end_s"] for r in network_delay] == [300.0, 600.0]
    assert "mean_delay_s" in result.stdout


def test_relative_output_folder(tmp_path: Path) -> None:
    result = ccsim("run", "single", "--end", "300", "--out", "rel/out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "rel" / "out" / "summary.json").is_file()


def test_district_hour_writes_every_output(tmp_path: Path) -> None:
    out = tmp_path / "district"
    result = ccsim("run", "scenarios/district", "--controller", "fixed", "--seed", "1",
                   "--out", out, cwd=Path(__file__).resolve().parents[2])  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary) == list(SUMMARY_KEYS)
    assert summary["end_s"] == 3600.0
    assert summary["bus_mean_delay_s"] is not None
    assert summary["pedestrian_mean_delay_s"] is not None
    series = pq.read_table(out / "timeseries.parquet").to_pylist()
    signals = {r["scope"] for r in series if r["period"] == "run"}
    assert len(signals) == 34


def test_third_party_sumocfg(grid_cfg: Path, tmp_path: Path) -> None:
    result = ccsim("run", grid_cfg, "--out", tmp_path / "o")
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["scenario"] == "grid"


def test_compare_writes_table_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    result = ccsim("compare", "corridor", "--controllers", "fixed,sumo-actuated",
                   "--seeds", "1-3", "--out", out)  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = (out / "comparison.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 6
    table = (out / "comparison.md").read_text()
    assert "| mean_delay_s |" in table and "±" in table and "Change against `fixed`" in table
    assert (out / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "mean_delay_s" in result.stdout


# --- bad input: exit 2, one line naming what is wrong -----------------------------------------


def test_unknown_controller_lists_the_known_ones() -> None:
    assert_bad_input(ccsim("run", "single", "--controller", "magic"),
                     "unknown controller 'magic'", "fixed", "sumo-actuated")  # fmt: skip


def test_unknown_scenario() -> None:
    assert_bad_input(ccsim("run", "atlantis"), "atlantis", "no such scenario")


def test_bad_toml_field(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "scenario.toml").write_text('name = "s"\nsumocfg = 3\n')
    assert_bad_input(ccsim("run", folder), "scenario.toml", "'sumocfg'", "expected a string")


@pytest.fixture
def grid_copy(grid_cfg: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "copy"
    shutil.copytree(grid_cfg.parent, folder)
    return folder


def test_missing_net_file(grid_copy: Path) -> None:
    (grid_copy / "grid.net.xml").unlink()
    assert_bad_input(ccsim("run", grid_copy / "grid.sumocfg"), "'net-file'", "grid.net.xml")


def test_malformed_route_file(grid_copy: Path) -> None:
    (grid_copy / "grid.rou.xml").write_text("<routes><vehicle id='a'")
    assert_bad_input(ccsim("run", grid_copy / "grid.sumocfg", "--out", grid_copy / "o"),
                     "grid.rou.xml", "malformed route XML")  # fmt: skip


def test_route_through_unknown_edge(grid_copy: Path) -> None:
    (grid_copy / "grid.rou.xml").write_text(
        "<routes><vehicle id='v0' depart='0'><route edges='nowhere'/></vehicle></routes>"
    )
    assert_bad_input(ccsim("run", grid_copy / "grid.sumocfg", "--out", grid_copy / "o"),
                     "SUMO refused the scenario", "nowhere")  # fmt: skip


def test_unwritable_output_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert_bad_input(ccsim("run", "single", "--out", blocker / "out"), str(blocker / "out"))


def test_bad_seed_range() -> None:
    assert_bad_input(ccsim("compare", "single", "--controllers", "fixed", "--seeds", "5-1"),
                     "--seeds '5-1'")  # fmt: skip


def test_compare_variants_prices_a_worse_sensor(tmp_path: Path) -> None:
    out = tmp_path / "variants"
    result = ccsim("compare", "single", "--controllers", "actuated",
                   "--variants", "ideal,degraded-radar", "--seeds", "1-2", "--end", "900",
                   "--out", out)  # fmt: skip
    assert result.returncode == 0, result.stderr
    table = (out / "comparison.md").read_text()
    assert "| metric | ideal | degraded-radar |" in table
    assert "Change against `ideal`" in table
    rows = (out / "comparison.csv").read_text().splitlines()
    assert rows[0].startswith("group,") and len(rows) == 1 + 4
    degraded = pq.read_table(out / "runs" / "degraded-radar-seed1" / "events.parquet")
    assert "sensor.fault" in set(degraded.column("kind").to_pylist())


def test_unknown_variant_lists_the_known_ones() -> None:
    assert_bad_input(ccsim("compare", "single", "--controllers", "fixed", "--variants", "sunny"),
                     "unknown variant 'sunny'", "degraded-radar")  # fmt: skip


def test_replay_refuses_a_variant_its_scenario_no_longer_has(tmp_path: Path) -> None:
    """A run recorded with a variant its scenario.toml has since lost: refused before anything
    is served, naming the run's folder and the variant."""
    started = {"scenario": "single", "controller": "fixed", "seed": 1, "variant": "rush-hour"}
    pq.write_table(pa.table({"t": [0.0], "seq": [1], "source": ["engine"], "kind": ["run.started"],
                             "payload": [json.dumps(started)]}, schema=EVENTS_SCHEMA),
                   tmp_path / "events.parquet")  # fmt: skip
    result = ccsim("replay", tmp_path, "--port", "0", "--db", f"sqlite:///{tmp_path}/replay.db")
    assert_bad_input(result, f"{tmp_path}: ", "'rush-hour'", "--variant")
