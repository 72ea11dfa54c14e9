"""The NGSI-LD entities of a live run, kept from the message stream and the alarms.

:class:`EntityBook` is a reader of the same records as the feed and the store: each batch's
messages (as the store's rows) and each committed alarm change. It keeps one entity per thing
the control room watches, as the FIWARE Smart Data Models shape them:

========================  ===========================================  ===========================
entity                    one per                                      from
========================  ===========================================  ===========================
``TrafficFlowObserved``   radar speed point (``[devices.radar]``)      ``radar.passes``
``AirQualityObserved``    air-quality station (``[devices.air]``)      ``air.reading``
``OnStreetParking``       street parking zone (rotating, loading,      the scenario's parking
                          disabled bays)                               areas, ``parking.occupancy``
``OffStreetParking``      parking lot (``ccsim.kind = lot``)           the same
``ParkingSpot``           bay of a zone or lot                         ``parking.arrival`` /
                                                                       ``departure`` (or the
                                                                       uplinks' ``parking.observed``)
``Alert``                 alarm                                        the alarm book
========================  ===========================================  ===========================

Simulation time ``t`` is stamped as wall-clock time: the server's start plus ``t - begin``, so a
run at speed 1 keeps step with the clock and the intervals of an observation keep their simulated
length at any speed. Alarms keep the wall-clock times the alarm book gave them.

A new run of the same server (``POST /api/runs``, :meth:`EntityBook.new_run`) starts a new
world: its times start after the ended run's last, the ended run's observations are not kept as
current (radar points and air stations reappear with the new run's first reading; parking sites
lose their counts and their bays are ``unknown`` again), and the Alerts stay - alarms outlive
their run. A context broker the entities are pushed to keeps what it was sent of the radar and
air entities until the new run sends them again; their ``observedAt`` says how old they are.

Attributes are kept with their NGSI-LD kind (Property, GeoProperty, Relationship), the time they
were observed and, for measurements, their UN/CEFACT unit code; :mod:`controlcenter.ngsild.formats`
renders them normalized or as key-values. Thread-safe: the batches arrive on the record pump's
thread, the API reads from the event loop's.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from controlcenter.alarms import SUBCATEGORIES
from controlcenter.geo import Georef
from controlcenter.geojson import NetworkMap, lane_shapes
from sim.devices.radar import radar_position
from sim.devices.sites import vehicle_edges
from sim.messages import (
    AirReading,
    BayObserved,
    ParkingArrival,
    ParkingDeparture,
    ParkingOccupancy,
    Payload,
    RadarPasses,
    ZoneOccupancy,
)
from sim.network import Network
from sim.scenario import Scenario

MICROGRAMS_PER_M3 = "GQ"
PARTS_PER_MILLION = "59"
KILOMETRES_PER_HOUR = "KMH"
"""UN/CEFACT common codes, as NGSI-LD's ``unitCode`` takes them."""

CLEARED_ALERTS_KEPT = 1000
"""Cleared alarms stay as Alerts (with ``validTo``) until this many newer ones have cleared."""

EventRow = tuple[int, float, str, str, str]
"""A message as the store keeps it: (seq, t, source, kind, payload JSON)."""


