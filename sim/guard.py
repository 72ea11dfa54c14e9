"""The safety guard: the only way a signal state made by ccsim reaches SUMO.

Controllers and operators say what they *want* green; the guard decides what is *shown*, one link
(signal group) at a time, so that whatever is asked:

* a green lasts at least its minimum (5 s for vehicles; the walk time, 7 s, for a crossing);
* a vehicle green ends through yellow, ``t_r + v / (2 a)`` (ITE, level grade: reaction 1 s,
  deceleration 3.05 m/s^2, ``v`` the approach speed limit), then all-red ``(W + L) / v`` where ``W``
  is the path across the junction and ``L`` a 6 m vehicle;
* a pedestrian green ends into a flashing-don't-walk clearance of ``crossing length / 1.2 m/s``
  during which no conflicting stream may start;
* no two conflicting streams are ever green or yellow together. Conflicts are the net's own foe
  relations (``<request foes=...>``); two foes may share green only in the combinations the net's
  own program shows (a permitted left turn yielding to oncoming traffic, a right turn yielding to
  a crossing), never both with priority;
* a green held past its maximum is ended by moving on to the next phase of the program.

A request that asks conflicting streams green together is refused and logged (``guard.refused``);
a state that would break the rules anyway (a bug) puts the intersection into fail-safe flashing
and raises a critical ``guard.violation``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import Enum

from sim.network import Network, Program, TrafficLight

REACTION_S = 1.0
DECELERATION_MPS2 = 3.05
VEHICLE_LENGTH_M = 6.0
PEDESTRIAN_SPEED_MPS = 1.2
WALK_S = 7.0
MIN_GREEN_S = 5.0
MAX_GREEN_S = 60.0
MIN_ALL_RED_S = 1.0
MIN_NET_YELLOW_S = 3.0
"""The shortest yellow the guard shows, whatever the net's programs say (s)."""

GREEN = frozenset("Gg")
"""Right of way: ``G`` with priority, ``g`` yielding (a permitted turn)."""
YELLOW = frozenset("yY")
SHOWING = GREEN | YELLOW
"""A stream that may be moving: what a conflict monitor watches."""
RED = frozenset("rs")
"""Red; ``s`` is a red on which the net lets drivers turn after a full stop (right-turn-on-red),
so like a conflict monitor the guard counts it as red."""
REQUESTABLE = frozenset("Ggsr")
"""What a request may ask of a link (``O``, no signal, only where the net never signals it)."""
SIGNAL_STATES = "ruyYGgsoO"
"""Every state SUMO knows: red, red-amber, yellow (minor, major), green (priority, yielding),
right-turn-on-red, flashing (yield), off."""


def _ceil_to(value: float, step: float) -> float:
    return math.ceil(value / step - 1e-9) * step


@dataclass(frozen=True)
class LinkTiming:
    """Timing of one link (signal group), s."""

    min_green_s: float
    yellow_s: float
    clearance_s: float
    """All-red after yellow (vehicles) or flashing-don't-walk after green (pedestrians)."""
    pedestrian: bool
    red_amber_s: float = 0.0
    """Red-amber (``u``) shown before this link's green, where the net's programs use it."""


