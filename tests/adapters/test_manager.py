"""ccsim as the centre: the manager against a recorded walk replayed by snmpsim, against
ccsim's own agents in another process, and hardware in the loop with the conflict monitor."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.ntcip.manager import (
    ConflictMonitor,
    ControllerLink,
    Manager,
    ManagerError,
    PhaseStates,
    StationPoller,
)
from adapters.ntcip.oids import OBJECTS_1202, objects_1209
from tests.e2e.serving import ntcip_agent_port, served, wait_for

DATA = Path(__file__).parent / "data"
needs_snmpget = pytest.mark.skipif(shutil.which("snmpget") is None, reason="needs net-snmp")
REDS_1 = OBJECTS_1202["phaseStatusGroupReds"].instance(1)
GREENS_1 = OBJECTS_1202["phaseStatusGroupGreens"].instance(1)


# --- the conflict monitor, pure --------------------------------------------------------------------


def test_the_monitor_flashes_on_conflicting_phases_and_stays_flashing() -> None:
    monitor = ConflictMonitor(frozenset({(1, 2), (2, 1)}))
    assert monitor.observe(0.0, PhaseStates(greens=frozenset({1, 3}))) is None
    assert monitor.observe(0.1, PhaseStates(greens=frozenset({1}), yellows=frozenset({2}))) == (
        "conflicting phases 1 and 2 shown together"
    )
    assert monitor.observe(0.2, PhaseStates(greens=frozenset({1}))) is not None  # latched
    monitor.reset()
    assert monitor.observe(0.3, PhaseStates(greens=frozenset({1}))) is None


def test_the_monitor_flashes_after_one_second_without_an_answer() -> None:
    monitor = ConflictMonitor(frozenset())
    assert monitor.observe(0.0, PhaseStates()) is None
    assert monitor.observe(0.5, None) is None
    assert monitor.observe(0.9, None) is None
    assert monitor.observe(1.0, None) == "no answer for 1.0 s"


# --- a recorded walk replayed by snmpsim -------------------------------------------------------------


def snmprec(walk: str) -> str:
    """net-snmp's ``snmpwalk -On -Oe`` output as snmpsim's ``.snmprec`` (OID|tag|value)."""
    tags = {"INTEGER": 2, "STRING": 4, "OID": 6, "Timeticks": 67, "Counter32": 65}
    lines = []
    for line in walk.splitlines():
        match = re.match(r"^\.?([\d.]+) = ([\w]+): (.*)$", line)
        if not match:
            continue
        oid, kind, value = match.groups()
        if kind == "STRING":
            value = value.strip('"')
        elif kind == "OID":
            value = value.lstrip(".")
        elif kind == "Timeticks":
            value = value.split(")")[0].lstrip("(")
        lines.append(f"{oid}|{tags[kind]}|{value}")
    return "\n".join(lines) + "\n"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def replay() -> Iterator[int]:
    """snmpsim answering, with community ``recorded``, from the walk in tests/adapters/data."""
    # Not under pytest's private temporary folder: snmpsim drops root privileges to nobody.
    folder = Path(tempfile.mkdtemp(prefix="ccsim-snmpsim-"))
    (folder / "data").mkdir()
    (folder / "cache").mkdir()
    (folder / "data" / "recorded.snmprec").write_text(snmprec((DATA / "single-C.walk").read_text()))
    for path in (folder, folder / "data", folder / "cache", folder / "data" / "recorded.snmprec"):
        path.chmod(0o777)  # snmpsim drops root privileges to nobody
    port = free_udp_port()
    # snmpsim imports its dbm and codec modules lazily, after dropping privileges; import them first.
    code = (
        "import dbm, dbm.dumb, encodings.latin_1, encodings.ascii, encodings.idna, sys\n"
        "from snmpsim.commands.responder import main\n"
        f"sys.argv = ['snmpsim', '--data-dir={folder / 'data'}', '--cache-dir={folder / 'cache'}',"
        f" '--agent-udpv4-endpoint=127.0.0.1:{port}', '--process-user=nobody',"
        " '--process-group=nogroup', '--log-level=error']\n"
        "sys.exit(main())\n"
    )
    log = folder / "snmpsim.log"
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=log.open("w")
    )
    try:
        wait_for(
            lambda: "INTEGER" in subprocess.run(
                ["snmpget", "-v2c", "-c", "recorded", "-t", "0.5", "-r", "0", f"127.0.0.1:{port}",
                 ".1.3.6.1.4.1.1206.4.2.1.1.1.0"], capture_output=True, text=True,
            ).stdout,
            30, f"snmpsim to answer (its log: {log})",
        )  # fmt: skip
        yield port
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


@needs_snmpget
def test_the_manager_reads_a_recorded_controller_and_station(replay: int) -> None:
    target = ("127.0.0.1", replay)

    async def scenario() -> None:
        manager = await Manager.open(b"recorded")
        try:
            values = await manager.get(target, [REDS_1, GREENS_1])
            assert values == {REDS_1: 63, GREENS_1: 0}  # an all-red moment
            zones = await manager.walk(target, objects_1209()["sensorZoneStatus"].oid)
            assert [v for _, v in zones] == [2] * 6
            station = StationPoller(manager, target, range(1, 7))
            assert await station.sample_period_s() == 60.0
            samples = await station.poll()
            assert [s.volume for s in samples] == [4, 3, 3, 9, 5, 2]
            assert [s.occupancy_pct for s in samples] == [3.4, 4.3, 4.8, 10.7, 10.6, 3.1]
            assert {s.speed_kmh for s in samples} == {None}  # 65535: the zones measure no speed
            assert {s.sequence for s in samples} == {25}
            assert await station.poll() == []  # the same period: nothing new
            link = ControllerLink(manager, target, ConflictMonitor(frozenset({(1, 3), (3, 1)})))
            await link.run(0.5)
            assert link.answered == link.polls >= 4 and link.monitor.flashing is None
        finally:
            manager.close()

    asyncio.run(scenario())


# --- ccsim's own agents in another process: hardware in the loop -------------------------------------


@needs_snmpget
def test_hardware_in_the_loop_against_ccsim_agents_in_another_process(tmp_path: Path) -> None:
    server = served(tmp_path, "--ntcip", "127.0.0.1:0", "--speed", "5")
    with server as running:
        target = ("127.0.0.1", ntcip_agent_port(running))
        running.wait_running()

        async def loop() -> tuple[ControllerLink, ControllerLink]:
            manager = await Manager.open()
            try:
                calm = ControllerLink(manager, target, ConflictMonitor(frozenset()))
                await calm.run(2.0)
                # Declare two phases the controller shows green together as conflicting: the
                # monitor must trip within a poll of seeing them.
                together: list[int] = []
                while len(together) < 2:
                    states = await calm.poll_once()
                    together = sorted(states.greens) if states else []
                pair = (together[0], together[1])
                strict = ControllerLink(manager, target, ConflictMonitor(frozenset({pair, pair[::-1]})))
                await strict.poll_once()
                with pytest.raises(ManagerError, match=r"inconsistentValue|noAccess"):
                    await calm.place_calls([1])  # the read community may not place calls
                return calm, strict
            finally:
                manager.close()

        calm, strict = asyncio.run(loop())
        assert calm.monitor.flashing is None and calm.answered == calm.polls >= 15
        assert max(calm.latencies_s) < 0.25  # each poll answered well within the HIL budget
        assert strict.monitor.flashing is not None and "shown together" in strict.monitor.flashing

    async def silence() -> ControllerLink:  # the controller is gone (server stopped)
        manager = await Manager.open()
        try:
            link = ControllerLink(manager, target, ConflictMonitor(frozenset()))
            link.monitor.last_answer_s = asyncio.get_running_loop().time()
            await link.run(1.5, clock=asyncio.get_running_loop().time)
            return link
        finally:
            manager.close()

    gone = asyncio.run(silence())
    assert gone.answered == 0 and gone.monitor.flashing is not None
    assert gone.monitor.flashing.startswith("no answer for")
