"""LoRaWAN parking sensors under test, pure: the emulated sensors' uplinks and error model, the
LORA-* protocol cases on recorded messages (each fed what it must catch), and the accuracy
figures against hand-made truth."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace

import pytest

from adapters.conformance.bay_sensors import EPOCH_S, BayErrorModel, EmulatedBaySensors, Published
from adapters.conformance.cases import Outcome, selected
from adapters.conformance.lorawan_cases import Expected, Received, identity, protocol_cases
from adapters.conformance.parking_accuracy import ParkingThresholds, parking_cases, score
from adapters.lorawan.codecs import codec_for
from adapters.lorawan.uplink import Format, parse

BAYS = [("z1", b) for b in range(4)]
LORA = selected(["protocol"], [], "lorawan")


Truth = dict[tuple[str, int], list[tuple[float, bool]]]


def drive(
    error: BayErrorModel, *, model: str = "nwave/nps405", fmt: Format = Format.TTS,
    seconds: int = 3600, seed: int = 1,
) -> tuple[EmulatedBaySensors, list[Published], Truth]:  # fmt: skip
    """Four bays, each taken for 100 s every 400 s (staggered), fed second by second."""
    sensors = EmulatedBaySensors(BAYS, model, error, fmt=fmt, seed=seed)
    out = sensors.start(0.0)
    truth: dict[tuple[str, int], list[tuple[float, bool]]] = {b: [] for b in BAYS}
    for t in range(1, seconds + 1):
        changes = []
        for zone, bay in BAYS:
            phase = (t - 50 * bay) % 400
            taken = bool(truth[(zone, bay)]) and truth[(zone, bay)][-1][1]
            if (phase == 0 and not taken) or (phase == 100 and taken):
                changes.append((zone, bay, not taken))
                truth[(zone, bay)].append((float(t), not taken))
        out += sensors.feed(float(t), changes)
    return sensors, out, truth


def records(published: list[Published]) -> list[Received]:
    return [Received(p.topic, p.payload) for p in published]


def expected(sensors: EmulatedBaySensors, heartbeat_s: float = 600.0) -> Expected:
    return Expected(sensors.fmt, sensors.model, sensors.registry, heartbeat_s, EPOCH_S)


def outcomes(results: list) -> dict[str, Outcome]:  # type: ignore[type-arg]
    return {r.id: r.outcome for r in results}


def failed(results: list) -> set[str]:  # type: ignore[type-arg]
    return {r.id for r in results if r.outcome is Outcome.FAIL}


def test_exact_sensors_report_each_change_once_with_the_vendor_frames() -> None:
    _, out, truth = drive(BayErrorModel(heartbeat_s=600.0))
    ups = [parse(p.topic, p.payload) for p in out]
    assert all(u.received_at == pytest.approx(EPOCH_S + p.t) for u, p in zip(ups, out, strict=True))
    codec = codec_for("nwave/nps405")
    frames = Counter(codec.reading(u.f_port, u.payload).frame.value for u in ups)
    changes = sum(len(v) for v in truth.values())
    assert frames == {"startup": 4, "status": changes, "heartbeat": 4 * 6}
    for (zone, bay), line in truth.items():
        said = [codec.reading(u.f_port, u.payload).occupied for u in ups
                if u.device_id == f"bay-{zone}-{bay}" and u.f_port == 1]  # fmt: skip
        assert said == [s for _, s in line]
        counters = [u.f_cnt for u in ups if u.device_id == f"bay-{zone}-{bay}"]
        assert counters == list(range(1, len(counters) + 1))


def test_the_error_model_misses_invents_delays_and_duplicates() -> None:
    base = BayErrorModel(heartbeat_s=600.0)
    sensors, out, _ = drive(replace(base, miss_share=0.3), seconds=7200)
    misses = sensors.counters["missed"]
    assert 0.2 < misses / (misses + sum(p.payload.count(b'"f_port":1,') for p in out)) < 0.4
    sensors, out, _ = drive(replace(base, duplicate_share=0.5))
    counts = Counter(p.payload for p in out)
    assert sensors.counters["duplicates"] == sum(1 for c in counts.values() if c == 2) > 0
    _, late, truth = drive(replace(base, latency_s=10.0))
    status = [p for p in late if b'"f_port":1,' in p.payload]
    first = status[0]
    change = min(t for line in truth.values() for t, _ in line)
    assert change + 5.0 <= first.t <= change + 15.0
    sensors, out, _ = drive(replace(base, false_per_h=2.0), seconds=7200)
    assert sensors.counters["false"] > 0


def test_good_sensors_pass_every_protocol_case_in_both_servers_json() -> None:
    for fmt in Format:
        for model in ("nwave/nps405", "bosch/tps110", "dingtek/do201"):
            sensors, out, _ = drive(BayErrorModel(heartbeat_s=600.0), model=model, fmt=fmt)
            results = protocol_cases(records(out), expected(sensors), 3600.0, LORA)
            assert failed(results) == set(), (fmt, model, [r.evidence for r in results])
            assert identity(records(out), expected(sensors))["devices"] == "4 heard of 4 registered"
    assert outcomes(results)["LORA-COD-2"] is Outcome.PASS  # ChirpStack's object compared too


def test_each_protocol_case_catches_what_it_must() -> None:
    sensors, out, _ = drive(BayErrorModel(heartbeat_s=600.0))
    ex = expected(sensors)
    good = records(out)

    def fails(recs: list[Received], exp: Expected = ex) -> set[str]:
        return failed(protocol_cases(recs, exp, 3600.0, LORA))

    assert fails(good + good[5:6]) == {"LORA-FCNT-2"}  # a duplicate delivery
    assert fails(good[:8] + good[2:3] + good[8:]) == {"LORA-FCNT-2"}  # a replay: seen before
    ahead = json.loads(good[40].payload)  # a counter far ahead, then the device's own again
    ahead["uplink_message"]["f_cnt"] += 100
    jumped = [*good[:40], Received(good[40].topic, json.dumps(ahead).encode()), *good[40:]]
    assert fails(jumped) == {"LORA-FCNT-1"}
    assert fails([*good, Received("v3/app@t/devices/x/down/push", b"{}")]) == {
        "LORA-TOP-1",
        "LORA-JSON-1",
    }
    assert fails([*good, Received(good[0].topic, b"{not json")]) == {"LORA-JSON-1"}
    doc = json.loads(good[10].payload)
    doc["uplink_message"]["decoded_payload"]["occupied"] = not doc["uplink_message"]["decoded_payload"][
        "occupied"
    ]
    assert fails([*good[:10], Received(good[10].topic, json.dumps(doc).encode()), *good[11:]]) == {
        "LORA-COD-2"
    }
    short = json.loads(good[10].payload)
    short["uplink_message"]["frm_payload"] = ""
    short["uplink_message"]["f_port"] = 2
    assert "LORA-COD-1" in fails([*good[:10], Received(good[10].topic, json.dumps(short).encode())])
    stranger = replace(
        ex, registry=sensors.registry.__class__(list(sensors.registry.by_id.values())[1:])
    )
    assert fails(good, stranger) == {"LORA-ID-1"}
    assert fails(good, replace(ex, model="bosch/tps110")) >= {"LORA-ID-1", "LORA-COD-1"}
    assert fails(good, replace(ex, heartbeat_s=900.0)) == {"LORA-HB-1"}
    assert (
        outcomes(protocol_cases(good, replace(ex, heartbeat_s=3600.0), 3600.0, LORA))["LORA-HB-1"]
        is Outcome.NOT_APPLICABLE
    )
    assert fails([]) == set(LORA)


def test_accuracy_figures_on_hand_made_timelines() -> None:
    truth = {
        ("z", 0): [(100.0, True), (400.0, False), (700.0, True), (900.0, False)],
        ("z", 1): [(200.0, True), (500.0, False)],
    }
    reported = {
        ("z", 0): [(0.0, False), (110.0, True), (400.0, False)],  # 700 missed, so 900 not judged
        ("z", 1): [(0.0, False), (220.0, True), (520.0, False), (600.0, True), (900.0, False)],
    }
    fig = score(truth, reported, 0.0, 1000.0, window_s=60.0)
    c = fig["changes"]
    assert (c["eligible"], c["detected"], c["missed"]) == (5, 4, 1)
    assert fig["latency"]["mean_s"] == pytest.approx((10 + 0 + 20 + 20) / 4)
    f = fig["false_occupancy"]
    assert f["count"] == 1 and f["free_bay_h"] == pytest.approx((500 + 700) / 3600, abs=0.01)
    # bay 0 wrong 100-110 and 700-900; bay 1 wrong 200-220, 500-520, 600-900
    assert fig["state"]["accuracy_pct"] == pytest.approx(100 * (1 - (210 + 340) / 2000), abs=0.01)
    th = ParkingThresholds()
    assert failed(parking_cases(fig, th, ["ACC-PRK-1", "ACC-PRK-2", "ACC-PRK-3", "ACC-PRK-4"])) == {
        "ACC-PRK-1", "ACC-PRK-2", "ACC-PRK-3"
    }  # fmt: skip
    loose = ParkingThresholds(state_accuracy_pct=70, change_detection_pct=75, false_per_bay_h=5,
                              change_latency_p95_s=10)  # fmt: skip
    assert failed(parking_cases(fig, loose, ["ACC-PRK-1", "ACC-PRK-2", "ACC-PRK-3", "ACC-PRK-4"])) == {
        "ACC-PRK-4"
    }


def test_a_change_the_run_ends_on_is_censored_not_missed() -> None:
    fig = score({("z", 0): [(990.0, True)]}, {("z", 0): [(0.0, False)]}, 0.0, 1000.0, 60.0)
    assert fig["changes"]["eligible"] == 0 and fig["changes"]["censored"] == 1
