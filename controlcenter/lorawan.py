"""``ccsim serve --mqtt``: the bay sensors' LoRaWAN network, wired into the control center.

Two halves on the server's event loop, joined only through the broker:

* the **network server side**: the run's parking messages (from the simulation process's
  batches, on the pump thread) feed :class:`~adapters.lorawan.devices.BayDevices`, whose uplinks
  are published at QoS 1 in The Things Stack's or ChirpStack's JSON - what a real network server
  would publish for those sensors;
* the **control center side**: a subscriber takes every uplink on the broker (simulated or real),
  the :class:`~adapters.lorawan.ingest.Ingest` turns them into bay reports, which go to the
  simulation (``parking.bay_sensor_source = "uplinks"``: guidance and pricing see them) and to
  the feed (section ``lorawan``: counters by reason, devices, latency).

With ``--lorawan-registry FILE`` the devices are real ones: nothing simulated is published, and the
registry maps their uplinks to the scenario's bays.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections import Counter, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomqtt

from adapters.lorawan.devices import BayDevices
from adapters.lorawan.ingest import Ingest, Rejected
from adapters.lorawan.link import link_profile
from adapters.lorawan.registry import Registry, RegistryError, read_registry
from adapters.lorawan.uplink import SUBSCRIPTIONS, Format
from adapters.mqtt.broker import BrokerError, BrokerUrl, MosquittoBroker, parse_broker_url, reachable
from adapters.mqtt.transport import Publisher, connect, deliver, subscribe
from controlcenter.config import MqttOptions
from controlcenter.feed import StateMirror
from controlcenter.simproc import Batch
from sim.errors import CcsimError
from sim.messages import (
    BayObserved,
    Message,
    ParkingArrival,
    ParkingDeparture,
    ParkingOccupancy,
    Payload,
    ZoneOccupancy,
)

log = logging.getLogger("ccsim.lorawan")
REGISTRY_FILE = "lorawan-devices.csv"
INGEST_FILE = "lorawan-ingest.json"
RECONNECT_S = 1.0
STATE_PERIOD_S = 0.5
LOG_FIRST = 5
LOG_EVERY = 1000
"""Rejected uplinks logged per reason: the first few, then one in this many (a flood of bad
input must not flood the log; the counters have them all)."""


def _payload(kind: str, text: str) -> Payload | None:
    data = json.loads(text)
    if kind == ParkingArrival.kind:
        return ParkingArrival(**data)
    if kind == ParkingDeparture.kind:
        return ParkingDeparture(**data)
    if kind == ParkingOccupancy.kind:
        return ParkingOccupancy(tuple(ZoneOccupancy(**z) for z in data["zones"]))
    return None


_KINDS = {ParkingArrival.kind, ParkingDeparture.kind, ParkingOccupancy.kind}


def open_broker(options: MqttOptions) -> tuple[BrokerUrl, MosquittoBroker | None]:
    """The broker to use: ``--mqtt URL``'s (which must be reachable), or a Mosquitto child."""
    try:
        if options.url is None:
            broker = MosquittoBroker()
            return broker.start(), broker
        url = parse_broker_url(options.url, ca_file=options.ca_file)
    except BrokerError as exc:
        raise CcsimError(str(exc)) from None
    if not reachable(url):
        raise CcsimError(f"--mqtt {url}: no broker answers there")
    return url, None


def load_registry(options: MqttOptions) -> Registry | None:
    if options.registry is None:
        return None
    try:
        return read_registry(options.registry)
    except RegistryError as exc:
        raise CcsimError(f"--lorawan-registry: {exc}") from None


