"""The SensorThings query language on a hand-made store (pure code, no simulation): the filter
operators and functions, paths through links, options nested in $expand, and the errors a
client gets for what the service does not understand."""

from __future__ import annotations

import math
import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controlcenter.sensorthings.expr import FUNCTIONS, QueryError, compile_node, parse_filter
from controlcenter.sensorthings.model import TYPES, Entity, TimeInterval
from controlcenter.sensorthings.options import DEFAULT_TOP, MAX_TOP, read_query
from controlcenter.sensorthings.service import MAX_ENTITIES, SensorThingsService
from controlcenter.sensorthings.store import SensorThingsStore

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
BASE = "http://example.org/v1.1"
GEOJSON = "application/geo+json"


@pytest.fixture
def store() -> SensorThingsStore:
    """Two Things with a Datastream each; 10 Observations on the first (results 0..9, one a
    minute from T0), 3 interval Observations on the second."""
    s = SensorThingsStore()
    for n, (name, kind) in enumerate((("intersection A1", "intersection"), ("station B2", "air"))):
        thing = s.add("Things", {"name": name, "description": f"thing {n}",
                                 "properties": {"kind": kind, "rank": n}})  # fmt: skip
        sensor = s.add("Sensors", {"name": f"sensor {n}", "description": "",
                                   "encodingType": "text/plain", "metadata": ""})  # fmt: skip
        prop = s.add(
            "ObservedProperties", {"name": f"property {n}", "definition": "", "description": ""}
        )
        s.add("Datastreams", {"name": f"{name} stream", "description": "",
                              "unitOfMeasurement": {"name": "vehicle", "symbol": "{veh}"},
                              "observationType": "OM_Measurement"},
              Thing=thing, Sensor=sensor, ObservedProperty=prop)  # fmt: skip
        s.add("FeaturesOfInterest", {"name": name, "description": "", "encodingType": GEOJSON,
                                     "feature": {"type": "Point", "coordinates": [0, 0]}})  # fmt: skip
    first, second = s.get("Datastreams", 1), s.get("Datastreams", 2)
    foi1, foi2 = s.get("FeaturesOfInterest", 1), s.get("FeaturesOfInterest", 2)
    assert first and second and foi1 and foi2
    for k in range(10):
        s.observe(first, foi1, T0 + timedelta(minutes=k), k, {"state": "GrGr" if k % 2 else "rGrG"})
    for k in range(3):
        start = T0 + timedelta(minutes=5 * k)
        s.observe(second, foi2, TimeInterval(start, start + timedelta(minutes=5)), 10.5 + k)
    return s


