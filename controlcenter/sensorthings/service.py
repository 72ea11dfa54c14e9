"""Answering a SensorThings request: resolve the resource path, apply the query options, write
the JSON the standard prescribes. Pure: a path, the options and the base URL in, a JSON-able
answer out (the router does the HTTP).

Addressing (SensorThings API 1.1, 9.2): ``/Things``, ``/Things(1)``, navigation to one or many
(``/Datastreams(3)/Thing``, ``/Things(1)/Datastreams``, chained: ``/Datastreams(3)/Thing/Locations``),
a property (``/Things(1)/name``) and its raw value (``/Things(1)/name/$value``), and references
(``/Things(1)/Datastreams/$ref``).

One request writes at most :data:`MAX_ENTITIES` entities, those of ``$expand`` included (an
expanded collection gives 100 unless its ``$top`` says otherwise): more is a 400 asking for a
smaller ``$top``, so that one query cannot keep the service busy for seconds.
"""

from __future__ import annotations

import heapq
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Reversible
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from controlcenter.sensorthings.expr import Path, QueryError, article, sort_key
from controlcenter.sensorthings.model import ENTITY_SETS, TYPES, Entity, EntityType, to_json
from controlcenter.sensorthings.options import MAX_TOP, Query, read_query
from controlcenter.sensorthings.store import SensorThingsStore

MAX_ENTITIES = 10_000
"""Entities one response may hold, nested ones included."""
_SEGMENT = re.compile(r"^(?P<name>[A-Za-z]+)(?:\((?P<id>[^)]*)\))?$")
SENSING_CORE = "http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel"
RESOURCE_PATH = "http://www.opengis.net/spec/iot_sensing/1.1/req/resource-path/resource-path-to-entities"
FILTERING = "http://www.opengis.net/spec/iot_sensing/1.1/req/request-data"
MQTT_RECEIVE = "http://www.opengis.net/spec/iot_sensing/1.1/req/receive-updates-via-mqtt/receive-updates"


@dataclass(frozen=True)
class Answer:
    body: Any
    """JSON-able, or text for ``$value``."""
    text: bool = False


@dataclass(frozen=True)
class Source:
    """The entities a collection holds: all of ``entity_set``, or those ``owner`` links to by
    ``navigation`` - in id order either way."""

    entity_set: str
    owner: Entity | None = None
    navigation: str = ""

    def ids(self, store: SensorThingsStore) -> Iterable[int]:
        """The ids; reversible without a copy (an entity set's mapping, a link's id list)."""
        if self.owner is None:
            return store.entities(self.entity_set)
        return self.owner.linked(self.navigation)

    def time_ordered(self, store: SensorThingsStore) -> bool:
        """True when id order is also phenomenonTime order (one Datastream's Observations)."""
        owner = self.owner
        return (
            owner is not None
            and owner.type.plural == "Datastreams"
            and self.navigation == "Observations"
            and owner.id not in store.unordered
        )


