"""Telling a faulty detector from traffic, using nothing but what the detectors report.

Checked at every report, per lane:

* **comm loss**: no report for ``COMM_LOSS_S`` (a dead battery looks the same, for good);
* **stuck on**: the zone reads full (occupancy >= 95%) with no vehicle counted over the advance
  loop for ``STUCK_ON_S`` - longer than any red a queue could wait through;
* **stuck off**: nothing counted and nothing present for ``STUCK_OFF_S`` while the other approaches
  of the same intersection counted at least ``STUCK_OFF_PEERS`` vehicles - on a lane known to carry
  traffic (``STUCK_OFF_HISTORY`` vehicles counted before it fell silent): on real nets some lanes
  (a turn few drivers take) are empty for long, and a healthy empty lane put on recall would
  hold every cycle's green for nobody;
* **chatter**: a counting rate above ``CHATTER_VEH_S`` (twice a lane's saturation flow) on a
  30 s average - more than a lane can carry.

A fault clears once its symptom has been gone for ``RECOVER_S``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.readings import BoolArray, Readings

COMM_LOSS_S = 10.0
STUCK_ON_S = 180.0
STUCK_OFF_S = 300.0
STUCK_OFF_PEERS = 30
STUCK_OFF_HISTORY = 10
CHATTER_VEH_S = 1.0
CHATTER_WINDOW_S = 30.0
RECOVER_S = 30.0

FAULTS = ("comm_loss", "stuck_on", "stuck_off", "chatter")


@dataclass(frozen=True)
class HealthChange:
    """Lane ``lane`` (index) became faulty with ``fault``, or recovered from it."""

    lane: int
    fault: str
    since_s: float
    recovered: bool = False


class SensorHealth:
    """Per-lane fault detection over successive :class:`Readings` (times in s)."""

    def __init__(self, groups: list[int], t: float) -> None:
        """``groups[i]`` numbers lane ``i``'s intersection (peers for the stuck-off check)."""
        n = len(groups)
        self.groups = np.array(groups, dtype=np.int64)
        self.last_report = np.full(n, t)
        self.full_since = np.full(n, np.inf)
        self.empty_since = np.full(n, np.inf)
        self.peer_count_at_empty = np.zeros(n)
        self.own_count_at_empty = np.zeros(n)
        self.rate = np.zeros(n)
        self.cumulative = np.zeros(n)
        self.fault: list[str | None] = [None] * n
        self.fault_since = np.zeros(n)
        self.clear_since = np.full(n, np.inf)
        self._last_t = t

    @property
    def faulty(self) -> BoolArray:
        return np.array([f is not None for f in self.fault], dtype=np.bool_)

    def check(self, t: float, r: Readings) -> list[HealthChange]:
        period = max(t - self._last_t, 1e-9)
        self._last_t = t
        valid = r.valid
        self.last_report[valid] = t
        counts = np.where(valid, r.count, 0).astype(np.float64)
        self.cumulative += counts
        peer_total = np.bincount(self.groups, weights=self.cumulative)[self.groups] - self.cumulative
        alpha = min(1.0, period / CHATTER_WINDOW_S)
        self.rate[valid] += alpha * (counts[valid] / period - self.rate[valid])

        full = valid & (r.occupancy >= 0.95) & (r.count == 0)
        self.full_since[~full & valid] = np.inf
        self.full_since[full & np.isinf(self.full_since)] = t
        empty = valid & (r.count == 0) & (r.present == 0)
        starting = empty & np.isinf(self.empty_since)
        self.empty_since[starting] = t
        self.peer_count_at_empty[starting] = peer_total[starting]
        self.own_count_at_empty[starting] = self.cumulative[starting]
        self.empty_since[~empty & valid] = np.inf

        symptom: list[str | None] = [None] * len(self.fault)
        symptoms = (
            ("comm_loss", t - self.last_report >= COMM_LOSS_S),
            ("stuck_on", t - self.full_since >= STUCK_ON_S),
            ("stuck_off", (t - self.empty_since >= STUCK_OFF_S)
             & (peer_total - self.peer_count_at_empty >= STUCK_OFF_PEERS)
             & (self.own_count_at_empty >= STUCK_OFF_HISTORY)),
            ("chatter", self.rate > CHATTER_VEH_S),
        )  # fmt: skip
        for name, mask in symptoms:
            for i in np.flatnonzero(mask):
                if symptom[i] is None:
                    symptom[i] = name
        return self._transitions(t, symptom)

    def _transitions(self, t: float, symptom: list[str | None]) -> list[HealthChange]:
        changes = []
        for i, (now, seen) in enumerate(zip(self.fault, symptom, strict=True)):
            if now is None and seen is not None:
                self.fault[i], self.fault_since[i] = seen, t
                self.clear_since[i] = np.inf
                changes.append(HealthChange(i, seen, t))
            elif now is not None and seen is None:
                if np.isinf(self.clear_since[i]):
                    self.clear_since[i] = t
                elif t - self.clear_since[i] >= RECOVER_S:
                    changes.append(HealthChange(i, now, float(self.fault_since[i]), recovered=True))
                    self.fault[i] = None
            elif now is not None:
                self.clear_since[i] = np.inf
        return changes
