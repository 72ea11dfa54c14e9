"""The SensorThings service of a live run (``ccsim serve``): the district's entities, fed from
the simulation's batches, read by the API and published over MQTT.

The simulation's records arrive on the control center's pump thread; the messages that matter
here are decoded there and handed to the event loop, which alone touches the store - so the
API reads it without locks, and a query never sees half a batch.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from adapters.mqtt.broker import BrokerUrl
from controlcenter.geojson import NetworkMap
from controlcenter.sensorthings.district import District, ingested_kinds
from controlcenter.sensorthings.geo import projection
from controlcenter.sensorthings.mqtt import UpdatePublisher
from controlcenter.sensorthings.receive import Changes, SelectTopic, messages, parse_select_topic
from controlcenter.sensorthings.service import (
    FILTERING,
    MQTT_RECEIVE,
    RESOURCE_PATH,
    SENSING_CORE,
    SensorThingsService,
)
from controlcenter.sensorthings.store import MAX_OBSERVATIONS, SensorThingsStore
from controlcenter.simproc import Batch
from sim.errors import CcsimError
from sim.scenario import Scenario

VERSION_PATH = "/v1.1"

Item = tuple[float, str, dict[str, Any]]


class SensorThingsLive:
    """See the module docstring. ``epoch``: the moment simulation time 0 stands for;
    ``origin``: where net point (0, 0) lies for nets without a geo-projection (lon, lat);
    ``select_topics``: the ``$select`` topics served over MQTT (see :mod:`.receive`)."""

    def __init__(
        self,
        scenario: Scenario,
        network_map: NetworkMap,
        *,
        epoch: datetime,
        origin: tuple[float, float] | None = None,
        origin_from: str = "--geo-origin",
        mqtt_url: BrokerUrl | None = None,
        select_topics: tuple[str, ...] = (),
        max_observations: int = MAX_OBSERVATIONS,
    ) -> None:
        self.store = SensorThingsStore(max_observations)
        self.projection = projection(network_map.network, origin, origin_from)
        self.district = District(self.store, scenario, network_map, self.projection, epoch)
        conformance = [SENSING_CORE, RESOURCE_PATH, FILTERING]
        settings: dict[str, Any] = {}
        self.publisher: UpdatePublisher | None = None
        self.changes = Changes()
        if select_topics and mqtt_url is None:
            raise CcsimError(f"--sta-mqtt-select {select_topics[0]}: needs --mqtt (a broker)")
        self.selects: dict[str, list[SelectTopic]] = {}
        for text in select_topics:
            try:
                select = parse_select_topic(text, self.store)
            except ValueError as exc:
                raise CcsimError(f"--sta-mqtt-select: {exc}") from None
            self.selects.setdefault(select.path, []).append(select)
        if mqtt_url is not None:
            conformance.append(MQTT_RECEIVE)
            settings[MQTT_RECEIVE] = {"endpoints": [str(mqtt_url)]}
            self.publisher = UpdatePublisher(mqtt_url)
            # From now on: the entities made above are there before anyone can subscribe.
            self.store.subscribe(self.changes.note)
        self.service = SensorThingsService(self.store, conformance, settings)
        self.base_url = f"http://127.0.0.1{VERSION_PATH}"
        """Where the service answers, for the selfLinks of Observations sent over MQTT (serve
        sets it once it knows its port; over HTTP the request's own address is used)."""
        self._kinds = ingested_kinds()
        self._loop: asyncio.AbstractEventLoop | None = None

    def on_batch(self, batch: Batch) -> None:
        """A batch of the run's messages (on the pump thread)."""
        items = [(t, kind, json.loads(text)) for _seq, t, _src, kind, text in batch.events
                 if kind in self._kinds]  # fmt: skip
        if not items:
            return
        if self._loop is None:
            self.apply(items)
        else:
            self._loop.call_soon_threadsafe(self.apply, items)

    def new_run(self, epoch: datetime) -> None:
        """A new run starts (``POST /api/runs``; in the event loop, once the ended run's last
        batch is in): its simulation time ``t`` stands for ``epoch + t``, later than anything
        the ended run observed. The entities stay; the ended run's Observations stay as the
        history of their Datastreams, before the new run's - never stamped as the new run's."""
        self.district.epoch = epoch

    def apply(self, items: Iterable[Item]) -> None:
        """A batch of the run's messages into the store; then what changed, over MQTT (an
        entity updated several times in the batch is sent once, as it is at the end)."""
        for t, kind, payload in items:
            self.district.on_message(t, kind, payload)
        if self.publisher is not None and self.changes:
            self.publisher.put(self.updates())

    def updates(self) -> list[tuple[str, bytes]]:
        """The MQTT messages for what changed since the last call."""
        return messages(self.changes.take(), self.store, self.service, self.base_url, self.selects)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.publisher is not None:
            self.publisher.start()

    async def stop(self) -> None:
        if self.publisher is not None:
            await self.publisher.stop()

    def health(self) -> dict[str, Any]:
        sets = self.store.sets
        figures: dict[str, Any] = {
            "things": len(sets["Things"]),
            "datastreams": len(sets["Datastreams"]),
            "observations": len(sets["Observations"]),
            "evicted": self.store.evicted,
            "locations": self.projection.source,
        }
        if self.publisher is not None:
            figures["mqtt"] = {
                "broker": str(self.publisher.url),
                "connected": self.publisher.connected,
                "published": self.publisher.published,
                "dropped": self.publisher.dropped,
                "select_topics": [s.topic for group in self.selects.values() for s in group],
            }
        return figures
