"""The safety guard against an adversarial controller, checked by an independent referee.

Nothing here asks the guard whether a state is safe. The referee reads the net itself (its XML for
the clearance timings; its foe relations and its own program for which streams conflict and which
may share green) and judges every state the guard shows, on all four nets: the bundled ``single``,
``corridor`` and ``district`` and a third-party ``netgenerate`` grid.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from sim.guard import IntersectionGuard, Mode, green_phases
from sim.network import Network, TrafficLight, read_network
from sim.scenario import load_scenario

STEP_S = 1.0
EPS = 1e-6
SHOWING = frozenset("Ggy")
GREEN = frozenset("Gg")
RED = frozenset("rs")
NETS = ("single", "corridor", "district", "grid", "ror", "amber")

# The clearance rules as the guard documents them (ITE, level grade), restated for the referee.
REACTION_S = 1.0
DECELERATION_MPS2 = 3.05
VEHICLE_LENGTH_M = 6.0
MIN_ALL_RED_S = 1.0
PEDESTRIAN_SPEED_MPS = 1.2
VEHICLE_MIN_GREEN_S = 5.0
WALK_S = 7.0

# Deterministic, and not shrunk: a shrink of these long scripts takes minutes, and each failure
# message already names the signal, the time, the link and what it showed (the explicit tests at
# the end of the file are the minimal reproductions of what these properties have found).
PROPERTY_SETTINGS = settings(
    max_examples=100,
    derandomize=True,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --- what the net says, read without the guard -----------------------------------------------


def ceil_to(value: float, step: float) -> float:
    return math.ceil(value / step - 1e-9) * step


@dataclass(frozen=True)
class NetFacts:
    """Plain facts from a ``.net.xml``, parsed here rather than by ``sim.network``."""

    lane_speed: dict[str, float]
    internal_length: dict[str, float]
    internal_next: dict[str, str]
    vehicle_links: dict[str, list[tuple[int, str, str]]]
    """tls -> (link index, from lane, via lane)."""
    crossings: dict[str, dict[int, str]]
    """tls -> pedestrian link index -> crossing lane."""


def read_facts(path: Path) -> NetFacts:
    root = ET.parse(path).getroot()
    speed: dict[str, float] = {}
    internal: dict[str, float] = {}
    following: dict[str, str] = {}
    links: dict[str, list[tuple[int, str, str]]] = {}
    crossings: dict[str, dict[int, str]] = {}
    for edge in root.iter("edge"):
        inside = edge.get("function", "normal") in ("internal", "crossing", "walkingarea")
        for lane in edge.iter("lane"):
            if inside:
                internal[lane.get("id", "")] = float(lane.get("length", "0"))
            else:
                speed[lane.get("id", "")] = float(lane.get("speed", "13.89"))
    for conn in root.iter("connection"):
        source = f"{conn.get('from')}_{conn.get('fromLane')}"
        if source.startswith(":") and conn.get("via"):
            following[source] = conn.get("via", "")
        tl = conn.get("tl")
        if tl is None:
            continue
        index = int(conn.get("linkIndex", "-1"))
        if source.startswith(":"):
            crossings.setdefault(tl, {})[index] = f"{conn.get('to')}_{conn.get('toLane')}"
        else:
            links.setdefault(tl, []).append((index, source, conn.get("via", "")))
    return NetFacts(speed, internal, following, links, crossings)


@dataclass(frozen=True)
class Timing:
    min_green_s: float
    yellow_s: float
    clearance_s: float
    pedestrian: bool


def expected_timings(facts: NetFacts, tls: str, n: int, step: float) -> dict[int, Timing]:
    """Per link, what the guard's docstring promises: ITE yellow ``1 + v / (2 * 3.05)``, all-red
    ``(W + 6) / v`` (at least 1 s), crossing clearance ``length / 1.2``, all rounded up to the step."""
    timings: dict[int, Timing] = {}
    for index, from_lane, via in facts.vehicle_links.get(tls, []):
        if not 0 <= index < n:
            continue
        v = facts.lane_speed[from_lane]
        width, lane, seen = 0.0, via, set()
        while lane and lane not in seen:
            seen.add(lane)
            width += facts.internal_length[lane]
            lane = facts.internal_next.get(lane, "")
        yellow = ceil_to(REACTION_S + v / (2 * DECELERATION_MPS2), step)
        all_red = max(MIN_ALL_RED_S, ceil_to((width + VEHICLE_LENGTH_M) / v, step))
        if index in timings:  # one signal for several lanes: the slowest to clear decides
            yellow = max(yellow, timings[index].yellow_s)
            all_red = max(all_red, timings[index].clearance_s)
        timings[index] = Timing(VEHICLE_MIN_GREEN_S, yellow, all_red, pedestrian=False)
    for index, crossing in facts.crossings.get(tls, {}).items():
        if 0 <= index < n:
            clearance = ceil_to(facts.internal_length[crossing] / PEDESTRIAN_SPEED_MPS, step)
            timings[index] = Timing(WALK_S, 0.0, clearance, pedestrian=True)
    return timings


@dataclass(frozen=True)
class Signal:
    """One signalised intersection and the referee's view of it."""

    net: str
    network: Network
    tls: TrafficLight
    n: int
    conflicts: frozenset[tuple[int, int]]
    """Foe pairs from the net's ``<request foes=...>``, both orders."""
    permissive: dict[tuple[int, int], str]
    """Foe pairs that the net's own program shows moving together, with the characters link ``i``
    of ``(i, j)`` may show beside ``j``: no more priority than the program ever gives it there."""
    timings: dict[int, Timing]
    foes: dict[int, list[int]] = field(default_factory=dict)
    red_amber: dict[int, float] = field(default_factory=dict)
    """Links the net shows red-amber (``u``) before their green, and for how long (s)."""
    clearance: str = "ite"
    """The guard's clearance policy this referee holds it to."""

    @property
    def first_state(self) -> str:
        """The program's first green phase (a red-amber phase may come before it)."""
        return self.green_phases[0][1]

    @property
    def green_phases(self) -> list[tuple[int, str]]:
        return green_phases(self.tls.programs[0])

    def guard(self, max_green_s: float | None = None) -> IntersectionGuard:
        guard = IntersectionGuard.build(self.tls, self.network, STEP_S, self.clearance)
        if max_green_s is not None:
            guard.max_green_s = max_green_s
        return guard


