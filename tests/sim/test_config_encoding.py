"""A configuration file that is not UTF-8 text is a bad file like any other: an error naming it
(not a UnicodeDecodeError out of the loader)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from controlcenter.rules import load_rules
from sim.errors import FileFieldError
from sim.scenario import load_scenario
from sim.sensor_profiles import read_profile
from sim.study_file import load_study

SINGLE = Path(__file__).resolve().parents[2] / "scenarios" / "single"
LATIN1 = 'description = "Caf\xe9"\n'.encode("latin-1")
"""A TOML line saved in Latin-1: \\xe9 alone is no UTF-8."""


def _scenario(tmp: Path) -> Path:
    folder = tmp / "scn"
    shutil.copytree(SINGLE, folder)
    toml = folder / "scenario.toml"
    toml.write_bytes(LATIN1 + toml.read_bytes())
    return toml


def _file(name: str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = tmp / name
        path.write_bytes(LATIN1)
        return path

    return make


LOADERS: dict[str, tuple[Callable[[Path], Path], Callable[[Path], object]]] = {
    "scenario": (_scenario, lambda p: load_scenario(str(p.parent))),
    "study": (_file("study.toml"), lambda p: load_study(p, p.parent / "out")),
    "sensor profile": (_file("profile.toml"), read_profile),
    "alarm rules": (_file("rules.toml"), load_rules),
}


@pytest.mark.parametrize("kind", sorted(LOADERS))
def test_a_file_not_in_utf8_is_refused_naming_it(kind: str, tmp_path: Path) -> None:
    make, load = LOADERS[kind]
    path = make(tmp_path)
    with pytest.raises(FileFieldError) as caught:
        load(path)
    assert caught.value.path == path
    assert str(caught.value).startswith(f"{path}: ")
    assert "UTF-8" in str(caught.value)
