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
from dataclasses import dataclass, field
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

GREEN = frozenset("Gg")
SHOWING = frozenset("Ggy")  # a stream that may be moving


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


def link_timings(tls: TrafficLight, network: Network, step_s: float) -> list[LinkTiming]:
    """Clearance times of every link of ``tls`` from its geometry and speed limits."""
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
            clearance = _ceil_to(length / PEDESTRIAN_SPEED_MPS, step_s)
            timings[index] = LinkTiming(WALK_S, 0.0, clearance, pedestrian=True)
    default = LinkTiming(MIN_GREEN_S, _ceil_to(3.0, step_s), _ceil_to(2.0, step_s), False)
    return [t if t is not None else default for t in timings]


def green_phases(program: Program) -> list[tuple[int, str]]:
    """(index in the program, state) of the net's own phases that a controller may choose: they
    give some stream right of way, are not transitions (no yellow), and are not a step inside a
    larger phase (a phase whose green streams are all green in another phase too, such as the
    few seconds after a pedestrian walk ends)."""
    candidates = [
        (i, p.state, frozenset(k for k, c in enumerate(p.state) if c in GREEN))
        for i, p in enumerate(program.phases)
        if any(c in GREEN for c in p.state) and "y" not in p.state.lower()
    ]
    return [
        (i, state)
        for i, state, greens in candidates
        if not any(greens < other for _, _, other in candidates)
    ]


class Mode(Enum):
    AUTOMATIC = "automatic"
    HOLD = "hold"
    PLAN = "plan"
    FLASH = "flash"
    FAILSAFE = "failsafe"


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
    """Foe pairs the net's program shows moving together (one yielding), with what link ``i`` of
    the pair ``(i, j)`` may show then: as much priority as the program ever gives it beside ``j``
    (``G`` allows ``g`` and ``y`` too; ``g`` allows ``y``), never more."""
    phases: list[tuple[int, str]]
    max_green_s: float = MAX_GREEN_S
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

    @classmethod
    def build(cls, tls: TrafficLight, network: Network, step_s: float) -> IntersectionGuard:
        n = tls.link_count
        conflicts = frozenset(pair for pair in tls.conflicts if pair[0] < n and pair[1] < n)
        weaker = {"G": "Ggy", "g": "gy", "y": "y"}
        permissive: dict[tuple[int, int], set[str]] = {}
        for phase in tls.programs[0].phases:
            state = phase.state
            for i, j in conflicts:
                if state[i] in SHOWING and state[j] in SHOWING:
                    permissive.setdefault((i, j), set()).update(weaker[state[i]])
        return cls(
            tls=tls.id,
            timings=link_timings(tls, network, step_s),
            conflicts=conflicts,
            permissive={pair: frozenset(chars) for pair, chars in permissive.items()},
            phases=green_phases(tls.programs[0]),
            foes=[sorted(j for i, j in conflicts if i == k) for k in range(n)],
        )

    # --- checks --------------------------------------------------------------------------------

    def compatible(self, i: int, a: str, j: int, b: str) -> bool:
        """May link ``i`` show ``a`` while link ``j`` shows ``b``?"""
        if a not in SHOWING or b not in SHOWING or (i, j) not in self.conflicts:
            return True
        if a == "G" and b == "G":
            return False
        return a in self.permissive.get((i, j), "") and b in self.permissive.get((j, i), "")

    def conflicting_pairs(self, state: str) -> list[tuple[int, int]]:
        """Foe pairs that ``state`` shows moving together, other than a yielding permissive pair."""
        return sorted(
            (i, j) for i, j in self.conflicts if i < j and not self.compatible(i, state[i], j, state[j])
        )

    def phase_of(self, state: str) -> int:
        """The green phase ``state`` shows: its vehicle links exactly, its crossings either as in
        the phase or already red (the walk over, the green still running). -1 if none."""
        for index, phase_state in self.phases:
            if all(
                c == p or (self.timings[i].pedestrian and c == "r")
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

    # --- requests ------------------------------------------------------------------------------

    def start(self, t: float, state: str) -> None:
        """Take over from whatever SUMO shows now (``state``), at time ``t``."""
        self.state = list(state)
        self.since = [t] * len(state)
        self.target = "".join(c if c in GREEN else "r" for c in state)
        self.target_phase = self.phase_of(self.target)
        self.green_since = t
        self.served_since = t if state == self.target else None
        self.phase_since = self.served_since

    def request(self, t: float, wanted: str, *, operator: bool = False) -> bool:
        """Ask for ``wanted`` (one of G, g, r per link) to be shown as soon as safely possible.

        Refused (False, logged) if it has the wrong length, other characters, or conflicting
        streams green together, or asks again for a phase just ended at its maximum green.
        A controller's request (``operator=False``) is ignored unless the mode is automatic.
        """
        if not operator and self.mode is not Mode.AUTOMATIC:
            return False
        if len(wanted) != len(self.state) or any(c not in "Ggr" for c in wanted):
            return self._refuse(t, f"malformed request {wanted!r}")
        pairs = self.conflicting_pairs(wanted)
        if pairs:
            return self._refuse(t, f"conflicting streams green together: {pairs[:3]}")
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

    def _refuse(self, t: float, reason: str) -> bool:
        self.refusals.append(Refusal(t, reason))
        return False

    # --- one step ------------------------------------------------------------------------------

    def step(self, t: float) -> str | None:
        """Advance the shown state to time ``t``; return it if it changed, else None."""
        if self.mode in (Mode.FLASH, Mode.FAILSAFE):
            flashing = ["o"] * len(self.state)
            if self.state != flashing:
                self.state, self.since = flashing, [t] * len(flashing)
                return "".join(flashing)
            return None
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
        # 1. End what must end: greens whose minimum has passed, yellows that have run out.
        for i, c in enumerate(state):
            age = t - since[i]
            if c in GREEN and target[i] == "r" and age >= timings[i].min_green_s:
                new[i] = "r" if timings[i].pedestrian else "y"
            elif (c == "y" and age >= timings[i].yellow_s) or c in "oO":
                new[i] = "r"
            elif c == "G" and target[i] == "g":
                new[i] = "g"  # giving up priority is always safe
        # 2. Start greens whose foes are red and cleared, if the result stays consistent.
        for i, want in enumerate(target):
            # A green starts only from a red already shown (never straight from yellow or flash),
            # or as a change of priority within a green.
            startable = want in GREEN and new[i] != want and state[i] in "rGg" and new[i] in "rGg"
            if startable and self._may_start(i, want, new, t):
                new[i] = want
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
            if new[i] != state[i]:
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
        """May link ``i`` turn ``want`` now, given the other links' next states ``new``?"""
        for j in self.foes[i]:
            c = new[j]
            if c in SHOWING:
                if not self.compatible(i, want, j, c):
                    return False
            elif c == "r":
                # A foe that turned red this very step has its clearance still ahead.
                if self.state[j] != "r" or t - self.since[j] < self.timings[j].clearance_s:
                    return False
            else:
                return False  # a foe flashing or off: not a state to start a green beside
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
