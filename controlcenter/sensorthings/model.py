"""The SensorThings API 1.1 data model (Sensing part): its eight entity types, their properties
and their navigation properties, and how values are written in JSON.

An :class:`Entity` keeps its properties typed (times as aware ``datetime`` or
:class:`TimeInterval`, so that ``$filter`` and ``$orderby`` compare them as times) and its links
as ids: ``one`` for a navigation property naming one entity (``Datastream/Thing``), ``many`` for
one naming a collection (``Thing/Datastreams``), kept in id order.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True, order=True)
class TimeInterval:
    """An ISO 8601 interval ``start/end`` (an Observation's phenomenonTime over a KPI interval)."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class EntityType:
    """One entity type: ``name`` (``Thing``), its entity set (``Things``), its properties in the
    order they are written (``required`` ones are written even when null) and its navigation
    properties, each to the entity set it leads to."""

    name: str
    plural: str
    properties: tuple[str, ...]
    required: frozenset[str]
    to_one: dict[str, str]
    to_many: dict[str, str]

    def navigation(self) -> list[str]:
        return [*self.to_one, *self.to_many]

    def target(self, navigation: str) -> str | None:
        """The entity set ``navigation`` leads to, or None if this type has no such link."""
        return self.to_one.get(navigation) or self.to_many.get(navigation)


def _type(name: str, plural: str, props: str, required: str, one: str, many: str) -> EntityType:
    def links(text: str) -> dict[str, str]:
        pairs = (item.split(":") for item in text.split())
        return {nav: target for nav, target in pairs}

    return EntityType(name, plural, tuple(props.split()), frozenset(required.split()), links(one),
                      links(many))  # fmt: skip


# SensorThings API 1.1, section 8.2 (Sensing Core): the properties of each entity type
# (required ones second) and its navigation properties.
TYPES: dict[str, EntityType] = {
    t.plural: t
    for t in (
        _type("Thing", "Things", "name description properties", "name description", "",
              "Locations:Locations HistoricalLocations:HistoricalLocations Datastreams:Datastreams"),
        _type("Location", "Locations", "name description encodingType location properties",
              "name description encodingType location", "",
              "Things:Things HistoricalLocations:HistoricalLocations"),
        _type("HistoricalLocation", "HistoricalLocations", "time", "time", "Thing:Things",
              "Locations:Locations"),
        _type("Datastream", "Datastreams",
              "name description unitOfMeasurement observationType observedArea phenomenonTime "
              "resultTime properties",
              "name description unitOfMeasurement observationType",
              "Thing:Things Sensor:Sensors ObservedProperty:ObservedProperties",
              "Observations:Observations"),
        _type("Sensor", "Sensors", "name description encodingType metadata properties",
              "name description encodingType metadata", "", "Datastreams:Datastreams"),
        _type("ObservedProperty", "ObservedProperties", "name definition description properties",
              "name definition description", "", "Datastreams:Datastreams"),
        _type("Observation", "Observations",
              "phenomenonTime result resultTime resultQuality validTime parameters",
              "phenomenonTime result resultTime", "Datastream:Datastreams "
              "FeatureOfInterest:FeaturesOfInterest", ""),
        _type("FeatureOfInterest", "FeaturesOfInterest",
              "name description encodingType feature properties",
              "name description encodingType feature", "", "Observations:Observations"),
    )
}  # fmt: skip
ENTITY_SETS = tuple(TYPES)


class IdList:
    """Ids in the order they were added, 8 bytes each (a Datastream's Observations run to
    hundreds of thousands): append at the end, take from the front."""

    __slots__ = ("_head", "_ids")

    def __init__(self, ids: Iterable[int] = ()) -> None:
        self._ids = array("q", ids)
        self._head = 0
        """Ids before this index were taken; they are dropped once they are half the array."""

    def append(self, ident: int) -> None:
        self._ids.append(ident)

    def popleft(self) -> int:
        if self._head >= len(self._ids):
            raise IndexError("pop from an empty IdList")
        ident = self._ids[self._head]
        self._head += 1
        if self._head >= 1024 and 2 * self._head >= len(self._ids):
            del self._ids[: self._head]
            self._head = 0
        return ident

    def remove(self, ident: int) -> None:
        """Drop ``ident`` wherever it is (ValueError if it is not here)."""
        at = self._ids.index(ident, self._head)
        del self._ids[at]

    def __len__(self) -> int:
        return len(self._ids) - self._head

    def __getitem__(self, index: int) -> int:
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        return self._ids[self._head + index if index >= 0 else index]

    def __iter__(self) -> Iterator[int]:
        ids, head = self._ids, self._head
        return (ids[i] for i in range(head, len(ids))) if head else iter(ids)

    def __reversed__(self) -> Iterator[int]:
        ids, head = self._ids, self._head
        return (ids[i] for i in range(len(ids) - 1, head - 1, -1))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdList) and list(self) == list(other)

    def __repr__(self) -> str:
        return f"IdList({list(self)})"


@dataclass(eq=False, slots=True)
class Entity:
    """One entity of set ``type.plural``, with id ``id``."""

    type: EntityType
    id: int
    fields: Mapping[str, Any]
    """A dict; an Observation's is read-only (:class:`.observations.Fields`)."""
    one: dict[str, int] = field(default_factory=dict)
    many: dict[str, IdList] = field(default_factory=dict)

    def path(self) -> str:
        """Its canonical address under the service root: ``Things(1)``."""
        return f"{self.type.plural}({self.id})"

    def linked(self, navigation: str) -> Iterable[int]:
        """The ids of the entities a to-many navigation property leads to, in id order."""
        return self.many.get(navigation, ())


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` and milliseconds, as SensorThings services write times."""
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def to_json(value: Any) -> Any:
    """A property value as JSON (times as ISO 8601 strings, intervals as ``start/end``)."""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, TimeInterval):
        return f"{iso(value.start)}/{iso(value.end)}"
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value
