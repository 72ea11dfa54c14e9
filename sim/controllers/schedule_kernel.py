"""Schedule-driven signal timing for one intersection: a SURTRAC-style forward dynamic program.

The adaptive controller groups the vehicles approaching each green phase ``q`` (``0..P-1``) into
*clusters* (jobs), served in their order. Cluster ``k`` of phase ``q`` reaches the stop line at
``arrival[q, k]`` s from now (``>= 0``, ascending in ``k``), needs ``duration[q, k]`` s (``> 0``) to
discharge at saturation flow and holds ``weight[q, k]`` vehicles (a float: buses weigh more). Only
the first ``n_clusters[q]`` entries of a row are read. The kernel picks the order in which clusters
are served (each phase's own clusters keep their order) that minimises the total weighted delay
(veh*s) under the signal timing rules below, and returns the resulting green segments.

Dynamic program
---------------
State ``(x, p)``: ``x = (x_0..x_{P-1})`` counts the clusters of each phase already served and ``p``
is the phase green at the end of that partial schedule. Each state keeps one label
``(d, t, g)``: delay so far (veh*s), time the last served cluster finished (s; 0 for the initial
state) and green start of phase ``p`` (s; may be negative). The initial state is ``x = 0``,
``p = current`` with label ``(0, 0, -elapsed)``.

Serving cluster ``j = x_q`` of phase ``q`` (``x_q < n_q``) from ``(x, p)`` with label ``(d, t, g)``:

* ``q == p`` (same green): ``start = max(t, arrival[q, j])``; the green start stays ``g' = g``.
* ``q != p`` (switch): phase ``p`` first completes its minimum green, ``leave = max(t, g +
  min_green[p])``, clears for ``switch[p, q]`` s, so ``g' = leave + switch[p, q]`` and
  ``start = max(g', arrival[q, j])``.
* ``finish = start + duration[q, j]``; ``d' = d + weight[q, j] * (start - arrival[q, j])``.
* Max green: a ``q == p`` transition with ``finish - g > max_green[q]`` is infeasible. The first
  cluster of a new green (``q != p``) is always allowed, whatever its finish: clusters longer than
  a max green are split upstream, and a late first cluster only idles the green. The green that is
  already running (the current phase, started at ``-elapsed``) gets no such exemption: it has been
  serving traffic we no longer see, so a current phase already past its max green must switch.

The label of ``(x + e_q, q)`` is replaced when ``d'`` is strictly smaller, or equal with a strictly
earlier ``finish``. The specified order is: states by ``sum(x)`` ascending, then by mixed-radix index
``xi = sum_q x_q * stride[q]`` (``stride[q] = prod_{r<q} (n_r + 1)``; state index ``xi * P + p``),
then ``p`` ascending, trying ``q`` ascending. Only the order in which one target's candidates are
compared matters, and every candidate for ``(x', q)`` comes from a source ``(x' - e_q, p)`` with the
same ``x``; so the kernel walks ``xi`` ascending (every transition adds ``stride[q] > 0``, so
sources come first) and, per ``x``, for each target ``q`` compares the sources ``p`` ascending, the
first of a full tie winning. That gives exactly the specified outcome, with each target's label
built in registers and stored once. Among the complete states ``x = n`` the smallest delay wins,
then the earlier finish, then the lower phase index.

Keeping one label per state makes this the usual schedule-driven *heuristic*, not an exact search:
a label with a little more delay but an earlier finish (or a later green start, which leaves more
max-green room) may lead to a better complete schedule, and is discarded. The returned schedule is
always a real one, with exactly the delay reported.

Fallback tiers
--------------
With max green binding, no complete schedule may exist (no transition creates an empty green, so a
phase whose clusters span more than its max green needs another phase's cluster in between). The
kernel then reruns the DP with the max-green rule relaxed, tier by tier, and returns the first tier
that finds a complete schedule:

0. ``TIER_STRICT``: the rules above.
1. ``TIER_CURRENT_UNBOUNDED``: max green is ignored for the green already running at the call
   (the current phase may keep serving when nothing else works). Skipped when the strict pass never
   refused the running green a cluster, as it would then repeat the strict pass exactly.
2. ``TIER_UNCONTESTED``: in addition, max green is ignored while every other phase has all its
   clusters served (no conflicting demand left, as an actuated controller that never maxes out
   without a call). Some complete schedule always exists here: from any reached state, either
   another phase has a cluster to switch to, or only the green phase has clusters left.

Each extra tier is a full DP pass. On random demand a fallback was needed for about 3% of 4-phase
calls and 30% of 2-phase ones (where the state space is tiny).

Output
------
The served order is recovered from back-pointers (the served phase of a state is its own ``p``) and
consecutive clusters of one phase are merged into one green segment: ``out_phase[i]``,
``out_start[i]`` = green start (s from now; the first segment is always the current phase, from
``-elapsed``), ``out_end[i]`` = finish of the segment's last cluster (s). The current phase's
segment is written even when it serves nothing; its end is then 0. A green lasts beyond its
``out_end`` when its minimum is not met: the next segment starts at exactly
``max(out_end[i], out_start[i] + min_green) + switch``. With no clusters at all the result is delay
0 and the single segment ``(current, -elapsed, 0)``.

``schedule_py`` is the plain-Python reference; ``schedule_nb`` is the same source compiled by numba
in nopython mode, so both perform the same floating-point operations in the same order and agree
bit for bit. Pass float64 / int64 C-contiguous arrays, an ``int`` phase and a ``float`` elapsed:
other types compile a new specialisation on first use.
"""

