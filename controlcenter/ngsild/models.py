"""The Smart Data Models ccsim publishes, and where their JSON Schemas and @contexts are.

Each entity type has a full name (its IRI in the Smart Data Models' @context), the @context that
defines its terms, and a JSON Schema vendored in ``schemas/`` (CC-BY-4.0, see
``schemas/ATTRIBUTION.md``). The schemas ``$ref`` each other by published URL;
:data:`SCHEMA_FILES` maps every such URL to its vendored copy, so a validator can resolve them
offline.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable

CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"
"""The NGSI-LD core @context (ETSI GS CIM 009), as the Smart Data Models examples cite it."""

_SDM_CONTEXT = "https://raw.githubusercontent.com/smart-data-models/dataModel.{}/master/context.jsonld"
_SDM_IRI = "https://smartdatamodels.org/dataModel.{}/{}"


@dataclass(frozen=True)
class Model:
    """One entity type: ``name`` as the entities carry it, its ``domain`` (dataModel.<domain>)."""

    name: str
    domain: str
    schema: str
    """Path of its JSON Schema under ``schemas/``."""

    @property
    def iri(self) -> str:
        """The type's full name, as the Smart Data Models' @context expands it."""
        return _SDM_IRI.format(self.domain, self.name)

    @property
    def context(self) -> str:
        return _SDM_CONTEXT.format(self.domain)


MODELS: dict[str, Model] = {
    m.name: m
    for m in (
        Model("TrafficFlowObserved", "Transportation",
              "dataModel.Transportation/TrafficFlowObserved/schema.json"),
        Model("ParkingSpot", "Parking", "dataModel.Parking/ParkingSpot/schema.json"),
        Model("OnStreetParking", "Parking", "dataModel.Parking/OnStreetParking/schema.json"),
        Model("OffStreetParking", "Parking", "dataModel.Parking/OffStreetParking/schema.json"),
        Model("AirQualityObserved", "Environment",
              "dataModel.Environment/AirQualityObserved/schema.json"),
        Model("Alert", "Alert", "dataModel.Alert/Alert/schema.json"),
    )
}  # fmt: skip

CONTEXT: list[str] = [
    *dict.fromkeys(m.context for m in MODELS.values()),
    CORE_CONTEXT,  # last: the core context's terms may not be overridden
]
"""The @context of every entity ccsim serves or pushes."""

SCHEMA_FILES: dict[str, str] = {
    "https://smart-data-models.github.io/data-models/common-schema.json":
        "data-models/common-schema.json",
    "https://smart-data-models.github.io/dataModel.Transportation/TrafficFlowObserved/schema.json":
        "dataModel.Transportation/TrafficFlowObserved/schema.json",
    "https://smart-data-models.github.io/dataModel.Parking/ParkingSpot/schema.json":
        "dataModel.Parking/ParkingSpot/schema.json",
    "https://smart-data-models.github.io/dataModel.Parking/OnStreetParking/schema.json":
        "dataModel.Parking/OnStreetParking/schema.json",
    "https://smart-data-models.github.io/dataModel.Parking/OffStreetParking/schema.json":
        "dataModel.Parking/OffStreetParking/schema.json",
    "https://smart-data-models.github.io/dataModel.Environment/AirQualityObserved/schema.json":
        "dataModel.Environment/AirQualityObserved/schema.json",
    "https://smart-data-models.github.io/dataModel.Environment/Environment-schema.json":
        "dataModel.Environment/Environment-schema.json",
    # AirQualityObserved refers to its domain's definitions by their raw GitHub address.
    "https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/Environment-schema.json":
        "dataModel.Environment/Environment-schema.json",
    "https://smart-data-models.github.io/dataModel.Alert/alert/schema.json":
        "dataModel.Alert/Alert/schema.json",
    "https://smart-data-models.github.io/dataModel.Alert/alert-schema.json":
        "dataModel.Alert/alert-schema.json",
    "https://smart-data-models.github.io/dataModel.Weather/weather-schema.json":
        "dataModel.Weather/weather-schema.json",
}  # fmt: skip
"""Every URL the vendored schemas refer to (or are known by) -> its file under ``schemas/``."""


def schema_folder() -> Traversable:
    return resources.files("controlcenter.ngsild").joinpath("schemas")


def model_of(type_name: str) -> Model | None:
    """The model a ``type`` query names: by its short name or its full IRI."""
    if type_name in MODELS:
        return MODELS[type_name]
    return next((m for m in MODELS.values() if m.iri == type_name), None)
