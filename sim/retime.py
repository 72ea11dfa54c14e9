"""Fixed-time plans timed once from the demand (Webster, 1958), as a traffic engineer times them.

The engineer's fixed plan is the reference a new controller must beat, so it should be a good one,
not whatever cycle netconvert wrote. ``ccsim retime`` takes the scenario's demand from its route
files (the flows and vehicles of the run's hour, each route walked through the signals it
crosses), turns it into a flow per approach lane, and times every signal's own program:

- each green phase carries the flow of its busiest lane; its flow ratio is ``y = q / s`` with the
  saturation flow ``s`` = 1800 veh/h per lane;
- the cycle is Webster's ``C = (1.5 L + 5) / (1 - Y)``, 40..120 s, ``L`` the clearances plus 2 s
  of start-up per phase, ``Y`` the sum of the phases' ratios; greens share ``C - L`` in proportion
  to ``y``, none below the phase's minimum (its walk, where it serves a crossing);
- ``cycle="keep"`` keeps each program's own cycle and offset and re-splits only its greens: the
  way to retime a coordinated arterial without breaking its green wave.

Yellow, red-amber and all-red phases keep the durations the net gives them. The result is an
additional file of ``<tlLogic programID="webster">`` that a scenario names in ``[signals] plans``.
"""

from __future__ import annotations

import itertools
import math
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sim.controllers.phases import SATURATION_VEH_S, intersection_phases
from sim.controllers.webster import webster_greens
from sim.errors import ScenarioError
from sim.guard import IntersectionGuard, unsupported
from sim.network import Network, Phase, Program
from sim.programs import program_element

PROGRAM_ID = "webster"
CYCLES = ("own", "keep")
_EXP = re.compile(r"exp\(\s*([0-9.eE+-]+)\s*\)")


@dataclass
class Demand:
    """Vehicles per hour on each signalised approach lane, from a scenario's route files."""

    lane_veh_h: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    vehicles: float = 0.0
    """Vehicles (expected, for random flows) departing in the window, on routes with edges."""
    unrouted: float = 0.0
    """Vehicles the files give no edges for (trips, flows from/to): routed by SUMO at run time,
    so not in ``lane_veh_h``."""


def _float(el: ET.Element, name: str, path: Path, default: float | None = None) -> float | None:
    text = el.get(name)
    if text is None:
        return default
    try:
        return float(text)
    except ValueError:
        raise ScenarioError(
            path, f"<{el.tag} id='{el.get('id', '')}'>: {name}={text!r} is not a number"
        ) from None


def _flow_count(el: ET.Element, path: Path, begin_s: float, end_s: float) -> float:
    """Expected vehicles of a ``<flow>`` departing inside [begin_s, end_s)."""
    start = _float(el, "begin", path, 0.0) or 0.0
    stop = _float(el, "end", path, None)
    number = _float(el, "number", path, None)
    per_h: float | None = None
    if (vph := _float(el, "vehsPerHour", path, None)) is not None:
        per_h = vph
    elif (period := el.get("period")) is not None:
        match = _EXP.fullmatch(period.strip())
        if match:
            per_h = float(match.group(1)) * 3600.0
        else:
            seconds = _float(el, "period", path)
            per_h = 3600.0 / seconds if seconds else 0.0
    elif (probability := _float(el, "probability", path, None)) is not None:
        per_h = probability * 3600.0  # one chance per second of a 1 s step
    if stop is None:  # SUMO spreads a flow without end up to the simulation's end
        stop = start + number * 3600.0 / per_h if number is not None and per_h else end_s
    span = max(stop - start, 0.0)
    if per_h is None:
        if number is None or span <= 0:
            return 0.0
        per_h = number * 3600.0 / span
    overlap = max(0.0, min(stop, end_s) - max(start, begin_s))
    count = per_h * overlap / 3600.0
    return min(count, number) if number is not None else count


