"""sim/live.py: wall-clock pacing, and a live run of real SUMO steered while it runs.

(Kept here beside the control center that drives it; it tests the sim package's live module.)
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from controlcenter.state import DECISIONS_KEPT, ControlState, StateChanges
from sim.errors import CcsimError
from sim.live import ControllerSwitch, Flush, LiveRun, Outcome, Pacer, RunControl
from sim.outputs import payload_json
from sim.scenario import load_scenario
from sim.signals import Action, LaneCommand, SignalCommand

# --- pacing ---------------------------------------------------------------------------------------


def run_steps(pacer: Pacer, steps: range) -> float:
    start = time.perf_counter()
    for t in steps:
        pacer(float(t))
    return time.perf_counter() - start


def test_pacing_follows_the_wall_clock_times_the_speed() -> None:
    assert run_steps(Pacer(100.0), range(0, 21)) >= 0.19  # 20 simulated s at x100
    assert run_steps(Pacer(None), range(0, 1000)) < 0.1  # unpaced


def test_after_a_stall_the_run_does_not_race_to_catch_up() -> None:
    pacer = Pacer(100.0, max_lag_s=0.05)
    run_steps(pacer, range(0, 5))
    time.sleep(0.3)  # a slow step (the workload, not a synchronisation)
    assert run_steps(pacer, range(5, 16)) >= 0.09


def test_pause_holds_the_simulation_and_resume_releases_it() -> None:
    pacer = Pacer(None)
    pacer.pause()
    passed = threading.Event()

    def simulate() -> None:
        pacer(1.0)
        passed.set()

    threading.Thread(target=simulate, daemon=True).start()
    assert not passed.wait(0.2)
    pacer.resume()
    assert passed.wait(2.0)


def test_speed_changes_apply_in_the_middle_of_a_wait() -> None:
    pacer = Pacer(0.001)  # 1000 s of wall clock per simulated second
    pacer(0.0)
    passed = threading.Event()

    def simulate() -> None:
        pacer(1.0)
        passed.set()

    threading.Thread(target=simulate, daemon=True).start()
    assert not passed.wait(0.1)
    pacer.set_speed(None)
    assert passed.wait(2.0)
    pacer.stop()


def test_speed_must_be_positive() -> None:
    with pytest.raises(CcsimError, match="expected a factor above 0"):
        Pacer(0.0)
    with pytest.raises(CcsimError):
        Pacer(1.0).set_speed(-2.0)


# --- a live run of real SUMO -----------------------------------------------------------------------


class Collect:
    """Takes the flushes as the control center does: it reduces their messages (as rows, the way
    they cross to it) into the control room's state."""

    def __init__(self) -> None:
        self.flushes: list[Flush] = []
        self.outcomes: list[Outcome] = []
        self._state = ControlState()
        self._lock = threading.Lock()

    def flush(self, flush: Flush) -> None:
        self.flushes.append(flush)
        self.outcomes += flush.outcomes
        rows = [(m.seq, m.t, m.source, m.kind, payload_json(m)) for m in flush.messages]
        with self._lock:
            self._state.apply_rows(rows)
            self._state.apply_kpis(flush.kpis)
            self._state.set("run", "t", flush.t)

    def snapshot(self) -> StateChanges:
        with self._lock:
            return self._state.snapshot()