def results(store: SensorThingsStore, filter_text: str, entity_set: str = "Observations") -> list[Any]:
    answer = SensorThingsService(store, []).get(entity_set, {"$filter": filter_text}, BASE)
    key = "result" if entity_set == "Observations" else "name"
    return [item[key] for item in answer.body["value"]]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("result eq 3", [3]),
        ("result ne 3 and Datastream/id eq 1", [0, 1, 2, 4, 5, 6, 7, 8, 9]),
        ("result gt 8", [9, 10.5, 11.5, 12.5]),
        ("result ge 9 and result lt 11", [9, 10.5]),
        ("result le 1", [0, 1]),
        ("result lt 1 or result eq 12.5", [0, 12.5]),
        ("not (result lt 9)", [9, 10.5, 11.5, 12.5]),
        ("result add 1 eq 5", [4]),
        ("result mul 2 sub 1 eq 5", [3]),
        ("result div 2 eq 4", [8, 9]),  # whole-number division of whole numbers
        ("result mod 4 eq 1 and result lt 10", [1, 5, 9]),
        ("-result eq -2", [2]),
        ("(result eq 1 or result eq 2) and parameters/state eq 'rGrG'", [2]),
        ("Datastream/Thing/properties/kind eq 'air'", [10.5, 11.5, 12.5]),
        ("FeatureOfInterest/name eq 'intersection A1' and result gt 7", [8, 9]),
        ("parameters/state eq null and result lt 11", [10.5]),
        ("round(result) eq 12", [11.5]),  # halves away from zero, as OData rounds
        ("floor(result) eq 12 or ceiling(result) eq 11", [10.5, 12.5]),
    ],
)
def test_filtering_A2_filter_operators(store: SensorThingsStore, text: str, expected: list[Any]) -> None:
    assert results(store, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("phenomenonTime eq 2025-03-01T08:03:00Z", [3]),
        ("phenomenonTime gt 2025-03-01T08:08:00Z and Datastream/id eq 1", [9]),
        ("phenomenonTime ge 2025-03-01T08:08:00.000Z and Datastream/id eq 1", [8, 9]),
        ("phenomenonTime le 2025-03-01T09:00:00+01:00", [0]),  # an offset is honoured
        # Intervals: later than t if they start after t, earlier if they end by t.
        ("phenomenonTime gt 2025-03-01T08:04:00Z and Datastream/id eq 2", [11.5, 12.5]),
        ("phenomenonTime lt 2025-03-01T08:10:00Z and Datastream/id eq 2", [10.5, 11.5]),
        ("resultTime ge 2025-03-01T08:15:00Z", [12.5]),
        ("minute(phenomenonTime) eq 7", [7]),
        ("hour(phenomenonTime) eq 8 and second(phenomenonTime) eq 0 and result eq 0", [0]),
        (
            "year(resultTime) eq 2025 and month(resultTime) eq 3 and day(resultTime) eq 1 "
            "and result eq 1",
            [1],
        ),
        ("date(phenomenonTime) eq 2025-03-01 and result eq 2", [2]),
        ("maxdatetime(phenomenonTime) eq 2025-03-01T08:10:00Z", [11.5]),
        ("mindatetime(phenomenonTime) eq 2025-03-01T08:10:00Z", [12.5]),
        ("phenomenonTime lt now() and result eq 4", [4]),
    ],
)
def test_filtering_A2_filter_times(store: SensorThingsStore, text: str, expected: list[Any]) -> None:
    assert results(store, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name eq 'intersection A1'", ["intersection A1"]),
        ("substringof('B2', name)", ["station B2"]),
        ("contains(name, 'tion A')", ["intersection A1"]),
        ("startswith(name, 'inter')", ["intersection A1"]),
        ("endswith(name, 'B2')", ["station B2"]),
        ("length(name) eq 10", ["station B2"]),
        ("indexof(name, 'B2') eq 8", ["station B2"]),
        ("substring(name, 8) eq 'B2'", ["station B2"]),
        ("substring(name, 0, 5) eq 'inter'", ["intersection A1"]),
        ("tolower(toupper(name)) eq 'station b2'", ["station B2"]),
        ("trim(concat(' x', ' ')) eq 'x'", ["intersection A1", "station B2"]),
        ("properties/rank gt 0", ["station B2"]),
        ("Datastreams/name eq 'station B2 stream'", ["station B2"]),  # any of a to-many link
        ("Datastreams/Observations/result gt 12", ["station B2"]),
        ("name eq 'it''s'", []),
    ],
)
def test_filtering_A2_filter_string_functions_and_paths(
    store: SensorThingsStore, text: str, expected: list[str]
) -> None:
    assert results(store, text, "Things") == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("result eq", "expected more"),
        ("result eq 3)", "unexpected"),
        ("reslt eq 3", "an Observation has no 'reslt'"),
        ("Datastream eq 3", "name a property of the Datastream"),
        ("result eq 'a", "cannot read"),
        (
            "st_within(FeatureOfInterest/feature, geography'POINT(0)')",
            "bad geography literal geography'POINT(0)'",
        ),
        ("frobnicate(result)", "unknown function frobnicate()"),
        ("startswith(name)", "startswith() takes 2 arguments, not 1"),
        ("phenomenonTime gt 2025-13-01T00:00:00Z", "bad date-time"),
    ],
)
def test_filtering_A2_bad_filter_is_400_naming_the_problem(
    store: SensorThingsStore, text: str, message: str
) -> None:
    with pytest.raises(QueryError, match="filter") as info:
        SensorThingsService(store, []).get("Observations", {"$filter": text}, BASE)
    assert info.value.status == 400
    assert message in str(info.value)