def make_signal(net: str, network: Network, facts: NetFacts, tls_id: str) -> Signal:
    tls = network.traffic_lights[tls_id]
    n = tls.link_count
    conflicts = frozenset((i, j) for i, j in tls.conflicts if i < n and j < n)
    permissive: dict[tuple[int, int], str] = {}
    for phase in tls.programs[0].phases:
        for i, j in conflicts:
            a, b = phase.state[i], phase.state[j]
            if a in SHOWING and b in SHOWING:
                seen = permissive.get((i, j), "")
                # Priority order G > g > y: keep the most the program ever gives i beside j.
                best = "G" if "G" in seen + a else ("g" if "g" in seen + a else "y")
                permissive[(i, j)] = {"G": "Ggy", "g": "gy", "y": "y"}[best]
    foes = {k: sorted(j for i, j in conflicts if i == k) for k in range(n)}
    timings = expected_timings(facts, tls_id, n, STEP_S)
    red_amber: dict[int, float] = {}
    for phase in tls.programs[0].phases:
        for i, c in enumerate(phase.state):
            if c == "u":
                red_amber[i] = max(red_amber.get(i, 0.0), phase.duration_s)
    return Signal(net, network, tls, n, conflicts, permissive, timings, foes, red_amber)


@pytest.fixture(scope="session")
def net_paths(grid_cfg: Path, alphabet_nets: dict[str, Path]) -> dict[str, Path]:
    paths = {name: load_scenario(name).net_file for name in ("single", "corridor", "district")}
    paths |= alphabet_nets
    paths["grid"] = grid_cfg.parent / "grid.net.xml"
    return paths


@functools.cache
def _signals(path: Path, net: str) -> dict[str, Signal]:
    network = read_network(path)
    facts = read_facts(path)
    return {
        tls_id: make_signal(net, network, facts, tls_id)
        for tls_id, tls in sorted(network.traffic_lights.items())
        if tls.programs and tls.link_count
    }


def signals_of(net_paths: dict[str, Path], net: str) -> dict[str, Signal]:
    return _signals(net_paths[net], net)


# --- the referee ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shown:
    t: float
    state: str
    mode: Mode
    """The mode in force during the step that produced ``state``."""


def unsafe_pairs(sig: Signal, state: str) -> list[tuple[int, int]]:
    """Rule 1: foes both moving, unless the net's program lets them share green and they do not
    both have priority."""
    return sorted(
        (i, j)
        for i, j in sig.conflicts
        if i < j
        and state[i] in SHOWING
        and state[j] in SHOWING
        and not (
            state[i] in sig.permissive.get((i, j), "")
            and state[j] in sig.permissive.get((j, i), "")
            and not state[i] == state[j] == "G"
        )
    )


def rule1_conflicts(sig: Signal, history: list[Shown]) -> list[str]:
    return [
        f"t={s.t:g} {s.state}: foes moving together {pairs[:4]}"
        for s in history
        if (pairs := unsafe_pairs(sig, s.state))
    ]


def rule2_min_green(sig: Signal, history: list[Shown]) -> list[str]:
    """A green ends only after its minimum, unless the signal is (fail-safe) flashing."""
    errors: list[str] = []
    onset = [0.0] * sig.n
    for before, now in pairwise(history):
        for i in range(sig.n):
            was, is_ = before.state[i], now.state[i]
            if was not in GREEN and is_ in GREEN:
                onset[i] = now.t
            elif was in GREEN and is_ not in GREEN and now.mode not in (Mode.FLASH, Mode.FAILSAFE):
                lasted = now.t - onset[i]
                if lasted < sig.timings[i].min_green_s - EPS:
                    errors.append(
                        f"t={now.t:g} link {i}: green ended after {lasted:g} s "
                        f"< {sig.timings[i].min_green_s:g} s"
                    )
    return errors


def rule3_sequence(sig: Signal, history: list[Shown]) -> list[str]:
    """Vehicles: green -> yellow (for its full time) -> red, or -> a yielding green when a
    protected green becomes permissive (``G`` -> ``y`` -> ``g``). Red and right-turn-on-red
    (``s``) are both red. Pedestrians: green -> red."""
    errors: list[str] = []
    yellow_onset = [0.0] * sig.n
    yellow_from = [""] * sig.n
    amber_onset = [0.0] * sig.n
    for before, now in pairwise(history):
        flashing = now.mode in (Mode.FLASH, Mode.FAILSAFE)
        for i in range(sig.n):
            was, is_ = before.state[i], now.state[i]
            if was == is_ or (flashing and is_ == "o") or (was in RED and is_ in RED):
                continue
            where = f"t={now.t:g} link {i}: {was}->{is_}"
            if sig.timings[i].pedestrian:
                if is_ == "y" or (was in GREEN and is_ not in GREEN and is_ != "r"):
                    errors.append(f"{where} (a crossing goes from walk straight to red)")
                continue
            if was in GREEN and is_ not in GREEN and is_ != "y":
                errors.append(f"{where} (a green must end in yellow)")
            elif was == "G" and is_ == "g":
                errors.append(f"{where} (priority is given up through a yellow)")
            elif is_ == "y" and was not in GREEN:
                errors.append(f"{where} (yellow only follows green)")
            elif was == "y" and is_ not in RED and not (is_ == "g" and yellow_from[i] == "G"):
                errors.append(f"{where} (a yellow is followed by red, or by g after a G)")
            elif was == "y" and now.t - yellow_onset[i] < sig.timings[i].yellow_s - EPS:
                errors.append(f"{where} after {now.t - yellow_onset[i]:g} s of yellow")
            amber = sig.red_amber.get(i, 0.0)
            if is_ in GREEN and was in RED and amber > 0:
                errors.append(f"{where} (this net shows red-amber before a green)")
            elif was == "u" and is_ in GREEN and now.t - amber_onset[i] < amber - EPS:
                errors.append(f"{where} after {now.t - amber_onset[i]:g} s of red-amber")
            if is_ == "y":
                yellow_onset[i], yellow_from[i] = now.t, was
            elif is_ == "u":
                amber_onset[i] = now.t
    return errors


