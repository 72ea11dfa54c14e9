"""The SensorThings query language on a hand-made store (pure code, no simulation): the filter
operators and functions, paths through links, options nested in $expand, and the errors a
client gets for what the service does not understand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controlcenter.sensorthings.expr import QueryError, compile_node, parse_filter
from controlcenter.sensorthings.model import TYPES, Entity, TimeInterval
from controlcenter.sensorthings.options import MAX_TOP, read_query
from controlcenter.sensorthings.service import SensorThingsService
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
            "st_within(FeatureOfInterest/feature, geography'POINT(0 0)')",
            "geospatial function st_within()",
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
