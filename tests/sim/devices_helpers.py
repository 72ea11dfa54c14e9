"""Helpers for the field-device tests: small scenarios on the bundled single intersection."""

from __future__ import annotations

from pathlib import Path

from sim.controllers import create_controller
from sim.engine import RunResult, Simulation
from sim.scenario import bundled_root, load_scenario

SINGLE_CFG = bundled_root() / "single" / "scenario.sumocfg"
SECRET = "test-secret-0123456789"


def single_with(folder: Path, devices: str, *, name: str = "single-devices") -> Path:
    """A scenario folder: the bundled single intersection plus a ``[devices]`` declaration."""
    folder.mkdir(parents=True, exist_ok=True)
    text = f'name = "{name}"\nsumocfg = "{SINGLE_CFG}"\n\n{devices}\n'
    (folder / "scenario.toml").write_text(text, encoding="utf-8")
    return folder


def run(folder: Path, workdir: Path, *, end_s: float = 600.0, seed: int = 1,
        controller: str = "fixed", variant: str | None = None) -> RunResult:  # fmt: skip
    scenario = load_scenario(folder, variant)
    sim = Simulation(scenario, create_controller(controller), seed=seed, workdir=workdir, end_s=end_s)
    return sim.run()
