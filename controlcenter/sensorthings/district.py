"""The district as SensorThings entities, and the run's messages as their Observations.

Things (each with its Location, one HistoricalLocation and one FeatureOfInterest - the place it
observes):

* every signalised **intersection**: Datastreams *signal phase* (each switch), *mean queue* and
  *longest queue* (each KPI interval), and *pedestrians crossing* where the run counts them;
* every **parking zone** (when the scenario has parking): *occupied bays* as the bay sensors
  report them (never the true occupancy: a city would not have it), and *price* with pricing on;
* every **air-quality station**: *NOx*, *PM10* and *CO2* (1-minute means) and the *air quality
  index* (1-hour, with its category).

The devices a run deploys (stations, pedestrian counters) become entities when the run says so
(``devices.deployed``). Times: simulation time ``t`` (s) is ``epoch + t``; each Observation
keeps ``t`` in ``parameters.t_s``. A new run of the same server moves ``epoch`` past the ended
run's last time, so a Datastream's Observations stay in time order across runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from controlcenter.geojson import NetworkMap
from controlcenter.sensorthings.geo import Projection
from controlcenter.sensorthings.model import Entity, TimeInterval
from controlcenter.sensorthings.store import SensorThingsStore
from sim.scenario import Scenario

_OM = "http://www.opengis.net/def/observationType/OGC-OM/2.0/"
MEASUREMENT, COUNT, ANY = f"{_OM}OM_Measurement", f"{_OM}OM_CountObservation", f"{_OM}OM_Observation"
GEOJSON = "application/geo+json"
_UCUM = "http://unitsofmeasure.org/ucum.html"


def _unit(name: str | None, symbol: str | None, definition: str | None = _UCUM) -> dict[str, Any]:
    return {"name": name, "symbol": symbol, "definition": definition}


@dataclass(frozen=True)
class StreamSpec:
    """One kind of Datastream: what it observes, with which sensor, in which unit."""

    name: str
    description: str
    observed_property: str
    sensor: str
    unit: dict[str, Any]
    observation_type: str


OBSERVED_PROPERTIES: dict[str, tuple[str, str, str]] = {  # key -> name, definition, description
    "phase": ("signal phase", "https://sumo.dlr.de/docs/Simulation/Traffic_Lights.html",
              "The phase a traffic signal shows: its index in the program, and the state of each link"),
    "queue": ("queue length", "https://en.wikipedia.org/wiki/Queue_length",
              "Vehicles halting (below 0.1 m/s) on an intersection's incoming lanes, summed"),
    "pedestrians": ("pedestrian count", "https://en.wikipedia.org/wiki/Pedestrian_count",
                    "Pedestrians who stepped onto the crossings (a group count, no identities)"),
    "occupied_bays": ("occupied parking bays", "https://en.wikipedia.org/wiki/Parking_space",
                      "Bays of a parking zone that its bay sensors report occupied"),
    "price": ("parking price", "https://en.wikipedia.org/wiki/Parking_pricing",
              "The zone's current parking price (dynamic pricing)"),
    "nox": ("NOx concentration", "http://vocab.nerc.ac.uk/collection/P07/current/CFSN0474/",
            "Mass concentration of nitrogen oxides in air"),
    "pm10": ("PM10 concentration", "http://vocab.nerc.ac.uk/collection/P07/current/CFSN0431/",
             "Mass concentration of particulate matter below 10 um in air"),
    "co2": ("CO2 concentration", "http://vocab.nerc.ac.uk/collection/P07/current/CFSN0471/",
            "Mole fraction of carbon dioxide in air"),
    "aqi": ("air quality index", "https://en.wikipedia.org/wiki/Air_quality_index",
            "AQI-style index 0-500 from the 1-hour NOx and PM10 means"),
}  # fmt: skip

SENSORS: dict[str, tuple[str, str]] = {  # key -> name, description
    "controller": ("signal controller",
                   "The intersection's signal controller, reporting each phase switch"),
    "queue_monitor": ("queue monitor", "Counts halting vehicles on every incoming lane each step and "
                      "reports the mean and the maximum over each KPI interval"),
    "pedestrian_counter": ("pedestrian counter", "Counts pedestrians stepping onto the crossings"),
    "bay_sensors": ("parking bay sensors", "In-ground bay sensors of the zone (their profile: noise, "
                    "faults, latency), reporting once a minute"),
    "pricing": ("parking pricing", "The zone's dynamic pricing, moving toward a target occupancy"),
    "air_station": ("air-quality station", "NOx, PM10 and CO2 monitor fed by the traffic's emissions "
                    "and a background, reporting 1-minute means"),
}  # fmt: skip

_VEH = _unit("vehicle", "{veh}")
_UGM3 = _unit("microgram per cubic metre", "ug/m3")
STREAMS: dict[str, StreamSpec] = {
    "phase": StreamSpec("signal phase", "Each phase switch: result the phase index; parameters the "
                        "program and the link states (SUMO's GrYy string)", "phase", "controller",
                        _unit(None, None, None), ANY),
    "queue_mean": StreamSpec("mean queue", "Mean of the halting vehicles over each KPI interval",
                             "queue", "queue_monitor", _VEH, MEASUREMENT),
    "queue_max": StreamSpec("longest queue", "Most halting vehicles at once in each KPI interval",
                            "queue", "queue_monitor", _VEH, COUNT),
    "pedestrians": StreamSpec("pedestrians crossing", "Pedestrians onto the crossings per interval",
                              "pedestrians", "pedestrian_counter", _unit("person", "{person}"), COUNT),
    "occupied": StreamSpec("occupied bays", "Bays the sensors report occupied, once a minute",
                           "occupied_bays", "bay_sensors", _unit("bay", "{bay}"), COUNT),
    "price": StreamSpec("price", "The zone's price, once a minute", "price", "pricing",
                        _unit("currency unit", "{currency}"), MEASUREMENT),
    "nox": StreamSpec("NOx", "1-minute mean NOx", "nox", "air_station", _UGM3, MEASUREMENT),
    "pm10": StreamSpec("PM10", "1-minute mean PM10", "pm10", "air_station", _UGM3, MEASUREMENT),
    "co2": StreamSpec("CO2", "1-minute mean CO2", "co2", "air_station",
                      _unit("parts per million", "[ppm]"), MEASUREMENT),
    "aqi": StreamSpec("air quality index", "1-hour AQI-style index; parameters.category its band",
                      "aqi", "air_station", _unit("index", "{index}"), MEASUREMENT),
}  # fmt: skip

Point = tuple[float, float]
Ingest = Callable[["District", float, dict[str, Any]], None]
_INGEST: dict[str, Ingest] = {}


def ingested_kinds() -> frozenset[str]:
    """The message kinds the district reads (the others need not be decoded)."""
    return frozenset(_INGEST)


def ingests(kind: str) -> Callable[[Ingest], Ingest]:
    """Declare how messages of ``kind`` become entities or Observations."""

    def add(fn: Ingest) -> Ingest:
        _INGEST[kind] = fn
        return fn

    return add


@dataclass
class Place:
    """A Thing and what it needs to observe: its FeatureOfInterest and Datastreams by key."""

    thing: Entity
    feature: Entity
    streams: dict[str, Entity]


class District:
    """Builds the district's entities in ``store`` and turns messages into Observations."""

    def __init__(
        self,
        store: SensorThingsStore,
        scenario: Scenario,
        network_map: NetworkMap,
        project: Projection,
        epoch: datetime,
    ) -> None:
        self.store = store
        self.scenario = scenario.name
        self.project = project
        self.epoch = epoch
        self.places: dict[tuple[str, str], Place] = {}
        """(kind, id) -> place: ("intersection", tls), ("parking_zone", zone), ("air_station", site)."""
        self._sensors: dict[str, Entity] = {}
        self._properties: dict[str, Entity] = {}
        self._xy: dict[str, Point] = {}
        for feature in network_map.geojson["features"]:
            props = feature["properties"]
            if props["kind"] == "junction":
                self._xy[f"junction:{props['id']}"] = _centre(feature["geometry"])
        for feature in network_map.geojson["features"]:
            props = feature["properties"]
            if props["kind"] == "signal":
                self._intersection(props["id"], _centre(feature["geometry"]), props)
        parking = scenario.parking
        if parking is not None:
            for feature in network_map.geojson["features"]:
                props = feature["properties"]
                if props["kind"] == "parking":
                    self._zone(props, _centre(feature["geometry"]), pricing=parking.pricing)

    def time(self, t: float) -> datetime:
        return self.epoch + timedelta(seconds=t)

    def on_message(self, t: float, kind: str, payload: dict[str, Any]) -> None:
        """One message of the run (simulation time ``t`` in s, its payload as a dict)."""
        ingest = _INGEST.get(kind)
        if ingest is not None:
            ingest(self, t, payload)

    # --- entities --------------------------------------------------------------------------------

    def _intersection(self, tls: str, xy: Point, props: dict[str, Any]) -> None:
        place = self._place(
            "intersection", tls, f"intersection {tls}",
            f"Signalised intersection {tls} ({props.get('links', 0)} links) of scenario {self.scenario}",
            xy, {"programs": props.get("programs", [])}, 0.0,
        )  # fmt: skip
        for key in ("phase", "queue_mean", "queue_max"):
            self.add_stream(place, key)

    def _zone(self, props: dict[str, Any], xy: Point, *, pricing: bool) -> None:
        zone = props["id"]
        place = self._place(
            "parking_zone", zone, f"parking zone {zone}",
            f"{props.get('zone', 'parking')} parking zone {props.get('name') or zone}, "
            f"{props.get('capacity', 0)} bays", xy,
            {"zone_kind": props.get("zone"), "bays": props.get("capacity"), "lane": props.get("lane")},
            0.0,
        )  # fmt: skip
        self.add_stream(place, "occupied")
        if pricing:
            self.add_stream(place, "price")

    def add_station(self, site: str, t: float) -> None:
        if ("air_station", site) in self.places:
            return
        place = self._place(
            "air_station", site, f"air-quality station {site}",
            f"Air-quality station at junction {site}", self._junction(site), {"site": site}, t,
        )  # fmt: skip
        for key in ("nox", "pm10", "co2", "aqi"):
            self.add_stream(place, key)

    def _junction(self, site: str) -> Point:
        xy = self._xy.get(f"junction:{site}")
        if xy is None:
            signal = self.places.get(("intersection", site))
            if signal is not None:
                x, y = signal.thing.fields["properties"]["net_xy"]
                return (x, y)
            return (0.0, 0.0)
        return xy

    def _place(self, kind: str, ident: str, name: str, description: str, xy: Point,
               extra: dict[str, Any], t: float) -> Place:  # fmt: skip
        lon, lat = self.project(*xy)
        point = {"type": "Point", "coordinates": [lon, lat]}
        where = {"net_xy": [round(xy[0], 2), round(xy[1], 2)], "placed_by": self.project.source}
        properties = {"kind": kind, "id": ident, "scenario": self.scenario, **extra, **where}
        thing = self.store.add("Things", {"name": name, "description": description,
                                          "properties": properties})  # fmt: skip
        location = self.store.add(
            "Locations",
            {"name": f"{name} location", "description": f"Where {name} stands",
             "encodingType": GEOJSON, "location": point, "properties": where},
        )  # fmt: skip
        self.store.link(thing, "Locations", location)
        history = self.store.add("HistoricalLocations", {"time": self.time(t)}, Thing=thing)
        self.store.link(history, "Locations", location)
        feature = self.store.add(
            "FeaturesOfInterest",
            {"name": name, "description": f"The place {name} observes", "encodingType": GEOJSON,
             "feature": point, "properties": {"kind": kind, "id": ident}},
        )  # fmt: skip
        place = Place(thing, feature, {})
        self.places[(kind, ident)] = place
        return place

    def add_stream(self, place: Place, key: str) -> Entity:
        spec = STREAMS[key]
        sensor = self._sensors.get(spec.sensor)
        if sensor is None:
            name, description = SENSORS[spec.sensor]
            fields = {"name": name, "description": description, "encodingType": "text/plain",
                      "metadata": description}  # fmt: skip
            sensor = self.store.add("Sensors", fields)
            self._sensors[spec.sensor] = sensor
        observed = self._properties.get(spec.observed_property)
        if observed is None:
            name, definition, description = OBSERVED_PROPERTIES[spec.observed_property]
            observed = self.store.add("ObservedProperties", {"name": name, "definition": definition,
                                                             "description": description})  # fmt: skip
            self._properties[spec.observed_property] = observed
        thing = place.thing
        stream = self.store.add(
            "Datastreams",
            {"name": f"{thing.fields['name']} {spec.name}", "description": spec.description,
             "unitOfMeasurement": spec.unit, "observationType": spec.observation_type,
             "properties": {"key": key, "thing": thing.fields["properties"]["id"]}},
            Thing=thing, Sensor=sensor, ObservedProperty=observed,
        )  # fmt: skip
        place.streams[key] = stream
        return stream

    def observe(self, kind: str, ident: str, key: str, begin_s: float, end_s: float, result: Any,
                **parameters: Any) -> Entity | None:  # fmt: skip
        """An Observation of ``key`` at place (``kind``, ``ident``) over ``begin_s``..``end_s``
        (an instant when equal); None when the place or stream is unknown or the result not a
        finite number (a NaN has no JSON)."""
        place = self.places.get((kind, ident))
        stream = place.streams.get(key) if place is not None else None
        if place is None or stream is None:
            return None
        if isinstance(result, float) and not math.isfinite(result):
            return None
        end = self.time(end_s)
        when = TimeInterval(self.time(begin_s), end) if begin_s < end_s else end
        return self.store.observe(stream, place.feature, when, result, {"t_s": end_s, **parameters})


