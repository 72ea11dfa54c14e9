"""Test plans: the bundled ones load, and a bad plan is refused naming its file, field and what
was expected (exit code 2 from the command)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from adapters.conformance.plan import PlanError, bundled_plans, find_plan, load_plan
from controlcenter.conformance import resolve_site

GOOD = bundled_plans()["detector-good"]


def variant(tmp_path: Path, old: str, new: str) -> Path:
    text = GOOD.read_text()
    assert old in text
    path = tmp_path / "plan.toml"
    path.write_text(text.replace(old, new))
    return path


def test_bundled_plans_load_with_their_presets() -> None:
    assert {"detector-good", "detector-undercount"} <= set(bundled_plans())
    plan = load_plan(find_plan("detector-undercount"))
    assert plan.emulated and plan.doc.device.emulator is not None
    assert plan.doc.device.emulator.undercount == 0.15
    assert (plan.thresholds.volume_error_pct, plan.thresholds.block_vehicles) == (10.0, 50)
    site = resolve_site(plan)
    assert site.signal == "C" and len(site.lanes) == 6 and site.end_s == 1800


@pytest.mark.parametrize(
    ("old", "new", "field", "expected"),
    [
        ("undercount = 0.0", "undercont = 0.1", "device.emulator.undercont", "one of undercount"),
        (
            "undercount = 0.0",
            "undercount = 1.5",
            "device.emulator.undercount",
            "less than or equal to 1",
        ),
        ('address = "emulated"', 'address = "nowhere"', "device.address", "HOST:PORT"),
        ('signal = "C"\n', "", "scenario.signal", "a value"),
        ('preset = "cdot"', 'preset = "cdott"', "thresholds.preset", "'cdot' or 'vdot'"),
        ('include = ["protocol", "accuracy"]', 'include = ["TSS-XYZ"]', "cases.include[0]", "TSS-OBJ-1"),
        ("[device.emulator]", "[device.emulatr]", "device.emulatr", "one of kind"),
        (
            'address = "emulated"',
            'address = "emulated"\nreference = "c.csv"',
            "device.reference",
            "HOST:PORT",
        ),
    ],
)
def test_a_bad_plan_names_file_field_and_expectation(
    tmp_path: Path, old: str, new: str, field: str, expected: str
) -> None:
    path = variant(tmp_path, old, new)
    with pytest.raises(PlanError) as info:
        load_plan(path)
    message = str(info.value)
    assert str(path) in message and f"field '{field}'" in message and expected in message


@pytest.mark.parametrize(
    ("old", "new", "field", "expected"),
    [
        ('signal = "C"', 'signal = "Q"', "scenario.signal", "one of C"),
        ('signal = "C"', 'signal = "C"\nlanes = ["nope_0"]', "scenario.lanes[0]", "N_C_1"),
        ('name = "single"', 'name = "no-such-scenario"', "scenario.name", "no-such-scenario"),
        ('controller = "actuated"', 'controller = "fixed"', "scenario.controller", "actuated"),
    ],
)
def test_a_plan_that_does_not_fit_its_scenario_is_refused(
    tmp_path: Path, old: str, new: str, field: str, expected: str
) -> None:
    with pytest.raises(PlanError) as info:
        resolve_site(load_plan(variant(tmp_path, old, new)))
    assert f"field '{field}'" in str(info.value) and expected in str(info.value)


def test_the_command_exits_2_on_a_bad_plan_and_lists_the_bundled_ones(tmp_path: Path) -> None:
    path = variant(tmp_path, "undercount = 0.0", "undercount = -1")
    command = [sys.executable, "-m", "controlcenter.cli", "conformance"]
    bad = subprocess.run([*command, str(path)], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.startswith(f"ccsim: error: {path}: field 'device.emulator.undercount'")
    listed = subprocess.run([*command, "--list"], capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0
    assert "detector-good" in listed.stdout and "detector-undercount" in listed.stdout
    missing = subprocess.run([*command, "no-such-plan"], capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "detector-good" in missing.stderr


def test_a_plan_that_is_not_utf8_is_refused_naming_the_file_and_byte(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_bytes(GOOD.read_bytes().replace(b'name = "', b'name = "\xff', 1))
    with pytest.raises(PlanError) as info:
        load_plan(path)
    assert str(path) in str(info.value) and "not UTF-8 text" in str(info.value)
    assert "at byte" in str(info.value)