def iso(epoch_s: float) -> str:
    """RFC 3339 UTC time of a wall-clock epoch (s), to the millisecond."""
    moment = dt.datetime.fromtimestamp(epoch_s, dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _local(text: str) -> str:
    """A name as part of a URN (RFC 8141: letters, digits and ``-._~:`` kept, others ``-``)."""
    return re.sub(r"[^A-Za-z0-9._~:-]", "-", text) or "-"


@dataclass
class Attr:
    """One attribute: ``kind`` Property, GeoProperty or Relationship (``value`` is then the
    target entity's id)."""

    value: Any
    kind: str = "Property"
    observed_at: str | None = None
    unit: str | None = None


@dataclass
class Entity:
    id: str
    type: str
    attrs: dict[str, Attr] = field(default_factory=dict)
    version: int = 0
    """Bumped at every change (the pusher sends what changed since it last sent)."""

    def copy(self) -> Entity:
        return Entity(self.id, self.type, dict(self.attrs), self.version)


@dataclass(frozen=True)
class _Zone:
    id: str
    entity: str
    kind: str
    bays: tuple[str, ...]
    """The ids of its ParkingSpot entities, by bay number."""


Reducer = Callable[["EntityBook", float, Any], None]
_REDUCERS: dict[str, Reducer] = {}
_PAYLOADS: dict[str, type[Payload]] = {}


def _reduces(payload: type[Payload]) -> Callable[[Reducer], Reducer]:
    """Declare how messages of one payload type change the entities."""

    def add(reducer: Reducer) -> Reducer:
        _REDUCERS[payload.kind] = reducer
        _PAYLOADS[payload.kind] = payload
        return reducer

    return add


def decode(kind: str, payload_json: str) -> Payload | None:
    """The typed payload of a stored message of a kind the entities read (None for others)."""
    cls = _PAYLOADS.get(kind)
    if cls is None:
        return None
    fields = json.loads(payload_json)
    if cls is ParkingOccupancy:
        return ParkingOccupancy(tuple(ZoneOccupancy(**z) for z in fields["zones"]))
    return cls(**fields)


class EntityBook:
    """Every entity of the run (see the module docstring)."""

    def __init__(
        self,
        scenario: Scenario,
        network: Network,
        network_map: NetworkMap,
        *,
        epoch_s: float,
        begin_s: float | None = None,
        georef: Georef | None = None,
    ) -> None:
        self.scenario = scenario
        self.namespace = _local(scenario.name)
        self.georef = georef if georef is not None else Georef(network, scenario.geo_origin)
        """Where entities are placed (default: by the scenario's ``[geo] origin``)."""
        self.places = network_map.places
        self._network_map = network_map
        self._epoch_s = epoch_s
        self._begin_s = scenario.begin_s if begin_s is None else begin_s
        self._lock = threading.Lock()
        self._entities: dict[str, Entity] = {}
        self._version = 0
        self._cleared: list[str] = []
        self._radar_points: dict[str, list[float] | None] = {}
        if scenario.devices is not None and scenario.devices.radar is not None:
            self._radar_points = self._radar_locations(network, scenario.devices.radar.sign_distance_m)
        self._zones: dict[str, _Zone] = {}
        self._uplinks = scenario.parking is not None and scenario.parking.bay_sensor_source == "uplinks"
        if scenario.parking is not None:
            self._add_parking(network_map, scenario.parking.time_limit_s)

    # --- identity, time, change ------------------------------------------------------------------

    def urn(self, type_name: str, local: str) -> str:
        return f"urn:ngsi-ld:{type_name}:{self.namespace}:{_local(local)}"

    def stamp(self, t: float) -> str:
        """Wall-clock time of simulation time ``t`` (s)."""
        return iso(self._epoch_s + (t - self._begin_s))

    def new_run(self, epoch_s: float) -> None:
        """A new run starts (between runs: no batch arrives meanwhile): its simulation time
        ``begin`` stands for ``epoch_s``; what the ended run observed goes (see the module
        docstring), the Alerts stay."""
        with self._lock:
            self._epoch_s = epoch_s
            for entity_id in [i for i, e in self._entities.items() if e.type != "Alert"]:
                del self._entities[entity_id]
        if self.scenario.parking is not None:
            self._add_parking(self._network_map, self.scenario.parking.time_limit_s)

    def _set(self, entity_id: str, type_name: str, attrs: dict[str, Attr | None]) -> None:
        """Create or update an entity (caller holds the lock); None removes an attribute."""
        entity = self._entities.get(entity_id)
        if entity is None:
            entity = self._entities[entity_id] = Entity(entity_id, type_name)
        changed = False
        for name, attr in attrs.items():
            if attr is not None and isinstance(attr.value, float) and not math.isfinite(attr.value):
                attr = None  # NaN or infinity: not a number JSON can carry, nor a measurement
            if attr is None:
                changed |= entity.attrs.pop(name, None) is not None
            elif entity.attrs.get(name) != attr:
                entity.attrs[name] = attr
                changed = True
        if changed or entity.version == 0:
            self._version += 1
            entity.version = self._version

    # --- reads -----------------------------------------------------------------------------------

    def entities(self) -> list[Entity]:
        """Every entity (copies), by type and id."""
        with self._lock:
            found = [e.copy() for e in self._entities.values()]
        return sorted(found, key=lambda e: (e.type, e.id))

    def get(self, entity_id: str) -> Entity | None:
        with self._lock:
            entity = self._entities.get(entity_id)
            return entity.copy() if entity is not None else None

    def counts(self) -> dict[str, int]:
        with self._lock:
            counts: dict[str, int] = {}
            for entity in self._entities.values():
                counts[entity.type] = counts.get(entity.type, 0) + 1
        return dict(sorted(counts.items()))

    # --- the stream --------------------------------------------------------------------------------

    def on_rows(self, rows: Iterable[EventRow]) -> None:
        """One batch's messages, as the store's rows."""
        with self._lock:
            for _seq, t, _source, kind, payload_json in rows:
                reducer = _REDUCERS.get(kind)
                if reducer is not None:
                    payload = decode(kind, payload_json)
                    reducer(self, t, payload)

    def on_message(self, t: float, payload: Payload) -> None:
        """One typed message (for a reader on the simulation's own bus)."""
        reducer = _REDUCERS.get(payload.kind)
        if reducer is not None:
            with self._lock:
                reducer(self, t, payload)

    # --- places ------------------------------------------------------------------------------------

    def _radar_locations(
        self, network: Network, sign_distance_m: float
    ) -> dict[str, list[float] | None]:
        """Where each edge's radar point would stand (as sim.devices.radar places it)."""
        shapes = lane_shapes(network)
        points: dict[str, list[float] | None] = {}
        for edge, lanes in vehicle_edges(network).items():
            shape = shapes[lanes[0]]
            x, y = shape.at(radar_position(shape.length_m, sign_distance_m))
            points[edge] = self.georef.point(x, y)
        return points

    def _point(self, lon_lat: list[float] | None) -> Attr | None:
        return (
            None if lon_lat is None else Attr({"type": "Point", "coordinates": lon_lat}, "GeoProperty")
        )

    def _add_parking(self, network_map: NetworkMap, time_limit_s: float) -> None:
        for feature in network_map.geojson["features"]:
            props = feature["properties"]
            if props.get("kind") != "parking" or int(props.get("capacity", 0)) <= 0:
                continue
            zone_id, kind, bays = str(props["id"]), str(props.get("zone")), int(props["capacity"])
            lot = kind == "lot"
            type_name = "OffStreetParking" if lot else "OnStreetParking"
            entity = self.urn(type_name, zone_id)
            spots = tuple(self.urn("ParkingSpot", f"{zone_id}:{bay}") for bay in range(bays))
            self._zones[zone_id] = _Zone(zone_id, entity, kind, spots)
            geometry = feature["geometry"]
            attrs: dict[str, Attr | None] = {
                "name": Attr(str(props.get("name") or zone_id)),
                "dataProvider": Attr("ccsim"),
                "location": self._geo(geometry),
                "category": Attr(_ZONE_CATEGORIES.get(kind, ["public"])),
                "totalSpotNumber": Attr(bays),
                "occupancyDetectionType": Attr(["singleSpaceDetection"]),
            }
            if not lot:
                attrs["refParkingSpot"] = Attr(list(spots))
                if kind == "loading":
                    attrs["usageScenario"] = Attr("loadingBay")
            if kind == "rotating":
                attrs["maximumParkingDuration"] = Attr(f"PT{round(time_limit_s)}S")
            with self._lock:
                self._set(entity, type_name, attrs)
                for bay, spot in enumerate(spots):
                    self._set(spot, "ParkingSpot", {
                        "name": Attr(f"{props.get('name') or zone_id}, bay {bay + 1}"),
                        "dataProvider": Attr("ccsim"),
                        "location": self._point(self._bay_point(geometry, bay, bays)),
                        "category": Attr(["offStreet" if lot else "onStreet"]),
                        "refParkingSite": Attr(entity, "Relationship"),
                        "status": Attr("unknown"),
                    })  # fmt: skip

    def _geo(self, geometry: dict[str, Any] | None) -> Attr | None:
        placed = self.georef.geometry(geometry)
        return None if placed is None else Attr(placed, "GeoProperty")

    def _bay_point(self, geometry: dict[str, Any], bay: int, bays: int) -> list[float] | None:
        """Bay ``bay`` of ``bays``: its own space in a lot, or its share of the kerb."""
        coordinates = geometry.get("coordinates") or []
        if geometry.get("type") == "MultiPoint" and coordinates:
            x, y = coordinates[bay % len(coordinates)]
            return self.georef.point(x, y)
        if geometry.get("type") == "LineString" and coordinates:
            x, y = _along(coordinates, (bay + 0.5) / bays)
            return self.georef.point(x, y)
        return None

    # --- alarms ------------------------------------------------------------------------------------

    def on_alarms(self, alarms: Sequence[dict[str, Any]]) -> None:
        """Alarms as :meth:`controlcenter.alarms.Alarm.to_dict` gives them (new or changed)."""
        with self._lock:
            for alarm in alarms:
                self._alert(alarm)

    def _alert(self, alarm: dict[str, Any]) -> None:
        entity = self.urn("Alert", f"alarm-{alarm['id']}")
        modified = alarm.get("dateModified") or alarm["dateIssued"]
        cleared = alarm.get("state") == "cleared"
        subcategory = alarm.get("subCategory")
        at = modified
        self._set(entity, "Alert", {
            "name": Attr(f"alarm {alarm['id']}: {alarm.get('rule', '')}"),
            "dataProvider": Attr("ccsim"),
            "category": Attr(alarm["category"]),
            # ccsim's own subcategories (sensorFault...) are not in the model's vocabulary: they
            # stay in ``data``.
            "subCategory": Attr(subcategory) if subcategory in SUBCATEGORIES else None,
            "severity": Attr(alarm["severity"], observed_at=at),
            "description": Attr(alarm.get("description", "")),
            "alertSource": Attr(str(alarm.get("alertSource") or "ccsim")),
            "dateIssued": Attr(alarm["dateIssued"]),
            "validFrom": Attr(alarm["dateIssued"]),
            "validTo": Attr(modified) if cleared else None,
            "location": self._geo(alarm.get("location")),
            "data": Attr({
                "state": alarm.get("state"), "active": alarm.get("active"),
                "rule": alarm.get("rule"), "key": alarm.get("key"), "run": alarm.get("run"),
                "occurrences": alarm.get("occurrences"), "subCategory": subcategory,
                "simulationTime": alarm.get("t"),
            }, observed_at=at),
        })  # fmt: skip
        if cleared and entity not in self._cleared:
            self._cleared.append(entity)
            while len(self._cleared) > CLEARED_ALERTS_KEPT:
                self._entities.pop(self._cleared.pop(0), None)


def _along(coordinates: Sequence[Sequence[float]], fraction: float) -> tuple[float, float]:
    """The point ``fraction`` (0..1) of the way along a polyline."""
    points = [(float(p[0]), float(p[1])) for p in coordinates]
    lengths = [math.dist(a, b) for a, b in itertools.pairwise(points)]
    target = fraction * sum(lengths)
    for (a, b), length in zip(itertools.pairwise(points), lengths, strict=True):
        if length > 0 and target <= length:
            f = target / length
            return a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1])
        target -= length
    return points[-1]


