"""Readers for the output files SUMO writes during a run, streamed with ``iterparse``."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from sim.messages import ApproachDelay, EmissionsInterval

_MG_PER_G = 1000.0


def read_total_stops(tripinfo: Path) -> int:
    """Sum of ``waitingCount`` (times a vehicle came to a halt) over all trips in a tripinfo file."""
    total = 0
    for _event, el in ET.iterparse(tripinfo, events=("end",)):
        if el.tag == "tripinfo":
            total += int(el.get("waitingCount", "0"))
            el.clear()
    return total


def read_emissions(edgedata: Path) -> list[EmissionsInterval]:
    """Per-interval network totals from an ``edgeData type="emissions"`` file (mg -> g)."""
    intervals = []
    for _event, el in ET.iterparse(edgedata, events=("end",)):
        if el.tag != "interval":
            continue
        co2 = nox = pm = 0.0
        for edge in el.iter("edge"):
            co2 += float(edge.get("CO2_abs", "0"))
            nox += float(edge.get("NOx_abs", "0"))
            pm += float(edge.get("PMx_abs", "0"))
        intervals.append(
            EmissionsInterval(
                begin_s=float(el.get("begin", "0")),
                end_s=float(el.get("end", "0")),
                co2_g=co2 / _MG_PER_G,
                nox_g=nox / _MG_PER_G,
                pm_g=pm / _MG_PER_G,
            )
        )
        el.clear()
    return intervals


def read_approach_delays(edgedata: Path, edge_tls: dict[str, str]) -> list[ApproachDelay]:
    """Per-interval, per-signal approach delay from an ``edgeData`` file on the approach edges.

    Time loss summed over a signal's approach edges, divided by the vehicles that left them.
    """
    delays = []
    for _event, el in ET.iterparse(edgedata, events=("end",)):
        if el.tag != "interval":
            continue
        loss: dict[str, float] = dict.fromkeys(sorted(set(edge_tls.values())), 0.0)
        left: dict[str, int] = dict.fromkeys(loss, 0)
        for edge in el.iter("edge"):
            tls = edge_tls.get(edge.get("id", ""))
            if tls is not None:
                loss[tls] += float(edge.get("timeLoss", "0"))
                left[tls] += int(float(edge.get("left", "0")))
        begin, end = float(el.get("begin", "0")), float(el.get("end", "0"))
        for tls in loss:
            delay = loss[tls] / left[tls] if left[tls] else None
            delays.append(ApproachDelay(tls, begin, end, left[tls], delay))
        el.clear()
    return delays
