"""The simulated bay sensors as LoRaWAN end devices, and what their network server publishes.

Fed the run's typed messages (``parking.occupancy`` names the zones and their bays the first time
it comes; ``parking.arrival`` / ``parking.departure`` are what each bay's sensor detects), each bay
becomes an end device of a vendor model - one model per zone, in turn from ``models`` - that sends
a status uplink on every change and its vendor's heartbeat, with the vendor's payload bytes, its
own frame counter, battery and radio metadata, in the JSON of the chosen network server
(:mod:`adapters.lorawan.uplink`). A :class:`LinkProfile` adds what goes wrong between the street
and the broker: uplinks no gateway heard (the frame counter moves on: a gap), duplicates, late
deliveries and batteries that die (a last critical heartbeat, then silence).

Pure: time comes in as arguments (simulation time for the schedule; ``clock`` for the network
server's wall-clock ``received_at``) and the random draws from the seed.
"""

from __future__ import annotations

import hashlib
import heapq
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from adapters.lorawan.codecs import Frame, SensorState, codec_for
from adapters.lorawan.link import LINK_PROFILES, LinkProfile
from adapters.lorawan.registry import Device, Registry
from adapters.lorawan.uplink import Application, Format, Uplink, topic_and_json
from sim.messages import Message, ParkingArrival, ParkingDeparture, ParkingOccupancy

DEFAULT_MODELS = ("nwave/nps405", "bosch/tps110", "dingtek/do201")
CRITICAL_BATTERY_V = 2.75
WARNING_BEFORE_DEATH_S = 3600.0


@dataclass(frozen=True, slots=True, order=True)
class Transmission:
    """An MQTT message the network server publishes at simulation time ``t`` (s)."""

    t: float
    seq: int
    topic: str = field(compare=False)
    payload: bytes = field(compare=False)
    device_id: str = field(compare=False)
    f_cnt: int = field(compare=False)


@dataclass
class _Sensor:
    device: Device
    occupied: bool = False
    since_t: float = 0.0
    f_cnt: int = 0
    battery_v: float = 3.6
    dies_at: float = float("inf")
    next_heartbeat: float = 0.0


def device_id(zone: str, bay: int) -> str:
    """A network-server device id (lowercase letters, digits, dashes; at most 36 characters)."""
    name = re.sub(r"[^a-z0-9]+", "-", zone.lower()).strip("-")
    text = f"bay-{name}-{bay}"
    if len(text) > 36:
        digest = hashlib.blake2b(zone.encode(), digest_size=4).hexdigest()
        text = f"bay-{name[: 36 - 15 - len(str(bay))]}-{digest}-{bay}"
    return text


def dev_eui(zone: str, bay: int) -> str:
    """A stable DevEUI in a locally administered block (bit 1 of the first byte set)."""
    digest = hashlib.blake2b(f"{zone}#{bay}".encode(), digest_size=7).hexdigest().upper()
    return "02" + digest


