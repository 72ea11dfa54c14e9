"""``ccsim conformance`` for an NTCIP 1202 signal controller, end to end: the emulated controller
is a real child process answering SNMP on UDP, driven by a real SUMO run of the single
intersection whose controller obeys the SETs it forwards."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from adapters.conformance.controller_accuracy import Poll, status_cases
from adapters.conformance.plan import PlanError, bundled_plans, load_plan
from adapters.conformance.report import html_report, markdown
from controlcenter.conformance_controller import Cabinet, resolve_controller_site, run_controller_plan
from sim.signals import Action, PhaseControl, SignalCommand
from tests.adapters.snmp_helpers import four_way_layout
from tests.adapters.test_conformance_controller import WRITE, emulator

CCSIM = [sys.executable, "-m", "controlcenter.cli", "conformance"]
PROTOCOL = {"ASC-ID-1", "ASC-OBJ-1", "ASC-OBJ-2", "ASC-OBJ-3", "ASC-TBL-1", "ASC-TBL-2",
            "ASC-TBL-3", "ASC-SET-1", "ASC-SET-2", "ASC-SET-3", "ASC-SET-4", "ASC-SET-5",
            "ASC-SET-6", "ASC-TIM-1"}  # fmt: skip
ACCURACY = {"ACC-PHS-1", "ACC-PHS-2", "ACC-CMD-1", "ACC-CMD-2", "ACC-CMD-3"}


def outcomes(results: dict[str, Any]) -> dict[str, str]:
    return {c["id"]: c["outcome"] for c in results["cases"]}


def failed(results: dict[str, Any]) -> set[str]:
    return {i for i, o in outcomes(results).items() if o == "fail"}


def variant(tmp_path: Path, name: str, *edits: tuple[str, str]) -> Path:
    text = bundled_plans()["controller-good"].read_text()
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def expand(points: list[list[Any]], times: list[float]) -> list[tuple[float, Any]]:
    """A timeline of change points [t, value] at each of ``times``."""
    out, k = [], -1
    for t in times:
        while k + 1 < len(points) and points[k + 1][0] <= t:
            k += 1
        out.append((t, points[k][1]))
    return out


def assert_reproducible(results: dict[str, Any]) -> None:
    """The status figures, recomputed from results.json's timelines (change points) alone."""
    ctl, sc = results["controller"], results["scenario"]
    times = [sc["begin_s"] + ctl["step_s"] * k for k in range(1, ctl["polls"] + 1)]
    truth = [(t, tuple(c)) for t, c in expand(ctl["truth"], times)]
    polls = [Poll(t, None if c is None else tuple(c)) for t, c in expand(ctl["reported"], times)]
    _, again = status_cases(truth, polls, 99.0, 1.0, [])
    assert again["agreement"] == ctl["agreement"] and again["latency"] == ctl["latency"]


def test_a_good_controller_passes_every_case(tmp_path: Path) -> None:
    out = tmp_path / "good"
    done = subprocess.run([*CCSIM, "controller-good", "--end", "900", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((out / "results.json").read_text())
    assert outcomes(results) == dict.fromkeys(PROTOCOL | ACCURACY, "pass")
    ctl = results["controller"]
    assert ctl["agreement"]["agree_pct"] == 100.0 and ctl["latency"]["p95_s"] == 0.0
    assert ctl["latency"]["changes"] > 50 and ctl["polls"] == 900

    # the commands went through the emulator to the simulated controller, which obeyed them
    kinds = [c["kind"] for c in ctl["commands"]]
    assert kinds == ["hold", "omit", "call"] and all(c["sent_s"] for c in ctl["commands"])
    assert {f["set"] for f in ctl["forwarded"]} == {
        "phaseControlGroupHold", "phaseControlGroupPhaseOmit", "phaseControlGroupVehCall",
    }  # fmt: skip
    assert any(o["action"] == "hold" and o["accepted"] for o in ctl["overrides"])
    assert any(o["action"] == "phase-control" and o["accepted"] for o in ctl["overrides"])

    assert_reproducible(results)

    # identity, hashes, and reports rendered from results.json alone
    assert results["device"]["identity"]["sysName"] == "acme-asc3-good"
    for entry in results["inputs"]:
        assert hashlib.sha256(Path(entry["path"]).read_bytes()).hexdigest() == entry["sha256"]
    assert (out / "report.md").read_text() == markdown(results)
    page = (out / "report.html").read_text()
    assert page == html_report(results) and page.count("<svg") == 1
    ET.fromstring("<svg" + page.split("<svg")[1].split("</svg>")[0] + "</svg>")
    assert "## Commands and what the intersection did" in markdown(results)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("broken = []", 'broken = ["wrong-type"]'), {"ASC-OBJ-2"}),
        (("broken = []", 'broken = ["stuck-status"]'), {"ACC-PHS-1", "ACC-PHS-2"}),
        (("status_latency_s = 0", "status_latency_s = 3"), {"ACC-PHS-1", "ACC-PHS-2"}),
        # a call on a phase with traffic is served anyway: ACC-CMD-3 cannot tell this one
        (("broken = []", 'broken = ["ignores-commands"]'), {"ACC-CMD-1", "ACC-CMD-2"}),
    ],
)
def test_a_broken_controller_fails_exactly_its_cases(
    tmp_path: Path, edit: tuple[str, str], expected: set[str]
) -> None:
    path = variant(tmp_path, "broken", edit,
                   ("command_settle_s = 20", "command_settle_s = 20\ntiming_requests = 5"))  # fmt: skip
    results = asyncio.run(
        run_controller_plan(load_plan(path), tmp_path / "out", end_s=900, say=lambda _: None)
    )
    assert failed(results) == expected, [c for c in results["cases"] if c["outcome"] == "fail"]
    assert set(outcomes(results).values()) <= {"pass", "fail"}
    evidence = next(c["evidence"] for c in results["cases"] if c["id"] in expected)
    assert evidence and all(isinstance(e, str) and e for e in evidence)
    assert_reproducible(results)
    if "status_latency_s = 3" in edit:  # every colour change reported 3 s late, none missed
        latency = results["controller"]["latency"]
        assert (latency["p95_s"], latency["max_s"], latency["missed"]) == (3.0, 3.0, 0)


