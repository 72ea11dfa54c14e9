"""ccsim installed from a wheel, outside the checkout (as on a cluster's worker), runs the bundled
scenarios: they ship as the data package ``ccsim_scenarios``."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_listed_packages_are_every_package_of_the_tree() -> None:
    """pyproject lists the packages (to add the scenarios): a new subpackage must be listed."""
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(REPO).parts)
        for top in ("sim", "controlcenter", "adapters")
        for init in (REPO / top).rglob("__init__.py")
    }
    assert listed == found | {"ccsim_scenarios"}


def test_an_installed_wheel_runs_a_bundled_scenario_outside_the_checkout(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q",
         "-w", str(tmp_path / "dist")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = (tmp_path / "dist").glob("ccsim-*.whl")
    site = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-2000:]
    # the installed copy, not the checkout (the project's own editable install comes after it)
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run(
        [sys.executable, "-c", "import sim.scenario as s; print(s.__file__); print(s.bundled_root())"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60,
    )  # fmt: skip
    module, root = where.stdout.split()
    assert Path(module).is_relative_to(site) and Path(root) == site / "ccsim_scenarios"
    ran = subprocess.run(
        [sys.executable, "-m", "controlcenter.cli", "run", "district", "--end", "60",
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert (tmp_path / "out" / "summary.json").is_file()
