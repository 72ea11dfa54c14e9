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
from controlcenter.sensorthings.model import Entity
from controlcenter.sensorthings.mqtt import ObservationPublisher
from controlcenter.sensorthings.options import Query
from controlcenter.sensorthings.service import (
    FILTERING,
    MQTT_RECEIVE,
    RESOURCE_PATH,
    SENSING_CORE,
    SensorThingsService,
)
from controlcenter.sensorthings.store import MAX_OBSERVATIONS, SensorThingsStore
from controlcenter.simproc import Batch
from sim.scenario import Scenario

VERSION_PATH = "/v1.1"

Item = tuple[float, str, dict[str, Any]]


class SensorThingsLive:
    """See the module docstring. ``epoch``: the moment simulation time 0 stands for;
    ``origin``: where net point (0, 0) lies for nets without a geo-projection (lon, lat)."""

    def __init__(
        self,
        scenario: Scenario,
        network_map: NetworkMap,
        *,
        epoch: datetime,
        origin: tuple[float, float] | None = None,
        origin_from: str = "--geo-origin",
        mqtt_url: BrokerUrl | None = None,
        max_observations: int = MAX_OBSERVATIONS,
    ) -> None:
        self.store = SensorThingsStore(max_observations)
        self.projection = projection(network_map.network, origin, origin_from)
        self.district = District(self.store, scenario, network_map, self.projection, epoch)
        conformance = [SENSING_CORE, RESOURCE_PATH, FILTERING]
        settings: dict[str, Any] = {}
        self.publisher: ObservationPublisher | None = None
        if mqtt_url is not None:
            conformance.append(MQTT_RECEIVE)
            settings[MQTT_RECEIVE] = {"endpoints": [str(mqtt_url)]}
            self.publisher = ObservationPublisher(mqtt_url)
            self.store.subscribe(self._publish)
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

    def apply(self, items: Iterable[Item]) -> None:
        for t, kind, payload in items:
            self.district.on_message(t, kind, payload)

    def _publish(self, observation: Entity) -> None:
        assert self.publisher is not None
        body = self.service.render(observation, Query(observation.type), self.base_url)
        self.publisher.put(observation.one["Datastream"], body)

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
            }
        return figures
