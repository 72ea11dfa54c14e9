"""The garbage collector paced by the feed: what start-up built is frozen, and full collections
come when a tick's frames are out, not when the allocation counters say."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from controlcenter.collector import NEVER, PacedCollector


class Node:
    """Half of a reference cycle: only a full collection frees it once it is old."""

    def __init__(self) -> None:
        self.other: Node | None = None


def old_cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    gc.collect(1)  # survives the young collections: now in the full generation
    return weakref.ref(a)


def churn() -> None:
    """Allocate (and keep for a while) enough containers that the counters ask for a full
    collection."""
    kept: list[list[int]] = [[] for _ in range(300_000)]
    del kept


@pytest.fixture
def collector() -> Iterator[PacedCollector]:
    thresholds = gc.get_threshold()
    paced = PacedCollector(min_period_s=0.0)
    yield paced
    paced.stop()
    gc.unfreeze()  # the test process's objects go back to the collector
    assert gc.get_threshold() == thresholds


def test_start_freezes_what_exists_and_takes_over_the_full_collections(
    collector: PacedCollector,
) -> None:
    young, middle, _full = gc.get_threshold()
    collector.start()
    assert collector.stats.frozen == gc.get_freeze_count() > 0
    assert gc.get_threshold() == (young, middle, NEVER)


def test_a_full_collection_runs_after_a_tick_once_due(collector: PacedCollector) -> None:
    collector.start()
    cycle = old_cycle()
    churn()  # the counters no longer start a full collection...
    assert cycle() is not None
    collector.after_tick()  # ...the tick does
    assert cycle() is None and collector.stats.full == 1


def test_full_collections_are_spaced_by_their_share_of_the_time() -> None:
    paced = PacedCollector(share=1e-9, min_period_s=0.0)  # any collection: due again in ages
    try:
        paced.start()
        paced.after_tick()
        assert paced.stats.full == 1 and paced.stats.last_full_s > 0
        cycle = old_cycle()
        paced.after_tick()
        assert paced.stats.full == 1 and cycle() is not None  # not yet due
    finally:
        paced.stop()
        gc.unfreeze()
        gc.collect()


def test_a_collector_never_started_leaves_the_collections_to_the_counters() -> None:
    thresholds = gc.get_threshold()
    paced = PacedCollector(min_period_s=0.0)
    cycle = old_cycle()
    paced.after_tick()
    assert paced.stats.full == 0 and cycle() is not None
    churn()
    assert cycle() is None  # a full collection the counters started
    paced.stop()
    assert gc.get_threshold() == thresholds


def test_the_share_is_a_fraction() -> None:
    with pytest.raises(ValueError, match="share 0: expected a fraction"):
        PacedCollector(share=0)
