"""Accuracy statistics and verdicts (pure)."""

from __future__ import annotations

import pytest

from adapters.conformance.accuracy import (
    AccuracyThresholds,
    LaneInterval,
    accuracy_cases,
    align,
    blocks,
    by_condition,
    lane_summaries,
    vehicles_to_distinguish,
    volume_error,
)
from adapters.conformance.cases import Outcome

TH = AccuracyThresholds(10.0, 50, 600.0, 0.95, 3.0)


def rows(true: list[int], device: list[int | None], occ: float = 10.0) -> list[LaneInterval]:
    return [
        LaneInterval(60.0 * (k + 1), t, occ, d, occ)
        for k, (t, d) in enumerate(zip(true, device, strict=True))
    ]


def test_align_matches_periods_by_end_time_and_keeps_missing_ones_missing() -> None:
    truth = {60.0: ([5, 1], [0.1, 0.0]), 120.0: ([4, 2], [0.2, 0.0])}
    device = {60.0: ([5, None], [0.1, None])}
    aligned = align(["a", "b"], truth, device)
    assert aligned["a"][0] == LaneInterval(60.0, 5, 10.0, 5, 10.0)
    assert aligned["b"][0].device_volume is None
    assert aligned["a"][1].device_volume is None  # never reported: missing, not zero


def test_volume_error_and_its_interval() -> None:
    exact = volume_error(rows([10, 12, 8], [10, 12, 8]))
    assert (exact.error_pct, exact.low_pct, exact.high_pct) == (0.0, 0.0, 0.0)
    under = volume_error(rows([10, 12, 8, 10], [8, 11, 6, 9]))
    assert under.error_pct == pytest.approx(-15.0)  # 34 of 40
    assert under.low_pct is not None and under.high_pct is not None
    assert under.low_pct < -15.0 < under.high_pct < 0
    assert volume_error(rows([0, 0], [0, 0])).error_pct is None


def test_blocks_close_at_n_vehicles_or_t_seconds() -> None:
    true = [30, 30, *[4] * 10, 3]  # 50 vehicles in 2 periods, then 10 min of 40, then a stub
    found = blocks(rows(true, list(true)), 60.0, 50, 600.0)
    assert [(b.true, b.intervals) for b in found] == [(60, 2), (40, 10)]


def test_vehicles_needed_to_tell_5_from_10_percent() -> None:
    assert vehicles_to_distinguish(0.05, 0.10) == 185
    assert vehicles_to_distinguish(0.05, 0.10, power=0.9) > 185


def test_cases_fail_with_the_lane_and_its_interval_as_evidence() -> None:
    aligned = {"a": rows([10] * 10, [10] * 10), "b": rows([10] * 10, [8] * 10)}
    summaries = lane_summaries(aligned, 60.0, TH)
    results = {r.id: r for r in accuracy_cases(summaries, TH, ["ACC-VOL-1", "ACC-VOL-2", "ACC-OCC-1"])}
    assert results["ACC-VOL-1"].outcome is Outcome.FAIL
    assert "b: 80 counted for 100 true vehicles, error -20.0 %" in results["ACC-VOL-1"].evidence[0]
    assert results["ACC-VOL-2"].outcome is Outcome.FAIL
    assert results["ACC-OCC-1"].outcome is Outcome.PASS


def test_a_lane_with_too_few_vehicles_is_not_judged() -> None:
    summaries = lane_summaries({"a": rows([1] * 5, [0] * 5)}, 60.0, TH)
    result = accuracy_cases(summaries, TH, ["ACC-VOL-1"])[0]
    assert result.outcome is Outcome.NOT_APPLICABLE and "a (5 vehicles)" in result.evidence[0]


def test_occupancy_error_beyond_the_threshold_fails() -> None:
    lane = [LaneInterval(60.0 * k, 10, 10.0, 10, 15.0) for k in range(1, 6)]
    summaries = lane_summaries({"a": lane}, 60.0, TH)
    result = accuracy_cases(summaries, TH, ["ACC-OCC-1"])[0]
    assert result.outcome is Outcome.FAIL and "5.00 points" in result.evidence[0]


def test_volume_error_by_condition_of_the_zone() -> None:
    light = [LaneInterval(60.0 * k, 10, 5.0, 9, 5.0) for k in range(1, 4)]
    queued = [LaneInterval(60.0 * k, 4, 60.0, 4, 60.0) for k in range(4, 6)]
    found = by_condition({"a": light + queued})
    assert (found["light"]["periods"], found["light"]["error_pct"]) == (3, pytest.approx(-10.0))
    assert (found["queued"]["periods"], found["queued"]["error_pct"]) == (2, 0.0)
    assert found["busy"]["periods"] == 0 and found["busy"]["error_pct"] is None
