"""The agents on real UDP sockets, read and written by net-snmp's own tools (Debian ``snmp``)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import Future

import pytest

from adapters.ntcip.agent import AgentGroup
from adapters.ntcip.device import SignalDevice
from adapters.ntcip.model import DetectorReading
from adapters.ntcip.protocol import Communities, Verdict, Write
from adapters.ntcip.usm import V3User
from tests.adapters.snmp_helpers import four_way_layout

pytestmark = pytest.mark.skipif(shutil.which("snmpget") is None, reason="needs net-snmp (Debian snmp)")

PHASE_STATUS = ".1.3.6.1.4.1.1206.4.2.1.1.4"
HOLD_1 = ".1.3.6.1.4.1.1206.4.2.1.1.5.1.4.1"


class Running:
    """An agent group served by an event loop in a thread, and what its SETs asked for."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.sets: list[tuple[str, tuple[Write, ...], str]] = []
        self.refuse = False
        device = SignalDevice(four_way_layout())
        device.update_signal(3.0, {"state": "GGrrGr", "program": "0", "phase": 0, "mode": "automatic"})
        device.update_detector(3.0, "e", DetectorReading(present=2, queue=2, occupancy=0.4, count=1))
        device.set_fault("w", "comm_loss")
        self.device = device
        self.group = AgentGroup(
            [device], "127.0.0.1", 0, Communities(write=frozenset({b"ntcip-write"})), self.decide,
            v3_users=[V3User("watcher", "viewer", "watcher-auth-1", "watcher-priv-1"),
                      V3User("op", "operator", "operator-auth-1", "operator-priv-1")],
        )  # fmt: skip
        self.port = self.group.endpoints[0].port
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        started: Future[None] = asyncio.run_coroutine_threadsafe(self.group.start(), self.loop)
        started.result(timeout=10)

    async def decide(self, device: SignalDevice, writes: tuple[Write, ...], peer: str) -> list[Verdict]:
        self.sets.append((device.layout.tls, writes, peer))
        return [Verdict(not self.refuse, "refused by the guard" if self.refuse else "ok")] * len(writes)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.group.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def agent() -> Iterator[Running]:
    running = Running()
    yield running
    running.close()


def snmp(tool: str, agent: Running, *args: str, version: str = "2c", community: str = "public") -> str:
    command = [tool, f"-v{version}", "-c", community, "-On", "-t", "2", "-r", "1",
               f"127.0.0.1:{agent.port}", *args]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    return done.stdout + done.stderr


def test_snmpwalk_reads_the_phase_status_group(agent: Running) -> None:
    out = snmp("snmpwalk", agent, PHASE_STATUS)
    lines = dict(line.split(" = ") for line in out.strip().splitlines())
    assert lines[f"{PHASE_STATUS}.1.4.1"] == "INTEGER: 5"  # greens: phases 1 and 3
    assert lines[f"{PHASE_STATUS}.1.2.1"] == "INTEGER: 10"  # reds: 2 and 4
    assert lines[f"{PHASE_STATUS}.1.7.1"] == "INTEGER: 4"  # walk on the crossing of phase 3
    assert lines[f"{PHASE_STATUS}.1.8.1"] == "INTEGER: 2"  # a vehicle waits for phase 2


def test_snmpget_v1_and_the_system_group(agent: Running) -> None:
    out = snmp("snmpget", agent, ".1.3.6.1.2.1.1.1.0", ".1.3.6.1.4.1.1206.4.2.1.1.1.0", version="1")
    assert 'STRING: "ccsim NTCIP 1202 ASC / 1209 TSS agent, signal J1"' in out
    assert ".1.3.6.1.4.1.1206.4.2.1.1.1.0 = INTEGER: 4" in out  # maxPhases


def test_snmpbulkwalk_reads_the_1209_zones(agent: Running) -> None:
    out = snmp("snmpbulkwalk", agent, ".1.3.6.1.4.1.1206.4.2.4.1.5.1.14")
    assert out.strip().splitlines() == [
        ".1.3.6.1.4.1.1206.4.2.4.1.5.1.14.1 = INTEGER: 2",
        ".1.3.6.1.4.1.1206.4.2.4.1.5.1.14.2 = INTEGER: 2",
        ".1.3.6.1.4.1.1206.4.2.4.1.5.1.14.3 = INTEGER: 2",
        ".1.3.6.1.4.1.1206.4.2.4.1.5.1.14.4 = INTEGER: 11",  # comm loss: inputDataIntegrity
    ]