def test_filtering_A2_expand_options_are_nested_and_checked(store: SensorThingsStore) -> None:
    query = read_query(
        {"$expand": "Datastreams($select=name,id;$top=1;$expand=Observations($filter=result gt 7;"
         "$orderby=result desc;$count=true)),Locations", "$select": "name"},
        TYPES["Things"], store,
    )  # fmt: skip
    datastreams = query.expand["Datastreams"]
    assert query.select == ["name"] and set(query.expand) == {"Datastreams", "Locations"}
    assert datastreams.select == ["name", "id"] and datastreams.top == 1
    observations = datastreams.expand["Observations"]
    assert observations.count and observations.filter is not None
    with pytest.raises(
        QueryError, match=r"\$expand\(Datastreams\)/\$filter: a Datastream has no 'reslt'"
    ):
        read_query({"$expand": "Datastreams($filter=reslt gt 1)"}, TYPES["Things"], store)
    with pytest.raises(QueryError, match="no navigation property 'Datastream'"):
        read_query({"$expand": "Datastream"}, TYPES["Things"], store)
    with pytest.raises(QueryError, match="unclosed"):
        read_query({"$expand": "Datastreams($top=1"}, TYPES["Things"], store)
    with pytest.raises(QueryError, match=r"\$top='-1': expected a whole number"):
        read_query({"$top": "-1"}, TYPES["Things"], store)
    with pytest.raises(QueryError, match=r"\$format: not a query option"):
        read_query({"$format": "json"}, TYPES["Things"], store)
    assert read_query({"$top": str(10 * MAX_TOP)}, TYPES["Things"], store).limit == MAX_TOP


def test_filter_compiles_once_and_evaluates_per_entity(store: SensorThingsStore) -> None:
    evaluate = compile_node(parse_filter("result gt 4"), TYPES["Observations"], store, "$filter")
    observations: list[Entity] = list(store.entities("Observations").values())
    assert [evaluate(o) for o in observations[:7]] == [False] * 5 + [True] * 2


def test_eviction_keeps_every_index_consistent() -> None:
    s = SensorThingsStore(max_observations=4)
    thing = s.add("Things", {"name": "t", "description": ""})
    stream = s.add("Datastreams", {"name": "d"}, Thing=thing)
    foi = s.add("FeaturesOfInterest", {"name": "f"})
    for k in range(6):
        s.observe(stream, foi, T0 + timedelta(seconds=k), k)
    assert list(s.entities("Observations")) == [3, 4, 5, 6]
    assert list(stream.linked("Observations")) == [3, 4, 5, 6] == list(foi.linked("Observations"))
    assert s.evicted == 2
    assert stream.fields["phenomenonTime"] == TimeInterval(T0, T0 + timedelta(seconds=5))


# --- review fixes: bad input is a 400 naming the option, never a 500 ------------------------------


def failure(store: SensorThingsStore, path: str, params: dict[str, str]) -> QueryError:
    with pytest.raises(QueryError) as info:
        SensorThingsService(store, []).get(path, params, BASE)
    return info.value


DEEP_EXPAND = "Datastreams($expand=Thing($expand=" * 15 + "Datastreams" + "))" * 15


