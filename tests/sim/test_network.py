from __future__ import annotations

from pathlib import Path

import pytest

from sim.errors import ScenarioError
from sim.network import check_xml, read_network
from sim.scenario import load_scenario


def test_single_intersection_has_vehicle_approaches_and_pedestrian_signals() -> None:
    net = read_network(load_scenario("single").net_file)
    assert len(net.traffic_lights) == 1
    tls = next(iter(net.traffic_lights.values()))
    lanes = tls.incoming_lanes(net)
    assert len({lane.edge for lane in lanes}) == 4
    assert all(lane.carries_vehicles for lane in lanes)
    assert tls.crossing_links, "signalised pedestrian crossings expected"
    program = tls.programs[0]
    assert all(len(p.state) == len(program.phases[0].state) for p in program.phases)
    assert program.cycle_s > 0


def test_district_has_exactly_34_signalised_intersections() -> None:
    net = read_network(load_scenario("district").net_file)
    assert len(net.traffic_lights) == 34
    assert all(tls.crossing_links for tls in net.traffic_lights.values())


def test_malformed_network_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.net.xml"
    bad.write_text("<net><edge id='a'>")
    with pytest.raises(ScenarioError, match=r"bad.net.xml: malformed network XML"):
        read_network(bad)


def test_check_xml_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.rou.xml"
    bad.write_text("<routes><vehicle id='a' depart='0'>")
    with pytest.raises(ScenarioError, match=r"bad.rou.xml: malformed route XML"):
        check_xml(bad, "route")
