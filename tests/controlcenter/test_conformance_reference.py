"""A station in a lab scored against a reference count file: a standalone emulated station (its
own process, on its own clock, fed by the test as a lab would play traffic to it) polled over
SNMP while it runs, its periods aligned with the hand counts."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from adapters.conformance.plan import bundled_plans, load_plan
from controlcenter.conformance import run_plan

LANES = ["N_C_1", "E_C_1"]
END_S = 780


def counts(t: int) -> list[int]:
    """Vehicles reaching each zone in the second ending at ``t``: 15 and 6 a minute."""
    return [int(t % 4 == 0), int(t % 10 == 0)]


def reference_csv() -> str:
    rows = ["site,lane,interval_start,interval_end,count,speed_kmh"]
    for k, lane in enumerate(LANES):
        for start in range(120, 720, 120):
            total = sum(counts(t)[k] for t in range(start + 1, start + 121))
            rows.append(f"lab-1,{lane},{start},{start + 120},{total},")
    return "\n".join(rows) + "\n"


def feed(process: subprocess.Popen[str]) -> None:
    """A minute of traffic per wall second, as a lab plays it to the station."""
    assert process.stdin is not None
    time.sleep(0.5)
    for t in range(1, END_S + 1):
        process.stdin.write(json.dumps({"t": t, "count": counts(t), "occupancy": [0.1, 0.05]}) + "\n")
        if t % 60 == 0:
            process.stdin.flush()
            time.sleep(1.0)
    process.stdin.flush()


def external_plan(tmp_path: Path, port: int, lanes: bool = True) -> Path:
    text = bundled_plans()["detector-good"].read_text()
    text = text[: text.index("[device.emulator]")] + text[text.index("[scenario]") :]
    text = text.replace('address = "emulated"', f'address = "127.0.0.1:{port}"\n'
                        'reference = "counts.csv"\nlisten_s = 60')  # fmt: skip
    if lanes:
        text = text.replace('signal = "C"', f'signal = "C"\nlanes = {json.dumps(LANES)}')
    (tmp_path / "plan.toml").write_text(text)
    return tmp_path / "plan.toml"


def test_a_bad_reference_file_or_plan_exits_2_before_anything_starts(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "controlcenter.cli", "conformance"]
    (tmp_path / "counts.csv").write_text(
        reference_csv().replace("N_C_1,240,360,30", "N_C_1,240,360,many")
    )
    plan = external_plan(tmp_path, 9)
    bad = subprocess.run([*command, str(plan)], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert f"{tmp_path / 'counts.csv'}:3: field 'count'" in bad.stderr and "whole number" in bad.stderr
    plan = external_plan(tmp_path, 9, lanes=False)
    bad = subprocess.run([*command, str(plan)], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "field 'scenario.lanes'" in bad.stderr


def test_a_real_station_is_judged_against_a_reference_count_file(tmp_path: Path) -> None:
    station = subprocess.Popen(
        [sys.executable, "-m", "adapters.conformance.emulator", "--lanes", ",".join(LANES),
         "--period", "60", "--undercount", "0.15", "--seed", "3"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert station.stdout is not None
        port = int(station.stdout.readline().rsplit(":", 1)[1])
        (tmp_path / "counts.csv").write_text(reference_csv())
        external_plan(tmp_path, port)
        feeder = threading.Thread(target=feed, args=(station,))
        feeder.start()
        results = asyncio.run(run_plan(load_plan(tmp_path / "plan.toml"), tmp_path / "out",
                                       say=lambda _: None))  # fmt: skip
        feeder.join()
    finally:
        if station.stdin is not None:
            station.stdin.close()
        station.wait(timeout=10)
    outcome = {c["id"]: c["outcome"] for c in results["cases"]}
    assert outcome["ACC-VOL-1"] == "fail" and outcome["ACC-OCC-1"] == "not-applicable"
    assert outcome["TSS-TBL-3"] == "pass" and outcome["TSS-STS-1"] == "pass"
    assert {outcome[c] for c in ("ACC-SPD-1", "ACC-PRS-1", "ACC-PRS-2", "ACC-LAT-1")} == {
        "not-applicable"
    }  # a count file has no speeds judged and no presence
    acc = results["accuracy"]
    assert acc["truth"] == "reference" and acc["reference"]["untiled"] == []
    assert acc["unread_periods"] == []
    for lane in LANES:
        rows = acc["intervals"][lane]
        assert [r["end_s"] for r in rows] == [240, 360, 480, 600, 720]
        assert all(r["device_volume"] is not None and r["device_volume"] <= r["true_volume"]
                   for r in rows)  # fmt: skip
    volume = acc["lanes"]["N_C_1"]["volume"]
    assert volume["true"] == 150 and volume["low_pct"] < -15 < volume["high_pct"]
    assert {Path(i["path"]).name for i in results["inputs"]} >= {"plan.toml", "counts.csv"}
    assert (results["scenario"]["begin_s"], results["scenario"]["end_s"]) == (120, 720)
