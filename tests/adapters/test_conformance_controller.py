"""The emulated NTCIP 1202 controller and its cases: the pure model, the accuracy statistics on
hand-made timelines, and the emulator as a real child process answering SNMP on UDP - read by
ccsim's manager, by the protocol cases and by net-snmp's snmpget as an independent peer."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from adapters.conformance.controller_accuracy import (
    Command,
    Poll,
    SetRecord,
    command_cases,
    reported_colours,
    status_cases,
    truth_colours,
)
from adapters.conformance.controller_cases import (
    Shape,
    group_tables_case,
    objects_cases,
    oid,
    phase_table_case,
    poll_status,
    read_shape,
    set_cases,
    status_problems,
)
from adapters.conformance.controller_device import (
    Broken,
    ControllerErrorModel,
    EmulatedController,
    layout_to_dict,
)
from adapters.conformance.emulator import WRITE_COMMUNITY_ENV
from adapters.conformance.protocol_cases import Station
from adapters.ntcip.manager import Manager, ManagerError
from adapters.ntcip.oids import OBJECTS_1202, Syntax
from adapters.ntcip.protocol import ErrorStatus, Write
from tests.adapters.snmp_helpers import four_way_layout

WRITE = "controller-write-community"
NS, NS_YELLOW, EW = "GGrrGr", "yyrrrr", "rrGGrG"
"""The four-way layout's states: phase 1 (north-south) with its crossing (phase 3), its yellow,
phase 2 (east-west) with its crossing (phase 4)."""


def served(controller: EmulatedController, name: str, row: int = 1) -> Any:
    return controller.values()[oid(name, row)]


def greens(controller: EmulatedController) -> int:
    syntax, value = served(controller, "phaseStatusGroupGreens")
    assert syntax is Syntax.INTEGER
    return int(value)


def test_the_emulated_controller_reports_what_the_intersection_shows() -> None:
    controller = EmulatedController(four_way_layout())
    controller.feed(1.0, {"state": NS, "program": "0", "phase": 0, "mode": "automatic"})
    assert greens(controller) == 0b0101  # phases 1 and 3 (its crossing)
    controller.feed(2.0, {"state": NS_YELLOW})
    assert served(controller, "phaseStatusGroupYellows")[1] == 0b0001
    assert served(controller, "phaseStatusGroupReds")[1] == 0b1110
    assert served(controller, "maxPhases")[1] == 4 and served(controller, "maxPhaseGroups")[1] == 1


def test_latency_reports_late_and_a_stuck_status_stops_changing() -> None:
    late = EmulatedController(four_way_layout(), ControllerErrorModel(status_latency_s=2.0))
    stuck = EmulatedController(
        four_way_layout(), ControllerErrorModel(broken=frozenset({Broken.STUCK_STATUS}),
                                                stuck_after_s=3.0),
    )  # fmt: skip
    for t, state in ((1.0, NS), (2.0, NS), (3.0, EW), (4.0, EW), (5.0, NS), (6.0, NS)):
        late.feed(t, {"state": state})
        stuck.feed(t, {"state": state})
        if t == 1.0:
            assert greens(late) == 0b0101  # from the start a colour for every phase, if late
        if t == 4.0:
            assert greens(late) == 0b0101  # still what it showed at 2 s
            assert greens(stuck) == 0b1010  # what it showed at 3 s, its last update
    assert greens(late) == 0b1010 and greens(stuck) == 0b1010  # the stuck one never moves on


def test_wrong_type_serves_the_minimum_green_as_a_string() -> None:
    controller = EmulatedController(
        four_way_layout(), ControllerErrorModel(broken=frozenset({Broken.WRONG_TYPE}))
    )
    controller.feed(1.0, {"state": NS})
    assert served(controller, "phaseMinimumGreen") == (Syntax.OCTETS, b"5")
    assert served(controller, "phaseStatusGroupGreens")[0] is Syntax.INTEGER


def test_sets_for_phases_it_does_not_have_are_refused_and_others_kept() -> None:
    controller = EmulatedController(four_way_layout())
    hold, call = OBJECTS_1202["phaseControlGroupHold"], OBJECTS_1202["phaseControlGroupVehCall"]
    verdicts = controller.decide(
        (Write(hold, hold.instance(1), 0b1), Write(call, call.instance(1), 0b10000))
    )
    assert verdicts[0].accepted and not verdicts[1].accepted  # phase 5 does not exist
    assert "no phase [5]" in verdicts[1].detail and controller.controls.hold == {}  # none applied
    assert all(v.accepted for v in controller.decide((Write(call, call.instance(1), 0b10),)))
    assert controller.controls.veh_call == {1: 0b10}
    assert served(controller, "phaseStatusGroupVehCalls")[1] == 0b10
    pattern = OBJECTS_1202["systemPatternControl"]
    assert not controller.decide((Write(pattern, pattern.instance(), 3),))[0].accepted
    assert controller.decide((Write(pattern, pattern.instance(), 2),))[0].accepted  # "night"


# --- accuracy on hand-made timelines ------------------------------------------------------------


def timeline(states: list[str], every: float = 1.0) -> list[tuple[float, tuple[str, ...]]]:
    layout = four_way_layout()
    return [(every * (k + 1), truth_colours(layout, s)) for k, s in enumerate(states)]


def test_status_agreement_and_latency() -> None:
    truth = timeline([NS] * 5 + [NS_YELLOW] * 3 + [EW] * 5)
    exact = [Poll(t, c) for t, c in truth]
    results, figures = status_cases(truth, exact, 99.0, 1.0, ["ACC-PHS-1", "ACC-PHS-2"])
    assert [r.outcome.value for r in results] == ["pass", "pass"]
    assert figures["agreement"]["agree_pct"] == 100.0 and figures["latency"]["p95_s"] == 0.0
    assert figures["latency"]["changes"] == 5  # 1 yellow and 3 red at 6 s; 1 red, 2 and 4 green at 9 s

    lagging = [Poll(t, truth[max(0, k - 2)][1]) for k, (t, _) in enumerate(truth)]
    results, figures = status_cases(truth, lagging, 99.0, 1.0, ["ACC-PHS-1", "ACC-PHS-2"])
    assert [r.outcome.value for r in results] == ["fail", "fail"]
    assert figures["latency"]["p95_s"] == 2.0 and figures["latency"]["missed"] == 0

    stuck = [Poll(t, truth[0][1]) for t, _ in truth]  # never moves: every change missed
    results, figures = status_cases(truth, stuck, 99.0, 1.0, ["ACC-PHS-2"])
    assert results[0].outcome.value == "fail" and figures["latency"]["missed"] == 5
    assert "never reported" in " ".join(results[0].evidence)

    two = [Poll(t, ("GR", *c[1:])) for t, c in truth]  # phase 1 in two colours agrees with nothing
    results, _ = status_cases(truth, two, 99.0, 1.0, ["ACC-PHS-1"])
    assert results[0].outcome.value == "fail" and "phase 1: 0.0 %" in results[0].evidence[1]


def sent(kind: str, phase: int, at: float, until: float, **kw: Any) -> Command:
    ok = SetRecord(at, f"{kind} {phase}", "noError", 1, 1, 1)
    return Command(kind, at, until - at, phase, at, until, [ok], **kw)


def test_command_effects_are_judged_on_the_truth() -> None:
    # phase 2 served every 40 s until a hold of phase 1 from 100 s to 200 s
    cycle = [NS] * 25 + [NS_YELLOW] * 3 + [EW] * 12
    held = cycle * 2 + [EW] * 10 + [NS] * 110 + cycle * 3
    truth = timeline(held)
    hold = sent("hold", 1, 95.0, 200.0)
    assert command_cases([hold], truth, 10.0, ["ACC-CMD-1"])[0].outcome.value == "pass"
    not_held = sent("hold", 1, 15.0, 60.0)  # the cycle went on: phase 1 was not kept green
    result = command_cases([not_held], truth, 10.0, ["ACC-CMD-1"])[0]
    assert result.outcome.value == "fail" and result.metrics["green_pct"] < 60

    omitted = timeline(cycle * 2 + [NS] * 80 + cycle)  # phase 2 not served 81-160 s
    omit = sent("omit", 2, 81.0, 160.0)
    assert command_cases([omit], omitted, 5.0, ["ACC-CMD-2"])[0].outcome.value == "pass"
    ignored = sent("omit", 2, 41.0, 80.0)  # phase 2 served at 69 s while omitted
    assert command_cases([ignored], omitted, 5.0, ["ACC-CMD-2"])[0].outcome.value == "fail"
    early = sent("omit", 2, 5.0, 20.0)  # nothing served in the 15 s before: cannot be told
    assert command_cases([early], omitted, 5.0, ["ACC-CMD-2"])[0].outcome.value == "not-applicable"

    call = sent("call", 2, 10.0, 60.0, shown=True)
    assert command_cases([call], omitted, 5.0, ["ACC-CMD-3"])[0].outcome.value == "pass"
    hidden = sent("call", 2, 10.0, 60.0, shown=False)
    assert command_cases([hidden], omitted, 5.0, ["ACC-CMD-3"])[0].outcome.value == "fail"
    refused = Command("hold", 95.0, 105.0, 1, 95.0, 200.0,
                      [SetRecord(95.0, "hold", "inconsistentValue")])  # fmt: skip
    result = command_cases([refused], truth, 10.0, ["ACC-CMD-1"])[0]
    assert result.outcome.value == "fail" and "inconsistentValue" in result.evidence[0]
    unsent = Command("call", 450.0, 120.0, deadline_s=500.0, skipped=True)
    assert command_cases([unsent], truth, 10.0, ["ACC-CMD-3"])[0].outcome.value == "not-applicable"


def test_status_problems_catch_a_phase_in_two_colours_and_bits_beyond_max_phases() -> None:
    shape = Shape(4, 1, frozenset({1, 2, 3, 4}))
    colours = reported_colours(4, {2, 3, 4}, set(), {1, 3})
    masks = {"phaseStatusGroupGreens": [0b1_0101], "phaseStatusGroupReds": [0b1110]}
    problems = status_problems(7.0, colours, masks, shape)
    assert problems == [
        "at 7 s phase 3 reported GR",
        "at 7 s phaseStatusGroupGreens.1 has phases [5] beyond maxPhases 4",
    ]


# --- the emulator process, over real UDP ----------------------------------------------------------


@contextmanager
def emulator(tmp_path: Path, *args: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """A standalone emulated controller of the four-way layout, fed a few steps by the test."""
    layout = tmp_path / "layout.json"
    layout.write_text(json.dumps(layout_to_dict(four_way_layout())))
    process = subprocess.Popen(
        [sys.executable, "-m", "adapters.conformance.controller_emulator", "--layout", str(layout),
         "--descr", "Vendor Y ASC", *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env=dict(os.environ, **{WRITE_COMMUNITY_ENV: WRITE}),
    )  # fmt: skip
    try:
        line = step(process, None)
        assert line.startswith("listening udp 127.0.0.1:"), line
        assert json.loads(step(process, {"t": 1.0, "state": NS, "program": "0", "phase": 0})) == {
            "ack": 1.0
        }
        yield process, int(line.rsplit(":", 1)[1])
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=10)


def step(process: subprocess.Popen[str], doc: dict[str, Any] | None) -> str:
    assert process.stdin is not None and process.stdout is not None
    if doc is not None:
        process.stdin.write(json.dumps(doc) + "\n")
        process.stdin.flush()
    return process.stdout.readline()


async def dut_of(port: int) -> tuple[Station, Manager]:
    v2 = await Manager.open(b"public")
    v1 = await Manager.open(b"public", version=0)
    return Station(v2, ("127.0.0.1", port), b"public", WRITE.encode(), 0), v1


def test_the_emulator_answers_snmp_and_hands_accepted_sets_on(tmp_path: Path) -> None:
    async def scenario(process: subprocess.Popen[str], port: int) -> None:
        dut, v1 = await dut_of(port)
        try:
            shape = await read_shape(dut)
            assert shape == Shape(4, 1, frozenset({1, 2, 3, 4}))
            colours, _ = await poll_status(dut, 4, 1)
            assert colours == ("G", "R", "G", "R")
            hold = oid("phaseControlGroupHold", 1)
            assert await dut.manager.set(dut.target, hold, 0b10, community=WRITE.encode()) == 0b10
            with pytest.raises(ManagerError) as refused:
                await dut.manager.set(dut.target, hold, 256, community=WRITE.encode())
            assert refused.value.status == ErrorStatus.WRONG_VALUE
            with pytest.raises(ManagerError) as refused:
                await v1.set(dut.target, hold, 256, community=WRITE.encode())
            assert refused.value.status == ErrorStatus.BAD_VALUE
        finally:
            dut.manager.close()
            v1.close()

    with emulator(tmp_path) as (process, port):
        asyncio.run(scenario(process, port))
        # the accepted SET, and only it, comes out before the next step's ack
        assert json.loads(step(process, {"t": 2.0, "state": EW})) == {
            "set": "phaseControlGroupHold", "index": [1], "value": 2,
        }  # fmt: skip
        assert json.loads(step(process, None)) == {"ack": 2.0}


def protocol(port: int) -> list[tuple[str, str, list[str]]]:
    async def cases() -> list[tuple[str, str, list[str]]]:
        dut, v1 = await dut_of(port)
        try:
            shape = await read_shape(dut)
            results = await objects_cases(dut, shape, ["ASC-OBJ-1", "ASC-OBJ-2", "ASC-OBJ-3"])
            results += [await phase_table_case(dut, shape), await group_tables_case(dut, shape)]
            results += await set_cases(dut, v1, shape, [], [f"ASC-SET-{k}" for k in range(1, 7)])
        finally:
            dut.manager.close()
            v1.close()
        return [(r.id, r.outcome.value, r.evidence) for r in results]

    return asyncio.run(cases())


def test_the_protocol_cases_pass_a_good_controller_and_catch_a_wrong_type(tmp_path: Path) -> None:
    with emulator(tmp_path) as (_, port):
        good = protocol(port)
    assert [(i, o) for i, o, _ in good if o != "pass"] == [], good
    sets = dict((i, e) for i, _, e in good)
    assert sets["ASC-SET-3"] == [
        "SET phaseControlGroupHold.1 = 256 (0..255): v2c wrongValue, v1 badValue"
    ]
    assert "v2c notWritable, v1 noSuchName" in sets["ASC-SET-2"][0]
    with emulator(tmp_path, "--broken", "wrong-type") as (_, port):
        broken = protocol(port)
    failing = [(i, e) for i, o, e in broken if o != "pass"]
    assert [i for i, _ in failing] == ["ASC-OBJ-2"]
    assert failing[0][1][0].startswith(
        "phaseMinimumGreen 1.3.6.1.4.1.1206.4.2.1.1.2.1.4.1: OCTET STRING"
    )


@pytest.mark.skipif(shutil.which("snmpget") is None, reason="needs net-snmp (Debian snmp)")
def test_net_snmp_reads_the_emulated_controller(tmp_path: Path) -> None:
    greens = ".1.3.6.1.4.1.1206.4.2.1.1.4.1.4.1"  # phaseStatusGroupGreens.1
    minimum = ".1.3.6.1.4.1.1206.4.2.1.1.2.1.4.1"  # phaseMinimumGreen.1

    def snmpget(port: int, *oids: str) -> str:
        command = ["snmpget", "-v2c", "-c", "public", "-On", "-t", "2", "-r", "1",
                   f"127.0.0.1:{port}", *oids]  # fmt: skip
        return subprocess.run(command, capture_output=True, text=True, timeout=30).stdout

    with emulator(tmp_path) as (_, port):
        answer = snmpget(port, greens, minimum, ".1.3.6.1.2.1.1.1.0")
    assert f"{greens} = INTEGER: 5" in answer and f"{minimum} = INTEGER: 5" in answer
    assert 'STRING: "Vendor Y ASC"' in answer
    with emulator(tmp_path, "--broken", "wrong-type") as (_, port):
        assert f'{minimum} = STRING: "5"' in snmpget(port, minimum)
