"""Soak: the district's demand repeated for hours at full speed, 50 feed clients, alarms handled.

One ``ccsim serve district --speed max --variant "run.repeat_demand=N;run.demand_scale=S"``
(adaptive control; the district's one-hour peak run ``--hours`` times over, scaled by
``--demand-scale``) on loopback, with ``--clients`` websocket
clients in a process of their own (asyncio, the ``websockets`` package; a client the server
drops reconnects with ``since`` = the last alarm event it saw, as the control room does), and an
operator who acknowledges every other unacknowledged alarm through the REST API.

Measured:

1. Memory. Every ``--sample-min`` simulated minutes, the resident set size (RSS) of the server
   process and of the simulation's child process (psutil), with the vehicles on the road and
   waiting to enter (the control room's ``kpis``: what SUMO holds grows with them). Growth is
   from the sample at ``--warmup-h`` simulated hours to the last one (target < 10 %).
2. Alarms. Every alarm event a client was sent (sequence number, alarm, action, new state) must
   be in the store after the run, and every acknowledgement the API accepted too (target: 0 lost).
   Events a client should have got but did not are counted as well.

    python benchmarks/soak.py [--hours 8] [--demand-scale 1] [--clients 50] [--sample-min 10]
                              [--wall-limit S] [--no-write]

The district's peak repeated at full scale saturates it (by the third hour thousands of vehicles
wait to enter, with any controller), so SUMO's memory grows with the queue; at
``--demand-scale 0.75`` it reaches a steady state. The figures are printed and written into
benchmarks/RESULTS.md between the ``soak`` markers (``soak-scale-S`` for a scale other than 1).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import platform
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The store must be read with the ccsim of this checkout, not whichever one the venv's editable
# install points to.
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psutil  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from feed import TOKEN, Running  # noqa: E402
from results_md import replace_section  # noqa: E402

from controlcenter.store import Store  # noqa: E402

ACKNOWLEDGED = re.compile(r"\(event (\d+)\)")
EventKey = tuple[int, int, str, str]
"""(seq, alarm id, action, new state) of one alarm event."""


# --- the client process ---------------------------------------------------------------------------


@dataclass
class ClientLog:
    first_seq: int | None = None
    """The alarm sequence number of the first ``alarms`` frame (events after it are owed)."""
    events: list[EventKey] = field(default_factory=list)
    state_frames: int = 0
    reconnects: int = 0


async def _client(url: str, log: ClientLog, ready: asyncio.Event) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    headers = {"Authorization": f"Bearer {TOKEN}"}
    last: int | None = None
    while True:
        target = url if last is None else f"{url}?since={last}"
        try:
            async with connect(target, additional_headers=headers, compression=None,
                               max_size=None, ping_interval=None) as ws:  # fmt: skip
                ready.set()
                async for message in ws:
                    head = message[:24] if isinstance(message, str) else ""
                    if head.startswith('{"type":"alarm",'):
                        frame = json.loads(message)
                        event = frame["event"]
                        log.events.append((event["seq"], event["alarm"], event["action"], event["to"]))
                        last = event["seq"]
                    elif head.startswith('{"type":"alarms",'):
                        seq = int(json.loads(message)["seq"])
                        if log.first_seq is None:
                            log.first_seq = seq
                        last = seq if last is None else max(last, seq)
                    elif head.startswith(('{"type":"delta"', '{"type":"snapshot"')):
                        log.state_frames += 1
        except (ConnectionClosed, OSError):
            pass
        log.reconnects += 1
        await asyncio.sleep(0.5)


async def _clients_main(url: str, count: int) -> None:
    logs = [ClientLog() for _ in range(count)]
    readies = [asyncio.Event() for _ in range(count)]
    tasks = [asyncio.create_task(_client(url, log, r)) for log, r in zip(logs, readies, strict=True)]
    await asyncio.gather(*(r.wait() for r in readies))
    print("ready", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    for task in tasks:
        task.cancel()
    json.dump([log.__dict__ for log in logs], sys.stdout)
    sys.stdout.flush()


# --- the orchestrator -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    t: float
    """Simulation time, s."""
    wall_s: float
    server_mb: float
    child_mb: float
    alarm_seq: int
    open_alarms: int
    clients: int
    observations: int
    """SensorThings Observations the server holds (the newest 500,000 are kept)."""
    running: int
    """Vehicles on the road."""
    pending: int
    """Vehicles due that could not enter the network yet (at the last KPI interval)."""


def _rss_mb(pid: int | None) -> float:
    if pid is None:
        return math.nan
    try:
        return psutil.Process(pid).memory_info().rss / 2**20
    except psutil.NoSuchProcess:
        return math.nan


class Operator:
    """Acknowledges every other unacknowledged alarm (by id) through the REST API."""

    def __init__(self, running: Running) -> None:
        self.running = running
        self.accepted: dict[int, int] = {}
        """alarm id -> the sequence number of its acknowledgement event."""
        self.refused = 0

    def round(self) -> None:
        page = self.running.http.get(
            "/api/alarms",
            params={"state": ["active-unacknowledged", "return-to-normal-unacknowledged"],
                    "limit": 200},
        ).json()  # fmt: skip
        for alarm in page["items"]:
            if alarm["id"] % 2 or alarm["id"] in self.accepted:
                continue
            answer = self.running.http.post(
                f"/api/alarms/{alarm['id']}/acknowledge", json={"note": "soak"}
            )
            body = answer.json()
            seq = ACKNOWLEDGED.search(body.get("detail", ""))
            if answer.status_code == 200 and seq:
                self.accepted[alarm["id"]] = int(seq.group(1))
            else:
                self.refused += 1  # e.g. the alarm went away meanwhile


def soak(args: argparse.Namespace) -> tuple[list[Sample], dict[str, Any]]:
    end_s = args.hours * 3600.0
    repeat = max(1, math.ceil(args.hours))
    extra = ["--variant", f"run.repeat_demand={repeat};run.demand_scale={args.demand_scale:g}",
             "--end", f"{end_s:g}",
             "--controller", args.controller]  # fmt: skip
    running = Running("max", args.rate, 0, stalls=False, extra=extra)
    clients: subprocess.Popen[str] | None = None
    try:
        ws_url = running.url.replace("http://", "ws://") + "ws"
        clients = subprocess.Popen(
            [sys.executable, __file__, "--run-clients", ws_url, str(args.clients)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert clients.stdout is not None
        assert clients.stdout.readline().strip() == "ready", "the clients did not connect"
        operator = Operator(running)
        server_pid = running.server.pid
        samples: list[Sample] = []
        began = time.time()
        next_t = 0.0
        cut: float | None = None
        last_ack = 0.0
        while True:
            health = running.health()
            t = float(health["run"]["t"] or 0.0)
            status = health["run"]["status"]
            if t >= next_t or status != "running":
                kpis = running.http.get("/api/state").json()["state"].get("kpis", {})
                samples.append(Sample(t, time.time() - began, _rss_mb(server_pid),
                                      _rss_mb(health["run"]["pid"] if status == "running" else None),
                                      int(health["alarms"]["seq"]), int(health["alarms"]["open"]),
                                      int(health["feed"]["clients"]),
                                      int(health["sensorthings"]["observations"]),
                                      int(kpis.get("running") or 0),
                                      int(kpis.get("pending") or 0)))  # fmt: skip
                s = samples[-1]
                print(f"t={t / 3600:5.2f} h  wall {s.wall_s:6.0f} s  server {s.server_mb:6.1f} MB  "
                      f"child {s.child_mb:6.1f} MB  vehicles {s.running} (+{s.pending} waiting)  "
                      f"alarm events {s.alarm_seq}  open {s.open_alarms}  "
                      f"clients {s.clients}  observations {s.observations}", flush=True)  # fmt: skip
                next_t = (math.floor(t / (60 * args.sample_min)) + 1) * 60 * args.sample_min
            if status != "running":
                if status != "finished":
                    raise RuntimeError(f"the run ended {status}: {health['run']['detail']}")
                break
            if args.wall_limit and time.time() - began >= args.wall_limit:
                cut = t  # the rest is checked as far as the run got
                break
            if time.time() - last_ack >= args.ack_period:
                operator.round()
                last_ack = time.time()
            time.sleep(0.25)
        wall_s = time.time() - began
        time.sleep(2.0)  # the last alarm events reach the clients
        published = int(running.health()["alarms"]["seq"])  # what the clients are owed
        clients.send_signal(signal.SIGTERM)
        out, _ = clients.communicate(timeout=120)
        logs = [ClientLog(**entry) for entry in json.loads(out)]
        for log in logs:  # JSON gave lists
            log.events = [(seq, alarm, action, to) for seq, alarm, action, to in log.events]
        health = running.health()
        running.server.send_signal(signal.SIGINT)  # the store complete, before reading it
        running.server.wait(120)
        stored = _stored_events(f"sqlite:///{running.tmp.name}/control.db")
        events_file = Path(running.tmp.name) / "run" / "events.parquet"
        recorded = pq.ParquetFile(events_file).metadata.num_rows if events_file.exists() else 0
    finally:
        if clients is not None and clients.poll() is None:
            clients.kill()
        running.close()
    check = _alarm_check(logs, stored, operator, health, wall_s, t, published)
    check["events_stored"] = int(health["store"]["events"])
    check["events_parquet"] = recorded
    check["cut_s"] = cut
    return samples, check


def _stored_events(url: str) -> dict[int, EventKey]:
    store = Store(url)
    try:
        events: dict[int, EventKey] = {}
        seq = 0
        while page := store.alarm_events_since(seq):
            for event, _alarm in page:
                events[event.seq] = (event.seq, event.alarm_id, event.action.value, event.to_state.value)
                seq = event.seq
        return events
    finally:
        store.close()


def _alarm_check(logs: list[ClientLog], stored: dict[int, EventKey], operator: Operator,
                 health: dict[str, Any], wall_s: float, t: float,
                 published: int) -> dict[str, Any]:  # fmt: skip
    sent = {event for log in logs for event in log.events}
    lost = sorted(event for event in sent if stored.get(event[0]) != event)
    missed = 0
    for log in logs:
        got = {event[0] for event in log.events}
        # owed: what was published between its connecting and the clients' stop (not the
        # events the server's shutdown records after)
        owed = {seq for seq in stored if log.first_seq is not None and log.first_seq < seq <= published}
        missed += len(owed - got)
    acks_lost = sorted(a for a, seq in operator.accepted.items()
                       if stored.get(seq, (0, 0, ""))[1:3] != (a, "acknowledge"))  # fmt: skip
    return {
        "stored": len(stored),
        "sent_distinct": len(sent),
        "deliveries": sum(len(log.events) for log in logs),
        "lost": len(lost),
        "lost_examples": lost[:5],
        "missed": missed,
        "acknowledged": len(operator.accepted),
        "ack_refused": operator.refused,
        "acks_lost": len(acks_lost),
        "reconnects": sum(log.reconnects for log in logs),
        "state_frames": sum(log.state_frames for log in logs),
        "dropped": int(health["feed"]["dropped"]),
        "wall_s": wall_s,
        "sim_s": t,
    }


def _growth(samples: list[Sample], warmup_s: float, key: str) -> tuple[float, float, float]:
    """(MB at warm-up, MB at the end, growth %) of ``key``; NaN where a sample is missing."""
    values = [(s.t, getattr(s, key)) for s in samples if not math.isnan(getattr(s, key))]
    after = [v for t, v in values if t >= warmup_s]
    if len(after) < 2:
        return math.nan, math.nan, math.nan
    return after[0], after[-1], 100 * (after[-1] - after[0]) / after[0]


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} / {fifteen:.1f} (1 / 5 / 15 min) at the end"


def report(args: argparse.Namespace, samples: list[Sample], alarms: dict[str, Any]) -> str:
    warmup_s = args.warmup_h * 3600
    every_s = 3600 * args.table_h
    shown = [s for i, s in enumerate(samples)  # the first sample of each table_h, and the last
             if i in (0, len(samples) - 1) or s.t // every_s > samples[i - 1].t // every_s]  # fmt: skip
    rows = "\n".join(
        f"| {s.t / 3600:.2f} | {s.wall_s:.0f} | {s.server_mb:.1f} | {s.child_mb:.1f} | {s.running} | "
        f"{s.pending} | {s.alarm_seq} | {s.open_alarms} | {s.clients} | {s.observations} |"
        for s in shown
    )
    verdicts = []
    for name, key in (("server", "server_mb"), ("simulation child", "child_mb")):
        first, last, growth = _growth(samples, warmup_s, key)
        met = "met" if growth < 10 else "NOT met"
        verdicts.append(f"{name} RSS {first:.1f} MB at {args.warmup_h:g} h -> {last:.1f} MB at the "
                        f"end: {growth:+.1f} % (target < 10 %: {met})")  # fmt: skip
    lost = alarms["lost"] + alarms["acks_lost"]
    verdicts.append(
        f"alarms: {alarms['stored']} alarm events in the store; the clients were sent "
        f"{alarms['sent_distinct']} of them ({alarms['deliveries']} deliveries), of which "
        f"{alarms['lost']} are not in the store; {alarms['acknowledged']} acknowledgements "
        f"accepted ({alarms['ack_refused']} refused: the alarm had moved on), {alarms['acks_lost']} "
        f"not in the store (target 0 lost: {'met' if lost == 0 else 'NOT met'}); events a client "
        f"should have had but did not: {alarms['missed']}"
    )
    verdicts.append(
        f"{alarms['sim_s'] / 3600:.2f} simulated hours in {alarms['wall_s']:.0f} s (x"
        f"{alarms['sim_s'] / alarms['wall_s']:.0f}); {alarms['state_frames']} state frames "
        f"received; {alarms['dropped']} clients dropped by the server, {alarms['reconnects']} "
        "reconnections"
    )
    if alarms.get("cut_s") is not None:
        verdicts.insert(0, f"**cut short** at {alarms['cut_s'] / 3600:.2f} simulated h of "
                        f"{args.hours:g} by --wall-limit {args.wall_limit:g} s: the figures "
                        "cover the run up to there")  # fmt: skip
    verdicts.append(
        f"the stream: {alarms['events_stored']} messages in the store, {alarms['events_parquet']} "
        "in the run's events.parquet"
    )
    command = (f"python benchmarks/soak.py --hours {args.hours:g} --demand-scale "
               f"{args.demand_scale:g} --clients {args.clients} --sample-min {args.sample_min:g}"
               + (f" --wall-limit {args.wall_limit:g}" if args.wall_limit else ""))  # fmt: skip
    title = (f"district x {args.demand_scale:g}, {args.hours:g} simulated hours at full speed, "
             f"{args.clients} clients")  # fmt: skip
    return f"""## Soak ({title})