def rule4_clearance(sig: Signal, history: list[Shown]) -> list[str]:
    """A stream starts only when each foe it must not share green with has been red for the foe's
    clearance (all-red after a vehicle yellow, flashing don't-walk after a walk); and it takes
    priority beside a foe that has just given priority up only once that foe's all-red has run
    since its yellow ended."""
    errors: list[str] = []
    stopped = RED | {"u"}  # red-amber is still red: nobody moves on it
    red_since: list[float | None] = [0.0 if c in stopped else None for c in history[0].state]
    permissive_since: list[float | None] = [None] * sig.n
    for before, now in pairwise(history):
        for j in range(sig.n):
            if now.state[j] not in stopped:
                red_since[j] = None
            elif before.state[j] not in stopped:
                red_since[j] = now.t
            if now.state[j] == "g" and before.state[j] in "yG":
                permissive_since[j] = now.t
            elif now.state[j] != "g":
                permissive_since[j] = None
        for i in range(sig.n):
            a = now.state[i]
            if before.state[i] in GREEN or a not in GREEN:
                continue
            for j in sig.foes[i]:
                b = now.state[j]
                changed = permissive_since[j]
                if a == "G" and b == "g" and changed is not None:
                    if now.t - changed < sig.timings[j].clearance_s - EPS:
                        errors.append(
                            f"t={now.t:g} link {i} took priority {now.t - changed:g} s after foe "
                            f"{j} gave it up (clearance {sig.timings[j].clearance_s:g} s)"
                        )
                    continue
                if b in SHOWING:
                    continue  # moving beside it: rule 1's business
                if a == "g" and "g" in sig.permissive.get((i, j), ""):
                    continue  # it yields to whatever is still in the junction
                since = red_since[j]
                if since is None or now.t - since < sig.timings[j].clearance_s - EPS:
                    red_for = "not red" if since is None else f"red for {now.t - since:g} s"
                    errors.append(
                        f"t={now.t:g} link {i} turned {a} while foe {j} was {red_for} "
                        f"(clearance {sig.timings[j].clearance_s:g} s)"
                    )
    return errors


# --- an adversarial controller -----------------------------------------------------------------


@dataclass(frozen=True)
class Move:
    """What the controller (or an operator) does at one step, then ``wait`` quiet steps."""

    kind: str  # "raw", "index", "mode" or "nothing"
    value: str | int | Mode | None
    operator: bool
    wait: int


@dataclass(frozen=True)
class Script:
    max_green_s: float
    moves: list[Move]


@dataclass(frozen=True)
class Asked:
    """One request and how the guard answered it."""

    t: float
    kind: str
    value: str | int
    operator: bool
    mode: Mode
    accepted: bool
    refusals_added: int
    reasons: tuple[str, ...]
    target_before: str
    target_after: str


def scripts(sig: Signal) -> st.SearchStrategy[Script]:
    n = sig.n
    program_len = len(sig.tls.programs[0].phases)
    states = [s for _, s in sig.green_phases]
    indices = [i for i, _ in sig.green_phases]

    def mutate(base: str, edits: list[tuple[int, str]]) -> str:
        chars = list(base)
        for k, c in edits:
            chars[k] = c
        return "".join(chars)

    any_string = st.text(alphabet="Ggr", min_size=n, max_size=n)
    wrong_length = st.text(alphabet="Ggr", min_size=max(0, n - 1), max_size=n + 1).filter(
        lambda s: len(s) != n
    )
    edited_phase = st.builds(
        mutate,
        st.sampled_from(states),
        st.lists(st.tuples(st.integers(0, n - 1), st.sampled_from("Ggr")), max_size=3),
    )
    part_of_phase = st.builds(
        lambda base, keep: "".join(c if k else "r" for c, k in zip(base, keep, strict=True)),
        st.sampled_from(states),
        st.lists(st.booleans(), min_size=n, max_size=n),
    )
    few_links = st.builds(
        lambda base, picks: "".join(c if k in picks else "r" for k, c in enumerate(base)),
        st.sampled_from(states),
        st.sets(st.integers(0, n - 1), min_size=1, max_size=3),
    )
    flip = {"G": "g", "g": "G"}
    priorities_changed = st.builds(  # some streams gain priority, others give it up
        lambda base, mask: "".join(flip.get(c, c) if m else c for c, m in zip(base, mask, strict=True)),
        st.sampled_from(states),
        st.lists(st.booleans(), min_size=n, max_size=n),
    )
    raw = st.one_of(
        any_string, edited_phase, part_of_phase, few_links, few_links, priorities_changed, wrong_length
    )
    index = st.one_of(st.sampled_from(indices), st.integers(-2, program_len + 2))
    wait = st.one_of(st.integers(0, 6), st.integers(0, 6), st.sampled_from([12, 25, 40, 65]))
    operator = st.sampled_from([False, False, False, True])
    modes = st.sampled_from([Mode.AUTOMATIC, Mode.HOLD, Mode.FLASH])
    wanted = st.one_of(st.tuples(st.just("raw"), raw), st.tuples(st.just("index"), index))

    def one(kind_value: tuple[str, str | int], op: bool, w: int) -> list[Move]:
        return [Move(kind_value[0], kind_value[1], op, w)]

    def change_of_mind(
        first: tuple[str, str | int], other: tuple[str, str | int], op: bool, waits: tuple[int, int, int]
    ) -> list[Move]:
        """Ask for one thing, then another, then (while the first is in yellow) the first again."""
        return [Move(*first, op, waits[0]), Move(*other, op, waits[1]), Move(*first, op, waits[2])]

    moves = st.one_of(
        st.builds(one, wanted, operator, wait),
        st.builds(one, wanted, operator, wait),
        st.builds(change_of_mind, wanted | st.tuples(st.just("raw"), few_links), wanted, operator,
                  st.tuples(st.integers(8, 20), st.integers(0, 3), st.integers(0, 15))),
        st.builds(lambda m, w: [Move("mode", m, True, w)], modes, wait),
        st.builds(lambda w: [Move("nothing", None, False, w)], wait),
    )  # fmt: skip
    return st.builds(
        lambda max_green, chunks: Script(max_green, [m for chunk in chunks for m in chunk]),
        st.sampled_from([60.0, 20.0]),
        st.lists(moves, min_size=1, max_size=15),
    )


