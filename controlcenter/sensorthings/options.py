"""The query options of a request (``$filter $select $expand $orderby $top $skip $count``),
read and checked against the entity type they apply to, nested ``$expand`` options included:
``$expand=Datastreams($select=name;$top=1;$expand=Observations($orderby=phenomenonTime desc))``
or the short path form ``$expand=Datastreams/Observations``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from controlcenter.sensorthings.expr import (
    Evaluator,
    Node,
    QueryError,
    article,
    check_condition,
    compile_node,
    condition,
    link_condition,
    parse_filter,
    parse_orderby,
)
from controlcenter.sensorthings.model import TYPES, Entity, EntityType
from controlcenter.sensorthings.store import SensorThingsStore

DEFAULT_TOP = 100
MAX_TOP = 1000
"""A larger ``$top`` is cut to this, with an ``@iot.nextLink`` to the rest (as the standard
allows a service to do)."""
MAX_EXPAND_DEPTH = 10
"""``$expand`` nested in ``$expand`` at most this deep."""
_MAX_DIGITS = 18
"""``$top`` and ``$skip`` at most this long (a larger ``$top`` is cut to :data:`MAX_TOP` anyway)."""
OPTIONS = ("$filter", "$select", "$expand", "$orderby", "$top", "$skip", "$count")


@dataclass
class Query:
    """The options for one entity type; ``expand`` maps a navigation property to its own."""

    entity_type: EntityType
    filter: Callable[[Entity], bool | None] | None = None
    by_datastream: Evaluator | None = None
    """Of a filter on Observations, the part about their Datastream, as a condition on
    Datastreams: the candidates are then the Observations of the Datastreams that pass it."""
    orderby: list[tuple[Evaluator, bool]] = field(default_factory=list)
    orderby_nodes: list[tuple[Node, bool]] = field(default_factory=list)
    select: list[str] | None = None
    expand: dict[str, Query] = field(default_factory=dict)
    top: int | None = None
    skip: int = 0
    count: bool = False
    raw: dict[str, str] = field(default_factory=dict)
    """The options as given (for the ``@iot.nextLink`` of an expanded collection)."""

    @property
    def limit(self) -> int:
        return min(MAX_TOP, DEFAULT_TOP if self.top is None else self.top)

    def selects(self, name: str) -> bool:
        return self.select is None or name in self.select


def read_query(params: Mapping[str, str], entity_type: EntityType, store: SensorThingsStore) -> Query:
    """The options of the request's query string (other parameters are not the service's)."""
    options = {k: v for k, v in params.items() if k.startswith("$")}
    return _query(options, entity_type, store, "")


def _query(options: Mapping[str, str], entity_type: EntityType, store: SensorThingsStore,
           where: str, depth: int = 0) -> Query:  # fmt: skip
    if depth > MAX_EXPAND_DEPTH:
        raise QueryError(f"{where}: $expand nested more than {MAX_EXPAND_DEPTH} deep")
    query = Query(entity_type, raw=dict(options))
    for name, value in options.items():
        option = f"{where}{name}"
        if name not in OPTIONS:
            supported = " ".join(OPTIONS)
            raise QueryError(f"{option}: not a query option this service supports ({supported})")
        if name == "$filter":
            node = parse_filter(value, option)
            check_condition(node, value, option)
            query.filter = condition(compile_node(node, entity_type, store, option), node)
            streams = (
                link_condition(node, "Datastream") if entity_type.plural == "Observations" else None
            )
            if streams is not None:
                query.by_datastream = condition(
                    compile_node(streams, TYPES["Datastreams"], store, option), streams
                )
        elif name == "$orderby":
            query.orderby_nodes = parse_orderby(value)
            query.orderby = [
                (compile_node(node, entity_type, store, option), descending)
                for node, descending in query.orderby_nodes
            ]
        elif name in ("$top", "$skip"):
            number = value.strip()
            if not (number.isascii() and number.isdecimal()) or len(number) > _MAX_DIGITS:
                raise QueryError(
                    f"{option}={value[:40]!r}: expected a whole number, 0 or more, of at most "
                    f"{_MAX_DIGITS} digits"
                )
            if name == "$top":
                query.top = int(number)
            else:
                query.skip = int(number)
        elif name == "$count":
            if value not in ("true", "false"):
                raise QueryError(f"{option}={value!r}: expected true or false")
            query.count = value == "true"
        elif name == "$select":
            query.select = _select(value, entity_type, option)
        else:
            for item in split_top(value, ",", option):
                _expand_item(query, item, store, option, depth)
    return query


def _select(value: str, entity_type: EntityType, option: str) -> list[str]:
    names = [n.strip() for n in value.split(",")]
    allowed = {"id", *entity_type.properties, *entity_type.navigation()}
    for name in names:
        if name not in allowed:
            known = ", ".join(["id", *entity_type.properties, *entity_type.navigation()])
            raise QueryError(f"{option}: {article(entity_type.name)} has no '{name}'; it has {known}")
    return names


def _expand_item(query: Query, item: str, store: SensorThingsStore, option: str,
                 depth: int) -> None:  # fmt: skip
    item = item.strip()
    path, _, rest = item.partition("(")
    inner: dict[str, str] = {}
    if rest:
        if not rest.endswith(")"):
            raise QueryError(f"{option}: '{item}': expected the options in one pair of parentheses")
        for part in split_top(rest[:-1], ";", option):
            name, eq, value = part.strip().partition("=")
            if not eq:
                raise QueryError(f"{option}: '{part}': expected $option=value")
            if name in inner:
                raise QueryError(f"{option}: {name} given twice in '{item}'")
            inner[name] = value
    segments = [s.strip() for s in path.split("/")]
    if depth + len(segments) > MAX_EXPAND_DEPTH:
        raise QueryError(f"{option}: $expand nested more than {MAX_EXPAND_DEPTH} deep")
    current = query
    for k, navigation in enumerate(segments):
        target = current.entity_type.target(navigation)
        if target is None:
            known = ", ".join(current.entity_type.navigation())
            raise QueryError(
                f"{option}: {article(current.entity_type.name)} has no navigation property "
                f"'{navigation}'; it has {known}"
            )
        last = k == len(segments) - 1
        nested = current.expand.get(navigation)
        if nested is None or last:
            where = f"{option}({navigation})/"
            opts = inner if last else {}
            nested = _query(opts, TYPES[target], store, where, depth + 1)
            if last and navigation in current.expand:  # the path form already asked for its children
                nested.expand = {**current.expand[navigation].expand, **nested.expand}
            current.expand[navigation] = nested
        current = nested


def split_top(text: str, separator: str, option: str) -> list[str]:
    """``text`` split at ``separator`` outside parentheses and quoted strings."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, char in enumerate(text):
        if char == "'":
            quoted = not quoted
        elif quoted:
            continue
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise QueryError(f"{option}: unbalanced ')' in {text!r}")
        elif char == separator and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth or quoted:
        raise QueryError(f"{option}: unclosed parenthesis or quote in {text!r}")
    parts.append(text[start:])
    if any(not p.strip() for p in parts):
        raise QueryError(f"{option}: empty item in {text!r}")
    return parts