def read_demand(network: Network, route_files: Iterable[Path], begin_s: float, end_s: float) -> Demand:
    """The demand of ``route_files`` in [begin_s, end_s) on the signalised approach lanes of
    ``network``: each vehicle's route is walked edge by edge, and at every signal it passes, its
    movement (approach edge -> exit edge) is shared among the lanes that have that movement."""
    movements: dict[tuple[str, str], list[str]] = defaultdict(list)
    for tls in network.traffic_lights.values():
        for link in tls.links:
            lane = network.lanes.get(link.from_lane)
            if lane is None or not lane.carries_vehicles:
                continue
            key = (lane.edge, link.to_lane.rsplit("_", 1)[0])
            if lane.id not in movements[key]:
                movements[key].append(lane.id)
    demand = Demand()
    routes: dict[str, list[tuple[list[str], float]]] = {}

    def add(edges: list[str], count: float) -> None:
        demand.vehicles += count
        for a, b in itertools.pairwise(edges):
            lanes = movements.get((a, b), [])
            for lane in lanes:
                demand.lane_veh_h[lane] += count / len(lanes) * 3600.0 / (end_s - begin_s)

    for path in route_files:
        try:
            tree = ET.parse(path)
        except ET.ParseError as exc:
            raise ScenarioError(path, f"malformed route XML: {exc}") from None
        root = tree.getroot()
        for el in root:
            if el.tag == "route" and el.get("id"):
                routes[el.get("id", "")] = [(el.get("edges", "").split(), 1.0)]
            elif el.tag == "routeDistribution" and el.get("id"):
                members = [
                    (r.get("edges", "").split(), _float(r, "probability", path, 1.0) or 0.0)
                    for r in el.iter("route")
                ]
                total = sum(p for _, p in members) or 1.0
                routes[el.get("id", "")] = [(e, p / total) for e, p in members]
        for el in root:
            if el.tag == "vehicle":
                depart = el.get("depart", "0")
                try:
                    t = float(depart)
                except ValueError:
                    t = begin_s  # "triggered", "now": departs within the run
                count = 1.0 if begin_s <= t < end_s else 0.0
            elif el.tag == "flow":
                count = _flow_count(el, path, begin_s, end_s)
            elif el.tag == "trip":
                at = _float(el, "depart", path, 0.0) or 0.0
                demand.unrouted += 1.0 if begin_s <= at < end_s else 0.0
                continue
            else:
                continue
            if count <= 0:
                continue
            inline = el.find("route")
            if inline is not None:
                choices = [(inline.get("edges", "").split(), 1.0)]
            elif el.get("route") in routes:
                choices = routes[el.get("route", "")]
            elif el.get("route"):
                raise ScenarioError(
                    path,
                    f"<{el.tag} id='{el.get('id', '')}'> uses route '{el.get('route')}'",
                    expected="a <route> or <routeDistribution> defined before it in the file",
                )
            else:
                demand.unrouted += count  # from/to only: SUMO routes it at run time
                continue
            for edges, share in choices:
                add(edges, count * share)
    return demand


@dataclass(frozen=True)
class Timing:
    """A signal's retimed program, and the figures it came from."""

    tls: str
    program: Program
    cycle_s: float
    flow_ratios: list[float]
    greens_s: list[float]
    note: str = ""


def _whole_seconds(wanted: list[float]) -> list[float]:
    """``wanted`` in whole seconds (at least 1 each) with the same total, rounded to the
    nearest second: the largest remainders get the spare seconds, so a kept cycle stays whole."""
    floors = [max(1, math.floor(w)) for w in wanted]
    spare = max(round(sum(wanted)) - sum(floors), 0)
    order = sorted(range(len(wanted)), key=lambda k: wanted[k] - math.floor(wanted[k]), reverse=True)
    for k in order[:spare]:
        floors[k] += 1
    return [float(f) for f in floors]


