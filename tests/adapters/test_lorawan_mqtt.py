"""Through a real Mosquitto (started by the test, as ccsim serve --mqtt starts it): uplinks
published at QoS 1 reach the ingest and become observations; mosquitto_sub, an independent
client, sees the real-format topics and JSON; the broker stops with its owner."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import Iterator

import aiomqtt
import pytest

from adapters.lorawan.ingest import Ingest
from adapters.lorawan.uplink import SUBSCRIPTIONS, Format
from adapters.mqtt.broker import (
    BrokerError,
    BrokerUrl,
    MosquittoBroker,
    parse_broker_url,
    reachable,
)
from adapters.mqtt.transport import Publisher, connect, deliver, subscribe
from sim.messages import BayObserved
from tests.adapters.lorawan_helpers import DEVICES, message, registry

pytestmark = pytest.mark.skipif(
    shutil.which("mosquitto_sub") is None, reason="mosquitto-clients not installed (make setup)"
)
TIMEOUT_S = 20.0


@pytest.fixture(scope="module")
def broker() -> Iterator[BrokerUrl]:
    with MosquittoBroker() as url:
        yield url


async def _publish_and_ingest(url: BrokerUrl, messages: list[tuple[str, bytes]]) -> Ingest:
    ingest = Ingest(registry())
    done = asyncio.Event()
    seen = 0

    def on_message(topic: str, payload: bytes) -> None:
        nonlocal seen
        ingest.handle(topic, payload, now=1.0e9)
        seen += 1
        if seen == len(messages):
            done.set()

    async with connect(url, "test-ingest", on_message) as sub, connect(url, "test-ns") as pub:
        await subscribe(sub, SUBSCRIPTIONS.values())
        listener = asyncio.create_task(deliver(sub))
        publisher = Publisher(pub)
        for topic, body in messages:
            await publisher.publish(topic, body)
        await publisher.drain()
        await asyncio.wait_for(done.wait(), TIMEOUT_S)
        listener.cancel()
    return ingest


def test_uplinks_through_mosquitto_become_observations(broker: BrokerUrl) -> None:
    messages = [message(d, n, n % 2 == 0, fmt) for n in range(1, 201) for d in DEVICES for fmt in Format]
    # Each device's f_cnt goes 1..200 twice (once per format): the second of each is a duplicate.
    ingest = asyncio.run(_publish_and_ingest(broker, messages))
    assert ingest.counters["applied"] == 3 * 200
    assert ingest.counters["duplicate"] == 3 * 200
    assert sum(ingest.counters.values()) == len(messages)  # QoS 1: not one lost


def test_mosquitto_sub_sees_real_format_uplinks(broker: BrokerUrl) -> None:
    watcher = subprocess.Popen(
        ["mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-q", "1", "-v",
         "-t", "v3/+/devices/+/up", "-C", "1", "-W", str(int(TIMEOUT_S))],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip

    async def publish_until_seen() -> None:
        async with connect(broker, "test-ns-2") as pub:
            while watcher.poll() is None:  # mosquitto_sub may not have subscribed yet: repeat
                await pub.publish(*message(DEVICES[0], 7, True), qos=1)
                await asyncio.sleep(0.05)

    asyncio.run(asyncio.wait_for(publish_until_seen(), TIMEOUT_S))
    out, _ = watcher.communicate(timeout=TIMEOUT_S)
    topic, _, body = out.strip().partition(" ")
    assert topic == "v3/ccsim-parking@ccsim/devices/bay-z1-0/up"
    event = json.loads(body)
    assert event["uplink_message"]["f_cnt"] == 7
    assert event["uplink_message"]["frm_payload"] == "AQ=="  # NPS405: occupied, 0 min before


def test_the_broker_stops_with_its_owner() -> None:
    broker = MosquittoBroker()
    url = broker.start()
    assert reachable(url)
    broker.stop()
    assert not reachable(url, timeout_s=0.5)


def test_broker_urls() -> None:
    url = parse_broker_url("mqtts://ana:p%40ss@broker.example.org")
    assert (url.host, url.port, url.username, url.password, url.tls) == (
        "broker.example.org",
        8883,
        "ana",
        "p@ss",
        True,
    )
    assert str(url) == "mqtts://ana@broker.example.org:8883"  # no password in what is printed
    assert parse_broker_url("mqtt://10.0.0.5").port == 1883
    for bad in ("http://x", "mqtt://:1883", "mqtt://host:99999"):
        with pytest.raises(BrokerError, match="--mqtt"):
            parse_broker_url(bad)


def test_observation_type_is_the_simulations() -> None:
    ingest = Ingest(registry())
    assert isinstance(ingest.handle(*message(DEVICES[0], 1, True), now=1.0e9), BayObserved)


def test_a_broken_connection_leaves_every_unacknowledged_uplink_to_send_again() -> None:
    broker = MosquittoBroker()
    url = broker.start()
    messages = [message(DEVICES[n % 3], n // 3 + 1, True) for n in range(3000)]

    async def publish_while_the_broker_dies() -> tuple[int, int, int]:
        submitted = 0
        async with connect(url, "test-ns-3") as pub:
            publisher = Publisher(pub)
            try:
                for n, (topic, body) in enumerate(messages):
                    if n == 1000:
                        broker.stop()  # the broker goes away with messages in flight
                    await publisher.publish(topic, body)
                    submitted += 1
            except aiomqtt.MqttError:
                pass
            await publisher.settle()
            return submitted, publisher.published, len(publisher.unsent)

    try:
        submitted, acknowledged, unsent = asyncio.run(publish_while_the_broker_dies())
    finally:
        broker.stop()
    assert submitted >= 1000
    assert acknowledged + unsent == submitted  # nothing silently dropped