@dataclass
class Run:
    signal: Signal
    history: list[Shown]
    asked: list[Asked]
    violations: int
    final_mode: Mode


def drive(sig: Signal, script: Script) -> Run:
    """Run the guard one step a second, as the engine does: requests first, then ``step(t)``."""
    guard = sig.guard(script.max_green_s)
    guard.start(0.0, sig.first_state)
    history = [Shown(0.0, sig.first_state, guard.mode)]
    asked: list[Asked] = []
    t = 0.0

    def advance() -> None:
        shown = guard.step(t)
        history.append(Shown(t, history[-1].state if shown is None else shown, guard.mode))

    for move in script.moves:
        t += STEP_S
        if move.kind == "mode":
            assert isinstance(move.value, Mode)
            guard.set_mode(t, move.value)
        elif move.kind in ("raw", "index"):
            assert isinstance(move.value, str | int)
            before, mode, count = guard.target, guard.mode, len(guard.refusals)
            if isinstance(move.value, str):
                accepted = guard.request(t, move.value, operator=move.operator)
            else:
                accepted = guard.request_phase(t, move.value, operator=move.operator)
            added = tuple(r.reason for r in guard.refusals[count:])
            asked.append(
                Asked(t, move.kind, move.value, move.operator, mode, accepted, len(added), added,
                      before, guard.target)
            )  # fmt: skip
        advance()
        for _ in range(move.wait):
            t += STEP_S
            advance()
    return Run(sig, history, asked, guard.violations, guard.mode)


def run_script(net_paths: dict[str, Path], net: str, data: st.DataObject) -> Run:
    signals = signals_of(net_paths, net)
    sig = signals[data.draw(st.sampled_from(sorted(signals)), label="signal")]
    return drive(sig, data.draw(scripts(sig), label="script"))


def report(run: Run, errors: list[str]) -> str:
    return f"{run.signal.net}/{run.signal.tls.id}: " + "; ".join(errors[:5])


# --- properties ------------------------------------------------------------------------------


@pytest.mark.parametrize("net", NETS)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_no_conflicting_streams_ever_move_together_and_no_violation(
    net_paths: dict[str, Path], net: str, data: st.DataObject
) -> None:
    run = run_script(net_paths, net, data)
    errors = rule1_conflicts(run.signal, run.history)
    assert not errors, report(run, errors)
    assert run.violations == 0
    assert run.final_mode is not Mode.FAILSAFE


@pytest.mark.parametrize("net", NETS)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_no_green_is_cut_short_of_its_minimum(
    net_paths: dict[str, Path], net: str, data: st.DataObject
) -> None:
    run = run_script(net_paths, net, data)
    errors = rule2_min_green(run.signal, run.history)
    assert not errors, report(run, errors)


@pytest.mark.parametrize("net", NETS)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_vehicle_greens_end_through_a_full_yellow_then_red_and_walks_end_in_red(
    net_paths: dict[str, Path], net: str, data: st.DataObject
) -> None:
    run = run_script(net_paths, net, data)
    errors = rule3_sequence(run.signal, run.history)
    assert not errors, report(run, errors)


@pytest.mark.parametrize("net", NETS)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_a_stream_starts_only_after_its_foes_have_cleared(
    net_paths: dict[str, Path], net: str, data: st.DataObject
) -> None:
    run = run_script(net_paths, net, data)
    errors = rule4_clearance(run.signal, run.history)
    assert not errors, report(run, errors)


@pytest.mark.parametrize("net", NETS)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_unsafe_or_malformed_requests_are_refused_and_logged(
    net_paths: dict[str, Path], net: str, data: st.DataObject
) -> None:
    run = run_script(net_paths, net, data)
    sig = run.signal
    program = sig.tls.programs[0].phases
    for a in run.asked:
        where = f"{sig.net}/{sig.tls.id} t={a.t:g} {a.kind} {a.value!r} operator={a.operator}"
        listened = a.operator or a.mode is Mode.AUTOMATIC
        if not a.accepted:
            assert a.target_after == a.target_before, f"{where}: a refused request changed the target"
        else:
            assert listened, f"{where}: accepted in {a.mode}"
        if isinstance(a.value, int):
            state = program[a.value].state if 0 <= a.value < len(program) else "y"
            if "y" in state.lower() or not GREEN & set(state):
                assert not a.accepted and a.refusals_added == 1, f"{where}: not a green phase"
            continue
        wanted = a.value
        if len(wanted) != sig.n or unsafe_pairs(sig, wanted):
            assert not a.accepted, f"{where}: unsafe or malformed request accepted"
            assert a.refusals_added == (1 if listened else 0), f"{where}: refusal not logged"
        elif not listened:
            assert not a.accepted and a.refusals_added == 0, f"{where}: a controller was heard"
        else:
            # Safe: taken, unless it asks again for a phase just ended at its maximum green.
            maxed = a.refusals_added == 1 and "maximum green" in a.reasons[0]
            assert a.accepted or maxed, f"{where}: a safe request refused: {a.reasons}"
            if a.accepted:
                assert a.target_after == wanted