class SensorThingsService:
    """The read side of the service over ``store``. ``conformance``: the classes it declares."""

    def __init__(self, store: SensorThingsStore, conformance: list[str],
                 settings: dict[str, Any] | None = None) -> None:  # fmt: skip
        self.store = store
        self.conformance = conformance
        self.settings = settings or {}

    def root(self, base: str) -> dict[str, Any]:
        return {
            "value": [{"name": name, "url": f"{base}/{name}"} for name in ENTITY_SETS],
            "serverSettings": {"conformance": self.conformance, **self.settings},
        }

    def get(self, path: str, params: Mapping[str, str], base: str) -> Answer:
        """Answer ``GET {base}/{path}?{params}``; raises :class:`QueryError` (400/404), also
        for what evaluating the query failed on in a way not foreseen (never a 500)."""
        try:
            return self._get(path, params, base)
        except QueryError:
            raise
        except (ValueError, ArithmeticError, RecursionError, TypeError) as exc:
            raise QueryError(f"cannot evaluate the request: {type(exc).__name__}: {exc}") from None

    def _get(self, path: str, params: Mapping[str, str], base: str) -> Answer:
        segments = [s for s in path.strip("/").split("/") if s]
        if not segments:
            return Answer(self.root(base))
        resource = self._resolve(segments)
        if isinstance(resource, _Collection):
            query = read_query(params, TYPES[resource.source.entity_set], self.store)
            if resource.ref:
                query.select = ["id"]
            return Answer(self.collection(resource.source, query, base, params, resource.ref))
        if isinstance(resource, _Property):
            entity = resource.entity
            value = entity.id if resource.name == "id" else to_json(entity.fields.get(resource.name))
            if resource.raw:
                if value is None:
                    raise QueryError(f"{resource.entity.path()}/{resource.name}: no value", 404)
                return Answer(value if isinstance(value, str) else json.dumps(value), text=True)
            return Answer({resource.name: value})
        if resource.ref:
            return Answer({"@iot.selfLink": f"{base}/{resource.entity.path()}"})
        query = read_query(params, resource.entity.type, self.store)
        return Answer(self.render(resource.entity, query, base))

    # --- resolving the path ----------------------------------------------------------------------

    def _resolve(self, segments: list[str]) -> _Resource:
        first = _SEGMENT.match(segments[0])
        if first is None or first.group("name") not in TYPES:
            raise QueryError(f"no entity set '{segments[0]}'; there are {', '.join(ENTITY_SETS)}", 404)
        entity_set = first.group("name")
        resource: _Resource
        if first.group("id") is None:
            resource = _Collection(Source(entity_set))
        else:
            resource = _Entity(self._entity(entity_set, first.group("id")))
        for k, segment in enumerate(segments[1:], start=1):
            where = "/".join(segments[: k + 1])
            resource = self._step(resource, segment, where)
        return resource

    def _entity(self, entity_set: str, text: str) -> Entity:
        ident = text.strip()
        if not (ident.isascii() and ident.isdecimal()) or len(ident) > 18:
            raise QueryError(f"{entity_set}({text}): ids here are whole numbers", 404)
        entity = self.store.get(entity_set, int(ident))
        if entity is None:
            raise QueryError(f"{entity_set}({ident}): no such {TYPES[entity_set].name}", 404)
        return entity

    def _step(self, resource: _Resource, segment: str, where: str) -> _Resource:
        if segment == "$ref" and not getattr(resource, "ref", True):
            if isinstance(resource, _Collection):
                return _Collection(resource.source, ref=True)
            if isinstance(resource, _Entity):
                return _Entity(resource.entity, ref=True)
        if isinstance(resource, _Property) and segment == "$value" and not resource.raw:
            return _Property(resource.entity, resource.name, raw=True)
        if isinstance(resource, _Entity) and not resource.ref:
            entity = resource.entity
            kind = entity.type
            if segment in kind.to_one:
                other = self.store.follow(entity, segment)
                if other is None:
                    raise QueryError(f"{where}: the {kind.name} has no {segment}", 404)
                return _Entity(other)
            if segment in kind.to_many:
                return _Collection(Source(kind.to_many[segment], entity, segment))
            if segment in kind.properties or segment == "id":
                return _Property(entity, segment)
            known = ", ".join([*kind.properties, *kind.navigation()])
            raise QueryError(f"{where}: {article(kind.name)} has no '{segment}'; it has {known}", 404)
        raise QueryError(f"{where}: nothing is addressed by '{segment}' here", 404)

    # --- collections -----------------------------------------------------------------------------

    def select(self, source: Source, query: Query) -> tuple[list[Entity], int | None, bool]:
        """The page of ``source`` that ``query`` asks for: (entities, total count if
        ``$count=true``, whether more follow)."""
        entities = self.store.entities(source.entity_set)
        keep = query.filter
        ids = self._candidates(source, query)
        order = _walk_order(query, source, self.store)
        if order is not None:  # id order (or the reverse): stream, stop once the page is full
            walked = ids
            if order:  # without copying every id when they walk backwards ("the latest value")
                walked = reversed(ids) if isinstance(ids, Reversible) else reversed(list(ids))
            matches: Iterator[Entity] = (
                e
                for e in (entities.get(i) for i in walked)
                if e is not None and (keep is None or keep(e))
            )
            page, count, more = _page(matches, query)
            return page, count, more
        pool = [e for e in (entities.get(i) for i in ids) if e is not None]
        if keep is not None:
            pool = [e for e in pool if keep(e)]
        for evaluate, descending in reversed(query.orderby):  # stable: the last key first
            pool.sort(key=lambda e, f=evaluate: sort_key(f(e)), reverse=descending)  # type: ignore[misc]
        end = query.skip + query.limit
        more = len(pool) > end and query.limit > 0
        return pool[query.skip : end], len(pool) if query.count else None, more

    def _candidates(self, source: Source, query: Query) -> Iterable[int]:
        """The ids the filter must look at, in id order: for all Observations filtered on their
        Datastream, only the Observations of the Datastreams that pass."""
        streams = query.by_datastream
        if streams is None or source.owner is not None or source.entity_set != "Observations":
            return source.ids(self.store)
        datastreams = self.store.entities("Datastreams").values()
        lists = [d.linked("Observations") for d in datastreams if streams(d)]
        return lists[0] if len(lists) == 1 else heapq.merge(*lists)  # one: walks backwards too

    def collection(
        self, source: Source, query: Query, base: str, params: Mapping[str, str], ref: bool = False
    ) -> dict[str, Any]:
        page, count, more = self.select(source, query)
        out: dict[str, Any] = {}
        if count is not None:
            out["@iot.count"] = count
        budget = _Budget()
        out["value"] = [self.render(e, query, base, budget) for e in page]
        if more:
            path = (
                source.entity_set
                if source.owner is None
                else f"{source.owner.path()}/{source.navigation}"
            )
            out["@iot.nextLink"] = _next_link(f"{base}/{path}{'/$ref' if ref else ''}", params, query)
        return out

    # --- entities --------------------------------------------------------------------------------

    def render(
        self, entity: Entity, query: Query, base: str, budget: _Budget | None = None
    ) -> dict[str, Any]:
        budget = budget or _Budget()
        budget.take()
        kind = entity.type
        link = f"{base}/{entity.path()}"
        out: dict[str, Any] = {}
        if query.selects("id"):
            out["@iot.id"] = entity.id
            out["@iot.selfLink"] = link
        for name in kind.properties:
            if query.selects(name):
                value = entity.fields.get(name)
                if value is not None or name in kind.required:
                    out[name] = to_json(value)
        for navigation in kind.navigation():
            if query.select is None or navigation in query.select:
                out[f"{navigation}@iot.navigationLink"] = f"{link}/{navigation}"
        for navigation, nested in query.expand.items():
            if navigation in kind.to_one:
                other = self.store.follow(entity, navigation)
                out[navigation] = None if other is None else self.render(other, nested, base, budget)
                continue
            source = Source(kind.to_many[navigation], entity, navigation)
            page, count, more = self.select(source, nested)
            if count is not None:
                out[f"{navigation}@iot.count"] = count
            out[navigation] = [self.render(e, nested, base, budget) for e in page]
            if more:
                out[f"{navigation}@iot.nextLink"] = _next_link(
                    f"{link}/{navigation}", nested.raw, nested
                )
        return out


