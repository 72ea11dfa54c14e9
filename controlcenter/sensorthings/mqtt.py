"""The SensorThings updates over MQTT (SensorThings API 1.1, 14.2 "Receive updates via MQTT"):
the messages :mod:`.receive` makes are published, at QoS 1 and in order, to the broker
``ccsim serve --mqtt`` uses; a broker that is away gets them when it is back (up to
:data:`BACKLOG`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import deque
from collections.abc import Iterable

import aiomqtt

from adapters.mqtt.broker import BrokerUrl
from adapters.mqtt.transport import Publisher, connect

log = logging.getLogger("ccsim.sensorthings")
RECONNECT_S = 1.0
BACKLOG = 200_000
"""Messages kept for a broker that is away; past that the oldest are dropped (counted)."""


class UpdatePublisher:
    """Publishes (topic, payload) messages on the event loop; :meth:`put` is called there too."""

    def __init__(self, url: BrokerUrl) -> None:
        self.url = url
        self.published = 0
        self.dropped = 0
        self.connected = False
        self._queue: deque[tuple[str, bytes]] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def put(self, messages: Iterable[tuple[str, bytes]]) -> None:
        for message in messages:
            if len(self._queue) >= BACKLOG:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append(message)
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
                "sensorthings: %d updates not published over MQTT at the end (%d dropped)",
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