def link_timings(
    tls: TrafficLight, network: Network, step_s: float, clearance: str = "ite"
) -> list[LinkTiming]:
    """Clearance times of every link of ``tls``: from its geometry and speed limits (ITE), or,
    with ``clearance="net"``, the yellow and all-red the net's own programs give the link (the
    city's timing plan; at least :data:`MIN_NET_YELLOW_S` and :data:`MIN_ALL_RED_S`), ITE for
    links the programs never change through a yellow."""
    n = tls.link_count
    timings: list[LinkTiming | None] = [None] * n
    for link in tls.links:
        if not 0 <= link.index < n:
            continue
        lane = network.lanes.get(link.from_lane)
        speed = lane.speed_mps if lane is not None else 13.89
        yellow = _ceil_to(REACTION_S + speed / (2 * DECELERATION_MPS2), step_s)
        width = network.path_length_m(link.via) if link.via else 10.0
        all_red = max(MIN_ALL_RED_S, _ceil_to((width + VEHICLE_LENGTH_M) / max(speed, 1.0), step_s))
        previous = timings[link.index]
        if previous is not None:  # several lanes on one link index: keep the most cautious
            yellow, all_red = max(yellow, previous.yellow_s), max(all_red, previous.clearance_s)
        timings[link.index] = LinkTiming(MIN_GREEN_S, yellow, all_red, pedestrian=False)
    for index, crossing in tls.crossing_lanes.items():
        if 0 <= index < n:
            length = network.internal_length_m.get(crossing, 10.0)
            clearance_s = _ceil_to(length / PEDESTRIAN_SPEED_MPS, step_s)
            timings[index] = LinkTiming(WALK_S, 0.0, clearance_s, pedestrian=True)
    default = LinkTiming(MIN_GREEN_S, _ceil_to(3.0, step_s), _ceil_to(2.0, step_s), False)
    red_amber = red_amber_times(tls)
    result = [
        replace(t if t is not None else default, red_amber_s=_ceil_to(red_amber[k], step_s))
        for k, t in enumerate(timings)
    ]
    if clearance == "net":
        planned = planned_change_intervals(tls)
        for k, (yellow_s, all_red_s) in enumerate(planned):
            if yellow_s is not None and not result[k].pedestrian:
                result[k] = replace(
                    result[k],
                    yellow_s=max(MIN_NET_YELLOW_S, _ceil_to(yellow_s, step_s)),
                    clearance_s=max(MIN_ALL_RED_S, _ceil_to(all_red_s or 0.0, step_s)),
                )
    return result


def planned_change_intervals(tls: TrafficLight) -> list[tuple[float | None, float | None]]:
    """Per link, the shortest yellow the net's programs show it and the shortest all-red they
    keep after that yellow before a foe's green (s); None where a program never shows it."""
    n = tls.link_count
    foes: list[list[int]] = [[] for _ in range(n)]
    for i, j in tls.conflicts:
        if i < n and j < n:
            foes[i].append(j)
    yellows: list[float | None] = [None] * n
    all_reds: list[float | None] = [None] * n
    for program in tls.programs:
        phases = program.phases
        if not phases or len(phases[0].state) != n:
            continue
        m = len(phases)
        for i in range(n):
            runs = _runs(program, i, "yY")
            if runs:
                yellows[i] = min(runs) if yellows[i] is None else min(yellows[i] or 0.0, *runs)
        for k in range(m):
            before, state = phases[k - 1].state, phases[k].state
            for i in range(n):
                if before[i] not in YELLOW or state[i] in SHOWING:
                    continue
                elapsed = 0.0
                for step in range(m):
                    phase = phases[(k + step) % m]
                    if any(phase.state[j] in GREEN for j in foes[i]):
                        current = all_reds[i]
                        all_reds[i] = elapsed if current is None else min(current, elapsed)
                        break
                    elapsed += phase.min_dur_s if phase.min_dur_s is not None else phase.duration_s
    return list(zip(yellows, all_reds, strict=True))


def _runs(program: Program, link: int, chars: str) -> list[float]:
    """Durations (s) of the stretches of ``program``'s cycle in which ``link`` shows one of
    ``chars``; a stretch that wraps round the end of the cycle counts once."""
    phases = program.phases
    n = len(phases)
    showing = [link < len(p.state) and p.state[link] in chars for p in phases]
    if all(showing) or not any(showing):
        return []
    first = showing.index(False)  # start just after a phase without it, so no run is split
    runs: list[float] = []
    current = 0.0
    for k in range(first + 1, first + n + 1):
        phase = phases[k % n]
        if showing[k % n]:
            current += phase.min_dur_s if phase.min_dur_s is not None else phase.duration_s
        elif current > 0.0:
            runs.append(current)
            current = 0.0
    if current > 0.0:
        runs.append(current)
    return runs


def red_amber_times(tls: TrafficLight) -> list[float]:
    """Per link, the longest red-amber (``u``) any of the net's programs shows it, s (0: none)."""
    times = [0.0] * tls.link_count
    for program in tls.programs:
        for link in range(tls.link_count):
            times[link] = max([times[link], *_runs(program, link, "u")])
    return times


