from __future__ import annotations

from pathlib import Path

import pytest

from sim.errors import ScenarioError
from sim.network import check_xml, read_network
from sim.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
REALNETS = SCENARIOS / "realnets"


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


def test_single_signal_conflicts_come_from_the_junction_foes() -> None:
    """Link indices of ``single``'s signal C (N, E, S, W approaches; 14-17 the crossings)."""
    net = read_network(load_scenario("single").net_file)
    tls = net.traffic_lights["C"]
    assert len(tls.conflicts) == 132
    assert all((j, i) in tls.conflicts for i, j in tls.conflicts)  # both orders
    assert {(1, 4), (2, 8), (6, 9)} <= tls.conflicts  # N straight x E straight, the lefts x straights
    assert not {(1, 8), (4, 11), (0, 7)} & tls.conflicts  # opposite straights, opposite rights
    assert {(0, 14), (0, 17), (1, 14), (13, 14)} <= tls.conflicts  # turns into a walk
    assert tls.crossing_links == {14, 15, 16, 17}
    assert tls.crossing_lanes == {14: ":C_c0_0", 15: ":C_c1_0", 16: ":C_c2_0", 17: ":C_c3_0"}
    left = next(link for link in tls.links if link.index == 2)
    assert (left.from_lane, left.to_lane, left.direction, left.via) == ("N_C_1", "C_E_2", "l", ":C_2_0")
    assert net.internal_next[":C_2_0"] == ":C_15_0"  # where a left turn waits inside
    assert net.path_length_m(":C_2_0") == pytest.approx(
        net.internal_length_m[":C_2_0"] + net.internal_length_m[":C_15_0"]
    )


def test_a_signal_over_two_junctions_has_foes_only_within_each() -> None:
    """Bologna Acosta's signal 209 drives junctions 63 (links 0-2) and 82 (links 3-6)."""
    net = read_network(REALNETS / "bologna-acosta" / "acosta.net.xml")
    tls = net.traffic_lights["209"]
    assert {link.via.rsplit("_", 2)[0] for link in tls.links} == {":63", ":82"}
    assert {pair for pair in tls.conflicts if pair[0] < pair[1]} == {(1, 2), (3, 6), (4, 6)}
    assert [(p.id, p.type, p.cycle_s) for p in tls.programs] == [("0", "static", 90.0)]
    assert tls.programs[0].phases[0].state == "GrGGGGg"


def test_actuated_phases_keep_their_bounds() -> None:
    net = read_network(SCENARIOS / "tlsvariants" / "actuated" / "actuated.net.xml")
    first = net.traffic_lights["A0"].programs[0].phases[0]
    assert (first.duration_s, first.min_dur_s, first.max_dur_s) == (42.0, 5.0, 50.0)
    assert net.traffic_lights["A0"].programs[0].phases[1].min_dur_s is None  # the yellow: unset


def test_projected_nets_convert_to_wgs84_and_local_ones_do_not() -> None:
    acosta = read_network(REALNETS / "bologna-acosta" / "acosta.net.xml")
    assert acosta.location.projected
    lon, lat = acosta.to_lon_lat(0.0, 0.0) or (0.0, 0.0)
    assert lon == pytest.approx(11.3084, abs=1e-3) and lat == pytest.approx(44.4899, abs=1e-3)  # Bologna
    single = read_network(load_scenario("single").net_file)
    assert not single.location.projected
    assert single.to_lon_lat(280.0, 280.0) is None
    assert single.location.boundary == (0.0, 0.0, 560.0, 560.0)


def test_malformed_network_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.net.xml"
    bad.write_text("<net><edge id='a'>")
    with pytest.raises(ScenarioError, match=r"bad.net.xml: malformed network XML"):
        read_network(bad)
    bad.write_text("<net version='1.20'><edge id='a' from='x' to='y'><lane id='a_0' speed='fast'/>")
    with pytest.raises(ScenarioError, match=r"bad.net.xml: malformed network XML: .*'fast'"):
        read_network(bad)


def test_check_xml_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.rou.xml"
    bad.write_text("<routes><vehicle id='a' depart='0'>")
    with pytest.raises(ScenarioError, match=r"bad.rou.xml: malformed route XML"):
        check_xml(bad, "route")
