"""The emulated NTCIP 1209 station's error model and the objects it serves (pure, no sockets)."""

from __future__ import annotations

from adapters.conformance.station import Broken, EmulatedStation, ErrorModel, station_values
from adapters.ntcip.model import MISSING
from adapters.ntcip.oids import Syntax, objects_1209


def run(station: EmulatedStation, seconds: int, counts: list[int], occupancy: list[float]) -> None:
    for t in range(1, seconds + 1):
        station.feed(float(t), counts, occupancy)


def value(station: EmulatedStation, name: str, *index: int) -> tuple[Syntax, object]:
    return station_values(station)[objects_1209()[name].instance(*index)]


def test_an_exact_station_reports_the_truth_of_each_period() -> None:
    station = EmulatedStation(("a", "b"), 60.0)
    run(station, 120, [1, 0], [0.25, 0.0])
    assert station.sequence == 2
    last = station.completed[0]
    assert (last.end_s, last.volume) == (120.0, (60, 0))
    assert last.occupancy == (0.25, 0.0)
    assert value(station, "sampleVolumeData", 1, 2, 1) == (Syntax.INTEGER, 60)
    assert value(station, "samplePercentOccupancy", 1, 2, 1) == (Syntax.INTEGER, 250)
    assert value(station, "sampleEndTime", 2, 3, 1) == (Syntax.COUNTER, 60)  # the period before
    assert value(station, "sampleVolumeData", 1, 1, 1) == (Syntax.INTEGER, MISSING)  # in progress


def test_undercount_misses_about_that_share_of_vehicles() -> None:
    station = EmulatedStation(("a",), 60.0, ErrorModel(undercount=0.15), seed=3)
    run(station, 3600, [2], [0.1])
    counted = sum(s.volume[0] for s in station.completed) + 0  # the last two periods kept
    assert len(station.completed) == 2
    assert 0.78 * 240 < counted < 0.92 * 240


def test_latency_moves_counts_into_the_next_period() -> None:
    station = EmulatedStation(("a",), 60.0, ErrorModel(latency_s=5.0))
    for t in range(1, 121):
        station.feed(float(t), [1 if t == 58 else 0], [0.0])
    first, second = station.completed[1], station.completed[0]
    assert (first.volume, second.volume) == ((0,), (1,))


def test_false_counts_and_occupancy_noise() -> None:
    station = EmulatedStation(
        ("a",), 600.0, ErrorModel(false_counts_per_h=360, occupancy_noise_points=5)
    )
    run(station, 1200, [0], [0.5])
    volumes = [s.volume[0] for s in station.completed]
    assert all(30 <= v <= 100 for v in volumes)  # 60 expected per 10 min
    assert any(abs(s.occupancy[0] - 0.5) > 0.001 for s in station.completed)


def test_broken_modes_serve_what_a_conformance_test_must_catch() -> None:
    wrong = EmulatedStation(("a",), 60.0, ErrorModel(broken=Broken.WRONG_TYPE))
    run(wrong, 60, [1], [0.0])
    assert value(wrong, "sampleVolumeData", 1, 2, 1) == (Syntax.OCTETS, b"60")
    stuck = EmulatedStation(("a",), 60.0, ErrorModel(broken=Broken.STUCK_STATUS))
    run(stuck, 60, [1], [0.0])
    assert value(stuck, "sensorZoneStatus", 1) == (Syntax.INTEGER, 5)
    assert value(stuck, "sampleZoneStatus", 1, 2, 1) == (Syntax.INTEGER, 5)
    assert value(stuck, "sampleVolumeData", 1, 2, 1) == (Syntax.INTEGER, 60)


def test_setting_the_period_restarts_the_period_in_progress() -> None:
    station = EmulatedStation(("a",), 60.0)
    run(station, 30, [1], [0.0])
    station.set_period(20.0, 30.0)
    for t in range(31, 51):
        station.feed(float(t), [1], [0.0])
    assert station.completed[0].end_s == 50.0 and station.completed[0].volume == (20,)


def test_a_power_cycle_loses_the_samples_and_keeps_the_period_unless_broken() -> None:
    for broken, period in ((Broken.NONE, 30.0), (Broken.FORGETS_CONFIG, 60.0)):
        station = EmulatedStation(("a",), 60.0, ErrorModel(broken=broken))
        run(station, 120, [1], [0.0])
        station.set_period(30.0, 120.0)
        station.power_cycle(120.0)
        assert (station.sequence, len(station.completed), station.period_s) == (0, 0, period)
        assert value(station, "numSampleDataEntries", 1) == (Syntax.INTEGER, 1)
