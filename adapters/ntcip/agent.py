"""The asyncio side of the agents: one UDP socket per signal, each answering through its
:class:`~adapters.ntcip.protocol.Responder`.

GETs are answered at once, in the event loop. A SET is handed to ``on_set`` (the control
center's operator-command path) and answered when it has decided; a manager that retransmits
the same request meanwhile is not answered twice, and a retransmission of a SET already decided
gets the same answer again (within ``REPLAY_S``) rather than being applied a second time.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from adapters.ntcip import ber
from adapters.ntcip.device import SignalDevice
from adapters.ntcip.oids import all_objects
from adapters.ntcip.protocol import Communities, PendingSet, Responder, Verdict, Write
from adapters.ntcip.usm import V3Gateway, V3User

log = logging.getLogger("ccsim.ntcip")

REPLAY_S = 30.0
"""How long the answer to a SET is kept for retransmissions of it."""

SetHandler = Callable[[SignalDevice, tuple[Write, ...], str], Awaitable[list[Verdict]]]
"""Decides a SET: (device, its writes, who asked: ``snmp@<address>`` or ``snmpv3:<user>``) ->
a verdict per write."""


class BindError(Exception):
    """A UDP port could not be bound (the message names it)."""


def bind_udp(host: str, port: int) -> socket.socket:
    """A UDP socket bound to ``host:port`` (port 0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise BindError(f"udp {host}:{port}: cannot listen there ({exc.strerror})") from None
    sock.setblocking(False)
    return sock


class AgentProtocol(asyncio.DatagramProtocol):
    """One signal's agent on its socket."""

    def __init__(self, device: SignalDevice, responder: Responder, on_set: SetHandler | None) -> None:
        self.v3: V3Gateway | None = None
        self.device = device
        self.responder = responder
        self.on_set = on_set
        self.transport: asyncio.DatagramTransport | None = None
        self._in_flight: set[tuple[object, bytes]] = set()
        self._answered: dict[tuple[object, bytes], tuple[float, bytes]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if self.v3 is not None and ber.message_version(data) == 3:
            try:
                self.v3.receive(data, addr)
            except Exception:  # a bug in the v3 path must not stop the agent
                self.responder.counters.snmpInGenErrs += 1
                log.exception("ntcip agent %s: SNMPv3 request dropped", self.device.layout.tls)
            return
        key = (addr, data)
        if key in self._in_flight:
            return  # a retransmission of a SET being decided: its answer is on the way
        replay = self._answered.get(key)
        if replay is not None and time.monotonic() - replay[0] < REPLAY_S:
            self._send(replay[1], addr)
            return
        try:
            result = self.responder.receive(data)
        except Exception:  # a bug, never a reason to stop answering the others
            self.responder.counters.snmpInGenErrs += 1
            log.exception("ntcip agent %s: request dropped", self.device.layout.tls)
            return
        if isinstance(result, bytes):
            self._send(result, addr)
        elif isinstance(result, PendingSet):
            self._in_flight.add(key)
            self._in_flight.add(key)

            def reply(answer: bytes | None) -> None:
                self._in_flight.discard(key)
                if answer is not None:
                    now = time.monotonic()
                    self._answered = {k: v for k, v in self._answered.items() if now - v[0] < REPLAY_S}
                    self._answered[key] = (now, answer)
                    self._send(answer, addr)

            self.decide(result, reply, f"snmp@{_host(addr)}")

    def decide(self, pending: PendingSet, reply: Callable[[bytes | None], None], who: str) -> None:
        """Have ``on_set`` decide a SET, then ``reply`` with the answer (None: nothing to send)."""
        task = asyncio.get_running_loop().create_task(self._decide(pending, reply, who))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _decide(
        self, pending: PendingSet, reply: Callable[[bytes | None], None], who: str
    ) -> None:
        answer = None
        try:
            if self.on_set is None:
                verdicts = [Verdict(False, "this agent is read-only")] * len(pending.writes)
            else:
                verdicts = await self.on_set(self.device, pending.writes, who)
            answer = self.responder.complete(pending, verdicts)
        except Exception:
            self.responder.counters.snmpInGenErrs += 1
            log.exception("ntcip agent %s: SET failed", self.device.layout.tls)
        finally:
            reply(answer)

    def _send(self, data: bytes, addr: Any) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, addr)


def _host(addr: object) -> str:
    return str(addr[0]) if isinstance(addr, tuple) and addr else str(addr)


@dataclass
class Endpoint:
    """Where one signal's agent listens."""

    tls: str
    host: str
    port: int


class AgentGroup:
    """The agents of every signal, one UDP port each. Bind first (synchronously, so a taken port
    fails before anything starts), then :meth:`start` in the running event loop."""

    def __init__(
        self,
        devices: Sequence[SignalDevice],
        host: str,
        port: int,
        communities: Communities,
        on_set: SetHandler | None,
        v3_users: Sequence[V3User] = (),
    ) -> None:
        self.devices = list(devices)
        self.v3_users = list(v3_users)
        self.communities = communities
        self.on_set = on_set
        self.endpoints: list[Endpoint] = []
        self._sockets: list[socket.socket] = []
        self._protocols: list[AgentProtocol] = []
        try:
            for i, device in enumerate(self.devices):
                sock = bind_udp(host, 0 if port == 0 else port + i)
                self._sockets.append(sock)
                bound = sock.getsockname()
                self.endpoints.append(Endpoint(device.layout.tls, host, int(bound[1])))
        except BindError:
            self.close()
            raise

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        objects = all_objects()
        for device, sock in zip(self.devices, self._sockets, strict=True):
            responder = Responder(device.view, objects, self.communities, device.counters)
            protocol = AgentProtocol(device, responder, self.on_set)
            transport, _ = await loop.create_datagram_endpoint(lambda p=protocol: p, sock=sock)  # type: ignore[misc]
            if self.v3_users:
                read = sorted(self.communities.read)[0]
                write = sorted(self.communities.write)[0] if self.communities.write else None
                protocol.v3 = V3Gateway(responder, self.v3_users, read, write, protocol.decide)
                protocol.v3.attach(transport)
            self._protocols.append(protocol)

    def close(self) -> None:
        for protocol in self._protocols:
            if protocol.v3 is not None:
                protocol.v3.close()
            if protocol.transport is not None:
                protocol.transport.close()
            for task in protocol._tasks:
                task.cancel()
        self._protocols.clear()
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()
