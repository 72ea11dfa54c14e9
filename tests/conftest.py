"""Shared fixtures: small real SUMO inputs built with SUMO's own tools."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sim.sumo import sumo_binary, sumo_home

REPO = Path(__file__).resolve().parent.parent


def make_grid_scenario(folder: Path, *, end_s: int, period_s: float, seed: int = 7) -> Path:
    """A third-party-style scenario: a netgenerate grid with static lights and randomTrips demand,
    wrapped in a plain .sumocfg (no scenario.toml). Returns the .sumocfg path."""
    folder.mkdir(parents=True, exist_ok=True)
    net = folder / "grid.net.xml"
    subprocess.run(
        [str(sumo_binary("netgenerate")), "--grid", "--grid.number", "3", "--grid.length", "200",
         "--default-junction-type", "traffic_light", "--tls.default-type", "static",
         "-o", str(net)],
        check=True, capture_output=True,
    )  # fmt: skip
    routes = folder / "grid.rou.xml"
    subprocess.run(
        [sys.executable, str(sumo_home() / "tools" / "randomTrips.py"), "-n", str(net),
         "-e", str(end_s), "-p", str(period_s), "--seed", str(seed), "-o", str(routes),
         "--validate"],
        check=True, capture_output=True, cwd=folder,
    )  # fmt: skip
    cfg = folder / "grid.sumocfg"
    cfg.write_text(
        "<configuration><input><net-file value='grid.net.xml'/>"
        "<route-files value='grid.rou.xml'/></input>"
        f"<time><begin value='0'/><end value='{end_s}'/></time></configuration>\n"
    )
    return cfg


@pytest.fixture(scope="session")
def grid_cfg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A light grid scenario (10 minutes)."""
    return make_grid_scenario(tmp_path_factory.mktemp("grid"), end_s=600, period_s=2.0)


@pytest.fixture(scope="session")
def jammed_grid_cfg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An overloaded grid: at the end, many vehicles are still driving or never got in."""
    return make_grid_scenario(tmp_path_factory.mktemp("jam"), end_s=400, period_s=0.4)
