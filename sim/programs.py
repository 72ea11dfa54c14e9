"""Signal programs declared outside the net, in a scenario's additional files.

A city's own timings often come as ``<tlLogic>`` elements in an additional file rather than in
the net (the Bologna scenarios' ``utopia`` programs, a retimed plan). SUMO makes the program
loaded last the one that runs; ccsim puts such programs first in each signal's list, so that
``programs[0]`` is, as everywhere else, the program the intersection runs on its own - the one
the guard learns which streams may go together from, and the one controllers start from.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path

from sim.errors import ScenarioError
from sim.network import Network, Phase, Program, TrafficLight


def _number(el: ET.Element, name: str, path: Path) -> float | None:
    text = el.get(name)
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise ScenarioError(
            path, f"tlLogic '{el.get('id')}': {name}={text!r} is not a number of seconds"
        ) from None


def read_programs(path: Path) -> list[tuple[str, Program]]:
    """(signal id, program) of every ``<tlLogic>`` in an additional file, in file order."""
    found: list[tuple[str, Program]] = []
    try:
        for _event, el in ET.iterparse(path, events=("end",)):
            if el.tag != "tlLogic":
                if el.tag in ("vehicle", "flow", "trip", "person", "route"):
                    el.clear()
                continue
            phases = tuple(
                Phase(
                    duration_s=_number(p, "duration", path) or 0.0,
                    state=p.get("state", ""),
                    min_dur_s=_number(p, "minDur", path),
                    max_dur_s=_number(p, "maxDur", path),
                    name=p.get("name", ""),
                )
                for p in el.iter("phase")
            )
            program = Program(
                id=el.get("programID", "0"),
                type=el.get("type", "static"),
                offset_s=_number(el, "offset", path) or 0.0,
                phases=phases,
            )
            found.append((el.get("id", ""), program))
            el.clear()
    except ET.ParseError as exc:
        raise ScenarioError(path, f"malformed additional XML: {exc}") from None
    return found


def add_programs(network: Network, paths: Iterable[Path]) -> None:
    """Put the programs of ``paths`` (additional files, in load order) first in their signals'
    lists, the last loaded foremost; a program for an unknown signal or of the wrong length is
    a scenario error naming the file."""
    for path in paths:
        for tls_id, program in read_programs(path):
            tls: TrafficLight | None = network.traffic_lights.get(tls_id)
            if tls is None or not tls.programs:
                continue  # SUMO itself rejects these; nothing for ccsim to learn
            n = tls.link_count
            bad = [p.state for p in program.phases if len(p.state) != n]
            if not program.phases or bad:
                raise ScenarioError(
                    path,
                    f"tlLogic '{tls_id}' program '{program.id}': expected phases of {n} states "
                    f"(the signal's links), got {bad[:1] or 'no phases'}",
                )
            tls.programs[:] = [program, *(p for p in tls.programs if p.id != program.id)]


def program_element(tls_id: str, program: Program) -> ET.Element:
    """``program`` as the ``<tlLogic>`` of an additional file (the inverse of
    :func:`read_programs`): durations, and bounds, names and successors where a phase has them."""
    logic = ET.Element(
        "tlLogic", id=tls_id, type=program.type, programID=program.id,
        offset=f"{program.offset_s:g}",
    )  # fmt: skip
    for phase in program.phases:
        attrs = {"duration": f"{phase.duration_s:g}", "state": phase.state}
        if phase.min_dur_s is not None:
            attrs["minDur"] = f"{phase.min_dur_s:g}"
        if phase.max_dur_s is not None:
            attrs["maxDur"] = f"{phase.max_dur_s:g}"
        if phase.name:
            attrs["name"] = phase.name
        if phase.next:
            attrs["next"] = " ".join(str(k) for k in phase.next)
        ET.SubElement(logic, "phase", attrs)
    return logic