@pytest.mark.parametrize(
    ("path", "option", "value", "message"),
    [
        ("Observations", "$filter", "result eq " + "1" * 5000, "number longer than"),
        ("Observations", "$top", "9" * 5000, "expected a whole number"),
        ("Observations", "$skip", "9" * 5000, "expected a whole number"),
        ("Observations", "$top", "\u00b2", "expected a whole number"),
        ("Observations", "$skip", "\u0661", "expected a whole number"),  # an Arabic-Indic 1
        ("Observations", "$filter", "floor(1e400) eq 1", "number out of range"),
        ("Things", "$filter", "substring(name, 0, 1e400) eq 'a'", "number out of range"),
        ("Things", "$filter", "substring(name, 0, 'a') eq 'a'", "substring(): start and length"),
        ("Things", "$filter", "substring(name, 0, 1.5) eq 'a'", "substring(): start and length"),
        ("Observations", "$filter", "result mul 1e300 mul 1e300 gt 0", "out of range"),
        ("Observations", "$filter", "floor(result mul 1e300 mul 1e300) gt 0", "out of range"),
        ("Observations", "$filter", "result div 0 eq 1", "div by zero"),
        ("Observations", "$filter", "result mod 0.0 eq 1", "mod by zero"),
        ("Observations", "$filter", " or ".join(["result eq 1"] * 1000), "too long"),
        ("Observations", "$filter", "(" * 2000 + "true" + ")" * 2000, "too long"),
        ("Observations", "$filter", "(" * 300 + "true" + ")" * 300, "nested too deeply"),
        ("Observations", "$filter", "not " * 600 + "true", "nested too deeply"),
        ("Observations", "$filter", "- " * 600 + "1 eq 1", "nested too deeply"),
        ("Observations", "$filter", "result" + " add 1" * 200 + " gt 0", "nested too deeply"),
        ("Observations", "$orderby", "(" * 300 + "result" + ")" * 300, "nested too deeply"),
        ("Things", "$expand", DEEP_EXPAND, "nested more than"),
        ("Things", "$expand", "/".join(["Datastreams/Thing"] * 20), "nested more than"),
        ("Observations", "$filter", "result add 1", "is not a condition"),
        ("Things", "$filter", "length(name) or true", "is not a condition"),
        ("Observations", "$filter", "3", "is not a condition"),
    ],
)
def test_bad_input_is_a_400_naming_the_option(
    store: SensorThingsStore, path: str, option: str, value: str, message: str
) -> None:
    error = failure(store, path, {option: value})
    assert error.status == 400
    assert str(error).startswith(option)
    assert message in str(error)


def test_a_long_or_chain_within_the_token_limit_is_answered(store: SensorThingsStore) -> None:
    text = " or ".join(f"result eq {k}" for k in range(200))  # 799 tokens, a shallow tree
    assert results(store, text) == list(range(10))


@pytest.mark.parametrize("ident", ["\u00b2", "\u0661", "1" * 5000, "-1"])
def test_an_id_that_is_no_ascii_whole_number_is_a_404(store: SensorThingsStore, ident: str) -> None:
    error = failure(store, f"Things({ident})", {})
    assert error.status == 404 and "ids here are whole numbers" in str(error)


def test_an_unforeseen_failure_while_evaluating_is_a_400(
    store: SensorThingsStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_s: Any) -> Any:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setitem(FUNCTIONS, "length", ((1, 1), broken))
    error = failure(store, "Things", {"$filter": "length(name) eq 1"})
    assert error.status == 400 and "RecursionError" in str(error)


# --- review fixes: the meaning of not, of conditions, of dates, of div and mod ---------------------


@pytest.mark.parametrize(
    ("text", "entity_set", "expected"),
    [
        ("not name eq 'station B2'", "Things", ["intersection A1"]),
        ("not result lt 9 and Datastream/id eq 1", "Observations", [9]),
        ("not result lt 9 or result eq 0", "Observations", [0, 9, 10.5, 11.5, 12.5]),
        ("not not result eq 3", "Observations", [3]),
        ("not Datastreams/name eq 'station B2 stream'", "Things", ["intersection A1"]),
        ("startswith(Datastreams/name, 'zzz')", "Things", []),  # [false] is not true
        ("startswith(Datastreams/name, 'station')", "Things", ["station B2"]),
        ("not startswith(Datastreams/name, 'station')", "Things", ["intersection A1"]),
        ("name", "Things", []),  # a string is not true
        ("properties/kind", "Things", []),
        ("not properties/kind", "Things", []),  # nor false
        ("@iot.id eq 2", "Things", ["station B2"]),
        ("@iot.id lt 3", "Observations", [0, 1]),
        # A date compared with a date-time is midnight UTC of that day.
        ("phenomenonTime ge 2025-03-01 and Datastream/id eq 2", "Observations", [10.5, 11.5, 12.5]),
        ("phenomenonTime lt 2025-03-02 and result lt 2", "Observations", [0, 1]),
        ("phenomenonTime gt 2025-03-01 and result lt 2", "Observations", [0, 1]),
        ("phenomenonTime gt 2025-03-02", "Observations", []),
        ("resultTime le 2025-02-28", "Observations", []),
        # OData: whole-number div and mod truncate toward zero.
        ("-7 div 2 eq -3 and result eq 0", "Observations", [0]),
        ("-7 mod 2 eq -1 and result eq 0", "Observations", [0]),
        ("7 mod -2 eq 1 and 7 div -2 eq -3 and result eq 0", "Observations", [0]),
        ("-result div 2 eq -4", "Observations", [8, 9]),
        ("-result mod 4 eq -1 and result lt 10", "Observations", [1, 5, 9]),
        ("-7.5 div 2 eq -3.75 and result eq 0", "Observations", [0]),
    ],
)
def test_filter_semantics_from_review(
    store: SensorThingsStore, text: str, entity_set: str, expected: list[Any]
) -> None:
    assert results(store, text, entity_set) == expected


