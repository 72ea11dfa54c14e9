"""The live feed under load: 200 websocket clients at 2 Hz and at 10 Hz, with the district running.

Two measurements, each on a fresh ``ccsim serve district`` (adaptive control) on loopback, with
the clients in a separate process (asyncio, the ``websockets`` package):

1. Latency, and what a stalled client costs the others. The district runs at ``--speed``
   (x20 by default: twenty times the traffic a real-time control room sees) with N clients
   reading every frame, twice over the same stretch of simulated time (``--lat-from`` ..
   ``--lat-to`` s; same seed, so the same traffic and the same alarm bursts): once as it is, once
   with a client that completes the websocket handshake and never reads always present (when
   the server drops one, the next connects). Latency runs from the server serialising a state
   frame (its ``sent`` stamp) to a client receiving it.
2. The simulation's real-time factor (simulated seconds per wall second) unpaced
   (``--speed max``) from simulated ``--from`` to ``--to`` s, without clients and with N clients
   at each rate, so what the clients cost the simulation shows in it.

    python benchmarks/feed.py [--clients 200] [--rates 2,10] [--speed 20] [--no-write]

The figures are printed and written into benchmarks/RESULTS.md between the ``feed`` markers.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import itertools
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from results_md import replace_section

REPO = Path(__file__).resolve().parent.parent
TOKEN = "feed-benchmark-token-0123456789"
SENT = re.compile(r'"seq":(\d+),"sent":([0-9.]+),"t":([0-9.]+|null)')
STALL_LIMIT_S = 30.0
"""A stalled client not dropped by then is replaced anyway (and counts as not dropped)."""

Sample = tuple[float, float, float]
"""(simulation time s, latency s, wall time received) of one state frame at one client."""


# --- the client process ---------------------------------------------------------------------------


async def _client(url: str, samples: list[Sample], ready: asyncio.Event) -> None:
    from websockets.asyncio.client import connect

    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with connect(url, additional_headers=headers, compression=None, max_size=None,
                       ping_interval=None) as ws:  # fmt: skip
        ready.set()
        async for message in ws:
            received = time.time()
            # The stamps lead every state frame: read them without parsing the whole frame.
            match = SENT.search(message[:120] if isinstance(message, str) else "")
            if match and match.group(3) != "null":
                samples.append((float(match.group(3)), received - float(match.group(2)), received))


def _stall(host: str, port: int) -> socket.socket:
    """A websocket client that completes the handshake, then never reads."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: Bearer {TOKEN}\r\n\r\n".encode()
    )
    assert sock.recv(12) == b"HTTP/1.1 101", "the stalled client was refused"
    return sock


async def _stall_always(base: str, stalls: list[bool]) -> None:
    """Keep a stalled client connected: when the server drops one, the next connects."""
    host, port = base.removeprefix("http://").rstrip("/").split(":")
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}) as http:

        async def dropped() -> int:
            return int((await http.get("/api/health")).json()["feed"]["dropped"])

        while True:
            before = await dropped()
            began = time.time()
            held = await asyncio.to_thread(_stall, host, int(port))
            was_dropped = False
            while time.time() - began < STALL_LIMIT_S:
                await asyncio.sleep(0.5)
                if await dropped() > before:
                    was_dropped = True
                    break
            held.close()
            stalls.append(was_dropped)


