"""Where devices stand: explicit site ids checked against the network, or automatic placement.

Automatic placement spreads ``count`` sites evenly over the district (a grid of about ``count``
cells, each taking the candidate nearest its centre; deterministic), so a handful of devices
covers the whole area rather than one corner:

* junction devices (enforcement cameras, pedestrian counters, air stations): signalised junctions
  fed by at least the median number of lanes (where the traffic is);
* radar points: mid-block vehicle edges (not arms from the fringe) at least 100 m long (room for
  a sign upstream);
* access gates: district entries, the edges leaving the end of an arm (a fringe junction).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Collection, Sequence
from pathlib import Path

from sim.errors import ScenarioError
from sim.network import Network

RADAR_MIN_LENGTH_M = 100.0
XY = tuple[float, float]


def spread(candidates: dict[str, XY], count: int) -> list[str]:
    """Up to ``count`` ids of ``candidates`` (id -> x, y in m) spread evenly over their area.

    The bounding box is cut into a grid of about ``count`` cells; each cell, in turn, takes the
    unused candidate nearest its centre (ties break by id).
    """
    ids = sorted(candidates)
    if count >= len(ids):
        return ids
    xs = [candidates[i][0] for i in ids]
    ys = [candidates[i][1] for i in ids]
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    chosen: list[str] = []
    for r in range(rows):
        for c in range(cols):
            if len(chosen) == count:
                break
            centre = (
                min(xs) + (c + 0.5) * (max(xs) - min(xs)) / cols,
                min(ys) + (r + 0.5) * (max(ys) - min(ys)) / rows,
            )
            rest = [i for i in ids if i not in chosen]
            chosen.append(min(rest, key=lambda i: (math.dist(candidates[i], centre), i)))
    return sorted(chosen)


def vehicle_edges(network: Network) -> dict[str, list[str]]:
    """Normal edge -> its vehicle lanes (ids, rightmost first)."""
    edges: dict[str, list[str]] = {}
    for lane in network.lanes.values():
        if lane.carries_vehicles:
            edges.setdefault(lane.edge, []).append(lane.id)
    return {e: sorted(lanes, key=lambda lane: int(lane.rsplit("_", 1)[1])) for e, lanes in edges.items()}


def junction_sites(
    network: Network, sites: Sequence[str] | None, count: int, *, source: Path, field: str
) -> list[str]:
    """Signalised junction (traffic light) ids: ``sites`` checked, or ``count`` placed."""
    tls = network.traffic_lights
    if sites is not None:
        return [_check(s, tls, source, field, "a signalised junction") for s in sites]
    # Cameras and stations go where traffic is: junctions fed by at least the median number of
    # lanes (avenue crossings), spread over the district.
    feeds = {t: len(light.incoming_lanes(network)) for t, light in tls.items()}
    if count >= len(feeds):
        return sorted(feeds)
    median = sorted(feeds.values())[len(feeds) // 2]
    return spread({t: _tls_xy(network, t) for t, n in feeds.items() if n >= median}, count)


def radar_sites(
    network: Network, sites: Sequence[str] | None, count: int, *, source: Path, field: str
) -> list[str]:
    edges = vehicle_edges(network)
    if sites is not None:
        return [_check(s, edges, source, field, "an edge with vehicle lanes") for s in sites]
    fringe = set(fringe_junctions(network))
    mid_block = {
        e: network.edge_xy(e)
        for e, lanes in edges.items()
        if network.lanes[lanes[0]].length_m >= RADAR_MIN_LENGTH_M
        and not fringe & set(network.edge_ends.get(e, ()))
    }
    return spread(mid_block or {e: network.edge_xy(e) for e in edges}, count)


def fringe_junctions(network: Network) -> list[str]:
    """Junctions linked to a single other junction: the ends of the arms into the network."""
    neighbours: dict[str, set[str]] = {}
    for start, end in network.edge_ends.values():
        neighbours.setdefault(start, set()).add(end)
        neighbours.setdefault(end, set()).add(start)
    return sorted(j for j, linked in neighbours.items() if len(linked) == 1)


def entry_edges(network: Network) -> list[str]:
    """Edges that bring vehicles into the network: they leave a fringe junction."""
    fringe = set(fringe_junctions(network))
    return sorted(e for e in vehicle_edges(network) if network.edge_ends[e][0] in fringe)


def gate_sites(
    network: Network, sites: Sequence[str] | None, count: int, *, source: Path, field: str
) -> list[str]:
    edges = vehicle_edges(network)
    if sites is not None:
        return [_check(s, edges, source, field, "an edge with vehicle lanes") for s in sites]
    return spread({e: network.edge_xy(e) for e in entry_edges(network)}, count)


def _tls_xy(network: Network, tls: str) -> XY:
    if tls in network.junction_xy:
        return network.junction_xy[tls]
    lanes = network.traffic_lights[tls].incoming_lanes(network)
    return network.edge_xy(lanes[0].edge) if lanes else (0.0, 0.0)


def _check(site: str, known: Collection[str], source: Path, field: str, what: str) -> str:
    if site not in known:
        raise ScenarioError(source, "unknown site", field=field, value=site,
                            expected=f"{what} of the scenario's network")  # fmt: skip
    return site


def induction_loop(loop_id: str, lane: str, pos_m: float) -> ET.Element:
    """A SUMO induction loop read through the API only (its own output discarded)."""
    return ET.Element("inductionLoop", id=loop_id, lane=lane, pos=f"{pos_m:.2f}", period="3600",
                      file="/dev/null", friendlyPos="true")  # fmt: skip


def crossed_edges(net_path: Path) -> dict[str, tuple[str, ...]]:
    """Pedestrian crossing edge -> the road edges it crosses (streamed from the net)."""
    crossings: dict[str, tuple[str, ...]] = {}
    for _event, el in ET.iterparse(net_path, events=("end",)):
        if el.tag == "edge":
            if el.get("function") == "crossing":
                crossings[el.get("id", "")] = tuple(el.get("crossingEdges", "").split())
            el.clear()
        elif el.tag in ("junction", "connection", "tlLogic"):
            el.clear()
    return crossings