_ZONE_CATEGORIES: dict[str, list[str]] = {
    "rotating": ["shortTerm"],
    "loading": ["forLoadUnload"],
    "disabled": ["forDisabled"],
    "lot": ["parkingLot", "public"],
}
"""A zone's kind in the models' vocabulary (OnStreetParking / OffStreetParking ``category``)."""


# --- what each message does ------------------------------------------------------------------------


@_reduces(RadarPasses)
def _radar(book: EntityBook, t: float, p: RadarPasses) -> None:
    begin, end = book.stamp(p.begin_s), book.stamp(p.end_s)
    speed = round(p.speed_sum_kmh / p.passes, 1) if p.passes else None
    book._set(book.urn("TrafficFlowObserved", f"radar-{p.site}"), "TrafficFlowObserved", {
        "name": Attr(f"radar speed point on {p.site}"),
        "dataProvider": Attr("ccsim"),
        "location": book._point(book._radar_points.get(p.site)),
        "dateObserved": Attr(f"{begin}/{end}"),
        "dateObservedFrom": Attr(begin),
        "dateObservedTo": Attr(end),
        "intensity": Attr(p.passes, observed_at=end),
        "averageVehicleSpeed": (
            None if speed is None else Attr(speed, observed_at=end, unit=KILOMETRES_PER_HOUR)
        ),
    })  # fmt: skip


