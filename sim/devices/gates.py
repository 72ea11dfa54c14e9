"""Access gates with plate recognition at district entries, private by design.

Every vehicle carries a synthetic plate (``sim/devices/plates.py``), issued when a gate first
sees it and known only to the gate model; a ``watchlist_share`` of plates is on the watch list,
which the gates hold as keyed hashes only. A gate is an induction loop on every lane of an entry
edge. A passing plate is read with the gate's error profile - unreadable (``unreadable_rate``),
one character wrong (``read_error_rate``), else right - and the read is hashed with the
deployment's secret at once: the raw plate never reaches the message stream, the outputs, the
logs or the store. A hashed read on the watch list raises ``gate.watchlist_hit`` (a misread
plate slips through, as in the field). Reads (time, gate, hash) stay in the gate's store for
``retention_s``, then are purged; every ``interval_s`` each gate publishes ``gate.count``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from sim.devices.config import GatesConfig
from sim.devices.plates import misread, plate_hash, random_plate
from sim.devices.registry import DeviceContext, DeviceModel, register_device
from sim.devices.sites import gate_sites, induction_loop, vehicle_edges
from sim.messages import GateCount, GateWatchlistHit, Message, MessageBus, VehiclesArrived
from sim.sumo import SumoWorld

LOOP_POS_M = 20.0


@dataclass(frozen=True)
class PlateRead:
    """One read in a gate's store: when (s), where, and the keyed hash (None: unreadable)."""

    t: float
    gate: str
    plate_hash: str | None


@dataclass
class _Counts:
    reads: int = 0
    unreadable: int = 0
    hits: int = 0
    purged: int = 0


@dataclass
class _Gate:
    edge: str
    loops: list[str]
    last: dict[str, set[str]] = field(default_factory=dict)
    counts: _Counts = field(default_factory=_Counts)


class ReadStore:
    """Hashed reads in time order, purged once older than the retention window (s)."""

    def __init__(self, retention_s: float) -> None:
        self.retention_s = retention_s
        self._reads: deque[PlateRead] = deque()

    def add(self, read: PlateRead) -> None:
        self._reads.append(read)

    def purge(self, t: float) -> list[PlateRead]:
        """Drop and return the reads older than ``retention_s`` at time ``t``."""
        gone = []
        while self._reads and t - self._reads[0].t > self.retention_s:
            gone.append(self._reads.popleft())
        return gone

    def reads(self) -> list[PlateRead]:
        return list(self._reads)


class PlateRegistry:
    """The plates vehicles carry: ground truth, held only in memory inside the gate model."""

    def __init__(self, seed: int, watchlist_share: float, secret: str) -> None:
        self._rng = np.random.default_rng([seed, 0x6A7E])
        self._plates: dict[str, str] = {}
        self._issued: set[str] = set()
        self._secret = secret
        self.watchlist: set[str] = set()
        """Hashes of the plates on the watch list."""
        self.watchlist_share = watchlist_share

    def plate_of(self, vehicle: str) -> str:
        plate = self._plates.get(vehicle)
        if plate is None:
            plate = random_plate(self._rng)
            while plate in self._issued:
                plate = random_plate(self._rng)
            self._issued.add(plate)
            self._plates[vehicle] = plate
            if self._rng.random() < self.watchlist_share:
                self.watchlist.add(plate_hash(self._secret, plate))
        return plate

    def forget(self, vehicle: str) -> None:
        self._plates.pop(vehicle, None)


class AccessGates(DeviceModel):
    def __init__(self, context: DeviceContext, config: GatesConfig) -> None:
        self.config = config
        self.bus: MessageBus = context.bus
        self.period_s = context.step_s
        self.rng = np.random.default_rng([context.seed, 0x6A7F])
        self.registry = PlateRegistry(context.seed, config.watchlist_share, config.secret)
        self.store = ReadStore(config.retention_s)
        network = context.network
        edges = vehicle_edges(network)
        self.gates: list[_Gate] = []
        self.elements: list[ET.Element] = []
        for edge in gate_sites(network, config.sites, config.count, source=context.source,
                               field="devices.gates.sites"):  # fmt: skip
            gate = _Gate(edge, [])
            for lane_id in edges[edge]:
                loop = f"ccsim.gate.{lane_id}"
                pos = min(LOOP_POS_M, network.lanes[lane_id].length_m / 2)
                self.elements.append(induction_loop(loop, lane_id, pos))
                gate.loops.append(loop)
            self.gates.append(gate)
        self.interval_begin = context.begin_s

    def sumo_elements(self) -> list[ET.Element]:
        return self.elements

    def bind(self, world: SumoWorld, t: float) -> None:
        super().bind(world, t)
        self.bus.subscribe(self._on_message)

    def _on_message(self, message: Message) -> None:
        if isinstance(message.payload, VehiclesArrived):
            for vehicle in message.payload.ids:
                self.registry.forget(vehicle)

    def read(self, t: float, gate: _Gate, vehicle: str) -> PlateRead:
        """Read ``vehicle``'s plate at ``gate`` with the error profile; hash it at once."""
        plate = self.registry.plate_of(vehicle)
        draw = self.rng.random()
        config = self.config
        if draw < config.unreadable_rate:
            gate.counts.unreadable += 1
            return PlateRead(t, gate.edge, None)
        if draw < config.unreadable_rate + config.read_error_rate:
            plate = misread(plate, self.rng)
        hashed = plate_hash(config.secret, plate)
        del plate  # the raw plate goes no further than this function
        gate.counts.reads += 1
        if hashed in self.registry.watchlist:
            gate.counts.hits += 1
            self.bus.publish(t, f"gate:{gate.edge}", GateWatchlistHit(gate.edge, hashed))
        return PlateRead(t, gate.edge, hashed)

    def sites(self) -> tuple[str, ...]:
        return tuple(g.edge for g in self.gates)

    def sample(self, t: float) -> None:
        for gate in self.gates:
            for loop in gate.loops:
                now = set(self.world.loop_vehicle_ids(loop))
                for vehicle in sorted(now - gate.last.get(loop, set())):
                    self.store.add(self.read(t, gate, vehicle))
                gate.last[loop] = now
        purged = self.store.purge(t)
        for read in purged:
            for gate in self.gates:
                if gate.edge == read.gate:
                    gate.counts.purged += 1
        if t - self.interval_begin >= self.config.interval_s - 1e-9:
            self._publish(t)

    def _publish(self, t: float) -> None:
        for gate in self.gates:
            c = gate.counts
            self.bus.publish(
                t,
                f"gate:{gate.edge}",
                GateCount(gate.edge, self.interval_begin, t, c.reads, c.unreadable, c.hits, c.purged),
            )
            gate.counts = _Counts()
        self.interval_begin = t

    def finish(self, t: float) -> None:
        if t > self.interval_begin:
            self._publish(t)


@register_device("gates")
def _build(context: DeviceContext, config: GatesConfig) -> DeviceModel:
    return AccessGates(context, config)
