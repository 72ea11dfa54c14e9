"""Detectors placed on every signalised approach, the only eyes adaptive controllers have.

Each incoming vehicle lane of a signal gets:

* a **stop-line** presence zone (a SUMO lane-area detector, like a radar or video presence zone)
  of ``stopline_length_m`` ending at the stop line: vehicles present, halting (queued) vehicles,
  occupancy;
* an **advance** loop (a SUMO induction loop) ``advance_distance_m`` upstream of the stop line:
  vehicles passing, time since the last detection (the gap), occupancy;
* where the scenario has buses, a **transit** loop at the advance position that only answers to
  bus types, as a bus's priority-request transponder would; likewise an **emergency** loop for
  emergency vehicles (their pre-emption emitters).

On real nets an approach is often cut into short edges: a zone or loop that does not fit on the
approach lane reaches upstream over the lanes that lead straight into it (each the only lane
feeding the next, at no other signal); only where the road behind branches or another signal
stands is it shorter. A scenario may change the distances in ``[detectors]`` of its
``scenario.toml``.

Loops count as loops do: a vehicle once, when it reaches the loop, however long it stands there
(the sensor layer counts the vehicle ids newly over each loop, step by step).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated

from pydantic import Field
from pydantic.dataclasses import dataclass as pydantic_dataclass

from sim.config_model import CONFIG
from sim.network import Network

Positive = Annotated[float, Field(strict=True, gt=0.0)]


@pydantic_dataclass(frozen=True, config=CONFIG)
class DetectorConfig:
    """Placement of the automatic detectors (m) and how often they report (s); ``[detectors]``
    of scenario.toml (the scenario checks the period against its step)."""

    stopline_length_m: Positive = 60.0
    advance_distance_m: Positive = 60.0
    reporting_period_s: Positive = 1.0


class DetectorKind(Enum):
    STOPLINE = "stopline"
    ADVANCE = "advance"
    TRANSIT = "transit"
    EMERGENCY = "emergency"


PRIORITY_CLASSES = {DetectorKind.TRANSIT: "bus", DetectorKind.EMERGENCY: "emergency"}
"""The SUMO vehicle class each priority loop answers to."""


@dataclass(frozen=True)
class Detector:
    id: str
    kind: DetectorKind
    tls: str
    lane: str
    """The approach lane it reports for (where the signal's stop line is)."""
    position_m: float
    """Start of the zone (stop line) or loop position, on the first lane of :attr:`path`."""
    distance_to_stopline_m: float
    path: tuple[str, ...] = ()
    """The lanes it lies on, upstream first, ending with :attr:`lane` for a zone; a loop lies
    on the first. Empty: :attr:`lane` alone."""

    @property
    def lanes(self) -> tuple[str, ...]:
        return self.path or (self.lane,)


def _upstream_chain(
    network: Network, lane: str, wanted_m: float, taken: dict[str, str], signalled: set[str]
) -> list[str]:
    """``lane`` and, while it is shorter than ``wanted_m``, the lanes that lead straight into it
    (each the only lane feeding the next, at no signal, not in a zone of another approach; a
    lane that widens into turn lanes feeds the zones of each): on real nets an approach is often
    split into short edges, and a zone or loop on the last one alone would see a car or two."""
    chain = [lane]
    covered = network.lanes[lane].length_m
    current = lane
    edge = network.lanes[lane].edge
    while covered < wanted_m:
        sources = network.lane_sources.get(current, [])
        if len(sources) != 1:
            break
        source = network.lanes.get(sources[0])
        if source is None or source.id in signalled or source.id in chain:
            break
        if not source.carries_vehicles or taken.get(source.id, edge) != edge:
            break
        chain.insert(0, source.id)
        taken[source.id] = edge
        covered += source.length_m
        current = source.id
    return chain


def _position(network: Network, chain: list[str], distance_m: float) -> tuple[int, float]:
    """(index in ``chain``, position on that lane) of the point ``distance_m`` upstream of the
    end of the chain's last lane."""
    behind = 0.0
    for k in range(len(chain) - 1, -1, -1):
        length = network.lanes[chain[k]].length_m
        if distance_m <= behind + length or k == 0:
            return k, max(0.0, length - (distance_m - behind))
        behind += length
    return 0, 0.0


def place_detectors(
    network: Network, config: DetectorConfig, *, priority: Iterable[DetectorKind] = ()
) -> list[Detector]:
    """Detectors for every incoming vehicle lane of every signal, in a stable order. Zones and
    loops reach upstream over the lanes leading straight into a short approach lane."""
    detectors: list[Detector] = []
    approaches = [
        (tls_id, lane)
        for tls_id in sorted(network.traffic_lights)
        for lane in network.traffic_lights[tls_id].incoming_lanes(network)
    ]
    signalled = {lane.id for _, lane in approaches}
    taken: dict[str, str] = {}  # upstream lane -> the approach edge whose zones reach it
    wanted = max(config.stopline_length_m, config.advance_distance_m)
    for tls_id, lane in approaches:
        chain = _upstream_chain(network, lane.id, wanted, taken, signalled)
        covered = sum(network.lanes[c].length_m for c in chain)
        zone = min(config.stopline_length_m, max(1.0, covered - 0.5))
        first, start = _position(network, chain, zone)
        detectors.append(
            Detector(f"ccsim.stop.{lane.id}", DetectorKind.STOPLINE, tls_id, lane.id, start, zone,
                     tuple(chain[first:]) if first < len(chain) - 1 else ())
        )  # fmt: skip
        advance = min(config.advance_distance_m, max(1.0, covered - 1.0))
        at, position = _position(network, chain, advance)
        on = (chain[at],) if at < len(chain) - 1 else ()
        for kind in [DetectorKind.ADVANCE, *priority]:
            detectors.append(
                Detector(f"ccsim.{kind.value}.{lane.id}", kind, tls_id, lane.id, position, advance, on)
            )
    return detectors


def write_detectors(
    path: Path, detectors: Iterable[Detector], *, types: dict[DetectorKind, set[str]]
) -> Path:
    """SUMO additional file declaring ``detectors`` (their own outputs discarded); priority loops
    answer only to the vehicle types in ``types``."""
    root = ET.Element("additional")
    for det in detectors:
        if det.kind is DetectorKind.STOPLINE:
            attrs = {"id": det.id, "pos": f"{det.position_m:.2f}", "period": "3600",
                     "file": "/dev/null", "friendlyPos": "true"}  # fmt: skip
            if len(det.lanes) > 1:  # a zone over several lanes, up to the stop line
                attrs |= {"lanes": " ".join(det.lanes), "endPos": "-0.01"}
            else:
                attrs |= {"lane": det.lane, "length": f"{det.distance_to_stopline_m:.2f}"}
            ET.SubElement(root, "laneAreaDetector", attrs)
        else:
            attrs = {"id": det.id, "lane": det.lanes[0], "pos": f"{det.position_m:.2f}",
                     "period": "3600", "file": "/dev/null", "friendlyPos": "true"}  # fmt: skip
            if det.kind in PRIORITY_CLASSES:
                attrs["vTypes"] = " ".join(sorted(types.get(det.kind, ())))
            ET.SubElement(root, "inductionLoop", attrs)
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path


def priority_types(files: Iterable[Path]) -> dict[DetectorKind, set[str]]:
    """Vehicle type ids per priority loop kind (buses, emergency vehicles) declared in route or
    additional files; kinds without any type are left out."""
    wanted = {vclass: kind for kind, vclass in PRIORITY_CLASSES.items()}
    types: dict[DetectorKind, set[str]] = {}
    for path in files:
        for _event, el in ET.iterparse(path, events=("end",)):
            if el.tag == "vType":
                kind = wanted.get(el.get("vClass", ""))
                if kind is not None:
                    types.setdefault(kind, set()).add(el.get("id", ""))
            elif el.tag in ("vehicle", "flow", "trip", "person", "personFlow"):
                el.clear()
    return types
