"""Fixed plans timed from the demand (``sim/retime.py``, ``ccsim retime``): the demand read from
route files as SUMO would run it, Webster's cycle and splits, and a plan SUMO accepts."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from sim.errors import ScenarioError
from sim.network import Network, read_network
from sim.retime import PROGRAM_ID, plans_xml, read_demand, retime
from sim.scenario import load_scenario
from sim.sumo import sumo_binary

SINGLE = Path(__file__).resolve().parents[2] / "scenarios" / "single"
VARIANTS = SINGLE.parent / "tlsvariants"


@pytest.fixture(scope="module")
def single() -> Network:
    return read_network(SINGLE / "single.net.xml")


def routes(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "demand.rou.xml"
    path.write_text(f'<routes>\n<vType id="car"/>\n{body}\n</routes>\n')
    return path


def approach(demand_lanes: dict[str, float], edge: str) -> float:
    return sum(v for lane, v in demand_lanes.items() if lane.startswith(edge + "_"))


def test_every_way_sumo_gives_a_flow_counts_as_the_vehicles_it_departs(
    single: Network, tmp_path: Path
) -> None:
    path = routes(
        tmp_path,
        """
        <route id="WE" edges="W_C C_E"/>
        <route id="NS" edges="N_C C_S"/>
        <routeDistribution id="mix">
            <route id="EW" edges="E_C C_W" probability="3"/>
            <route id="SN" edges="S_C C_N" probability="1"/>
        </routeDistribution>
        <flow id="a" route="WE" begin="0" end="3600" vehsPerHour="600"/>
        <flow id="b" route="NS" begin="0" end="1800" period="exp(0.1)"/>
        <flow id="c" route="mix" begin="0" end="3600" number="400"/>
        <flow id="d" begin="0" end="3600" probability="0.05"><route edges="W_C C_N"/></flow>
        <vehicle id="v1" route="WE" depart="10"/>
        <vehicle id="late" route="WE" depart="4000"/>
        <trip id="t" from="W_C" to="C_E" depart="5"/>
        <flow id="e" route="WE" begin="1800" end="5400" period="2"/>
        """,
    )
    demand = read_demand(single, [path], 0.0, 3600.0)
    # a: 600; b: 0.1/s for 1800 s = 180; c: 400 split 3:1; d: 0.05/s = 180; v1: 1; e: half an hour
    # of one every 2 s = 900; "late" departs after the window; the trip has no edges.
    assert demand.vehicles == pytest.approx(600 + 180 + 400 + 180 + 1 + 900)
    assert demand.unrouted == 1
    assert approach(demand.lane_veh_h, "W_C") == pytest.approx(600 + 180 + 1 + 900)
    assert approach(demand.lane_veh_h, "N_C") == pytest.approx(180)
    assert approach(demand.lane_veh_h, "E_C") == pytest.approx(300)
    assert approach(demand.lane_veh_h, "S_C") == pytest.approx(100)
    # The left turn W -> N is shared among the lanes that have that movement, and no other.
    links = single.traffic_lights["C"].links
    west = [lk for lk in links if lk.from_lane.startswith("W_C")]
    left = {lk.from_lane for lk in west if lk.to_lane.startswith("C_N")}
    right_only = {lk.from_lane for lk in west} - {
        lk.from_lane for lk in west if lk.to_lane.startswith(("C_N", "C_E"))
    }
    assert left and all(demand.lane_veh_h[lane] >= 180 / len(left) for lane in left)
    assert all(demand.lane_veh_h.get(lane, 0.0) == 0.0 for lane in right_only)


def test_a_route_that_is_not_defined_is_an_error_naming_the_file(
    single: Network, tmp_path: Path
) -> None:
    path = routes(tmp_path, '<flow id="x" route="nowhere" begin="0" end="60" number="5"/>')
    with pytest.raises(ScenarioError, match=r"demand\.rou\.xml.*nowhere"):
        read_demand(single, [path], 0.0, 3600.0)
    bad = routes(tmp_path, '<flow id="x" route="r" vehsPerHour="many"/>')
    with pytest.raises(ScenarioError, match="vehsPerHour='many' is not a number"):
        read_demand(single, [bad], 0.0, 3600.0)


def test_the_busier_street_gets_the_longer_green_and_the_cycle_follows_the_load(
    single: Network, tmp_path: Path
) -> None:
    def timed(ew: int, ns: int) -> tuple[float, list[float]]:
        path = routes(
            tmp_path,
            f"""<route id="WE" edges="W_C C_E"/><route id="EW" edges="E_C C_W"/>
            <route id="NS" edges="N_C C_S"/><route id="SN" edges="S_C C_N"/>
            <flow id="we" route="WE" begin="0" end="3600" vehsPerHour="{ew}"/>
            <flow id="ew" route="EW" begin="0" end="3600" vehsPerHour="{ew}"/>
            <flow id="ns" route="NS" begin="0" end="3600" vehsPerHour="{ns}"/>
            <flow id="sn" route="SN" begin="0" end="3600" vehsPerHour="{ns}"/>""",
        )
        (timing,) = retime(single, read_demand(single, [path], 0.0, 3600.0))
        assert timing.program.id == PROGRAM_ID
        return timing.cycle_s, timing.greens_s

    base = single.traffic_lights["C"].programs[0]
    light_cycle, light = timed(600, 200)
    heavy_cycle, heavy = timed(1300, 700)
    # Phase 0 serves E-W here: three times the flow, the longer green (phase 1 is held up by its
    # minimum, the crossing's walk and clearance).
    assert light[0] > 1.4 * light[1]
    assert heavy_cycle > light_cycle and heavy[0] > light[0]  # Webster: more load, longer cycle
    assert 40 <= light_cycle < base.cycle_s <= 120
    # Yellows and all-reds keep the net's durations.
    (timing,) = retime(single, read_demand(single, [routes(tmp_path, "")], 0.0, 3600.0))
    green = {base.phases[i].state for i in (0, 4)}
    kept = [(p.state, p.duration_s) for p in base.phases if p.state not in green]
    assert [(p.state, p.duration_s) for p in timing.program.phases if p.state not in green] == kept


def test_keep_retimes_the_splits_inside_the_programs_cycle_and_offset(tmp_path: Path) -> None:
    scenario = load_scenario("corridor", "net-plans")
    network = read_network(scenario.net_file)
    demand = read_demand(network, scenario.route_files, scenario.begin_s, scenario.end_s)
    for timing in retime(network, demand, cycle="keep"):
        own = network.traffic_lights[timing.tls].programs[0]
        assert timing.program.cycle_s == own.cycle_s  # to the second: the green wave holds
        assert timing.program.offset_s == own.offset_s
        assert timing.greens_s[0] > timing.greens_s[1]  # the arterial carries the load


def test_ccsim_retime_writes_plans_that_sumo_runs(tmp_path: Path) -> None:
    out = tmp_path / "plans.add.xml"
    done = subprocess.run(
        [sys.executable, "-m", "controlcenter.cli", "retime", "single", "--out", str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "1 of 1 signals timed" in done.stdout and "[signals] plans" in done.stdout
    logic = ET.parse(out).getroot().find("tlLogic")
    assert logic is not None and logic.get("programID") == PROGRAM_ID
    # SUMO loads the file and runs the program: the signal's program id after one step.
    script = (
        "import libsumo, sys\n"
        "libsumo.start([sys.argv[1], '-n', sys.argv[2], '-a', sys.argv[3], '--end', '5'])\n"
        "libsumo.simulationStep()\n"
        "print(libsumo.trafficlight.getProgram('C'))\n"
        "libsumo.close()\n"
    )
    shown = subprocess.run(
        [sys.executable, "-c", script, str(sumo_binary("sumo")), str(SINGLE / "single.net.xml"),
         str(out)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert shown.stdout.strip().splitlines()[-1] == PROGRAM_ID


def test_a_scenario_names_its_plans_and_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    scenario = load_scenario("corridor")
    assert scenario.signal_plans is not None and scenario.signal_plans.name == "fixed-webster.add.xml"
    assert scenario.additional_files[-1] == scenario.signal_plans
    assert load_scenario("corridor", "net-plans").signal_plans is None
    with pytest.raises(ScenarioError, match=r"signals\.plans.*nowhere\.add\.xml"):
        load_scenario("corridor", "signals.plans=nowhere.add.xml")


def test_plans_xml_keeps_what_it_did_not_time(single: Network, tmp_path: Path) -> None:
    timings = retime(single, read_demand(single, [routes(tmp_path, "")], 0.0, 3600.0))
    root = plans_xml(timings, "test")
    assert [el.get("id") for el in root.iter("tlLogic")] == ["C"]


def test_a_flow_given_as_a_number_without_end_runs_to_the_end_of_the_window(
    single: Network, tmp_path: Path
) -> None:
    path = routes(tmp_path, '<route id="WE" edges="W_C C_E"/><flow id="a" route="WE" number="600"/>')
    assert read_demand(single, [path], 0.0, 3600.0).vehicles == pytest.approx(600)
    assert read_demand(single, [path], 0.0, 1800.0).vehicles == pytest.approx(600)


def test_an_actuated_program_is_retimed_as_a_fixed_one_with_whole_seconds(tmp_path: Path) -> None:
    network = read_network(VARIANTS / "actuated" / "actuated.net.xml")
    for timing in retime(network, read_demand(network, [routes(tmp_path, "")], 0.0, 3600.0)):
        assert timing.program.type == "static"
        assert all(
            p.min_dur_s is None and p.max_dur_s is None
            for p in timing.program.phases
            if p.state in {network.traffic_lights[timing.tls].programs[0].phases[0].state}
        )
        assert all(p.duration_s == int(p.duration_s) >= 1 for p in timing.program.phases)


def test_retime_refuses_a_scenario_whose_demand_has_no_routes(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "controlcenter.cli", "retime", str(VARIANTS / "joined"),
         "--out", str(tmp_path / "x.add.xml")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "no routed demand" in done.stderr and "duarouter" in done.stderr
    assert not (tmp_path / "x.add.xml").exists()