class LoRaWANLink:
    """See the module docstring. ``report`` hands bay reports to the simulation (None: guidance
    does not use them)."""

    def __init__(
        self,
        options: MqttOptions,
        url: BrokerUrl,
        *,
        seed: int,
        out: Path,
        mirror: StateMirror,
        report: Callable[[tuple[BayObserved, ...]], None] | None,
    ) -> None:
        self.url = url
        self.out = out
        self.mirror = mirror
        self._report = report
        real = load_registry(options)
        self.fleet: BayDevices | None = None
        if real is None:
            self.fleet = BayDevices(
                fmt=Format(options.fmt),
                profile=link_profile(options.link),
                seed=seed,
                heartbeat_s=options.heartbeat_s,
            )
            real = self.fleet.registry
        self.registry = real
        self.ingest = Ingest(self.registry)
        self.published = 0
        self.connected = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._outbox: asyncio.Queue[tuple[str, bytes]] | None = None
        self._subscribed = asyncio.Event()
        self._reports: list[BayObserved] = []
        self._flush_scheduled = False
        self._last_state = 0.0
        self._logged: Counter[str] = Counter()
        self._tasks: list[asyncio.Task[None]] = []
        self._shift_s = 0.0
        """Device time minus the run's simulation time: the simulated devices' clock runs on
        across the server's runs, while each run's time starts again at its begin."""
        self._device_t: float | None = None
        """The devices' time at the last batch."""

    # --- the network server side (pump thread) ----------------------------------------------------

    def new_run(self, begin_s: float) -> None:
        """A new run starts at simulation time ``begin_s`` (between runs: no batch arrives
        meanwhile). The simulated sensors stay deployed and keep their frame counters - a
        network server drops an uplink whose counter goes back, as a replay - and their clock
        goes on from the ended run's last moment; the bays are empty again
        (:meth:`BayDevices.new_run`). Real devices (``--lorawan-registry``) are in the field:
        nothing of theirs restarts."""
        if self.fleet is None or self._device_t is None:
            return
        self._shift_s = self._device_t - begin_s
        self.fleet.new_run(self._device_t)

    def on_batch(self, batch: Batch) -> None:
        fleet, loop = self.fleet, self._loop
        if fleet is None or loop is None:
            return
        shift = self._shift_s
        for seq, t, source, kind, text in batch.events:
            if kind not in _KINDS:
                continue
            payload = _payload(kind, text)
            if payload is None:
                continue
            first = not fleet.sensors
            fleet.on_message(Message(t + shift, seq, source, payload))
            if first and fleet.sensors:
                self.registry.write(self.out / REGISTRY_FILE)
        self._device_t = batch.t + shift
        sent = fleet.due(self._device_t)
        if sent:
            loop.call_soon_threadsafe(self._enqueue, [(s.topic, s.payload) for s in sent])

    def _enqueue(self, items: list[tuple[str, bytes]]) -> None:
        assert self._outbox is not None
        for item in items:
            self._outbox.put_nowait(item)

    async def _publish(self) -> None:
        assert self._outbox is not None
        await self._subscribed.wait()  # at QoS 1 with nobody subscribed, the broker keeps nothing
        # What a broken connection left unacknowledged goes first on the next one (at least once;
        # the ingest's frame counters drop what arrives twice or late).
        backlog: deque[tuple[str, bytes]] = deque()
        before = 0
        while True:
            publisher: Publisher | None = None
            try:
                async with connect(self.url, f"ccsim-ns-{os.getpid()}") as client:
                    publisher = Publisher(client)
                    while True:
                        item = backlog.popleft() if backlog else await self._outbox.get()
                        try:
                            await publisher.publish(*item)
                        except aiomqtt.MqttError:
                            backlog.appendleft(item)
                            raise
                        self.published = before + publisher.published
            except aiomqtt.MqttError as exc:
                if publisher is not None:
                    await publisher.settle()
                    before += publisher.published
                    backlog.extendleft(reversed(publisher.unsent))
                log.warning(
                    "mqtt: publishing to %s failed (%s); %d uplinks to send again; reconnecting",
                    self.url,
                    exc,
                    len(backlog),
                )
                await asyncio.sleep(RECONNECT_S)

    # --- the control center side (event loop) -----------------------------------------------------

    async def _subscribe(self) -> None:
        while True:
            try:
                identifier = f"ccsim-ingest-{os.getpid()}"
                async with connect(self.url, identifier, self._on_uplink) as client:
                    await subscribe(client, SUBSCRIPTIONS.values())
                    self.connected = True
                    self._subscribed.set()
                    await deliver(client)
            except aiomqtt.MqttError as exc:
                self.connected = False
                log.warning("mqtt: subscription to %s lost (%s); reconnecting", self.url, exc)
                await asyncio.sleep(RECONNECT_S)

    def _on_uplink(self, topic: str, payload: bytes) -> None:
        result = self.ingest.handle(topic, payload, time.time())
        if isinstance(result, Rejected):
            self._log_rejected(result)
        else:
            self._reports.append(result)
        if not self._flush_scheduled and self._loop is not None:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _log_rejected(self, rejected: Rejected) -> None:
        n = self._logged[rejected.reason.value] = self._logged[rejected.reason.value] + 1
        if n <= LOG_FIRST or n % LOG_EVERY == 0:
            log.warning(
                "lorawan: %s on %s: %s (%d so far)",
                rejected.reason.value,
                rejected.topic,
                rejected.detail,
                n,
            )

    def _flush(self) -> None:
        self._flush_scheduled = False
        reports, self._reports = tuple(self._reports), []
        if reports and self._report is not None:
            self._report(reports)
        now = time.monotonic()
        if now - self._last_state >= STATE_PERIOD_S:
            self._last_state = now
            self.mirror.merge({"lorawan": {"ingest": self.health()}}, None)

    def health(self) -> dict[str, Any]:
        return {
            "broker": str(self.url),
            "connected": self.connected,
            "devices": len(self.registry),
            "simulated": self.fleet is not None,
            "published": self.published,
            "counters": dict(self.ingest.counters),
            "latency_ms": round(self.ingest.last_latency_s * 1000.0, 1),
            "low_battery": len(self.ingest.low_battery()),
        }

    # --- life cycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._outbox = asyncio.Queue()
        self._subscribed = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._subscribe(), name="ccsim-lorawan-ingest"),
            asyncio.create_task(self._publish(), name="ccsim-lorawan-publish"),
        ]
        self.mirror.merge({"lorawan": {"ingest": self.health()}}, None)

    async def stop(self) -> None:
        """Stop both halves; the ingest's figures go to ``OUT/lorawan-ingest.json`` and, if any
        uplink was not applied, to the terminal (a degraded run says so)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        figures = self.health()
        try:
            (self.out / INGEST_FILE).write_text(json.dumps(figures, indent=2) + "\n")
        except OSError as exc:
            log.warning("lorawan: cannot write %s (%s)", self.out / INGEST_FILE, exc.strerror)
        counters = figures["counters"]
        missed = {k: v for k, v in counters.items() if k != "applied" and v}
        if missed:
            log.warning(
                "lorawan: %d uplinks applied; not applied: %s",
                counters.get("applied", 0),
                ", ".join(f"{k} {v}" for k, v in sorted(missed.items())),
            )
