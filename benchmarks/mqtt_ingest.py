"""LoRaWAN uplinks through Mosquitto into the ingest: sustained rate, latency, losses.

A Mosquitto child (as ``ccsim serve --mqtt`` starts it) on loopback; in other processes,
network-server stand-ins publish The Things Stack v3 uplinks of ``--devices`` simulated bay
sensors (the three vendor models, vendor payload bytes, f_cnt rising by one per device) at
QoS 1, paced at each of ``--rates`` uplinks/s for ``--seconds``. Each uplink's ``received_at``
is stamped with the wall-clock time it is handed to the MQTT client. In this process, the
control center's own path - aiomqtt subscriber (``adapters.mqtt.transport``),
:class:`adapters.lorawan.ingest.Ingest` (JSON, base64, registry, f_cnt, the vendor codec) -
turns each into a bay observation and applies it to a bay-state table; publish-to-applied
latency is the time from that stamp to the application. Lost: uplinks the broker acknowledged
to a publisher but never delivered.

    python benchmarks/mqtt_ingest.py [--rates 10000,3000] [--seconds 10] [--devices 1000] [--no-write]

Prints the figures and writes them into benchmarks/RESULTS.md between the ``mqtt-ingest`` markers.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from results_md import replace_section  # noqa: E402

from adapters.lorawan.codecs import Frame, SensorState, codec_for  # noqa: E402
from adapters.lorawan.devices import DEFAULT_MODELS, dev_eui, device_id  # noqa: E402
from adapters.lorawan.ingest import Ingest  # noqa: E402
from adapters.lorawan.registry import Device, Registry  # noqa: E402
from adapters.lorawan.uplink import SUBSCRIPTIONS, Application, Uplink, tts_json, tts_topic  # noqa: E402
from adapters.mqtt.broker import BrokerUrl, MosquittoBroker  # noqa: E402
from adapters.mqtt.transport import connect, deliver, subscribe  # noqa: E402
from sim.messages import BayObserved  # noqa: E402

IDLE_S = 10.0
STAMP = "2000-01-01T00:00:00.000000Z"
"""Placeholder ``received_at`` in the pre-built JSON, replaced by the time of publishing."""


def _registry(devices: int) -> Registry:
    return Registry(
        Device(device_id(f"z{i // 10}", i % 10), dev_eui(f"z{i // 10}", i % 10),
               DEFAULT_MODELS[i % 3], f"z{i // 10}", i % 10)
        for i in range(devices)
    )  # fmt: skip


def _messages(registry: Registry, total: int) -> list[tuple[str, bytes]]:
    """``total`` uplinks, round robin over the devices, each device's f_cnt rising by one."""
    app = Application()
    devices = list(registry.by_id.values())
    out = []
    for n in range(total):
        device = devices[n % len(devices)]
        f_cnt = n // len(devices) + 1
        f_port, payload = codec_for(device.model).encode(
            Frame.STATUS, SensorState(f_cnt % 2 == 0, 600.0, 3.5, 20.0, f_cnt)
        )
        up = Uplink(device.device_id, device.dev_eui, f_port, f_cnt, payload, 946684800.0,
                    model=device.model)  # fmt: skip
        body = tts_json(app, up).replace(b"2000-01-01T00:00:00.000000Z", STAMP.encode())
        out.append((tts_topic(app, device.device_id), body))
    return out


def publisher(
    url: BrokerUrl, messages: list[tuple[str, bytes]], rate: float, ready: Any, acked_out: Any
) -> None:
    """The network-server stand-in (its own process): paho-mqtt, QoS 1, paced in 1 ms slices."""
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-ns-{os.getpid()}")
    # No window: paho sends a message queued behind a full window after newer ones (out of order).
    client.max_inflight_messages_set(0)
    client.max_queued_messages_set(0)
    acked = [0]

    def on_publish(*_args: object) -> None:
        acked[0] += 1

    client.on_publish = on_publish
    client.connect(url.host, url.port)
    client.loop_start()
    ready.wait()
    start = time.perf_counter()
    stamp = STAMP.encode()
    last_second, prefix = -1, ""
    for n, (topic, body) in enumerate(messages):
        due = start + n / rate
        while (ahead := due - time.perf_counter()) > 0.001:
            time.sleep(ahead)
        wall = time.time()
        second = int(wall)
        if second != last_second:  # formatting the date once a second keeps the stamp cheap
            last_second, prefix = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        now = f"{prefix}.{int((wall - second) * 1e6):06d}Z".encode()
        client.publish(topic, body.replace(stamp, now), qos=1)
    deadline = time.monotonic() + 300
    while acked[0] < len(messages) and time.monotonic() < deadline:
        time.sleep(0.01)
    acked_out.value = acked[0]
    elapsed = time.perf_counter() - start
    client.loop_stop()
    client.disconnect()
    print(
        f"publisher: {len(messages)} published, {acked[0]} acknowledged in {elapsed:.2f} s", flush=True
    )


