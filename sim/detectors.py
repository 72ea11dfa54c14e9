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

Distances are clamped to the lane (short lanes get shorter zones). A scenario may change them in
``[detectors]`` of its ``scenario.toml``.

Loops count as loops do: a vehicle once, when it reaches the loop, however long it stands there
(the sensor layer counts the vehicle ids newly over each loop, step by step).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from sim.network import Network


@dataclass(frozen=True)
class DetectorConfig:
    """Placement of the automatic detectors (m) and how often they report (s)."""

    stopline_length_m: float = 60.0
    advance_distance_m: float = 60.0
    reporting_period_s: float = 1.0


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
    position_m: float
    """Start of the zone (stop line) or loop position, from the lane's upstream end."""
    distance_to_stopline_m: float


def place_detectors(
    network: Network, config: DetectorConfig, *, priority: Iterable[DetectorKind] = ()
) -> list[Detector]:
    """Detectors for every incoming vehicle lane of every signal, in a stable order."""
    detectors: list[Detector] = []
    for tls_id in sorted(network.traffic_lights):
        tls = network.traffic_lights[tls_id]
        for lane in tls.incoming_lanes(network):
            length = lane.length_m
            zone = min(config.stopline_length_m, max(1.0, length - 0.5))
            detectors.append(
                Detector(
                    f"ccsim.stop.{lane.id}", DetectorKind.STOPLINE, tls_id, lane.id, length - zone, zone
                )
            )
            advance = min(config.advance_distance_m, max(1.0, length - 1.0))
            kinds = [DetectorKind.ADVANCE, *priority]
            for kind in kinds:
                detectors.append(
                    Detector(
                        f"ccsim.{kind.value}.{lane.id}", kind, tls_id, lane.id, length - advance, advance
                    )
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
            ET.SubElement(
                root, "laneAreaDetector", id=det.id, lane=det.lane, pos=f"{det.position_m:.2f}",
                length=f"{det.distance_to_stopline_m:.2f}", period="3600", file="/dev/null",
                friendlyPos="true",
            )  # fmt: skip
        else:
            attrs = {"id": det.id, "lane": det.lane, "pos": f"{det.position_m:.2f}",
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
