"""Reference count files: read and checked (bad ones named by file, line and field), and their
intervals aligned with a station's sample periods."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.conformance.reference import (
    ReferenceError,
    align_reference,
    interval_s,
    parse_reference,
)

LANES = ["N_C_1", "E_C_1"]
GOOD = """site,lane,interval_start,interval_end,count,speed_kmh
lab-1,N_C_1,0,120,30,41.5
lab-1,N_C_1,120,240,28,
lab-1,E_C_1,0,120,12,
lab-1,E_C_1,120,240,9,
"""


def test_a_reference_file_is_read_in_the_stations_clock() -> None:
    ref = parse_reference(GOOD, Path("counts.csv"), LANES)
    assert (ref.site, ref.clock, len(ref.rows), ref.begin_s, ref.end_s) == ("lab-1", "uptime", 4, 0, 240)
    assert ref.rows[0].speed_kmh == 41.5 and ref.rows[1].speed_kmh is None
    assert interval_s(ref) == 120
    local = GOOD.replace(",0,120,", ",2026-03-02T07:00:00,2026-03-02T07:02:00,").replace(
        ",120,240,", ",2026-03-02T07:02:00,2026-03-02T07:04:00,"
    )
    ref = parse_reference(local, Path("counts.csv"), LANES)
    assert ref.clock == "local" and ref.end_s - ref.begin_s == 240


def test_reference_intervals_are_compared_with_the_periods_that_tile_them() -> None:
    ref = parse_reference(GOOD, Path("counts.csv"), LANES)
    device = {
        60.0: ([14, 6], [0.1, 0.2]),
        120.0: ([15, 5], [0.3, 0.2]),
        180.0: ([13, None], [0.1, None]),  # zone 2 unreadable in this period
        240.0: ([12, 4], [0.1, 0.2]),
    }
    aligned, untiled = align_reference(ref, LANES, device, 60.0)
    n = [(r.end_s, r.true_volume, r.device_volume) for r in aligned["N_C_1"]]
    e = [(r.end_s, r.true_volume, r.device_volume) for r in aligned["E_C_1"]]
    assert n == [(120, 30, 29), (240, 28, 25)] and e == [(120, 12, 11), (240, 9, None)]
    assert aligned["N_C_1"][0].device_occupancy_pct == pytest.approx(20.0)
    assert aligned["N_C_1"][0].true_occupancy_pct is None and untiled == []
    aligned, untiled = align_reference(ref, LANES, device, 90.0)  # 120 s is not whole periods
    assert all(r.device_volume is None for rows in aligned.values() for r in rows)
    assert len(untiled) == 4
    assert "line 2: 120 s is not a whole number of the station's 90 s periods" in untiled


@pytest.mark.parametrize(
    ("text", "line", "field", "expected"),
    [
        ("site,lane,start,interval_end,count\n", 1, "header", "missing column 'interval_start'"),
        (GOOD.replace("speed_kmh", "speed"), 1, "header", "unknown column 'speed'"),
        (GOOD.replace("lab-1,E_C_1,0", "lab-2,E_C_1,0"), 4, "site", "one site per file"),
        (GOOD.replace("N_C_1,120,240,28", "S_C_1,120,240,28"), 3, "lane", "N_C_1, E_C_1"),
        (GOOD.replace(",0,120,30", ",zero,120,30"), 2, "interval_start", "local date-time"),
        (GOOD.replace(",120,240,28", ",120,100,28"), 3, "interval_end", "after interval_start"),
        (GOOD.replace(",30,41.5", ",-3,41.5"), 2, "count", "whole number"),
        (GOOD.replace(",30,41.5", ",30,fast"), 2, "speed_kmh", "km/h"),
        (GOOD.replace("N_C_1,120,240", "N_C_1,60,240"), 3, "interval_start", "no overlap with line 2"),
        (GOOD.replace(",120,240,28", ",2026-03-02T07:00:00,2026-03-02T07:02:00,28"), 3,
         "interval_start", "the same clock on every row"),
    ],
)  # fmt: skip
def test_a_bad_reference_file_names_its_line_and_field(
    text: str, line: int, field: str, expected: str
) -> None:
    with pytest.raises(ReferenceError) as info:
        parse_reference(text, Path("counts.csv"), LANES)
    message = str(info.value)
    assert message.startswith(f"counts.csv:{line}: field '{field}'") and expected in message
