"""An entity as NGSI-LD JSON: normalized (the default) or key-values (``options=keyValues``).

Normalized, every attribute is an object saying what it is: a ``Property`` with its ``value``
(and ``observedAt``, ``unitCode`` where known), a ``GeoProperty`` whose value is GeoJSON, a
``Relationship`` with the ``object`` it points to. Key-values keeps just the values - the shape
the Smart Data Models' JSON Schemas describe. Both carry ``@context`` only when asked for JSON-LD
(``application/ld+json``); plain JSON gets it in a ``Link`` header instead.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from controlcenter.ngsild.entities import Entity


def key_values(
    entity: Entity, attrs: Collection[str] | None = None, context: list[str] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"id": entity.id, "type": entity.type}
    for name, attr in entity.attrs.items():
        if attrs is None or name in attrs:
            out[name] = attr.value
    if context is not None:
        out["@context"] = context
    return out


def normalized(
    entity: Entity, attrs: Collection[str] | None = None, context: list[str] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"id": entity.id, "type": entity.type}
    for name, attr in entity.attrs.items():
        if attrs is not None and name not in attrs:
            continue
        if attr.kind == "Relationship":
            item: dict[str, Any] = {"type": "Relationship", "object": attr.value}
        else:
            item = {"type": attr.kind, "value": attr.value}
        if attr.observed_at is not None:
            item["observedAt"] = attr.observed_at
        if attr.unit is not None:
            item["unitCode"] = attr.unit
        out[name] = item
    if context is not None:
        out["@context"] = context
    return out


FORMATS = {"normalized": normalized, "keyValues": key_values}
