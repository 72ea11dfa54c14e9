"""``ccsim conformance`` end to end: the emulated station is a real child process answering SNMP
on UDP, driven by a real SUMO run; net-snmp's snmpget/snmpset read it as an independent peer."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from adapters.conformance.detection import presence_from, speed_periods, speed_summary
from adapters.conformance.emulator import WRITE_COMMUNITY_ENV
from adapters.conformance.plan import bundled_plans, load_plan
from adapters.conformance.report import html_report, markdown
from controlcenter.conformance import run_plan
from sim.sensor_profiles import read_profile
from tests.adapters.test_manager import replay  # noqa: F401 - the snmpsim fixture

CCSIM = [sys.executable, "-m", "controlcenter.cli", "conformance"]
SAMPLE_VOLUME = ".1.3.6.1.4.1.1206.4.2.4.3.4.1.4"  # sampleVolumeData
ZONE_PERIOD = ".1.3.6.1.4.1.1206.4.2.4.1.5.1.4"  # sensorZoneSamplePeriod
needs_net_snmp = pytest.mark.skipif(shutil.which("snmpget") is None, reason="needs net-snmp")


def failed(results: dict[str, Any]) -> set[str]:
    return {c["id"] for c in results["cases"] if c["outcome"] == "fail"}


def outcomes(results: dict[str, Any]) -> dict[str, str]:
    return {c["id"]: c["outcome"] for c in results["cases"]}


def plan_variant(tmp_path: Path, name: str, *edits: tuple[str, str]) -> Path:
    text = bundled_plans()["detector-good"].read_text()
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def test_good_station_passes_and_undercounting_one_fails_exactly_the_volume_cases(
    tmp_path: Path,
) -> None:
    runs = {}
    for name in ("detector-good", "detector-undercount"):
        done = subprocess.run([*CCSIM, name, "--out", str(tmp_path / name)], capture_output=True,
                              text=True, timeout=300)  # fmt: skip
        runs[name] = (done.returncode, json.loads((tmp_path / name / "results.json").read_text()))
    code, good = runs["detector-good"]
    assert code == 0 and good["verdict"] == "pass"
    assert set(outcomes(good).values()) == {"pass"} and len(good["cases"]) == 24
    for name, results in runs.items():  # speed, presence calls and latency: exact but for rounding
        speed, presence = results[1]["accuracy"]["speed"], results[1]["accuracy"]["presence"]
        limit = 0.1 if name == "detector-good" else 2.0  # undercounting: the mean of a subset
        assert abs(speed["pooled"]["bias_kmh"]) < limit and speed["pooled"]["vehicles"] > 100, name
        pooled = presence["pooled"]
        assert pooled["occupancies"] > 20 and pooled["missed"] == pooled["false"] == 0, name
        assert pooled["latency_p95_s"] == 0 and presence["unread_steps"] == 0, name
    code, under = runs["detector-undercount"]
    assert code == 1 and failed(under) == {"ACC-VOL-1", "ACC-VOL-2"}
    errors = [s["volume"]["error_pct"] for s in under["accuracy"]["lanes"].values()]
    assert all(-30 < e < -10 for e in errors)
    assert all(s["volume"]["error_pct"] == 0 for s in good["accuracy"]["lanes"].values())

    # identity as the device gave it, and a hash of every input
    assert under["device"]["identity"]["sysDescr"].startswith("Acme TrafficEye TSS-400")
    assert under["device"]["identity"]["sysName"] == "acme-tss400-undercount"
    for entry in under["inputs"]:
        assert hashlib.sha256(Path(entry["path"]).read_bytes()).hexdigest() == entry["sha256"]
    names = {Path(e["path"]).name for e in under["inputs"]}
    assert names >= {"detector-undercount.toml", "single.net.xml", "single.rou.xml"}

    # the reports are rendered from results.json alone
    out = tmp_path / "detector-undercount"
    assert (out / "report.md").read_text() == markdown(under)
    page = (out / "report.html").read_text()
    assert page == html_report(under) and page.count("<svg") == 2 + len(under["scenario"]["zones"])
    assert "http" not in page.replace("http://www.w3.org/2000/svg", "")  # nothing from the network
    for chunk in page.split("<svg")[1:]:  # every plot is well-formed SVG
        ET.fromstring("<svg" + chunk.split("</svg>")[0] + "</svg>")
    assert "185 vehicles per lane" in (out / "report.md").read_text()

    # the fitted profile recovers the emulator's undercount within its interval
    fit = under["fitted_profile"]
    low, high = fit["detection_probability_ci"]
    assert low < 0.85 < high
    profile = read_profile(out / "profile.toml")
    assert profile.detection_probability == fit["detection_probability"]


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        ("wrong-type", {"TSS-OBJ-2", "ACC-VOL-1", "ACC-VOL-2"}),
        ("stuck-status", {"TSS-STS-1"}),
        ("no-buffer", {"TSS-COM-1"}),
        ("forgets-config", {"TSS-PWR-1"}),
    ],
)
def test_a_broken_station_fails_exactly_its_cases(
    tmp_path: Path, broken: str, expected: set[str]
) -> None:
    path = plan_variant(tmp_path, broken, ("undercount = 0.0", f'broken = "{broken}"'),
                        ('preset = "cdot"', 'preset = "cdot"\ntiming_requests = 5'))  # fmt: skip
    results = asyncio.run(run_plan(load_plan(path), tmp_path / "out", end_s=600, say=lambda _: None))
    assert failed(results) == expected, [c for c in results["cases"] if c["outcome"] == "fail"]
    evidence = next(c["evidence"] for c in results["cases"] if c["id"] in expected)
    assert evidence and all(isinstance(e, str) and e for e in evidence)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("undercount = 0.0", "undercount = 0.0\nspeed_bias_kmh = 12"), {"ACC-SPD-1"}),
        (("undercount = 0.0", "undercount = 0.0\npresence_miss = 0.3"), {"ACC-PRS-1"}),
        (("undercount = 0.0", "undercount = 0.0\nfalse_presence_per_h = 150"), {"ACC-PRS-2"}),
        (("latency_s = 0", "latency_s = 3"), {"ACC-LAT-1"}),
    ],
)
def test_a_station_wrong_in_speed_presence_or_latency_fails_exactly_that_case(
    tmp_path: Path, edit: tuple[str, str], expected: set[str]
) -> None:
    path = plan_variant(tmp_path, "detection", edit,
                        ('preset = "cdot"', 'preset = "cdot"\ntiming_requests = 5'))  # fmt: skip
    results = asyncio.run(run_plan(load_plan(path), tmp_path / "out", end_s=600, say=lambda _: None))
    assert failed(results) == expected, [c for c in results["cases"] if c["outcome"] == "fail"]
    # every figure is reproducible from results.json alone
    saved = json.loads((tmp_path / "out" / "results.json").read_text())["accuracy"]
    assert speed_summary(speed_periods(saved["speed"])) == saved["speed"]
    assert presence_from(saved["presence"]) | {"unread_steps": 0} == saved["presence"]
    assert "Presence calls and latency" in (tmp_path / "out" / "report.md").read_text()


@contextmanager
def emulator(*args: str, write: str | None = None) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """A standalone emulated station (fed by the test), and its UDP port."""
    env = dict(os.environ)
    if write:
        env[WRITE_COMMUNITY_ENV] = write
    process = subprocess.Popen(
        [sys.executable, "-m", "adapters.conformance.emulator", "--lanes", "a_0,b_0", *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert process.stdout is not None and process.stdin is not None
        line = process.stdout.readline()
        assert line.startswith("listening udp 127.0.0.1:"), line
        for t in range(1, 131):  # two completed 60 s periods
            process.stdin.write(
                json.dumps({"t": t, "count": [1, t % 2], "occupancy": [0.2, 0.1]}) + "\n"
            )
        process.stdin.flush()
        yield process, int(line.rsplit(":", 1)[1])
    finally:
        if process.stdin is not None:
            process.stdin.close()
        process.wait(timeout=10)


def snmp(tool: str, port: int, *args: str, community: str = "public") -> str:
    command = [tool, "-v2c", "-c", community, "-On", "-t", "2", "-r", "2", f"127.0.0.1:{port}", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    return done.stdout + done.stderr


@needs_net_snmp
def test_net_snmp_reads_the_emulated_station_as_a_vendor_device() -> None:
    with emulator("--undercount", "0", "--descr", "Vendor X TSS") as (_, port):
        assert 'STRING: "Vendor X TSS"' in snmp("snmpget", port, ".1.3.6.1.2.1.1.1.0")
        for _ in range(50):  # the emulator reads its stdin while it answers
            answer = snmp("snmpget", port, f"{SAMPLE_VOLUME}.1.2.1")
            if "INTEGER: 60" in answer:
                break
        assert f"{SAMPLE_VOLUME}.1.2.1 = INTEGER: 60" in answer
        assert "noAccess" in snmp("snmpset", port, f"{ZONE_PERIOD}.1", "i", "60")
    with emulator("--broken", "wrong-type") as (_, port):
        for _ in range(50):
            answer = snmp("snmpget", port, f"{SAMPLE_VOLUME}.2.2.1")
            if "STRING" in answer:
                break
        assert f'{SAMPLE_VOLUME}.2.2.1 = STRING: "30"' in answer


def test_an_external_station_gets_the_protocol_cases(tmp_path: Path) -> None:
    with emulator(write="external-write-1") as (_, port):
        path = plan_variant(
            tmp_path, "external",
            ('address = "emulated"',
             f'address = "127.0.0.1:{port}"\nwrite_community = "external-write-1"'),
            ("[device.emulator]", "[unused]"),
            ('signal = "C"', 'signal = "C"\nlanes = ["N_C_1", "E_C_1"]'),
        )  # fmt: skip
        text = path.read_text()
        path.write_text(text[: text.index("[unused]")] + text[text.index("[scenario]") :])
        results = asyncio.run(run_plan(load_plan(path), tmp_path / "out", say=lambda _: None))
    seen = outcomes(results)
    assert not failed(results), results["cases"]
    assert {c for c, o in seen.items() if o == "not-applicable"} == {
        "TSS-TBL-3", "TSS-COM-1", "TSS-STS-1", "TSS-PWR-1", "ACC-VOL-1", "ACC-VOL-2", "ACC-OCC-1",
        "ACC-SPD-1", "ACC-PRS-1", "ACC-PRS-2", "ACC-LAT-1",
    }  # fmt: skip
    assert results["device"]["target"] == f"127.0.0.1:{port}" and results["accuracy"] is None


def test_a_slow_station_fails_the_timing_case(tmp_path: Path) -> None:
    with emulator("--broken", "slow") as (_, port):
        path = plan_variant(
            tmp_path, "slow",
            ('address = "emulated"', f'address = "127.0.0.1:{port}"'),
            ('include = ["protocol", "accuracy"]', 'include = ["TSS-ID-1", "TSS-TIM-1"]'),
            ('preset = "cdot"', 'preset = "cdot"\ntiming_requests = 5'),
        )  # fmt: skip
        text = path.read_text()
        path.write_text(text[: text.index("[device.emulator]")] + text[text.index("[scenario]") :])
        results = asyncio.run(run_plan(load_plan(path), tmp_path / "out", say=lambda _: None))
    assert outcomes(results) == {"TSS-ID-1": "pass", "TSS-TIM-1": "fail"}
    timing = next(c for c in results["cases"] if c["id"] == "TSS-TIM-1")
    assert timing["metrics"]["p95_ms"] > 500


def test_impact_prices_the_measured_profile_against_ideal_detectors(tmp_path: Path) -> None:
    text = bundled_plans()["detector-undercount"].read_text()
    path = tmp_path / "impact.toml"
    path.write_text(text + "\n[impact]\nseeds = [1, 2]\nend_s = 300\n")
    out = tmp_path / "out"
    done = subprocess.run([*CCSIM, str(path), "--end", "600", "--impact", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 1, done.stderr  # the undercount still fails its volume cases
    results = json.loads((out / "results.json").read_text())
    impact = results["impact"]
    assert impact["controller"] == "adaptive" and impact["seeds"] == [1, 2]
    assert set(impact["runs"]["ideal"]) == set(impact["runs"]["measured"]) == {"1", "2"}
    assert impact["mean_delay_s"]["difference"]["n"] == 2
    assert impact["vehicle_hours_per_year"]["low"] is not None
    assert "What the measured accuracy costs" in (out / "report.md").read_text()
    assert (out / "report.html").read_text() == html_report(results)
    assert "vehicle-hours a year" in " ".join(done.stdout.split())  # rich wraps lines


@needs_net_snmp
def test_the_protocol_cases_read_a_recorded_station_replayed_by_snmpsim(
    tmp_path: Path,
    replay: int,  # noqa: F811 - the fixture
) -> None:
    """snmpsim (pysnmp's agent, not ccsim's responder) replaying a walk of ccsim's own 1209
    station: the read cases pass against an SNMP implementation the harness did not come with."""
    path = plan_variant(
        tmp_path, "replayed",
        ('address = "emulated"\ncommunity = "public"',
         f'address = "127.0.0.1:{replay}"\ncommunity = "recorded"'),
        ('include = ["protocol", "accuracy"]',
         'include = ["TSS-ID-1", "TSS-OBJ-1", "TSS-OBJ-2", "TSS-OBJ-3", "TSS-TBL-1", "TSS-TBL-2", '
         '"TSS-SET-2", "TSS-TIM-1"]'),
        ('preset = "cdot"', 'preset = "cdot"\ntiming_requests = 5'),
    )  # fmt: skip
    text = path.read_text()
    path.write_text(text[: text.index("[device.emulator]")] + text[text.index("[scenario]") :])
    results = asyncio.run(run_plan(load_plan(path), tmp_path / "out", say=lambda _: None))
    assert results["device"]["identity"]["sysName"] == "C"
    seen = outcomes(results)
    assert {c for c, o in seen.items() if o == "pass"} == {
        "TSS-ID-1", "TSS-OBJ-1", "TSS-OBJ-2", "TSS-OBJ-3", "TSS-TBL-1", "TSS-TBL-2", "TSS-TIM-1"
    }  # fmt: skip
    # a simulator that takes a SET with the read community is caught doing it
    set2 = next(c for c in results["cases"] if c["id"] == "TSS-SET-2")
    assert set2["outcome"] == "fail" and "accepted" in set2["evidence"][0]
