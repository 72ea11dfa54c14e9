"""NGSI-LD entities built from a real run's stream, checked against the Smart Data Models."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pyproj import Geod

from controlcenter.alarm_book import AlarmBook
from controlcenter.alarms import Alarm, AlarmAction, Severity
from controlcenter.geo import Georef
from controlcenter.geojson import network_map
from controlcenter.ngsild.entities import EntityBook
from controlcenter.ngsild.formats import key_values, normalized
from controlcenter.ngsild.models import CONTEXT, MODELS
from controlcenter.rules import DEFAULT_RULES, RuleEngine
from sim.controllers import create_controller
from sim.engine import Simulation
from sim.messages import (
    AirReading,
    Message,
    ParkingArrival,
    ParkingDeparture,
    ParkingOccupancy,
    RadarPasses,
    ZoneOccupancy,
)
from sim.network import read_network
from sim.outputs import payload_json
from sim.scenario import bundled_root, load_scenario
from tests.controlcenter.ngsild_schemas import errors_of, normalized_errors

EPOCH = 1_767_261_600.0  # 2026-01-01T10:00:00Z: the server's start
# The district with its air stations alarming at a low index, so that the run raises alarms of
# more than one kind within its ten minutes.
VARIANT = "devices.air.alarm_index=25"


@dataclass
class Run:
    messages: list[Message]
    book: EntityBook
    alarms: dict[int, dict[str, Any]]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    scenario = load_scenario("district", VARIANT)
    sim = Simulation(scenario, create_controller("fixed"), seed=1,
                     workdir=tmp_path_factory.mktemp("sumo"), end_s=600.0)  # fmt: skip
    rules = RuleEngine(DEFAULT_RULES)
    sim.bus.subscribe(rules)
    messages = sim.run().log.messages
    network = read_network(scenario.net_file)
    the_map = network_map(scenario, network, [])
    book = EntityBook(scenario, network, the_map, epoch_s=EPOCH)
    # As the control center gets them: the store's rows, batch by batch...
    rows = [(m.seq, m.t, m.source, m.kind, payload_json(m)) for m in messages]
    for start in range(0, len(rows), 500):
        book.on_rows(rows[start : start + 500])
    # ...and the alarms the rules raise, through the alarm book.
    alarm_book = AlarmBook([], 1, 1, the_map.locate)
    alarms: dict[int, dict[str, Any]] = {}
    for change in rules.drain():
        for alarm, _event in alarm_book.on_condition(change, EPOCH + change.t):
            alarms[alarm.id] = alarm.to_dict()
            book.on_alarms([alarm.to_dict()])
    return Run(messages, book, alarms)


def test_every_model_is_published_and_validates_in_both_forms(run: Run) -> None:
    entities = run.book.entities()
    types = {e.type for e in entities}
    assert types == set(MODELS), f"missing: {set(MODELS) - types}"
    for entity in entities:
        simple = key_values(entity)
        assert errors_of(simple) == [], (entity.id, errors_of(simple))
        full = normalized(entity, context=CONTEXT)
        assert normalized_errors(full) == [], (entity.id, normalized_errors(full))
        assert entity.id.startswith(f"urn:ngsi-ld:{entity.type}:district:")
    counts = run.book.counts()
    assert counts["TrafficFlowObserved"] == 6 and counts["AirQualityObserved"] == 4
    assert counts["OffStreetParking"] == 2 and counts["OnStreetParking"] == 37
    assert counts["Alert"] == len(run.alarms) >= 2
    assert {a["category"] for a in run.alarms.values()} >= {"environment", "security"}


def test_the_validator_catches_what_the_models_forbid(run: Run) -> None:
    spot = next(e for e in run.book.entities() if e.type == "ParkingSpot")
    good = key_values(spot)
    assert errors_of(good) == []
    assert any("status" in p for p in errors_of({**good, "status": "parked"}))
    assert any("location" in p for p in errors_of({k: v for k, v in good.items() if k != "location"}))
    assert errors_of({**good, "location": {"type": "Point", "coordinates": ["a", "b"]}})
    full = normalized(spot)
    assert normalized_errors({**full, "status": {"type": "Property"}})
    assert normalized_errors({**full, "refParkingSite": {"type": "Relationship", "object": "not a uri"}})
    assert normalized_errors({**full, "status": {**full["status"], "observedAt": "yesterday"}})
    flow = key_values(next(e for e in run.book.entities() if e.type == "TrafficFlowObserved"))
    assert any("intensity" in p for p in errors_of({**flow, "intensity": -1}))


def _last(messages: list[Message], payload_type: type) -> dict[str, Any]:
    """The last payload of each device, by its first field."""
    found: dict[str, Any] = {}
    for m in messages:
        if isinstance(m.payload, payload_type):
            found[str(m.payload.to_dict()[next(iter(m.payload.to_dict()))])] = (m.t, m.payload)
    return found


def test_observations_carry_the_stream_s_latest_values_and_times(run: Run) -> None:
    book = run.book
    radar = _last(run.messages, RadarPasses)
    assert len(radar) == 6
    for site, (_t, p) in radar.items():
        flow = book.get(book.urn("TrafficFlowObserved", f"radar-{site}"))
        assert flow is not None
        values = key_values(flow)
        assert values["intensity"] == p.passes
        assert values["dateObservedFrom"] == "2026-01-01T10:05:00.000Z"  # the interval 300-600 s
        assert values["dateObservedTo"] == "2026-01-01T10:10:00.000Z"
        assert values["dateObserved"] == "2026-01-01T10:05:00.000Z/2026-01-01T10:10:00.000Z"
        if p.passes:
            assert values["averageVehicleSpeed"] == pytest.approx(p.speed_sum_kmh / p.passes, abs=0.05)
            assert normalized(flow)["averageVehicleSpeed"]["unitCode"] == "KMH"
    for station, (t, p) in _last(run.messages, AirReading).items():
        air = book.get(book.urn("AirQualityObserved", station))
        assert air is not None
        values = normalized(air)
        assert values["nox"]["value"] == p.nox_1min_ugm3 and values["nox"]["unitCode"] == "GQ"
        assert values["airQualityIndex"]["value"] == round(p.index)
        assert (
            values["dateObserved"]["value"] == "2026-01-01T10:10:00.000Z" == values["co2"]["observedAt"]
        )
        assert t == 600.0


def test_parking_zones_and_bays_follow_the_sensors(run: Run) -> None:
    book = run.book
    last = next(m for m in reversed(run.messages) if isinstance(m.payload, ParkingOccupancy))
    assert isinstance(last.payload, ParkingOccupancy)
    sensed: dict[tuple[str, int], str] = {}
    for m in run.messages:
        if isinstance(m.payload, ParkingArrival | ParkingDeparture):
            occupied = isinstance(m.payload, ParkingArrival)
            sensed[(m.payload.zone, m.payload.bay)] = "occupied" if occupied else "free"
    assert "occupied" in sensed.values()  # drivers did park in these ten minutes
    for zone in last.payload.zones:
        kind = "OffStreetParking" if zone.zone_kind == "lot" else "OnStreetParking"
        entity = book.get(book.urn(kind, zone.zone))
        assert entity is not None, zone.zone
        values = key_values(entity)
        assert values["totalSpotNumber"] == zone.bays
        assert values["availableSpotNumber"] == zone.bays - zone.sensed_occupied
        for bay in range(zone.bays):
            spot = book.get(book.urn("ParkingSpot", f"{zone.zone}:{bay}"))
            assert spot is not None and key_values(spot)["refParkingSite"] == entity.id
            # A bay no sensor has spoken of is free once the zone's count says none is taken
            # but those known (every zone was empty at the first count).
            assert key_values(spot)["status"] == sensed.get((zone.zone, bay), "free"), (zone, bay)
    lot = key_values(book.get(book.urn("OffStreetParking", "lot_north")))  # type: ignore[arg-type]
    assert lot["category"] == ["parkingLot", "public"] and lot["location"]["type"] == "MultiPoint"


def test_entities_stand_in_miraflores(run: Run) -> None:
    def points(geometry: Any) -> list[list[float]]:
        if isinstance(geometry, list) and geometry and isinstance(geometry[0], float):
            return [geometry]
        return [p for g in geometry for p in points(g)]

    located = [key_values(e)["location"] for e in run.book.entities() if "location" in e.attrs]
    assert len(located) > 400
    for location in located:
        for lon, lat in points(location["coordinates"]):
            assert -77.04 < lon < -77.02 and -12.13 < lat < -12.11, (lon, lat)


def test_the_origin_places_a_net_without_projection_true_to_scale() -> None:
    scenario = load_scenario("district")
    georef = Georef(read_network(scenario.net_file), scenario.geo_origin)
    assert georef.placed and georef.how.startswith("[geo] origin")
    assert georef.point(0.0, 0.0) == [-77.0346, -12.1255]
    east, north = georef.point(1000.0, 0.0), georef.point(0.0, 1000.0)
    assert east is not None and north is not None
    geod = Geod(ellps="WGS84")
    assert geod.inv(-77.0346, -12.1255, *east)[2] == pytest.approx(1000.0, abs=0.01)
    assert geod.inv(-77.0346, -12.1255, *north)[2] == pytest.approx(1000.0, abs=0.01)
    assert math.isclose(north[0], -77.0346, abs_tol=1e-7)


def test_a_net_with_a_projection_is_placed_by_it() -> None:
    real = next(bundled_root().glob("realnets/*/*.net.xml"))
    network = read_network(real)
    assert network.location.projected
    georef = Georef(network, (0.0, 0.0))  # the net's own projection wins over an origin
    x0, y0, x1, y1 = network.location.boundary
    assert georef.point((x0 + x1) / 2, (y0 + y1) / 2) == [
        round(v, 7) for v in network.to_lon_lat((x0 + x1) / 2, (y0 + y1) / 2) or ()
    ]
    assert georef.how.startswith("net projection")


def test_without_a_place_on_earth_entities_have_no_location(tmp_path: Path) -> None:
    scenario = load_scenario(bundled_root() / "district" / "scenario.sumocfg")  # no [geo]
    assert scenario.geo_origin is None
    network = read_network(scenario.net_file)
    book = EntityBook(scenario, network, network_map(scenario, network, []), epoch_s=EPOCH)
    assert not book.georef.placed
    book.on_alarms([_alarm(7, "tls:C").to_dict()])
    assert all("location" not in e.attrs for e in book.entities())


def _alarm(alarm_id: int, source: str, subcategory: str = "parkingOverstay") -> Alarm:
    return Alarm(
        id=alarm_id, rule="parking-overstay", key="pa_rotating_A1_A0:3", run_id=1,
        severity=Severity.LOW, category="traffic", subcategory=subcategory,
        description="bay 3 of pa_rotating_A1_A0 occupied past its limit", source=source,
        raised_at=EPOCH + 100, raised_t=100.0, updated_at=EPOCH + 100,
        location={"type": "Point", "coordinates": [100.0, 200.0]},
    )  # fmt: skip


def test_alerts_keep_ccsim_s_own_subcategories_in_data_and_end_when_cleared(run: Run) -> None:
    book = run.book
    alarm = _alarm(999, "parking:pa_rotating_A1_A0")
    book.on_alarms([alarm.to_dict()])
    entity = book.get(book.urn("Alert", "alarm-999"))
    assert entity is not None
    values = key_values(entity)
    assert errors_of(values) == [] and normalized_errors(normalized(entity)) == []
    assert "subCategory" not in values and values["data"]["subCategory"] == "parkingOverstay"
    assert "validTo" not in values and values["severity"] == "low"
    assert values["location"]["type"] == "Point"
    version = entity.version
    alarm.apply(AlarmAction.ACKNOWLEDGE, user="op", at=EPOCH + 200)
    alarm.apply(AlarmAction.RETURN_TO_NORMAL, user="system", at=EPOCH + 300)
    book.on_alarms([alarm.to_dict()])
    cleared = book.get(book.urn("Alert", "alarm-999"))
    assert cleared is not None and cleared.version > version
    values = key_values(cleared)
    assert values["data"]["state"] == "cleared" and values["validTo"] == "2026-01-01T10:05:00.000+00:00"
    assert errors_of(values) == []
    known = _alarm(1000, "tls:C", subcategory="trafficJam").to_dict()
    book.on_alarms([known])
    assert key_values(book.get(book.urn("Alert", "alarm-1000")))["subCategory"] == "trafficJam"  # type: ignore[arg-type]


def test_a_bay_is_unknown_until_a_report_or_the_zone_s_count_settles_it() -> None:
    scenario = load_scenario("district")
    network = read_network(scenario.net_file)
    book = EntityBook(scenario, network, network_map(scenario, network, []), epoch_s=EPOCH)
    zone = "pa_rotating_A1_A0"

    def status(bay: int) -> str:
        spot = book.get(book.urn("ParkingSpot", f"{zone}:{bay}"))
        assert spot is not None
        return str(key_values(spot)["status"])

    def count(t: float, sensed: int) -> None:
        book.on_message(t, ParkingOccupancy((ZoneOccupancy(zone, "rotating", 10, sensed, sensed, 0.0),)))

    assert status(0) == "unknown"
    book.on_message(10.0, ParkingArrival(zone, 2, "rotating"))
    count(60.0, 2)  # two taken, one of them known: the others may be either
    assert (status(2), status(0)) == ("occupied", "unknown")
    book.on_message(70.0, ParkingArrival(zone, 5, "rotating"))
    count(120.0, 2)  # both known: the rest are free
    assert (status(2), status(5), status(0), status(9)) == ("occupied", "occupied", "free", "free")
    book.on_message(130.0, ParkingDeparture(zone, 2, "rotating", 120.0))
    assert status(2) == "free"
    assert normalized(book.get(book.urn("ParkingSpot", f"{zone}:2")))["status"]["observedAt"] == (  # type: ignore[arg-type]
        "2026-01-01T10:02:10.000Z"
    )


def test_a_new_run_keeps_the_alerts_and_drops_what_the_ended_run_observed() -> None:
    scenario = load_scenario("district")
    network = read_network(scenario.net_file)
    book = EntityBook(scenario, network, network_map(scenario, network, []), epoch_s=EPOCH)
    zone, station = "pa_rotating_A1_A0", "C1"
    air = book.urn("AirQualityObserved", station)
    book.on_message(60.0, AirReading(station, 40.0, 20.0, 420.0, 35.0, 18.0, 30.0, "good"))
    book.on_message(600.0, ParkingArrival(zone, 2, "rotating"))
    book.on_message(660.0, ParkingOccupancy((ZoneOccupancy(zone, "rotating", 10, 1, 1, 0.0),)))
    book.on_alarms([_alarm(7, f"parking:{zone}").to_dict()])
    assert book.get(air) is not None

    ended_at = EPOCH + 660.0  # the ended run's last moment: the new run's begin (t = 0) from then
    book.new_run(ended_at)
    assert book.get(air) is None  # not the new run's air until its station reports
    assert book.get(book.urn("Alert", "alarm-7")) is not None  # an alarm outlives its run
    site = book.get(book.urn("OnStreetParking", zone))
    spot = book.get(book.urn("ParkingSpot", f"{zone}:2"))
    assert site is not None and spot is not None
    assert "occupiedSpotNumber" not in key_values(site) and key_values(spot)["status"] == "unknown"
    assert errors_of(key_values(site)) == [] and errors_of(key_values(spot)) == []

    book.on_message(60.0, AirReading(station, 50.0, 25.0, 430.0, 45.0, 22.0, 40.0, "good"))
    stamped = normalized(book.get(air))["nox"]  # type: ignore[arg-type]
    assert (stamped["value"], stamped["observedAt"]) == (50.0, "2026-01-01T10:12:00.000Z")
