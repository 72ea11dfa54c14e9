"""NTCIP agents under load: the district's 34 signals as SNMP agents, live at x1.

Starts ``ccsim serve district --ntcip 127.0.0.1:0`` (adaptive control, real time), reads the 34
agents' ports from what it prints, waits ``--warmup`` s, then runs load generators in a process
of their own, each for ``--duration`` s, alternating GET (the phase status group's Reds, Yellows
and Greens of group 1) and GET-NEXT: *paced*, ``--rate`` requests per second sent on a schedule
round the agents whatever the answers (the latency at that load), then *saturated*,
``--concurrency`` requests in flight per agent, closed loop (the most they answer). It reports
requests answered per second, the latency from send to answer (p50 / p99 / max), and the
simulation's real-time factor over the same window (simulated seconds per wall second, from
``/api/health``: 1.0 means it kept pace).

Then the manager's side: ``--poll-hz`` polling cycles per second of all 34 agents through
:class:`adapters.ntcip.manager.Manager` (each cycle reads every agent's phase status, all
agents at once; a cycle's time runs from its start to its last answer), and hardware in the
loop: a :class:`~adapters.ntcip.manager.ControllerLink` polling one controller every 100 ms.

    python benchmarks/ntcip.py [--duration 20] [--rate 2000] [--concurrency 4] [--poll-hz 10]
        [--warmup 20] [--no-write]

``--hil-loop`` measures hardware in the loop end to end instead (two ccsim processes, a phase
change at the external controller -> shown in SUMO): see ``benchmarks/ntcip_hil.py``.

The figures are printed and written into benchmarks/RESULTS.md between the ``ntcip`` markers.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from results_md import replace_section

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from adapters.ntcip import ber  # noqa: E402

TOKEN = "ntcip-benchmark-token-0123456789"
STATUS = (1, 3, 6, 1, 4, 1, 1206, 4, 2, 1, 1, 4, 1)
READS = [(*STATUS, column, 1) for column in (2, 3, 4)]  # Reds, Yellows, Greens of group 1


def _request(pdu: int, oids: list[tuple[int, ...]], request_id: int) -> bytes:
    binds = b"".join(ber.varbind(oid, ber.NULL_VALUE) for oid in oids)
    body = (
        ber.encode_integer(request_id) + ber.encode_integer(0) + ber.encode_integer(0)
        + ber.tlv(ber.SEQUENCE, binds)
    )  # fmt: skip
    message = ber.encode_integer(1) + ber.tlv(ber.OCTET_STRING, b"public") + ber.tlv(pdu, body)
    return ber.tlv(ber.SEQUENCE, message)


# --- the load generator (its own process) -----------------------------------------------------------


class _Slot(asyncio.DatagramProtocol):
    """One request in flight at a time on its own socket."""

    def __init__(self, requests: list[bytes], latencies: list[float], stop_at: float) -> None:
        self.requests = requests
        self.latencies = latencies
        self.stop_at = stop_at
        self.sent_at = 0.0
        self.i = 0
        self.transport: asyncio.DatagramTransport | None = None
        self.lost = 0
        self.done = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        if time.perf_counter() >= self.stop_at:
            if not self.done.done():
                self.done.set_result(None)
            return
        self.sent_at = time.perf_counter()
        self.transport.sendto(self.requests[self.i % len(self.requests)])
        self.i += 1
        asyncio.get_running_loop().call_later(1.0, self._timeout, self.i)

    def _timeout(self, i: int) -> None:
        if i == self.i:  # no answer in 1 s: count it lost and go on
            self.lost += 1
            self._send()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.latencies.append(time.perf_counter() - self.sent_at)
        self._send()


async def _load(ports: list[int], concurrency: int, duration_s: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    requests = [
        _request(ber.GET if i % 2 == 0 else ber.GET_NEXT, READS if i % 2 == 0 else [READS[0]], i)
        for i in range(1, 200)
    ]
    latencies: list[float] = []
    start = time.perf_counter()
    stop_at = start + duration_s
    slots = []
    for port in ports:
        for _ in range(concurrency):
            _, slot = await loop.create_datagram_endpoint(
                lambda: _Slot(requests, latencies, stop_at), remote_addr=("127.0.0.1", port)
            )
            slots.append(slot)
    await asyncio.gather(*(s.done for s in slots))
    elapsed = time.perf_counter() - start
    return {"answered": len(latencies), "elapsed_s": elapsed, "lost": sum(s.lost for s in slots),
            "latencies_ms": sorted(x * 1000 for x in latencies)}  # fmt: skip


class _Paced(asyncio.DatagramProtocol):
    """Requests sent on a schedule, whatever the answers; matched to answers by request-id."""

    def __init__(self, sent: dict[int, float], latencies: list[float]) -> None:
        self.sent = sent
        self.latencies = latencies
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        request_id = ber.parse_response(data).request_id
        started = self.sent.pop(request_id, None)
        if started is not None:
            self.latencies.append(time.perf_counter() - started)


async def _paced(ports: list[int], rate: float, duration_s: float) -> dict[str, Any]:
    """Open loop: ``rate`` requests per second spread over the agents in turn."""
    loop = asyncio.get_running_loop()
    sent: dict[int, float] = {}
    latencies: list[float] = []
    sockets = []
    for port in ports:
        _, protocol = await loop.create_datagram_endpoint(
            lambda: _Paced(sent, latencies), remote_addr=("127.0.0.1", port)
        )
        sockets.append(protocol)
    start = time.perf_counter()
    count = 0
    while (now := time.perf_counter()) < start + duration_s:
        due = int((now - start) * rate)
        while count < due:
            count += 1
            get = count % 2 == 0
            data = _request(ber.GET if get else ber.GET_NEXT, READS if get else [READS[0]], count)
            sent[count] = time.perf_counter()
            transport = sockets[count % len(sockets)].transport
            assert transport is not None
            transport.sendto(data)
        await asyncio.sleep(0.002)
    await asyncio.sleep(1.0)  # the last answers
    elapsed = time.perf_counter() - start - 1.0
    return {"sent": count, "answered": len(latencies), "elapsed_s": elapsed, "lost": len(sent),
            "latencies_ms": sorted(x * 1000 for x in latencies)}  # fmt: skip


async def _poll(ports: list[int], hz: float, duration_s: float) -> dict[str, Any]:
    from adapters.ntcip.manager import Manager

    manager = await Manager.open()
    try:
        cycles: list[float] = []
        period = 1.0 / hz
        next_at = time.perf_counter()
        end = next_at + duration_s
        failures = 0
        while next_at < end:
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            start = time.perf_counter()
            results = await asyncio.gather(
                *(manager.get(("127.0.0.1", p), READS, timeout_s=1.0) for p in ports),
                return_exceptions=True,
            )
            failures += sum(isinstance(r, Exception) for r in results)
            cycles.append((time.perf_counter() - start) * 1000)
            next_at += period
    finally:
        manager.close()
    return {"cycles_ms": sorted(cycles), "failures": failures}


async def _hil(port: int, duration_s: float) -> dict[str, Any]:
    """Hardware in the loop: one controller polled every 100 ms, its conflict monitor fed."""
    from adapters.ntcip.manager import ConflictMonitor, ControllerLink, Manager

    manager = await Manager.open()
    try:
        link = ControllerLink(manager, ("127.0.0.1", port), ConflictMonitor(frozenset()))
        await link.run(duration_s)
    finally:
        manager.close()
    return {"loops_ms": sorted(x * 1000 for x in link.latencies_s), "polls": link.polls,
            "answered": link.answered, "flash": link.monitor.flashing}  # fmt: skip


# --- the parent ----------------------------------------------------------------------------------


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def _serve(tmp: Path) -> tuple[subprocess.Popen[str], str, list[int]]:
    env = {**os.environ, "CCSIM_ADMIN_TOKEN": TOKEN}
    process = subprocess.Popen(
        [sys.executable, "-m", "controlcenter.cli", "serve", "district", "--port", "0",
         "--ntcip", "127.0.0.1:0", "--db", f"sqlite:///{tmp / 'c.db'}", "--out", str(tmp / "run")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, env=env,
    )  # fmt: skip
    assert process.stdout is not None
    url, ports = "", []
    for line in process.stdout:
        if line.startswith("control room: "):
            url = line.split(": ", 1)[1].strip()
        elif line.startswith("ntcip: "):
            ports.append(int(line.split("udp 127.0.0.1:")[1].split()[0]))
        if url and len(ports) == 34:
            break
    return process, url, ports


def _sim_time(url: str) -> tuple[float, float]:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        return float(c.get("/api/health").json()["run"]["t"] or 0.0), time.monotonic()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rate", type=float, default=2000.0, help="paced load, requests/s")
    parser.add_argument("--poll-hz", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=20.0)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument(
        "--hil-loop",
        action="store_true",
        help="only the end-to-end hardware-in-the-loop latency (ntcip_hil.py)",
    )
    parser.add_argument("--every", type=float, default=0.01,
                        help="--hil-loop: the observer's read period, s")  # fmt: skip
    parser.add_argument("--field-speed", type=float, default=1.03,
                        help="--hil-loop: the external controller's simulation speed")  # fmt: skip
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hil_loop:
        from ntcip_hil import run

        return run(args.duration, args.every, not args.no_write, args.field_speed)
    if args.child:
        spec = json.loads(args.child)
        if spec["mode"] == "load":
            out = asyncio.run(_load(spec["ports"], spec["concurrency"], spec["duration"]))
        elif spec["mode"] == "hil":
            out = asyncio.run(_hil(spec["ports"][0], spec["duration"]))
        elif spec["mode"] == "paced":
            out = asyncio.run(_paced(spec["ports"], spec["rate"], spec["duration"]))
        else:
            out = asyncio.run(_poll(spec["ports"], spec["hz"], spec["duration"]))
        print(json.dumps(out))
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        process, url, ports = _serve(Path(tmp))
        try:
            assert len(ports) == 34, f"expected 34 agents, got {len(ports)}"
            time.sleep(args.warmup)  # the run settles (controller compiled, traffic in)

            def child(spec: dict[str, Any]) -> dict[str, Any]:
                t0, w0 = _sim_time(url)
                done = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)],
                                      capture_output=True, text=True, check=True)  # fmt: skip
                t1, w1 = _sim_time(url)
                result: dict[str, Any] = json.loads(done.stdout)
                result["rtf"] = (t1 - t0) / (w1 - w0)
                return result

            start_t, start_wall = _sim_time(url)
            paced = child(
                {"mode": "paced", "ports": ports, "rate": args.rate, "duration": args.duration}
            )
            load = child({"mode": "load", "ports": ports, "concurrency": args.concurrency,
                          "duration": args.duration})  # fmt: skip
            hil = child({"mode": "hil", "ports": ports, "duration": args.duration})
            poll = child({"mode": "poll", "ports": ports, "hz": args.poll_hz, "duration": args.duration})
            end_t, end_wall = _sim_time(url)
            overall_rtf = (end_t - start_t) / (end_wall - start_wall)
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
    cycles = poll["cycles_ms"]
    cycle_p99 = _percentile(cycles, 0.99)

    def met(ok: bool) -> str:
        return "met" if ok else "NOT met"

    def row(name: str, run: dict[str, Any]) -> str:
        lat = run["latencies_ms"]
        cells = [
            name, str(run["answered"]), f"{run['answered'] / run['elapsed_s']:.0f}",
            f"{_percentile(lat, 0.5):.2f}", f"{_percentile(lat, 0.99):.2f}",
            f"{lat[-1] if lat else float('nan'):.2f}", str(run["lost"]), f"{run['rtf']:.2f}",
        ]  # fmt: skip
        return "| " + " | ".join(cells) + " |"

    loops = hil["loops_ms"]
    hil_p99 = _percentile(loops, 0.99)
    paced_rate = paced["answered"] / paced["elapsed_s"]
    paced_p99 = _percentile(paced["latencies_ms"], 0.99)
    top_rate = load["answered"] / load["elapsed_s"]
    rtf = overall_rtf
    verdicts = (
        f"- agents: {paced_rate:.0f} req/s answered at p99 {paced_p99:.2f} ms (targets >= 2000 "
        f"req/s: {met(paced_rate >= 0.99 * 2000)}, p99 <= 20 ms: {met(paced_p99 <= 20)}); "
        f"{top_rate:.0f} req/s at saturation; the simulation ran at x{rtf:.3f} over the "
        f"{end_wall - start_wall:.0f} s of load (target >= 1, within 1 %: {met(rtf >= 0.99)})\n"
        f"- manager: p99 cycle {cycle_p99:.2f} ms at {args.poll_hz:g} Hz over 34 controllers "
        f"(target <= 100 ms: {met(cycle_p99 <= 100)})\n"
        f"- hardware in the loop: p99 {hil_p99:.2f} ms from a poll to the monitor's verdict "
        f"(target <= 250 ms: {met(hil_p99 <= 250)})"
    )
    command = (
        f"python benchmarks/ntcip.py --duration {args.duration:g} --rate {args.rate:g} "
        f"--concurrency {args.concurrency} --poll-hz {args.poll_hz:g}"
    )
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f} at the end"
    )
    poll_row = " | ".join([
        str(len(cycles)), f"{_percentile(cycles, 0.5):.2f}", f"{cycle_p99:.2f}",
        f"{cycles[-1] if cycles else float('nan'):.2f}", str(poll["failures"]), f"{poll['rtf']:.2f}",
    ])  # fmt: skip
    body = f"""## NTCIP agents under load (district, 34 agents, x1)