# --- timings -------------------------------------------------------------------------------


def single_signal(net_paths: dict[str, Path]) -> Signal:
    return signals_of(net_paths, "single")["C"]


def test_yellow_and_all_red_follow_the_ite_formula_for_the_approach_speed(
    net_paths: dict[str, Path],
) -> None:
    guard = single_signal(net_paths).guard()
    facts = read_facts(net_paths["single"])
    links = {index: (lane, via) for index, lane, via in facts.vehicle_links["C"]}

    def ite(index: int, path: list[str]) -> tuple[float, float]:
        v = facts.lane_speed[links[index][0]]
        width = sum(facts.internal_length[lane] for lane in path)
        return math.ceil(1.0 + v / (2 * 3.05)), max(1.0, math.ceil((width + 6.0) / v))

    # Link 4, east through at 50 km/h: yellow 1 + 13.89 / 6.1 = 3.28 s -> 4 s;
    # all-red (14.4 m + 6 m) / 13.89 m/s = 1.47 s -> 2 s.
    assert facts.lane_speed[links[4][0]] == pytest.approx(13.89)
    assert ite(4, [":C_4_0"]) == (4.0, 2.0)
    assert (guard.timings[4].yellow_s, guard.timings[4].clearance_s) == (4.0, 2.0)
    # Link 1, north through at 40 km/h: 1 + 11.11 / 6.1 = 2.82 s -> 3 s; (20.8 + 6) / 11.11 -> 3 s.
    assert facts.lane_speed[links[1][0]] == pytest.approx(11.11)
    assert ite(1, [":C_1_0"]) == (3.0, 3.0)
    assert (guard.timings[1].yellow_s, guard.timings[1].clearance_s) == (3.0, 3.0)
    # Link 2, north left turn: its path across is both internal lanes (it waits inside), 16.85 m:
    # (16.85 + 6) / 11.11 = 2.06 s -> 3 s, where the first lane alone would give 2 s.
    assert facts.internal_next[links[2][1]] == ":C_15_0"
    assert ite(2, [":C_2_0"]) == (3.0, 2.0)
    assert ite(2, [":C_2_0", ":C_15_0"]) == (3.0, 3.0)
    assert (guard.timings[2].yellow_s, guard.timings[2].clearance_s) == (3.0, 3.0)
    assert all(guard.timings[k].min_green_s == 5.0 and not guard.timings[k].pedestrian for k in links)


@pytest.mark.parametrize("net", NETS)
@pytest.mark.parametrize("step", [1.0, 0.5])
def test_every_link_of_every_signal_gets_its_clearance_times(
    net_paths: dict[str, Path], net: str, step: float
) -> None:
    facts = read_facts(net_paths[net])
    network = read_network(net_paths[net])
    checked = 0
    for tls_id, tls in network.traffic_lights.items():
        guard = IntersectionGuard.build(tls, network, step)
        for index, want in expected_timings(facts, tls_id, tls.link_count, step).items():
            got = guard.timings[index]
            assert (got.min_green_s, got.yellow_s, got.clearance_s, got.pedestrian) == pytest.approx(
                (want.min_green_s, want.yellow_s, want.clearance_s, want.pedestrian)
            ), f"{net}/{tls_id} link {index}"
            checked += 1
    assert checked > 0


@pytest.mark.parametrize("step", [1.0, 0.5])
def test_pedestrian_clearance_is_the_crossing_walked_at_1_2_m_s_rounded_up_to_the_step(
    net_paths: dict[str, Path], step: float
) -> None:
    sig = single_signal(net_paths)
    guard = IntersectionGuard.build(sig.tls, sig.network, step)
    facts = read_facts(net_paths["single"])
    crossings = facts.crossings["C"]
    assert sorted(crossings) == [14, 15, 16, 17]
    for index, lane in crossings.items():
        length = facts.internal_length[lane]
        expected = math.ceil(length / 1.2 / step) * step
        assert guard.timings[index].pedestrian
        assert guard.timings[index].yellow_s == 0.0
        assert guard.timings[index].min_green_s == WALK_S
        assert guard.timings[index].clearance_s == pytest.approx(expected), (index, length)
    # :C_c0_0 is 6.40 m long: 5.33 s, so 6 s at 1 s steps and 5.5 s at half-second steps.
    assert crossings[14] == ":C_c0_0"
    assert guard.timings[14].clearance_s == (6.0 if step == 1.0 else 5.5)


# --- requests, maximum green, flash --------------------------------------------------------------


def run_steps(guard: IntersectionGuard, t0: float, t1: float, states: list[tuple[float, str]]) -> None:
    t = t0
    while t < t1 - EPS:
        t += STEP_S
        shown = guard.step(t)
        if shown is not None:
            states.append((t, shown))


def test_a_refused_request_keeps_the_previous_target_and_is_logged(net_paths: dict[str, Path]) -> None:
    sig = single_signal(net_paths)
    guard = sig.guard()
    (_, first_state), (second, second_state) = sig.green_phases
    guard.start(0.0, first_state)
    assert guard.request_phase(1.0, second)
    assert guard.target == second_state
    assert guard.refusals == []

    everything = "G" * sig.n
    assert not guard.request(2.0, everything)
    assert guard.target == second_state and guard.target_phase == second
    assert len(guard.refusals) == 1
    assert guard.refusals[0].t == 2.0 and "conflicting" in guard.refusals[0].reason

    assert not guard.request(3.0, "G" * (sig.n - 1))
    assert not guard.request_phase(3.0, 2)  # a yellow transition, not a green phase
    assert not guard.request_phase(3.0, 99)
    assert guard.target == second_state
    assert len(guard.refusals) == 4

    states: list[tuple[float, str]] = []
    run_steps(guard, 3.0, 60.0, states)
    assert states[-1][1] == second_state
    assert all(not unsafe_pairs(sig, s) for _, s in states)


