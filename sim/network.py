"""The SUMO network as ccsim sees it: lanes, signalised intersections with their programs and
conflicts, the drawn geometry, and the net's projection to WGS 84.

Read once per process with sumolib (``sumolib.net.readNet``), which owns SUMO's conventions: a
junction's link numbering and its right-of-way foes, lane and junction shapes, the geo-projection.
What ccsim needs is copied into plain dataclasses, so no sumolib object outlives the read: a
:class:`Network` is cheap to keep for a whole run and controllers never walk sumolib's graph.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
import xml.sax
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sumolib

from sim.errors import ScenarioError

_PEDESTRIAN_ONLY = frozenset({"pedestrian"})
_INTERNAL_FUNCTIONS = frozenset({"internal", "crossing", "walkingarea"})

Point = tuple[float, float]


@dataclass(frozen=True)
class Lane:
    """A normal (non-internal) lane. Length in m, speed limit in m/s."""

    id: str
    edge: str
    length_m: float
    speed_mps: float
    allow: frozenset[str] | None
    disallow: frozenset[str] | None = None
    shape: tuple[Point, ...] = field(default=(), repr=False, compare=False)
    """The lane's centre line as drawn in the net, m (net coordinates)."""

    @property
    def carries_vehicles(self) -> bool:
        """False for sidewalks and other pedestrian-only lanes."""
        return self.allow is None or bool(self.allow - _PEDESTRIAN_ONLY)

    @property
    def index(self) -> int:
        """Position on its edge, 0 the rightmost lane."""
        return int(self.id.rsplit("_", 1)[1])


@dataclass(frozen=True)
class Link:
    """One signal-controlled connection; ``index`` is its position in the state string."""

    index: int
    from_lane: str
    to_lane: str
    direction: str
    via: str = ""
    """The internal lane across the junction ("" if none)."""


@dataclass(frozen=True)
class Phase:
    """A phase of a signal program. Durations in s; ``state`` has one character per link."""

    duration_s: float
    state: str
    min_dur_s: float | None = None
    max_dur_s: float | None = None
    name: str = ""
    next: tuple[int, ...] = ()
    """Indices of the phases that may follow (empty: the next one in order)."""


@dataclass(frozen=True)
class Program:
    """A signal program (``tlLogic``): ``type`` is static, actuated, delay_based..."""

    id: str
    type: str
    offset_s: float
    phases: tuple[Phase, ...]

    @property
    def cycle_s(self) -> float:
        return sum(p.duration_s for p in self.phases)


@dataclass
class TrafficLight:
    """A signalised intersection (one SUMO traffic-light id, possibly several joined junctions)."""

    id: str
    programs: list[Program] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    crossing_links: set[int] = field(default_factory=set)
    conflicts: set[tuple[int, int]] = field(default_factory=set)
    """Pairs of link indices (both orders) that are foes in the net's right-of-way logic."""
    crossing_lanes: dict[int, str] = field(default_factory=dict)
    """Pedestrian link index -> the crossing lane it opens."""

    @property
    def link_count(self) -> int:
        return len(self.programs[0].phases[0].state) if self.programs else 0

    def incoming_lanes(self, network: Network) -> list[Lane]:
        """Vehicle lanes feeding the intersection's signalised links, in link order, once each."""
        seen: dict[str, Lane] = {}
        for link in sorted(self.links, key=lambda lk: lk.index):
            lane = network.lanes.get(link.from_lane)
            if lane is not None and lane.carries_vehicles and lane.id not in seen:
                seen[lane.id] = lane
        return list(seen.values())


@dataclass(frozen=True)
class Location:
    """The net's ``<location>``: its offset from the projected plane and its projection."""

    net_offset: Point = (0.0, 0.0)
    """Added to projected coordinates (m) to give net coordinates."""
    boundary: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    """``convBoundary``: x min, y min, x max, y max of the net, m."""
    projection: str = "!"
    """PROJ parameters (``projParameter``); ``!`` when the net has no geo-projection."""

    @property
    def projected(self) -> bool:
        return self.projection != "!"


