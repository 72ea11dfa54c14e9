"""Parking: zone rules, enforcement, bay sensors, pricing - and the district's parking in SUMO."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.controllers import create_controller
from sim.engine import Simulation
from sim.errors import ScenarioError
from sim.messages import BayObserved, MessageBus, MessageLog
from sim.network import read_network
from sim.parking import ParkingConfig, ParkingManager, Zone, _Parker, parking_config, read_zones
from sim.scenario import load_scenario


class _World:
    """Records what the parking model asks of SUMO (a fake of SumoWorld for pure unit tests)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self.parked: list[tuple[str, str, str, float]] = []

    def add_parked(self, vehicle: str, area: str, edge: str, vclass: str, duration_s: float) -> bool:
        self.parked.append((vehicle, area, vclass, duration_s))
        return True

    def route(self, vehicle: str) -> tuple[str, ...]:
        return ("a", "b")

    def send_to_parking(self, vehicle: str, area: str, edge: str, duration_s: float) -> bool:
        self.sent.append((vehicle, area))
        return True

    def change_target(self, vehicle: str, edge: str) -> None:
        pass

    def odometer(self, vehicle: str) -> float:
        return 0.0


def manager(config: ParkingConfig, zones: list[Zone]) -> tuple[ParkingManager, MessageLog]:
    bus, log = MessageBus(), MessageLog()
    bus.subscribe(log)
    m = ParkingManager(config, zones, _World(), bus, seed=1)  # type: ignore[arg-type]
    m._edge_xy = {"b": (0.0, 0.0)}
    return m, log


def park(m: ParkingManager, t: float, vehicle: str, zone: str, *, delivery: bool = False,
         permit: bool = False, kind: str = "rotating") -> _Parker:  # fmt: skip
    parker = _Parker(vehicle, "b", kind, delivery, informed=False, overstays=False, permit=permit)
    parker.zone = zone
    m.parkers[vehicle] = parker
    m._parked(t, parker)
    return parker


def test_zone_rules_flag_misuse() -> None:
    zones = [
        Zone("dis", "disabled", "b", 2),
        Zone("load", "loading", "b", 3),
        Zone("rot", "rotating", "b", 2),
    ]
    m, log = manager(ParkingConfig(loading_hours=(7.0, 8.0), start_hour=7.0), zones)
    park(m, 10.0, "car1", "dis")
    park(m, 20.0, "holder", "dis", permit=True)
    park(m, 30.0, "car2", "load")
    park(m, 40.0, "van1", "load", delivery=True, kind="loading")
    park(m, 4000.0, "van2", "load", delivery=True, kind="loading")  # 08:06, after the allowed hours
    park(m, 50.0, "car3", "rot")
    reasons = [
        (m.payload.to_dict()["zone"], m.payload.to_dict()["reason"])
        for m in log.of_kind("parking.misuse")
    ]
    assert reasons == [
        ("dis", "disabled bay without permit"),
        ("load", "loading zone used by a non-delivery vehicle"),
        ("load", "loading zone outside allowed hours"),
    ]


def test_overstay_is_enforced_from_the_sensed_arrival() -> None:
    m, log = manager(ParkingConfig(time_limit_s=600.0), [Zone("rot", "rotating", "b", 1)])
    park(m, 100.0, "car", "rot")
    for t in range(100, 1000):
        m._sensors(float(t))
        if t % 60 == 0:
            m._sample(float(t))
    overstays = log.of_kind("parking.overstay")
    assert len(overstays) == 1
    payload = overstays[0].payload.to_dict()
    assert 700.0 < overstays[0].t <= 760.0 and payload["limit_s"] == 600.0
    assert log.of_kind("parking.arrival")[0].t == 100.0


def test_ideal_bay_sensors_agree_with_the_truth_and_poor_ones_do_not() -> None:
    def accuracy(profile: str) -> float:
        zones = [Zone(f"z{i}", "rotating", "b", 4) for i in range(10)]
        m, _log = manager(ParkingConfig(bay_sensor_profile=profile), zones)
        n = 0
        for t in range(1, 3601):
            if t % 120 == 0:  # a car parks somewhere every 2 minutes, and leaves 10 minutes later
                park(m, float(t), f"v{n}", f"z{n % 10}")
                n += 1
            for vehicle, p in list(m.parkers.items()):
                if p.parked_at is not None and t - p.parked_at >= 600:
                    m._left(float(t), m.parkers.pop(vehicle))
            m._sensors(float(t))
            if t % 60 == 0:
                m._sample(float(t))
        return m.totals["agree"] / m.totals["samples"]

    assert accuracy("ideal") == 1.0
    assert accuracy("degraded-radar") < 0.97


def test_pricing_moves_prices_toward_the_target_band() -> None:
    busy, quiet = Zone("busy", "rotating", "b", 4), Zone("quiet", "rotating", "b", 4)
    m, _log = manager(ParkingConfig(pricing=True, base_price=2.0, price_step=0.5), [busy, quiet])
    for k in range(4):
        park(m, 1.0, f"v{k}", "busy")
    m._sensors(1.0)
    m._reprice()
    assert busy.price == 2.5 and quiet.price == 1.5