def test_a_phase_held_past_its_maximum_green_is_ended_and_the_next_one_served(
    net_paths: dict[str, Path],
) -> None:
    sig = single_signal(net_paths)
    guard = sig.guard()
    (first, first_state), (_, second_state) = sig.green_phases
    guard.start(0.0, first_state)
    states: list[tuple[float, str]] = []
    refused_again = 0
    t = 0.0
    while t < 120.0:
        t += STEP_S
        # A controller that wants the first phase for ever.
        if not guard.request_phase(t, first):
            refused_again += 1
        shown = guard.step(t)
        if shown is not None:
            states.append((t, shown))
        if t == guard.max_green_s:
            assert guard.target == second_state
            assert any("maximum green" in r.reason for r in guard.refusals)
    ended = next(t for t, s in states if s != first_state)
    assert ended == pytest.approx(guard.max_green_s)
    served = next(t for t, s in states if s == second_state)
    assert served > ended
    assert refused_again > 0  # asking straight back for the maxed-out phase is refused
    # Once the other phase has been shown, the first may be asked for (and is served) again.
    assert states[-1][1] == first_state


def test_a_held_phase_is_not_ended_at_its_maximum_green(net_paths: dict[str, Path]) -> None:
    sig = single_signal(net_paths)
    guard = sig.guard()
    (first, first_state), _ = sig.green_phases
    guard.start(0.0, first_state)
    guard.set_mode(0.0, Mode.HOLD)
    guard.request_phase(0.0, first, operator=True)
    states: list[tuple[float, str]] = []
    run_steps(guard, 0.0, 5 * guard.max_green_s, states)
    assert states == []
    assert guard.refusals == []


def flash_cycle(sig: Signal, leave_to: Mode) -> list[tuple[float, str]]:
    guard = sig.guard()
    guard.start(0.0, sig.first_state)
    states: list[tuple[float, str]] = [(0.0, sig.first_state)]
    run_steps(guard, 0.0, 20.0, states)
    guard.set_mode(20.0, Mode.FLASH)
    run_steps(guard, 20.0, 40.0, states)
    guard.set_mode(40.0, leave_to)
    if leave_to is Mode.HOLD:
        guard.request_phase(40.0, sig.green_phases[-1][0], operator=True)
    run_steps(guard, 40.0, 100.0, states)
    return states


@pytest.mark.parametrize("net", NETS)
def test_flash_shows_all_o_and_leaving_it_goes_through_all_red(
    net_paths: dict[str, Path], net: str
) -> None:
    offenders: list[str] = []
    for sig in signals_of(net_paths, net).values():
        for leave_to in (Mode.AUTOMATIC, Mode.HOLD):
            states = flash_cycle(sig, leave_to)
            flashing = [(t, s) for t, s in states if 20.0 < t <= 40.0]
            assert flashing == [(21.0, "o" * sig.n)], f"{sig.tls.id}: {flashing}"
            after = [s for t, s in states if t > 40.0]
            assert after, f"{sig.tls.id}: nothing shown after leaving flash"
            if set(after[0]) != {"r"}:
                offenders.append(f"{sig.tls.id} ({leave_to.value}): {'o' * sig.n} -> {after[0]}")
            assert any(GREEN & set(s) for s in after), f"{sig.tls.id}: no green after flash"
            assert not rule4_clearance(sig, [Shown(t, s, Mode.AUTOMATIC) for t, s in states])
    assert not offenders, f"greens straight out of flash: {offenders}"


# --- defects found while writing these tests ------------------------------------------------------


def test_a_yellow_is_followed_by_red_even_when_the_stream_is_asked_for_again(
    net_paths: dict[str, Path],
) -> None:
    """Link 4 (east through) alone: green, asked to stop, asked back during its yellow."""
    sig = single_signal(net_paths)
    guard = sig.guard()
    only_4 = "".join("G" if k == 4 else "r" for k in range(sig.n))
    guard.start(0.0, "r" * sig.n)
    assert guard.request(0.0, only_4)
    states: list[tuple[float, str]] = [(0.0, "r" * sig.n)]
    run_steps(guard, 0.0, 19.0, states)
    assert states[-1][1] == only_4
    assert guard.request(20.0, "r" * sig.n)
    run_steps(guard, 19.0, 20.0, states)
    assert states[-1] == (20.0, only_4.replace("G", "y"))
    assert guard.request(21.0, only_4)  # changed its mind during the yellow
    run_steps(guard, 20.0, 40.0, states)
    link_4 = [(t, s[4]) for t, s in states]
    after_yellow = next(c for t, c in link_4 if t > 20.0)
    assert after_yellow == "r", f"link 4 went from yellow to {after_yellow!r}: {link_4}"


def test_a_yielding_turn_never_gets_priority_over_the_stream_it_yields_to(
    net_paths: dict[str, Path],
) -> None:
    """Link 13 (west approach, left turn) yields to the oncoming east through links 4 and 5: the
    net's program only ever shows it ``g`` beside their ``G`` (and the net's right of way has 13
    wait for them, not the other way round). Asking for the roles reversed must not reverse them:
    shown ``g`` on 4/5 and ``G`` on 13, neither side yields and SUMO lets both go."""
    sig = single_signal(net_paths)
    program = [p.state for p in sig.tls.programs[0].phases]
    assert {(s[13], s[4]) for s in program if s[13] in SHOWING and s[4] in SHOWING} == {
        ("g", "G"),
        ("y", "y"),
    }
    guard = sig.guard()
    guard.start(0.0, sig.first_state)
    states: list[tuple[float, str]] = [(0.0, sig.first_state)]
    run_steps(guard, 0.0, 29.0, states)
    reversed_roles = list(sig.first_state)
    reversed_roles[4] = reversed_roles[5] = "g"
    reversed_roles[13] = "G"
    reversed_roles[14] = "g"  # the crossing beside 13 gives up its priority too
    guard.request(30.0, "".join(reversed_roles))
    run_steps(guard, 29.0, 60.0, states)
    bad = [(t, s) for t, s in states if s[13] == "G" and (s[4] in SHOWING or s[5] in SHOWING)]
    assert not bad, f"left turn 13 given priority while the oncoming through moves: {bad[:3]}"


