"""The district as GeoJSON for the control room's map: lanes, edges, junctions, signals, detectors,
and the devices declared in the scenario's additional files (parking bays and zones, bus stops,
points of interest such as gates, stations and signs).

Coordinates are the SUMO network's own: metres on a local plane (``x`` east, ``y`` north), as
the net file has them. The bundled nets have no geographic projection, so they are published as
they are and the collection's ``properties`` say so (``crs: sumo-net``) instead of pretending to
be WGS 84 longitude/latitude.

The net is streamed with ``iterparse`` and freed as it goes, like :mod:`sim.network`.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.detectors import Detector, DetectorKind
from sim.errors import ScenarioError
from sim.network import Network
from sim.scenario import Scenario

Point = tuple[float, float]
Feature = dict[str, Any]


def parse_shape(text: str) -> list[Point]:
    points = []
    for pair in text.split():
        x, _, y = pair.partition(",")
        points.append((float(x), float(y.split(",")[0])))
    return points


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


@dataclass
class NetShapes:
    lanes: dict[str, LaneShape] = field(default_factory=dict)
    features: list[Feature] = field(default_factory=list)
    location: dict[str, str] = field(default_factory=dict)


def read_shapes(path: Path) -> NetShapes:
    """Lane shapes and the lane, edge and junction features of a ``.net.xml``."""
    shapes = NetShapes()
    edge: dict[str, str] = {}
    edge_lanes: list[tuple[str, list[Point]]] = []
    try:
        for event, el in ET.iterparse(path, events=("start", "end")):
            tag = el.tag
            if event == "start":
                if tag == "edge":
                    edge = dict(el.attrib)
                    edge_lanes = []
                continue
            if tag == "location":
                shapes.location = dict(el.attrib)
            elif tag == "lane" and edge.get("function", "normal") == "normal":
                points = parse_shape(el.get("shape", ""))
                lane_id = el.get("id", "")
                shapes.lanes[lane_id] = LaneShape(tuple(points), float(el.get("length", "0")))
                edge_lanes.append((lane_id, points))
                shapes.features.append(
                    _feature(
                        "lane", lane_id, {"type": "LineString", "coordinates": _coords(points)},
                        edge=edge.get("id", ""), index=int(el.get("index", "0")),
                        speed_mps=float(el.get("speed", "0")), length_m=float(el.get("length", "0")),
                        allow=el.get("allow"), disallow=el.get("disallow"),
                    )
                )  # fmt: skip
            elif tag == "edge":
                if edge.get("function", "normal") == "normal" and edge_lanes:
                    _lane, middle = edge_lanes[len(edge_lanes) // 2]
                    line = {"type": "LineString", "coordinates": _coords(middle)}
                    ends = {"from": edge.get("from"), "to": edge.get("to")}
                    shapes.features.append(
                        _feature("edge", edge.get("id", ""), line, lanes=len(edge_lanes),
                                 name=edge.get("name"), **ends)
                    )  # fmt: skip
                el.clear()
            elif tag == "junction" and el.get("type") != "internal":
                outline = parse_shape(el.get("shape", ""))
                x, y = float(el.get("x", "0")), float(el.get("y", "0"))
                geometry: dict[str, Any] = (
                    {"type": "Polygon", "coordinates": [_coords([*outline, outline[0]])]}
                    if len(outline) >= 3
                    else {"type": "Point", "coordinates": _coords([(x, y)])[0]}
                )
                shapes.features.append(
                    _feature("junction", el.get("id", ""), geometry, junction_type=el.get("type"))
                )
                el.clear()
            elif tag in ("tlLogic", "connection"):
                el.clear()
    except ET.ParseError as exc:
        raise ScenarioError(path, f"malformed network XML: {exc}") from None
    except ValueError as exc:
        raise ScenarioError(path, f"bad number in network: {exc}") from None
    return shapes


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

    def locate(self, source: str, key: str) -> dict[str, Any] | None:
        """Where an alarm from ``source`` about ``key`` is, if the map knows."""
        return self.places.get(source) or self.places.get(f"tls:{key}") or self.places.get(f"lane:{key}")


def network_map(scenario: Scenario, network: Network, detectors: Sequence[Detector]) -> NetworkMap:
    """The map of ``scenario``; ``detectors`` are those the run places (none for ``fixed``)."""
    shapes = read_shapes(scenario.net_file)
    features = list(shapes.features)
    places: dict[str, dict[str, Any]] = {}
    for feature in features:
        if feature["properties"]["kind"] == "lane":
            places[f"lane:{feature['properties']['id']}"] = feature["geometry"]
    for tls_id, tls in sorted(network.traffic_lights.items()):
        xy = network.junction_xy.get(tls_id)
        if xy is None:
            ends = [shapes.lanes[lane.id].points[-1] for lane in tls.incoming_lanes(network)]
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
                shape = shapes.lanes.get(lane_id)
                if shape is not None:
                    start = det.position_m if k == 0 else 0.0
                    alone = len(det.lanes) == 1
                    end = det.position_m + det.distance_to_stopline_m if alone else shape.length_m
                    points += shape.cut(start, end)
            if not points:
                continue
            geometry = {"type": "LineString", "coordinates": _coords(points)}
        else:
            shape = shapes.lanes.get(det.lanes[0])
            if shape is None:
                continue
            geometry = {"type": "Point", "coordinates": _coords([shape.at(det.position_m)])[0]}
        features.append(
            _feature("detector", det.id, geometry, detector=det.kind.value, lane=det.lane, tls=det.tls)
        )
    features += read_devices(scenario.additional_files, shapes.lanes)
    location = shapes.location
    geojson = {
        "type": "FeatureCollection",
        "properties": {
            "scenario": scenario.name,
            "crs": "sumo-net",
            "units": "m",
            "note": "x/y in metres on the SUMO network's local plane, not WGS 84 lon/lat",
            "projection": location.get("projParameter", "!"),
            "boundary": [float(v) for v in location.get("convBoundary", "0,0,0,0").split(",")],
        },
        "features": features,
    }
    return NetworkMap(geojson, places)
