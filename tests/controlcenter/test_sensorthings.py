"""The SensorThings service against the conformance classes of SensorThings API 1.1, Annex A:
Sensing Core (A.1: each entity type with its required properties and navigation links, and the
resource paths) and Filtering (A.2: each query option). The data are a real 10-minute run of the
bundled district (SUMO, fixed plans), fed to the service message by message as serve feeds it;
the Observations are checked against the run's own messages."""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import pytest
import sumolib

from controlcenter.runtime import network_map_of
from controlcenter.sensorthings.district import District
from controlcenter.sensorthings.expr import QueryError
from controlcenter.sensorthings.geo import projection
from controlcenter.sensorthings.model import TYPES
from controlcenter.sensorthings.options import DEFAULT_TOP
from controlcenter.sensorthings.receive import Changes, messages, parse_select_topic
from controlcenter.sensorthings.service import SENSING_CORE, SensorThingsService
from controlcenter.sensorthings.store import SensorThingsStore
from sim.controllers import create_controller
from sim.engine import Simulation
from sim.messages import AirReading, IntersectionInterval, MessageLog, ParkingOccupancy, SignalPhase
from sim.scenario import load_scenario

EPOCH = datetime(2025, 3, 1, 7, 0, tzinfo=UTC)
ORIGIN = (-77.03, -12.12)  # Miraflores, Lima
BASE = "http://example.org/v1.1"
END_S = 600.0


@dataclass
class Served:
    service: SensorThingsService
    store: SensorThingsStore
    log: MessageLog
    changes: Changes
    """What the run created and updated after the district's first entities were made."""

    def get(self, path: str, **options: str) -> Any:
        return self.service.get(path, options, BASE).body

    def all(self, path: str, **options: str) -> list[dict[str, Any]]:
        """Every entity of a collection, following @iot.nextLink page by page."""
        page = self.get(path, **options)
        items = list(page["value"])
        while "@iot.nextLink" in page:
            link = page["@iot.nextLink"]
            assert link.startswith(f"{BASE}/")
            target, _, query = link[len(BASE) + 1 :].partition("?")
            params = dict(p.split("=", 1) for p in query.split("&"))
            page = self.get(target, **{k: unquote(v) for k, v in params.items()})
            items += page["value"]
        return items


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    scenario = load_scenario("district")
    network_map = network_map_of(scenario, "fixed")
    assert network_map.network is not None
    store = SensorThingsStore()
    district = District(store, scenario, network_map, projection(network_map.network, ORIGIN), EPOCH)
    changes = Changes()
    store.subscribe(changes.note)
    simulation = Simulation(
        scenario,
        create_controller("fixed"),
        seed=1,
        workdir=tmp_path_factory.mktemp("district"),
        end_s=END_S,
    )
    simulation.bus.subscribe(lambda m: district.on_message(m.t, m.kind, m.payload.to_dict()))
    simulation.run()
    return Served(SensorThingsService(store, [SENSING_CORE]), store, simulation.log, changes)


def things_of(served: Served, kind: str) -> list[dict[str, Any]]:
    return served.all("Things", **{"$filter": f"properties/kind eq '{kind}'"})


