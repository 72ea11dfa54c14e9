"""What an MQTT subscriber receives (SensorThings API 1.1, 14.2 "Receive updates via MQTT"): the
topics a created or updated entity is published on, and the JSON on each. Pure: changes in,
(topic, payload) pairs out; :mod:`.mqtt` sends them.

The standard names four kinds of subscription, each under the version (``v1.1/``):

* an entity set, by any resource path to it - ``v1.1/Observations``,
  ``v1.1/Datastreams(3)/Observations``, ``v1.1/FeaturesOfInterest(5)/Observations``,
  ``v1.1/Things(1)/Datastreams``: every entity created in it, and every one updated, in full;
* one entity - ``v1.1/Datastreams(3)``: its updates in full (and here its creation too);
* one property - ``v1.1/Datastreams(3)/phenomenonTime``: ``{"phenomenonTime": ...}`` when it
  changes;
* an entity set with ``$select`` - ``v1.1/Datastreams(3)/Observations?$select=result,phenomenonTime``:
  the selected properties of each entity created or updated.

The control center publishes to a broker rather than being one, and a broker does not tell its
clients who subscribed to what. So every change goes to the whole canonical set of the first
three kinds (the entity set, each collection of a linked entity that holds it - one navigation
step -, the entity's own topic, and each property that changed); a ``$select`` topic is served
only when it was configured (``ccsim serve --sta-mqtt-select TOPIC``): the possible ones have no
end. Not published: deeper paths (``Things(1)/Datastreams(3)/Observations``) and to-one
navigation (``Datastreams(3)/Thing``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from controlcenter.sensorthings.expr import QueryError, article
from controlcenter.sensorthings.model import TYPES, Entity, EntityType, to_json
from controlcenter.sensorthings.options import Query, read_query
from controlcenter.sensorthings.service import SensorThingsService
from controlcenter.sensorthings.store import SensorThingsStore, reverse_navigation

VERSION = "v1.1"
_STEP = re.compile(r"^(?P<name>[A-Za-z]+)\((?P<id>[1-9]\d{0,17})\)$")
"""One step of a topic path; an id as the service writes it (no leading zero: a topic is matched
letter for letter, so Datastreams(01) would never be published on)."""

Message = tuple[str, bytes]


@dataclass(frozen=True)
class SelectTopic:
    """A ``$select`` topic served: ``topic`` as a client subscribes to it, ``path`` the topic it
    narrows (without the version), ``query`` what it selects."""

    topic: str
    path: str
    query: Query


def parse_select_topic(text: str, store: SensorThingsStore) -> SelectTopic:
    """``v1.1/PATH?$select=a,b`` where PATH is a topic this service publishes on (an entity set,
    a linked entity's collection, one entity) and a, b are properties of its entities; a
    ValueError names the topic and what is wrong."""
    prefix = f"{VERSION}/"
    path, mark, options = text.partition("?")
    if not path.startswith(prefix) or not mark:
        raise ValueError(
            f"SensorThings MQTT topic {text!r}: expected {prefix}PATH?$select=NAME,NAME, e.g. "
            f"{prefix}Datastreams(1)/Observations?$select=result,phenomenonTime"
        )
    path = path[len(prefix) :]
    entity_type = _topic_type(path, text)
    name, eq, value = options.partition("=")
    if name != "$select" or not eq or "&" in value:
        raise ValueError(
            f"SensorThings MQTT topic {text!r}: only $select is served on MQTT topics "
            f"(one option, ?$select=NAME,NAME), not {options!r}"
        )
    try:
        query = read_query({"$select": value}, entity_type, store)
    except QueryError as exc:
        raise ValueError(f"SensorThings MQTT topic {text!r}: {exc}") from None
    return SelectTopic(text, path, query)


def _topic_type(path: str, text: str) -> EntityType:
    """The entity type a topic path's messages are about: ``Observations``,
    ``Datastreams(1)/Observations`` (a to-many navigation) or ``Datastreams(1)``."""
    steps = path.split("/")
    what = f"SensorThings MQTT topic {text!r}"
    if len(steps) == 1 and steps[0] in TYPES:
        return TYPES[steps[0]]
    first = _STEP.match(steps[0])
    if first is None or first.group("name") not in TYPES or len(steps) > 2:
        raise ValueError(
            f"{what}: the path must be an entity set (Observations), an entity (Datastreams(1)) "
            f"or an entity's collection (Datastreams(1)/Observations); entity sets: "
            f"{', '.join(TYPES)}"
        )
    owner = TYPES[first.group("name")]
    if len(steps) == 1:
        return owner
    navigation = steps[1]
    if navigation not in owner.to_many:
        raise ValueError(
            f"{what}: {article(owner.name)} has no collection '{navigation}'; it has "
            f"{', '.join(owner.to_many) or 'none'}"
        )
    return TYPES[owner.to_many[navigation]]


class Changes:
    """The entities created or updated since :meth:`take`, each once, in the order first seen
    (an Observation before the Datastream it updated). Fed by the store's listener."""

    def __init__(self) -> None:
        self._pending: dict[tuple[str, int], tuple[Entity, set[str] | None]] = {}

    def note(self, entity: Entity, properties: tuple[str, ...] | None) -> None:
        key = (entity.type.plural, entity.id)
        known = self._pending.get(key)
        if properties is None:
            self._pending[key] = (entity, None)  # created: its first message has it all
        elif known is None:
            self._pending[key] = (entity, set(properties))
        elif known[1] is not None:
            known[1].update(properties)

    def take(self) -> list[tuple[Entity, set[str] | None]]:
        pending = list(self._pending.values())
        self._pending.clear()
        return pending

    def __len__(self) -> int:
        return len(self._pending)


def collection_paths(entity: Entity, store: SensorThingsStore) -> list[str]:
    """Every collection one navigation step long that holds ``entity``: its entity set, and each
    linked entity's collection of its kind (``Datastreams(3)/Observations``)."""
    paths = [entity.type.plural]
    kind = entity.type
    links: list[tuple[str, Iterable[int]]] = [(nav, (ident,)) for nav, ident in entity.one.items()]
    links += [(nav, entity.linked(nav)) for nav in kind.to_many]
    for navigation, idents in links:
        target = kind.target(navigation)
        back = reverse_navigation(kind.plural, navigation)
        if target is None or back is None or back not in TYPES[target].to_many:
            continue  # to-one on the other side: an entity path, not a collection
        paths += [f"{target}({ident})/{back}" for ident in idents]
    return paths


def messages(
    changes: Iterable[tuple[Entity, set[str] | None]],
    store: SensorThingsStore,
    service: SensorThingsService,
    base: str,
    selects: Mapping[str, list[SelectTopic]],
) -> list[Message]:
    """The (topic, JSON) pairs for ``changes`` (see the module docstring); ``base`` is the
    service's address for the selfLinks, ``selects`` the served ``$select`` topics by path."""
    out: list[Message] = []
    for entity, changed in changes:
        body = _json(service.render(entity, Query(entity.type), base))
        for path in [*collection_paths(entity, store), entity.path()]:
            out.append((f"{VERSION}/{path}", body))
            for select in selects.get(path, ()):
                out.append((select.topic, _json(service.render(entity, select.query, base))))
        for name in sorted(changed or ()):
            value = {name: to_json(entity.fields.get(name))}
            out.append((f"{VERSION}/{entity.path()}/{name}", _json(value)))
    return out


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
