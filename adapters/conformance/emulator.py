"""A vendor's NTCIP 1209 detector station as a process of its own, answering SNMP on UDP.

    python -m adapters.conformance.emulator --listen 127.0.0.1:0 --lanes a_0,b_0 --period 60 \\
        [--undercount 0.15] [--false-counts-per-h 0] [--occupancy-noise 0] [--latency 0] \\
        [--speed-bias 0] [--speed-noise 0] [--presence-miss 0] [--false-presence-per-h 0] \
        [--broken none|wrong-type|stuck-status|slow] [--seed 1] [--community public]

It prints ``listening udp HOST:PORT`` once bound, then reads the ground truth from stdin, one
JSON object per simulation step: ``{"t": 61.0, "count": [0, 1], "occupancy": [0.0, 0.12]}``
(lists in ``--lanes`` order), optionally with ``"speeds": [[], [43.2]]`` (km/h of the step's
counted vehicles) and ``"presence": [0, 1]`` (zone occupied at ``t``); with ``"ack": 1`` it
prints ``ack T`` once the step is in (a harness polling the presence outputs every step waits
for it). It stops at the end of stdin. ``{"power_cycle": 1.0}`` switches
it off and on again (silent for that many seconds). The write community, if any, comes
from ``CCSIM_EMULATOR_WRITE_COMMUNITY`` (kept off the command line); a SET of
``sensorZoneSamplePeriod`` restarts the period in progress.

The SNMP side is ccsim's agent responder (:class:`adapters.ntcip.protocol.Responder`) over the
emulated station's objects, with the NTCIP 1209 MIB's access (``sensorZoneSamplePeriod`` and
``sensorZoneLabel`` read-write).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

from adapters.conformance.station import (
    Broken,
    EmulatedStation,
    ErrorModel,
    output_groups,
    station_values,
)
from adapters.ntcip.agent import bind_udp
from adapters.ntcip.oids import OBJECTS_MIB2, Access, ObjectType, mib_1209, objects_1209
from adapters.ntcip.protocol import Communities, MibView, PendingSet, Responder, Verdict

WRITE_COMMUNITY_ENV = "CCSIM_EMULATOR_WRITE_COMMUNITY"


def station_objects() -> dict[str, ObjectType]:
    """The objects the emulator knows, with the access the NTCIP 1209 MIB gives them."""
    mib = mib_1209()
    objects: dict[str, ObjectType] = dict(OBJECTS_MIB2)
    for name, obj in objects_1209().items():
        access = Access.READ_WRITE if mib[name].get("maxaccess") == "read-write" else Access.READ_ONLY
        objects[name] = dataclasses.replace(obj, access=access)
    return objects


class StationAgent(asyncio.DatagramProtocol):
    """The station's SNMP agent: GETs from its current values, SETs of the sample period."""

    def __init__(self, station: EmulatedStation, communities: Communities) -> None:
        self.station = station
        self.responder = Responder(self.view, station_objects(), communities)
        self.transport: asyncio.DatagramTransport | None = None
        self._started = time.monotonic()
        self._cached: tuple[tuple[int, int, float], MibView] | None = None
        self._boots = 0
        self._down_until = 0.0
        self.now_s = station.begin_s

    def view(self) -> MibView:
        key = (self._boots, self.station.sequence, self.station.period_s)
        ticks = round((time.monotonic() - self._started) * 100)
        if self._cached is None or self._cached[0] != key:
            self._cached = (key, MibView(station_values(self.station, ticks)))
        view = self._cached[1]
        view.set(OBJECTS_MIB2["sysUpTime"].instance(), OBJECTS_MIB2["sysUpTime"].syntax, ticks % 2**32)
        state = objects_1209()["outputGroupOutputState"]  # changes every step, not per period
        for group, bits in enumerate(output_groups(self.station.outputs.tolist()), start=1):
            view.set(state.instance(group), state.syntax, bytes((bits,)))
        return view

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def power_cycle(self, boot_s: float) -> None:
        """Off and on again: silent for ``boot_s`` (wall s), then up with its uptime restarted and
        its sample data gone (its configuration kept, unless broken ``forgets-config``)."""
        self._boots += 1
        self._down_until = time.monotonic() + boot_s
        self._started = time.monotonic() + boot_s
        self.station.power_cycle(self.now_s)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if time.monotonic() < self._down_until:
            return  # powered off: nothing answers
        result = self.responder.receive(data)
        if isinstance(result, PendingSet):
            verdicts = []
            for write in result.writes:
                if write.object.name == "sensorZoneSamplePeriod" and write.value >= 1:
                    self.station.set_period(float(write.value), self.now_s)
                    verdicts.append(Verdict(True))
                else:
                    verdicts.append(Verdict(False, "not a sample period"))
            result = self.responder.complete(result, verdicts)
        if result is None or self.transport is None:
            return
        if self.station.model.broken is Broken.SLOW:
            loop = asyncio.get_running_loop()
            loop.call_later(self.station.model.slow_answer_s, self._send, result, addr)
        else:
            self._send(result, addr)

    def _send(self, data: bytes, addr: Any) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, addr)


