"""SensorThings Observations in memory: bytes per Observation, typed columns vs one object each.

The service keeps the newest 500,000 Observations in memory (controlcenter/sensorthings/
observations.py). This writes ``--count`` Observations of the shapes the district makes - a
signal phase (an instant; parameters ``t_s``, ``state``, ``program``), a queue or count over a
KPI interval (``t_s`` only), a parking zone's occupancy (``t_s``, ``bays``) - into a
:class:`SensorThingsStore`, and measures with tracemalloc what they take, their link lists
included. It also builds the same Observations the way the store kept them before
(an :class:`Entity` with a fields dict, a links dict, a TimeInterval, a parameters dict, in
a dict by id and two deques of ids), for the ratio in one run. Then it reads every
Observation's result back, to time a full scan.

Last, it times queries through the service on those Observations: scans of all of them
(``$filter`` with ``$count``, ``$orderby`` on time) and a Datastream's newest 10 (best of 3).

    python benchmarks/sensorthings_memory.py [--count 200000] [--no-write]

The figures are printed and written into benchmarks/RESULTS.md between the
``sensorthings-memory`` markers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import platform
import sys
import time
import tracemalloc
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from results_md import replace_section  # noqa: E402

from controlcenter.sensorthings.model import TYPES, Entity, TimeInterval  # noqa: E402
from controlcenter.sensorthings.service import SensorThingsService  # noqa: E402
from controlcenter.sensorthings.store import SensorThingsStore  # noqa: E402

T0 = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
STATES = ("GGgrrrGGgrrr", "yyyrrryyyrrr", "rrrGGgrrrGGg", "rrryyyrrryyy", "rrrrrrrrrrrr")


QUERIES: list[tuple[str, dict[str, str]]] = [
    ("Observations", {"$filter": "result eq 3", "$count": "true", "$top": "10"}),
    (
        "Observations",
        {"$filter": "phenomenonTime ge 2026-03-02T10:00:00Z and result gt 5", "$count": "true"},
    ),
    ("Observations", {"$orderby": "phenomenonTime desc", "$top": "10"}),
    ("Datastreams(7)/Observations", {"$orderby": "phenomenonTime desc", "$top": "10"}),
]


def district_like(k: int) -> tuple[int, datetime | TimeInterval, Any, dict[str, Any]]:
    """The ``k``-th Observation: (datastream index, phenomenon time, result, parameters)."""
    t = k * 0.15  # about 24,000 an hour, as the district makes
    end = T0 + timedelta(seconds=t)
    kind = k % 10
    if kind < 6:  # signal phases: most of what the district reports
        state = STATES[k % len(STATES)]
        return k % 34, end, k % 8, {"t_s": t, "state": state, "program": "0"}
    if kind < 9:  # queues, counts over a 300 s interval
        return (
            34 + k % 100,
            TimeInterval(end - timedelta(seconds=300), end),
            round(k * 0.37 % 19, 2),
            {"t_s": t},
        )
    return 134 + k % 40, end, k % 13, {"t_s": t, "bays": 12}


def columns(count: int) -> tuple[float, SensorThingsStore]:
    store = SensorThingsStore(max_observations=count)
    thing = store.add("Things", {"name": "t", "description": ""})
    streams = [store.add("Datastreams", {"name": f"d{n}"}, Thing=thing) for n in range(174)]
    features = [store.add("FeaturesOfInterest", {"name": f"f{n}"}) for n in range(174)]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for k in range(count):
        stream, when, result, parameters = district_like(k)
        store.observe(streams[stream], features[stream], when, result, dict(parameters))
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return used / count, store


def objects(count: int) -> float:
    """The same Observations as the store kept them before the columns."""
    kind = TYPES["Observations"]
    entities: dict[int, Entity] = {}
    by_stream: dict[int, deque[int]] = {n: deque() for n in range(174)}
    by_feature: dict[int, deque[int]] = {n: deque() for n in range(174)}
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for k in range(count):
        stream, when, result, parameters = district_like(k)
        end = when.end if isinstance(when, TimeInterval) else when
        ident = k + 1
        fields = {"phenomenonTime": when, "result": result, "resultTime": end,
                  "parameters": dict(parameters)}  # fmt: skip
        entities[ident] = Entity(
            kind, ident, fields, {"Datastream": stream, "FeatureOfInterest": stream}
        )
        by_stream[stream].append(ident)
        by_feature[stream].append(ident)
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return used / count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    per_column, store = columns(args.count)
    per_object = objects(args.count)
    table = store.entities("Observations")
    began = time.perf_counter()
    scanned = sum(1 for e in table.values() if e.fields.get("result") == 3)
    scan_s = time.perf_counter() - began
    began = time.perf_counter()
    rendered = sum(len(e.fields.get("parameters") or ()) for e in table.values())
    full_s = time.perf_counter() - began
    assert scanned and rendered
    service = SensorThingsService(store, [])
    timed = []
    for path, query in QUERIES:
        best = float("inf")
        for _ in range(3):
            began = time.perf_counter()
            service.get(path, query, "http://localhost/v1.1")
            best = min(best, time.perf_counter() - began)
        what = "; ".join(f"{k}={v}" for k, v in query.items())
        timed.append(f"| `{path}?{what}` | {1000 * best:.1f} |")
    load = os.getloadavg()[0]
    body = f"""## SensorThings Observations in memory

`python benchmarks/sensorthings_memory.py --count {args.count}`, {dt.date.today().isoformat()},
{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, load average
{load:.1f}. {args.count:,} Observations of the district's shapes (6 in 10 signal phases with
`state` and `program`, 3 in 10 interval counts, 1 in 10 parking occupancies with `bays`; every
one with `t_s`), measured with tracemalloc, link lists included:

| kept as | bytes per Observation | 500,000 (the bound) |
|---|---|---|
| typed columns (now) | {per_column:.0f} | {per_column * 500_000 / 2**20:.0f} MB |
| one object each (before) | {per_object:.0f} | {per_object * 500_000 / 2**20:.0f} MB |

- {per_object / per_column:.1f}x smaller
- reading every Observation's `result` (a `$filter` on all of them): {1e6 * scan_s / args.count:.2f} us
  each; with its `parameters` decoded too: {1e6 * full_s / args.count:.2f} us each

| query (all {args.count:,} Observations, or one Datastream's) | ms (best of 3) |
|---|---|
{chr(10).join(timed)}
"""
    print(body)
    if not args.no_write:
        replace_section("sensorthings-memory", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
