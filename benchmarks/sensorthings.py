"""SensorThings API under load: 100 concurrent clients querying /v1.1 while the district runs.

``ccsim serve district``, run at x20 for ``--warmup`` simulated seconds (half an hour: the
store holds that much history) and then at x1 (the simulation keeps pace), and in this process
100 asyncio clients (httpx, one connection each) running a mix of the queries a dashboard makes - a
filtered list of Things with their Datastreams expanded, the newest Observations of a
Datastream, a time-filtered page of Observations with a count, Datastreams filtered on their
Thing - for ``--duration`` s in two regimes:

* *paced*: each client sends one query every ``--period`` s (1 s: a dashboard refreshing every
  second), whatever the answers take - the latency at that offered load;
* *saturated*: each client sends its next query as soon as the last is answered (closed loop),
  which gives the most the service answers a second; latency is then mostly queueing.

    python benchmarks/sensorthings.py [--clients 100] [--duration 30] [--period 1.0] [--no-write]

The figures are printed and written into benchmarks/RESULTS.md between the ``sensorthings``
markers.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from results_md import replace_section

REPO = Path(__file__).resolve().parent.parent
TOKEN = "sensorthings-benchmark-token-0123456789"


def start_server(tmp: Path) -> tuple[subprocess.Popen[str], str, list[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "controlcenter.cli", "serve", "district", "--port", "0", "--speed", "20",
         "--db", f"sqlite:///{tmp / 'c.db'}", "--out", str(tmp / "run")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
        env={**os.environ, "CCSIM_ADMIN_TOKEN": TOKEN},
    )  # fmt: skip
    lines: list[str] = []

    def drain() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip())

    threading.Thread(target=drain, daemon=True).start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        url = next((x.split(": ", 1)[1] for x in lines if x.startswith("control room: ")), None)
        if url:
            return process, url.strip(), lines
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"ccsim serve did not start: {lines[-20:]}")


def queries(client: httpx.Client) -> list[tuple[str, dict[str, str]]]:
    """The dashboard's queries, over the Things and Datastreams the run has."""
    streams = client.get("/v1.1/Datastreams", params={"$select": "id", "$top": "1000"}).json()["value"]
    ids = [s["@iot.id"] for s in streams]
    if not ids:
        raise RuntimeError("the service has no Datastreams yet")
    mix: list[tuple[str, dict[str, str]]] = []
    for k, stream in enumerate(ids[:50]):
        mix.append((f"/v1.1/Datastreams({stream})/Observations",
                    {"$orderby": "phenomenonTime desc", "$top": "10"}))  # fmt: skip
        mix.append((f"/v1.1/Datastreams({stream})/Observations",
                    {"$filter": "result ge 0 and phenomenonTime ge 2000-01-01T00:00:00Z",
                     "$count": "true", "$top": "20"}))  # fmt: skip
        if k % 5 == 0:
            mix.append(("/v1.1/Things", {"$filter": "startswith(name, 'intersection') or id lt 10",
                                         "$expand": "Datastreams($select=id,name;$top=5)",
                                         "$top": "20"}))  # fmt: skip
            mix.append(("/v1.1/Datastreams", {"$filter": f"Thing/id eq {1 + k % 20}",
                                              "$expand": "Thing,ObservedProperty"}))  # fmt: skip
    return mix


async def load(
    url: str, mix: list[tuple[str, dict[str, str]]], clients: int, duration_s: float,
    period_s: float | None,
) -> tuple[list[float], int, int]:  # fmt: skip
    """Latencies (ms) of answered queries, the number of errors, and of non-200 answers."""
    latencies: list[float] = []
    errors = 0
    failures = 0
    end = time.monotonic() + duration_s

    async def client(k: int) -> None:
        nonlocal errors, failures
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30.0,
                                     headers={"Authorization": f"Bearer {TOKEN}"}) as http:  # fmt: skip
            order = itertools.cycle(mix[k % len(mix) :] + mix[: k % len(mix)])
            next_at = time.monotonic() + (period_s or 0.0) * k / clients
            while time.monotonic() < end:
                if period_s is not None:
                    await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                    next_at += period_s
                path, params = next(order)
                sent = time.monotonic()
                try:
                    answer = await http.get(path, params=params)
                except httpx.HTTPError:
                    errors += 1
                    continue
                if answer.status_code != 200:
                    failures += 1
                latencies.append((time.monotonic() - sent) * 1000)

    await asyncio.gather(*(client(k) for k in range(clients)))
    return sorted(latencies), errors, failures


def health(url: str) -> dict[str, Any]:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        got: dict[str, Any] = c.get("/api/health").json()
    return got


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--period", type=float, default=1.0)
    parser.add_argument("--warmup", type=float, default=1800.0,
                        help="simulated s run at x20 before the load (the store fills)")  # fmt: skip
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        process, url, _ = start_server(Path(tmp_name))
        try:
            while (health(url)["run"].get("t") or 0) < args.warmup:
                time.sleep(0.5)
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
                c.post("/api/simulation/speed", json={"speed": 1}).raise_for_status()
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
                mix = queries(c)
            for regime, period in (("paced", args.period), ("saturated", None)):
                t0, w0 = health(url)["run"]["t"], time.monotonic()
                latencies, errors, failures = asyncio.run(
                    load(url, mix, args.clients, args.duration, period)
                )
                factor = (health(url)["run"]["t"] - t0) / (time.monotonic() - w0)
                rows.append((regime, len(latencies), len(latencies) / args.duration,
                             pct(latencies, 0.5), pct(latencies, 0.99),
                             latencies[-1] if latencies else float("nan"), errors + failures,
                             factor))  # fmt: skip
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
    table = "\n".join(
        f"| {r} | {n} | {rate:.0f} | {p50:.1f} | {p99:.1f} | {mx:.1f} | {bad} | {f:.2f} |"
        for r, n, rate, p50, p99, mx, bad, f in rows
    )
    paced_p99 = rows[0][4]
    command = (
        f"python benchmarks/sensorthings.py --clients {args.clients} --duration {args.duration:g} "
        f"--period {args.period:g}"
    )
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f} at the end"
    )
    body = f"""## SensorThings API under load (district, x1)

`{command}`, {dt.date.today().isoformat()}, {machine}.
`ccsim serve district` (x20 for the first {args.warmup:g} simulated s, so that the store holds
that much history, then x1) and {args.clients} asyncio httpx clients (one connection each) in
another process on this machine, {len(mix)} dashboard queries in turn ($filter on
Observations by time and result with $count, the newest 10 of a Datastream by $orderby,
Things filtered by name with Datastreams $expand-ed, Datastreams filtered on their Thing with
Thing and ObservedProperty expanded), {args.duration:g} s per regime. *paced*: each client one
query every {args.period:g} s (a dashboard refreshing);
*saturated*: each client's next query as soon as the last is answered (the most the service
answers; latency then is queueing). Simulation factor: simulated over wall seconds during the
load.

| regime | answered | queries/s | p50 (ms) | p99 (ms) | max (ms) | errors | simulation factor |
|---|---|---|---|---|---|---|---|
{table}

- SensorThings: p99 {paced_p99:.1f} ms with {args.clients} clients querying once a second while
  the district runs (target <= 100 ms: {"met" if paced_p99 <= 100 else "NOT met"}); closed-loop
  saturation in the second row
"""
    print(body)
    if not args.no_write:
        replace_section("sensorthings", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