@dataclass
class Network:
    """What ccsim needs of a ``.net.xml``. Coordinates are the net's: m, x east, y north."""

    path: Path
    lanes: dict[str, Lane] = field(default_factory=dict)
    """Normal lanes, in the file's order (edge by edge, rightmost lane first)."""
    traffic_lights: dict[str, TrafficLight] = field(default_factory=dict)
    junction_xy: dict[str, tuple[float, float]] = field(default_factory=dict)
    internal_length_m: dict[str, float] = field(default_factory=dict)
    """Length of internal lanes (junction crossings, pedestrian crossings), m."""
    edge_ends: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Normal edge -> (from junction, to junction)."""
    lane_targets: dict[str, set[str]] = field(default_factory=dict)
    """Normal lane -> the edges its connections lead to."""
    internal_next: dict[str, str] = field(default_factory=dict)
    """Internal lane -> the internal lane that continues it (left turns waiting inside)."""
    lane_sources: dict[str, list[str]] = field(default_factory=dict)
    """Normal lane -> the normal lanes with a connection into it, in the net's order."""
    junction_types: dict[str, str] = field(default_factory=dict)
    """Junction -> SUMO's type (traffic_light, priority, dead_end...)."""
    junction_shapes: dict[str, tuple[Point, ...]] = field(default_factory=dict)
    """Junction -> its outline as drawn in the net (may be empty)."""
    edge_names: dict[str, str] = field(default_factory=dict)
    """Normal edge -> its street name, where the net has one."""
    location: Location = field(default_factory=Location)
    _geo: Any = field(default=None, init=False, repr=False, compare=False)

    def edge_xy(self, edge: str) -> tuple[float, float]:
        """Midpoint of an edge's end junctions, m (net coordinates)."""
        start, end = self.edge_ends.get(edge, ("", ""))
        (x1, y1), (x2, y2) = (
            self.junction_xy.get(start, (0.0, 0.0)),
            self.junction_xy.get(end, (0.0, 0.0)),
        )
        return (x1 + x2) / 2.0, (y1 + y2) / 2.0

    def path_length_m(self, via: str) -> float:
        """Length of the whole path across a junction that starts on internal lane ``via``, m."""
        total, lane, seen = 0.0, via, set()
        while lane and lane not in seen:
            seen.add(lane)
            total += self.internal_length_m.get(lane, 0.0)
            lane = self.internal_next.get(lane, "")
        return total

    def to_lon_lat(self, x: float, y: float) -> tuple[float, float] | None:
        """WGS 84 (longitude, latitude) in degrees of net point (``x``, ``y``) in m, or None when
        the net has no geo-projection (generated nets, the bundled district)."""
        if not self.location.projected:
            return None
        if self._geo is None:
            # A bare sumolib net holding only the location: sumolib's own inverse projection
            # (pyproj) without keeping the whole graph around.
            geo = sumolib.net.Net()
            offset = ",".join(repr(v) for v in self.location.net_offset)
            geo.setLocation(offset, "", "", self.location.projection)
            self._geo = geo
        lon, lat = self._geo.convertXY2LonLat(x, y)
        return float(lon), float(lat)


class _SumolibNet(sumolib.net.Net):  # type: ignore[misc]  # sumolib is untyped
    """sumolib's net, remembering each lane's ``allow``/``disallow`` as written (sumolib keeps
    only the resulting set of vehicle classes)."""

    def __init__(self) -> None:
        super().__init__()
        self.access: dict[Any, tuple[str | None, str | None]] = {}

    def addLane(  # sumolib's name (overridden)
        self,
        edge: Any,
        speed: float,
        length: float,
        width: float,
        allow: str | None = None,
        disallow: str | None = None,
        acceleration: bool = False,
    ) -> Any:
        lane = super().addLane(edge, speed, length, width, allow, disallow, acceleration)
        self.access[lane] = (allow, disallow)
        return lane


def _read_sumolib(path: Path) -> _SumolibNet:
    """sumolib's full net: internal lanes, pedestrian connections, every program, foes."""
    net = _SumolibNet()
    try:
        sumolib.net.readNet(
            str(path),
            net=net,
            withInternal=True,
            withPrograms=True,
            withPedestrianConnections=True,
            withMacroConnectors=True,
            withFoes=True,
            maxcache=0,  # no routing cache: ccsim does not route on it
        )
    except xml.sax.SAXParseException as exc:
        raise ScenarioError(
            path,
            f"malformed network XML: {exc.getMessage()}: line {exc.getLineNumber()}, "
            f"column {exc.getColumnNumber()}",
        ) from None
    except KeyError as exc:
        raise ScenarioError(
            path, f"malformed network XML: missing attribute or unknown id {exc}"
        ) from None
    except ValueError as exc:  # a number or shape that does not parse
        raise ScenarioError(path, f"malformed network XML: {exc}") from None
    except (IndexError, AttributeError, TypeError) as exc:  # sumolib tripped over a broken net
        raise ScenarioError(path, f"malformed network XML: {type(exc).__name__}: {exc}") from None
    return net


def _access(text: str | None) -> frozenset[str] | None:
    """Vehicle classes of an ``allow``/``disallow`` attribute; None when it is absent or empty."""
    return frozenset((text or "").split()) or None


def read_network(path: Path) -> Network:
    """Read ``path`` with sumolib into a :class:`Network`. Raises :class:`ScenarioError` naming
    the file when it is not a well-formed SUMO network."""
    source = _read_sumolib(path)
    location = source._location  # sumolib has no getter for the whole <location>
    try:
        net = Network(
            path=path,
            location=Location(
                net_offset=_point(location.get("netOffset", "0,0")),
                boundary=_boundary(location.get("convBoundary", "0,0,0,0")),
                projection=location.get("projParameter", "!"),
            ),
        )
    except ValueError as exc:
        raise ScenarioError(path, f"malformed network XML: <location>: {exc}") from None
    _add_edges(net, source)
    _add_junctions(net, source)
    for tls in source.getTrafficLights():
        net.traffic_lights[tls.getID()] = _traffic_light(tls, path)
    return net