class BayDevices:
    """The run's bay sensors as LoRaWAN devices; see the module docstring."""

    def __init__(
        self,
        *,
        fmt: Format = Format.TTS,
        app: Application | None = None,
        profile: LinkProfile | None = None,
        seed: int = 1,
        models: Sequence[str] = DEFAULT_MODELS,
        heartbeat_s: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.fmt = fmt
        self.app = app or Application()
        self.profile = profile or LINK_PROFILES["ideal"]
        for model in models:
            codec_for(model)  # an unknown model fails here, naming the known ones
        self.models = list(models)
        self.heartbeat_s = heartbeat_s
        self.clock = clock
        self.registry = Registry()
        self.rng = np.random.default_rng([seed, 0x10AA])
        self.sensors: dict[tuple[str, int], _Sensor] = {}
        self.counters = {"sent": 0, "lost": 0, "duplicated": 0, "late": 0, "dead": 0}
        self._queue: list[Transmission] = []
        self._heartbeats: list[tuple[float, str, int]] = []
        self._seq = 0

    # --- fed by the message stream ---------------------------------------------------------------

    def on_message(self, message: Message) -> None:
        payload = message.payload
        self._heartbeats_until(message.t)  # frame counters rise in time order
        if isinstance(payload, ParkingOccupancy) and not self.sensors:
            self._deploy(message.t, payload)
        elif isinstance(payload, ParkingArrival | ParkingDeparture):
            sensor = self.sensors.get((payload.zone, payload.bay))
            if sensor is None:
                return
            occupied = isinstance(payload, ParkingArrival)
            state_s = message.t - sensor.since_t
            sensor.occupied, sensor.since_t = occupied, message.t
            self._send(message.t, sensor, Frame.STATUS, state_s)

    def _deploy(self, t: float, occupancy: ParkingOccupancy) -> None:
        for index, zone in enumerate(occupancy.zones):
            model = self.models[index % len(self.models)]
            heartbeat = self.heartbeat_s or codec_for(model).heartbeat_s
            for bay in range(zone.bays):
                device = Device(
                    device_id(zone.zone, bay), dev_eui(zone.zone, bay), model, zone.zone, bay
                )
                self.registry.add(device)
                sensor = _Sensor(device, since_t=t, battery_v=float(self.rng.uniform(3.45, 3.65)))
                rate = self.profile.dead_battery_per_h
                if rate > 0:
                    sensor.dies_at = t + float(self.rng.exponential(3600.0 / rate))
                sensor.next_heartbeat = t + float(self.rng.uniform(0.0, heartbeat))
                self.sensors[(zone.zone, bay)] = sensor
                heapq.heappush(self._heartbeats, (sensor.next_heartbeat, zone.zone, bay))

    def new_run(self, t: float) -> None:
        """The simulated world starts again (a new run of the same server) at device time ``t``,
        with every bay empty - the new run's cars, those parked before it too, arrive in it. A
        sensor that saw a car reports it gone, as when a car leaves; the devices themselves live
        on: their frame counters, batteries and heartbeats carry on from where they were."""
        self._heartbeats_until(t)
        for sensor in self.sensors.values():
            if sensor.occupied:
                state_s = t - sensor.since_t
                sensor.occupied, sensor.since_t = False, t
                self._send(t, sensor, Frame.STATUS, state_s)

    # --- what goes on the air --------------------------------------------------------------------

    def _send(self, t: float, sensor: _Sensor, frame: Frame, state_s: float = 0.0) -> None:
        if t >= sensor.dies_at:
            if sensor.battery_v > 0:
                sensor.battery_v = 0.0
                self.counters["dead"] += 1
            return
        if t >= sensor.dies_at - WARNING_BEFORE_DEATH_S:
            sensor.battery_v = CRITICAL_BATTERY_V
        sensor.f_cnt += 1
        profile = self.profile
        if profile.loss and self.rng.random() < profile.loss:
            self.counters["lost"] += 1
            return
        codec = codec_for(sensor.device.model)
        state = SensorState(sensor.occupied, state_s, sensor.battery_v, 21.0, sensor.f_cnt)
        f_port, payload = codec.encode(frame, state)
        up = Uplink(
            device_id=sensor.device.device_id,
            dev_eui=sensor.device.dev_eui,
            f_port=f_port,
            f_cnt=sensor.f_cnt,
            payload=payload,
            received_at=self.clock(),
            model=sensor.device.model,
            decoded=codec.decode(f_port, payload),
            rssi_dbm=int(self.rng.integers(-118, -85)),
            snr_db=round(float(self.rng.uniform(-5.0, 10.0)), 1),
        )
        topic, body = topic_and_json(self.fmt, self.app, up)
        at = t
        if profile.late and self.rng.random() < profile.late:
            self.counters["late"] += 1
            at = t + profile.late_s
        copies = 2 if profile.duplicate and self.rng.random() < profile.duplicate else 1
        self.counters["duplicated"] += copies - 1
        for _ in range(copies):
            self._seq += 1
            heapq.heappush(self._queue, Transmission(at, self._seq, topic, body, up.device_id, up.f_cnt))
        self.counters["sent"] += 1

    def due(self, t: float) -> list[Transmission]:
        """Everything the network server publishes up to simulation time ``t``, in order."""
        self._heartbeats_until(t)
        out = []
        while self._queue and self._queue[0].t <= t:
            out.append(heapq.heappop(self._queue))
        return out

    def _heartbeats_until(self, t: float) -> None:
        while self._heartbeats and self._heartbeats[0][0] <= t:
            at, zone, bay = heapq.heappop(self._heartbeats)
            sensor = self.sensors[(zone, bay)]
            self._send(at, sensor, Frame.HEARTBEAT)
            if at < sensor.dies_at:
                sensor.next_heartbeat = at + (
                    self.heartbeat_s or codec_for(sensor.device.model).heartbeat_s
                )
                heapq.heappush(self._heartbeats, (sensor.next_heartbeat, zone, bay))