# --- review fixes: bounded answers, next links -----------------------------------------------------


@pytest.fixture(scope="module")
def big() -> SensorThingsStore:
    """20 Datastreams of 600 Observations each (12,000)."""
    s = SensorThingsStore()
    thing = s.add("Things", {"name": "t", "description": ""})
    foi = s.add("FeaturesOfInterest", {"name": "f"})
    for n in range(20):
        stream = s.add("Datastreams", {"name": f"d{n}"}, Thing=thing)
        for k in range(600):
            s.observe(stream, foi, T0 + timedelta(seconds=k), k)
    return s


def test_an_answer_of_more_than_max_entities_is_a_400_asking_for_top(big: SensorThingsStore) -> None:
    service = SensorThingsService(big, [])
    error = failure(big, "Datastreams", {"$expand": "Observations($top=600)"})
    assert error.status == 400 and f"more than {MAX_ENTITIES} entities" in str(error)
    assert "$top" in str(error)
    error = failure(big, "Things", {"$expand": "Datastreams($expand=Observations($top=1000))"})
    assert error.status == 400
    # Expanded collections give DEFAULT_TOP each unless asked: 20 + 20 * 100 entities.
    body = service.get("Datastreams", {"$expand": "Observations"}, BASE).body
    assert [len(d["Observations"]) for d in body["value"]] == [DEFAULT_TOP] * 20
    assert "Observations@iot.nextLink" in body["value"][0]
    # Within the bound: 20 + 20 * 400 entities.
    body = service.get("Datastreams", {"$expand": "Observations($top=400)"}, BASE).body
    assert sum(len(d["Observations"]) for d in body["value"]) == 8000


def test_the_newest_observations_are_read_without_copying_every_id() -> None:
    """``$orderby=phenomenonTime desc`` (or ``id desc``) with a small ``$top`` - a dashboard's
    "latest value" - walks the ids from the newest and stops: its memory does not grow with the
    Observations kept (a copy of 60,000 ids would take over 2 MB)."""
    s = SensorThingsStore()
    thing = s.add("Things", {"name": "t", "description": ""})
    foi = s.add("FeaturesOfInterest", {"name": "f"})
    stream = s.add("Datastreams", {"name": "d"}, Thing=thing)
    for k in range(60_000):
        s.observe(stream, foi, T0 + timedelta(seconds=k), k)
    service = SensorThingsService(s, [])
    asked = [
        ("Datastreams(1)/Observations", {"$top": "2", "$orderby": "phenomenonTime desc"}),
        ("Observations", {"$top": "2", "$orderby": "id desc"}),
        ("Datastreams(1)", {"$expand": "Observations($top=2;$orderby=id desc)"}),
        ("Observations", {"$filter": "Datastream/id eq 1", "$orderby": "id desc", "$top": "2"}),
    ]
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        for path, params in asked:
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            body = service.get(path, params, BASE).body
            peak = tracemalloc.get_traced_memory()[1] - before
            page = body["Observations"] if "Observations" in body else body["value"]
            assert [o["result"] for o in page] == [59_999, 59_998], path
            assert peak < 200_000, (path, params, peak)
    finally:
        if started:
            tracemalloc.stop()