def _point(text: str) -> Point:
    x, y = (float(v) for v in text.split(",")[:2])
    return x, y


def _boundary(text: str) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(v) for v in text.split(","))
    return x0, y0, x1, y1


def _add_edges(net: Network, source: _SumolibNet) -> None:
    """Lanes, internal lane lengths, edge ends and names, and where each lane's connections go."""
    for edge in source.getEdges(withInternal=True):
        internal = edge.getFunction() in _INTERNAL_FUNCTIONS
        if not internal:
            start, end = edge.getFromNode(), edge.getToNode()
            net.edge_ends[edge.getID()] = (
                start.getID() if start is not None else "",
                end.getID() if end is not None else "",
            )
            if edge.getName():
                net.edge_names[edge.getID()] = edge.getName()
        for lane in edge.getLanes():
            lane_id = lane.getID()
            if internal:
                net.internal_length_m[lane_id] = lane.getLength()
                for conn in lane.getOutgoing():
                    if conn.getViaLaneID():
                        net.internal_next[lane_id] = conn.getViaLaneID()
                continue
            allow, disallow = source.access.get(lane, (None, None))
            net.lanes[lane_id] = Lane(
                id=lane_id,
                edge=edge.getID(),
                length_m=lane.getLength(),
                speed_mps=lane.getSpeed(),
                allow=_access(allow),
                disallow=_access(disallow),
                shape=tuple(lane.getShape()),
            )
            for conn in lane.getOutgoing():
                net.lane_targets.setdefault(lane_id, set()).add(conn.getTo().getID())
                if conn.getTo().getFunction() not in _INTERNAL_FUNCTIONS:
                    net.lane_sources.setdefault(conn.getToLane().getID(), []).append(lane_id)


def _add_junctions(net: Network, source: _SumolibNet) -> None:
    for node in source.getNodes():
        if node.getType() is None:  # only named as an edge's end: no <junction> for it
            continue
        net.junction_xy[node.getID()] = node.getCoord()
        net.junction_types[node.getID()] = node.getType()
        net.junction_shapes[node.getID()] = tuple(node.getShape() or ())


def _traffic_light(tls: Any, path: Path) -> TrafficLight:
    """Programs, links and conflicts of one sumolib ``TLS``.

    Links come in the file's order. A link out of a walking area is a pedestrian crossing's
    signal. Two links are in conflict when their junction's ``<request foes=...>`` says so,
    with sumolib numbering the junction's links (``Connection.getJunctionIndex``).
    """
    light = TrafficLight(tls.getID())
    for program in tls.getPrograms().values():
        light.programs.append(
            Program(
                id=program._id,  # sumolib has no getter for a program's id
                type=program.getType(),
                offset_s=float(program.getOffset()),
                phases=tuple(_phase(p) for p in program.getPhases()),
            )
        )
    by_junction: dict[Any, dict[int, int]] = {}  # junction -> its link index -> signal link index
    for from_lane, to_lane, index in tls.getConnections():
        conn = next(
            c
            for c in from_lane.getOutgoing()
            if c.getToLane() is to_lane and c.getTLSID() == light.id and c.getTLLinkIndex() == index
        )
        if from_lane.getEdge().getFunction() == "walkingarea":
            light.crossing_links.add(index)
            light.crossing_lanes[index] = to_lane.getID()
        else:
            light.links.append(
                Link(index, from_lane.getID(), to_lane.getID(), conn.getDirection(), conn.getViaLaneID())
            )
        junction_index = conn.getJunctionIndex()
        if index >= 0 and junction_index >= 0:
            by_junction.setdefault(conn.getJunction(), {})[junction_index] = index
    for junction, signal_of in by_junction.items():
        for i, link_i in signal_of.items():
            for j, link_j in signal_of.items():
                try:
                    foes = junction.areFoes(i, j)
                except KeyError:
                    raise ScenarioError(
                        path,
                        f"malformed network XML: junction '{junction.getID()}' has no "
                        f'<request index="{i}">',
                    ) from None
                if foes:
                    light.conflicts.add((link_i, link_j))
                    light.conflicts.add((link_j, link_i))
    return light


def _phase(phase: Any) -> Phase:
    return Phase(
        duration_s=float(phase.duration),
        state=phase.state,
        # sumolib gives -1 for a bound the net does not set
        min_dur_s=float(phase.minDur) if phase.minDur >= 0 else None,
        max_dur_s=float(phase.maxDur) if phase.maxDur >= 0 else None,
        name=phase.name,
        next=tuple(phase.next or ()),
    )


def check_xml(path: Path, what: str) -> None:
    """Stream through ``path`` to prove it is well-formed XML, naming it if not."""
    try:
        for _event, el in ET.iterparse(path, events=("end",)):
            el.clear()
    except ET.ParseError as exc:
        raise ScenarioError(path, f"malformed {what} XML: {exc}") from None
