"""``ccsim serve single --ntcip``: a real server process, read and commanded by net-snmp's tools."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.adapters.test_manager import replay  # noqa: F401 - the snmpsim fixture
from tests.e2e.serving import REPO, audit, ntcip_agent_port, served, wait_for

pytestmark = pytest.mark.skipif(shutil.which("snmpget") is None, reason="needs net-snmp (Debian snmp)")

GREENS_1 = ".1.3.6.1.4.1.1206.4.2.1.1.4.1.4.1"
HOLD_1 = ".1.3.6.1.4.1.1206.4.2.1.1.5.1.4.1"
WRITE = "ntcip-write-e2e"
PATTERN = ".1.3.6.1.4.1.1206.4.2.1.4.14.0"
PATTERN_STATUS = ".1.3.6.1.4.1.1206.4.2.1.4.10.0"
FLASH_STATUS = ".1.3.6.1.4.1.1206.4.2.1.3.6.0"
SEQUENCE = ".1.3.6.1.4.1.1206.4.2.1.2.5.1.0"
VOLUMES = ".1.3.6.1.4.1.1206.4.2.1.2.5.4.1.1"


def snmp(tool: str, port: int, *args: str, community: str = "public") -> str:
    command = [tool, "-v2c", "-c", community, "-On", "-t", "3", "-r", "1", f"127.0.0.1:{port}", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    return done.stdout + done.stderr


def integer(text: str) -> int:
    return int(text.rsplit("INTEGER: ", 1)[1].split()[0])


def test_snmpwalk_reads_a_signal_and_snmpset_holds_a_phase_through_the_audit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CCSIM_SNMP_WRITE_COMMUNITY", WRITE)
    monkeypatch.setenv("CCSIM_SNMP_V3_USERS", "ops:operator:ops-auth-pass:ops-priv-pass")
    with served(tmp_path, "--ntcip", "127.0.0.1:0", "--speed", "5") as server:
        port = ntcip_agent_port(server)
        with server.client() as c:
            agents = c.get("/api/adapters").json()["ntcip"]["agents"]
        assert [(a["tls"], a["port"]) for a in agents] == [("C", port)]
        vehicle_phase = next(p["phase"] for p in agents[0]["phases"] if not p["pedestrian"])
        server.wait_running()

        walk = snmp("snmpwalk", port, ".1.3.6.1.4.1.1206.4.2.1.1.4.1")
        assert f"{GREENS_1} = INTEGER: " in walk  # the phase status group, as a manager sees it
        wait_for(lambda: integer(snmp("snmpget", port, GREENS_1)), 30, "a phase to be green")

        mask = 1 << (vehicle_phase - 1)
        assert "noAccess" in snmp("snmpset", port, HOLD_1, "i", str(mask))  # the read community
        assert f"{HOLD_1} = INTEGER: {mask}" in snmp(
            "snmpset", port, HOLD_1, "i", str(mask), community=WRITE
        )
        entry = audit(server, action="signal.override")[0]
        assert entry["user"] == "snmp@127.0.0.1" and entry["target"] == "tls:C"
        assert entry["arguments"]["via"] == "ntcip" and entry["arguments"]["action"] == "hold"
        assert entry["result"] == "accepted" and entry["detail"].startswith("holding phase")
        wait_for(
            lambda: integer(snmp("snmpget", port, GREENS_1)) & mask, 30, "the held phase to turn green"
        )
        assert integer(snmp("snmpget", port, HOLD_1)) == mask

        # the release through SNMPv3 (authPriv), audited as the v3 user
        v3 = ["snmpset", "-v3", "-l", "authPriv", "-u", "ops", "-a", "SHA", "-A", "ops-auth-pass",
              "-x", "AES", "-X", "ops-priv-pass", "-On", "-t", "3", f"127.0.0.1:{port}",
              HOLD_1, "i", "0"]  # fmt: skip
        release = subprocess.run(v3, capture_output=True, text=True, timeout=30).stdout
        assert f"{HOLD_1} = INTEGER: 0" in release
        latest = audit(server, action="signal.override")[0]
        assert (latest["user"], latest["arguments"]["action"]) == ("snmpv3:ops", "automatic")

        # systemPatternControl: 255 flashes the signal, 1 forces its first program, 0 releases it
        assert "INTEGER: 255" in snmp("snmpset", port, PATTERN, "i", "255", community=WRITE)
        wait_for(
            lambda: integer(snmp("snmpget", port, FLASH_STATUS)) == 3, 30, "unitFlashStatus automatic(3)"
        )
        assert integer(snmp("snmpget", port, PATTERN_STATUS)) == 255
        assert "INTEGER: 1" in snmp("snmpset", port, PATTERN, "i", "1", community=WRITE)
        wait_for(lambda: integer(snmp("snmpget", port, PATTERN_STATUS)) == 1, 30, "pattern 1 running")
        assert "inconsistentValue" in snmp("snmpset", port, PATTERN, "i", "9", community=WRITE)
        assert "INTEGER: 0" in snmp("snmpset", port, PATTERN, "i", "0", community=WRITE)
        wait_for(lambda: integer(snmp("snmpget", port, PATTERN_STATUS)) == 254, 30, "free again")
        actions = [
            (e["arguments"].get("action"), e["result"]) for e in audit(server, action="signal.override")
        ]
        assert actions[:4] == [("automatic", "accepted"), (None, "refused"), ("plan", "accepted"),
                               ("flash", "accepted")]  # fmt: skip

        # one sample period (60 s simulated) later the detectors have counted vehicles
        wait_for(lambda: integer(snmp("snmpget", port, SEQUENCE)) >= 1, 60, "a completed sample period")
        volumes = snmp("snmpwalk", port, VOLUMES)
        assert sum(integer(line) for line in volumes.strip().splitlines()) > 0


def test_a_bad_ntcip_address_is_a_clear_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "controlcenter.cli", "serve", "single", "--ntcip", "localhost"],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--ntcip 'localhost': expected HOST:PORT" in done.stderr


def test_an_external_station_is_shown_beside_the_simulated_detectors(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    replay: int,  # noqa: F811 - the fixture
) -> None:
    monkeypatch.setenv("CCSIM_SNMP_STATION_COMMUNITY", "recorded")
    with served(tmp_path, "--ntcip-station", f"C=127.0.0.1:{replay}", "--speed", "5") as server:
        wait_for(
            lambda: any(x.startswith("ntcip station: C <- udp") for x in server.lines),
            30,
            "the station line",
        )

        def zones() -> dict[str, Any] | None:
            with server.client() as c:
                section = c.get("/api/state").json()["state"].get("ntcip_stations", {})
            found = {k: v for k, v in section.items() if v and "zone" in v}
            return found if len(found) == 6 else None

        found = wait_for(zones, 30, "the station's zones in the live state")
        assert [found[f"C/{z}"]["volume"] for z in range(1, 7)] == [4, 3, 3, 9, 5, 2]
        assert found["C/1"]["lane"] and "simulated" in found["C/1"]
        with server.client() as c:
            stations = c.get("/api/adapters").json()["ntcip"]["stations"]
        assert stations[0]["tls"] == "C" and stations[0]["periods"] >= 1


def test_a_scenario_station_that_drives_control_replaces_the_simulated_detectors(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    replay: int,  # noqa: F811 - the fixture: a vendor station replayed by snmpsim (one period)
) -> None:
    """``[[ntcip.stations]] drive = true``: signal C's controllers see the external station's
    period (its occupancy, its flow spread over the reports) instead of the simulated detectors;
    recall before its first period and once its last one is too old (the replay never
    completes another)."""
    monkeypatch.setenv("CCSIM_SNMP_STATION_COMMUNITY", "recorded")
    scenario = tmp_path / "single-station"
    shutil.copytree(REPO / "scenarios" / "single", scenario)
    with (scenario / "scenario.toml").open("a") as toml:
        toml.write(f'\n[[ntcip.stations]]\nsignal = "C"\naddress = "127.0.0.1:{replay}"\ndrive = true\n')
    (tmp_path / "serve").mkdir()

    def state(server: Any) -> dict[str, Any]:
        with server.client() as c:
            got: dict[str, Any] = c.get("/api/state").json()
        return got

    with served(tmp_path / "serve", "--speed", "5", scenario=str(scenario)) as server:
        assert any(x.startswith("ntcip station: C <- udp") for x in server.lines)
        server.wait_running()
        zones = wait_for(
            lambda: (
                len(z := {k: v for k, v in state(server)["state"].get("ntcip_stations", {}).items()
                          if v and "zone" in v}) == 6 and z
            ),
            60,
            "the station's period in the live state",
        )  # fmt: skip
        assert {z["drives_control"] for z in zones.values()} == {True}
        expected = {z["lane"]: round(z["occupancy_pct"] / 100, 3) for z in zones.values()}
        assert sorted(expected.values()) == [0.031, 0.034, 0.043, 0.048, 0.106, 0.107]

        def detectors() -> dict[str, Any]:
            seen: dict[str, Any] = state(server)["state"]["detectors"]
            return {lane: seen[lane] for lane in expected}

        # the controllers (and the control room's detectors) see the station's occupancy
        wait_for(
            lambda: {lane: d["occupancy"] for lane, d in detectors().items()} == expected,
            30,
            "the station's occupancies as C's detector readings",
        )
        # the replayed station never completes another period: 2.5 periods on, recall
        recalled = wait_for(
            lambda: (d := detectors()) and all(x["present"] == 1 and x["occupancy"] == 0.5
                                              for x in d.values()) and d,
            90,
            "C's lanes on recall once the station's period is stale",
        )  # fmt: skip
        assert state(server)["t"] >= 150
        assert len(recalled) == 6
