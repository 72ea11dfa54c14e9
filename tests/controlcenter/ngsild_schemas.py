"""Checking NGSI-LD entities against the vendored Smart Data Models JSON Schemas, offline.

The registry holds only the vendored files, under the URLs the schemas ``$ref`` them by, and
has no way to fetch anything else: a reference it cannot resolve fails the check instead of
going to the network. Formats are asserted (``date-time`` by rfc3339-validator, ``uri`` by
rfc3986-validator), not just annotated.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from controlcenter.ngsild.models import MODELS, SCHEMA_FILES, schema_folder

FORMATS = Draft202012Validator.FORMAT_CHECKER


@cache
def registry() -> Registry[Any]:
    folder = schema_folder()
    resources = [
        (url, Resource.from_contents(json.loads(folder.joinpath(path).read_text("utf-8")),
                                     default_specification=DRAFT202012))
        for url, path in SCHEMA_FILES.items()
    ]  # fmt: skip
    return Registry().with_resources(resources)


@cache
def validator(type_name: str) -> Draft202012Validator:
    schema = json.loads(schema_folder().joinpath(MODELS[type_name].schema).read_text("utf-8"))
    return Draft202012Validator(schema, registry=registry(), format_checker=FORMATS)


def errors_of(entity: dict[str, Any]) -> list[str]:
    """What the entity's model finds wrong with a key-values entity (empty: valid)."""
    body = {k: v for k, v in entity.items() if k != "@context"}
    found = validator(entity["type"]).iter_errors(body)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(entity)'}: {e.message}" for e in found]


def location_schema() -> Draft202012Validator:
    """The common schema's GeoJSON geometry (a GeoProperty's value)."""
    ref = "https://smart-data-models.github.io/data-models/common-schema.json#/definitions/Location-Commons/properties/location"
    return Draft202012Validator({"$ref": ref}, registry=registry(), format_checker=FORMATS)


def normalized_errors(entity: dict[str, Any]) -> list[str]:
    """What is wrong with a normalized entity: the structure of each attribute, and then its
    key-values projection against the model."""
    problems: list[str] = []
    projection: dict[str, Any] = {"id": entity["id"], "type": entity["type"]}
    for name, attr in entity.items():
        if name in ("id", "type", "@context"):
            continue
        if not isinstance(attr, dict) or attr.get("type") not in (
            "Property",
            "GeoProperty",
            "Relationship",
        ):
            problems.append(f"{name}: not a Property, GeoProperty or Relationship: {attr!r}")
            continue
        if attr["type"] == "Relationship":
            target = attr.get("object")
            if not (isinstance(target, str) and FORMATS.conforms(target, "uri")):
                problems.append(f"{name}: a Relationship's object must be a URI, not {target!r}")
            projection[name] = target
            continue
        if "value" not in attr:
            problems.append(f"{name}: a {attr['type']} without a value")
            continue
        if attr["type"] == "GeoProperty":
            problems += [f"{name}: {e.message}" for e in location_schema().iter_errors(attr["value"])]
        if "observedAt" in attr and not FORMATS.conforms(attr["observedAt"], "date-time"):
            problems.append(f"{name}: observedAt {attr['observedAt']!r} is not a date-time")
        if "unitCode" in attr and not (isinstance(attr["unitCode"], str) and attr["unitCode"]):
            problems.append(f"{name}: unitCode {attr['unitCode']!r}")
        projection[name] = attr["value"]
    return problems + errors_of(projection)
