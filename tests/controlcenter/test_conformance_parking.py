"""``ccsim conformance`` for LoRaWAN parking sensors end to end: a real Mosquitto, the emulated
sensors as a child process publishing The Things Stack / ChirpStack JSON, a real SUMO run of
the curbside scenario as the truth."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from adapters.conformance.parking_accuracy import score
from adapters.conformance.plan import PlanError, bundled_plans, load_plan
from adapters.conformance.report import html_report, markdown
from controlcenter.conformance_parking import resolve_bays, run_parking_plan
from sim.sensor_profiles import read_profile

CCSIM = [sys.executable, "-m", "controlcenter.cli", "conformance"]
pytestmark = pytest.mark.skipif(
    shutil.which("mosquitto", path="/usr/sbin:/usr/bin:/usr/local/sbin") is None,
    reason="needs Debian's mosquitto",
)


def failed(results: dict[str, Any]) -> set[str]:
    return {c["id"] for c in results["cases"] if c["outcome"] == "fail"}


def variant(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    text = bundled_plans()["parking-good"].read_text()
    curbside = bundled_plans()["parking-good"].parent / "curbside"
    text = text.replace('name = "curbside"', f'name = "{curbside}"')
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "plan.toml"
    path.write_text(text)
    return path


def test_good_sensors_pass_and_duplicating_ones_fail_exactly_the_frame_counter_case(
    tmp_path: Path,
) -> None:
    runs = {}
    for name in ("parking-good", "parking-duplicates"):
        done = subprocess.run([*CCSIM, name, "--out", str(tmp_path / name)], capture_output=True,
                              text=True, timeout=300)  # fmt: skip
        assert done.returncode in (0, 1), done.stderr
        runs[name] = (done.returncode, json.loads((tmp_path / name / "results.json").read_text()))
    code, good = runs["parking-good"]
    assert code == 0 and failed(good) == set()
    assert {c["outcome"] for c in good["cases"]} == {"pass"} and len(good["cases"]) == 12
    code, dup = runs["parking-duplicates"]
    assert code == 1 and failed(dup) == {"LORA-FCNT-2"}
    assert dup["parking"]["ingest"]["duplicate"] > 0  # ingest dropped the copies: accuracy holds

    # identity from the uplinks, and a hash of every input
    ident = good["device"]["identity"]
    assert ident["model"] == "nwave/nps405" and ident["firmware"] == "2.4.9"
    assert ident["devices"] == "60 heard of 60 registered"
    for entry in good["inputs"]:
        assert hashlib.sha256(Path(entry["path"]).read_bytes()).hexdigest() == entry["sha256"]
    names = {Path(e["path"]).name for e in good["inputs"]}
    assert names >= {"parking-good.toml", "curbside.add.xml", "single.net.xml", "single.rou.xml"}

    # every message the emulator published arrived; the figures come back from results.json
    p = good["parking"]
    assert p["published"] == p["received"] == p["ingest"]["applied"]
    truth = {tuple(k.split("#")): v["truth"] for k, v in p["timelines"].items()}
    said = {tuple(k.split("#")): v["reported"] for k, v in p["timelines"].items()}
    again = score(truth, said, 0.0, 3600.0, good["thresholds"]["match_window_s"])  # type: ignore[arg-type]
    assert {k: again[k] for k in ("state", "changes", "false_occupancy", "latency")} == {
        k: p[k] for k in ("state", "changes", "false_occupancy", "latency")
    }
    out = tmp_path / "parking-good"
    assert (out / "report.md").read_text() == markdown(good)
    page = (out / "report.html").read_text()
    assert page == html_report(good) and page.count("<svg") == 1
    ET.fromstring("<svg" + page.split("<svg")[1].split("</svg>")[0] + "</svg>")
    assert "185 bay state changes" in (out / "report.md").read_text()


def test_the_fitted_profile_recovers_the_sensors_error_model(tmp_path: Path) -> None:
    plan = variant(
        tmp_path,
        ("miss_share = 0.0", "miss_share = 0.1"),
        ("false_per_h = 0.0", "false_per_h = 1.0"),
        ("latency_s = 5", "latency_s = 20"),
    )
    done = subprocess.run([*CCSIM, str(plan), "--out", str(tmp_path / "out")], capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert done.returncode == 1 and failed(results) == {"ACC-PRK-1", "ACC-PRK-2", "ACC-PRK-3"}
    fit = results["fitted_profile"]
    for key, value in (("detection_probability", 0.9), ("false_detections_per_h", 1.0),
                       ("latency_s", 20.0)):  # fmt: skip
        low, high = fit[f"{key}_ci"]
        assert low < value < high, (key, fit)
    profile = read_profile(tmp_path / "out" / "profile.toml")  # a bay sensor profile ccsim runs
    assert profile.detection_probability == fit["detection_probability"]


def test_chirpstack_json_passes_too_and_a_short_run_leaves_the_heartbeat_not_applicable(
    tmp_path: Path,
) -> None:
    plan = load_plan(variant(tmp_path, ('format = "tts"', 'format = "chirpstack"'),
                             ('model = "nwave/nps405"', 'model = "dingtek/do201"')))  # fmt: skip
    results = asyncio.run(run_parking_plan(plan, tmp_path / "out", end_s=900.0, say=lambda s: None))
    outcomes = {c["id"]: c["outcome"] for c in results["cases"]}
    assert failed(results) == set()
    assert outcomes["LORA-HB-1"] == "not-applicable" and outcomes["LORA-COD-2"] == "pass"
    assert results["device"]["identity"]["network_server"] == "ChirpStack v4"


@pytest.mark.parametrize(
    ("old", "new", "field", "expected"),
    [
        ('model = "nwave/nps405"', 'model = "acme/x1"', "device.model", "nwave/nps405"),
        ('address = "emulated"', 'address = "tcp://x"', "device.address", "mqtt://"),
        ("duplicate_share = 0.0", "duplicate_share = 2", "device.emulator.duplicate_share", "1"),
        ("miss_share = 0.0", "mis_share = 0.1", "device.emulator.mis_share", "one of miss_share"),
        ('kind = "lorawan"', 'kind = "zigbee"', "device.kind", "'lorawan'"),
        ('include = ["protocol", "accuracy"]', 'include = ["TSS-OBJ-1"]', "cases.include[0]",
         "LORA-TOP-1"),
        ('controller = "actuated"', 'controller = "actuated"\nsignal = "C"', "scenario.signal",
         "scenario.zones"),
    ],
)  # fmt: skip
def test_a_bad_lorawan_plan_names_its_field(
    tmp_path: Path, old: str, new: str, field: str, expected: str
) -> None:
    path = variant(tmp_path, (old, new))
    with pytest.raises(PlanError) as info:
        load_plan(path)
    assert f"field '{field}'" in str(info.value) and expected in str(info.value)


def test_zones_not_in_the_scenario_are_refused_and_the_command_exits_2(tmp_path: Path) -> None:
    path = variant(tmp_path, ('controller = "actuated"', 'controller = "actuated"\nzones = ["pa_X"]'))
    with pytest.raises(PlanError, match=r"field 'scenario.zones\[0\]'.*pa_C_E"):
        resolve_bays(load_plan(path))
    bad = subprocess.run([*CCSIM, str(path)], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "scenario.zones[0]" in bad.stderr
    listed = subprocess.run([*CCSIM, "--list"], capture_output=True, text=True, timeout=120)
    assert "parking-good" in listed.stdout and "parking-duplicates" in listed.stdout


def test_impact_prices_the_measured_bay_sensors_in_public_space_and_cruising(tmp_path: Path) -> None:
    path = variant(tmp_path, ("miss_share = 0.0", "miss_share = 0.2"),
                   ("false_per_h = 0.0", "false_per_h = 0.5"))  # fmt: skip
    path.write_text(path.read_text() + '\n[impact]\nseeds = [1, 2]\ncontroller = "fixed"\n')
    out = tmp_path / "out"
    done = subprocess.run([*CCSIM, str(path), "--end", "900", "--impact", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 1, done.stderr  # the missing sensors fail their accuracy cases
    results = json.loads((out / "results.json").read_text())
    impact = results["impact"]
    assert impact["kind"] == "parking" and impact["variant"] == "parking.guidance=true"
    assert impact["bays"] == 60 and impact["seeds"] == [1, 2] and impact["run_h"] == 0.25
    assert set(impact["runs"]["ideal"]) == set(impact["runs"]["measured"]) == {"1", "2"}
    for key in ("public_space_efficiency", "parking_search_time_mean_s"):
        assert impact[key]["difference"]["n"] == 2 and impact[key]["difference"]["low"] is not None
    assert impact["cruising_vehicle_hours_per_year"]["n"] == 2
    # the measured arm ran under the fitted profile, the ideal one did not
    profile = read_profile(out / "profile.toml")
    assert profile.detection_probability == results["fitted_profile"]["detection_probability"] < 1
    text = (out / "report.md").read_text()
    assert "What the measured accuracy costs" in text and "cruising" in text
    assert (out / "report.html").read_text() == html_report(results)
    assert "vehicle-hours of cruising" in " ".join(done.stdout.split())