def green_phases(program: Program) -> list[tuple[int, str]]:
    """(index in the program, state) of the net's own phases that a controller may choose: they
    give some stream right of way, are not transitions (no yellow, no red-amber), and are not a
    step inside a larger phase (a phase whose green streams are all green, with as much priority,
    in another phase too, such as the few seconds after a pedestrian walk ends; a protected turn
    phase, ``G`` where the larger phase has ``g``, is a phase of its own). A state shown by
    several phases in a row (a city's plan split into timed steps) is one phase, at its first
    index."""
    candidates = [
        (i, p.state, frozenset(k for k, c in enumerate(p.state) if c in GREEN))
        for i, p in enumerate(program.phases)
        if any(c in GREEN for c in p.state) and not any(c in "yYu" for c in p.state)
    ]

    def inside(state: str, greens: frozenset[int], other: str, other_greens: frozenset[int]) -> bool:
        return greens < other_greens and all(state[k] != "G" or other[k] == "G" for k in greens)

    chosen: dict[str, int] = {}  # a state the program shows in several phases counts once
    for i, state, greens in candidates:
        if state not in chosen and not any(
            inside(state, greens, other, other_greens) for _, other, other_greens in candidates
        ):
            chosen[state] = i
    return [(i, state) for state, i in chosen.items()]


SUPPORTED_PROGRAM_TYPES = frozenset({"static", "actuated", "delay_based"})


def unsupported(tls: TrafficLight) -> str | None:
    """Why ccsim's controllers cannot drive ``tls`` (it then keeps its own program), or None."""
    if not tls.programs or not tls.link_count:
        return "no signal program"
    program = tls.programs[0]
    if program.type not in SUPPORTED_PROGRAM_TYPES:
        return f"program type '{program.type}' (supported: {', '.join(sorted(SUPPORTED_PROGRAM_TYPES))})"
    lengths = {len(ph.state) for p in tls.programs for ph in p.phases}
    if len(lengths) > 1:
        return f"programs of different lengths {sorted(lengths)}"
    states = {c for p in tls.programs for ph in p.phases for c in ph.state}
    if states - set(SIGNAL_STATES):
        return f"signal states {''.join(sorted(states - set(SIGNAL_STATES)))} unknown to SUMO"
    return None


def nothing_to_choose(tls: TrafficLight) -> bool:
    """A signal with fewer than two green phases (always green, say): no controller has a choice
    to make, so it runs its own program, which is not a failure."""
    return bool(tls.programs) and len(green_phases(tls.programs[0])) < 2


def program_notes(tls: TrafficLight, guard: IntersectionGuard, network: Network) -> list[str]:
    """What the net's own programs do that the ITE rules would not: greens shorter than the
    minimum, yellows shorter than the ITE change interval, all-reds shorter than the ITE
    clearance before a foe's green, and foe pairs shown green with priority together. Notes of
    the net's design, not violations: SUMO runs these programs as written."""
    notes: list[str] = []
    reference = link_timings(tls, network, 1.0, "ite")
    for i, j in guard.design_pairs:
        notes.append(f"links {i} and {j} are foes in the net but a program shows both green (G)")
    for program in tls.programs:
        where = f"program {program.id}"
        for link, timing in enumerate(reference):
            if link in guard.always_off:
                continue
            greens = _runs(program, link, "Gg")
            if greens and min(greens) < timing.min_green_s - 1e-9:
                notes.append(
                    f"{where}: link {link} green {min(greens):g} s < minimum {timing.min_green_s:g} s"
                )
            yellows = _runs(program, link, "yY")
            if not timing.pedestrian and yellows and min(yellows) < timing.yellow_s - 1e-9:
                notes.append(
                    f"{where}: link {link} yellow {min(yellows):g} s < {timing.yellow_s:g} s (ITE)"
                )
        notes.extend(f"{where}: {n}" for n in _short_all_reds(program, guard, reference))
    return notes


