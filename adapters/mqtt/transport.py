"""The thin asyncio layer over aiomqtt: connect to a broker, publish a stream of messages at QoS 1,
and hand every message of some topic filters to a callback. No protocol logic lives here."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Iterable

import aiomqtt

from adapters.mqtt.broker import BrokerUrl

PUBLISH_WINDOW = 512
"""QoS 1 publishes awaiting their PUBACK at once (more would only queue in the client)."""


def connect(url: BrokerUrl, identifier: str) -> aiomqtt.Client:
    """A client for ``url`` (enter it with ``async with``)."""
    context = None
    if url.tls:
        context = ssl.create_default_context(cafile=str(url.ca_file) if url.ca_file else None)
    client = aiomqtt.Client(
        url.host,
        url.port,
        username=url.username,
        password=url.password,
        identifier=identifier,
        tls_context=context,
        max_inflight_messages=PUBLISH_WINDOW,
        timeout=10.0,
    )
    # aiomqtt warns past 10 calls awaiting their acknowledgement; we keep a window of them on purpose.
    client.pending_calls_threshold = PUBLISH_WINDOW + 1
    return client


class Publisher:
    """Publishes what is :meth:`put` (from any thread, via the loop) in order of submission, at
    QoS 1, up to :data:`PUBLISH_WINDOW` in flight; ``published`` counts acknowledged ones."""

    def __init__(self, client: aiomqtt.Client, qos: int = 1) -> None:
        self.client = client
        self.qos = qos
        self.published = 0
        self._window = asyncio.Semaphore(PUBLISH_WINDOW)
        self._tasks: set[asyncio.Task[None]] = set()
        self.failed: BaseException | None = None

    async def publish(self, topic: str, payload: bytes) -> None:
        await self._window.acquire()
        if self.failed is not None:
            self._window.release()
            raise self.failed
        task = asyncio.create_task(self._one(topic, payload))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _one(self, topic: str, payload: bytes) -> None:
        try:
            await self.client.publish(topic, payload, qos=self.qos)
            self.published += 1
        except aiomqtt.MqttError as exc:
            self.failed = exc
        finally:
            self._window.release()

    async def drain(self) -> None:
        """Wait until everything submitted so far is acknowledged (or failed)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks))
        if self.failed is not None:
            raise self.failed


async def subscribe(client: aiomqtt.Client, filters: Iterable[str]) -> None:
    """Subscribe at QoS 1; returns once the broker has acknowledged every filter."""
    for topic_filter in filters:
        await client.subscribe(topic_filter, qos=1)


async def deliver(client: aiomqtt.Client, on_message: Callable[[str, bytes], None]) -> None:
    """Call ``on_message(topic, payload)`` for each message, until the connection fails
    (aiomqtt.MqttError) or the task is cancelled."""
    async for message in client.messages:
        payload = message.payload
        data = payload if isinstance(payload, bytes) else str(payload).encode()
        on_message(message.topic.value, data)
