"""A vendor's NTCIP 1202 actuated signal controller as a process of its own, answering SNMP on UDP.

    python -m adapters.conformance.controller_emulator --layout LAYOUT.json \\
        --listen 127.0.0.1:0 [--status-latency 0] [--broken wrong-type,stuck-status,...] \\
        [--stuck-after 120] [--begin 0] [--community public]

``LAYOUT.json`` is the signal's layout (:func:`adapters.conformance.controller_device.
layout_to_dict`: phases, detectors, programs). The process prints ``listening udp HOST:PORT`` once
bound, then reads the simulated intersection from stdin, one JSON object per step:
``{"t": 61.0, "state": "GGrr...", "program": "0", "phase": 2, "mode": "automatic",
"present": {"N_C_1": 1}}`` (only what changed; ``t`` always), and answers each line with
``{"ack": 61.0}`` once the step is in what it serves; ``{"sync": X}`` is answered ``{"ack": X}``.
Each SET it accepts is printed as ``{"set": NAME, "index": [ROW], "value": V}`` before the next
ack - the harness hands it to the simulated controller, as the controller's own logic would act
on its registers. It stops at the end of stdin. The write community, if any, comes from
``CCSIM_EMULATOR_WRITE_COMMUNITY`` (kept off the command line).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from adapters.conformance.controller_device import (
    Broken,
    ControllerErrorModel,
    EmulatedController,
    layout_from_dict,
)
from adapters.conformance.emulator import _address, emulator_communities, serve_agent
from adapters.ntcip.oids import OBJECTS_MIB2, all_objects
from adapters.ntcip.protocol import Communities, MibView, PendingSet, Responder


def say(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


class ControllerAgent(asyncio.DatagramProtocol):
    """The controller's SNMP agent: GETs from what it reports now, SETs into its registers."""

    def __init__(self, controller: EmulatedController, communities: Communities) -> None:
        self.controller = controller
        self.responder = Responder(self.view, all_objects(), communities)
        self.transport: asyncio.DatagramTransport | None = None
        self._started = time.monotonic()
        self._cached: tuple[int, MibView] | None = None

    def view(self) -> MibView:
        ticks = round((time.monotonic() - self._started) * 100)
        version = self.controller.version
        if self._cached is None or self._cached[0] != version:
            self._cached = (version, MibView(self.controller.values(ticks)))
        view = self._cached[1]
        view.set(OBJECTS_MIB2["sysUpTime"].instance(), OBJECTS_MIB2["sysUpTime"].syntax, ticks % 2**32)
        return view

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        result = self.responder.receive(data)
        if isinstance(result, PendingSet):
            verdicts = self.controller.decide(result.writes)
            if self.controller.acts and all(v.accepted for v in verdicts):
                for write in result.writes:
                    say({"set": write.object.name, "index": list(write.index), "value": write.value})
            result = self.responder.complete(result, verdicts)
        if result is not None and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(result, addr)


async def serve(controller: EmulatedController, host: str, port: int, communities: Communities) -> None:
    def on_line(step: dict[str, Any]) -> None:
        if "sync" in step:
            say({"ack": step["sync"]})
            return
        controller.feed(float(step["t"]), step)
        say({"ack": step["t"]})

    await serve_agent(ControllerAgent(controller, communities), host, port, on_line)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m adapters.conformance.controller_emulator")
    parser.add_argument("--layout", type=Path, required=True, help="the signal's layout, JSON")
    parser.add_argument("--listen", type=_address, default=("127.0.0.1", 0))
    parser.add_argument("--begin", type=float, default=0.0, help="simulation begin, s")
    parser.add_argument("--status-latency", type=float, default=0.0, help="s")
    parser.add_argument(
        "--broken", default="", help="comma-separated: wrong-type, stuck-status, ignores-commands"
    )
    parser.add_argument("--stuck-after", type=float, default=120.0, help="s")
    parser.add_argument("--community", default="public")
    parser.add_argument("--descr", default="ccsim emulated NTCIP 1202 actuated signal controller")
    parser.add_argument("--name", default="emulated-controller")
    args = parser.parse_args(argv)
    try:
        broken = frozenset(Broken(b) for b in filter(None, args.broken.split(",")))
    except ValueError:
        parser.error(f"--broken {args.broken!r}: expected any of " + ", ".join(b.value for b in Broken))
    layout = layout_from_dict(json.loads(args.layout.read_text(encoding="utf-8")))
    model = ControllerErrorModel(args.status_latency, broken, args.stuck_after)
    controller = EmulatedController(layout, model, args.begin, (args.descr, args.name))
    host, port = args.listen
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends an emulator started by hand
        asyncio.run(serve(controller, host, port, emulator_communities(args.community)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
