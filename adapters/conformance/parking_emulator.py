"""A vendor's LoRaWAN parking sensors, as their network server publishes them, in a process of
its own: it publishes real-format uplinks on an MQTT broker.

    python -m adapters.conformance.parking_emulator --broker mqtt://127.0.0.1:1883 \\
        --bays pa_C_E:15,pa_C_N:15 --model nwave/nps405 [--format tts|chirpstack] \\
        [--miss 0] [--false-per-h 0] [--false-duration 300] [--latency 0] [--duplicates 0] \\
        [--heartbeat 3600] [--seed 1] [--begin 0]

It prints ``connected mqtt://HOST:PORT`` once the broker has accepted it, publishes every
sensor's start-up frame, then reads the bays' true changes from stdin, one JSON object per
simulation step: ``{"t": 61.0, "changes": [["pa_C_E", 3, true]]}`` (zone, bay index, occupied
now; ``changes`` may be empty: time passes, heartbeats fall due). At the end of stdin it waits
until the broker has acknowledged every message (QoS 1), prints ``published N`` and exits.
The sensors and their error model are :mod:`adapters.conformance.bay_sensors`'.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Sequence

from adapters.conformance.bay_sensors import BayErrorModel, EmulatedBaySensors, Published
from adapters.lorawan.uplink import Format
from adapters.mqtt.broker import BrokerError, parse_broker_url
from adapters.mqtt.transport import Publisher, connect


def bay_list(text: str) -> list[tuple[str, int]]:
    """``zone:bays,zone:bays`` -> every (zone, bay index)."""
    out = []
    for part in text.split(","):
        zone, _, count = part.rpartition(":")
        if not zone or not count.isdigit():
            raise argparse.ArgumentTypeError(f"'{part}': expected ZONE:BAYS, e.g. pa_C_E:15")
        out += [(zone, bay) for bay in range(int(count))]
    return out


async def serve(sensors: EmulatedBaySensors, url_text: str, begin_s: float) -> int:
    url = parse_broker_url(url_text)
    loop = asyncio.get_running_loop()
    async with connect(url, "ccsim-parking-emulator") as client:
        publisher = Publisher(client)
        print(f"connected {url}", flush=True)

        async def publish(messages: list[Published]) -> None:
            for message in messages:
                await publisher.publish(message.topic, message.payload)

        await publish(sensors.start(begin_s))
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            step = json.loads(line)
            changes = [(str(z), int(b), bool(o)) for z, b, o in step.get("changes", [])]
            await publish(sensors.feed(float(step["t"]), changes))
        await publisher.drain()
        print(f"published {publisher.published}", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m adapters.conformance.parking_emulator")
    parser.add_argument("--broker", required=True, help="mqtt://HOST:PORT")
    parser.add_argument("--bays", type=bay_list, required=True, help="ZONE:BAYS,...")
    parser.add_argument("--model", required=True, help="brand/model, e.g. nwave/nps405")
    parser.add_argument("--format", choices=[f.value for f in Format], default="tts")
    parser.add_argument("--miss", type=float, default=0.0, help="share of changes missed")
    parser.add_argument("--false-per-h", type=float, default=0.0, help="per free bay-hour")
    parser.add_argument("--false-duration", type=float, default=300.0, help="s")
    parser.add_argument("--latency", type=float, default=0.0, help="mean, s")
    parser.add_argument("--duplicates", type=float, default=0.0, help="share delivered twice")
    parser.add_argument("--heartbeat", type=float, default=3600.0, help="s")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--begin", type=float, default=0.0, help="simulation begin, s")
    args = parser.parse_args(argv)
    error = BayErrorModel(
        miss_share=args.miss, false_per_h=args.false_per_h, false_duration_s=args.false_duration,
        latency_s=args.latency, duplicate_share=args.duplicates, heartbeat_s=args.heartbeat,
    )  # fmt: skip
    try:
        sensors = EmulatedBaySensors(args.bays, args.model, error, fmt=Format(args.format),
                                     seed=args.seed)  # fmt: skip
    except KeyError as exc:
        parser.error(str(exc.args[0]))
    try:
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends an emulator started by hand
            return asyncio.run(serve(sensors, args.broker, args.begin))
    except BrokerError as exc:
        parser.error(str(exc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