def test_recovering_from_failsafe_flashing_shows_all_red_before_any_green(
    net_paths: dict[str, Path],
) -> None:
    sig = single_signal(net_paths)
    guard = sig.guard()
    guard.start(0.0, sig.first_state)
    states: list[tuple[float, str]] = [(0.0, sig.first_state)]
    guard.set_mode(10.0, Mode.FAILSAFE)  # as after a guard.violation
    run_steps(guard, 9.0, 19.0, states)
    assert states[-1] == (10.0, "o" * sig.n)
    guard.set_mode(20.0, Mode.AUTOMATIC)  # the operator restores the signal
    run_steps(guard, 19.0, 60.0, states)
    after = [(t, s) for t, s in states if t >= 20.0]
    assert after, "nothing shown after the recovery"
    assert set(after[0][1]) == {"r"}, f"{'o' * sig.n} -> {after[0]}: no all-red after flashing"
    assert not rule4_clearance(sig, [Shown(t, s, Mode.AUTOMATIC) for t, s in states])


# --- the net's own change intervals -----------------------------------------------------------


def net_timings(sig: Signal) -> dict[int, Timing]:
    """The referee's reading of the ``net`` policy: a vehicle link changes through the shortest
    yellow its program shows it (at least 3 s) and keeps the shortest all-red the program keeps
    after that yellow before a foe's green (at least 1 s); ITE for links never shown yellow."""
    phases = sig.tls.programs[0].phases
    m = len(phases)
    out = dict(sig.timings)
    for i, timing in sig.timings.items():
        if timing.pedestrian:
            continue
        yellows, all_reds, run = [], [], 0.0
        for k in range(2 * m):  # twice round, so a yellow wrapping round the end is whole
            c, previous = phases[k % m].state[i], phases[(k - 1) % m].state[i]
            if c in "yY":
                run += phases[k % m].duration_s
            elif previous in "yY" and run and k >= m:
                yellows.append(run)
                gap = 0.0
                for step in range(m):
                    phase = phases[(k + step) % m]
                    if any(phase.state[j] in GREEN for j in sig.foes[i]):
                        all_reds.append(gap)
                        break
                    gap += phase.duration_s
            if c not in "yY":
                run = 0.0
        if yellows:
            yellow = max(3.0, ceil_to(min(yellows), STEP_S))
            all_red = max(MIN_ALL_RED_S, ceil_to(min(all_reds, default=0.0), STEP_S))
            out[i] = Timing(timing.min_green_s, yellow, all_red, False)
    return out


@pytest.mark.parametrize("net", ["single", "district", "ror", "amber"])
def test_the_net_policy_takes_each_link_s_yellow_and_all_red_from_the_program(
    net_paths: dict[str, Path], net: str
) -> None:
    for sig in signals_of(net_paths, net).values():
        expected = net_timings(sig)
        guard = dataclasses.replace(sig, clearance="net").guard()
        for i, timing in expected.items():
            got = guard.timings[i]
            assert (got.yellow_s, got.clearance_s) == (timing.yellow_s, timing.clearance_s), (
                f"{net}/{sig.tls.id} link {i}"
            )


@pytest.mark.parametrize("net", ["single", "ror", "amber"])
@PROPERTY_SETTINGS
@given(data=st.data())
def test_with_the_net_s_change_intervals_the_guard_keeps_every_rule(
    net_paths: dict[str, Path], net: str, data: st.DataObject
) -> None:
    signals = signals_of(net_paths, net)
    base = signals[data.draw(st.sampled_from(sorted(signals)), label="signal")]
    sig = dataclasses.replace(base, clearance="net", timings=net_timings(base))
    run = drive(sig, data.draw(scripts(sig), label="script"))
    errors = [
        *rule1_conflicts(sig, run.history), *rule2_min_green(sig, run.history),
        *rule3_sequence(sig, run.history), *rule4_clearance(sig, run.history),
    ]  # fmt: skip
    assert not errors, report(run, errors)
    assert run.violations == 0


# --- the conflict monitor of an external controller (hardware in the loop) ---------------------


def test_the_monitor_shows_an_external_controller_and_flashes_on_conflict_dark_or_silence(
    net_paths: dict[str, Path],
) -> None:
    sig = single_signal(net_paths)
    (_, first), (_, second), *_ = sig.green_phases
    conflicting = "".join(
        "G" if a in "Gg" or b in "Gg" else "r" for a, b in zip(first, second, strict=True)
    )
    dark = "O" * len(first)
    for state, silent_s, why in (
        (conflicting, 0.1, "conflicting streams"),
        (dark, 0.1, "no colour"),
        (first[:-1], 0.1, "links"),
        (first, 1.0, "no answer from the controller for 1.0 s"),
    ):
        guard = sig.guard()
        guard.start(0.0, first)
        guard.set_mode(0.0, Mode.EXTERNAL)
        assert guard.monitor(0.1, second, 0.1) is None
        assert guard.step(1.0) == second  # shown as the controller shows it, at once
        reason = guard.monitor(1.1, state, silent_s)
        assert reason is not None and why in reason, (state, reason)
        assert guard.mode is Mode.FAILSAFE
        assert set(guard.step(2.0) or "") <= {"o", "O"}
        assert guard.monitor(2.1, second, 0.0) is None and guard.mode is Mode.FAILSAFE  # latched
        assert guard.violations == 0  # the controller's fault, not a ccsim bug


