"""The SensorThings API 1.1 data model (Sensing part): its eight entity types, their properties
and their navigation properties, and how values are written in JSON.

An :class:`Entity` keeps its properties typed (times as aware ``datetime`` or
:class:`TimeInterval`, so that ``$filter`` and ``$orderby`` compare them as times) and its links
as ids: ``one`` for a navigation property naming one entity (``Datastream/Thing``), ``many`` for
one naming a collection (``Thing/Datastreams``), kept in id order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
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


@dataclass(eq=False, slots=True)
class Entity:
    """One entity of set ``type.plural``, with id ``id``."""

    type: EntityType
    id: int
    fields: dict[str, Any]
    one: dict[str, int] = field(default_factory=dict)
    many: dict[str, deque[int]] = field(default_factory=dict)

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