`{command}`, {dt.date.today().isoformat()}, {machine}.
`ccsim serve district --ntcip 127.0.0.1:0` (adaptive control, real time) and the load generator
(its own process, asyncio UDP) on this machine, loopback; the machine's 2 cores are shared with
other work, so the figures are a floor.

Agents, GET of 3 phase status objects and GET-NEXT alternately, for {args.duration:g} s each:
*paced*, {args.rate:g} requests/s sent on a schedule round the 34 agents whatever the answers
(latency at that load); *saturated*, {args.concurrency} requests in flight per agent, closed
loop (the most the agents answer; latency is then mostly queueing).

The real-time factor of each window is simulated over wall time from `/api/health`; the
simulated clock moves in 1 s steps, so over a 20 s window it reads within about +-0.05 (the
verdict below takes the whole run).

| load | answered | req/s | p50 (ms) | p99 (ms) | max (ms) | lost | simulation real-time factor |
|---|---|---|---|---|---|---|---|
{row("paced", paced)}
{row("saturated", load)}

Manager: `adapters.ntcip.manager.Manager` polling all 34 agents (3 objects each) at
{args.poll_hz:g} Hz for {args.duration:g} s, every agent of a cycle at once.

| cycles | p50 (ms) | p99 (ms) | max (ms) | failed reads | simulation real-time factor |
|---|---|---|---|---|---|
| {poll_row} |

Hardware in the loop: `ControllerLink` polling the first agent's phase status every 100 ms
for {args.duration:g} s and feeding its conflict monitor, beside the 34 agents' normal load:
{hil["answered"]} of {hil["polls"]} polls answered, p50 {_percentile(loops, 0.5):.2f} ms,
p99 {hil_p99:.2f} ms, max {loops[-1] if loops else float("nan"):.2f} ms from sending a poll to the
monitor's verdict; the monitor {"tripped: " + hil["flash"] if hil["flash"] else "never tripped"}.

{verdicts}
"""
    print(body)
    if not args.no_write:
        replace_section("ntcip", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