async def _clients_main(url: str, count: int, stalls: bool) -> None:
    samples: list[list[Sample]] = [[] for _ in range(count)]
    readies = [asyncio.Event() for _ in range(count)]
    tasks = [asyncio.create_task(_client(url, s, r)) for s, r in zip(samples, readies, strict=True)]
    await asyncio.gather(*(r.wait() for r in readies))
    stalled: list[bool] = []
    if stalls:
        base = url.replace("ws://", "http://").removesuffix("ws")
        tasks.append(asyncio.create_task(_stall_always(base, stalled)))
    print("ready", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    for task in tasks:
        task.cancel()
    json.dump({"samples": [s for client in samples for s in client], "stalls": stalled}, sys.stdout)
    sys.stdout.flush()


# --- the orchestrator -----------------------------------------------------------------------------


class Running:
    """``ccsim serve district`` and (optionally) a process of clients; :meth:`close` stops both."""

    def __init__(
        self, speed: str, rate: float, clients: int, stalls: bool, extra: Sequence[str] = ()
    ) -> None:
        """``extra``: more options of ``ccsim serve``."""
        self.tmp = tempfile.TemporaryDirectory()
        folder = Path(self.tmp.name)
        self.server = subprocess.Popen(
            [sys.executable, "-m", "controlcenter.cli", "serve", "district", "--speed", speed,
             "--rate", f"{rate:g}", "--port", "0", "--db", f"sqlite:///{folder}/control.db",
             "--out", str(folder / "run"), "--send-timeout", "2", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
            env={**os.environ, "CCSIM_ADMIN_TOKEN": TOKEN},
        )  # fmt: skip
        self.url = self._url()
        self.http = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {TOKEN}"})
        while self.health()["run"]["status"] == "starting":
            time.sleep(0.1)
        self.clients: subprocess.Popen[str] | None = None
        if clients:
            ws_url = self.url.replace("http://", "ws://") + "ws"
            self.clients = subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--run-clients",
                    ws_url,
                    str(clients),
                    "1" if stalls else "0",
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert self.clients.stdout is not None
            assert self.clients.stdout.readline().strip() == "ready", "the clients did not connect"

    def _url(self) -> str:
        assert self.server.stdout is not None
        for line in self.server.stdout:
            if line.startswith("control room: "):
                threading.Thread(target=self.server.stdout.read, daemon=True).start()  # keep draining
                return line.split(": ", 1)[1].strip()
        raise RuntimeError("ccsim serve did not start")

    def health(self) -> dict[str, Any]:
        data: dict[str, Any] = self.http.get("/api/health").json()
        return data

    def collect(self) -> dict[str, Any]:
        assert self.clients is not None
        self.clients.send_signal(signal.SIGTERM)
        out, _ = self.clients.communicate(timeout=120)
        data: dict[str, Any] = json.loads(out)
        return data

    def close(self) -> None:
        if self.clients is not None and self.clients.poll() is None:
            self.clients.kill()
        self.http.close()
        self.server.send_signal(signal.SIGINT)
        self.server.wait(60)
        self.tmp.cleanup()


@dataclass
class Latency:
    frames: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None

    @classmethod
    def of(cls, latencies: list[float]) -> Latency:
        if len(latencies) < 2:
            return cls(len(latencies))
        ordered = sorted(latencies)
        return cls(len(ordered), 1000 * statistics.median(ordered),
                   1000 * statistics.quantiles(ordered, n=100)[98], 1000 * ordered[-1])  # fmt: skip

    def __str__(self) -> str:
        return f"p50 {_ms(self.p50_ms)} ms, p99 {_ms(self.p99_ms)} ms ({self.frames} frames)"


@dataclass
class LatencyCase:
    rate_hz: float
    clean: Latency = field(default_factory=Latency)
    stalled: Latency = field(default_factory=Latency)
    stalls: int = 0
    stalls_dropped: int = 0
    realtime_factor: float = 0.0


def measure_latency(
    rate: float, clients: int, speed: str, window: tuple[float, float], stalls: bool
) -> tuple[Latency, list[bool], float]:
    """Latency of every frame whose simulated time is within ``window`` (s); the stalled clients
    (dropped or not); the real-time factor over the window."""
    running = Running(speed, rate, clients, stalls=stalls)
    try:
        track: list[tuple[float, float]] = []
        while not track or track[-1][1] < window[1]:
            health = running.health()
            if health["run"]["status"] != "running":
                raise RuntimeError(f"the run ended before t={window[1]:g} s ({health['run']['status']})")
            track.append((time.time(), float(health["run"]["t"])))
            time.sleep(0.5)
        data = running.collect()
    finally:
        running.close()
    if track[0][1] > window[0]:
        raise RuntimeError(f"the clients took until t={track[0][1]:g} s to connect")
    factor = (window[1] - window[0]) / (_crossing(track, window[1]) - _crossing(track, window[0]))
    latencies = [latency for t, latency, _received in data["samples"] if window[0] <= t <= window[1]]
    return Latency.of(latencies), data["stalls"], factor


def _crossing(track: list[tuple[float, float]], t: float) -> float:
    """Wall time at which simulated time ``t`` was reached (interpolated)."""
    for (w0, t0), (w1, t1) in itertools.pairwise(track):
        if t0 <= t <= t1 and t1 > t0:
            return w0 + (w1 - w0) * (t - t0) / (t1 - t0)
    raise RuntimeError(f"simulated time {t:g} s was not observed; the run ended too early?")


def measure_speed(rate: float, clients: int, begin_s: float, end_s: float) -> float:
    """Real-time factor of the unpaced district over [begin_s, end_s] of simulated time."""
    running = Running("max", rate, clients, stalls=False)
    try:
        track: list[tuple[float, float]] = []
        while True:
            health = running.health()
            track.append((time.time(), float(health["run"]["t"] or 0.0)))
            if track[-1][1] >= end_s or health["run"]["status"] not in ("starting", "running"):
                break
            time.sleep(0.2)
    finally:
        running.close()
    if track[0][1] > begin_s:
        raise RuntimeError(f"the clients took until t={track[0][1]:g} s to connect")
    return (end_s - begin_s) / (_crossing(track, end_s) - _crossing(track, begin_s))


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def report(args: argparse.Namespace, cases: list[LatencyCase], speeds: list[tuple[str, float]]) -> str:
    latency_rows = "\n".join(
        f"| {c.rate_hz:g} | {kind} | {lat.frames} | {_ms(lat.p50_ms)} | {_ms(lat.p99_ms)} | "
        f"{_ms(lat.max_ms)} |"
        for c in cases
        for kind, lat in (("none", c.clean), ("one, always", c.stalled))
    )
    speed_rows = "\n".join(f"| {name} | {factor:.1f} |" for name, factor in speeds)
    verdicts = []
    for c in cases:
        if c.rate_hz == 2.0 and c.clean.p99_ms is not None:
            met = "met" if c.clean.p99_ms <= 100 else "NOT met"
            verdicts.append(f"p99 at {args.clients} clients x 2 Hz: {c.clean.p99_ms:.1f} ms "
                            f"(target <= 100 ms: {met})")  # fmt: skip
        if c.clean.p99_ms and c.stalled.p99_ms:
            change = 100 * (c.stalled.p99_ms - c.clean.p99_ms) / c.clean.p99_ms
            met = "met" if change < 10 else "NOT met"
            verdicts.append(f"at {c.rate_hz:g} Hz a stalled client moves the others' p99 by "
                            f"{change:+.1f} % (target < 10 %: {met}); {c.stalls_dropped} of "
                            f"{c.stalls} stalled clients were dropped; the simulation ran at "
                            f"x{c.realtime_factor:.1f}")  # fmt: skip
    command = (f"python benchmarks/feed.py --clients {args.clients} --rates {args.rates} "
               f"--speed {args.speed}")  # fmt: skip
    return f"""## Live feed under load (district, {args.clients} websocket clients)

`{command}` (`make bench`), {dt.date.today().isoformat()}, {platform.machine()},
{os.cpu_count()} cores, Python {platform.python_version()}. Server, simulation and clients all on
this machine (loopback); the clients run in a process of their own.

Latency from the server serialising a state frame to a client receiving it, over every frame of
every client whose simulated time lies in {args.lat_from:g}..{args.lat_to:g} s, with the district
running at x{args.speed} under `adaptive` control. Each rate runs twice over that same stretch
(same seed, same traffic, same alarm bursts): once as it is, once with a client that completes
the handshake and never reads always connected - when the server drops one (its buffers full
and a send stuck for 2 s), the next one connects.

| rate (Hz) | stalled client | frames | p50 (ms) | p99 (ms) | max (ms) |
|---|---|---|---|---|---|
{latency_rows}

Real-time factor of the simulation, unpaced (`--speed max`), from simulated {args.begin:g} s to
{args.end:g} s:

| case | real-time factor |
|---|---|
{speed_rows}

{chr(10).join("- " + v for v in verdicts)}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rates", default="2,10", help="feed rates to measure, Hz")
    parser.add_argument("--speed", default="20", help="simulation speed of the latency runs")
    parser.add_argument("--lat-from", type=float, default=400.0, help="latency window start, sim s")
    parser.add_argument("--lat-to", type=float, default=1800.0, help="latency window end, sim s")
    parser.add_argument("--from", dest="begin", type=float, default=300.0, help="speed window, sim s")
    parser.add_argument("--to", dest="end", type=float, default=1500.0, help="speed window end, sim s")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--run-clients", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_clients:
        url, count, stalls = args.run_clients
        asyncio.run(_clients_main(url, int(count), stalls == "1"))
        return 0

    rates = [float(r) for r in args.rates.split(",")]
    window = (args.lat_from, args.lat_to)
    cases = []
    for rate in rates:
        case = LatencyCase(rate)
        case.clean, _none, case.realtime_factor = measure_latency(
            rate, args.clients, args.speed, window, False
        )
        case.stalled, dropped, _factor = measure_latency(rate, args.clients, args.speed, window, True)
        case.stalls, case.stalls_dropped = len(dropped), sum(dropped)
        cases.append(case)
        print(f"{rate:g} Hz at x{args.speed}: without a stalled client {case.clean}; with one "
              f"{case.stalled}; {case.stalls_dropped}/{case.stalls} stalled clients dropped; "
              f"simulation at x{case.realtime_factor:.1f}", flush=True)  # fmt: skip
    speeds = [("no clients", measure_speed(rates[0], 0, args.begin, args.end))]
    for rate in rates:
        speeds.append((f"{args.clients} clients at {rate:g} Hz",
                       measure_speed(rate, args.clients, args.begin, args.end)))  # fmt: skip
    for name, factor in speeds:
        print(f"unpaced, {name}: real-time factor {factor:.1f}", flush=True)
    body = report(args, cases, speeds)
    print(body)
    if not args.no_write:
        replace_section("feed", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