def _short_all_reds(
    program: Program, guard: IntersectionGuard, reference: list[LinkTiming]
) -> list[str]:
    """Links whose foe turns green sooner after the link's change interval than its clearance."""
    phases = program.phases
    n = len(phases)
    found: dict[tuple[int, int], float] = {}
    for k in range(n):
        before, state = phases[k - 1].state, phases[k].state
        for i, timing in enumerate(reference):
            ending = before[i] in SHOWING and state[i] not in SHOWING
            if not ending:
                continue
            # Walk forward from here to the first phase in which a foe of i turns green.
            elapsed = 0.0
            for step in range(n):
                phase = phases[(k + step) % n]
                started = [j for j in guard.foes[i] if phase.state[j] in GREEN]
                if started:
                    if elapsed < timing.clearance_s - 1e-9:
                        j = started[0]
                        found[(i, j)] = min(found.get((i, j), math.inf), elapsed)
                    break
                elapsed += phase.min_dur_s if phase.min_dur_s is not None else phase.duration_s
    return [
        f"link {j} starts {gap:g} s after link {i} stops, < its clearance {reference[i].clearance_s:g} s"
        for (i, j), gap in sorted(found.items())
    ]


YELLOW_TOLERANCE_S = 0.3
"""How much shorter than its yellow an external controller's yellow may look: the poll period
(100 ms) and its jitter."""


class Mode(Enum):
    AUTOMATIC = "automatic"
    HOLD = "hold"
    PLAN = "plan"
    FLASH = "flash"
    FAILSAFE = "failsafe"
    EXTERNAL = "external"
    """An external controller drives the signal (hardware in the loop); the guard only monitors."""


@dataclass
class Refusal:
    t: float
    reason: str


