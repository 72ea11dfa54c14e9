"""A light, read-only model of a SUMO network: lanes, signalised intersections and their programs.

Read by streaming the ``.net.xml`` with ``iterparse`` and freeing elements as it goes (as sumolib
does for big nets), keeping only what controllers, monitors and the control center need. It does
not replace sumolib; it keeps the simulation free of a full net object per process.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from sim.errors import ScenarioError

_PEDESTRIAN_ONLY = frozenset({"pedestrian"})


@dataclass(frozen=True)
class Lane:
    """A normal (non-internal) lane. Length in m, speed limit in m/s."""

    id: str
    edge: str
    length_m: float
    speed_mps: float
    allow: frozenset[str] | None
    disallow: frozenset[str] | None = None

    @property
    def carries_vehicles(self) -> bool:
        """False for sidewalks and other pedestrian-only lanes."""
        return self.allow is None or bool(self.allow - _PEDESTRIAN_ONLY)


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


@dataclass
class Network:
    """What ccsim needs of a ``.net.xml``."""

    path: Path
    lanes: dict[str, Lane] = field(default_factory=dict)
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


@dataclass
class _Junction:
    inc_lanes: list[str]
    foes: dict[int, str]


@dataclass(frozen=True)
class _Connection:
    from_lane: str
    to_edge: str
    tls: str | None
    link_index: int
    to_lane: str = ""


def _opt_float(value: str | None) -> float | None:
    return None if value is None else float(value)


def read_network(path: Path) -> Network:
    """Stream ``path`` into a :class:`Network`. Raises :class:`ScenarioError` on malformed XML."""
    net = Network(path=path)
    edge_id = ""
    internal = False
    edge_function: dict[str, str] = {}
    junctions: dict[str, _Junction] = {}
    connections: list[_Connection] = []
    try:
        for event, el in ET.iterparse(path, events=("start", "end")):
            tag = el.tag
            if event == "start":
                if tag == "edge":
                    edge_id = el.get("id", "")
                    edge_function[edge_id] = el.get("function", "normal")
                    internal = edge_function[edge_id] in ("internal", "crossing", "walkingarea")
                    if not internal:
                        net.edge_ends[edge_id] = (el.get("from", ""), el.get("to", ""))
                continue
            if tag == "lane" and internal:
                net.internal_length_m[el.get("id", "")] = float(el.get("length", "0"))
            elif tag == "lane":
                allow = el.get("allow")
                net.lanes[el.get("id", "")] = Lane(
                    id=el.get("id", ""),
                    edge=edge_id,
                    length_m=float(el.get("length", "0")),
                    speed_mps=float(el.get("speed", "13.89")),
                    allow=frozenset(allow.split()) if allow else None,
                    disallow=frozenset(el.get("disallow", "").split()) or None,
                )
            elif tag == "tlLogic":
                tls = net.traffic_lights.setdefault(el.get("id", ""), TrafficLight(el.get("id", "")))
                phases = tuple(
                    Phase(
                        duration_s=float(p.get("duration", "0")),
                        state=p.get("state", ""),
                        min_dur_s=_opt_float(p.get("minDur")),
                        max_dur_s=_opt_float(p.get("maxDur")),
                        name=p.get("name", ""),
                    )
                    for p in el.iter("phase")
                )
                tls.programs.append(
                    Program(
                        id=el.get("programID", "0"),
                        type=el.get("type", "static"),
                        offset_s=float(el.get("offset", "0")),
                        phases=phases,
                    )
                )
            elif tag == "connection":
                from_lane = f"{el.get('from')}_{el.get('fromLane')}"
                tl = el.get("tl")
                to_lane = f"{el.get('to')}_{el.get('toLane')}"
                link_index = int(el.get("linkIndex", "-1"))
                connections.append(_Connection(from_lane, el.get("to", ""), tl, link_index, to_lane))
                if from_lane.startswith(":") and el.get("via"):
                    net.internal_next[from_lane] = el.get("via", "")
                if tl is None:
                    el.clear()
                    continue
                tls = net.traffic_lights.setdefault(tl, TrafficLight(tl))
                if el.get("from", "").startswith(":"):
                    # From a walking area onto a crossing: a pedestrian signal.
                    tls.crossing_links.add(int(el.get("linkIndex", "-1")))
                    tls.crossing_lanes[int(el.get("linkIndex", "-1"))] = (
                        f"{el.get('to')}_{el.get('toLane')}"
                    )
                    continue
                tls.links.append(
                    Link(
                        index=int(el.get("linkIndex", "-1")),
                        from_lane=f"{el.get('from')}_{el.get('fromLane')}",
                        to_lane=f"{el.get('to')}_{el.get('toLane')}",
                        direction=el.get("dir", ""),
                        via=el.get("via", ""),
                    )
                )
            elif tag == "junction" and el.get("type") != "internal":
                net.junction_xy[el.get("id", "")] = (
                    float(el.get("x", "0")),
                    float(el.get("y", "0")),
                )
                junctions[el.get("id", "")] = _Junction(
                    inc_lanes=el.get("incLanes", "").split(),
                    foes={int(r.get("index", "0")): r.get("foes", "") for r in el.iter("request")},
                )
            if tag in ("edge", "tlLogic", "junction", "connection"):
                el.clear()
    except ET.ParseError as exc:
        raise ScenarioError(path, f"malformed network XML: {exc}") from None
    except ValueError as exc:
        raise ScenarioError(path, f"bad number in network: {exc}") from None
    _add_conflicts(net, junctions, connections, edge_function)
    for conn in connections:
        if not conn.from_lane.startswith(":"):
            net.lane_targets.setdefault(conn.from_lane, set()).add(conn.to_edge)
            if conn.to_lane in net.lanes:
                net.lane_sources.setdefault(conn.to_lane, []).append(conn.from_lane)
    return net


def _add_conflicts(
    net: Network,
    junctions: dict[str, _Junction],
    connections: list[_Connection],
    edge_function: dict[str, str],
) -> None:
    """Fill each signal's conflict pairs from its junctions' ``<request foes=...>`` bits.

    A junction numbers its links by walking its incoming lanes in order and, for each, the lane's
    connections in file order, leaving out those into walking areas and those out of a walking
    area that do not enter a crossing (SUMO's own numbering of ``request`` indices).
    """
    outgoing: dict[str, list[_Connection]] = {}
    for conn in connections:
        outgoing.setdefault(conn.from_lane, []).append(conn)
    for junction in junctions.values():
        if not junction.foes:
            continue
        # (tls, tls link index) of each junction link index
        signal_of: dict[int, tuple[str, int]] = {}
        index = 0
        for lane in junction.inc_lanes:
            from_function = edge_function.get(lane.rsplit("_", 1)[0], "normal")
            for conn in outgoing.get(lane, []):
                to_function = edge_function.get(conn.to_edge, "normal")
                if to_function == "walkingarea" or (
                    from_function == "walkingarea" and to_function != "crossing"
                ):
                    continue
                if conn.tls is not None and conn.link_index >= 0:
                    signal_of[index] = (conn.tls, conn.link_index)
                index += 1
        for i, (tls_i, link_i) in signal_of.items():
            bits = junction.foes.get(i, "")
            for j, (tls_j, link_j) in signal_of.items():
                if tls_i == tls_j and len(bits) > j and bits[len(bits) - j - 1] == "1":
                    conflicts = net.traffic_lights[tls_i].conflicts
                    conflicts.add((link_i, link_j))
                    conflicts.add((link_j, link_i))


def check_xml(path: Path, what: str) -> None:
    """Stream through ``path`` to prove it is well-formed XML, naming it if not."""
    try:
        for _event, el in ET.iterparse(path, events=("end",)):
            el.clear()
    except ET.ParseError as exc:
        raise ScenarioError(path, f"malformed {what} XML: {exc}") from None
