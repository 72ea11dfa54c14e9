"""Generate the ``corridor`` scenario: an arterial with five coordinated fixed-time signals.

The east-west arterial (2 lanes per direction, 50 km/h) has signals J1..J5 spaced 300-340 m,
each with a north and a south side street (1 lane per direction, 40 km/h), sidewalks and
signalised crossings.  All signals share one 90 s cycle; offsets give a green wave for the
eastbound (peak) direction at the progression speed.  The programs are built in two passes:
netconvert first generates its default phase sequence, which is then re-timed (arterial split
and offsets) and fed back as ``corridor.tll.xml``.

Run from anywhere: ``.venv/bin/python scenarios/corridor/generate.py``.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from itertools import accumulate, pairwise
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from _gen import (  # noqa: E402
    base_vtypes,
    edge,
    el,
    netconvert,
    poisson_flow,
    read_net,
    read_tl_logics,
    route,
    walkers,
    write_sumocfg,
    write_toml,
    write_xml,
)

NAME = "corridor"
SPACING_M = (320.0, 300.0, 340.0, 320.0)  # distance J1-J2, J2-J3, J3-J4, J4-J5
SIGNAL_X = tuple(accumulate(SPACING_M, initial=0.0))
APPROACH_M = 300.0  # arterial length beyond the first and last signal
SIDE_M = 200.0  # side street length
MAIN_SPEED = 13.89  # 50 km/h
SIDE_SPEED = 11.11  # 40 km/h

CYCLE_S = 90
# netconvert's phase order at each node: arterial green, arterial green with the crossings in
# clearance, yellow, all-red, then the same four for the side street.  Durations in seconds.
PHASE_S = (45, 5, 3, 2, 25, 5, 3, 2)
PROGRESSION_MS = 12.5  # green-wave design speed, below the limit to allow for platoon dispersion

# Demand, veh/h.  Eastbound is the peak direction.
W_TO_E, W_TO_SIDE = 720, 30  # from the west end: through, and to each of the 10 side exits
E_TO_W, E_TO_SIDE = 380, 15  # from the east end
SIDE_TO_E, SIDE_TO_W, SIDE_ACROSS = 40, 20, 20  # from each side street entry
PED_ACROSS_H = 40  # pedestrians per hour and direction crossing the arterial at each signal


def signals() -> list[str]:
    return [f"J{i + 1}" for i in range(len(SIGNAL_X))]


def plain_network() -> tuple[list[ET.Element], list[ET.Element]]:
    nodes = [
        el("node", id="W", x=-APPROACH_M, y=0.0, type="dead_end"),
        el("node", id="E", x=SIGNAL_X[-1] + APPROACH_M, y=0.0, type="dead_end"),
    ]
    edges = []
    chain = ["W", *signals(), "E"]
    for j, x in zip(signals(), SIGNAL_X, strict=True):
        nodes.append(el("node", id=j, x=x, y=0.0, type="traffic_light"))
        for side, y in (("N", SIDE_M), ("S", -SIDE_M)):
            s = f"{side}{j[1:]}"
            nodes.append(el("node", id=s, x=x, y=y, type="dead_end"))
            street = f"Cross Street {j[1:]}"
            edges += [edge(s, j, 1, SIDE_SPEED, 1, street), edge(j, s, 1, SIDE_SPEED, 1, street)]
    for a, b in pairwise(chain):
        edges += [edge(a, b, 2, MAIN_SPEED, 3, "Arterial"), edge(b, a, 2, MAIN_SPEED, 3, "Arterial")]
    return nodes, edges


def coordinated(logics: list[ET.Element]) -> list[ET.Element]:
    """Apply the common split and the green-wave offsets to netconvert's default programs."""
    if sum(PHASE_S) != CYCLE_S:
        raise ValueError(f"phase durations add up to {sum(PHASE_S)} s, not the {CYCLE_S} s cycle")
    for logic in logics:
        phases = logic.findall("phase")
        if len(phases) != len(PHASE_S):  # netconvert changed its default layout
            raise ValueError(f"{logic.get('id')}: {len(phases)} phases, expected {len(PHASE_S)}")
        for phase, dur in zip(phases, PHASE_S, strict=True):
            phase.set("duration", str(dur))
        # In SUMO a program with offset o runs its cycle o seconds late (checked with TraCI), so
        # a signal whose arterial green should start t = x / v after J1's gets offset t mod cycle.
        x = SIGNAL_X[int(logic.get("id", "J1")[1:]) - 1]
        logic.set("offset", str(round(x / PROGRESSION_MS) % CYCLE_S))
    return logics


def build_net() -> None:
    nodes, edges = plain_network()
    netconvert(HERE, NAME, nodes, edges)  # pass 1: netconvert's default phase sequence
    tll = coordinated(read_tl_logics(HERE / f"{NAME}.net.xml"))
    netconvert(HERE, NAME, nodes, edges, tll=tll)  # pass 2: re-timed and offset


def demand() -> dict[tuple[str, str], int]:
    """(origin edge, destination edge) -> veh/h."""
    ends = {"W": ("W_J1", "J1_W"), "E": (f"E_J{len(SIGNAL_X)}", f"J{len(SIGNAL_X)}_E")}
    sides = {f"{s}{j[1:]}": (f"{s}{j[1:]}_{j}", f"{j}_{s}{j[1:]}") for j in signals() for s in "NS"}
    od: dict[tuple[str, str], int] = {
        (ends["W"][0], ends["E"][1]): W_TO_E,
        (ends["E"][0], ends["W"][1]): E_TO_W,
    }
    for name, (src, dst) in sides.items():
        od[(ends["W"][0], dst)] = W_TO_SIDE
        od[(ends["E"][0], dst)] = E_TO_SIDE
        od[(src, ends["E"][1])] = SIDE_TO_E
        od[(src, ends["W"][1])] = SIDE_TO_W
        opposite = ("S" if name[0] == "N" else "N") + name[1:]
        od[(src, sides[opposite][1])] = SIDE_ACROSS
    return od


def build_demand() -> None:
    net = read_net(HERE / f"{NAME}.net.xml")
    routes, flows = [], []
    for (src, dst), veh_h in demand().items():
        rid = f"{src}__{dst}"
        routes.append(el("route", id=rid, edges=" ".join(route(net, [src, dst]))))
        flows.append(poisson_flow(rid, rid, veh_h))
    persons = [
        walkers(f"ped_{a}_{b}", f"{a}_{j}", f"{j}_{b}", PED_ACROSS_H)
        for j in signals()
        for a, b in ((f"N{j[1:]}", f"S{j[1:]}"), (f"S{j[1:]}", f"N{j[1:]}"))
    ]
    root = el("routes", [*routes, *flows, *persons])
    write_xml(HERE / f"{NAME}.rou.xml", root, "generated by generate.py")


def build_additional() -> None:
    write_xml(HERE / f"{NAME}.add.xml", el("additional", base_vtypes()), "generated by generate.py")


def main() -> None:
    build_net()
    build_additional()
    build_demand()
    write_sumocfg(HERE, NAME)
    write_toml(
        HERE, "Arterial with 5 coordinated fixed-time signals, eastbound green wave, 1 h", plans="plans"
    )


if __name__ == "__main__":
    main()
