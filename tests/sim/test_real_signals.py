"""Signal control on nets that use more of SUMO's signal alphabet, through real SUMO runs: every
ccsim controller drives every signal it can (no refusal loop), what it cannot drive keeps its own
program and the run says so, and ``ccsim check`` reports it."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from controlcenter.cli import main
from sim import signals
from sim.controllers import create_controller
from sim.engine import Simulation
from sim.guard import red_amber_times
from sim.network import read_network
from sim.scenario import load_scenario
from sim.sumo import sumo_home
from tests.conftest import add_red_amber, make_net

OURS = ["webster", "actuated", "maxpressure", "adaptive"]


def scenario_on(net: Path, end_s: int = 600) -> Path:
    """A .sumocfg with an hour-like random demand on ``net``."""
    routes = net.with_suffix("").with_suffix(".rou.xml")
    subprocess.run(
        [sys.executable, str(sumo_home() / "tools" / "randomTrips.py"), "-n", str(net),
         "-e", str(end_s), "-p", "2.5", "--seed", "3", "-o", str(routes), "--validate"],
        check=True, capture_output=True, cwd=net.parent,
    )  # fmt: skip
    cfg = net.with_suffix("").with_suffix(".sumocfg")
    cfg.write_text(
        f"<configuration><input><net-file value='{net.name}'/><route-files value='{routes.name}'/>"
        f"</input><time><begin value='0'/><end value='{end_s}'/></time></configuration>\n"
    )
    return cfg


@pytest.fixture(scope="module")
def alphabet_cfgs(alphabet_nets: dict[str, Path]) -> dict[str, Path]:
    return {name: scenario_on(net) for name, net in alphabet_nets.items()}


@pytest.mark.parametrize("net", ["ror", "amber"])
@pytest.mark.parametrize("controller", OURS)
def test_every_controller_drives_every_signal_of_right_on_red_and_red_amber_nets(
    net: str, controller: str, alphabet_cfgs: dict[str, Path], tmp_path: Path
) -> None:
    sim = Simulation(
        load_scenario(alphabet_cfgs[net]), create_controller(controller), seed=1, workdir=tmp_path
    )
    result = sim.run()
    summary = result.summary
    assert summary["guard_violations"] == 0
    assert summary["guard_refusals"] <= 5, [m.payload for m in result.log.of_kind("guard.refused")][:5]
    assert summary["control_share_min"] >= 0.99 and summary["signals_degraded"] == 0
    shown = {m.payload.to_dict()["state"] for m in result.log.of_kind("signal.phase")}
    if net == "ror":  # right-turn-on-red stays where the net gives it, in ccsim's greens too
        assert any("s" in s and ("G" in s or "g" in s) for s in shown)
    else:  # red-amber before the greens, as the net's programs show it
        assert any("u" in s for s in shown)
    # The net's own programs and the guard's notes about them: said once, never violations.
    assert not result.log.of_kind("guard.violation")


def test_check_names_what_ccsim_cannot_drive(
    alphabet_nets: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    net = tmp_path / "sotl.net.xml"
    tree = ET.parse(alphabet_nets["ror"])
    logic = next(t for t in tree.getroot().iter("tlLogic") if t.get("id") == "B1")
    logic.set("type", "sotl_platoon")  # SUMO's self-organising logic: not ccsim's to drive
    tree.write(net)
    cfg = scenario_on(net, end_s=60)
    assert main(["check", str(cfg)]) == 0
    assert main(["check", str(cfg), "--strict"]) == 1
    out = capsys.readouterr().out
    assert "B1  not supported" in out and "sotl_platoon" in out
    assert "A0  ok" in out and "one green phase" in out  # a corner: always green, no choice
    assert "right-turn-on-red (s)" in out


def test_a_signal_left_on_its_program_is_reported_by_the_run(
    alphabet_cfgs: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # SUMO itself cannot run the program types ccsim does not drive (sotl, off, NEMA without
    # its parameters), so here a supported signal is declared unsupported: the real run must
    # then leave it on its program, say so, and count it out of control.
    original = signals.unsupported
    monkeypatch.setattr(
        signals, "unsupported", lambda tls: "declared by the test" if tls.id == "B1" else original(tls)
    )
    out_dir = tmp_path / "run"
    assert (
        main(["run", str(alphabet_cfgs["ror"]), "--controller", "adaptive", "--out", str(out_dir)]) == 0
    )
    out = capsys.readouterr().out
    assert "warning:" in out and "B1 0%" in out
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["control_share_by_tls"]["B1"] == 0.0 and summary["signals_degraded"] == 1
    assert summary["control_share_by_tls"]["B2"] == 1.0 and "A0" not in summary["control_share_by_tls"]
    kinds = pq.read_table(out_dir / "events.parquet").column("kind").to_pylist()
    assert kinds.count("signal.fallback") == 1 and kinds.count("control.degraded") == 1


def test_protected_left_nets_load_and_red_amber_is_read_from_the_program(tmp_path: Path) -> None:
    net = add_red_amber(make_net(tmp_path / "a.net.xml", "--grid.number", "3"), seconds=2.0)
    tls = read_network(net).traffic_lights["B1"]
    assert max(red_amber_times(tls)) == 2.0