from __future__ import annotations

import math
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt
from numba import njit

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

TIER_STRICT: Final = 0
TIER_CURRENT_UNBOUNDED: Final = 1
TIER_UNCONTESTED: Final = 2

# Four label arrays of 8 bytes per state: 2**22 states is about 134 MB, far above the typical 4 * 7**4.
MAX_STATES: Final = 1 << 22

_INF: Final = math.inf


def max_segments(n_phases: int, max_clusters: int) -> int:
    """Length the output arrays need for ``n_phases`` rows of ``max_clusters`` clusters (``P*K + 1``).

    Every served cluster can open at most one segment, plus the current phase's own segment.
    """
    return n_phases * max_clusters + 1


def output_buffers(n_phases: int, max_clusters: int) -> tuple[IntArray, FloatArray, FloatArray]:
    """Fresh ``(out_phase, out_start, out_end)`` arrays of length ``max_segments(P, K)``."""
    size = max_segments(n_phases, max_clusters)
    return np.zeros(size, np.int64), np.zeros(size, np.float64), np.zeros(size, np.float64)


class ScheduleKernel(Protocol):
    """Signature shared by ``schedule_py`` and ``schedule_nb`` (see the module docstring)."""

    def __call__(
        self,
        arrival: FloatArray,
        duration: FloatArray,
        weight: FloatArray,
        n_clusters: IntArray,
        current: int,
        elapsed: float,
        min_green: FloatArray,
        max_green: FloatArray,
        switch: FloatArray,
        out_phase: IntArray,
        out_start: FloatArray,
        out_end: FloatArray,
        /,
    ) -> tuple[float, int]: ...


class TierKernel(Protocol):
    """``solve_py`` / ``solve_nb``: the schedule signature plus the tiers to try, ``lo..hi``."""

    def __call__(
        self,
        arrival: FloatArray,
        duration: FloatArray,
        weight: FloatArray,
        n_clusters: IntArray,
        current: int,
        elapsed: float,
        min_green: FloatArray,
        max_green: FloatArray,
        switch: FloatArray,
        out_phase: IntArray,
        out_start: FloatArray,
        out_end: FloatArray,
        tier_lo: int,
        tier_hi: int,
        /,
    ) -> tuple[float, int]: ...


