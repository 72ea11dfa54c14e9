"""NTCIP phase control SETs (Omit, PedOmit, VehCall, PedCall) on a served signal, from net-snmp's
``snmpset``: through the guard and the audit, and what the signal then does."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests.adapters.test_serve_ntcip import integer, snmp
from tests.e2e.serving import audit, ntcip_agent_port, served, wait_for

pytestmark = pytest.mark.skipif(shutil.which("snmpset") is None, reason="needs net-snmp (Debian snmp)")

ASC_PHASE = ".1.3.6.1.4.1.1206.4.2.1.1"
GREENS_1 = f"{ASC_PHASE}.4.1.4.1"
VEH_CALLS_1 = f"{ASC_PHASE}.4.1.8.1"
PED_CALLS_1 = f"{ASC_PHASE}.4.1.9.1"
OMIT_1 = f"{ASC_PHASE}.5.1.2.1"
PED_OMIT_1 = f"{ASC_PHASE}.5.1.3.1"
VEH_CALL_1 = f"{ASC_PHASE}.5.1.6.1"
PED_CALL_1 = f"{ASC_PHASE}.5.1.7.1"
WRITE = "ntcip-write-phase-control"


def test_omit_keeps_a_phase_red_and_calls_show_while_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CCSIM_SNMP_WRITE_COMMUNITY", WRITE)
    with served(tmp_path, "--ntcip", "127.0.0.1:0", "--speed", "10") as server:
        port = ntcip_agent_port(server)
        with server.client() as c:
            phases = c.get("/api/adapters").json()["ntcip"]["agents"][0]["phases"]
        vehicle = [p["phase"] for p in phases if not p["pedestrian"]]
        pedestrian = [p["phase"] for p in phases if p["pedestrian"]]
        server.wait_running()

        def greens() -> int:
            return integer(snmp("snmpget", port, GREENS_1))

        # The signal cycles: every vehicle phase turns green within a few cycles.
        seen = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and seen != sum(1 << (p - 1) for p in vehicle):
            seen |= greens() & sum(1 << (p - 1) for p in vehicle)
            time.sleep(0.05)
        target = vehicle[-1]
        bit = 1 << (target - 1)
        assert seen & bit, f"phase {target} never turned green before the omit"

        # Omit it: once its current green (if any) has ended, it is not served again while set.
        answer = snmp("snmpset", port, OMIT_1, "i", str(bit), community=WRITE)
        assert f"{OMIT_1} = INTEGER: {bit}" in answer
        entry = audit(server, action="signal.override")[0]
        assert entry["arguments"]["action"] == "phase-control"
        assert entry["arguments"]["object"] == "phaseControlGroupPhaseOmit.1"
        assert entry["result"] == "accepted" and "omitting links" in entry["detail"]
        assert integer(snmp("snmpget", port, OMIT_1)) == bit
        wait_for(lambda: not greens() & bit, 30, f"phase {target} to end its green")
        others, shown = 0, 0
        deadline = time.monotonic() + 12  # 120 s simulated at x10: several cycles
        while time.monotonic() < deadline:
            now = greens()
            shown |= now & bit
            others |= now & ~bit
            time.sleep(0.05)
        assert not shown, f"omitted phase {target} was served"
        assert others & ~bit, "the other phases kept running"

        # Released, it is served again.
        assert "INTEGER: 0" in snmp("snmpset", port, OMIT_1, "i", "0", community=WRITE)
        wait_for(lambda: greens() & bit, 60, f"phase {target} green again after the omit")

        # A vehicle call shows in phaseStatusGroupVehCalls for as long as the bit is set.
        call = 1 << (vehicle[0] - 1)
        assert "INTEGER: " in snmp("snmpset", port, VEH_CALL_1, "i", str(call), community=WRITE)
        assert audit(server, action="signal.override")[0]["result"] in ("accepted", "pending")
        for _ in range(20):
            assert integer(snmp("snmpget", port, VEH_CALLS_1)) & call
            time.sleep(0.05)
        assert "INTEGER: 0" in snmp("snmpset", port, VEH_CALL_1, "i", "0", community=WRITE)

        # Pedestrian calls and omits only on pedestrian phases; a vehicle phase is refused, by name.
        refused = snmp("snmpset", port, PED_CALL_1, "i", str(call), community=WRITE)
        assert "inconsistentValue" in refused
        latest = audit(server, action="signal.override")[0]
        assert latest["result"] == "refused" and "no pedestrian service" in latest["detail"]
        if pedestrian:
            ped = 1 << (pedestrian[0] - 1)
            snmp("snmpset", port, PED_CALL_1, "i", str(ped), community=WRITE)
            assert integer(snmp("snmpget", port, PED_CALLS_1)) == ped
            snmp("snmpset", port, PED_OMIT_1, "i", str(ped), community=WRITE)
            assert integer(snmp("snmpget", port, PED_OMIT_1)) == ped
        # A phase the signal does not have is refused.
        assert "inconsistentValue" in snmp("snmpset", port, OMIT_1, "i", "128", community=WRITE)