def test_next_link_keeps_ref_and_asks_for_the_rest_of_a_large_top(big: SensorThingsStore) -> None:
    service = SensorThingsService(big, [])
    body = service.get("Datastreams(1)/Observations/$ref", {"$top": "2"}, BASE).body
    assert [o["@iot.selfLink"] for o in body["value"]] == [f"{BASE}/Observations({k})" for k in (1, 2)]
    assert body["@iot.nextLink"] == f"{BASE}/Datastreams(1)/Observations/$ref?$top=2&$skip=2"
    body = service.get("Observations/$ref", {}, BASE).body
    assert body["@iot.nextLink"] == f"{BASE}/Observations/$ref?$top={DEFAULT_TOP}&$skip={DEFAULT_TOP}"
    body = service.get("Observations", {"$top": "1500", "$select": "id"}, BASE).body
    assert len(body["value"]) == MAX_TOP
    assert body["@iot.nextLink"] == f"{BASE}/Observations?$top=500&$select=id&$skip={MAX_TOP}"
    body = service.get("Observations", {"$top": "1000", "$select": "id"}, BASE).body
    assert body["@iot.nextLink"].endswith("?$top=1000&$select=id&$skip=1000")


# --- A.2 Filtering: the geospatial functions (Table 25) -------------------------------------------

# Four places in Miraflores (longitude, latitude): A and B on one parallel 0.01 degree apart,
# a street C south of them, a block D around A.
A, B = (-77.03, -12.12), (-77.02, -12.12)
STREET = [(-77.03, -12.13), (-77.01, -12.13)]
BLOCK = [(-77.035, -12.125), (-77.025, -12.125), (-77.025, -12.115), (-77.035, -12.115)]


def _haversine_m(p: tuple[float, float], q: tuple[float, float]) -> float:
    """Great-circle distance on a sphere of the earth's mean radius: an independent check that
    the service answers in metres (the WGS 84 ellipsoid differs by under 0.5%)."""
    (lon1, lat1), (lon2, lat2) = [(math.radians(a), math.radians(b)) for a, b in (p, q)]
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6_371_008.8 * math.asin(math.sqrt(h))


def _wkt(kind: str, points: list[tuple[float, float]]) -> str:
    text = ", ".join(f"{lon} {lat}" for lon, lat in points)
    return f"geography'{kind}({text})'" if kind != "POLYGON" else f"geography'POLYGON(({text}))'"


@pytest.fixture
def places() -> SensorThingsStore:
    """Things A and B (each with a point Location) and FeaturesOfInterest A, B (points),
    C (a street, a line) and D (a block, a polygon) - the GeoJSON a service stores."""
    s = SensorThingsStore()
    for name, xy in (("A", A), ("B", B)):
        thing = s.add("Things", {"name": name, "description": ""})
        location = s.add(
            "Locations",
            {"name": name, "description": "", "encodingType": GEOJSON,
             "location": {"type": "Point", "coordinates": list(xy)}},
        )  # fmt: skip
        s.link(thing, "Locations", location)
    ring = [*BLOCK, BLOCK[0]]
    for name, geometry in (
        ("A", {"type": "Point", "coordinates": list(A)}),
        ("B", {"type": "Feature", "properties": {},
               "geometry": {"type": "Point", "coordinates": list(B)}}),  # a Feature is read too
        ("C", {"type": "LineString", "coordinates": [list(p) for p in STREET]}),
        ("D", {"type": "Polygon", "coordinates": [[list(p) for p in ring]]}),
    ):  # fmt: skip
        s.add("FeaturesOfInterest", {"name": name, "description": "", "encodingType": GEOJSON,
                                     "feature": geometry})  # fmt: skip
    return s


def test_filtering_A2_geo_distance_is_metres_on_the_earth(places: SensorThingsStore) -> None:
    service = SensorThingsService(places, [])
    near_a = "geo.distance(location, geography'POINT(-77.03 -12.12)')"
    answer = service.get("Locations", {"$orderby": f"{near_a} desc", "$select": "name"}, BASE).body
    assert [item["name"] for item in answer["value"]] == ["B", "A"]
    ab = _haversine_m(A, B)
    assert 1080 < ab < 1095  # 0.01 degree of longitude at 12 degrees south
    assert results(places, f"{near_a} lt 1", "Locations") == ["A"]
    assert results(places, f"{near_a} gt {ab * 0.995:.1f} and {near_a} lt {ab * 1.005:.1f}",
                   "Locations") == ["B"]  # fmt: skip
    assert results(places, f"{near_a} gt {ab * 1.005:.1f}", "Locations") == []
    # Through a to-many link, from a Thing: any of its Locations.
    assert results(places, f"geo.distance(Locations/location, {_wkt('POINT', [B])}) lt 1", "Things") == [
        "B"
    ]
    # A polygon and a point: between their closest points (B is 0.005 degree east of the block);
    # a point inside is at 0.
    to_b = f"geo.distance(feature, {_wkt('POINT', [B])})"
    half = _haversine_m((-77.025, -12.12), B)
    assert results(places, f"{to_b} gt {half * 0.995:.1f} and {to_b} lt {half * 1.005:.1f}",
                   "FeaturesOfInterest") == ["D"]  # fmt: skip
    assert results(
        places, f"geo.distance(feature, {_wkt('POINT', [A])}) eq 0", "FeaturesOfInterest"
    ) == ["A", "D"]


