"""Enforcement cameras and radar points on the single intersection, with imperfect drivers."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.devices.enforcement import red_severity, site_paths
from sim.devices.radar import radar_position, speeding_severity
from sim.devices.sites import crossed_edges
from sim.kpi import SUMMARY_KEYS
from sim.messages import RadarPasses, RedLightViolation, SpeedingViolation
from sim.network import read_network
from sim.scenario import load_scenario
from tests.sim.devices_helpers import run, single_with

DRIVERS = """
[devices.drivers]
speeding_share = {speeding}
red_light_share = {red}
keep_clear_share = {box}
[devices.enforcement]
[devices.radar]
signs = {signs}
"""


def devices(speeding: float = 0.1, red: float = 0.0, box: float = 0.0, signs: str = "false") -> str:
    return DRIVERS.format(speeding=speeding, red=red, box=box, signs=signs)


def test_severities_grow_with_the_offence() -> None:
    assert [red_severity(s) for s in (0.0, 2.0, 5.0)] == ["minor", "serious", "very_serious"]
    assert [speeding_severity(e) for e in (0.15, 0.4, 0.8)] == ["minor", "serious", "very_serious"]
    assert radar_position(280.0, 80.0) == pytest.approx(168.0)
    assert radar_position(100.0, 80.0) == pytest.approx(70.0)


def test_paths_know_their_crosswalk_signals() -> None:
    scenario = load_scenario("single")
    network = read_network(scenario.net_file)
    paths = site_paths(network, "C", crossed_edges(network.path))
    assert {p.direction for p in paths} >= {"s", "l", "r"}
    assert all(p.entry_crossing is not None and p.exit_crossing is not None for p in paths)
    assert all(p.length_m > 0 and p.lanes[0].startswith(":C_") for p in paths)


def test_red_light_runners_are_caught_and_careful_drivers_are_not(tmp_path: Path) -> None:
    careful = run(single_with(tmp_path / "a", devices(red=0.0)), tmp_path / "ra")
    reckless = run(single_with(tmp_path / "b", devices(red=0.6)), tmp_path / "rb")
    assert careful.log.of_kind("violation.red_light") == []
    assert careful.summary["red_light_violations_per_h"] == 0.0
    caught = [m.payload for m in reckless.log.of_kind("violation.red_light")]
    assert len(caught) >= 2
    assert all(isinstance(v, RedLightViolation) and v.site == "C" for v in caught)
    assert reckless.summary["red_light_violations_per_h"] == pytest.approx(len(caught) * 6.0)
    assert reckless.summary["violations_by_site"]["C"]["red_light"] == len(caught)


def test_speeders_are_measured_at_the_radar_points(tmp_path: Path) -> None:
    slow = run(single_with(tmp_path / "a", devices(speeding=0.0)), tmp_path / "ra")
    fast = run(single_with(tmp_path / "b", devices(speeding=0.6)), tmp_path / "rb")
    for result in (slow, fast):
        passes = [m.payload for m in result.log.of_kind("radar.passes")]
        assert all(isinstance(p, RadarPasses) for p in passes)
        n = sum(p.passes for p in passes if isinstance(p, RadarPasses))
        speeding = len(result.log.of_kind("violation.speeding"))
        assert n > 300
        assert result.summary["speeding_rate"] == pytest.approx(speeding / n)
    assert fast.summary["speeding_rate"] > slow.summary["speeding_rate"] + 0.2
    assert fast.summary["radar_mean_speed_kmh"] > slow.summary["radar_mean_speed_kmh"]
    v = fast.log.of_kind("violation.speeding")[0].payload
    assert isinstance(v, SpeedingViolation) and v.speed_kmh is not None
    assert v.speed_kmh > v.limit_kmh * 1.1


def test_speed_signs_slow_speeders_down(tmp_path: Path) -> None:
    off = run(single_with(tmp_path / "a", devices(speeding=0.5, signs="false")), tmp_path / "ra")
    on = run(single_with(tmp_path / "b", devices(speeding=0.5, signs="true")), tmp_path / "rb")
    slowed = sum(p.sign_slowed for m in on.log.of_kind("radar.passes")
                 if isinstance(p := m.payload, RadarPasses))  # fmt: skip
    assert slowed > 20
    assert on.summary["speeding_rate"] < 0.8 * off.summary["speeding_rate"]


def test_device_kpis_are_none_without_devices(tmp_path: Path) -> None:
    result = run(load_scenario("single").root, tmp_path / "r", end_s=300.0)
    for key in ("speeding_rate", "radar_mean_speed_kmh", "red_light_violations_per_h",
                "violations_by_site", "incident_detection_delay_mean_s",
                "incident_false_alarms_per_h"):  # fmt: skip
        assert key in SUMMARY_KEYS and result.summary[key] is None


def test_vehicles_stuck_in_the_junction_block_the_box_and_crosswalks(tmp_path: Path) -> None:
    # Two broken-down cars just past the junction on the eastern exit: traffic that enters
    # (drivers ignoring keep-clear) cannot leave, stands in the box when its light turns red
    # and on the exit crosswalk when its pedestrians get walk.
    blocked = "".join(
        f'[[devices.incidents.inject]]\nat_s = 60\nedge = "C_E"\nlane = {lane}\npos_m = 8\n'
        "duration_s = 900\n"
        for lane in (1, 2)
    )
    text = devices(box=1.0) + "[devices.incidents]\ndetection = false\n" + blocked
    result = run(single_with(tmp_path / "a", text), tmp_path / "r", end_s=900.0)
    kinds = result.summary["violations_by_site"]["C"]
    assert kinds.get("box_blocking", 0) >= 1
    assert kinds.get("crosswalk", 0) >= 1
    careful = run(single_with(tmp_path / "b", devices(box=0.0)), tmp_path / "r2", end_s=900.0)
    assert careful.summary["violations_by_site"]["C"].get("box_blocking", 0) == 0