def solve_py(
    arrival: FloatArray,
    duration: FloatArray,
    weight: FloatArray,
    n_clusters: IntArray,
    current: int,
    elapsed: float,
    min_green: FloatArray,
    max_green: FloatArray,
    switch: FloatArray,
    out_phase: IntArray,
    out_start: FloatArray,
    out_end: FloatArray,
    tier_lo: int,
    tier_hi: int,
) -> tuple[float, int]:
    """Run the DP for tiers ``tier_lo..tier_hi`` in turn; the first complete schedule is written.

    Returns ``(delay in veh*s, segments written)``, or ``(inf, 0)`` when no tried tier has a
    complete schedule (only possible with ``tier_hi < TIER_UNCONTESTED``). This source is also
    compiled as ``solve_nb``: keep it to what numba's nopython mode accepts.
    """
    n_phases = arrival.shape[0]
    width = arrival.shape[1]
    # Validation is cheap next to the DP and turns a silent out-of-bounds read under numba (which
    # does not bounds-check) into an error.
    if n_phases < 1:
        raise ValueError("schedule: need at least one phase")
    if duration.shape[0] != n_phases or duration.shape[1] != width:
        raise ValueError("schedule: duration must have the shape of arrival")
    if weight.shape[0] != n_phases or weight.shape[1] != width:
        raise ValueError("schedule: weight must have the shape of arrival")
    if n_clusters.shape[0] != n_phases or min_green.shape[0] != n_phases:
        raise ValueError("schedule: n_clusters and min_green need one entry per phase")
    if max_green.shape[0] != n_phases:
        raise ValueError("schedule: max_green needs one entry per phase")
    if switch.shape[0] != n_phases or switch.shape[1] != n_phases:
        raise ValueError("schedule: switch must be P x P")
    if current < 0 or current >= n_phases:
        raise ValueError("schedule: current phase out of range")

    # Mixed-radix strides over (n_q + 1): x -> xi = sum x_q * stride[q].
    stride = np.empty(n_phases, np.int64)
    n_x = 1
    total = 0
    for q in range(n_phases):
        n_q = n_clusters[q]
        if n_q < 0 or n_q > width:
            raise ValueError("schedule: n_clusters outside 0..K")
        stride[q] = n_x
        n_x *= n_q + 1
        total += n_q
        if n_x * n_phases > MAX_STATES:
            raise ValueError("schedule: state space too large; merge clusters first")
    if out_phase.shape[0] < total + 1 or out_start.shape[0] < total + 1 or out_end.shape[0] < total + 1:
        raise ValueError("schedule: output arrays shorter than total clusters + 1")

    if total == 0:
        out_phase[0] = current
        out_start[0] = -elapsed
        out_end[0] = 0.0
        return 0.0, 1

    n_states = n_x * n_phases
    # Labels per state; delay == inf marks a state not reached (the others are then garbage).
    delay = np.empty(n_states, np.float64)
    finish = np.empty(n_states, np.float64)
    green = np.empty(n_states, np.float64)
    pred = np.empty(n_states, np.int64)
    x = np.zeros(n_phases, np.int64)
    # The reached labels of the P states sharing one x, with each one's earliest switch-away time.
    src_d = np.empty(n_phases, np.float64)
    src_t = np.empty(n_phases, np.float64)
    src_g = np.empty(n_phases, np.float64)
    src_leave = np.empty(n_phases, np.float64)
    best = -1
    best_d = _INF

    tier = tier_lo
    while tier <= tier_hi:
        # Whether a transition was refused that the current-unbounded tier would allow.
        running_capped = False
        delay[:] = _INF
        delay[current] = 0.0  # initial state: xi = 0, p = current
        finish[current] = 0.0
        green[current] = -elapsed
        pred[current] = -1
        x[:] = 0
        served = 0
        for xi in range(n_x):
            if xi > 0:
                # Advance the digits of x to index xi (a mixed-radix counter), keeping sum(x).
                r = 0
                while x[r] == n_clusters[r]:
                    served -= x[r]
                    x[r] = 0
                    r += 1
                x[r] += 1
                served += 1
            remaining = total - served
            base = xi * n_phases
            reached = False
            for p in range(n_phases):
                d = delay[base + p]
                src_d[p] = d
                if d == _INF:
                    continue
                reached = True
                src_t[p] = finish[base + p]
                src_g[p] = green[base + p]
                # Shared by every switch away from p: the green ends once min green is met.
                src_leave[p] = max(src_t[p], src_g[p] + min_green[p])
            if not reached:
                continue
            # Still in the green that runs at the call: current phase, nothing else served yet.
            running = xi == x[current] * stride[current]
            # Target (x + e_q, q) is fed only from the P states of this x, so its label is the best
            # over sources p ascending (the first wins a full tie), kept in registers, stored once.
            for q in range(n_phases):
                j = x[q]
                if j == n_clusters[q]:
                    continue
                a = arrival[q, j]
                dur = duration[q, j]
                w = weight[q, j]
                exempt = (tier >= TIER_CURRENT_UNBOUNDED and running and q == current) or (
                    tier >= TIER_UNCONTESTED and remaining == n_clusters[q] - j
                )
                bd = _INF
                bt = 0.0
                bg = 0.0
                bp = -1
                for p in range(n_phases):
                    d = src_d[p]
                    if d == _INF:
                        continue
                    if q == p:
                        g_new = src_g[p]
                        start = max(src_t[p], a)
                    else:
                        g_new = src_leave[p] + switch[p, q]
                        start = max(g_new, a)
                    fin = start + dur
                    if q == p and fin - g_new > max_green[q] and not exempt:
                        running_capped = running_capped or (running and q == current)
                        continue
                    d_new = d + w * (start - a)
                    if d_new < bd or (d_new == bd and fin < bt):
                        bd = d_new
                        bt = fin
                        bg = g_new
                        bp = base + p
                if bp >= 0:
                    s_new = (xi + stride[q]) * n_phases + q
                    delay[s_new] = bd
                    finish[s_new] = bt
                    green[s_new] = bg
                    pred[s_new] = bp

        base = (n_x - 1) * n_phases
        for p in range(n_phases):
            s = base + p
            d = delay[s]
            if d == _INF:
                continue
            if best < 0 or d < best_d or (d == best_d and finish[s] < finish[best]):
                best = s
                best_d = d
        if best >= 0:
            break
        # A strict pass that never capped the running green would repeat itself exactly at the
        # current-unbounded tier: go straight to the uncontested one.
        tier += 2 if tier == TIER_STRICT and not running_capped else 1

    if best < 0:
        return _INF, 0

    # Count segments (phase changes along the back-pointer chain), then fill them back to front.
    n_seg = 1
    s = best
    while pred[s] >= 0:
        if pred[s] % n_phases != s % n_phases:
            n_seg += 1
        s = pred[s]
    k = n_seg - 1
    s = best
    out_phase[k] = s % n_phases
    out_end[k] = finish[s]
    while True:
        prev = pred[s]
        if prev < 0:
            out_start[k] = green[s]
            break
        if prev % n_phases != s % n_phases:
            # s is the first state of segment k; its green start is the segment's.
            out_start[k] = green[s]
            k -= 1
            out_phase[k] = prev % n_phases
            out_end[k] = finish[prev]
        s = prev
    return best_d, n_seg