@_reduces(AirReading)
def _air(book: EntityBook, t: float, p: AirReading) -> None:
    at = book.stamp(t)
    book._set(book.urn("AirQualityObserved", p.station), "AirQualityObserved", {
        "name": Attr(f"air-quality station at {p.station}"),
        "dataProvider": Attr("ccsim"),
        "location": book._geo(book.places.get(f"tls:{p.station}")),
        "typeofLocation": Attr("outdoor"),
        "dateObserved": Attr(at),
        # SUMO's emission model gives nitrogen oxides as a whole (NOx), not NO2 apart.
        "nox": Attr(p.nox_1min_ugm3, observed_at=at, unit=MICROGRAMS_PER_M3),
        "pm10": Attr(p.pm10_1min_ugm3, observed_at=at, unit=MICROGRAMS_PER_M3),
        "co2": Attr(p.co2_1min_ppm, observed_at=at, unit=PARTS_PER_MILLION),
        "airQualityIndex": Attr(round(p.index), observed_at=at) if math.isfinite(p.index) else None,
        "airQualityLevel": Attr(p.category, observed_at=at),
    })  # fmt: skip


def _bay(book: EntityBook, t: float, zone_id: str, bay: int, occupied: bool) -> None:
    zone = book._zones.get(zone_id)
    if zone is None or not 0 <= bay < len(zone.bays):
        return
    status = "occupied" if occupied else "free"
    book._set(zone.bays[bay], "ParkingSpot", {"status": Attr(status, observed_at=book.stamp(t))})