def test_the_monitor_flashes_on_a_green_ended_without_its_yellow(net_paths: dict[str, Path]) -> None:
    """A cabinet's monitor times the change intervals too (on the wall clock the controller
    keeps): a vehicle link straight from green to red, or a yellow cut short, is a failure."""
    sig = single_signal(net_paths)
    (_, first), (_, second), *_ = sig.green_phases
    ends = [i for i, (a, b) in enumerate(zip(first, second, strict=True)) if a in "Gg" and b not in "Gg"]
    vehicle = next(i for i in ends if not sig.guard().timings[i].pedestrian)
    yellow = "".join("y" if i in ends and not sig.guard().timings[i].pedestrian else
                     ("r" if i in ends else c) for i, c in enumerate(first))  # fmt: skip
    all_red = "".join("r" if i in ends else c for i, c in enumerate(first))
    yellow_s = sig.guard().timings[vehicle].yellow_s
    for states, why in (
        ([(first, 0.0), (all_red, 5.0)], f"link {vehicle} went from green to red without yellow"),
        ([(first, 0.0), (yellow, 5.0), (all_red, 5.0 + yellow_s / 3)], f"link {vehicle}'s yellow"),
        ([(first, 0.0), (yellow, 5.0), (all_red, 5.0 + yellow_s), (second, 9.0 + yellow_s)], None),
        # a foe's green inside the all-red clearance, or straight after the yellow
        (
            [(first, 0.0), (yellow, 5.0), (all_red, 5.0 + yellow_s), (second, 5.1 + yellow_s)],
            "all-red clearance",
        ),
        ([(first, 0.0), (yellow, 5.0), (second, 5.0 + yellow_s)], "all-red clearance"),
        # bound mid-yellow: the colour's start is unknown, so it is not timed
        ([(yellow, 0.0), (all_red, 0.2), (second, 9.0)], None),
    ):
        guard = sig.guard()
        guard.start(0.0, first)
        guard.set_mode(0.0, Mode.EXTERNAL)
        reasons = [guard.monitor(k, state, 0.1, wall=wall) for k, (state, wall) in enumerate(states)]
        if why is None:
            assert reasons == [None] * len(states) and guard.mode is Mode.EXTERNAL
        else:
            assert reasons[:-1] == [None] * (len(states) - 1) and why in (reasons[-1] or ""), reasons
            assert guard.mode is Mode.FAILSAFE


@pytest.mark.parametrize("net", NETS)
def test_the_monitor_passes_a_controller_running_the_net_s_own_plan(
    net_paths: dict[str, Path], net: str
) -> None:
    """With the net's change intervals, a controller that runs the city's plan as the net writes
    it (netgenerate's plans go from yellow straight to the next green, no all-red) is not at
    fault: the monitor holds it to the plan's all-red, not to the guard's own 1 s floor."""
    tripped = []
    for base in signals_of(net_paths, net).values():
        sig = dataclasses.replace(base, clearance="net")
        for program in base.tls.programs:
            phases = program.phases
            for start in range(len(phases)):  # bound at any point of the cycle
                guard = sig.guard()
                guard.start(0.0, phases[start].state)
                guard.set_mode(0.0, Mode.EXTERNAL)
                wall = 0.0
                for k in range(2 * len(phases) + 1):
                    phase = phases[(start + k) % len(phases)]
                    reason = guard.monitor(wall, phase.state, 0.0, wall=wall)
                    if reason is not None:
                        tripped.append(f"{base.tls.id} program {program.id} from {start}: {reason}")
                        break
                    wall += phase.duration_s
    assert not tripped, tripped[:5]


def test_with_the_net_s_intervals_the_monitor_still_times_the_plan_s_all_red(
    net_paths: dict[str, Path],
) -> None:
    """``single``'s plan keeps 2 s of all-red: a controller keeping less trips the monitor."""
    sig = dataclasses.replace(single_signal(net_paths), clearance="net")
    phases = sig.tls.programs[0].phases
    green, _walk_over, yellow, all_red, second = (p.state for p in phases[:5])
    assert set(all_red) == {"r"} and phases[3].duration_s == 2.0  # the plan's all-red
    for red_s, why in ((2.0, None), (1.0, "all-red clearance"), (0.0, "all-red clearance")):
        guard = sig.guard()
        guard.start(0.0, green)
        guard.set_mode(0.0, Mode.EXTERNAL)
        steps = [(green, 0.0), (yellow, 40.0), (all_red, 43.0), (second, 43.0 + red_s)]
        reasons = [guard.monitor(k, state, 0.1, wall=wall) for k, (state, wall) in enumerate(steps)]
        assert reasons[:-1] == [None] * 3, reasons
        assert (why is None and reasons[-1] is None) or why in (reasons[-1] or ""), (red_s, reasons)


def test_an_omitted_link_does_not_hide_the_phase_being_served(net_paths: dict[str, Path]) -> None:
    """A central system's omit cuts links out of a phase: the guard still knows which phase it
    serves (controllers decide from that; -1 would read as 'nothing started yet')."""
    sig = single_signal(net_paths)
    (first_index, first), (second_index, _), *_ = sig.green_phases
    link = next(k for k, c in enumerate(first) if c == "G" and not sig.guard().timings[k].pedestrian)
    guard = sig.guard()
    guard.start(0.0, first)
    guard.set_omitted(1.0, frozenset({link}))
    assert guard.target[link] == "r" and guard.target_phase == first_index
    assert guard.request_phase(2.0, second_index) and guard.target_phase == second_index
    assert guard.request_phase(3.0, first_index) and guard.target_phase == first_index
    assert guard.target[link] == "r"  # still omitted