solve_nb: TierKernel = njit(cache=True)(solve_py)


def schedule_py(
    arrival: FloatArray,
    duration: FloatArray,
    weight: FloatArray,
    n_clusters: IntArray,
    current: int,
    elapsed: float,
    min_green: FloatArray,
    max_green: FloatArray,
    switch: FloatArray,
    out_phase: IntArray,
    out_start: FloatArray,
    out_end: FloatArray,
) -> tuple[float, int]:
    """Best schedule (pure Python): ``(total weighted delay in veh*s, segments written)``.

    Tries the tiers strict, then current-unbounded, then uncontested; the last always succeeds.
    """
    return solve_py(
        arrival, duration, weight, n_clusters, current, elapsed, min_green, max_green, switch,
        out_phase, out_start, out_end, TIER_STRICT, TIER_UNCONTESTED,
    )  # fmt: skip


def _schedule_nb(
    arrival: FloatArray,
    duration: FloatArray,
    weight: FloatArray,
    n_clusters: IntArray,
    current: int,
    elapsed: float,
    min_green: FloatArray,
    max_green: FloatArray,
    switch: FloatArray,
    out_phase: IntArray,
    out_start: FloatArray,
    out_end: FloatArray,
) -> tuple[float, int]:
    # Compiled as schedule_nb; it has to call the compiled solve_nb, not solve_py.
    return solve_nb(
        arrival, duration, weight, n_clusters, current, elapsed, min_green, max_green, switch,
        out_phase, out_start, out_end, TIER_STRICT, TIER_UNCONTESTED,
    )  # fmt: skip


schedule_nb: ScheduleKernel = njit(cache=True)(_schedule_nb)

schedule: ScheduleKernel = schedule_nb