def test_an_external_controller_gets_the_protocol_cases(tmp_path: Path) -> None:
    with emulator(tmp_path) as (_, port):
        path = tmp_path / "external.toml"
        path.write_text(f"""name = "external"
[device]
kind = "ntcip1202"
address = "127.0.0.1:{port}"
write_community = "{WRITE}"
[scenario]
name = "single"
signal = "C"
[thresholds]
timing_requests = 5
""")  # fmt: skip
        results = asyncio.run(run_controller_plan(load_plan(path), tmp_path / "out", say=print))
    got = outcomes(results)
    assert {c for c, o in got.items() if o == "pass"} == PROTOCOL, results["cases"]
    assert {c for c, o in got.items() if o == "not-applicable"} == ACCURACY
    assert results["device"]["identity"]["sysDescr"] == "Vendor Y ASC"
    assert results["controller"] is None and "## Commands" not in markdown(results)


def test_the_cabinet_turns_registers_into_the_simulated_controllers_commands() -> None:
    cabinet = Cabinet(four_way_layout())

    def write(name: str, value: int) -> dict[str, Any]:
        return {"set": name, "index": [1], "value": value}

    [hold] = cabinet.commands(write("phaseControlGroupHold", 0b10), "0", 0)
    assert hold == SignalCommand("J1", Action.HOLD, "2", "ntcip1202-cabinet", via="ntcip")
    [free] = cabinet.commands(write("phaseControlGroupHold", 0), "0", 2)
    assert isinstance(free, SignalCommand) and free.action is Action.AUTOMATIC
    [omit] = cabinet.commands(write("phaseControlGroupPhaseOmit", 0b10), "0", 0)
    assert isinstance(omit, PhaseControl) and omit.omit_links == {2, 3} and not omit.call_lanes
    [call] = cabinet.commands(write("phaseControlGroupVehCall", 0b11), "0", 0)
    assert isinstance(call, PhaseControl) and call.call_lanes == {"n", "s"}  # phase 2 omitted
    [flash] = cabinet.commands({"set": "systemPatternControl", "index": [], "value": 255}, "0", 0)
    assert isinstance(flash, SignalCommand) and flash.action is Action.FLASH


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (("broken = []", 'broken = ["slow"]'), "device.emulator.broken[0]"),
        (('signal = "C"', 'signal = "nowhere"'), "scenario.signal"),
        (('signal = "C"', 'signal = "C"\nzones = ["a"]'), "scenario.zones"),
        (('controller = "actuated"', 'controller = "fixed"'), "scenario.controller"),
        (("status_agreement_pct = 99", "status_agreement_pct = 120"),
         "thresholds.status_agreement_pct"),
    ],
)  # fmt: skip
def test_a_bad_controller_plan_names_its_field(
    tmp_path: Path, edit: tuple[str, str], field: str
) -> None:
    with pytest.raises(PlanError) as info:
        resolve_controller_site(load_plan(variant(tmp_path, "bad", edit)))
    assert f"field '{field}'" in str(info.value) and "bad.toml" in str(info.value)


def test_the_command_lists_the_controller_plans_and_exits_2_on_a_bad_one(tmp_path: Path) -> None:
    listed = subprocess.run([*CCSIM, "--list"], capture_output=True, text=True, timeout=120)
    assert "controller-good" in listed.stdout and "controller-broken" in listed.stdout
    path = variant(tmp_path, "bad", ('kind = "ntcip1202"', 'kind = "ntcip1203"'))
    bad = subprocess.run([*CCSIM, str(path)], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.startswith(f"ccsim: error: {path}: field 'device.kind'"), bad.stderr
    assert "'ntcip1202'" in bad.stderr
