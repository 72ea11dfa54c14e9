"""ccsim's own controllers in real SUMO runs: they work on every net, safely, from detectors."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from sim.controllers import create_controller
from sim.controllers.schedule_kernel import max_segments, schedule_batch_nb, schedule_batch_py
from sim.controllers.webster import webster_greens
from sim.engine import RunResult, Simulation
from sim.network import read_network
from sim.scenario import load_scenario
from sim.signals import PhaseControl

OURS = ["webster", "actuated", "maxpressure", "adaptive"]


def run(spec: str | Path, tmp: Path, controller: str, end_s: float) -> RunResult:
    sim = Simulation(
        load_scenario(spec), create_controller(controller), seed=1, workdir=tmp, end_s=end_s
    )
    return sim.run()


def phases_shown(result: RunResult) -> dict[str, set[int]]:
    shown: dict[str, set[int]] = defaultdict(set)
    for m in result.log.of_kind("signal.phase"):
        payload = m.payload.to_dict()
        shown[payload["tls"]].add(payload["phase"])
    return shown


@pytest.mark.parametrize("controller", OURS)
@pytest.mark.parametrize(("scenario", "end_s"), [("single", 900.0), ("corridor", 600.0)])
def test_bundled_scenarios(controller: str, scenario: str, end_s: float, tmp_path: Path) -> None:
    result = run(scenario, tmp_path, controller, end_s)
    assert result.summary["guard_violations"] == 0
    assert result.summary["vehicles_arrived"] > 100
    shown = phases_shown(result)
    assert set(shown) == set(read_network(load_scenario(scenario).net_file).traffic_lights)
    assert all(len(phases) >= 2 for phases in shown.values()), shown


REASONS = {
    "actuated": {"start", "gap-out", "max-out"},
    "maxpressure": {"pressure"},
    "webster": {"start", "split"},
    "adaptive": {"start", "schedule", "transit-priority", "max-wait"},
}


@pytest.mark.parametrize("controller", OURS)
def test_every_phase_change_carries_its_reason(controller: str, tmp_path: Path) -> None:
    """Why did this light change? Each change a controller asks for goes on the stream as a
    ``signal.decision`` with its reason and the figures behind it, and the signal then shows
    the phase it names."""
    result = run("single", tmp_path, controller, 900.0)
    decisions = result.log.of_kind("signal.decision")
    assert len(decisions) >= 20
    phases = [(m.t, m.payload.to_dict()) for m in result.log.of_kind("signal.phase")]
    for message in decisions:
        d = message.payload.to_dict()
        assert d["controller"] == controller and d["reason"] in REASONS[controller], d
        assert d["from_phase"] != d["to_phase"] and d["detail"], d
        v = d["values"]
        if d["reason"] == "gap-out":
            assert v["gap_s"] >= v["passage_s"] and v["green_s"] < v["max_green_s"], d
            assert d["to_phase"] in v["calls"], d
        elif d["reason"] == "max-out":
            assert v["green_s"] >= v["max_green_s"] and v["gap_s"] < v["passage_s"], d
        elif d["reason"] == "pressure":
            pressures = v["pressures"]
            assert pressures[str(d["to_phase"])] == max(pressures.values()), d
            assert pressures[str(d["to_phase"])] > pressures[str(d["from_phase"])], d
        elif d["reason"] == "split":
            assert v["green_s"] >= v["split_s"], d
        elif d["reason"] in ("schedule", "transit-priority"):
            planned = [p for p, _, end in v["schedule"] if end > 0]
            assert planned[0] == d["to_phase"] and v["expected_delay_veh_s"] >= 0, d
            assert (v["buses"] > 0) == (d["reason"] == "transit-priority"), d
        # the next green phase the signal shows (in SUMO) is the one decided, and the guard
        # heads for it at once
        heading = [p["target"] for t, p in phases if t > message.t and p["tls"] == d["tls"]]
        assert heading[:1] in ([d["to_phase"]], []), (d, heading[:1])
        shown = next(
            (p["phase"] for t, p in phases
             if t >= message.t and p["tls"] == d["tls"] and p["phase"] not in (d["from_phase"], -1)),
            None,
        )  # fmt: skip
        assert shown in (d["to_phase"], None), (d, shown)
    reasons = {m.payload.to_dict()["reason"] for m in decisions}
    assert reasons & {"gap-out", "pressure", "split", "schedule"}, reasons


@pytest.mark.parametrize("controller", ["actuated", "maxpressure"])
def test_an_omit_in_the_served_phase_neither_stalls_the_signal_nor_floods_decisions(
    controller: str, tmp_path: Path
) -> None:
    """A central system omits one link of the first phase (an NTCIP phase omit): the other
    phases are still served in turn, and each change is one decision, not one every step."""
    sim = Simulation(
        load_scenario("single"), create_controller(controller), seed=1, workdir=tmp_path, end_s=300.0
    )
    tls = read_network(load_scenario("single").net_file).traffic_lights["C"]
    first = tls.programs[0].phases[0].state
    omitted = next(k for k, c in enumerate(first) if c == "G" and k not in tls.crossing_lanes)
    sim.submit(PhaseControl("C", frozenset({omitted}), label="omit", user="center"))
    result = sim.run()
    assert [m.payload.to_dict()["accepted"] for m in result.log.of_kind("signal.override")] == [True]
    shown = [m.payload.to_dict() for m in result.log.of_kind("signal.phase")]
    later = [m.payload.to_dict() for m in result.log.of_kind("signal.phase") if m.t > 10.0]
    assert later and all(p["state"][omitted] not in "Gg" for p in later)  # cut after its minimum
    assert len({p["phase"] for p in shown if p["phase"] >= 0}) >= 2, shown[:5]  # not stuck
    decisions = result.log.of_kind("signal.decision")
    assert 2 <= len(decisions) <= len(shown), (len(decisions), len(shown))
    assert all(m.payload.to_dict()["from_phase"] >= 0 for m in decisions)


@pytest.mark.parametrize("controller", OURS)
def test_third_party_grid(controller: str, grid_cfg: Path, tmp_path: Path) -> None:
    result = run(grid_cfg, tmp_path, controller, 300.0)
    assert result.summary["guard_violations"] == 0
    assert result.summary["vehicles_arrived"] > 20
    assert len(phases_shown(result)) == 9


def test_district_all_controllers_first_ten_minutes(tmp_path: Path) -> None:
    for controller in OURS:
        result = run("district", tmp_path / controller, controller, 600.0)
        assert result.summary["guard_violations"] == 0, controller
        assert len(phases_shown(result)) == 34, controller


def test_emergency_vehicle_preempts_its_approach(tmp_path: Path) -> None:
    single = load_scenario("single")
    (tmp_path / "emergency.rou.xml").write_text(
        '<routes><vType id="ambulance" vClass="emergency" speedFactor="1.3"/>'
        '<vehicle id="amb" type="ambulance" depart="300"><route edges="N_C C_S"/></vehicle></routes>'
    )
    (tmp_path / "scenario.toml").write_text(
        f'name = "single-ambulance"\nnet = "{single.net_file}"\n'
        f'routes = ["{single.route_files[0]}", "emergency.rou.xml"]\n'
        f'additional = ["{single.additional_files[0]}"]\n[run]\nend_s = 480\n'
    )
    result = run(tmp_path, tmp_path / "out", "adaptive", 480.0)
    (preempted,) = result.log.of_kind("signal.preempted")
    payload = preempted.payload.to_dict()
    assert payload["lane"].startswith("N_C_")
    served = [
        m.t for m in result.log.of_kind("signal.phase")
        if m.t >= preempted.t and m.payload.to_dict()["phase"] == payload["phase"]
    ]  # fmt: skip
    assert served and served[0] - preempted.t <= 30.0
    # and it says why: pre-emption, named on the stream with the lane
    why = [m.payload.to_dict() for m in result.log.of_kind("signal.decision") if m.t >= preempted.t]
    assert why[0]["reason"] == "preemption" and why[0]["to_phase"] == payload["phase"], why[0]
    assert why[0]["values"]["lane"] == payload["lane"]
    arrived = {v for m in result.log.of_kind("vehicles.arrived") for v in m.payload.to_dict()["ids"]}
    assert "amb" in arrived


def test_batch_kernel_twins_agree_on_random_intersections() -> None:
    rng = np.random.default_rng(5)
    n, width, k = 6, 4, 5
    n_phases = rng.integers(2, width + 1, n).astype(np.int64)
    arrival = np.sort(rng.uniform(0, 60, (n, width, k)), axis=2)
    duration = rng.uniform(1, 15, (n, width, k))
    weight = rng.uniform(1, 10, (n, width, k))
    clusters = rng.integers(0, k + 1, (n, width)).astype(np.int64)
    current = np.array([rng.integers(0, p) for p in n_phases], dtype=np.int64)
    elapsed = rng.uniform(0, 40, n)
    min_green = rng.uniform(5, 10, (n, width))
    max_green = min_green + rng.uniform(15, 40, (n, width))
    switch = rng.uniform(3, 6, (n, width, width))
    for i in range(n):
        np.fill_diagonal(switch[i], 0.0)
    active = np.array([0, 2, 3, 5], dtype=np.int64)
    outputs = []
    for kernel in (schedule_batch_py, schedule_batch_nb):
        seg = max_segments(width, k)
        out = (np.zeros((n, seg), np.int64), np.zeros((n, seg)), np.zeros((n, seg)), np.zeros(n),
               np.zeros(n, np.int64))  # fmt: skip
        kernel(active, n_phases, arrival, duration, weight, clusters, current, elapsed, min_green,
               max_green, switch, *out)  # fmt: skip
        outputs.append(out)
    for a, b in zip(*outputs, strict=True):
        assert np.array_equal(a, b)
    assert outputs[0][4][1] == 0 and all(outputs[0][4][active] >= 1)  # inactive slots untouched


def test_webster_cycle_and_split() -> None:
    # Two phases at flow ratios 0.3 and 0.2, 5 s clearance each: L = 2*5 + 2*2 = 14 s,
    # C = (1.5*14 + 5) / (1 - 0.5) = 52 s, greens (52 - 14) split 3:2.
    cycle, greens = webster_greens([0.3, 0.2], [5.0, 5.0], [5.0, 5.0])
    assert cycle == pytest.approx(52.0)
    assert greens == pytest.approx([22.8, 15.2])
    # Saturated demand is capped at the maximum cycle, and minimum greens hold.
    cycle, greens = webster_greens([0.6, 0.5], [5.0, 30.0], [5.0, 5.0])
    assert cycle == 120.0 and greens[1] >= 30.0