def _write_greens(base: Program, indices: list[int], greens: list[float], offset_s: float) -> Program:
    """``base`` with each green phase (and every other phase showing the same state) lasting
    its share of ``greens``, as a static (fixed-time) program (an actuated one would not be fixed)."""
    states = {base.phases[i].state: g for i, g in zip(indices, greens, strict=True)}
    shown: dict[str, int] = defaultdict(int)
    for phase in base.phases:
        if phase.state in states:
            shown[phase.state] += 1
    wanted = [states[p.state] / shown[p.state] for p in base.phases if p.state in states]
    durations = iter(_whole_seconds(wanted))
    phases: list[Phase] = []
    for phase in base.phases:
        if phase.state not in states:
            phases.append(phase)
            continue
        phases.append(Phase(next(durations), phase.state, name=phase.name, next=phase.next))
    return Program(PROGRAM_ID, "static", offset_s, tuple(phases))


def retime(
    network: Network,
    demand: Demand,
    step_s: float = 1.0,
    clearance: str = "net",
    cycle: str = "own",
) -> list[Timing]:
    """A Webster-timed copy of every drivable signal's own program (see the module text)."""
    if cycle not in CYCLES:
        raise ValueError(f"cycle must be one of {CYCLES}, not {cycle!r}")
    timings: list[Timing] = []
    for tls in network.traffic_lights.values():
        if not tls.programs:
            continue
        base = tls.programs[0]
        why = unsupported(tls)
        if why is not None:
            timings.append(Timing(tls.id, base, base.cycle_s, [], [], note=f"kept: {why}"))
            continue
        guard = IntersectionGuard.build(tls, network, step_s, clearance)
        phases = intersection_phases(guard, network)
        if phases.count < 2:
            timings.append(Timing(tls.id, base, base.cycle_s, [], [], note="kept: one phase"))
            continue
        ratios = [
            max((demand.lane_veh_h.get(lane, 0.0) for lane in served), default=0.0)
            / 3600.0
            / SATURATION_VEH_S
            for served in phases.lanes
        ]
        n = phases.count
        switch = [phases.switch_s[p][(p + 1) % n] for p in range(n)]
        _cycle, greens = webster_greens(ratios, phases.min_green_s, switch)
        green_states = {base.phases[i].state for i in phases.indices}
        fixed_s = sum(p.duration_s for p in base.phases if p.state not in green_states)
        if cycle == "keep":
            available = base.cycle_s - fixed_s
            minimum = sum(phases.min_green_s)
            weights = ratios if sum(ratios) > 0 else [1.0] * n
            spare = max(available - minimum, 0.0)
            greens = [
                m + spare * w / sum(weights) for m, w in zip(phases.min_green_s, weights, strict=True)
            ]
        program = _write_greens(base, phases.indices, greens, base.offset_s)
        note = "" if sum(ratios) < 0.95 else "oversaturated: flow ratios sum to >= 0.95"
        timings.append(Timing(tls.id, program, program.cycle_s, ratios, greens, note=note))
    return timings


def plans_xml(timings: list[Timing], source: str) -> ET.Element:
    """The ``<additional>`` of the retimed programs, one comment per signal with its figures."""
    root = ET.Element("additional")
    root.append(ET.Comment(f" Webster-timed fixed plans from the demand of {source} (ccsim retime) "))
    for timing in timings:
        if timing.program.id != PROGRAM_ID:
            root.append(ET.Comment(f" {timing.tls}: {timing.note} "))
            continue
        ratios = ", ".join(f"{y:.2f}" for y in timing.flow_ratios)
        root.append(
            ET.Comment(
                f" {timing.tls}: cycle {timing.cycle_s:g} s, flow ratios {ratios}"
                + (f"; {timing.note}" if timing.note else "")
                + " "
            )
        )
        root.append(program_element(timing.tls, timing.program))
    ET.indent(root)
    return root
