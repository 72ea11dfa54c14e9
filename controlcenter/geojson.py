"""The district as GeoJSON for the control room's map: lanes, edges, junctions, signals, detectors,
and the devices declared in the scenario's additional files (parking bays and zones, bus stops,
points of interest such as gates, stations and signs).

Coordinates are the SUMO network's own: metres on a local plane (``x`` east, ``y`` north), as
the net file has them, for every net; the control room draws them on a flat map. The collection's
``properties`` say so (``crs: sumo-net``) instead of pretending to be WGS 84 longitude/latitude;
a net with a geo-projection (the real districts) also gives its boundary in WGS 84
(``boundary_lon_lat``), from :meth:`sim.network.Network.to_lon_lat`.

The geometry comes from the :class:`~sim.network.Network` the run already read (with sumolib),
so the net is read once per process; the additional files are streamed with ``iterparse``.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.detectors import Detector, DetectorKind
from sim.errors import ScenarioError
from sim.network import Lane, Network
from sim.scenario import Scenario

Point = tuple[float, float]
Feature = dict[str, Any]


def _coords(points: Sequence[Point]) -> list[list[float]]:
    return [[round(x, 2), round(y, 2)] for x, y in points]


@dataclass(frozen=True)
class LaneShape:
    points: tuple[Point, ...]
    length_m: float
    """SUMO's length of the lane; positions are scaled from it onto the drawn shape."""

    def _scale(self) -> float:
        drawn = sum(math.dist(a, b) for a, b in zip(self.points, self.points[1:], strict=False))
        return drawn / self.length_m if self.length_m > 0 and drawn > 0 else 1.0

    def at(self, pos_m: float) -> Point:
        """The point ``pos_m`` metres from the lane's start."""
        return self.cut(pos_m, pos_m)[0]

    def cut(self, start_m: float, end_m: float) -> list[Point]:
        """The part of the shape between two positions (m from the start)."""
        scale = self._scale()
        start, end = sorted((max(0.0, start_m * scale), max(0.0, end_m * scale)))
        out: list[Point] = []
        walked = 0.0
        for a, b in zip(self.points, self.points[1:], strict=False):
            step = math.dist(a, b)
            if step == 0:
                continue
            reach = walked + step
            if not out and start <= reach:
                out.append(_between(a, b, (start - walked) / step))
            if out:
                if end <= reach:
                    out.append(_between(a, b, (end - walked) / step))
                    return out
                out.append(b)
            walked = reach
        return out or [self.points[-1]]


def _between(a: Point, b: Point, f: float) -> Point:
    return (a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1]))


def lane_shapes(network: Network) -> dict[str, LaneShape]:
    """Every normal lane's drawn shape, to place devices along it."""
    return {lane.id: LaneShape(lane.shape, lane.length_m) for lane in network.lanes.values()}


def _access(classes: frozenset[str] | None) -> str | None:
    return " ".join(sorted(classes)) if classes else None


