from __future__ import annotations

import pytest

from sim.stats import estimate, paired_change


def test_estimate_matches_the_t_interval_by_hand() -> None:
    # mean 2, sample sd 1, n 3: half-width = t(0.975, 2) * 1 / sqrt(3) = 4.3027 / 1.7321
    est = estimate([1.0, 2.0, 3.0])
    assert est.mean == 2.0
    assert est.half_width == pytest.approx(2.4841, abs=1e-4)
    assert est.low == pytest.approx(2.0 - 2.4841, abs=1e-4)


def test_single_value_has_no_interval() -> None:
    est = estimate([5.0])
    assert est.mean == 5.0 and est.half_width is None and est.low is None


def test_empty_is_an_error() -> None:
    with pytest.raises(ValueError):
        estimate([])


def test_paired_change_removes_shared_seed_variation() -> None:
    # Seeds vary a lot, but the other controller is always about 10 s better.
    base = {1: 100.0, 2: 200.0, 3: 300.0}
    other = {1: 90.2, 2: 189.7, 3: 290.1}
    change = paired_change(base, other)
    assert change is not None
    assert change.percent == pytest.approx(-5.0)
    interval = change.percent_interval()
    assert interval is not None and interval[1] < 0  # significant despite seed spread


def test_paired_change_uses_common_seeds_only() -> None:
    change = paired_change({1: 10.0, 2: 20.0}, {2: 30.0, 3: 99.0})
    assert change is not None
    assert change.difference.n == 1 and change.difference.mean == 10.0
    assert paired_change({1: 1.0}, {2: 1.0}) is None
