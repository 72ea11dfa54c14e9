"""The bundled scenarios' generators rebuild every file they own byte for byte: what is in the
repository is what ``generate.py`` makes (demand, parking calibration, scenario.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


@pytest.mark.parametrize("name", ["single", "corridor", "district"])
def test_regenerating_a_scenario_gives_the_same_bytes(name: str, tmp_path: Path) -> None:
    copy = tmp_path / "scenarios"
    shutil.copytree(SCENARIOS, copy, ignore=shutil.ignore_patterns("__pycache__", "realnets"))
    for path in (copy / name).iterdir():  # generate.py must write them, not find them
        if path.suffix in (".xml", ".sumocfg", ".toml") and path.name != "fixed-webster.add.xml":
            path.unlink()
    subprocess.run([sys.executable, str(copy / name / "generate.py")], cwd=tmp_path, check=True,
                   capture_output=True)  # fmt: skip
    original = sorted(p.name for p in (SCENARIOS / name).iterdir() if p.is_file())
    assert sorted(p.name for p in (copy / name).iterdir() if p.is_file()) == original
    changed = [
        f for f in original if (copy / name / f).read_bytes() != (SCENARIOS / name / f).read_bytes()
    ]
    assert changed == []
