"""ccsim as the centre: an SNMP manager for external NTCIP devices, and what it makes of them.

* :class:`Manager` - GET / GET-NEXT / SET / walk over one UDP socket (v1 / v2c), requests
  matched to answers by request-id, each with a timeout; thin asyncio over :mod:`.ber`.
* :class:`StationPoller` - an external NTCIP 1209 detector station, read once per completed
  sample period (its ``sampleSequenceNumber`` moves): volume, occupancy, speed, zone status.
* :class:`ConflictMonitor` - pure: phase states in, and a verdict: flash when two conflicting
  phases show green or yellow together, or when the controller has not answered for
  ``silence_s`` (1 s). Latched until :meth:`ConflictMonitor.reset`, as a hardware monitor is.
* :class:`ControllerLink` - hardware in the loop: an external signal controller polled every
  ``period_s`` (100 ms) for its phase states, its monitor fed, calls placed by SET.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from adapters.ntcip import ber
from adapters.ntcip.model import MISSING
from adapters.ntcip.oids import OBJECTS_1202, OID, objects_1209
from adapters.ntcip.protocol import ErrorStatus

Target = tuple[str, int]
Value = int | bytes | tuple[int, ...] | None


class ManagerError(Exception):
    """A request failed: no answer in time, or an SNMP error status (named)."""

    def __init__(self, target: Target, what: str, status: int = 0, index: int = 0) -> None:
        super().__init__(f"{target[0]}:{target[1]}: {what}")
        self.target = target
        self.status = status
        self.index = index


class Manager(asyncio.DatagramProtocol):
    """One UDP socket for requests to any number of agents. Create with :meth:`open`."""

    def __init__(self, community: bytes, version: int) -> None:
        self.community = community
        self.version = version  # 0: SNMPv1, 1: SNMPv2c
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[ber.Request]] = {}
        self.transport: asyncio.DatagramTransport | None = None
        self.malformed = 0

    @classmethod
    async def open(cls, community: bytes = b"public", *, version: int = 1) -> Manager:
        loop = asyncio.get_running_loop()
        manager = cls(community, version)
        await loop.create_datagram_endpoint(lambda: manager, local_addr=("0.0.0.0", 0))
        return manager

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            response = ber.parse_response(data)
        except ber.BerError:
            self.malformed += 1
            return
        future = self._waiting.pop(response.request_id, None)
        if future is not None and not future.done():
            future.set_result(response)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        for future in self._waiting.values():
            future.cancel()
        self._waiting.clear()

    async def _ask(
        self,
        target: Target,
        pdu: int,
        varbinds: Sequence[tuple[OID, bytes]],
        *,
        community: bytes | None,
        timeout_s: float,
        retries: int,
        fields: tuple[int, int] = (0, 0),
    ) -> ber.Request:
        assert self.transport is not None, "Manager.open() first"
        request_id = next(self._ids) % 2**31
        binds = b"".join(ber.varbind(oid, value) for oid, value in varbinds)
        body = (
            ber.encode_integer(request_id) + ber.encode_integer(fields[0])
            + ber.encode_integer(fields[1]) + ber.tlv(ber.SEQUENCE, binds)
        )  # fmt: skip
        message = ber.tlv(
            ber.SEQUENCE,
            ber.encode_integer(self.version)
            + ber.tlv(ber.OCTET_STRING, community or self.community)
            + ber.tlv(pdu, body),
        )
        future: asyncio.Future[ber.Request] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        try:
            for _ in range(retries + 1):
                self.transport.sendto(message, target)
                try:
                    response = await asyncio.wait_for(asyncio.shield(future), timeout_s)
                except TimeoutError:
                    continue
                if response.error_status:
                    name = _status_name(response.error_status)
                    raise ManagerError(
                        target, f"{name} at variable {response.error_index}",
                        response.error_status, response.error_index,
                    )  # fmt: skip
                return response
            raise ManagerError(target, f"no answer within {timeout_s:g} s")
        finally:
            self._waiting.pop(request_id, None)

    async def get(
        self, target: Target, oids: Sequence[OID], *, community: bytes | None = None,
        timeout_s: float = 1.0, retries: int = 0,
    ) -> dict[OID, Value]:  # fmt: skip
        """The values of ``oids`` (None for a v2c noSuchObject / noSuchInstance)."""
        tlvs = await self.get_tlvs(
            target, oids, community=community, timeout_s=timeout_s, retries=retries
        )
        return {oid: ber.decode_value(value) for oid, value in tlvs.items()}

    async def get_tlvs(
        self, target: Target, oids: Sequence[OID], *, community: bytes | None = None,
        timeout_s: float = 1.0, retries: int = 0,
    ) -> dict[OID, bytes]:  # fmt: skip
        """Like :meth:`get`, with each value's whole BER TLV (its tag is the type the agent gave)."""
        response = await self._ask(
            target, ber.GET, [(o, ber.NULL_VALUE) for o in oids], community=community,
            timeout_s=timeout_s, retries=retries,
        )  # fmt: skip
        return dict(response.varbinds)

    async def set(
        self, target: Target, oid: OID, value: int, *, community: bytes | None = None,
        timeout_s: float = 3.0,
    ) -> int:  # fmt: skip
        """Set an INTEGER object; returns the value the agent confirmed."""
        response = await self._ask(
            target, ber.SET, [(oid, ber.encode_integer(value))], community=community,
            timeout_s=timeout_s, retries=0,
        )  # fmt: skip
        confirmed = ber.decode_value(response.varbinds[0][1])
        return confirmed if isinstance(confirmed, int) else value

    async def set_tlv(
        self, target: Target, oid: OID, value: bytes, *, community: bytes | None = None,
        timeout_s: float = 3.0,
    ) -> bytes:  # fmt: skip
        """Set ``oid`` to a value given as its BER TLV (any type, for testing an agent's checks);
        returns the TLV the agent confirmed. Raises :class:`ManagerError` with the error status."""
        response = await self._ask(
            target, ber.SET, [(oid, value)], community=community, timeout_s=timeout_s, retries=0
        )
        return response.varbinds[0][1] if response.varbinds else b""

    async def walk(
        self, target: Target, root: OID, *, timeout_s: float = 1.0, limit: int = 10_000
    ) -> list[tuple[OID, Value]]:
        """Every instance under ``root``, by GET-NEXT."""
        out: list[tuple[OID, Value]] = []
        cursor = root
        while len(out) < limit:
            response = await self._ask(
                target, ber.GET_NEXT, [(cursor, ber.NULL_VALUE)], community=None,
                timeout_s=timeout_s, retries=1,
            )  # fmt: skip
            oid, value = response.varbinds[0]
            if oid[: len(root)] != root or value[:1] == bytes((ber.END_OF_MIB_VIEW,)):
                break
            out.append((oid, ber.decode_value(value)))
            cursor = oid
        return out


