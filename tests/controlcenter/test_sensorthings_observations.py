"""The Observations table (pure code): what is written is what is read back, field for field and
type for type, through eviction and the dropping of evicted rows; and the id lists of links."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

import pytest

from controlcenter.sensorthings.model import IdList, TimeInterval
from controlcenter.sensorthings.observations import COMPACT_AFTER, ObservationTable
from controlcenter.sensorthings.store import SensorThingsStore

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def written(rng: random.Random, k: int) -> tuple[datetime | TimeInterval, Any, dict[str, Any] | None]:
    """A phenomenon time, a result and parameters of every kind an Observation may have."""
    start = T0 + timedelta(seconds=k, microseconds=rng.randrange(1_000_000))
    phenomenon: datetime | TimeInterval = (
        TimeInterval(start, start + timedelta(seconds=rng.choice((1, 60, 300))))
        if rng.random() < 0.4
        else start
    )
    result = rng.choice(
        [k, -k, k + 0.25, rng.random(), True, False, None, "GrGr", 2**60, {"nested": [k]}, 0, 0.0]
    )
    parameters = rng.choice(
        [
            None,
            {"t_s": k + 0.5},
            {"t_s": float(k), "state": rng.choice(("GGrr", "rrGG")), "program": "0"},
            {"bays": 12, "t_s": k * 1.0, "flag": True, "note": None},
            {"t_s": k + 0.1, "category": rng.choice(("good", "moderate"))},
            {"t_s": k, "where": {"lane": "A1_B1_1"}},  # not shareable: kept as it is
            {"huge": 2**62, "t_s": 1.0},  # a whole number a double cannot hold
        ]
    )
    return phenomenon, result, parameters


def expected_fields(phenomenon: datetime | TimeInterval, result: Any,
                    parameters: dict[str, Any] | None) -> dict[str, Any]:  # fmt: skip
    end = phenomenon.end if isinstance(phenomenon, TimeInterval) else phenomenon
    fields = {"phenomenonTime": phenomenon, "result": result, "resultTime": end}
    if parameters is not None:
        fields["parameters"] = parameters
    return fields


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (1 is not 1.0 is not True in JSON)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def test_every_field_reads_back_as_written_through_eviction_and_compaction() -> None:
    rng = random.Random(7)
    table = ObservationTable()
    kept: dict[int, tuple[int, int, dict[str, Any]]] = {}
    for k in range(3 * COMPACT_AFTER + 17):
        phenomenon, result, parameters = written(rng, k)
        ident = table.append(k % 5, 100 + k % 3, phenomenon, result, parameters)
        assert ident == k + 1
        kept[ident] = (k % 5, 100 + k % 3, expected_fields(phenomenon, result, parameters))
        while len(table) > COMPACT_AFTER + 100:  # evicts past COMPACT_AFTER rows: drops them
            ident_out, datastream, feature = table.evict_oldest()
            assert (datastream, feature) == kept.pop(ident_out)[:2]
    assert list(table) == sorted(kept) == list(range(table.first, table.first + len(table)))
    assert list(reversed(table)) == sorted(kept, reverse=True)
    for ident, (datastream, feature, fields) in kept.items():
        entity = table[ident]
        assert entity.id == ident and entity.type.plural == "Observations"
        assert entity.one == {"Datastream": datastream, "FeatureOfInterest": feature}
        assert same(dict(entity.fields), fields), (ident, entity.fields, fields)
    assert [e.id for e in table.values()] == sorted(kept)
    assert table.first - 1 not in table and table.next_id not in table and "1" not in table
    with pytest.raises(KeyError):
        table[table.first - 1]


def test_every_row_can_be_evicted_and_the_table_filled_again() -> None:
    table = ObservationTable()
    for k in range(COMPACT_AFTER * 2):
        table.append(1, 2, T0 + timedelta(seconds=k), k, {"t_s": float(k)})
    while len(table):
        table.evict_oldest()
    with pytest.raises(KeyError, match="no Observation"):
        table.evict_oldest()
    ident = table.append(1, 2, T0, 3.5, {"t_s": 9.0, "state": "G"})
    assert ident == 2 * COMPACT_AFTER + 1
    assert table[ident].fields["parameters"] == {"t_s": 9.0, "state": "G"}


def test_times_keep_their_instant_whatever_their_zone_and_a_naive_time_is_refused() -> None:
    table = ObservationTable()
    lima = datetime(2025, 3, 1, 3, 0, 0, 123456, tzinfo=timezone(timedelta(hours=-5)))
    ident = table.append(1, 1, lima, 1, None)
    assert table[ident].fields["phenomenonTime"] == lima
    with pytest.raises(ValueError, match="expected a time with its zone"):
        table.append(1, 1, datetime(2025, 3, 1), 1, None)  # naive: the point of the test
    assert len(table) == 1  # nothing half-written


def test_the_store_keeps_its_links_in_step_with_the_table() -> None:
    store = SensorThingsStore(max_observations=3)
    thing = store.add("Things", {"name": "t", "description": ""})
    streams = [store.add("Datastreams", {"name": f"d{n}"}, Thing=thing) for n in range(2)]
    foi = store.add("FeaturesOfInterest", {"name": "f"})
    for k in range(7):
        store.observe(streams[k % 2], foi, T0 + timedelta(seconds=k), k, {"t_s": float(k)})
    assert list(store.entities("Observations")) == [5, 6, 7]
    assert list(streams[0].linked("Observations")) == [5, 7]
    assert list(streams[1].linked("Observations")) == [6]
    assert list(foi.linked("Observations")) == [5, 6, 7]
    with pytest.raises(ValueError, match="made by observe"):
        store.add("Observations", {"result": 1})


def test_an_id_list_takes_from_the_front_and_drops_what_it_took() -> None:
    ids = IdList(range(1, 3001))
    for expected in range(1, 2001):
        assert ids.popleft() == expected
    assert len(ids) == 1000 and ids[0] == 2001 and ids[-1] == 3000
    assert list(ids) == list(range(2001, 3001)) and next(reversed(ids)) == 3000
    ids.remove(2500)
    assert 2500 not in list(ids) and len(ids) == 999
    with pytest.raises(ValueError):
        ids.remove(5)  # taken already
    with pytest.raises(IndexError):
        ids[999]
    empty = IdList()
    assert not empty and list(empty) == []
    with pytest.raises(IndexError):
        empty.popleft()


def test_a_row_reads_in_place_and_a_copy_outlives_its_eviction() -> None:
    table = ObservationTable()
    first = table.append(3, 4, T0, 1.5, {"t_s": 0.0, "state": "G"})
    row, copy = table[first], table.copy(first)
    assert dict(row.fields) == dict(copy.fields) and row.one == copy.one == {
        "Datastream": 3,
        "FeatureOfInterest": 4,
    }
    assert row.fields is row and "parameters" in row and len(row) == 4 and row != table[first]
    assert {row} and row == row  # an entity: equal to itself only, and hashable
    table.append(3, 4, T0 + timedelta(seconds=1), 2, None)
    assert "parameters" not in table[first + 1] and len(table[first + 1]) == 3
    table.evict_oldest()
    with pytest.raises(KeyError, match=f"Observation {first} is no longer kept"):
        row.get("result")
    assert copy.fields["result"] == 1.5 and copy.fields["parameters"] == {"t_s": 0.0, "state": "G"}


def test_parameters_equal_to_shared_ones_but_of_other_types_read_back_with_their_types() -> None:
    class Band(StrEnum):
        GOOD = "good"

    table = ObservationTable()
    written: list[dict[Any, Any]] = [
        {"category": "good"},
        {"category": Band.GOOD},
        {1: "x"},
        {True: "x"},
        {1.0: "x"},
    ]
    idents = [table.append(1, 1, T0, 0, parameters) for parameters in written]
    for ident, parameters in zip(idents, written, strict=True):
        read = table[ident].fields["parameters"]
        assert [(type(k), k, type(v), v) for k, v in read.items()] == [
            (type(k), k, type(v), v) for k, v in parameters.items()
        ]


def test_parameter_texts_of_evicted_observations_are_not_kept() -> None:
    """A text parameter that is new with every Observation (a controller's own signal states)
    must not pile up past the Observations kept: memory stays bounded by max_observations."""
    table = ObservationTable()
    for k in range(3 * COMPACT_AFTER):
        ident = table.append(1, 1, T0 + timedelta(seconds=k), k, {"t_s": float(k), "state": f"G{k}"})
        while len(table) > 100:
            table.evict_oldest()
        assert table[ident].fields["parameters"] == {"t_s": float(k), "state": f"G{k}"}
    assert table.parameter_shapes <= 100
    assert [table[i].fields["parameters"]["state"] for i in table] == [f"G{k - 1}" for k in table]
    table.append(1, 1, T0, 1, {"t_s": 0.0, "state": "G0"})  # a text seen long ago: shared anew
    assert table[table.next_id - 1].fields["parameters"] == {"t_s": 0.0, "state": "G0"}


def test_the_values_can_be_counted_and_walked_again_like_any_mapping_s() -> None:
    table = ObservationTable()
    for k in range(5):
        table.append(1, 1, T0 + timedelta(seconds=k), k, None)
    table.evict_oldest()
    values = table.values()
    assert len(values) == 4
    assert [e.fields["result"] for e in values] == [1, 2, 3, 4]
    assert [e.id for e in values] == [2, 3, 4, 5]  # a second walk sees them all again
