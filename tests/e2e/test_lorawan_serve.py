"""``ccsim serve district --mqtt`` as a user runs it: a Mosquitto child on loopback, the bay
sensors' uplinks in The Things Stack's format on it (read by mosquitto_sub, an independent
client), ingested back, and - with the ``guidance-uplinks`` variant - what parking guidance and
the control room's parking zones see."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.lorawan.codecs import Frame, SensorState, codec_for
from adapters.lorawan.registry import Device, Registry
from adapters.lorawan.uplink import Application, Format, Uplink, topic_and_json
from adapters.mqtt.broker import MosquittoBroker, reachable
from tests.e2e.serving import REPO, Server, start_server, wait_for

pytestmark = pytest.mark.skipif(
    shutil.which("mosquitto_sub") is None, reason="mosquitto-clients not installed (make setup)"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(
        tmp_path_factory.mktemp("lorawan"),
        "--controller", "fixed", "--variant", "guidance-uplinks", "--speed", "10", "--end", "900",
        "--mqtt", "--lorawan-heartbeat", "120",
        scenario="district",
        timeout_s=120.0,
    )  # fmt: skip
    try:
        running.wait_running(120.0)
        yield running
    finally:
        assert running.stop() == 0, running.lines


def _broker(server: Server) -> tuple[str, int]:
    line = next(x for x in server.lines if x.startswith("mqtt: "))
    found = re.fullmatch(r"mqtt: mqtt://(127\.0\.0\.1):(\d+)", line)
    assert found, line
    return found[1], int(found[2])


def _lorawan(server: Server) -> dict[str, Any]:
    lorawan: dict[str, Any] = server.health()["lorawan"]
    return lorawan


def test_serve_prints_its_broker_and_mosquitto_sub_sees_real_uplinks(server: Server) -> None:
    host, port = _broker(server)
    out = subprocess.run(
        ["mosquitto_sub", "-h", host, "-p", str(port), "-q", "1", "-v", "-t", "v3/+/devices/+/up",
         "-C", "3", "-W", "60"],
        capture_output=True, text=True, timeout=90, check=True,
    ).stdout  # fmt: skip
    for line in out.strip().splitlines():
        topic, _, body = line.partition(" ")
        assert re.fullmatch(r"v3/ccsim-parking@ccsim/devices/bay-[a-z0-9-]+/up", topic)
        message = json.loads(body)["uplink_message"]
        assert message["frm_payload"] and message["f_cnt"] >= 1
        assert message["version_ids"]["brand_id"] in ("nwave", "bosch", "dingtek")
        assert message["rx_metadata"][0]["rssi"] < 0


def test_uplinks_are_ingested_and_reach_the_parking_model(server: Server) -> None:
    lorawan = wait_for(
        lambda: (h := _lorawan(server))["counters"].get("applied", 0) >= 50 and h,
        120,
        "50 uplinks ingested",
    )
    assert lorawan["devices"] > 100 and lorawan["connected"] and lorawan["simulated"]
    assert set(lorawan["counters"]) <= {"applied"}  # an ideal link: nothing rejected
    with server.client() as c:
        # Every ingested report is on the run's stream, as parking.observed...
        observed = wait_for(
            lambda: c.get("/api/events", params={"kind": "parking.observed"}).json()["items"],
            60,
            "parking.observed events",
        )
        assert {"zone", "bay", "occupied", "device", "f_cnt"} <= observed[0]["payload"].keys()
        # ...and the zones' sensed occupancy - the control room's parking layer - is what the
        # uplinks said (guidance-uplinks), once the minute's occupancy has been published.
        zones = wait_for(
            lambda: [
                z
                for z in c.get("/api/state").json()["state"].get("zones", {}).values()
                if z["sensed_occupied"]
            ],
            120,
            "a zone with bays reported taken",
        )
    assert zones


def test_registry_file_maps_every_device_to_a_bay(server: Server) -> None:
    registry = server.db.parent / "run" / "lorawan-devices.csv"  # --out is <tmp>/run
    header, *rows = registry.read_text().splitlines()
    assert header == "device_id,dev_eui,model,zone,bay"
    assert len(rows) == _lorawan(server)["devices"]


def test_the_child_broker_stops_with_serve(tmp_path: Path) -> None:
    running = start_server(tmp_path, "--mqtt", "--end", "60", scenario="single")
    running.wait_running()
    host, port = _broker(running)
    with socket.create_connection((host, port), 5):
        pass
    assert running.stop() == 0
    with pytest.raises(OSError), socket.create_connection((host, port), 1):
        pass


def test_uplink_guidance_without_a_broker_is_refused() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "controlcenter.cli", "serve", "district", "--variant",
         "guidance-uplinks", "--port", "0"],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "parking.bay_sensor_source = 'uplinks' needs" in result.stderr
    assert "--mqtt" in result.stderr


def test_real_sensors_drive_the_parking_zone_and_bad_input_is_counted(tmp_path: Path) -> None:
    """--lorawan-registry: nothing simulated is published; uplinks sent by an independent client
    (mosquitto_pub) in The Things Stack's format set the zone's sensed occupancy, and malformed
    messages of each kind are counted under their reason while the server carries on."""
    zone = "pa_rotating_A1_A0"
    devices = [
        Device(f"real-{bay}", f"A84041000000000{bay}", "nwave/nps405", zone, bay) for bay in range(3)
    ]
    registry = tmp_path / "sensors.csv"
    Registry(devices).write(registry)
    running = start_server(
        tmp_path,
        "--controller", "fixed", "--variant", "guidance-uplinks", "--speed", "10", "--end", "900",
        "--mqtt", "--lorawan-registry", str(registry),
        scenario="district",
        timeout_s=120.0,
    )  # fmt: skip
    try:
        running.wait_running(120.0)
        host, port = _broker(running)

        def publish(topic: str, body: bytes) -> None:
            subprocess.run(
                ["mosquitto_pub", "-h", host, "-p", str(port), "-q", "1", "-t", topic, "-s"],
                input=body, check=True, timeout=30,
            )  # fmt: skip

        for device in devices:
            publish(*topic_and_json(Format.TTS, Application(), _real_uplink(device, 1, True)))
        bad = {
            "malformed_json": ("v3/ccsim-parking@ccsim/devices/real-0/up", b"{oops"),
            "unknown_device": topic_and_json(
                Format.TTS,
                Application(),
                _real_uplink(Device("stranger", "0000000000000009", "nwave/nps405", zone, 9), 1, True),
            ),
            "duplicate": topic_and_json(Format.TTS, Application(), _real_uplink(devices[0], 1, True)),
        }
        for topic, body in bad.values():
            publish(topic, body)
        lorawan = wait_for(
            lambda: (
                (h := _lorawan(running))["counters"].get("applied", 0) >= 3
                and sum(h["counters"].values()) >= 6
                and h
            ),
            60,
            "the real sensors' uplinks ingested",
        )
        assert lorawan["simulated"] is False and lorawan["devices"] == 3
        assert {k: lorawan["counters"].get(k) for k in bad} == dict.fromkeys(bad, 1)
        with running.client() as c:
            taken = wait_for(
                lambda: (
                    (z := c.get("/api/state").json()["state"].get("zones", {}).get(zone))
                    and z["sensed_occupied"] == 3
                    and z
                ),
                120,
                f"{zone} showing the 3 bays the uplinks report taken",
            )
            assert taken["sensed_occupied"] == 3
            others = c.get("/api/state").json()["state"]["zones"]
            # Nothing simulated was published: the other zones' sensors report nothing.
            assert sum(z["sensed_occupied"] for k, z in others.items() if k != zone) == 0
    finally:
        assert running.stop() == 0, running.lines
    # The run's record and the terminal say what was not applied.
    record = json.loads((tmp_path / "run" / "lorawan-ingest.json").read_text())
    assert record["counters"]["unknown_device"] == 1
    assert any(
        "not applied: duplicate 1, malformed_json 1, unknown_device 1" in x for x in running.lines
    )


def _real_uplink(device: Device, f_cnt: int, occupied: bool) -> Uplink:
    f_port, payload = codec_for(device.model).encode(Frame.STATUS, SensorState(occupied))
    return Uplink(device.device_id, device.dev_eui, f_port, f_cnt, payload, time.time())


def test_an_existing_broker_with_chirpstack_uplinks_over_a_poor_link(tmp_path: Path) -> None:
    with MosquittoBroker() as url:
        running = start_server(
            tmp_path,
            "--controller", "fixed", "--speed", "20", "--end", "900", "--mqtt", str(url),
            "--lorawan-format", "chirpstack", "--lorawan-link", "poor", "--lorawan-heartbeat", "60",
            scenario="district",
            timeout_s=120.0,
        )  # fmt: skip
        try:
            running.wait_running(120.0)
            assert f"mqtt: {url}" in running.lines
            out = subprocess.run(
                ["mosquitto_sub", "-h", url.host, "-p", str(url.port), "-q", "1", "-v",
                 "-t", "application/+/device/+/event/up", "-C", "2", "-W", "60"],
                capture_output=True, text=True, timeout=90, check=True,
            ).stdout  # fmt: skip
            for line in out.strip().splitlines():
                topic, _, body = line.partition(" ")
                event = json.loads(body)
                assert topic.endswith(f"/device/{event['deviceInfo']['devEui']}/event/up")
                assert event["fPort"] and event["data"] and event["rxInfo"][0]["rssi"] < 0
            # The link's faults reach the ingest: duplicates dropped, gaps counted.
            counters = wait_for(
                lambda: (
                    (c := _lorawan(running)["counters"]).get("duplicate", 0) and c.get("gaps", 0) and c
                ),
                120,
                "duplicates and gaps from the poor link",
            )
            assert counters["applied"] > counters["duplicate"]
        finally:
            assert running.stop() == 0, running.lines
        assert reachable(url)  # serve leaves a broker it did not start alone


def test_an_unreachable_broker_is_refused_before_anything_starts(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "controlcenter.cli", "serve", "single", "--port", "0",
         "--db", f"sqlite:///{tmp_path / 'c.db'}", "--mqtt", "mqtt://127.0.0.1:1"],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--mqtt mqtt://127.0.0.1:1: no broker answers there" in result.stderr
    assert "admin token" not in result.stdout