def _centre(geometry: dict[str, Any]) -> Point:
    """The middle of a GeoJSON geometry's points (net metres)."""
    points: list[list[float]] = []

    def collect(coords: Any) -> None:
        if coords and isinstance(coords[0], int | float):
            points.append(coords)
        else:
            for part in coords:
                collect(part)

    collect(geometry["coordinates"])
    if not points:
        return (0.0, 0.0)
    return (sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points))


# --- messages -> Observations ----------------------------------------------------------------------


@ingests("signal.phase")
def _phase(district: District, t: float, p: dict[str, Any]) -> None:
    district.observe("intersection", p["tls"], "phase", t, t, p["phase"], state=p["state"],
                     program=p["program"])  # fmt: skip


@ingests("intersection.interval")
def _queues(district: District, t: float, p: dict[str, Any]) -> None:
    begin, end = p["begin_s"], p["end_s"]
    district.observe("intersection", p["tls"], "queue_mean", begin, end, round(p["queue_mean_veh"], 2))
    district.observe("intersection", p["tls"], "queue_max", begin, end, p["queue_max_veh"])


@ingests("devices.deployed")
def _deployed(district: District, t: float, p: dict[str, Any]) -> None:
    if p["device"] == "air":
        for site in p["sites"]:
            district.add_station(site, t)
    elif p["device"] == "pedestrians":
        for site in p["sites"]:
            place = district.places.get(("intersection", site))
            if place is not None and "pedestrians" not in place.streams:
                district.add_stream(place, "pedestrians")


@ingests("pedestrian.count")
def _pedestrians(district: District, t: float, p: dict[str, Any]) -> None:
    district.observe("intersection", p["site"], "pedestrians", p["begin_s"], p["end_s"], p["count"])


@ingests("parking.occupancy")
def _occupancy(district: District, t: float, p: dict[str, Any]) -> None:
    for zone in p["zones"]:
        district.observe("parking_zone", zone["zone"], "occupied", t, t, zone["sensed_occupied"],
                         bays=zone["bays"])  # fmt: skip
        district.observe("parking_zone", zone["zone"], "price", t, t, zone["price"])


@ingests("air.reading")
def _air(district: District, t: float, p: dict[str, Any]) -> None:
    site, minute = p["station"], max(0.0, t - 60.0)
    district.observe("air_station", site, "nox", minute, t, p["nox_1min_ugm3"])
    district.observe("air_station", site, "pm10", minute, t, p["pm10_1min_ugm3"])
    district.observe("air_station", site, "co2", minute, t, p["co2_1min_ppm"])
    district.observe("air_station", site, "aqi", max(0.0, t - 3600.0), t, p["index"],
                     category=p["category"])  # fmt: skip