def test_with_uplinks_guidance_and_occupancy_follow_the_reports_not_the_sensors() -> None:
    zone = Zone("rot", "rotating", "b", 2)
    m, log = manager(ParkingConfig(bay_sensor_source="uplinks"), [zone])
    park(m, 1.0, "car", "rot")
    m._sensors(1.0)
    assert zone.free_sensed() == 1  # the simulated sensor saw it...
    assert m.free_seen(zone) == 2  # ...but nothing has come through the network yet
    report = BayObserved("rot", 1, True, "bay-rot-1", 7)
    assert m.observe(5.0, report)
    assert not m.observe(5.0, BayObserved("rot", 9, True, "bay-rot-9", 1))  # no such bay
    assert not m.observe(5.0, BayObserved("elsewhere", 0, True, "x", 1))
    assert m.free_seen(zone) == 1
    m._sample(60.0)
    (occupancy,) = log.of_kind("parking.occupancy")
    assert occupancy.payload.to_dict()["zones"][0]["sensed_occupied"] == 1
    assert [x.payload for x in log.of_kind("parking.observed")] == [report]


def test_bad_parking_settings_are_named(tmp_path: Path) -> None:
    path = tmp_path / "scenario.toml"
    with pytest.raises(ScenarioError, match=r"'parking.share'.*1.5.*0..1"):
        parking_config(path, {"share": 1.5})
    with pytest.raises(ScenarioError, match=r"'parking.guidance'.*true or false"):
        parking_config(path, {"guidance": "yes"})
    with pytest.raises(ScenarioError, match=r"'parking.target_occupancy'"):
        parking_config(path, {"target_occupancy": [0.9, 0.5]})
    with pytest.raises(ScenarioError, match=r"'parking.bay_sensor_source'.*'simulated' or 'uplinks'"):
        parking_config(path, {"bay_sensor_source": "radio"})
    assert parking_config(path, {"bay_sensor_source": "uplinks"}).bay_sensor_source == "uplinks"
    with pytest.raises(ScenarioError, match=r"'parking.valet'.*unknown field"):
        parking_config(path, {"valet": True})


def test_initial_occupancy_is_a_table_of_kinds_and_shares(tmp_path: Path) -> None:
    path = tmp_path / "scenario.toml"
    config = parking_config(path, {"initial_occupancy": {"rotating": 0.85, "lot": 0}})
    assert config.initial_occupancy == {"rotating": 0.85, "lot": 0.0}
    with pytest.raises(ScenarioError, match=r"initial_occupancy.valet'.*unknown value"):
        parking_config(path, {"initial_occupancy": {"valet": 0.5}})
    with pytest.raises(ScenarioError, match=r"'parking.initial_occupancy.lot'.*1.5.*0..1"):
        parking_config(path, {"initial_occupancy": {"lot": 1.5}})
    with pytest.raises(ScenarioError, match=r"'parking.initial_occupancy'.*not a table.*0.8"):
        parking_config(path, {"initial_occupancy": 0.8})
    with pytest.raises(ScenarioError, match=r"'parking.long_stay_share'.*2.*0..1"):
        parking_config(path, {"long_stay_share": 2})


def test_bays_taken_before_the_run_are_filled_and_enforced_from_their_arrival() -> None:
    """Cars parked before the run: inserted in their bays (vans in loading zones), not counted
    as parking events, and their sensors know how long they have been there."""
    zones = [Zone("rot", "rotating", "b", 40), Zone("load", "loading", "b", 10),
             Zone("lot", "lot", "b", 50)]  # fmt: skip
    config = ParkingConfig(initial_occupancy={"rotating": 1.0, "loading": 0.5}, time_limit_s=1800.0,
                           dwell_mean_s=1800.0, loading_dwell_mean_s=600.0)  # fmt: skip
    m, log = manager(config, zones)
    m.fill_initially()
    world = m.world
    by_area = {a: [p for p in world.parked if p[1] == a] for a in ("rot", "load", "lot")}  # type: ignore[attr-defined]
    assert len(by_area["rot"]) == 40 and not by_area["lot"]
    assert 1 <= len(by_area["load"]) <= 9
    assert {p[2] for p in by_area["rot"]} == {"passenger"}
    assert {p[2] for p in by_area["load"]} == {"delivery"}
    m.on_departed(1.0, by_area["rot"][0][0], "passenger")  # its insertion is no new trip
    assert m.totals["parkers"] == 0
    for vehicle in sorted(m.parkers):  # SUMO parks them in the first steps
        m._parked(2.0, m.parkers[vehicle])
    m._sensors(3.0)
    assert m.totals["parked"] == 0 and m.totals["initial"] == 40 + len(by_area["load"])
    assert not log.of_kind("parking.misuse")
    aged = sum(1 for v, p in m.parkers.items() if p.zone == "rot" and p.age_s + 59.0 > 1800.0)
    m._sample(61.0)  # the first minute's enforcement: cars there since before the limit
    overstays = [o for o in log.of_kind("parking.overstay") if o.payload.to_dict()["zone"] == "rot"]
    assert 0 < len(overstays) == aged