async def ingest_side(
    url: BrokerUrl, registry: Registry, ready: Any, acked: Any, publisher_done: Any
) -> dict[str, Any]:
    ingest = Ingest(registry)
    bays: dict[tuple[str, int], bool] = {}
    latencies: list[float] = []
    first = last = 0.0

    def on_message(topic: str, payload: bytes) -> None:
        nonlocal first, last
        result = ingest.handle(topic, payload, time.time())
        if isinstance(result, BayObserved):
            bays[(result.zone, result.bay)] = result.occupied
            latencies.append(ingest.last_latency_s)
            last = time.perf_counter()
            if not first:
                first = last

    cpu0 = time.process_time()
    async with connect(url, "bench-ingest", on_message) as client:
        await subscribe(client, SUBSCRIPTIONS.values())
        listener = asyncio.create_task(deliver(client))
        ready.set()
        # Until the publisher has its acknowledgements and everything acknowledged has come, or
        # nothing more comes for IDLE_S after that (what never came counts as lost).
        seen, quiet_since = -1, time.monotonic()
        while True:
            await asyncio.sleep(0.05)
            handled = sum(ingest.counters.values())
            if handled != seen:
                seen, quiet_since = handled, time.monotonic()
            if publisher_done() and (handled >= acked.value or time.monotonic() - quiet_since > IDLE_S):
                break
        listener.cancel()
    cpu_us = (time.process_time() - cpu0) / max(1, sum(ingest.counters.values())) * 1e6
    latencies.sort()
    applied = ingest.counters["applied"]
    return {
        "applied": applied,
        "rejected": sum(ingest.counters.values()) - applied,
        "rate": (applied - 1) / (last - first) if last > first else 0.0,
        "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else float("nan"),
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)] if latencies else float("nan"),
        "max_ms": 1000 * latencies[-1] if latencies else float("nan"),
        "mean_ms": 1000 * statistics.fmean(latencies) if latencies else float("nan"),
        "cpu_us": cpu_us,
        "counters": dict(ingest.counters),
    }


class _Sum:
    """The acknowledged counts of all publishers, read as one ``value``."""

    def __init__(self, counts: list[Any]) -> None:
        self.counts = counts

    @property
    def value(self) -> int:
        return sum(int(c.value) for c in self.counts)


def run(rate: float, seconds: float, devices: int, k: int) -> dict[str, Any]:
    """One measurement on a fresh broker; the figures of one row."""
    total = int(rate * seconds)
    registry = _registry(devices)
    print(f"{rate:.0f}/s: building {total} uplinks of {devices} devices...", flush=True)
    messages = _messages(registry, total)
    context = multiprocessing.get_context("spawn")
    with MosquittoBroker() as url:
        ready = context.Event()
        counts = [context.Value("q", 0) for _ in range(k)]
        # Each device's uplinks stay with one publisher, in f_cnt order.
        shares = [[m for n, m in enumerate(messages) if (n % devices) % k == i] for i in range(k)]
        pubs = [
            context.Process(target=publisher, args=(url, shares[i], rate / k, ready, counts[i]))
            for i in range(k)
        ]
        for p in pubs:
            p.start()
        acked = _Sum(counts)
        figures = asyncio.run(
            ingest_side(url, registry, ready, acked, lambda: not any(p.is_alive() for p in pubs))
        )
        for p in pubs:
            p.join(60)
    counters = figures["counters"]
    figures["offered"] = total
    figures["published"] = acked.value
    figures["late"] = int(counters.get("late", 0))
    figures["duplicates"] = int(counters.get("duplicate", 0)) + int(counters.get("replay", 0))
    figures["lost"] = acked.value - figures["applied"] - figures["late"]
    figures["load"] = os.getloadavg()[0]
    print("ingest counters:", counters, flush=True)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="10000,3000", help="uplinks per second offered, each a run")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long each run, s")
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--publishers", type=int, default=2, help="publishing processes")
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    rows = [
        "| offered | rate offered | acknowledged | applied | late | duplicates | lost | sustained "
        "| p50 | p99 | max | ingest CPU per uplink | load average |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for rate in rates:
        f = run(rate, args.seconds, args.devices, args.publishers)
        rows.append(
            f"| {f['offered']} | {rate:.0f}/s | {f['published']} | {f['applied']} | {f['late']} "
            f"| {f['duplicates']} | {f['lost']} | {f['rate']:.0f}/s | {f['p50_ms']:.1f} ms "
            f"| {f['p99_ms']:.1f} ms | {f['max_ms']:.1f} ms | {f['cpu_us']:.0f} us | {f['load']:.1f} |"
        )
    body = "\n".join(
        [
            "## LoRaWAN uplinks through Mosquitto into the ingest",
            "",
            f"`python benchmarks/mqtt_ingest.py --rates {args.rates} --seconds {args.seconds:g} "
            f"--devices {args.devices} --publishers {args.publishers}`: The Things Stack v3 uplinks "
            f"of {args.devices} bay sensors (Nwave, Bosch, Dingtek payloads) published at QoS 1 by "
            f"{args.publishers} other processes (paho-mqtt) to a Mosquitto child on loopback, taken "
            "by ccsim's own subscriber (aiomqtt, `adapters/mqtt/transport.py`) and ingest (JSON, "
            "base64, registry, f_cnt, vendor codec) and applied to the bay states. Latency: from "
            "handing the uplink to the publisher's MQTT client to its application. Targets: >= "
            "10,000 uplinks/s sustained, p99 <= 50 ms, 0 lost at QoS 1. *Acknowledged*: uplinks "
            "the broker acknowledged (PUBACK) to a publisher; *late*: came after a newer uplink of "
            "the same device (dropped as stale); *duplicates*: delivered twice (QoS 1 is at least "
            "once; dropped by f_cnt); *lost*: acknowledged but never delivered; *sustained*: "
            "applied per second from the first to the last; *ingest CPU*: CPU time of the ingest "
            "process per uplink (what one core's worth of it can carry is 10^6 / that per second).",
            "",
            *rows,
            "",
            f"Measured {datetime.now(UTC):%Y-%m-%d} on {platform.machine()} with {os.cpu_count()} "
            f"cores shared with other work (load average at the end of each run in the table), "
            f"Python {platform.python_version()}, Mosquitto from Debian.",
        ]
    )
    print(body)
    if not args.no_write:
        replace_section("mqtt-ingest", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