def test_filtering_A2_geo_length_of_a_line_in_metres(places: SensorThingsStore) -> None:
    street = _haversine_m(*STREET)  # 0.02 degree of longitude
    assert 2160 < street < 2190
    low, high = f"{street * 0.995:.1f}", f"{street * 1.005:.1f}"
    assert results(places, f"geo.length(feature) gt {low} and geo.length(feature) lt {high}",
                   "FeaturesOfInterest") == ["C"]  # fmt: skip
    assert results(places, f"geo.length(feature) lt {low}", "FeaturesOfInterest") == []  # points: null
    literal = f"geo.length({_wkt('LINESTRING', STREET)})"
    assert results(places, f"{literal} gt {low} and {literal} lt {high}", "FeaturesOfInterest") == [
        "A",
        "B",
        "C",
        "D",
    ]


BOX_EAST = [(-77.03, -12.13), (-77.015, -12.13), (-77.015, -12.11), (-77.03, -12.11)]
"""Overlaps the east half of the block D, holds B, has A on its west edge and the street C along
part of its south edge."""
SOUTH = [(-77.03, -12.13), (-77.02, -12.13), (-77.02, -12.14), (-77.03, -12.14)]
"""South of the street C, sharing part of it as its north edge."""
FAR = [(-76.0, -12.0), (-75.9, -12.0), (-75.9, -11.9), (-76.0, -11.9)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"geo.intersects(feature, {_wkt('POLYGON', [*BLOCK, BLOCK[0]])})", ["A", "D"]),
        (f"geo.intersects(feature, {_wkt('POLYGON', [*FAR, FAR[0]])})", []),
        (f"st_equals(feature, {_wkt('POINT', [A])})", ["A"]),
        (f"st_equals(feature, {_wkt('POINT', [(-77.0301, -12.12)])})", []),
        (f"st_disjoint(feature, {_wkt('POLYGON', [*BLOCK, BLOCK[0]])})", ["B", "C"]),
        (f"st_disjoint(feature, {_wkt('POLYGON', [*FAR, FAR[0]])})", ["A", "B", "C", "D"]),
        (f"st_touches(feature, {_wkt('POLYGON', [*SOUTH, SOUTH[0]])})", ["C"]),  # on its edge
        (f"st_touches(feature, {_wkt('POLYGON', [*BOX_EAST, BOX_EAST[0]])})", ["A", "C"]),
        (f"st_within(feature, {_wkt('POLYGON', [*BLOCK, BLOCK[0]])})", ["A", "D"]),
        (f"st_within(feature, {_wkt('POLYGON', [*BOX_EAST, BOX_EAST[0]])})", ["B"]),
        (f"st_overlaps(feature, {_wkt('POLYGON', [*BOX_EAST, BOX_EAST[0]])})", ["D"]),
        (f"st_overlaps(feature, {_wkt('POLYGON', [*BLOCK, BLOCK[0]])})", []),  # equal: no overlap
        (f"st_crosses(feature, {_wkt('LINESTRING', [(-77.02, -12.14), (-77.02, -12.12)])})", ["C"]),
        (f"st_crosses(feature, {_wkt('LINESTRING', [(-77.02, -12.129), (-77.02, -12.121)])})", []),
        (f"st_intersects(feature, {_wkt('POLYGON', [*BOX_EAST, BOX_EAST[0]])})", ["A", "B", "C", "D"]),
        (f"st_intersects(feature, {_wkt('LINESTRING', [(-77.0, -12.2), (-77.0, -12.0)])})", []),
        (f"st_contains(feature, {_wkt('POINT', [A])})", ["A", "D"]),
        (f"st_contains(feature, {_wkt('POINT', [B])})", ["B"]),
        (f"st_relate(feature, {_wkt('POINT', [A])}, 'T*****FF*')", ["A", "D"]),  # contains
        (f"st_relate(feature, {_wkt('POINT', [A])}, 'FF*FF****')", ["B", "C"]),  # disjoint
        (f"not st_within(feature, {_wkt('POLYGON', [*BLOCK, BLOCK[0]])})", ["B", "C"]),
        # WKT as OData writes it too: SRID=4326 and geometry'...'.
        ("st_equals(feature, geography'SRID=4326;POINT(-77.03 -12.12)')", ["A"]),
        ("st_equals(feature, geometry'POINT (-77.03 -12.12)')", ["A"]),
    ],
)
def test_filtering_A2_spatial_relationship_functions(
    places: SensorThingsStore, text: str, expected: list[str]
) -> None:
    assert results(places, text, "FeaturesOfInterest") == expected