`{command}`, {dt.date.today().isoformat()}, {platform.machine()}, {os.cpu_count()} cores,
Python {platform.python_version()}; {_load()}. `ccsim serve district --speed max --variant
"run.repeat_demand={max(1, math.ceil(args.hours))};run.demand_scale={args.demand_scale:g}"`
({args.controller} control, feed at {args.rate:g} Hz,
SQLite store), {args.clients} websocket clients in a process of their own, an operator
acknowledging every other unacknowledged alarm through the REST API every {args.ack_period:g} s.
RSS of the server process and of the simulation's child process (psutil), and the vehicles
on the road and due to enter but waiting (SUMO holds them all), every {args.sample_min:g}
simulated minutes (the table shows every {args.table_h:g} h):

| sim h | wall s | server MB | sim. MB | vehicles | to enter | alarm events | open | clients | STA obs. |
|---|---|---|---|---|---|---|---|---|---|
{rows}

{chr(10).join("- " + v for v in verdicts)}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=8.0, help="simulated hours (the demand repeated)")
    parser.add_argument("--demand-scale", type=float, default=1.0,
                        help="demand multiplied (0.75: steady; 1 saturates the district)")  # fmt: skip
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--sample-min", type=float, default=10.0, help="RSS every this many sim min")
    parser.add_argument("--warmup-h", type=float, default=1.0, help="growth is measured from here")
    parser.add_argument("--table-h", type=float, default=1.0, help="a table row every this many h")
    parser.add_argument("--ack-period", type=float, default=2.0, help="operator round, wall s")
    parser.add_argument("--rate", type=float, default=2.0, help="feed frames per second")
    parser.add_argument("--controller", default="adaptive")
    parser.add_argument("--wall-limit", type=float, default=0.0,
                        help="stop after this many wall s; report as far as the run got")  # fmt: skip
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--run-clients", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_clients:
        url, count = args.run_clients
        asyncio.run(_clients_main(url, int(count)))
        return 0
    samples, alarms = soak(args)
    body = report(args, samples, alarms)
    print(body)
    if not args.no_write:
        replace_section("soak" if args.demand_scale == 1 else f"soak-scale-{args.demand_scale:g}", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
