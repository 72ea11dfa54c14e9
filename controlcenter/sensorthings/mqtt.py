"""New Observations over MQTT (SensorThings API 1.1, 14.2 "Receive updates via MQTT").

Each new Observation is published, as the JSON a ``GET`` of it returns, on
``v1.1/Datastreams({id})/Observations`` and on ``v1.1/Observations``, at QoS 1, to the broker
``ccsim serve --mqtt`` uses. The control center is a client of that broker, not the broker itself:
it publishes this fixed set of topics whoever subscribes, so subscriptions with query options
(``...?$select=result``) or to other entity sets get nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections import deque

import aiomqtt

from adapters.mqtt.broker import BrokerUrl
from adapters.mqtt.transport import Publisher, connect

log = logging.getLogger("ccsim.sensorthings")
RECONNECT_S = 1.0
BACKLOG = 100_000
"""Observations kept for a broker that is away; past that the oldest are dropped (counted)."""


def topics(datastream_id: int, version: str = "v1.1") -> tuple[str, str]:
    return f"{version}/Datastreams({datastream_id})/Observations", f"{version}/Observations"


class ObservationPublisher:
    """Publishes rendered Observations on the event loop; :meth:`put` is called there too."""

    def __init__(self, url: BrokerUrl) -> None:
        self.url = url
        self.published = 0
        self.dropped = 0
        self.connected = False
        self._queue: deque[tuple[str, bytes]] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def put(self, datastream_id: int, observation: dict[str, object]) -> None:
        body = json.dumps(observation, separators=(",", ":")).encode()
        for topic in topics(datastream_id):
            if len(self._queue) >= BACKLOG:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append((topic, body))
        self._wake.set()

    def start(self) -> None:
        self._wake = asyncio.Event()
        if self._queue:
            self._wake.set()
        self._task = asyncio.create_task(self._run(), name="ccsim-sensorthings-mqtt")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._queue or self.dropped:
            log.warning(
                "sensorthings: %d observations not published over MQTT at the end (%d dropped)",
                len(self._queue),
                self.dropped,
            )

    async def _run(self) -> None:
        while True:
            publisher: Publisher | None = None
            try:
                async with connect(self.url, f"ccsim-sensorthings-{os.getpid()}") as client:
                    self.connected = True
                    publisher = Publisher(client)
                    before = self.published
                    while True:
                        while self._queue:
                            await publisher.publish(*self._queue[0])
                            self._queue.popleft()
                            self.published = before + publisher.published
                        await publisher.settle()
                        self.published = before + publisher.published
                        self._wake.clear()
                        await self._wake.wait()
            except aiomqtt.MqttError as exc:
                self.connected = False
                if publisher is not None:
                    await publisher.settle()
                    self._queue.extendleft(reversed(publisher.unsent))
                log.warning("sensorthings: MQTT to %s failed (%s); reconnecting", self.url, exc)
                await asyncio.sleep(RECONNECT_S)