def test_filtering_A2_spatial_functions_on_a_value_that_is_no_geometry_are_null(
    places: SensorThingsStore,
) -> None:
    """A name, a missing property: null, so nothing passes (and ``not`` of null is null)."""
    point = _wkt("POINT", [A])
    assert results(places, f"st_equals(name, {point})", "FeaturesOfInterest") == []
    assert results(places, f"not st_equals(properties/where, {point})", "FeaturesOfInterest") == []
    assert results(places, f"geo.distance(description, {point}) ge 0", "FeaturesOfInterest") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "st_within(feature, geography'POINT(1)')",
            "bad geography literal geography'POINT(1)': not Well-Known Text",
        ),
        (
            "st_within(feature, geography'POLYGON((0 0, 1 0, 1 1))')",
            "bad geography literal geography'POLYGON((0 0, 1 0, 1 1))': not Well-Known Text",
        ),
        (
            "st_within(feature, geography'POLYGON((0 0, 1 1, 1 0, 0 1, 0 0))')",
            "geography'POLYGON((0 0, 1 1, 1 0, 0 1, 0 0))': not a valid geometry: Self-intersection",
        ),
        (
            "st_within(feature, geography'POINT(-12.12 -97.03)')",
            "point (-12.12 -97.03) is off the earth",
        ),
        ("st_within(feature, geography'SRID=3857;POINT(1 2)')", "only SRID=4326"),
        (  # shapely reads no curve: it was a NotImplementedError, a 500
            "st_within(feature, geography'CIRCULARSTRING(0 0, 1 1, 2 0)')",
            "geography'CIRCULARSTRING(0 0, 1 1, 2 0)': curved geometries",
        ),
        (  # read, but GEOS fails on it (a GEOSException, a 500)
            "geo.length(geography'GEOMETRYCOLLECTION(CIRCULARSTRING(0 0, 1 1, 2 0))') gt 0",
            "a geometry the service cannot work with; curved geometries",
        ),
        ("st_within(feature, geography'POINT EMPTY')", "geography'POINT EMPTY': the geometry is empty"),
        (
            "st_within(feature, geography'CIRCLE(1 2, 3)')",
            "geography'CIRCLE(1 2, 3)': not Well-Known Text",
        ),
        ("st_within(feature, 'POINT(1 2)')", "st_within(): argument 2 is 'POINT(1 2)', not a geometry"),
        ("geo.length(3) gt 1", "geo.length(): argument 1 is 3, not a geometry"),
        ("st_relate(feature, geography'POINT(1 2)', 'T**')", "'T**' is no DE-9IM matrix pattern"),
        ("st_relate(feature, geography'POINT(1 2)', name)", "'A' is no DE-9IM matrix pattern"),
        ("st_within(feature)", "st_within() takes 2 arguments, not 1"),
        ("geo.distance(feature, geography'POINT(1 2)')", "is not a condition"),
        ("geo.area(feature) gt 1", "unknown function geo.area()"),
    ],
)
def test_filtering_A2_bad_geography_is_400_naming_the_literal(
    places: SensorThingsStore, text: str, message: str
) -> None:
    error = failure(places, "FeaturesOfInterest", {"$filter": text})
    assert error.status == 400
    assert message in str(error)