@dataclass
class _Budget:
    """The entities one answer may still write (see :data:`MAX_ENTITIES`)."""

    left: int = MAX_ENTITIES

    def take(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise QueryError(
                f"the answer would hold more than {MAX_ENTITIES} entities (counting those of "
                f"$expand); ask for fewer with $top, on the collection and in $expand "
                f"(an expanded collection gives 100 unless its $top says otherwise)"
            )


@dataclass(frozen=True)
class _Collection:
    source: Source
    ref: bool = False


@dataclass(frozen=True)
class _Entity:
    entity: Entity
    ref: bool = False


@dataclass(frozen=True)
class _Property:
    entity: Entity
    name: str
    raw: bool = False


_Resource = _Collection | _Entity | _Property


def _walk_order(query: Query, source: Source, store: SensorThingsStore) -> bool | None:
    """None if the page needs sorting; else whether walking the ids backwards gives the order
    asked for (no ``$orderby``, or one by id, or by phenomenonTime within one Datastream)."""
    if not query.orderby:
        return False
    if len(query.orderby_nodes) != 1:
        return None
    node, descending = query.orderby_nodes[0]
    if not isinstance(node, Path):
        return None
    if node.segments in (("id",), ("@iot.id",)):
        return descending
    if node.segments == ("phenomenonTime",) and source.time_ordered(store):
        return descending
    return None


def _page(matches: Iterator[Entity], query: Query) -> tuple[list[Entity], int | None, bool]:
    page: list[Entity] = []
    seen = 0
    end = query.skip + query.limit
    for entity in matches:
        seen += 1
        if seen > end:
            if not query.count:
                return page, None, query.limit > 0
            continue
        if seen > query.skip:
            page.append(entity)
    return page, seen if query.count else None, seen > end and query.limit > 0


def _next_link(url: str, params: Mapping[str, str], query: Query) -> str:
    options = {k: v for k, v in params.items() if k.startswith("$")}
    beyond = query.top is not None and query.top > MAX_TOP  # the rest of what was asked for
    options["$top"] = str(query.top - query.limit if beyond and query.top else query.limit)
    options["$skip"] = str(query.skip + query.limit)
    return f"{url}?{urlencode(options, quote_via=quote, safe='(),;/$=:')}"


__all__ = ["FILTERING", "MQTT_RECEIVE", "RESOURCE_PATH", "SENSING_CORE", "Answer",
           "EntityType", "SensorThingsService", "Source"]  # fmt: skip
