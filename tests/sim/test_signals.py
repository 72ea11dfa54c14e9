"""Signal control through the guard in real (short) SUMO runs: an adversarial controller, and an
operator's overrides submitted to a running simulation."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest

from sim.controllers import ControlContext, create_controller
from sim.controllers.actuated import Actuated
from sim.controllers.base import register
from sim.controllers.detector_control import DetectorController
from sim.controllers.phases import IntersectionPhases
from sim.engine import RunResult, Simulation
from sim.guard import IntersectionGuard, green_phases
from sim.messages import SignalOverride, SignalPhase
from sim.network import Network, TrafficLight, read_network
from sim.programs import add_programs
from sim.scenario import load_scenario
from sim.signals import Action, Command, ExternalShown, PhaseControl, SignalCommand

SHOWING = frozenset("Ggy")
GREEN = frozenset("Gg")


# --- an independent referee for rule 1 ------------------------------------------------------------


def moving_foes(tls: TrafficLight, state: str) -> list[tuple[int, int]]:
    """Foe pairs (the net's ``<request foes=...>``) both moving in ``state``, other than pairs the
    net's own program shows green together, and those only while one of them yields."""
    n = tls.link_count
    conflicts = {(i, j) for i, j in tls.conflicts if i < j < n}
    permissive = {
        (i, j)
        for phase in tls.programs[0].phases
        for i, j in conflicts
        if phase.state[i] in GREEN and phase.state[j] in GREEN
    }
    return sorted(
        (i, j)
        for i, j in conflicts
        if state[i] in SHOWING
        and state[j] in SHOWING
        and ((i, j) not in permissive or state[i] == state[j] == "G")
    )


def phases_shown(result: RunResult, tls: str | None = None) -> list[tuple[float, SignalPhase]]:
    shown = []
    for message in result.log.of_kind("signal.phase"):
        payload = message.payload
        assert isinstance(payload, SignalPhase)
        if tls is None or payload.tls == tls:
            shown.append((message.t, payload))
    return shown


def overrides(result: RunResult) -> list[tuple[float, SignalOverride]]:
    found = []
    for message in result.log.of_kind("signal.override"):
        assert isinstance(message.payload, SignalOverride)
        found.append((message.t, message.payload))
    return found


# --- 1. an adversarial controller: nothing unsafe reaches SUMO --------------------------------------


class _Adversary(DetectorController):
    """Asks every step for a random phase index (most of them not green phases, some not phases at
    all) and now and then for every stream green at once."""

    def setup(self, context: ControlContext) -> None:
        self.rng = random.Random(20240607)
        self.program_length = {
            tls: len(context.network.traffic_lights[tls].programs[0].phases)
            for tls in self.intersections
        }

    def decide(self, t: float, phases: IntersectionPhases, guard: IntersectionGuard) -> int | None:
        if self.rng.random() < 0.03:
            self.signals.guards[phases.tls].request(t, "G" * len(guard.state))
            return None
        return self.rng.randint(-2, self.program_length[phases.tls] + 1)


ADVERSARY = "test-adversary"


def run(spec: str | Path, tmp: Path, controller: str, end_s: float, *, seed: int = 1) -> RunResult:
    sim = Simulation(
        load_scenario(spec), create_controller(controller), seed=seed, workdir=tmp, end_s=end_s
    )
    return sim.run()


RUNS = {"single": 600.0, "corridor": 600.0, "grid": 300.0}


@pytest.fixture(scope="module")
def adversarial_run(
    tmp_path_factory: pytest.TempPathFactory, grid_cfg: Path
) -> Callable[[str], tuple[Network, RunResult]]:
    """The adversary's run of a scenario (each run once, shared by the tests below)."""
    register(ADVERSARY)(_Adversary)
    done: dict[str, tuple[Network, RunResult]] = {}

    def get(scenario: str) -> tuple[Network, RunResult]:
        if scenario not in done:
            spec: str | Path = grid_cfg if scenario == "grid" else scenario
            network = read_network(load_scenario(spec).net_file)
            workdir = tmp_path_factory.mktemp(f"adversary-{scenario}")
            done[scenario] = network, run(spec, workdir, ADVERSARY, RUNS[scenario])
        return done[scenario]

    return get


@pytest.mark.parametrize("scenario", RUNS)
def test_an_adversarial_controller_never_gets_an_unsafe_state_into_sumo(
    scenario: str, adversarial_run: Callable[[str], tuple[Network, RunResult]]
) -> None:
    network, result = adversarial_run(scenario)
    shown = phases_shown(result)
    unsafe = [
        (t, p.tls, p.state, pairs)
        for t, p in shown
        if (pairs := moving_foes(network.traffic_lights[p.tls], p.state))
    ]
    assert not unsafe, f"{len(unsafe)} unsafe states reached SUMO, first: {unsafe[:3]}"
    assert result.summary["guard_violations"] == 0
    assert not result.log.of_kind("guard.violation")
    refused = result.log.of_kind("guard.refused")
    assert refused, "the adversary's requests were never refused"
    assert any("conflicting streams" in m.payload.to_dict()["reason"] for m in refused)
    # The adversary did drive the signals: each one with a choice of phases showed several states.
    states: dict[str, set[str]] = {}
    for _, p in shown:
        states.setdefault(p.tls, set()).add(p.state)
    choosing = {
        tls for tls, light in network.traffic_lights.items() if len(green_phases(light.programs[0])) > 1
    }
    assert {tls for tls, seen in states.items() if len(seen) > 2} == choosing


@pytest.mark.parametrize("scenario", RUNS)
def test_in_sumo_a_vehicle_yellow_is_always_followed_by_red(
    scenario: str, adversarial_run: Callable[[str], tuple[Network, RunResult]]
) -> None:
    """The adversary only ever gets program phases through; switching back to a phase during the
    other's yellow must still show red in between."""
    network, result = adversarial_run(scenario)
    last: dict[str, str] = {}
    bad = []
    for t, p in phases_shown(result):
        before = last.get(p.tls, p.state)
        pedestrian = network.traffic_lights[p.tls].crossing_links
        bad += [
            (t, p.tls, i, before, p.state)
            for i, (was, now) in enumerate(zip(before, p.state, strict=True))
            if was == "y" and now not in "yro" and i not in pedestrian
        ]
        last[p.tls] = p.state
    assert not bad, f"{len(bad)} links went from yellow straight to green, first: {bad[:2]}"


# --- 2. operator overrides on a running simulation -------------------------------------------------


class _ActuatedWithOperator(Actuated):
    """ccsim's ``actuated`` controller, unchanged, while an operator at a console submits commands
    to the running simulation (``Simulation.submit``) at given times."""

    def __init__(self, console: list[tuple[float, Command]]) -> None:
        self.console = console
        self.simulation: Simulation | None = None

    def setup(self, context: ControlContext) -> None:
        super().setup(context)

        def operator() -> Generator[Any, Any, None]:
            for at, command in self.console:
                yield context.env.timeout(at - context.env.now)
                assert self.simulation is not None
                self.simulation.submit(command)

        context.env.process(operator())


def operate(tmp: Path, console: list[tuple[float, Command]], end_s: float) -> RunResult:
    controller = _ActuatedWithOperator(console)
    sim = Simulation(load_scenario("single"), controller, seed=1, workdir=tmp, end_s=end_s)
    controller.simulation = sim
    return sim.run()


def state_at(shown: list[tuple[float, SignalPhase]], t: float) -> str:
    return [p.state for at, p in shown if at <= t][-1]


def test_operator_hold_automatic_flash_and_plan_on_a_running_intersection(tmp_path: Path) -> None:
    tls = read_network(load_scenario("single").net_file).traffic_lights["C"]
    greens = dict(green_phases(tls.programs[0]))
    held = 4
    console: list[tuple[float, Command]] = [
        (100.0, SignalCommand("C", Action.HOLD, str(held), user="ana")),
        (200.0, SignalCommand("C", Action.PLAN, "no-such-plan", user="ana")),
        (250.0, SignalCommand("nowhere", Action.HOLD, "0", user="ana")),
        (400.0, SignalCommand("C", Action.AUTOMATIC, user="ana")),
        (500.0, SignalCommand("C", Action.FLASH, user="ana")),
        (560.0, SignalCommand("C", Action.PLAN, "0", user="ana")),
    ]
    result = operate(tmp_path, console, end_s=780.0)
    assert result.summary["controller"] == "actuated"
    assert result.summary["guard_violations"] == 0
    shown = phases_shown(result, "C")
    answered = overrides(result)

    # Every command is answered once, in order, at the step boundary after it was submitted.
    assert [(o.tls, o.action, o.argument, o.user) for _, o in answered] == [
        (c.tls, c.action.value, c.argument, c.user) for _, c in console
    ]
    for (t, _), (at, _) in zip(answered, console, strict=True):
        assert at <= t <= at + 1.0
    assert [o.accepted for _, o in answered] == [True, False, False, True, True, True]
    unknown_plan, unknown_signal = answered[1][1], answered[2][1]
    assert "no-such-plan" in unknown_plan.detail and "'0'" in unknown_plan.detail  # names the plans
    assert "nowhere" in unknown_signal.detail

    # HOLD: once the held phase shows, nothing ends it (not the controller, not the maximum green,
    # not the refused plan) until the operator gives the signal back.
    held_state = greens[held]
    since = (
        100.0
        if state_at(shown, 100.0) == held_state
        else next(t for t, p in shown if t > 100.0 and p.state == held_state)
    )
    assert since < 130.0
    assert [p.state for t, p in shown if since <= t <= 400.0] in ([], [held_state])
    assert not [m for m in result.log.of_kind("guard.refused") if since <= m.t <= 400.0], (
        "the hold was cut by a maximum green"
    )
    # Before the hold and after AUTOMATIC, the controller does change phases.
    assert len({p.state for t, p in shown if t < 100.0}) > 1
    assert any(p.state != held_state for t, p in shown if 400.0 < t < 500.0)

    # FLASH: all links flashing within a step or two.
    flashing = "o" * tls.link_count
    assert any(p.state == flashing for t, p in shown if 500.0 <= t <= 502.0)
    assert state_at(shown, 559.0) == flashing

    # PLAN '0': out of flash through all red, then the program's green phases in order, each for
    # (at least) its programmed duration.
    after = [(t, p.state) for t, p in shown if t > 560.0]
    assert after[0][1] == "r" * tls.link_count
    order = [i for i, _ in green_phases(tls.programs[0])]
    full_greens = [(t, s) for t, s in after if s in greens.values()]
    served = [next(i for i, s in greens.items() if s == state) for _, state in full_greens]
    assert len(served) >= 3
    assert served == [order[k % len(order)] for k in range(len(served))]
    ends = [next(t for t, s in after if t > start and s != state) for start, state in full_greens[:-1]]
    for (start, _), end, index in zip(full_greens, ends, served, strict=False):
        assert end - start >= tls.programs[0].phases[index].duration_s


# --- 3. SUMO's own programs -------------------------------------------------------------------


def test_an_override_is_refused_with_a_reason_while_sumo_runs_its_own_programs(tmp_path: Path) -> None:
    sim = Simulation(
        load_scenario("single"), create_controller("fixed"), seed=1, workdir=tmp_path, end_s=60.0
    )
    sim.submit(SignalCommand("C", Action.HOLD, "0", user="ana"))
    result = sim.run()
    answered = overrides(result)
    assert len(answered) == 1, f"expected one signal.override answer, got {answered}"
    t, override = answered[0]
    assert t <= 1.0
    assert not override.accepted
    assert "own programs" in override.detail
    # SUMO's program (the scenario's Webster-timed plan, a 49 s cycle) carried on regardless.
    scenario = load_scenario("single")
    network = read_network(scenario.net_file)
    add_programs(network, scenario.additional_files)
    program = [p.state for p in network.traffic_lights["C"].programs[0].phases]
    shown = [p.state for _, p in phases_shown(result, "C")]
    assert len(shown) > len(program)  # more than a cycle in the minute
    assert shown == [program[k % len(program)] for k in range(len(shown))]


class _ActuatedWatchingCalls(_ActuatedWithOperator):
    """Also records what the controller is shown for a lane, every step."""

    def __init__(self, console: list[tuple[float, Command]], lane: str) -> None:
        super().__init__(console)
        self.lane = lane
        self.present: list[tuple[float, int]] = []

    def on_step(self, t: float) -> None:
        self.present.append((t, self.observe(self.lane).present))
        super().on_step(t)


def test_a_central_omit_keeps_a_phase_red_and_a_call_is_seen_by_the_controller(tmp_path: Path) -> None:
    tls = read_network(load_scenario("single").net_file).traffic_lights["C"]
    (_, first), *_, (_, last) = green_phases(tls.programs[0])
    # Links green in the last green phase only: omitting them must keep them red.
    omitted = frozenset(k for k, c in enumerate(last) if c in GREEN and first[k] not in GREEN)
    quiet = next(link.from_lane for link in tls.links if link.from_lane and link.index not in omitted)
    console: list[tuple[float, Command]] = [
        (100.0, PhaseControl("C", omitted, frozenset({quiet}), "omit", user="center")),
        (400.0, PhaseControl("C", frozenset(), frozenset(), "release", user="center")),
        (450.0, PhaseControl("C", frozenset({999}), frozenset(), "bad", user="center")),
    ]
    controller = _ActuatedWatchingCalls(console, quiet)
    sim = Simulation(load_scenario("single"), controller, seed=1, workdir=tmp_path, end_s=600.0)
    controller.simulation = sim
    result = sim.run()
    assert result.summary["guard_violations"] == 0
    answered = [o for _, o in overrides(result)]
    assert [(o.action, o.argument, o.accepted) for o in answered] == [
        ("phase-control", "omit", True), ("phase-control", "release", True),
        ("phase-control", "bad", False),
    ]  # fmt: skip
    assert "[999] out of range" in answered[2].detail
    shown = phases_shown(result, "C")
    green_on_omitted = [
        t for t, p in shown if any(p.state[k] in GREEN for k in omitted) and 130.0 <= t < 400.0
    ]
    assert not green_on_omitted, f"omitted links shown green at {green_on_omitted[:3]}"
    assert any(t >= 400.0 and any(p.state[k] in GREEN for k in omitted) for t, p in shown)
    # The standing call: the controller sees a vehicle on the lane every step while it is set.
    during = [n for t, n in controller.present if 101.0 <= t < 400.0]
    assert during and min(during) >= 1
    assert min(n for t, n in controller.present if t > 401.0) == 0  # empty again at times


class _ControllerInTheLoop(_ActuatedWithOperator):
    """As an external controller's binding would: reports of what it shows (a program green),
    sent into the simulation at given times, among the operator's commands."""

    def setup(self, context: ControlContext) -> None:
        super(_ActuatedWithOperator, self).setup(context)

        def console() -> Generator[Any, Any, None]:
            for at, command in self.console:
                yield context.env.timeout(at - context.env.now)
                assert self.simulation is not None and self.simulation.signals is not None
                if isinstance(command, SignalCommand):
                    self.simulation.submit(command)
                else:
                    green = self.simulation.signals.guards["C"].phases[0][1]
                    self.simulation.show_external(ExternalShown("C", "192.0.2.9:161", green, 0.0))

        context.env.process(console())


def test_an_external_controller_does_not_lift_a_flash_and_a_silent_link_trips_the_monitor(
    tmp_path: Path,
) -> None:
    """Bound late, an external controller leaves an operator's flash alone; over NTCIP nobody
    resets the monitor (a central system's hold 0 maps to automatic); an operator does. When
    its reports stop arriving - the link dead, not only the controller - the simulation itself
    notices within about a second of wall clock and flashes the intersection."""
    report: Any = "report"
    console: list[tuple[float, Any]] = [
        (2.0, SignalCommand("C", Action.FLASH, user="ana")),
        (4.0, report),
        (6.0, SignalCommand("C", Action.AUTOMATIC, user="snmp@192.0.2.1", via="ntcip")),
        (8.0, SignalCommand("C", Action.AUTOMATIC, user="ana")),
        (9.0, report),
        (10.0, report),
    ]
    controller = _ControllerInTheLoop(console)
    sim = Simulation(load_scenario("single"), controller, seed=1, workdir=tmp_path, end_s=200.0,
                     pace=lambda _t: time.sleep(0.02))  # fmt: skip
    controller.simulation = sim
    result = sim.run()
    notes = [m.payload.note for m in result.log.of_kind("signal.note") if m.payload.tls == "C"]
    assert any("stays in flash until an operator" in n for n in notes), notes
    answers = [
        (m.t, m.payload.accepted, m.payload.detail) for m in result.log.of_kind("signal.override")
    ]
    # (commands apply at the next step)
    assert (7.0, False, "the conflict monitor is reset by an operator, not over ntcip") in answers
    assert any(t == 9.0 and ok and "monitor reset" in d for t, ok, d in answers), answers
    tripped = result.log.of_kind("signal.monitor")
    assert len(tripped) == 1 and "no report from the link" in tripped[0].payload.reason
    assert 10.0 < tripped[0].t <= 10.0 + 1.5 / 0.02  # about a wall second of 20 ms steps
