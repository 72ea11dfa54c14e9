"""The district map as GeoJSON, from the bundled SUMO nets and additional files."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest

from controlcenter.geojson import LaneShape, lane_shapes, network_map, read_devices
from sim.detectors import place_detectors
from sim.errors import ScenarioError
from sim.network import read_network
from sim.scenario import load_scenario


def test_positions_along_a_lane_follow_its_shape_scaled_to_its_length() -> None:
    lane = LaneShape(((0.0, 0.0), (10.0, 0.0), (10.0, 10.0)), length_m=40.0)  # drawn 20 m
    assert lane.at(0.0) == (0.0, 0.0)
    assert lane.at(20.0) == (10.0, 0.0)
    assert lane.at(30.0) == (10.0, 5.0)
    assert lane.cut(10.0, 30.0) == [(5.0, 0.0), (10.0, 0.0), (10.0, 5.0)]
    assert lane.at(100.0) == (10.0, 10.0)


def test_single_intersection_map() -> None:
    scenario = load_scenario("single")
    network = read_network(scenario.net_file)
    detectors = place_detectors(network, scenario.detectors)
    geo = network_map(scenario, network, detectors)
    kinds = Counter(f["properties"]["kind"] for f in geo.geojson["features"])
    assert kinds["signal"] == 1 and kinds["junction"] == 5 and kinds["edge"] == 8
    assert kinds["detector"] == len(detectors) > 0
    assert geo.geojson["properties"]["crs"] == "sumo-net"
    [signal] = [f for f in geo.geojson["features"] if f["properties"]["kind"] == "signal"]
    assert signal["geometry"] == {"type": "Point", "coordinates": [280.0, 280.0]}
    zone = next(f for f in geo.geojson["features"] if f["id"] == "detector:ccsim.stop.N_C_1")
    (x0, y0), (x1, y1) = zone["geometry"]["coordinates"]
    assert math.isclose(math.dist((x0, y0), (x1, y1)), 60.0, abs_tol=0.5)  # the 60 m presence zone
    assert geo.locate("tls:C", "C") == signal["geometry"]
    assert geo.locate("lane:C_E_2", "C_E_2")["type"] == "LineString"  # type: ignore[index]
    assert geo.locate("engine", "") is None


def test_district_map_has_its_34_signals_parking_and_bus_stops() -> None:
    scenario = load_scenario("district")
    geo = network_map(scenario, read_network(scenario.net_file), [])
    kinds = Counter(f["properties"]["kind"] for f in geo.geojson["features"])
    assert kinds["signal"] == 34 and kinds["parking"] == 39 and kinds["bus_stop"] == 41
    lots = [f for f in geo.geojson["features"] if f["properties"].get("zone") == "lot"]
    assert {f["id"] for f in lots} == {"parking:lot_north", "parking:lot_south"}
    assert {f["properties"]["capacity"] for f in lots} == {120, 150}
    assert all(f["geometry"]["type"] == "MultiPoint" for f in lots)


def test_points_of_interest_become_devices(tmp_path: Path) -> None:
    scenario = load_scenario("single")
    add = tmp_path / "devices.add.xml"
    add.write_text(
        '<additional><poi id="gate1" type="gate" x="1" y="2"/>'
        '<poi id="aq1" lane="C_E_1" pos="10"><param key="ccsim.kind" value="air_station"/></poi>'
        "</additional>"
    )
    features = read_devices([add], lane_shapes(read_network(scenario.net_file)))
    assert [(f["properties"]["kind"], f["geometry"]["type"]) for f in features] == [
        ("gate", "Point"), ("air_station", "Point")
    ]  # fmt: skip
    add.write_text("<additional><poi")
    with pytest.raises(ScenarioError, match="malformed additional XML"):
        read_devices([add], {})


def test_a_projected_net_stays_in_net_metres_and_gives_its_wgs84_boundary() -> None:
    cfg = Path(__file__).resolve().parents[2] / "scenarios/realnets/bologna-acosta/scenario.sumocfg"
    scenario = load_scenario(cfg)
    network = read_network(scenario.net_file)
    props = network_map(scenario, network, []).geojson["properties"]
    assert props["crs"] == "sumo-net" and props["boundary"] == [0.0, 0.0, 1817.58, 1350.19]
    lon0, lat0, lon1, lat1 = props["boundary_lon_lat"]
    assert 11.30 < lon0 < lon1 < 11.34 and 44.48 < lat0 < lat1 < 44.51  # Bologna
    single = load_scenario("single")
    assert (
        "boundary_lon_lat"
        not in network_map(single, read_network(single.net_file), []).geojson["properties"]
    )