def test_commuters_head_for_a_lot() -> None:
    zones = [Zone("rot", "rotating", "b", 4, (0.0, 0.0)), Zone("lot", "lot", "b", 100, (300.0, 0.0))]
    commuters = ParkingConfig(share=1.0, long_stay_share=1.0, permit_share=0.0,
                              disabled_misuse_share=0.0, loading_misuse_share=0.0)  # fmt: skip
    m, _log = manager(commuters, zones)
    for i in range(5):
        m.on_departed(0.0, f"car{i}", "passenger")
    assert {m.parkers[f"car{i}"].zone for i in range(5)} == {"lot"}
    m2, _log = manager(ParkingConfig(share=1.0, long_stay_share=0.0), zones)
    m2.on_departed(0.0, "car", "passenger")
    assert m2.parkers["car"].zone == "rot"


def test_district_zones_by_kind() -> None:
    scenario = load_scenario("district")
    zones = read_zones(list(scenario.additional_files), read_network(scenario.net_file))
    kinds = {k: [z for z in zones if z.kind == k] for k in ("rotating", "loading", "disabled", "lot")}
    assert {k: len(v) for k, v in kinds.items()} == {
        "rotating": 24,
        "loading": 8,
        "disabled": 5,
        "lot": 2,
    }
    assert sum(z.bays for z in kinds["lot"]) == 270


def test_district_parking_in_sumo_reports_every_kpi(tmp_path: Path) -> None:
    sim = Simulation(load_scenario("district", "guidance-on"), create_controller("fixed"), seed=2,
                     workdir=tmp_path, end_s=1200.0)  # fmt: skip
    result = sim.run()
    kinds = {m.kind for m in result.log.messages}
    assert {"parking.arrival", "parking.departure", "parking.occupancy", "parking.totals"} <= kinds
    s = result.summary
    assert 0.0 < s["parking_occupancy_mean"] < 1.0
    assert s["parking_search_time_mean_s"] >= 0.0 and s["parking_search_distance_mean_m"] >= 0.0
    assert s["parking_turnover_per_bay_h"] > 0.0
    assert 0.0 < s["public_space_efficiency"] <= s["parking_occupancy_mean"]
    assert s["sensor_occupancy_accuracy"] == 1.0


def test_a_parking_area_of_unknown_kind_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "zones.add.xml"
    bad.write_text(
        '<additional><parkingArea id="pa1" lane="A1_A2_1" startPos="0" endPos="40" roadsideCapacity="4">'
        '<param key="ccsim.kind" value="valet"/></parkingArea></additional>'
    )
    network = read_network(load_scenario("district").net_file)
    with pytest.raises(
        ScenarioError, match=r"zones.add.xml: field 'ccsim.kind': parkingArea 'pa1'.*'valet'.*rotating"
    ):
        read_zones([bad], network)


def test_a_zone_sumo_cannot_route_to_is_skipped_for_the_next() -> None:
    class Behind(_World):
        def send_to_parking(self, vehicle: str, area: str, edge: str, duration_s: float) -> bool:
            self.sent.append((vehicle, area))
            return area != "near"  # "near" lies behind the car on its street

    near, far = (
        Zone("near", "rotating", "b", 2, (0.0, 0.0)),
        Zone("far", "rotating", "b", 2, (300.0, 0.0)),
    )
    m, _log = manager(ParkingConfig(share=1.0), [near, far])
    m.world = Behind()
    m.on_departed(0.0, "car", "passenger")
    assert m.world.sent == [("car", "near"), ("car", "far")]
    assert m.parkers["car"].zone == "far"


def test_district_rotating_bays_run_at_80_to_95_percent_in_the_peak(tmp_path: Path) -> None:
    """The calibrated district (scenarios/district/README.md): its curb runs as a dense
    district's does, 80-95% taken in the busiest quarter-hour, and the lots take the commuters."""
    sim = Simulation(load_scenario("district"), create_controller("fixed"), seed=1,
                     workdir=tmp_path)  # fmt: skip
    result = sim.run()
    s = result.summary
    assert 0.80 <= s["parking_rotating_peak_occupancy"] <= 0.95
    totals = result.log.of_kind("parking.totals")[0].payload.to_dict()
    assert totals["initially_parked"] > 200 and totals["parked"] > 300
    lots = [
        sum(z.occupied for z in m.payload.zones if z.zone_kind == "lot")  # type: ignore[attr-defined]
        for m in result.log.of_kind("parking.occupancy")
    ]
    assert lots[-1] > 1.5 * lots[1]  # filling through the morning
    assert 0.0 < s["public_space_efficiency_rotating_loading"] <= 1.0