def _status_name(status: int) -> str:
    try:
        return ErrorStatus(status).label
    except ValueError:
        return f"error status {status}"


# --- an external detector station (NTCIP 1209) ------------------------------------------------------


@dataclass(frozen=True)
class ZoneSample:
    """One zone's last completed sample period. ``occupancy_pct`` in %, ``speed_kmh`` in km/h
    (None: the station reported them missing, 65535)."""

    zone: int
    sequence: int
    end_s: int
    volume: int | None
    occupancy_pct: float | None
    speed_kmh: float | None
    status: int


class StationPoller:
    """Reads an NTCIP 1209 station's zones once per completed sample period."""

    COLUMNS = ("sampleEndTime", "sampleVolumeData", "samplePercentOccupancy", "sampleSpeedData",
               "sampleZoneStatus", "sampleSequenceNumber")  # fmt: skip

    def __init__(self, manager: Manager, target: Target, zones: Iterable[int]) -> None:
        self.manager = manager
        self.target = target
        self.zones = tuple(zones)
        self.last_sequence: int | None = None
        self.period_s: float | None = None

    async def sample_period_s(self) -> float:
        """The station's sample period (its first zone's ``sensorZoneSamplePeriod``), s."""
        obj = objects_1209()["sensorZoneSamplePeriod"]
        values = await self.manager.get(self.target, [obj.instance(self.zones[0])])
        period = next(iter(values.values()))
        self.period_s = float(period) if isinstance(period, int) and period > 0 else 60.0
        return self.period_s

    async def poll(self) -> list[ZoneSample]:
        """The zones' completed period if it is new since the last call, else []."""
        objects = objects_1209()
        oids = [objects[c].instance(z, 2, 1) for z in self.zones for c in self.COLUMNS]
        values = await self.manager.get(self.target, oids)
        samples = []
        for zone in self.zones:
            v = [values.get(objects[c].instance(zone, 2, 1)) for c in self.COLUMNS]
            end, volume, occupancy, speed, status, sequence = (
                x if isinstance(x, int) else MISSING for x in v
            )
            samples.append(ZoneSample(
                zone, sequence, end,
                None if volume == MISSING else volume,
                None if occupancy == MISSING else occupancy / 10.0,
                None if speed == MISSING else speed / 10.0,
                status,
            ))  # fmt: skip
        latest = samples[0].sequence if samples else None
        if latest == self.last_sequence:
            return []
        self.last_sequence = latest
        return samples


