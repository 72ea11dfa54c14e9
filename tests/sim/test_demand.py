"""A scenario's demand repeated (``[run] repeat_demand``): the route files written, and SUMO
running them."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

from sim.controllers import create_controller
from sim.demand import FLOWS, repeat_demand
from sim.engine import Simulation
from sim.errors import ScenarioError
from sim.scenario import bundled_root, load_scenario

SINGLE = bundled_root() / "single"

# One period (300 s) of demand on `single`'s net that departs a known number of vehicles:
# two flows with a number, a vehicle and a trip (16 vehicles), and a person with a stop time.
FIXED_DEMAND = """<routes>
    <route id="W_E" edges="W_C C_E" />
    <route id="S_N" edges="S_C C_N" />
    <flow id="we" type="car" route="W_E" begin="0" end="200" number="10" />
    <flow id="sn" type="car" route="S_N" begin="20" end="220" number="4" />
    <vehicle id="bus" type="car" route="S_N" depart="60">
        <stop lane="C_N_1" endPos="40" until="120" />
    </vehicle>
    <trip id="taxi" type="car" from="N_C" to="C_S" depart="100" />
    <person id="walker" type="ped" depart="30"><walk from="W_C" to="C_E" /></person>
</routes>
"""
ONE_PERIOD_VEHICLES = 10 + 4 + 1 + 1


def fixed_demand_scenario(folder: Path, repeat: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "fixed.rou.xml").write_text(FIXED_DEMAND)
    (folder / "scenario.toml").write_text(
        f'name = "single-fixed"\nnet = "{SINGLE / "single.net.xml"}"\nroutes = "fixed.rou.xml"\n'
        f'additional = "{SINGLE / "single.add.xml"}"\n'
        f"[run]\nbegin_s = 0\nend_s = 300\nrepeat_demand = {repeat}\n"
    )
    return folder


def demand_elements(path: Path) -> list[ET.Element]:
    return [el for el in ET.parse(path).getroot() if el.tag in FLOWS or el.tag == "vehicle"]


def test_single_repeated_three_times_has_three_periods_of_flows_with_unique_ids(tmp_path: Path) -> None:
    scenario = load_scenario("single", "run.repeat_demand=3")
    assert (scenario.repeat_demand, scenario.demand_period_s) == (3, 3600.0)
    assert (scenario.begin_s, scenario.end_s) == (0.0, 3 * 3600.0)  # the end follows

    (written,) = repeat_demand(scenario.route_files, scenario.demand_period_s, 3, tmp_path)
    original = demand_elements(scenario.route_files[0])
    repeated = demand_elements(written)
    assert original and len(repeated) == 3 * len(original)
    ids = [(el.tag, el.get("id")) for el in repeated]
    assert len(set(ids)) == len(ids)
    by_id = {el.get("id"): el for el in repeated}
    for el in original:
        for k in range(3):
            copy = by_id[el.get("id") if k == 0 else f"{el.get('id')}.r{k}"]
            for name in ("begin", "end"):
                assert float(copy.get(name, "")) == float(el.get(name, "")) + k * 3600
            assert copy.get("period") == el.get("period") and copy.get("route") == el.get("route")
    # routes and types are declared once
    routes = Counter(el.get("id") for el in ET.parse(written).getroot().iter("route"))
    assert routes and set(routes.values()) == {1}


def test_a_repeated_run_departs_n_times_the_vehicles_of_one_period(tmp_path: Path) -> None:
    departed = {}
    for repeat in (1, 3):
        scenario = load_scenario(fixed_demand_scenario(tmp_path / f"x{repeat}", repeat))
        assert scenario.end_s == 300.0 * repeat
        workdir = tmp_path / f"run{repeat}"
        summary = Simulation(scenario, create_controller("fixed"), seed=1, workdir=workdir).run().summary
        departed[repeat] = summary["vehicles_departed"]
        trips = [el.attrib for el in ET.parse(workdir / "tripinfo.xml").getroot().iter("tripinfo")]
        ids = [trip["id"] for trip in trips]
        assert len(ids) == len(set(ids)) == ONE_PERIOD_VEHICLES * repeat
        for trip in trips:  # period k's copies depart in period k
            k = int(trip["id"].split(".r")[1].split(".")[0]) if ".r" in trip["id"] else 0
            assert 300 * k <= float(trip["depart"]) < 300 * (k + 1)
    assert departed[1] == ONE_PERIOD_VEHICLES
    assert departed[3] == 3 * departed[1]
    (written,) = (tmp_path / "run3" / "demand").iterdir()  # the stop's time moves with its bus
    assert [el.get("until") for el in ET.parse(written).iter("stop")] == ["120", "420", "720"]


@pytest.mark.parametrize(
    ("element", "problem"),
    [
        ('<flow id="f" type="car" route="r" begin="0" number="3" />', "<flow> 'f' has no end"),
        ('<vehicle id="v" type="car" route="r" depart="triggered" />', "cannot move depart"),
        ('<vehicle id="v" type="car" route="r" depart="1" /><vehicle id="v.r1" type="car" '
         'route="r" depart="2" />', "which is taken"),
    ],
)  # fmt: skip
def test_demand_that_cannot_be_repeated_is_named(tmp_path: Path, element: str, problem: str) -> None:
    routes = tmp_path / "bad.rou.xml"
    routes.write_text(f'<routes><route id="r" edges="W_C C_E" />{element}</routes>')
    with pytest.raises(ScenarioError, match=problem) as caught:
        repeat_demand([routes], 300.0, 2, tmp_path / "out")
    assert str(routes) in str(caught.value)


@pytest.mark.parametrize("value", ["0", "1.5", '"2"', "1001"])
def test_a_bad_repeat_count_names_the_field(value: str) -> None:
    with pytest.raises(ScenarioError, match=r"run\.repeat_demand"):
        load_scenario("single", f"run.repeat_demand={value}")


def test_a_scaled_demand_departs_that_share_of_the_vehicles(tmp_path: Path) -> None:
    """``[run] demand_scale`` (SUMO's --scale): 0.5 departs every other vehicle of a period,
    2 each one twice; with ``repeat_demand`` it scales every period."""
    folder = fixed_demand_scenario(tmp_path / "x", 2)
    departed = {}
    for scale in (0.5, 1, 2):
        scenario = load_scenario(folder, f"run.demand_scale={scale}")
        assert scenario.demand_scale == scale
        simulation = Simulation(
            scenario, create_controller("fixed"), seed=1, workdir=tmp_path / f"s{scale}"
        )
        departed[scale] = simulation.run().summary["vehicles_departed"]
    assert departed[1] == 2 * ONE_PERIOD_VEHICLES
    assert departed[2] == 2 * departed[1]
    assert departed[0.5] == departed[1] // 2


@pytest.mark.parametrize("value", ["0", "-1", "nan", "101", '"0.5"'])
def test_a_bad_demand_scale_names_the_field(value: str) -> None:
    with pytest.raises(ScenarioError, match=r"run\.demand_scale"):
        load_scenario("single", f"run.demand_scale={value}")