def net_features(network: Network) -> list[Feature]:
    """The lane, edge and junction features of the net: each edge's lanes and then the edge (drawn
    along its middle lane), in the file's order, then the junctions by id."""
    by_edge: dict[str, list[Lane]] = {}
    for lane in network.lanes.values():
        by_edge.setdefault(lane.edge, []).append(lane)
    features = []
    for edge, lanes in by_edge.items():
        for lane in lanes:
            line = {"type": "LineString", "coordinates": _coords(lane.shape)}
            features.append(
                _feature(
                    "lane", lane.id, line, edge=edge, index=lane.index, speed_mps=lane.speed_mps,
                    length_m=lane.length_m, allow=_access(lane.allow), disallow=_access(lane.disallow),
                )
            )  # fmt: skip
        middle = {"type": "LineString", "coordinates": _coords(lanes[len(lanes) // 2].shape)}
        start, end = network.edge_ends.get(edge, ("", ""))
        features.append(
            _feature("edge", edge, middle, lanes=len(lanes), name=network.edge_names.get(edge),
                     **{"from": start, "to": end})
        )  # fmt: skip
    for junction in sorted(network.junction_types):
        outline = network.junction_shapes.get(junction, ())
        geometry: dict[str, Any] = (
            {"type": "Polygon", "coordinates": [_coords([*outline, outline[0]])]}
            if len(outline) >= 3
            else {"type": "Point", "coordinates": _coords([network.junction_xy[junction]])[0]}
        )
        features.append(
            _feature("junction", junction, geometry, junction_type=network.junction_types[junction])
        )
    return features


def _feature(kind: str, ident: str, geometry: dict[str, Any], **properties: Any) -> Feature:
    props = {"kind": kind, "id": ident}
    props.update({k: v for k, v in properties.items() if v is not None})
    return {"type": "Feature", "id": f"{kind}:{ident}", "geometry": geometry, "properties": props}


# --- devices from additional files (a registry: later device kinds add their element) ---------

DeviceReader = Callable[[ET.Element, dict[str, LaneShape]], Feature | None]
_DEVICES: dict[str, DeviceReader] = {}


def register_device(tag: str) -> Callable[[DeviceReader], DeviceReader]:
    """Declare how an element of the scenario's additional files is drawn."""

    def add(reader: DeviceReader) -> DeviceReader:
        _DEVICES[tag] = reader
        return reader

    return add


def _params(el: ET.Element) -> dict[str, str]:
    return {p.get("key", ""): p.get("value", "") for p in el.iter("param")}


def _on_lane(el: ET.Element, lanes: dict[str, LaneShape]) -> dict[str, Any] | None:
    lane = lanes.get(el.get("lane", ""))
    if lane is None:
        return None
    start = float(el.get("startPos", el.get("pos", "0")))
    end = float(el.get("endPos", str(lane.length_m)))
    return {"type": "LineString", "coordinates": _coords(lane.cut(start, end))}


@register_device("parkingArea")
def _parking(el: ET.Element, lanes: dict[str, LaneShape]) -> Feature | None:
    geometry = _on_lane(el, lanes)
    spaces = [(float(s.get("x", "0")), float(s.get("y", "0"))) for s in el.iter("space")]
    if spaces:
        geometry = {"type": "MultiPoint", "coordinates": _coords(spaces)}
    if geometry is None:
        return None
    params = _params(el)
    capacity = int(el.get("roadsideCapacity", "0")) + len(spaces)
    return _feature(
        "parking", el.get("id", ""), geometry, zone=params.get("ccsim.kind", "parking"),
        capacity=capacity, lane=el.get("lane"), name=el.get("name"),
    )  # fmt: skip


@register_device("busStop")
def _bus_stop(el: ET.Element, lanes: dict[str, LaneShape]) -> Feature | None:
    geometry = _on_lane(el, lanes)
    if geometry is None:
        return None
    return _feature(
        "bus_stop", el.get("id", ""), geometry, lines=el.get("lines", "").split(), name=el.get("name")
    )


@register_device("poi")
def _poi(el: ET.Element, lanes: dict[str, LaneShape]) -> Feature | None:
    """Points of interest: gates, air-quality stations, signs... (``ccsim.kind`` or ``type``)."""
    lane = lanes.get(el.get("lane", ""))
    if lane is not None:
        x, y = lane.at(float(el.get("pos", "0")))
    elif el.get("x") is not None:
        x, y = float(el.get("x", "0")), float(el.get("y", "0"))
    else:
        return None
    params = _params(el)
    return _feature(
        params.get("ccsim.kind", el.get("type") or "poi"), el.get("id", ""),
        {"type": "Point", "coordinates": _coords([(x, y)])[0]}, name=el.get("name"),
    )  # fmt: skip


def read_devices(paths: Sequence[Path], lanes: dict[str, LaneShape]) -> list[Feature]:
    features = []
    for path in paths:
        try:
            for _event, el in ET.iterparse(path, events=("end",)):
                reader = _DEVICES.get(el.tag)
                if reader is not None:
                    feature = reader(el, lanes)
                    if feature is not None:
                        features.append(feature)
                    el.clear()
        except ET.ParseError as exc:
            raise ScenarioError(path, f"malformed additional XML: {exc}") from None
        except ValueError as exc:
            raise ScenarioError(path, f"bad number: {exc}") from None
    return features


# --- the whole map --------------------------------------------------------------------------------


@dataclass
class NetworkMap:
    """The GeoJSON of a scenario, and where each signal and lane is (for alarms)."""

    geojson: dict[str, Any]
    places: dict[str, dict[str, Any]]
    """'tls:<id>' / 'lane:<id>' -> geometry."""
    network: Network | None = None
    """The net it was drawn from (its projection places things on the earth)."""

    def locate(self, source: str, key: str) -> dict[str, Any] | None:
        """Where an alarm from ``source`` about ``key`` is, if the map knows."""
        return self.places.get(source) or self.places.get(f"tls:{key}") or self.places.get(f"lane:{key}")


def network_map(scenario: Scenario, network: Network, detectors: Sequence[Detector]) -> NetworkMap:
    """The map of ``scenario``; ``detectors`` are those the run places (none for ``fixed``)."""
    lanes = lane_shapes(network)
    features = net_features(network)
    places: dict[str, dict[str, Any]] = {}
    for feature in features:
        if feature["properties"]["kind"] == "lane":
            places[f"lane:{feature['properties']['id']}"] = feature["geometry"]
    for tls_id, tls in sorted(network.traffic_lights.items()):
        xy = network.junction_xy.get(tls_id)
        if xy is None:
            ends = [lane.shape[-1] for lane in tls.incoming_lanes(network) if lane.shape]
            if not ends:
                continue
            xy = (sum(p[0] for p in ends) / len(ends), sum(p[1] for p in ends) / len(ends))
        geometry = {"type": "Point", "coordinates": _coords([xy])[0]}
        places[f"tls:{tls_id}"] = geometry
        features.append(
            _feature(
                "signal", tls_id, geometry, programs=[p.id for p in tls.programs],
                links=tls.link_count, lanes=[lane.id for lane in tls.incoming_lanes(network)],
            )
        )  # fmt: skip
    for det in detectors:
        # A zone over several lanes is drawn along each of them, up to the stop line; a loop
        # on the lane it lies on.
        if det.kind is DetectorKind.STOPLINE:
            points: list[Point] = []
            for k, lane_id in enumerate(det.lanes):
                shape = lanes.get(lane_id)
                if shape is not None:
                    start = det.position_m if k == 0 else 0.0
                    alone = len(det.lanes) == 1
                    end = det.position_m + det.distance_to_stopline_m if alone else shape.length_m
                    points += shape.cut(start, end)
            if not points:
                continue
            geometry = {"type": "LineString", "coordinates": _coords(points)}
        else:
            shape = lanes.get(det.lanes[0])
            if shape is None:
                continue
            geometry = {"type": "Point", "coordinates": _coords([shape.at(det.position_m)])[0]}
        features.append(
            _feature("detector", det.id, geometry, detector=det.kind.value, lane=det.lane, tls=det.tls)
        )
    features += read_devices(scenario.additional_files, lanes)
    location = network.location
    properties: dict[str, Any] = {
        "scenario": scenario.name,
        "crs": "sumo-net",
        "units": "m",
        "note": "x/y in metres on the SUMO network's local plane, not WGS 84 lon/lat",
        "projection": location.projection,
        "boundary": list(location.boundary),
    }
    x0, y0, x1, y1 = location.boundary
    corners = network.to_lon_lat(x0, y0), network.to_lon_lat(x1, y1)
    if corners[0] is not None and corners[1] is not None:
        properties["boundary_lon_lat"] = [*corners[0], *corners[1]]
    geojson = {"type": "FeatureCollection", "properties": properties, "features": features}
    return NetworkMap(geojson, places, network)
