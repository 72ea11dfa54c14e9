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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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