def live(tmp_path: Path, controller: str, collect: Collect, **kwargs: object) -> LiveRun:
    return LiveRun(
        load_scenario("single"), controller, seed=1, workdir=tmp_path / controller,
        on_flush=collect.flush, on_outcome=collect.outcomes.append, **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip


def test_a_live_run_applies_commands_at_step_boundaries_and_reports_them(tmp_path: Path) -> None:
    got = Collect()
    run = live(tmp_path, "adaptive", got, speed=None, end_s=600.0)
    run.submit(1, SignalCommand("C", Action.FLASH, "", "ana"))
    run.submit(2, SignalCommand("C", Action.HOLD, "9", "ana"))
    run.submit(3, LaneCommand("nowhere_1", True, "ana"))  # (closing a lane: see tests/e2e)
    run.submit(4, ControllerSwitch("maxpressure", "eve"))
    run.submit(5, ControllerSwitch("fixed", "eve"))
    run.submit(6, ControllerSwitch("nonsense", "eve"))
    result = run.run()
    outcomes = {o.command_id: o for o in got.outcomes}
    assert (outcomes[1].accepted, outcomes[1].detail) == (True, "flashing")
    assert not outcomes[2].accepted and "not a green phase" in outcomes[2].detail
    assert (outcomes[3].accepted, outcomes[3].detail) == (False, "no lane 'nowhere_1'")
    assert (outcomes[4].accepted, outcomes[4].detail) == (True, "'maxpressure' drives the signals")
    assert not outcomes[5].accepted and "lets SUMO drive the signals" in outcomes[5].detail
    assert not outcomes[6].accepted and "unknown controller 'nonsense'" in outcomes[6].detail
    assert all(o.t == 1.0 for o in outcomes.values())  # all at the first step boundary
    assert result.summary["controller"] == "maxpressure"
    seqs = [m.seq for f in got.flushes for m in f.messages]
    assert seqs == list(range(1, len(result.log.messages) + 1))  # every message, once, in order
    snapshot = got.snapshot()
    assert snapshot["run"]["status"] == "finished" and snapshot["run"]["controller"] == "maxpressure"
    assert snapshot["signals"]["C"]["mode"] == "flash" and set(snapshot["signals"]["C"]["state"]) == {
        "o"
    }
    assert "lanes" not in snapshot and len(snapshot["detectors"]) == 6
    # what the detectors last reported, from the stream: the same as the controllers saw
    sensors = run.simulation.sensors
    assert sensors is not None
    assert snapshot["detectors"] == {
        lane: {"count": o.count, "queue": o.queue, "present": o.present,
               "occupancy": round(o.occupancy, 3), "buses": o.buses}
        for lane, o in sensors.latest.items()
    }  # fmt: skip
    # Running counters since the start, apart from the last closed interval's figures.
    summary = result.summary
    assert snapshot["kpis"]["departed"] == summary["vehicles_departed"]
    assert snapshot["kpis"]["running"] == summary["vehicles_departed"] - summary["vehicles_arrived"]
    last = [r for r in result.timeseries if r["scope"] == "network" and r["period"] == "interval"]
    assert snapshot["interval"]["end_s"] == max(r["end_s"] for r in last) == 600.0
    assert snapshot["interval"]["departed"] == next(
        r["value"] for r in last if r["end_s"] == 600.0 and r["metric"] == "departed"
    )
    streamed = [row for f in got.flushes for row in f.kpis]
    assert sorted(map(repr, streamed)) == sorted(map(repr, result.timeseries))  # the same KPI rows
    changed = [m.kind for m in result.log.messages if m.kind == "controller.changed"]
    assert len(changed) == 3


def test_sumo_driven_signals_refuse_overrides_with_a_reason(tmp_path: Path) -> None:
    got = Collect()
    run = live(tmp_path, "fixed", got, speed=None, end_s=30.0)
    run.submit(1, SignalCommand("C", Action.FLASH, "", "ana"))
    run.run()
    [outcome] = got.outcomes
    assert not outcome.accepted and "SUMO's own programs" in outcome.detail
    assert got.snapshot()["signals"]["C"]["mode"] == "program"
    run.submit(2, SignalCommand("C", Action.FLASH, "", "ana"))  # after the end
    assert got.outcomes[-1] == Outcome(2, False, "the run has ended", 30.0)


def test_a_paced_run_can_be_paused_and_sped_up(tmp_path: Path) -> None:
    """Pause, speed and resume are commands like any other: the pacer obeys at once, and the
    simulation answers each by its id on the stream (``run.control``) once it has acted."""
    got = Collect()
    run = live(tmp_path, "fixed", got, speed=50.0, end_s=60.0)
    thread = threading.Thread(target=run.run)
    started = time.perf_counter()
    thread.start()
    first = threading.Event()
    while not got.flushes:  # a flush arrives within the first step
        first.wait(0.01)
    run.submit(11, RunControl("pause", user="ana"))
    deadline = time.monotonic() + 10
    while not any(o.command_id == 11 for o in got.outcomes) and time.monotonic() < deadline:
        first.wait(0.01)
    [paused] = [o for o in got.outcomes if o.command_id == 11]
    assert paused.accepted and paused.detail == f"paused at t={paused.t:g} s"
    assert got.snapshot()["run"]["paused"] is True
    first.wait(0.3)  # paused: the simulation does not move (at x50 it would run 15 s meanwhile)
    assert got.snapshot()["run"]["t"] <= (paused.t or 0) + 1
    run.submit(12, RunControl("speed", None, user="ana"))
    run.submit(13, RunControl("resume", user="ana"))
    thread.join(30)
    assert not thread.is_alive()
    assert time.perf_counter() - started < 2.0  # x50 for a moment, then unpaced: well under 60/50 s
    snapshot = got.snapshot()["run"]
    assert snapshot["speed"] is None and snapshot["paused"] is False
    outcomes = {o.command_id: o for o in got.outcomes}
    assert (outcomes[12].accepted, outcomes[12].detail) == (True, "speed max")
    assert outcomes[13].accepted and outcomes[13].detail.startswith("resumed at t=")
    answers = [m.payload for f in got.flushes for m in f.messages if m.kind == "run.control"]
    assert [(a.action, a.command, a.user) for a in answers] == [  # type: ignore[attr-defined]
        ("pause", 11, "ana"),
        ("speed", 12, "ana"),
        ("resume", 13, "ana"),
    ]


def test_identical_commands_are_answered_each_by_its_own_id(tmp_path: Path) -> None:
    """Two operators' identical commands (same signal, action, user) are two audit entries: each
    answer names its command, so neither is matched to the other's outcome."""
    got = Collect()
    run = live(tmp_path, "adaptive", got, speed=None, end_s=20.0)
    run.submit(21, SignalCommand("C", Action.FLASH, "", "ana"))
    run.submit(22, SignalCommand("C", Action.FLASH, "", "ana"))
    run.submit(23, LaneCommand("nowhere_1", True, "ana"))
    run.submit(24, LaneCommand("nowhere_1", True, "ana"))
    result = run.run()
    assert sorted(o.command_id for o in got.outcomes) == [21, 22, 23, 24]
    overrides = [m.payload for m in result.log.messages if m.kind == "signal.override"]
    assert [o.command for o in overrides] == [21, 22]  # type: ignore[attr-defined]
    lanes = [m.payload for m in result.log.messages if m.kind == "lane.status"]
    assert [o.command for o in lanes] == [23, 24]  # type: ignore[attr-defined]


def test_the_intersection_panel_keeps_the_last_decisions_with_their_reasons(tmp_path: Path) -> None:
    got = Collect()
    run = live(tmp_path, "actuated", got, speed=None, end_s=300.0)
    run.submit(31, SignalCommand("C", Action.HOLD, "9", "ana"))  # refused: named too
    result = run.run()
    kept = got.snapshot()["decisions"]["C"]
    assert len(kept) == DECISIONS_KEPT
    decided = [m for m in result.log.messages if m.kind in ("signal.decision", "signal.override")]
    assert [e["t"] for e in kept] == [m.t for m in decided[-DECISIONS_KEPT:]]
    last = decided[-1].payload.to_dict()
    assert kept[-1]["reason"] == last["reason"] and kept[-1]["detail"] == last["detail"]
    assert kept[-1]["values"] == last["values"] and kept[-1]["by"] == "actuated"
    first = next(m for m in result.log.messages if m.kind == "signal.override").payload.to_dict()
    assert first["command"] == 31 and not first["accepted"]
