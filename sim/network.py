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


def _opt_float(value: str | None) -> float | None:
    return None if value is None else float(value)


def read_network(path: Path) -> Network:
    """Stream ``path`` into a :class:`Network`. Raises :class:`ScenarioError` on malformed XML."""
    net = Network(path=path)
    edge_id = ""
    internal = False
    try:
        for event, el in ET.iterparse(path, events=("start", "end")):
            tag = el.tag
            if event == "start":
                if tag == "edge":
                    edge_id = el.get("id", "")
                    internal = el.get("function") in ("internal", "crossing", "walkingarea")
                continue
            if tag == "lane" and not internal:
                allow = el.get("allow")
                net.lanes[el.get("id", "")] = Lane(
                    id=el.get("id", ""),
                    edge=edge_id,
                    length_m=float(el.get("length", "0")),
                    speed_mps=float(el.get("speed", "13.89")),
                    allow=frozenset(allow.split()) if allow else None,
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
            elif tag == "connection" and "tl" in el.attrib:
                tls = net.traffic_lights.setdefault(el.attrib["tl"], TrafficLight(el.attrib["tl"]))
                if el.get("from", "").startswith(":"):
                    # From a walking area onto a crossing: a pedestrian signal.
                    tls.crossing_links.add(int(el.get("linkIndex", "-1")))
                    continue
                tls.links.append(
                    Link(
                        index=int(el.get("linkIndex", "-1")),
                        from_lane=f"{el.get('from')}_{el.get('fromLane')}",
                        to_lane=f"{el.get('to')}_{el.get('toLane')}",
                        direction=el.get("dir", ""),
                    )
                )
            elif tag == "junction" and el.get("type") != "internal":
                net.junction_xy[el.get("id", "")] = (
                    float(el.get("x", "0")),
                    float(el.get("y", "0")),
                )
            if tag in ("edge", "tlLogic", "junction", "connection"):
                el.clear()
    except ET.ParseError as exc:
        raise ScenarioError(path, f"malformed network XML: {exc}") from None
    except ValueError as exc:
        raise ScenarioError(path, f"bad number in network: {exc}") from None
    return net


def check_xml(path: Path, what: str) -> None:
    """Stream through ``path`` to prove it is well-formed XML, naming it if not."""
    try:
        for _event, el in ET.iterparse(path, events=("end",)):
            el.clear()
    except ET.ParseError as exc:
        raise ScenarioError(path, f"malformed {what} XML: {exc}") from None
