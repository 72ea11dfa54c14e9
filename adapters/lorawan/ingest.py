"""Ingest: MQTT uplinks in, bay observations out - a pure state machine.

For each message (topic, bytes, arrival time): parse the network server's JSON
(:mod:`adapters.lorawan.uplink`), find the device in the registry, check its frame counter, decode
the vendor payload, and give a :class:`~sim.messages.BayObserved` for the parking model and the
control room. Nothing here raises on bad input: every message that does not become an observation
is counted under its :class:`~adapters.lorawan.uplink.Reason` and returned as a :class:`Rejected`
naming the topic, for the transport to log.

Frame counters, per device (LoRaWAN's FCntUp rises by one per uplink):

* the same f_cnt as the last one: a **duplicate** (several gateways, a retried delivery), dropped;
* an f_cnt already seen, older than the last: a **replay**, dropped and flagged;
* an older f_cnt not seen yet: **late** (delivered out of order); it fills its gap, but its state
  is stale and is not applied;
* a jump forward: a **gap** - the frames between were lost (``lost`` counts them); applied.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from dataclasses import dataclass, field

from adapters.lorawan.codecs import PayloadError, codec_for
from adapters.lorawan.registry import Registry
from adapters.lorawan.uplink import Reason, UplinkError, parse
from sim.messages import BayObserved

log = logging.getLogger("ccsim.lorawan")

SEEN_WINDOW = 32
"""Frame counters remembered per device, to tell a replay from a late frame."""
LOW_BATTERY_V = 3.0


@dataclass(frozen=True, slots=True)
class Rejected:
    """An MQTT message that gave no observation, and why."""

    topic: str
    reason: Reason
    detail: str


@dataclass
class _DeviceState:
    last_f_cnt: int
    first_f_cnt: int
    seen: deque[int] = field(default_factory=lambda: deque(maxlen=SEEN_WINDOW))
    last_heard: float = 0.0
    battery_v: float | None = None


class Ingest:
    """See the module docstring. ``counters`` holds ``applied``, ``lost`` (frames missing in
    gaps), ``gaps`` and one count per rejection reason."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.counters: Counter[str] = Counter()
        self._devices: dict[str, _DeviceState] = {}
        self.last_latency_s = 0.0
        """From the network server's ``received_at`` to this message's arrival (s)."""

    def handle(self, topic: str, payload: bytes, now: float) -> BayObserved | Rejected:
        """One MQTT message arriving at ``now`` (Unix time, s)."""
        try:
            observed = self._handle(topic, payload, now)
        except UplinkError as exc:
            self.counters[exc.reason.value] += 1
            return Rejected(topic, exc.reason, exc.detail)
        self.counters["applied"] += 1
        return observed

    def _handle(self, topic: str, payload: bytes, now: float) -> BayObserved:
        up = parse(topic, payload)
        device = self.registry.find(up.device_id, up.dev_eui)
        if device is None:
            raise UplinkError(
                Reason.UNKNOWN_DEVICE,
                f"device '{up.device_id}' (DevEUI {up.dev_eui}) not in the registry",
            )
        try:
            reading = codec_for(device.model).reading(up.f_port, up.payload)
        except PayloadError as exc:
            raise UplinkError(Reason.MALFORMED_PAYLOAD, str(exc)) from None
        gap = self._count(device.device_id, up.f_cnt, now)
        state = self._devices[device.device_id]
        if reading.battery_v is not None:
            state.battery_v = reading.battery_v
        self.last_latency_s = now - up.received_at
        if reading.occupied is None:
            raise UplinkError(
                Reason.NO_OCCUPANCY, f"a {reading.frame.value} frame says nothing of the bay"
            )
        return BayObserved(
            zone=device.zone,
            bay=device.bay,
            occupied=reading.occupied,
            device=device.device_id,
            f_cnt=up.f_cnt,
            lost=gap,
            battery_v=state.battery_v,
        )

    def _count(self, device_id: str, f_cnt: int, now: float) -> int:
        """Check the frame counter; returns the frames lost just before this one."""
        state = self._devices.get(device_id)
        if state is None:
            state = self._devices[device_id] = _DeviceState(f_cnt, f_cnt)
            state.seen.append(f_cnt)
            state.last_heard = now
            return 0
        if f_cnt == state.last_f_cnt:
            raise UplinkError(Reason.DUPLICATE, f"{device_id}: f_cnt {f_cnt} again")
        if f_cnt in state.seen:
            raise UplinkError(
                Reason.REPLAY, f"{device_id}: f_cnt {f_cnt} seen before (last {state.last_f_cnt})"
            )
        state.seen.append(f_cnt)
        if f_cnt < state.last_f_cnt:
            if f_cnt > state.first_f_cnt:
                self.counters["lost"] -= 1  # it was counted lost in the gap it now fills
            raise UplinkError(
                Reason.LATE, f"{device_id}: f_cnt {f_cnt} after {state.last_f_cnt}: stale, not applied"
            )
        gap = f_cnt - state.last_f_cnt - 1
        if gap:
            self.counters["gaps"] += 1
            self.counters["lost"] += gap
        state.last_f_cnt = f_cnt
        state.last_heard = now
        return gap

    def silent(self, now: float, after_s: float) -> list[str]:
        """Devices heard before but not for ``after_s`` (s): dead battery, or out of range."""
        return sorted(d for d, s in self._devices.items() if now - s.last_heard > after_s)

    def low_battery(self) -> list[str]:
        return sorted(
            d
            for d, s in self._devices.items()
            if s.battery_v is not None and s.battery_v < LOW_BATTERY_V
        )
