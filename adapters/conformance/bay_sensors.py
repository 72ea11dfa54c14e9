"""Emulated LoRaWAN parking sensors with a vendor's error model, sans I/O: the bays' true changes
in, what their network server publishes on MQTT out.

One sensor per bay, all of one vendor model (``brand/model``, see
:func:`adapters.lorawan.codecs.models`), with the simulated fleet's device ids and DevEUIs
(:func:`adapters.lorawan.devices.device_id`, :func:`~adapters.lorawan.devices.dev_eui`) and the
vendor's payload bytes, in The Things Stack's or ChirpStack's JSON
(:func:`adapters.lorawan.uplink.topic_and_json`). Each sensor sends its start-up frame when the
run begins (a status frame for models without one), a status frame whenever what it senses
changes, and its heartbeat every ``heartbeat_s`` from a random phase.

The error model (:class:`BayErrorModel`), all draws from the seed:

* a true change is **missed** with probability ``miss_share``: the sensor keeps its state, and
  reports nothing, until the next change it does detect;
* a detected change is sensed after a **latency** drawn uniformly in 0.5..1.5 x ``latency_s``
  (never before the bay's change before it);
* a free bay the sensor sees free gets **false occupancy** as a Poisson process of
  ``false_per_h`` per free bay-hour: the sensor reports it taken, then free again
  ``false_duration_s`` later (ccsim's bay sensor profiles model false detections the same way);
* an uplink is **delivered twice** with probability ``duplicate_share`` (same frame counter:
  a network server that does not deduplicate what several gateways heard).

Times are simulation seconds; the network server's ``received_at`` is ``epoch_s`` plus the
simulation time of the uplink, so that latencies can be measured in simulated time however fast
the simulation runs.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from adapters.lorawan.codecs import Frame, PayloadError, SensorState, codec_for
from adapters.lorawan.devices import dev_eui, device_id
from adapters.lorawan.registry import Device, Registry
from adapters.lorawan.uplink import Application, Format, Uplink, topic_and_json

EPOCH_S = 1_767_225_600.0
"""2026-01-01T00:00:00Z: the network server's clock at the simulation's time 0."""


@dataclass(frozen=True)
class BayErrorModel:
    """How the emulated sensors err (shares 0..1, per bay-hour, s); see the module docstring."""

    miss_share: float = 0.0
    false_per_h: float = 0.0
    false_duration_s: float = 300.0
    latency_s: float = 0.0
    duplicate_share: float = 0.0
    heartbeat_s: float = 3600.0


@dataclass(frozen=True, slots=True)
class Published:
    """One MQTT message the network server publishes, at simulation time ``t`` (s)."""

    t: float
    topic: str
    payload: bytes


@dataclass
class _Sensor:
    device: Device
    sensed: bool = False
    since_t: float = 0.0
    f_cnt: int = 0
    false_until: float | None = None
    battery_v: float = 3.6


@dataclass(order=True)
class _Event:
    t: float
    seq: int
    kind: str = field(compare=False)  # "sense", "false_start", "false_end", "heartbeat"
    bay: tuple[str, int] = field(compare=False)
    occupied: bool = field(default=False, compare=False)


def bay_registry(bays: Sequence[tuple[str, int]], model: str) -> Registry:
    """The devices of the emulated bays, as the network server knows them."""
    return Registry(Device(device_id(z, b), dev_eui(z, b), model, z, b) for z, b in bays)


class EmulatedBaySensors:
    """See the module docstring. Call :meth:`start` once, then :meth:`feed` every step."""

    def __init__(
        self,
        bays: Sequence[tuple[str, int]],
        model: str,
        error: BayErrorModel,
        *,
        fmt: Format = Format.TTS,
        app: Application | None = None,
        seed: int = 1,
        epoch_s: float = EPOCH_S,
    ) -> None:
        self.codec = codec_for(model)  # an unknown model fails here, naming the known ones
        self.model = model
        self.error = error
        self.fmt = fmt
        self.app = app or Application()
        self.epoch_s = epoch_s
        self.rng = np.random.default_rng([seed, 0xBA75])
        self.registry = bay_registry(bays, model)
        self.sensors = {
            (d.zone, d.bay): _Sensor(d, battery_v=float(self.rng.uniform(3.45, 3.65)))
            for d in self.registry.by_id.values()
        }
        self.truth = {key: False for key in self.sensors}
        self._events: list[_Event] = []
        self._last_sense: dict[tuple[str, int], float] = {}
        self._seq = 0
        self._last_t = 0.0
        self.counters = {"uplinks": 0, "duplicates": 0, "missed": 0, "false": 0}

    def _push(self, t: float, kind: str, bay: tuple[str, int], occupied: bool = False) -> None:
        self._seq += 1
        heapq.heappush(self._events, _Event(t, self._seq, kind, bay, occupied))

    def start(self, t: float) -> list[Published]:
        """Every sensor joins at ``t`` (every bay free) and sends its start-up frame."""
        self._last_t = t
        out: list[Published] = []
        period = self.error.heartbeat_s
        for key, sensor in self.sensors.items():
            sensor.since_t = t
            try:
                self.codec.encode(Frame.STARTUP, SensorState(False))
                frame = Frame.STARTUP
            except PayloadError:
                frame = Frame.STATUS
            out += self._uplink(t, sensor, frame)
            self._push(t + float(self.rng.uniform(0.0, period)), "heartbeat", key)
        return out

    def feed(self, t: float, changes: Sequence[tuple[str, int, bool]]) -> list[Published]:
        """The true changes of the step ending at ``t`` (zone, bay, occupied now); returns what
        the network server publishes up to ``t``, in time order."""
        dt = max(0.0, t - self._last_t)
        self._last_t = t
        e = self.error
        for zone, bay, occupied in changes:
            key = (zone, bay)
            if key not in self.sensors:
                continue
            self.truth[key] = occupied
            if e.miss_share and self.rng.random() < e.miss_share:
                self.counters["missed"] += 1
                continue
            latency = e.latency_s * float(self.rng.uniform(0.5, 1.5)) if e.latency_s else 0.0
            # a sensor senses in order: a change is never sensed before the one before it
            at = max(t + latency, self._last_sense.get(key, t))
            self._last_sense[key] = at
            self._push(at, "sense", key, occupied)
        if e.false_per_h:
            chance = e.false_per_h * dt / 3600.0
            for key, sensor in self.sensors.items():
                if sensor.sensed or self.truth[key] or sensor.false_until is not None:
                    continue
                if self.rng.random() < chance:
                    self.counters["false"] += 1
                    sensor.false_until = t + e.false_duration_s
                    self._push(t, "false_start", key)
                    self._push(sensor.false_until, "false_end", key)
        out: list[Published] = []
        while self._events and self._events[0].t <= t + 1e-9:
            event = heapq.heappop(self._events)
            sensor = self.sensors[event.bay]
            if event.kind == "heartbeat":
                out += self._uplink(event.t, sensor, Frame.HEARTBEAT)
                self._push(event.t + e.heartbeat_s, "heartbeat", event.bay)
            elif event.kind == "false_start":
                out += self._sense(event.t, sensor, True)
            elif event.kind == "false_end":
                if sensor.false_until == event.t:
                    sensor.false_until = None
                    out += self._sense(event.t, sensor, False)
            else:
                sensor.false_until = None  # a real change ends a false episode
                out += self._sense(event.t, sensor, event.occupied)
        return out

    def _sense(self, t: float, sensor: _Sensor, occupied: bool) -> list[Published]:
        if sensor.sensed == occupied:
            return []
        sensor.sensed = occupied
        out = self._uplink(t, sensor, Frame.STATUS)
        sensor.since_t = t
        return out

    def _uplink(self, t: float, sensor: _Sensor, frame: Frame) -> list[Published]:
        sensor.f_cnt += 1
        state = SensorState(sensor.sensed, t - sensor.since_t, sensor.battery_v, 21.0, sensor.f_cnt)
        f_port, payload = self.codec.encode(frame, state)
        d = sensor.device
        up = Uplink(
            device_id=d.device_id, dev_eui=d.dev_eui, f_port=f_port, f_cnt=sensor.f_cnt,
            payload=payload, received_at=self.epoch_s + t, model=self.model,
            decoded=self.codec.decode(f_port, payload),
            rssi_dbm=int(self.rng.integers(-118, -85)),
            snr_db=round(float(self.rng.uniform(-5.0, 10.0)), 1),
        )  # fmt: skip
        topic, body = topic_and_json(self.fmt, self.app, up)
        copies = 1
        if self.error.duplicate_share and self.rng.random() < self.error.duplicate_share:
            copies = 2
            self.counters["duplicates"] += 1
        self.counters["uplinks"] += 1
        return [Published(t, topic, body)] * copies
