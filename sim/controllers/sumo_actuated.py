"""``sumo-actuated``: SUMO's own gap-based actuation on the net's phases, as a reference peer.

Each signal's program from the net is copied as an ``actuated`` program (SUMO then places its own
detectors and extends greens while vehicles keep arriving). Durations follow netconvert's defaults
for actuated programs: a green may shrink to 5 s and stretch to 50 s (``tls.min-dur``,
``tls.max-dur``). A green that also serves a pedestrian crossing keeps its full length as the
minimum, so the walk and clearance time are never cut. Yellow and all-red phases are unchanged.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from sim.controllers.base import ControlContext, Controller, register
from sim.network import Network, Phase, Program, TrafficLight
from sim.programs import program_element

PROGRAM_ID = "ccsim-actuated"
MIN_GREEN_S = 5.0
MAX_GREEN_S = 50.0


def is_transition(phase: Phase) -> bool:
    """Yellow or all-red: no link has right of way."""
    return "y" in phase.state.lower() or not any(c in "Gg" for c in phase.state)


def actuated_bounds(phase: Phase, crossing_links: set[int]) -> tuple[float, float]:
    """(minDur, maxDur) in s for a green phase of the actuated copy."""
    serves_pedestrians = any(i < len(phase.state) and phase.state[i] in "Gg" for i in crossing_links)
    minimum = phase.duration_s if serves_pedestrians else min(phase.duration_s, MIN_GREEN_S)
    return minimum, max(phase.duration_s, MAX_GREEN_S)


def actuated_program(tls: TrafficLight) -> ET.Element:
    base = tls.programs[0]
    phases = []
    for phase in base.phases:
        low, high = (None, None) if is_transition(phase) else actuated_bounds(phase, tls.crossing_links)
        phases.append(Phase(phase.duration_s, phase.state, low, high))
    return program_element(tls.id, Program(PROGRAM_ID, "actuated", base.offset_s, tuple(phases)))


@register("sumo-actuated")
class SumoActuated(Controller):
    def __init__(self) -> None:
        self._tls_ids: list[str] = []

    def additional_files(self, network: Network, workdir: Path) -> list[Path]:
        root = ET.Element("additional")
        for tls in network.traffic_lights.values():
            if tls.programs:
                root.append(actuated_program(tls))
                self._tls_ids.append(tls.id)
        path = workdir / "sumo-actuated.add.xml"
        ET.indent(root)
        ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
        return [path]

    def start(self, context: ControlContext) -> None:
        for tls in self._tls_ids:
            context.set_program(tls, PROGRAM_ID)
