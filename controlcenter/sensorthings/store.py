"""The entities of the service, indexed for the queries SensorThings clients make.

Plain Python indexes, not a database: every entity set is a dict by id (ids grow, so a dict's
order is id order) - but the Observations, which a run makes without end, are a table of typed
columns (:mod:`.observations`, under 100 bytes each). Every link is kept on both sides - a
Datastream knows its Observations' ids in order, a Thing its Datastreams' - so
``Datastreams(3)/Observations`` walks one list instead of filtering every Observation.
Observations are kept up to ``max_observations``; past that the oldest go first (from every
list at once: the oldest Observation is also the oldest of its Datastream and of its
FeatureOfInterest).

Not thread-safe: the control center owns it on its event loop (the simulation's records are
handed there), which is also where the API reads it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

from controlcenter.sensorthings.model import TYPES, Entity, IdList, TimeInterval
from controlcenter.sensorthings.observations import ObservationTable

MAX_OBSERVATIONS = 500_000
"""Kept by default: a 1 h run of the 34-signal district makes about 30 000, and 500,000 take
about 40 MB (see :mod:`.observations`)."""

# Each link's other side: (entity set, navigation property) -> the navigation property back.
_REVERSE: dict[tuple[str, str], str] = {
    ("Things", "Locations"): "Things",
    ("Things", "Datastreams"): "Thing",
    ("Things", "HistoricalLocations"): "Thing",
    ("Locations", "HistoricalLocations"): "Locations",
    ("Datastreams", "Sensor"): "Datastreams",
    ("Datastreams", "ObservedProperty"): "Datastreams",
    ("Datastreams", "Observations"): "Datastream",
    ("Observations", "FeatureOfInterest"): "Observations",
}
for (_set, _nav), _back in list(_REVERSE.items()):
    _REVERSE[(TYPES[_set].target(_nav) or "", _back)] = _nav


def reverse_navigation(entity_set: str, navigation: str) -> str | None:
    """The navigation property that leads back from where ``navigation`` of ``entity_set`` leads
    (``Observations``, ``Datastream`` -> ``Observations``); None if it is not a link."""
    return _REVERSE.get((entity_set, navigation))


ChangeListener = Callable[[Entity, tuple[str, ...] | None], None]
"""Called with an entity just created (``None``) or the names of the properties just updated."""


class SensorThingsStore:
    """Every entity of the service. ``max_observations`` bounds the memory a long run takes."""

    def __init__(self, max_observations: int = MAX_OBSERVATIONS) -> None:
        if max_observations < 1:
            raise ValueError(f"max_observations {max_observations}: expected at least 1")
        self.max_observations = max_observations
        self._made: dict[str, dict[int, Entity]] = {name: {} for name in TYPES if name != "Observations"}
        """Every entity set but the Observations, as dicts."""
        self.observations = ObservationTable()
        self.sets: dict[str, Mapping[int, Entity]] = {**self._made, "Observations": self.observations}
        self._next_id: dict[str, int] = dict.fromkeys(TYPES, 1)
        self._listeners: list[ChangeListener] = []
        self.evicted = 0
        self._last_start: dict[int, datetime] = {}
        self.unordered: set[int] = set()
        """Datastreams whose Observations did not arrive in phenomenonTime order (none so far:
        each device reports its periods in order); queries cannot walk those by id."""

    def entities(self, entity_set: str) -> Mapping[int, Entity]:
        return self.sets[entity_set]

    def get(self, entity_set: str, ident: int) -> Entity | None:
        return self.sets[entity_set].get(ident)

    def follow(self, entity: Entity, navigation: str) -> Entity | None:
        """The entity a to-one navigation property leads to."""
        target = entity.type.to_one.get(navigation)
        ident = entity.one.get(navigation)
        return None if target is None or ident is None else self.sets[target].get(ident)

    def members(self, entity: Entity, navigation: str) -> Iterator[Entity]:
        """The entities a to-many navigation property leads to, in id order."""
        target = self.sets[entity.type.to_many[navigation]]
        for ident in entity.linked(navigation):
            member = target.get(ident)
            if member is not None:
                yield member

    def subscribe(self, listener: ChangeListener) -> None:
        """Call ``listener`` with every entity created from now on (and ``None``), and every
        entity updated (and the properties that changed) - what MQTT subscribers receive. An
        entity is announced once made, before :meth:`link` adds the links made after it."""
        self._listeners.append(listener)

    def _changed(self, entity: Entity, properties: tuple[str, ...] | None) -> None:
        for listener in self._listeners:
            listener(entity, properties)

    # --- writing ---------------------------------------------------------------------------------

    def add(self, entity_set: str, fields: dict[str, Any], **links: Entity) -> Entity:
        """A new entity of ``entity_set``, linked to ``links`` (navigation property -> entity;
        the link is kept on both sides). Observations are made by :meth:`observe`."""
        if entity_set not in self._made:
            raise ValueError(f"{entity_set}: made by observe(), not add()")
        ident = self._next_id[entity_set]
        self._next_id[entity_set] = ident + 1
        entity = Entity(TYPES[entity_set], ident, fields)
        self._made[entity_set][ident] = entity
        for navigation, other in links.items():
            self.link(entity, navigation, other)
        self._changed(entity, None)
        return entity

    def link(self, entity: Entity, navigation: str, other: Entity) -> None:
        back = _REVERSE[(entity.type.plural, navigation)]
        for a, nav, b in ((entity, navigation, other), (other, back, entity)):
            if nav in a.type.to_one:
                a.one[nav] = b.id
            else:
                a.many.setdefault(nav, IdList()).append(b.id)

    def observe(
        self,
        datastream: Entity,
        feature: Entity,
        phenomenon: datetime | TimeInterval,
        result: Any,
        parameters: dict[str, Any] | None = None,
    ) -> Entity:
        """A new Observation of ``datastream`` on ``feature``; its result time is the end of its
        phenomenon time (when it was known). Updates the Datastream's phenomenon and result time."""
        end = phenomenon.end if isinstance(phenomenon, TimeInterval) else phenomenon
        start = phenomenon.start if isinstance(phenomenon, TimeInterval) else phenomenon
        ident = self.observations.append(datastream.id, feature.id, phenomenon, result,
                                         parameters or None)  # fmt: skip
        for owner in (datastream, feature):
            owner.many.setdefault("Observations", IdList()).append(ident)
        observation = self.observations.copy(ident)  # announced, and may outlive its row
        self._changed(observation, None)
        if start < self._last_start.get(datastream.id, start):
            self.unordered.add(datastream.id)
        self._last_start[datastream.id] = start
        span = datastream.fields.get("phenomenonTime")
        if isinstance(span, TimeInterval):
            span = TimeInterval(min(span.start, start), max(span.end, end))
        else:
            span = TimeInterval(start, end)
        if span != datastream.fields.get("phenomenonTime"):
            fields = datastream.fields
            assert isinstance(fields, dict)  # every set's but the Observations'
            fields["phenomenonTime"] = span
            fields["resultTime"] = span
            self._changed(datastream, ("phenomenonTime", "resultTime"))
        self._evict()
        return observation

    def _evict(self) -> None:
        observations = self.observations
        while len(observations) > self.max_observations:
            oldest, *owners = observations.evict_oldest()
            self.evicted += 1
            for entity_set, ident in zip(("Datastreams", "FeaturesOfInterest"), owners, strict=True):
                owner = self._made[entity_set].get(ident)
                if owner is None:
                    continue
                ids = owner.many["Observations"]
                if ids and ids[0] == oldest:
                    ids.popleft()
                else:
                    ids.remove(oldest)
