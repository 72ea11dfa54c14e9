"""The thin asyncio layer over aiomqtt: connect to a broker, publish a stream of messages at QoS 1,
and hand every message of some topic filters to a callback. No protocol logic lives here.

Two shortcuts keep a subscriber at tens of thousands of messages a second on one core: messages
go straight from paho's callback to ``on_message`` (no asyncio queue and task per message), and
the socket is read in large chunks (:class:`_BufferedSocket`)."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Iterable
from typing import Any

import aiomqtt

from adapters.mqtt.broker import BrokerUrl

log = logging.getLogger("ccsim.mqtt")

READ_BYTES = 256 * 1024
PUBLISH_WINDOW = 512
"""QoS 1 publishes awaiting their PUBACK at once (more would only queue in the client)."""


def connect(
    url: BrokerUrl, identifier: str, on_message: Callable[[str, bytes], None] | None = None
) -> aiomqtt.Client:
    """A client for ``url`` (enter it with ``async with``); ``on_message(topic, payload)`` is
    called for every message of its subscriptions, in order, on the event loop's thread."""
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
        queue_type=None if on_message is None else _handing_queue(on_message),
    )
    # aiomqtt warns past 10 calls awaiting their acknowledgement; we keep a window of them on purpose.
    client.pending_calls_threshold = PUBLISH_WINDOW + 1
    return client


class Publisher:
    """Publishes in order of submission at QoS 1, up to :data:`PUBLISH_WINDOW` in flight;
    ``published`` counts acknowledged messages, ``unsent`` keeps those whose publishing failed
    (the connection broke), for the next connection to send again."""

    def __init__(self, client: aiomqtt.Client, qos: int = 1) -> None:
        self.client = client
        self.qos = qos
        self.published = 0
        self._window = asyncio.Semaphore(PUBLISH_WINDOW)
        self._tasks: set[asyncio.Task[None]] = set()
        self.failed: BaseException | None = None
        self.unsent: list[tuple[str, bytes]] = []
        _buffer_reads(client)

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
            self.unsent.append((topic, payload))
        finally:
            self._window.release()

    async def settle(self) -> None:
        """Wait until every submitted message is acknowledged or in ``unsent``; never raises."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def drain(self) -> None:
        """Wait until everything submitted so far is acknowledged (or failed)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks))
        if self.failed is not None:
            raise self.failed


async def subscribe(client: aiomqtt.Client, filters: Iterable[str]) -> None:
    """Subscribe at QoS 1; returns once the broker has acknowledged every filter."""
    _buffer_reads(client)
    for topic_filter in filters:
        await client.subscribe(topic_filter, qos=1)


async def deliver(client: aiomqtt.Client) -> None:
    """Keep the subscription's messages flowing to the ``on_message`` given to :func:`connect`
    until the connection fails (aiomqtt.MqttError) or the task is cancelled."""
    async for _message in client.messages:  # nothing is queued: they went to on_message
        pass


def _handing_queue(on_message: Callable[[str, bytes], None]) -> type[asyncio.Queue[aiomqtt.Message]]:
    """aiomqtt puts each message into a queue of this class: it hands it on instead."""

    class HandingQueue(asyncio.Queue[aiomqtt.Message]):
        def put_nowait(self, item: aiomqtt.Message) -> None:
            payload = item.payload
            data = payload if isinstance(payload, bytes) else str(payload).encode()
            try:
                on_message(item.topic.value, data)
            except Exception:  # a bug in the handler must not take the connection down
                log.exception("mqtt: handling a message on %s failed", item.topic.value)

    return HandingQueue


class _BufferedSocket:
    """paho-mqtt reads each packet with three or four ``recv`` calls (type byte, length bytes,
    body) and aiomqtt calls it once per readiness of the socket: one system call per byte of
    header and one event-loop turn per message. This reads what the kernel holds in one call
    and serves paho's small reads from it; ``pending`` (what aiomqtt asks of TLS sockets) makes
    aiomqtt's reader go on while buffered messages remain."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._buffer = bytearray()

    def recv(self, size: int) -> bytes:
        if not self._buffer:
            data = self._sock.recv(READ_BYTES)
            if not data:
                return b""
            self._buffer += data
        chunk = bytes(self._buffer[:size])
        del self._buffer[:size]
        return chunk

    def pending(self) -> int:
        inner = getattr(self._sock, "pending", None)
        return len(self._buffer) + (inner() if inner is not None else 0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def _buffer_reads(client: aiomqtt.Client) -> None:
    paho = client._client
    sock = getattr(paho, "_sock", None)
    if sock is not None and not isinstance(sock, _BufferedSocket):
        paho._sock = _BufferedSocket(sock)