async def serve_agent(
    agent: asyncio.DatagramProtocol, host: str, port: int, on_line: Callable[[dict[str, Any]], None]
) -> None:
    """Bind an emulated device's SNMP ``agent`` on UDP, print ``listening udp HOST:PORT``, and
    hand each JSON line of stdin to ``on_line`` until stdin ends."""
    loop = asyncio.get_running_loop()
    sock = bind_udp(host, port)
    transport, _ = await loop.create_datagram_endpoint(lambda: agent, sock=sock)
    print(f"listening udp {host}:{sock.getsockname()[1]}", flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while line := await reader.readline():
            on_line(json.loads(line))
    finally:
        transport.close()


def emulator_communities(read: str) -> Communities:
    """The read community given, and the write community from ``WRITE_COMMUNITY_ENV`` (none
    when unset: every SET is then refused)."""
    write = os.environ.get(WRITE_COMMUNITY_ENV)
    return Communities(
        read=frozenset({read.encode()}), write=frozenset({write.encode()}) if write else frozenset()
    )


async def serve(station: EmulatedStation, host: str, port: int, communities: Communities) -> None:
    agent = StationAgent(station, communities)

    def on_line(step: dict[str, Any]) -> None:
        if "power_cycle" in step:
            agent.power_cycle(float(step["power_cycle"]))
            return
        agent.now_s = float(step["t"])
        station.feed(agent.now_s, step["count"], step["occupancy"], step.get("speeds"),
                     step.get("presence"))  # fmt: skip
        if step.get("ack"):
            print(f"ack {agent.now_s:g}", flush=True)

    await serve_agent(agent, host, port, on_line)


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"'{text}': expected HOST:PORT")
    return host.strip("[]"), int(port)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m adapters.conformance.emulator")
    parser.add_argument("--listen", type=_address, default=("127.0.0.1", 0))
    parser.add_argument("--lanes", required=True, help="the zones' lanes, comma-separated")
    parser.add_argument("--period", type=float, default=60.0, help="sample period, s")
    parser.add_argument("--begin", type=float, default=0.0, help="simulation begin, s")
    parser.add_argument("--undercount", type=float, default=0.0)
    parser.add_argument("--false-counts-per-h", type=float, default=0.0)
    parser.add_argument("--occupancy-noise", type=float, default=0.0, help="sd, % points")
    parser.add_argument("--latency", type=float, default=0.0, help="s")
    parser.add_argument("--speed-bias", type=float, default=0.0, help="km/h")
    parser.add_argument("--speed-noise", type=float, default=0.0, help="sd per vehicle, km/h")
    parser.add_argument("--presence-miss", type=float, default=0.0, help="share of occupancies")
    parser.add_argument("--false-presence-per-h", type=float, default=0.0, help="per empty zone-h")
    parser.add_argument("--false-presence-s", type=float, default=2.0, help="s")
    parser.add_argument("--broken", choices=[b.value for b in Broken], default="none")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--community", default="public")
    parser.add_argument("--descr", default="ccsim emulated NTCIP 1209 detector station")
    parser.add_argument("--name", default="emulated-station")
    args = parser.parse_args(argv)
    model = ErrorModel(
        undercount=args.undercount,
        false_counts_per_h=args.false_counts_per_h,
        occupancy_noise_points=args.occupancy_noise,
        latency_s=args.latency,
        broken=Broken(args.broken),
        speed_bias_kmh=args.speed_bias,
        speed_noise_kmh=args.speed_noise,
        presence_miss=args.presence_miss,
        false_presence_per_h=args.false_presence_per_h,
        false_presence_s=args.false_presence_s,
    )
    station = EmulatedStation(
        tuple(args.lanes.split(",")), args.period, model, args.seed, args.begin,
        (args.descr, args.name),
    )  # fmt: skip
    host, port = args.listen
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends an emulator started by hand
        asyncio.run(serve(station, host, port, emulator_communities(args.community)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