@dataclass
class IntersectionGuard:
    """The guard of one signalised intersection. Times in s."""

    tls: str
    timings: list[LinkTiming]
    conflicts: frozenset[tuple[int, int]]
    permissive: dict[tuple[int, int], frozenset[str]]
    """Foe pairs the net's programs show moving together, with what link ``i`` of the pair
    ``(i, j)`` may show then: as much priority as a program ever gives it beside ``j`` (``G``
    allows ``g`` and yellow too; ``g`` allows yellow), never more. Like a conflict monitor's
    permissive matrix, it is programmed from the intersection's own signal plans."""
    phases: list[tuple[int, str]]
    max_green_s: float = MAX_GREEN_S
    always_off: frozenset[int] = frozenset()
    """Links every program shows ``O`` (no signal): left to the junction's right of way."""
    design_pairs: tuple[tuple[int, int], ...] = ()
    """Foe pairs a program of the net shows green with priority together (``G`` beside ``G``):
    allowed, since the net runs them so, and reported once as a note of the net's design."""
    state: list[str] = field(default_factory=list)
    since: list[float] = field(default_factory=list)
    target: str = ""
    target_phase: int = -1
    mode: Mode = Mode.AUTOMATIC
    refusals: list[Refusal] = field(default_factory=list)
    violations: int = 0
    green_since: float = 0.0
    foes: list[list[int]] = field(default_factory=list)
    """Per link, the links it conflicts with."""
    served_since: float | None = None
    """When the wanted state was first fully shown (None while still in transition)."""
    phase_since: float | None = None
    """When the wanted phase was first fully shown; ending its walk early does not reset it."""
    maxed_phase: int = -1
    """A phase ended at its maximum green; it may not be asked for again until another has shown."""
    to_permissive: set[int] = field(default_factory=set)
    """Links in the yellow of a protected -> permissive change (``G`` -> ``y`` -> ``g``)."""
    permissive_since: dict[int, float] = field(default_factory=dict)
    """When a link came out of such a yellow into ``g``: no foe starts with priority before that
    link's all-red has run from then."""
    external: str = ""
    """The last state an external controller showed (Mode.EXTERNAL), "" before its first."""
    external_since: list[float] = field(default_factory=list)
    """When (wall clock, s) each link took the colour the external controller shows."""
    monitor_red_s: list[float] = field(default_factory=list)
    """Per link, the all-red after its yellow that the conflict monitor holds an external
    controller to before a foe's green (s): the link's clearance, or with the net's change
    intervals (``clearance="net"``) no more than the net's own programs keep, which may be less
    than the guard's floor (:data:`MIN_ALL_RED_S`): a controller running the city's plan as
    written is not at fault (empty: the clearances)."""
    omitted: frozenset[int] = frozenset()
    """Links a central system omits (NTCIP phase omit): never started green while omitted; a
    green one ends as soon as its minimum green and the clearances allow."""

    @classmethod
    def build(
        cls, tls: TrafficLight, network: Network, step_s: float, clearance: str = "ite"
    ) -> IntersectionGuard:
        """The guard of ``tls``; ``clearance`` as in :func:`link_timings`."""
        n = tls.link_count
        programs = [p for p in tls.programs if p.phases and len(p.phases[0].state) == n]
        always_off = frozenset(
            k for k in range(n) if all(ph.state[k] == "O" for p in programs for ph in p.phases)
        )
        conflicts = frozenset(
            (i, j)
            for i, j in tls.conflicts
            if i < n and j < n and i not in always_off and j not in always_off
        )
        weaker = {"G": "GgyY", "g": "gyY", "y": "yY", "Y": "yY"}
        permissive: dict[tuple[int, int], set[str]] = {}
        design: set[tuple[int, int]] = set()
        for program in programs:
            for phase in program.phases:
                state = phase.state
                for i, j in conflicts:
                    if state[i] in SHOWING and state[j] in SHOWING:
                        permissive.setdefault((i, j), set()).update(weaker[state[i]])
                        if state[i] == state[j] == "G" and i < j:
                            design.add((i, j))
        timings = link_timings(tls, network, step_s, clearance)
        monitor_red = [timing.clearance_s for timing in timings]
        if clearance == "net":
            for k, (_yellow, all_red) in enumerate(planned_change_intervals(tls)):
                if all_red is not None and not timings[k].pedestrian:
                    monitor_red[k] = min(monitor_red[k], all_red)
        return cls(
            tls=tls.id,
            timings=timings,
            monitor_red_s=monitor_red,
            conflicts=conflicts,
            permissive={pair: frozenset(chars) for pair, chars in permissive.items()},
            phases=green_phases(tls.programs[0]),
            always_off=always_off,
            design_pairs=tuple(sorted(design)),
            foes=[sorted(j for i, j in conflicts if i == k) for k in range(n)],
        )

    # --- checks --------------------------------------------------------------------------------

    def compatible(self, i: int, a: str, j: int, b: str) -> bool:
        """May link ``i`` show ``a`` while link ``j`` shows ``b``?"""
        if a not in SHOWING or b not in SHOWING or (i, j) not in self.conflicts:
            return True
        return a in self.permissive.get((i, j), "") and b in self.permissive.get((j, i), "")

    def conflicting_pairs(self, state: str) -> list[tuple[int, int]]:
        """Foe pairs that ``state`` shows moving together, other than the net's permissive pairs."""
        return sorted(
            (i, j) for i, j in self.conflicts if i < j and not self.compatible(i, state[i], j, state[j])
        )

    def phase_of(self, state: str) -> int:
        """The green phase ``state`` shows: its vehicle links exactly, its crossings either as in
        the phase or already red (the walk over, the green still running), and its omitted links
        either as in the phase or red (a central system's omit cuts them, the phase still runs).
        -1 if none."""
        for index, phase_state in self.phases:
            if all(
                c == p
                or (c == "r" and (self.timings[i].pedestrian or (i in self.omitted and p in GREEN)))
                for i, (c, p) in enumerate(zip(state, phase_state, strict=True))
            ):
                return index
        return -1

    def without_walk(self, phase_index: int) -> str | None:
        """The phase's state with its crossings red, or None if it gives no crossing a walk."""
        for index, state in self.phases:
            if index == phase_index:
                cut = "".join("r" if self.timings[i].pedestrian else c for i, c in enumerate(state))
                return cut if cut != state else None
        return None

    def _at_rest(self, i: int, c: str) -> str:
        """What link ``i`` shows when it is not given right of way and was showing ``c``: red,
        or what the net shows it there (right-turn-on-red, no signal)."""
        if i in self.always_off:
            return "O"
        return c if c in RED else "r"

    # --- requests ------------------------------------------------------------------------------

    def start(self, t: float, state: str) -> None:
        """Take over from whatever SUMO shows now (``state``), at time ``t``."""
        self.state = list(state)
        self.since = [t] * len(state)
        self.target = "".join(c if c in GREEN else self._at_rest(i, c) for i, c in enumerate(state))
        self.target_phase = self.phase_of(self.target)
        self.green_since = t
        self.served_since = t if state == self.target else None
        self.phase_since = self.served_since

    def request(self, t: float, wanted: str, *, operator: bool = False) -> bool:
        """Ask for ``wanted`` (per link ``G``, ``g``, ``r`` or ``s``; ``O`` for the links the net
        never signals) to be shown as soon as safely possible.

        Refused (False, logged) if it has the wrong length, other characters, or conflicting
        streams green together, or asks again for a phase just ended at its maximum green.
        A controller's request (``operator=False``) is ignored unless the mode is automatic.
        """
        if not operator and self.mode is not Mode.AUTOMATIC:
            return False
        if len(wanted) != len(self.state) or any(
            (c != "O") if i in self.always_off else (c not in REQUESTABLE) for i, c in enumerate(wanted)
        ):
            return self._refuse(
                t,
                f"malformed request {wanted!r}: expected {len(self.state)} of G, g, s, r"
                + (f" (O at links {sorted(self.always_off)})" if self.always_off else ""),
            )
        pairs = self.conflicting_pairs(wanted)
        if pairs:
            return self._refuse(t, f"conflicting streams green together: {pairs[:3]}")
        wanted = self.without_omitted(wanted)
        if self.maxed_phase >= 0 and self.phase_of(wanted) == self.maxed_phase and not operator:
            return self._refuse(t, f"phase {self.maxed_phase} just ran to its maximum green")
        if wanted != self.target:
            phase = self.phase_of(wanted)
            if phase != self.target_phase or phase < 0:
                self.green_since = t
                self.phase_since = None
            self.target = wanted
            self.target_phase = phase
            self.served_since = None
        return True

    def request_phase(self, t: float, phase_index: int, *, operator: bool = False) -> bool:
        """Ask for the green phase with this index in the net's program."""
        for index, state in self.phases:
            if index == phase_index:
                return self.request(t, state, operator=operator)
        return self._refuse(t, f"phase {phase_index} is not a green phase of the program")

    def without_omitted(self, wanted: str) -> str:
        """``wanted`` with the omitted links at rest (taking greens away never adds a conflict)."""
        if not self.omitted:
            return wanted
        return "".join(
            self._at_rest(i, c) if i in self.omitted and c in GREEN else c for i, c in enumerate(wanted)
        )

    def set_omitted(self, t: float, links: frozenset[int]) -> None:
        """Omit ``links`` from now on (replacing the previous set); a target that gives one of
        them a green is cut back at once."""
        self.omitted = links
        cut = self.without_omitted(self.target)
        if cut != self.target:
            self.target = cut
            self.target_phase = self.phase_of(cut)
            self.served_since = None

    def monitor(
        self, t: float, state: str, silent_s: float, silence_s: float = 1.0, *, wall: float | None = None
    ) -> str | None:
        """Watch what an external controller shows, as a cabinet's conflict monitor (MMU) does:
        ``state`` per link ("" if it has not answered yet), ``silent_s`` the wall-clock seconds
        since it last answered. Returns why the intersection goes to flash (fail-safe, latched)
        or None, in which case :meth:`step` shows ``state``. Only in Mode.EXTERNAL."""
        if self.mode is not Mode.EXTERNAL:
            return None
        reason = None
        if silent_s >= silence_s:
            reason = f"no answer from the controller for {silent_s:.1f} s"
        elif state:
            if len(state) != len(self.timings):
                reason = f"it showed {len(state)} links, the intersection has {len(self.timings)}"
            elif dark := [i for i, c in enumerate(state) if c == "O" and i not in self.always_off]:
                reason = f"links {dark[:5]} show no colour (red failure)"
            elif pairs := self.conflicting_pairs(state):
                reason = f"conflicting streams shown together: {pairs[:3]}"
            elif wall is not None and self.external:
                reason = self._bad_change(state, wall)
        if reason is not None:
            self.mode = Mode.FAILSAFE
            return reason
        if state:
            shown = "".join("O" if i in self.always_off else c for i, c in enumerate(state))
            if wall is not None:
                if len(self.external_since) != len(shown) or not self.external:
                    # colours already showing at the first answer began at an unknown time:
                    # they are not timed (a yellow half over at binding is not "short")
                    self.external_since = [-math.inf] * len(shown)
                else:
                    for i, (before, now) in enumerate(zip(self.external, shown, strict=True)):
                        if before != now:
                            self.external_since[i] = wall
            self.external = shown
        return None

    def _bad_change(self, state: str, wall: float) -> str | None:
        """A change of colour a cabinet's monitor flashes on: a vehicle link from green straight
        to red, a yellow shorter than the link's yellow, or a green started while a conflicting
        vehicle link is still in its all-red clearance (each less :data:`YELLOW_TOLERANCE_S`, the
        poll's jitter). Timed on the wall clock, which the controller keeps."""
        for j, (before, now) in enumerate(zip(self.external, state, strict=False)):
            if now not in "Gg" or before in "Gg" or j in self.always_off:
                continue
            for i in self.foes[j]:
                if self.timings[i].pedestrian or state[i] not in "rs" or i >= len(self.external_since):
                    continue
                if self.compatible(j, now, i, "G") and self.compatible(j, now, i, "g"):
                    continue  # a permissive pair: no clearance between them
                # red since it last changed, or just now (a foe ending its yellow as j starts)
                red = wall - self.external_since[i] if self.external[i] in "rs" else 0.0
                clearance = (
                    self.monitor_red_s[i] if i < len(self.monitor_red_s) else self.timings[i].clearance_s
                )
                if red < clearance - YELLOW_TOLERANCE_S:
                    return (
                        f"link {j} turned green {red:.1f} s after conflicting link {i} turned "
                        f"red, inside its {clearance:g} s all-red clearance"
                    )
        for i, (before, now) in enumerate(zip(self.external, state, strict=False)):
            if before == now or self.timings[i].pedestrian or i in self.always_off:
                continue
            if before in "Gg" and now in "rs":
                return f"link {i} went from green to red without yellow"
            if before == "y" and now != "y" and i < len(self.external_since):
                shown = wall - self.external_since[i]
                if shown < self.timings[i].yellow_s - YELLOW_TOLERANCE_S:
                    return (f"link {i}'s yellow lasted {shown:.1f} s, less than its "
                            f"{self.timings[i].yellow_s:g} s")  # fmt: skip
        return None

    def _refuse(self, t: float, reason: str) -> bool:
        self.refusals.append(Refusal(t, reason))
        return False

    # --- one step ------------------------------------------------------------------------------

    def step(self, t: float) -> str | None:
        """Advance the shown state to time ``t``; return it if it changed, else None."""
        if self.mode in (Mode.FLASH, Mode.FAILSAFE):
            flashing = ["O" if i in self.always_off else "o" for i in range(len(self.state))]
            if self.state != flashing:
                self.state, self.since = flashing, [t] * len(flashing)
                self.to_permissive.clear()
                return "".join(flashing)
            return None
        if self.mode is Mode.EXTERNAL:
            shown = self.external
            if not shown or list(shown) == self.state:
                return None
            for i, c in enumerate(shown):
                if c != self.state[i]:
                    self.since[i] = t
            self.state = list(shown)
            return shown
        settled = self.served_since is not None
        if self.mode is Mode.AUTOMATIC and settled and self._maxed_out(t):
            self._advance_phase(t, "maximum green")
            settled = False
        elif self.maxed_phase >= 0 and settled:
            self.maxed_phase = -1
        if settled:
            return None  # showing what is wanted: nothing to time (the common case, kept cheap)
        target, timings, state, since = self.target, self.timings, self.state, self.since
        new = list(state)
        # 1. End what must end: greens whose minimum has passed, yellows that have run out; a
        #    protected green becoming permissive goes through a yellow too.
        for i, c in enumerate(state):
            age, want = t - since[i], target[i]
            if c in GREEN and want not in GREEN and age >= timings[i].min_green_s:
                new[i] = self._at_rest(i, want) if timings[i].pedestrian else "y"
            elif c == "G" and want == "g" and age >= timings[i].min_green_s:
                if timings[i].pedestrian:  # a walk now yielding: its clearance runs before foes
                    new[i] = "g"  # get priority (see _may_start)
                    self.permissive_since[i] = t
                else:
                    new[i] = "y"
                    self.to_permissive.add(i)
            elif c in YELLOW and age >= timings[i].yellow_s:
                if i in self.to_permissive and want == "g":
                    continue  # decided below, once every other link's next state is known
                new[i] = self._at_rest(i, want)
                self.to_permissive.discard(i)
            elif c == "o" or (c == "O" and i not in self.always_off):
                new[i] = "r"
            elif c == "u" and want not in GREEN:
                new[i] = self._at_rest(i, want)  # the green it announced is no longer wanted
            elif c in RED and want in RED and c != want:
                new[i] = want  # right-turn-on-red on or off: both are red
        # 2. Start greens whose foes are red and cleared, if the result stays consistent; where
        #    the net shows red-amber before a green, show it first.
        for i, want in enumerate(target):
            c = state[i]
            if i in self.to_permissive:
                if c in YELLOW and want == "g" and t - since[i] >= timings[i].yellow_s:
                    # The permissive green follows its change interval directly where its foes
                    # allow a start now; else the link rests in red and starts as any other.
                    if self._may_start(i, want, new, t):
                        new[i] = "g"
                        self.permissive_since[i] = t
                    else:
                        new[i] = self._at_rest(i, want)
                    self.to_permissive.discard(i)
                continue
            if want not in GREEN or new[i] == want:
                continue
            if c == "u":
                ready = t - since[i] >= timings[i].red_amber_s
                if ready and self._may_start(i, want, new, t):
                    new[i] = want
            # A green starts only from a red already shown (never straight from yellow or flash);
            # a yielding green may gain priority (giving it up goes through a yellow, above).
            elif (
                (c in RED or (c == "g" and want == "G"))
                and (new[i] in RED or new[i] == c)
                and self._may_start(i, want, new, t)
            ):
                new[i] = "u" if c in RED and timings[i].red_amber_s > 0 else want
        if new == state:
            if "".join(state) == target:
                self._served(t)
            return None
        shown = "".join(new)
        if self.conflicting_pairs(shown):
            self.violations += 1
            self.mode = Mode.FAILSAFE
            return self.step(t)
        for i in range(len(new)):
            if new[i] != state[i] and not (new[i] in RED and state[i] in RED):
                since[i] = t
        self.state = new
        if shown == target:
            self._served(t)
        return shown

    def _served(self, t: float) -> None:
        self.served_since = t
        if self.phase_since is None:
            self.phase_since = t

    def _may_start(self, i: int, want: str, new: list[str], t: float) -> bool:
        """May link ``i`` turn ``want`` (or red-amber before it) now, given the other links'
        next states ``new``?"""
        for j in self.foes[i]:
            c = new[j]
            if c in SHOWING:
                if not self.compatible(i, want, j, c):
                    return False
                if c in YELLOW and want == "G":
                    return False  # a foe still clearing: priority waits for its all-red
                changed = self.permissive_since.get(j)
                if want == "G" and changed is not None and t - changed < self.timings[j].clearance_s:
                    return False  # the foe just gave up priority: its all-red runs first
            elif c in RED:
                # A foe that turned red this very step has its clearance still ahead.
                if self.state[j] not in RED or t - self.since[j] < self.timings[j].clearance_s:
                    return False
            else:
                return False  # a foe in red-amber, flashing or off: not a state to start beside
        return True

    def _maxed_out(self, t: float) -> bool:
        return (
            len(self.phases) > 1 and self.target_phase >= 0 and t - self.green_since >= self.max_green_s
        )

    def _advance_phase(self, t: float, reason: str) -> None:
        order = [index for index, _ in self.phases]
        position = order.index(self.target_phase)
        following = self.phases[(position + 1) % len(self.phases)]
        self._refuse(t, f"{reason}: phase {self.target_phase} ended, moving to {following[0]}")
        self.maxed_phase = self.target_phase
        self.request(t, following[1], operator=True)

    # --- operator overrides --------------------------------------------------------------------

    def set_mode(self, t: float, mode: Mode) -> None:
        """Change who drives the intersection; leaving flash goes through all-red."""
        # Leaving flash (or fail-safe flash), step() shows all red first: flashing links turn red
        # and start their clearance, and no green starts from a flashing link.
        self.mode = mode
        self.green_since = t
        self.served_since = None
        self.phase_since = None
