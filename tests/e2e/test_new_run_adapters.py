"""The protocol adapters across a new run (``POST /api/runs``) of a real ``ccsim serve``: they keep
serving, and what they serve is the new run's - not the ended run's values as current, nor times
that go back."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.adapters.test_serve_ntcip import SEQUENCE, integer, snmp
from tests.e2e.serving import Server, ntcip_agent_port, start_server, wait_for

NEEDS_SNMP = pytest.mark.skipif(shutil.which("snmpget") is None, reason="needs net-snmp (Debian snmp)")
NEEDS_MOSQUITTO = pytest.mark.skipif(shutil.which("mosquitto") is None, reason="needs Mosquitto")

END_S = 180  # three of the agents' 60-s volume / occupancy periods


def finished(server: Server, run: int) -> bool:
    health = server.health()["run"]
    return bool(health["id"] == run and health["status"] == "finished")


def phase_switches(server: Server) -> list[tuple[datetime, float, Any]]:
    """(phenomenonTime, parameters.t_s, result) of every Observation of the first signal's
    phase Datastream, in time order, as a SensorThings client reads them."""
    with server.client() as c:
        page = c.get("/v1.1/Datastreams(1)/Observations", params={
            "$orderby": "phenomenonTime asc", "$top": "1000",
            "$select": "phenomenonTime,parameters,result",
        })  # fmt: skip
    assert page.status_code == 200, page.text
    body = page.json()
    assert "@iot.nextLink" not in body  # all of them in one page
    return [
        (datetime.fromisoformat(o["phenomenonTime"]), o["parameters"]["t_s"], o["result"])
        for o in body["value"]
    ]


@NEEDS_SNMP
def test_the_adapters_serve_the_new_runs_data_after_a_new_run(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--ntcip", "127.0.0.1:0", "--speed", "max", "--end", str(END_S))
    try:
        port = ntcip_agent_port(server)
        first = server.wait_running()["run"]["id"]
        wait_for(lambda: finished(server, first), 120, "the first run to finish")
        sequence = integer(snmp("snmpget", port, SEQUENCE))
        assert sequence >= 2  # its periods, as a manager polling volumeOccupancySequence sees them
        before = phase_switches(server)
        assert before and before[-1][1] <= END_S

        with server.client() as c:
            started = c.post("/api/runs")
        assert started.status_code == 200, started.text
        second = started.json()["run"]
        wait_for(lambda: finished(server, second), 120, "the new run to finish")

        # NTCIP: the same agent, on the same port, completes the new run's periods (a sampler
        # left on the ended run's clock would wait for simulation time past that run's end:
        # the sequence would stand still and the ended run's last period be served as current),
        # counting on from the ended run's sequence number as a station does.
        assert integer(snmp("snmpget", port, SEQUENCE)) >= sequence + 2
        # SensorThings: the new run's phase switches come after the ended run's in time - the
        # same seed, so the same switches at the same simulation times, stamped later - and the
        # ended run's stay as the Datastream's history.
        after = phase_switches(server)
        assert after[: len(before)] == before
        new = after[len(before) :]
        assert new and new[0][0] >= before[-1][0]
        assert [(t_s, result) for _at, t_s, result in new] == [(t, r) for _at, t, r in before]
        assert [at for at, _t, _r in after] == sorted(at for at, _t, _r in after)
        assert server.health()["reader_errors"] == {}
    finally:
        assert server.stop() == 0, server.lines[-20:]


@NEEDS_MOSQUITTO
def test_the_simulated_bay_sensors_carry_on_into_a_new_run(tmp_path: Path) -> None:
    """The district's bay sensors over LoRaWAN (a Mosquitto child), a heartbeat a minute: in the
    new run every device is heard again - heartbeats on the devices' clock, which goes on - and
    the ingest takes every uplink (frame counters that went back would be dropped as replays)."""
    server = start_server(
        tmp_path, "--controller", "fixed", "--variant", "guidance-uplinks", "--speed", "max",
        "--end", "300", "--mqtt", "--lorawan-heartbeat", "60", scenario="district", timeout_s=120,
    )  # fmt: skip
    try:
        first = server.wait_running(120)["run"]["id"]
        wait_for(lambda: finished(server, first), 180, "the first run to finish")
        lorawan = server.health()["lorawan"]
        devices = lorawan["devices"]
        assert devices > 0
        # Every uplink of the first run is in (the network side publishes through the broker).
        applied = wait_for(
            lambda: (n := server.health()["lorawan"]["counters"].get("applied", 0)) >= 4 * devices and n,
            60, "the first run's uplinks",
        )  # fmt: skip
        with server.client() as c:
            started = c.post("/api/runs")
        assert started.status_code == 200, started.text
        second = started.json()["run"]
        wait_for(lambda: finished(server, second), 180, "the new run to finish")
        # Five minutes of heartbeats once a minute: each device is heard about four times more.
        wait_for(
            lambda: server.health()["lorawan"]["counters"].get("applied", 0) >= applied + 4 * devices,
            60, "the new run's uplinks",
        )  # fmt: skip
        health = server.health()
        assert {k: v for k, v in health["lorawan"]["counters"].items() if k != "applied"} == {}
        assert health["reader_errors"] == {}
    finally:
        assert server.stop() == 0, server.lines[-20:]