# --- hardware in the loop (NTCIP 1202) ------------------------------------------------------------


@dataclass(frozen=True)
class PhaseStates:
    """What a controller shows: NTCIP phase numbers in each colour."""

    greens: frozenset[int] = frozenset()
    yellows: frozenset[int] = frozenset()
    reds: frozenset[int] = frozenset()


@dataclass
class ConflictMonitor:
    """Flash on conflicting phases or silence; see the module docstring. Times in s."""

    conflicts: frozenset[tuple[int, int]]
    """Pairs of NTCIP phases that must never show green or yellow together (both orders)."""
    silence_s: float = 1.0
    flashing: str | None = None
    """Why the monitor tripped (None: not tripped)."""
    last_answer_s: float | None = None

    def observe(self, t: float, states: PhaseStates | None) -> str | None:
        """Feed one poll (None: no answer) at time ``t``; returns why to flash, if it should."""
        if self.flashing:
            return self.flashing
        if states is None:
            if self.last_answer_s is not None and t - self.last_answer_s >= self.silence_s:
                self.flashing = f"no answer for {t - self.last_answer_s:.1f} s"
            return self.flashing
        if self.last_answer_s is None:
            self.last_answer_s = t
        self.last_answer_s = t
        moving = states.greens | states.yellows
        pairs = sorted((a, b) for a, b in self.conflicts if a < b and a in moving and b in moving)
        if pairs:
            self.flashing = f"conflicting phases {pairs[0][0]} and {pairs[0][1]} shown together"
        return self.flashing

    def reset(self) -> None:
        self.flashing = None
        self.last_answer_s = None


def _numbers(masks: Sequence[Value]) -> frozenset[int]:
    return frozenset(
        8 * g + bit + 1
        for g, mask in enumerate(masks)
        if isinstance(mask, int)
        for bit in range(8)
        if mask >> bit & 1
    )


@dataclass
class ControllerLink:
    """An external NTCIP 1202 controller in the loop: poll it every ``period_s``, watch it with
    ``monitor``, place vehicle calls on it. ``on_poll(t, states or None, flash reason or None)``
    is told every poll."""

    manager: Manager
    target: Target
    monitor: ConflictMonitor
    groups: int = 1
    period_s: float = 0.1
    timeout_s: float = 0.25
    write_community: bytes | None = None
    on_poll: Callable[[float, PhaseStates | None, str | None], None] | None = None
    polls: int = 0
    answered: int = 0
    latencies_s: list[float] = field(default_factory=list)

    def _oids(self) -> list[OID]:
        names = ("phaseStatusGroupGreens", "phaseStatusGroupYellows", "phaseStatusGroupReds")
        return [OBJECTS_1202[n].instance(g) for n in names for g in range(1, self.groups + 1)]

    async def poll_once(self, clock: Callable[[], float] = time.monotonic) -> PhaseStates | None:
        oids = self._oids()
        start = clock()
        self.polls += 1
        try:
            values = await self.manager.get(self.target, oids, timeout_s=self.timeout_s)
        except ManagerError:
            states = None
        else:
            self.answered += 1
            self.latencies_s.append(clock() - start)
            column = [values.get(o) for o in oids]
            g = self.groups
            states = PhaseStates(
                _numbers(column[:g]), _numbers(column[g : 2 * g]), _numbers(column[2 * g :])
            )
        reason = self.monitor.observe(clock(), states)
        if self.on_poll is not None:
            self.on_poll(clock(), states, reason)
        return states

    async def run(self, duration_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        """Poll every ``period_s`` for ``duration_s`` (a slow answer never makes polls pile up)."""
        next_at = clock()
        end = next_at + duration_s
        while next_at < end:
            await asyncio.sleep(max(0.0, next_at - clock()))
            await self.poll_once(clock)
            next_at = max(next_at + self.period_s, clock())

    async def place_calls(self, phases: Iterable[int], pedestrian: Iterable[int] = ()) -> None:
        """Vehicle calls on ``phases`` (phaseControlGroupVehCall), as detectors would place them,
        and pedestrian calls on ``pedestrian`` (phaseControlGroupPedCall), as push buttons would;
        each SET replaces the group's calls."""
        for name, numbers in (("phaseControlGroupVehCall", phases),
                              ("phaseControlGroupPedCall", pedestrian)):  # fmt: skip
            masks = [0] * self.groups
            for n in numbers:
                masks[(n - 1) // 8] |= 1 << ((n - 1) % 8)
            for g, mask in enumerate(masks, start=1):
                oid = OBJECTS_1202[name].instance(g)
                await self.manager.set(self.target, oid, mask, community=self.write_community)