def compile_kernels() -> None:
    """Compile (or load from numba's cache) ``schedule_nb`` and ``solve_nb`` for the usual dtypes.

    Call it once at controller start so the first decision does not pay the compile time.
    """
    arrival = np.array([[0.0], [2.0]])
    duration = np.array([[2.0], [3.0]])
    weight = np.ones((2, 1))
    n_clusters = np.ones(2, np.int64)
    min_green = np.full(2, 5.0)
    max_green = np.full(2, 30.0)
    switch = np.array([[0.0, 4.0], [4.0, 0.0]])
    out_phase, out_start, out_end = output_buffers(2, 1)
    schedule_batch_nb(
        np.zeros(1, np.int64), np.full(1, 2, np.int64), arrival[None], duration[None], weight[None],
        n_clusters[None], np.zeros(1, np.int64), np.ones(1), min_green[None], max_green[None],
        switch[None], out_phase[None], out_start[None], out_end[None], np.zeros(1),
        np.zeros(1, np.int64),
    )  # fmt: skip
    schedule_nb(
        arrival, duration, weight, n_clusters, 0, 1.0, min_green, max_green, switch,
        out_phase, out_start, out_end,
    )  # fmt: skip
    solve_nb(
        arrival, duration, weight, n_clusters, 0, 1.0, min_green, max_green, switch,
        out_phase, out_start, out_end, TIER_STRICT, TIER_STRICT,
    )  # fmt: skip


# --- all intersections in one call --------------------------------------------------------------
# A controller step plans every intersection at once. Calling the kernel once per intersection
# pays numba's dispatch (about a microsecond) each time, comparable to solving a small
# intersection; the batch pays it once per step. Intersection i uses the first n_phases[i] rows
# (and columns, for switch) of its slices; only the intersections listed in ``active`` are solved.


class BatchKernel(Protocol):
    """``schedule_batch_py`` / ``schedule_batch_nb`` (see there)."""

    def __call__(
        self,
        active: IntArray,
        n_phases: IntArray,
        arrival: FloatArray,
        duration: FloatArray,
        weight: FloatArray,
        n_clusters: IntArray,
        current: IntArray,
        elapsed: FloatArray,
        min_green: FloatArray,
        max_green: FloatArray,
        switch: FloatArray,
        out_phase: IntArray,
        out_start: FloatArray,
        out_end: FloatArray,
        out_delay: FloatArray,
        out_segments: IntArray,
        /,
    ) -> None: ...


def schedule_batch_py(
    active: IntArray,
    n_phases: IntArray,
    arrival: FloatArray,
    duration: FloatArray,
    weight: FloatArray,
    n_clusters: IntArray,
    current: IntArray,
    elapsed: FloatArray,
    min_green: FloatArray,
    max_green: FloatArray,
    switch: FloatArray,
    out_phase: IntArray,
    out_start: FloatArray,
    out_end: FloatArray,
    out_delay: FloatArray,
    out_segments: IntArray,
) -> None:
    """``schedule`` for each intersection ``i`` in ``active``; results in ``out_*[i]``.

    Shapes: ``arrival/duration/weight [N, P, K]``, ``n_clusters/min_green/max_green [N, P]``,
    ``switch [N, P, P]``, ``current/elapsed/out_delay/out_segments [N]``, ``out_* [N, S]``.
    """
    for a in range(active.shape[0]):
        i = active[a]
        p = n_phases[i]
        out_delay[i], out_segments[i] = solve_py(
            arrival[i, :p], duration[i, :p], weight[i, :p], n_clusters[i, :p], current[i],
            elapsed[i], min_green[i, :p], max_green[i, :p], switch[i, :p, :p],
            out_phase[i], out_start[i], out_end[i], TIER_STRICT, TIER_UNCONTESTED,
        )  # fmt: skip


def _schedule_batch_nb(
    active: IntArray,
    n_phases: IntArray,
    arrival: FloatArray,
    duration: FloatArray,
    weight: FloatArray,
    n_clusters: IntArray,
    current: IntArray,
    elapsed: FloatArray,
    min_green: FloatArray,
    max_green: FloatArray,
    switch: FloatArray,
    out_phase: IntArray,
    out_start: FloatArray,
    out_end: FloatArray,
    out_delay: FloatArray,
    out_segments: IntArray,
) -> None:
    # The same loop as schedule_batch_py, compiled, calling the compiled solve_nb.
    for a in range(active.shape[0]):
        i = active[a]
        p = n_phases[i]
        out_delay[i], out_segments[i] = solve_nb(
            arrival[i, :p], duration[i, :p], weight[i, :p], n_clusters[i, :p], current[i],
            elapsed[i], min_green[i, :p], max_green[i, :p], switch[i, :p, :p],
            out_phase[i], out_start[i], out_end[i], TIER_STRICT, TIER_UNCONTESTED,
        )  # fmt: skip


schedule_batch_nb: BatchKernel = njit(cache=True)(_schedule_batch_nb)