def stream_of(served: Served, kind: str, ident: str, key: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = served.get(
        "Datastreams",
        **{
            "$filter": f"Thing/properties/kind eq '{kind}' and Thing/properties/id eq '{ident}' "
            f"and properties/key eq '{key}'"
        },
    )["value"]
    assert len(found) == 1, (kind, ident, key, found)
    return found[0]


def when(t: float) -> str:
    return (EPOCH + timedelta(seconds=t)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- A.1 Sensing Core --------------------------------------------------------------------------


def assert_entity(item: dict[str, Any], entity_set: str) -> None:
    """/req/datamodel/<entity>/properties and /relations: the required properties, the id, the
    self link, and one navigation link per navigation property, each to its own address."""
    kind = TYPES[entity_set]
    link = f"{BASE}/{entity_set}({item['@iot.id']})"
    assert isinstance(item["@iot.id"], int) and item["@iot.selfLink"] == link
    for name in kind.required:
        assert name in item, (entity_set, name)
    for navigation in kind.navigation():
        assert item[f"{navigation}@iot.navigationLink"] == f"{link}/{navigation}"


def test_sensing_core_A1_thing_every_signal_zone_and_station(served: Served) -> None:
    things = served.all("Things")
    for thing in things:
        assert_entity(thing, "Things")
    intersections = things_of(served, "intersection")
    zones = things_of(served, "parking_zone")
    stations = things_of(served, "air_station")
    assert len(intersections) == 34 and len(zones) == 39  # the district's signals and zones
    deployed = {
        site
        for m in served.log.of_kind("devices.deployed")
        if m.payload.to_dict()["device"] == "air"
        for site in m.payload.to_dict()["sites"]
    }
    assert {s["properties"]["id"] for s in stations} == deployed and len(deployed) == 4
    assert len(things) == 34 + 39 + 4


def test_sensing_core_A1_location_in_wgs84_from_the_origin(served: Served) -> None:
    locations = served.all("Locations", **{"$expand": "Things($select=properties)"})
    assert len(locations) == 34 + 39 + 4
    for location in locations:
        assert_entity(location, "Locations")
        assert location["encodingType"] == "application/geo+json"
        lon, lat = location["location"]["coordinates"]
        x, y = location["properties"]["net_xy"]
        # A transverse Mercator plane at the origin: metres east and north, to within 0.1%.
        east = (lon - ORIGIN[0]) * 111_320 * math.cos(math.radians(ORIGIN[1]))
        north = (lat - ORIGIN[1]) * 110_574
        assert math.isclose(east, x, rel_tol=2e-3, abs_tol=0.5)
        assert math.isclose(north, y, rel_tol=2e-3, abs_tol=0.5)
        [thing] = location["Things"]
        assert thing["properties"]["net_xy"] == [x, y]


def test_sensing_core_A1_historical_location_links_thing_and_location(served: Served) -> None:
    history = served.all("HistoricalLocations", **{"$expand": "Thing($select=id),Locations($select=id)"})
    assert len(history) == len(served.store.entities("Things"))
    for item in history:
        assert_entity(item, "HistoricalLocations")
        location = served.get(f"Things({item['Thing']['@iot.id']})/Locations")["value"]
        assert [loc["@iot.id"] for loc in location] == [loc["@iot.id"] for loc in item["Locations"]]
    assert history[0]["time"] == when(0.0)


def test_sensing_core_A1_datastream_sensor_and_observed_property(served: Served) -> None:
    streams = served.all("Datastreams", **{"$expand": "Sensor,ObservedProperty,Thing($select=id)"})
    for stream in streams:
        assert_entity(stream, "Datastreams")
        assert set(stream["unitOfMeasurement"]) == {"name", "symbol", "definition"}
        assert stream["observationType"].startswith(
            "http://www.opengis.net/def/observationType/OGC-OM/2.0/"
        )
        assert_entity(stream["Sensor"], "Sensors")
        assert_entity(stream["ObservedProperty"], "ObservedProperties")
        assert stream["Sensor"]["encodingType"] and stream["ObservedProperty"]["definition"]
    per_thing: dict[int, int] = {}
    for stream in streams:
        per_thing[stream["Thing"]["@iot.id"]] = per_thing.get(stream["Thing"]["@iot.id"], 0) + 1
    assert set(per_thing) == {t["@iot.id"] for t in served.all("Things")}  # every Thing observes
    # A Datastream's phenomenonTime spans its Observations.
    stream = stream_of(served, "intersection", "C3", "phase")
    times = [o["phenomenonTime"] for o in served.all(f"Datastreams({stream['@iot.id']})/Observations")]
    assert stream["phenomenonTime"] == f"{min(times)}/{max(times)}"


def test_sensing_core_A1_observations_are_the_runs_messages(served: Served) -> None:
    """Phase switches, queue intervals, sensed parking occupancy and air readings: each message
    of the run is one Observation with its value and time; nothing else is."""
    stream = stream_of(served, "intersection", "C3", "phase")
    observed = served.all(f"Datastreams({stream['@iot.id']})/Observations")
    phases = [
        m
        for m in served.log.of_kind("signal.phase")
        if isinstance(m.payload, SignalPhase) and m.payload.tls == "C3"
    ]
    assert len(phases) > 10
    assert [(o["phenomenonTime"], o["result"], o["parameters"]["state"]) for o in observed] == [
        (when(m.t), m.payload.phase, m.payload.state) for m in phases
    ]
    for o in observed:
        assert_entity(o, "Observations")
        assert o["resultTime"] == o["phenomenonTime"]

    stream = stream_of(served, "intersection", "C3", "queue_mean")
    observed = served.all(f"Datastreams({stream['@iot.id']})/Observations")
    queues = [
        m.payload
        for m in served.log.of_kind("intersection.interval")
        if isinstance(m.payload, IntersectionInterval) and m.payload.tls == "C3"
    ]
    assert [(o["phenomenonTime"], o["result"]) for o in observed] == [
        (f"{when(q.begin_s)}/{when(q.end_s)}", round(q.queue_mean_veh, 2)) for q in queues
    ]

    occupancy = [
        m for m in served.log.of_kind("parking.occupancy") if isinstance(m.payload, ParkingOccupancy)
    ]
    zone = occupancy[-1].payload.zones[0]
    stream = stream_of(served, "parking_zone", zone.zone, "occupied")
    latest = served.get(
        f"Datastreams({stream['@iot.id']})/Observations",
        **{"$orderby": "phenomenonTime desc", "$top": "1"},
    )["value"]
    assert latest[0]["result"] == zone.sensed_occupied and latest[0]["phenomenonTime"] == when(
        occupancy[-1].t
    )

    readings = [m for m in served.log.of_kind("air.reading") if isinstance(m.payload, AirReading)]
    reading = readings[-1]
    assert isinstance(reading.payload, AirReading)
    stream = stream_of(served, "air_station", reading.payload.station, "nox")
    latest = served.get(
        f"Datastreams({stream['@iot.id']})/Observations", **{"$filter": f"parameters/t_s eq {reading.t}"}
    )["value"]
    assert [o["result"] for o in latest] == [reading.payload.nox_1min_ugm3]

    expected = (
        len(served.log.of_kind("signal.phase"))
        + 2 * len(served.log.of_kind("intersection.interval"))
        + sum(len(m.payload.zones) for m in occupancy)  # type: ignore[attr-defined]
        + 4 * len(readings)
        + len(served.log.of_kind("pedestrian.count"))
    )
    assert served.get("Observations", **{"$count": "true", "$top": "0"})["@iot.count"] == expected


def test_sensing_core_A1_feature_of_interest_is_the_things_place(served: Served) -> None:
    for feature in served.all(
        "FeaturesOfInterest",
        **{"$expand": "Observations($top=1;$expand=Datastream($expand=Thing($expand=Locations)))"},
    ):
        assert_entity(feature, "FeaturesOfInterest")
        if feature["Observations"]:
            thing = feature["Observations"][0]["Datastream"]["Thing"]
            assert feature["name"] == thing["name"]
            assert feature["feature"] == thing["Locations"][0]["location"]


def test_sensing_core_A1_resource_paths(served: Served) -> None:
    """/req/resource-path/resource-path-to-entities."""
    root = served.get("")
    assert [(e["name"], e["url"]) for e in root["value"]] == [(s, f"{BASE}/{s}") for s in TYPES]
    assert root["serverSettings"]["conformance"] == [SENSING_CORE]
    stream = served.get("Datastreams(5)")
    assert stream["@iot.id"] == 5
    thing = served.get("Datastreams(5)/Thing")
    assert thing["@iot.id"] in [t["@iot.id"] for t in served.all("Things")]
    assert 5 in [d["@iot.id"] for d in served.get(f"Things({thing['@iot.id']})/Datastreams")["value"]]
    assert (
        served.get("Datastreams(5)/Thing/Locations")["value"]
        == served.get(f"Things({thing['@iot.id']})/Locations")["value"]
    )
    assert served.get("Datastreams(5)/name") == {"name": stream["name"]}
    assert served.service.get("Datastreams(5)/name/$value", {}, BASE).body == stream["name"]
    assert served.get("Datastreams(5)/unitOfMeasurement") == {
        "unitOfMeasurement": stream["unitOfMeasurement"]
    }
    assert served.get("Datastreams(5)/Thing/$ref") == {
        "@iot.selfLink": f"{BASE}/Things({thing['@iot.id']})"
    }
    refs = served.get(f"Things({thing['@iot.id']})/Datastreams/$ref")["value"]
    assert {r["@iot.selfLink"] for r in refs} >= {f"{BASE}/Datastreams(5)"}
    assert all(set(r) == {"@iot.id", "@iot.selfLink"} for r in refs)
    for path, message in [
        ("Robots", "no entity set 'Robots'"),
        ("Things(99999)", "Things(99999): no such Thing"),
        ("Things(x)", "ids here are whole numbers"),
        ("Things(1)/Sensors", "a Thing has no 'Sensors'"),
        ("Things(1)/name/name", "nothing is addressed by 'name'"),
    ]:
        with pytest.raises(QueryError, match=re.escape(message)) as info:
            served.get(path)
        assert info.value.status == 404


# --- A.2 Filtering -----------------------------------------------------------------------------


def test_filtering_A2_select(served: Served) -> None:
    [item] = served.get("Things", **{"$select": "name,Datastreams", "$top": "1"})["value"]
    assert set(item) == {"name", "Datastreams@iot.navigationLink"}
    [item] = served.get("Observations", **{"$select": "id,result", "$top": "1"})["value"]
    assert set(item) == {"@iot.id", "@iot.selfLink", "result"}
    assert set(served.get("Things(1)", **{"$select": "description"})) == {"description"}
    with pytest.raises(QueryError, match="a Thing has no 'result'"):
        served.get("Things", **{"$select": "result"})


def test_filtering_A2_expand_to_one_to_many_nested_and_path_form(served: Served) -> None:
    [thing] = served.get("Things", **{"$top": "1", "$expand": "Datastreams/Observations"})["value"]
    assert thing["Datastreams"] and all("Observations" in d for d in thing["Datastreams"])
    nested = served.get(
        "Things(1)",
        **{
            "$expand": "Datastreams($select=name;$top=1;$count=true;"
            "$expand=Observations($top=2;$orderby=phenomenonTime desc))"
        },
    )
    all_streams = served.get("Things(1)/Datastreams")["value"]
    assert nested["Datastreams@iot.count"] == len(all_streams) > 1
    assert [set(d) for d in nested["Datastreams"]] == [
        {"name", "Observations", "Observations@iot.nextLink"}
    ]
    assert nested["Datastreams@iot.nextLink"].startswith(f"{BASE}/Things(1)/Datastreams?")
    first_id = all_streams[0]["@iot.id"]
    newest = served.all(f"Datastreams({first_id})/Observations")[-2:][::-1]
    assert [o["@iot.id"] for o in nested["Datastreams"][0]["Observations"]] == [
        o["@iot.id"] for o in newest
    ]
    observation = served.get(
        "Observations(1)", **{"$expand": "Datastream($expand=Thing),FeatureOfInterest"}
    )
    assert observation["Datastream"]["Thing"]["name"] == observation["FeatureOfInterest"]["name"]


def test_filtering_A2_orderby(served: Served) -> None:
    results = [
        o["result"]
        for o in served.all(
            "Observations",
            **{"$filter": "Datastream/properties/key eq 'nox'", "$orderby": "result desc"},
        )
    ]
    assert len(results) > 10 and results == sorted(results, reverse=True)
    items = served.all("Datastreams", **{"$orderby": "Thing/name asc, name desc", "$select": "id,name"})
    assert len(items) == len(served.store.entities("Datastreams"))
    names = [(served.get(f"Datastreams({d['@iot.id']})/Thing")["name"], d["name"]) for d in items[:30]]
    for (t1, n1), (t2, n2) in itertools.pairwise(names):
        assert t1 < t2 or (t1 == t2 and n1 >= n2)
    # A Datastream's Observations by time, newest first, equal its Observations reversed.
    stream = stream_of(served, "intersection", "B2", "phase")
    by_time = served.all(
        f"Datastreams({stream['@iot.id']})/Observations", **{"$orderby": "phenomenonTime desc"}
    )
    by_id = served.all(f"Datastreams({stream['@iot.id']})/Observations")
    assert [o["@iot.id"] for o in by_time] == [o["@iot.id"] for o in reversed(by_id)]


def test_filtering_A2_top_skip_count_and_next_link(served: Served) -> None:
    total = len(served.store.entities("Observations"))
    first = served.get("Observations")
    assert len(first["value"]) == DEFAULT_TOP and "@iot.count" not in first
    assert first["@iot.nextLink"] == f"{BASE}/Observations?$top={DEFAULT_TOP}&$skip={DEFAULT_TOP}"
    page = served.get("Observations", **{"$top": "7", "$skip": "20", "$count": "true"})
    assert page["@iot.count"] == total
    assert [o["@iot.id"] for o in page["value"]] == list(range(21, 28))
    walked = served.all("Things", **{"$top": "10"})
    assert [t["@iot.id"] for t in walked] == sorted(served.store.entities("Things"))
    tail = served.get("Things", **{"$skip": str(len(walked) - 2)})
    assert len(tail["value"]) == 2 and "@iot.nextLink" not in tail
    assert served.get("Things", **{"$top": "0", "$count": "true"}) == {
        "@iot.count": len(walked),
        "value": [],
    }


def test_filtering_A2_filter_on_a_live_district(served: Served) -> None:
    """/req/request-data/filter: the answer is exactly the entities the expression holds for."""
    threshold = 2.0
    answer = served.all(
        "Observations",
        **{
            "$filter": f"Datastream/properties/key eq 'queue_mean' and result ge {threshold} and "
            f"phenomenonTime ge {when(300.0)}",
            "$count": "true",
        },
    )
    expected = [
        (f"{when(q.begin_s)}/{when(q.end_s)}", round(q.queue_mean_veh, 2))
        for m in served.log.of_kind("intersection.interval")
        if isinstance(q := m.payload, IntersectionInterval)
        and round(q.queue_mean_veh, 2) >= threshold
        and q.begin_s >= 300.0
    ]
    assert expected and sorted((o["phenomenonTime"], o["result"]) for o in answer) == sorted(expected)


def test_filtering_A2_geospatial_functions_on_the_districts_places(served: Served) -> None:
    """/req/request-data/built-in-query-functions, geospatial: the district lies on a plane
    tangent at the origin, so a Location's net_xy is its ground distance from the origin in
    metres - what geo.distance must give (to 0.1%, the plane's error is far smaller)."""
    origin = f"geography'POINT({ORIGIN[0]} {ORIGIN[1]})'"
    locations = served.all(
        "Locations",
        **{"$select": "id,location,properties", "$orderby": f"geo.distance(location, {origin})"},
    )
    metres = [math.hypot(*loc["properties"]["net_xy"]) for loc in locations]
    assert metres == sorted(metres) and metres[-1] > 500
    radius = sorted(metres)[len(metres) // 2] + 0.5  # half the district, not on a boundary
    near = served.all("Locations", **{"$filter": f"geo.distance(location, {origin}) lt {radius}"})
    assert {loc["@iot.id"] for loc in near} == {
        loc["@iot.id"] for loc, m in zip(locations, metres, strict=True) if m < radius
    }
    for loc, m in zip(locations, metres, strict=True):
        found = served.all(
            "Locations",
            **{"$filter": f"@iot.id eq {loc['@iot.id']} and geo.distance(location, {origin}) "
               f"ge {m * 0.999 - 0.01} and geo.distance(location, {origin}) le {m * 1.001 + 0.01}"},
        )  # fmt: skip
        assert len(found) == 1, (loc, m)
    # A box around one intersection's point: that Thing, through its Locations, and the
    # Observations of its place (through their FeatureOfInterest).
    [thing] = served.get("Things", **{"$filter": "properties/id eq 'C3'", "$expand": "Locations"})[
        "value"
    ]
    lon, lat = thing["Locations"][0]["location"]["coordinates"]
    d = 0.0001  # about 11 m
    box = (
        f"geography'POLYGON(({lon - d} {lat - d}, {lon + d} {lat - d}, {lon + d} {lat + d}, "
        f"{lon - d} {lat + d}, {lon - d} {lat - d}))'"
    )
    inside = served.all("Things", **{"$filter": f"st_within(Locations/location, {box})"})
    assert [t["@iot.id"] for t in inside] == [thing["@iot.id"]]
    outside = served.get(
        "Things", **{"$filter": f"st_disjoint(Locations/location, {box})", "$count": "true"}
    )
    assert outside["@iot.count"] == len(served.all("Things")) - 1
    phases = served.get(
        "Observations",
        **{"$filter": f"st_within(FeatureOfInterest/feature, {box}) and "
           "Datastream/properties/key eq 'phase'", "$count": "true", "$top": "0"},
    )  # fmt: skip
    stream = stream_of(served, "intersection", "C3", "phase")
    assert phases["@iot.count"] == len(served.all(f"Datastreams({stream['@iot.id']})/Observations")) > 0


def test_filtering_A2_bad_options_are_400(served: Served) -> None:
    for options in (
        {"$top": "x"},
        {"$skip": "-2"},
        {"$count": "yes"},
        {"$orderby": "nme"},
        {"$filter": "name eq"},
        {"$expand": "Things"},
        {"$resultFormat": "dataArray"},
    ):
        with pytest.raises(QueryError) as info:
            served.get("Datastreams", **options)
        assert info.value.status == 400, options


def test_sensing_core_A1_location_of_a_real_net_uses_its_own_projection() -> None:
    """Bologna (an OpenStreetMap import with a UTM projection): Locations are where sumolib's
    own reader of the whole net puts them, in Bologna, whatever origin was given."""
    scenario = load_scenario("scenarios/realnets/bologna-acosta")
    network_map = network_map_of(scenario, "fixed")
    assert network_map.network is not None
    store = SensorThingsStore()
    District(store, scenario, network_map, projection(network_map.network, ORIGIN), EPOCH)
    service = SensorThingsService(store, [SENSING_CORE])
    locations = service.get("Locations", {"$top": "1000"}, BASE).body["value"]
    assert len(locations) == len(network_map.network.traffic_lights) > 0
    net = sumolib.net.readNet(str(scenario.net_file))
    for location in locations:
        lon, lat = location["location"]["coordinates"]
        assert 11.2 < lon < 11.45 and 44.4 < lat < 44.6  # Bologna
        expected = net.convertXY2LonLat(*location["properties"]["net_xy"])
        assert math.isclose(lon, expected[0], abs_tol=1e-6) and math.isclose(
            lat, expected[1], abs_tol=1e-6
        )
        assert location["properties"]["placed_by"] == "the net's geo-projection"


def test_filtering_A2_filter_through_the_datastream_index_equals_a_full_scan(served: Served) -> None:
    """A condition on an Observation's Datastream picks the candidates from the Datastreams'
    lists; the answer is the one a scan of every Observation gives (the ``or`` defeats the index)."""
    for condition in [
        "Datastream/properties/key eq 'nox'",
        "not (Datastream/Thing/properties/kind eq 'intersection')",
        "startswith(Datastream/name, 'air') and Datastream/id ne 3",
    ]:
        indexed = served.all(
            "Observations", **{"$filter": f"{condition} and result gt 1", "$top": "1000"}
        )
        scanned = served.all(
            "Observations",
            **{"$filter": f"({condition} or result eq -1e9) and result gt 1", "$top": "1000"},
        )
        assert indexed and [o["@iot.id"] for o in indexed] == [o["@iot.id"] for o in scanned]
        backwards = served.get(
            "Observations",
            **{"$filter": f"{condition} and result gt 1", "$orderby": "id desc", "$count": "true"},
        )
        assert backwards["@iot.count"] == len(indexed)
        assert [o["@iot.id"] for o in backwards["value"]] == [
            o["@iot.id"] for o in indexed[::-1][:DEFAULT_TOP]
        ]


# --- A.8 Receive updates via MQTT: the topics and what each carries ----------------------------


def test_receive_updates_A8_every_change_on_its_topics_as_rest_gives_it(served: Served) -> None:
    """/req/receive-updates-via-mqtt/receive-updates, without the broker (the e2e test has it):
    what the 10-minute run created (Observations; the air stations it deployed, with their
    Location, HistoricalLocation, FeatureOfInterest, Sensor and Datastreams) and updated (the
    Datastreams' phenomenonTime and resultTime) goes out on the entity set, every linked
    entity's collection of it, the entity's own topic and each changed property - and each
    topic carries exactly what a GET of that path has."""
    select = parse_select_topic(
        "v1.1/Datastreams(4)/Observations?$select=result,phenomenonTime", served.store
    )
    changes = served.changes.take()
    sent = messages(changes, served.store, served.service, BASE, {select.path: [select]})
    on: dict[str, list[dict[str, Any]]] = {}
    for topic, body in sent:
        on.setdefault(topic, []).append(json.loads(body))
    created = {(e.type.plural, e.id) for e, props in changes if props is None}
    updated = {(e.type.plural, e.id): props for e, props in changes if props is not None}

    # A deployed station: its Thing and what hangs on it, each on every collection holding it.
    expand = "Locations,HistoricalLocations,Datastreams($expand=Sensor,ObservedProperty)"
    [station] = served.get(
        "Things", **{"$filter": "properties/kind eq 'air_station'", "$top": "1", "$expand": expand}
    )["value"]
    t, [location], [history] = station["@iot.id"], station["Locations"], station["HistoricalLocations"]
    loc, hist = location["@iot.id"], history["@iot.id"]
    assert {("Things", t), ("Locations", loc), ("HistoricalLocations", hist)} <= created
    thing = served.get(f"Things({t})")
    for topic in ("v1.1/Things", f"v1.1/Things({t})", f"v1.1/Locations({loc})/Things"):
        assert thing in on[topic], topic
    for topic in (
        "v1.1/Locations",
        f"v1.1/Things({t})/Locations",
        f"v1.1/HistoricalLocations({hist})/Locations",
    ):
        assert served.get(f"Locations({loc})") in on[topic], topic
    for topic in (f"v1.1/Things({t})/HistoricalLocations", f"v1.1/Locations({loc})/HistoricalLocations"):
        assert served.get(f"HistoricalLocations({hist})") in on[topic], topic
    for stream in station["Datastreams"]:
        d = stream["@iot.id"]
        assert ("Datastreams", d) in created
        sensor, observed = stream["Sensor"]["@iot.id"], stream["ObservedProperty"]["@iot.id"]
        for topic in (f"v1.1/Things({t})/Datastreams", f"v1.1/Sensors({sensor})/Datastreams",
                      f"v1.1/ObservedProperties({observed})/Datastreams"):  # fmt: skip
            assert served.get(f"Datastreams({d})") in on[topic], topic

    # Every Observation: on four topics, as a GET of it gives it.
    observations = [e for e, _props in changes if e.type.plural == "Observations"]
    assert len(observations) == len(served.store.entities("Observations")) > 1000
    for o in observations[::97]:
        body = served.get(f"Observations({o.id})")
        d, f = o.one["Datastream"], o.one["FeatureOfInterest"]
        topics = {t for t, bodies in on.items() if body in bodies}
        assert topics == {
            "v1.1/Observations",
            f"v1.1/Observations({o.id})",
            f"v1.1/Datastreams({d})/Observations",
            f"v1.1/FeaturesOfInterest({f})/Observations",
        }

    # A Datastream of the district updated by its Observations: in full on its topics, and each
    # changed property on its own.
    assert updated[("Datastreams", 4)] == {"phenomenonTime", "resultTime"}
    stream = served.get("Datastreams(4)")
    thing_id = served.get("Datastreams(4)/Thing")["@iot.id"]
    sensor = served.get("Datastreams(4)/Sensor")["@iot.id"]
    for topic in ("v1.1/Datastreams", "v1.1/Datastreams(4)", f"v1.1/Things({thing_id})/Datastreams",
                  f"v1.1/Sensors({sensor})/Datastreams"):  # fmt: skip
        assert stream in on[topic], topic
    assert on["v1.1/Datastreams(4)/phenomenonTime"] == [{"phenomenonTime": stream["phenomenonTime"]}]
    assert on["v1.1/Datastreams(4)/resultTime"] == [{"resultTime": stream["resultTime"]}]

    # The configured $select topic: those properties only, of each new Observation of
    # Datastream 4 (a signal's phases).
    expected = [{"result": o["result"], "phenomenonTime": o["phenomenonTime"]}
                for o in served.all("Datastreams(4)/Observations")]  # fmt: skip
    assert on[select.topic] == expected and len(expected) > 3

    # Honest topics: what a collection topic carries is in that collection over REST.
    for topic in [t for t in on if "?" not in t and t.endswith("s") and "Observations" not in t]:
        path = topic.removeprefix("v1.1/")
        ids = {item["@iot.id"] for item in served.all(path, **{"$select": "id"})}
        assert {body["@iot.id"] for body in on[topic]} <= ids, topic
    assert served.changes.take() == []  # taken once


@pytest.mark.parametrize(
    ("topic", "message"),
    [
        ("Datastreams(1)/Observations?$select=result", "expected v1.1/PATH?$select=NAME,NAME"),
        ("v1.1/Datastreams(1)/Observations", "expected v1.1/PATH?$select=NAME,NAME"),
        ("v1.1/Robots?$select=name", "the path must be an entity set"),
        ("v1.1/Datastreams(x)/Observations?$select=result", "the path must be an entity set"),
        # accepted, it was never published on: updates go to Datastreams(1)/Observations
        ("v1.1/Datastreams(01)/Observations?$select=result", "the path must be an entity set"),
        ("v1.1/Things(1)/Datastreams(2)/Observations?$select=result", "the path must be an entity set"),
        ("v1.1/Datastreams(1)/Thing?$select=name", "a Datastream has no collection 'Thing'"),
        ("v1.1/Observations?$filter=result gt 1", "only $select is served on MQTT topics"),
        ("v1.1/Observations?$select=result&$top=1", "only $select is served on MQTT topics"),
        ("v1.1/Datastreams(1)/Observations?$select=reslt", "an Observation has no 'reslt'"),
    ],
)
def test_receive_updates_A8_select_topic_that_cannot_be_served_is_refused(
    topic: str, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        parse_select_topic(topic, SensorThingsStore())
    assert repr(topic) in str(info.value)