@_reduces(ParkingArrival)
def _arrival(book: EntityBook, t: float, p: ParkingArrival) -> None:
    if not book._uplinks:
        _bay(book, t, p.zone, p.bay, True)


@_reduces(ParkingDeparture)
def _departure(book: EntityBook, t: float, p: ParkingDeparture) -> None:
    if not book._uplinks:
        _bay(book, t, p.zone, p.bay, False)


@_reduces(BayObserved)
def _observed(book: EntityBook, t: float, p: BayObserved) -> None:
    """With ``bay_sensor_source = "uplinks"`` the control center knows the bays from these."""
    if book._uplinks:
        _bay(book, t, p.zone, p.bay, p.occupied)


@_reduces(ParkingOccupancy)
def _occupancy(book: EntityBook, t: float, p: ParkingOccupancy) -> None:
    at = book.stamp(t)
    for z in p.zones:
        zone = book._zones.get(z.zone)
        if zone is None:
            continue
        occupied = max(0, min(z.bays, z.sensed_occupied))
        attrs: dict[str, Attr | None] = {
            "availableSpotNumber": Attr(z.bays - occupied, observed_at=at),
            "occupiedSpotNumber": Attr(occupied, observed_at=at),
            "occupancyModified": Attr(at),
        }
        if zone.kind == "lot":
            attrs["occupancy"] = Attr(round(occupied / z.bays, 4) if z.bays else 0.0, observed_at=at)
        book._set(zone.entity, book._entities[zone.entity].type, attrs)
        # The bays that have never reported are free when the zone's count is made up by those
        # known to be occupied (a sensor reports a change, not a steady state).
        statuses = [book._entities[spot].attrs["status"].value for spot in zone.bays]
        if statuses.count("occupied") == occupied:
            for spot, status in zip(zone.bays, statuses, strict=True):
                if status == "unknown":
                    book._set(spot, "ParkingSpot", {"status": Attr("free", observed_at=at)})
