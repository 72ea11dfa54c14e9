"""``[geo] origin``: where a net without a geo-projection lies on the earth."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.errors import ScenarioError
from sim.scenario import bundled_root, load_scenario

SINGLE = bundled_root() / "single" / "scenario.sumocfg"


def scenario_with(tmp_path: Path, geo: str) -> Path:
    (tmp_path / "scenario.toml").write_text(f'sumocfg = "{SINGLE}"\n\n[geo]\n{geo}\n')
    return tmp_path


def test_the_origin_is_read_and_a_variant_may_move_it(tmp_path: Path) -> None:
    folder = scenario_with(tmp_path, "origin = [-77.0346, -12.1255]")
    assert load_scenario(folder).geo_origin == (-77.0346, -12.1255)
    assert load_scenario(folder, "geo.origin=[2.35, 48.85]").geo_origin == (2.35, 48.85)
    assert load_scenario(SINGLE).geo_origin is None  # a bare .sumocfg says nothing of it


@pytest.mark.parametrize(
    ("geo", "problem"),
    [
        ("origin = [-12.1255]", r"'geo.origin'.*wrong type.*\[longitude, latitude\]"),
        ('origin = ["-77", "-12"]', r"'geo.origin'.*wrong type"),
        ("origin = [-12.1255, -77.0346, 0]", r"'geo.origin'.*wrong type"),
        ("origin = [-77.0346, -120.0]", r"'geo.origin'.*out of range.*latitude -90..90"),
        ("origin = [200.0, 10.0]", r"'geo.origin'.*out of range.*longitude -180..180"),
        ("origin = [nan, 10.0]", r"'geo.origin'.*out of range"),
        ("centre = [0, 0]", r"'geo.centre'.*unknown field.*one of origin"),
    ],
)
def test_a_bad_origin_is_named(tmp_path: Path, geo: str, problem: str) -> None:
    with pytest.raises(ScenarioError, match=problem):
        load_scenario(scenario_with(tmp_path, geo))
