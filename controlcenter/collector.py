"""Python's cyclic garbage collector, paced by the feed (``ccsim serve`` and ``ccsim replay``).

A collection holds every thread of the server, the event loop included, and a full one walks
every container object the process has. Left to its allocation counters, a full collection
comes whenever the counters say - often in the middle of a tick, whose frames then reach the
clients that much later: with the district at x20 they were most of the feed's worst latencies.
So the server process:

* freezes what start-up built (the net and its map, the SensorThings and NGSI-LD entities,
  the app): it lives as long as the server, and a full collection need not walk it again;
* leaves the young generations to the counters (collecting them is short), and runs the full
  collections itself, right after a tick's frames are out - the quiet moment of the event
  loop, a whole tick period before the next frame is due - no more often than keeps them to
  ``share`` of the time: the bigger the heap, the rarer, as CPython's own rule has it.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass

NEVER = 2**31 - 1
"""A threshold the full generation's counter (collections of the middle one) never reaches."""


@dataclass
class CollectorStats:
    full: int = 0
    """Full collections run after a tick."""
    last_full_s: float = 0.0
    """How long the latest one took (s)."""
    frozen: int = 0
    """Objects start-up left that no collection walks again."""


class PacedCollector:
    """See the module docstring. ``share``: the fraction of the time full collections may take
    (0..1); ``min_period_s``: the shortest time between two of them (s)."""

    def __init__(self, share: float = 0.02, min_period_s: float = 10.0) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"share {share}: expected a fraction in (0, 1]")
        self.share = share
        self.min_period_s = min_period_s
        self.stats = CollectorStats()
        self._thresholds: tuple[int, int, int] | None = None
        self._due = 0.0

    def start(self) -> None:
        """Freeze what exists now and take the full collections over from the counters."""
        gc.collect()
        gc.freeze()
        self.stats.frozen = gc.get_freeze_count()
        self._thresholds = gc.get_threshold()
        young, middle, _full = self._thresholds
        gc.set_threshold(young, middle, NEVER)
        self._due = time.monotonic() + self.min_period_s

    def after_tick(self) -> None:
        """A tick's frames are out: a full collection now, if one is due."""
        if self._thresholds is None or time.monotonic() < self._due:
            return
        began = time.perf_counter()
        gc.collect()
        took = time.perf_counter() - began
        self.stats.full += 1
        self.stats.last_full_s = took
        self._due = time.monotonic() + max(self.min_period_s, took / self.share)

    def stop(self) -> None:
        """Give the collections back to the counters (the frozen objects stay frozen)."""
        if self._thresholds is not None:
            gc.set_threshold(*self._thresholds)
            self._thresholds = None