def test_snmpset_with_the_write_community_reaches_the_decision(agent: Running) -> None:
    agent.sets.clear()
    out = snmp("snmpset", agent, HOLD_1, "i", "2", community="ntcip-write")
    assert f"{HOLD_1} = INTEGER: 2" in out
    ((tls, writes, who),) = agent.sets
    assert (tls, writes[0].object.name, writes[0].value) == ("J1", "phaseControlGroupHold", 2)
    assert who == "snmp@127.0.0.1"
    agent.refuse = True
    try:
        assert "inconsistentValue" in snmp("snmpset", agent, HOLD_1, "i", "1", community="ntcip-write")
    finally:
        agent.refuse = False


@pytest.mark.parametrize(
    ("args", "version", "community", "reason"),
    [
        ((HOLD_1, "i", "1"), "2c", "public", "noAccess"),
        ((HOLD_1, "i", "300"), "2c", "ntcip-write", "wrongValue"),
        ((HOLD_1, "s", "x"), "2c", "ntcip-write", "wrongType"),
        ((".1.3.6.1.4.1.1206.4.2.1.1.1.0", "i", "1"), "2c", "ntcip-write", "notWritable"),
        ((".1.3.6.1.4.1.1206.4.2.1.99.0", "i", "1"), "2c", "ntcip-write", "noCreation"),
        ((HOLD_1, "i", "300"), "1", "ntcip-write", "badValue"),
        ((HOLD_1, "i", "1"), "1", "public", "noSuchName"),
    ],
)
def test_snmpset_errors(
    agent: Running, args: tuple[str, ...], version: str, community: str, reason: str
) -> None:
    before = len(agent.sets)
    out = snmp("snmpset", agent, *args, version=version, community=community)
    assert f"Reason: {reason}" in out or f"Reason: ({reason})" in out
    assert len(agent.sets) == before  # nothing invalid reaches the decision


def test_a_wrong_community_gets_no_answer_and_is_counted(agent: Running) -> None:
    before = agent.device.counters.snmpInBadCommunityNames
    out = snmp("snmpget", agent, ".1.3.6.1.2.1.1.1.0", community="guess")
    assert "Timeout" in out
    assert agent.device.counters.snmpInBadCommunityNames == before + 2  # the request and its retry
    counted = snmp("snmpget", agent, ".1.3.6.1.2.1.11.4.0")
    assert f"Counter32: {before + 2}" in counted


def v3(tool: str, agent: Running, user: str, auth: str, priv: str, *args: str) -> str:
    command = [tool, "-v3", "-l", "authPriv", "-u", user, "-a", "SHA", "-A", auth, "-x", "AES",
               "-X", priv, "-On", "-t", "2", "-r", "1", f"127.0.0.1:{agent.port}", *args]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    return done.stdout + done.stderr


def test_snmpv3_authpriv_reads_and_sets_by_role(agent: Running) -> None:
    out = v3("snmpwalk", agent, "watcher", "watcher-auth-1", "watcher-priv-1", PHASE_STATUS)
    assert f"{PHASE_STATUS}.1.4.1 = INTEGER: 5" in out
    # a viewer may not set; an operator may, and its SET reaches the decision as snmpv3:<user>
    denied = v3("snmpset", agent, "watcher", "watcher-auth-1", "watcher-priv-1", HOLD_1, "i", "1")
    assert "noAccess" in denied
    agent.sets.clear()
    done = v3("snmpset", agent, "op", "operator-auth-1", "operator-priv-1", HOLD_1, "i", "2")
    assert f"{HOLD_1} = INTEGER: 2" in done
    assert [(who, writes[0].value) for _, writes, who in agent.sets] == [("snmpv3:op", 2)]


def test_snmpv3_with_a_wrong_passphrase_gets_no_data(agent: Running) -> None:
    out = v3(
        "snmpget", agent, "watcher", "not-the-passphrase", "watcher-priv-1", f"{PHASE_STATUS}.1.4.1"
    )
    assert "INTEGER" not in out
    assert "Authentication failure" in out or "Timeout" in out
