"""KPI arithmetic on hand-made streams (the SUMO-backed check is in test_engine)."""

from __future__ import annotations

import pytest

from sim.kpi import SUMMARY_KEYS, KpiCollector
from sim.messages import (
    ApproachDelay,
    FleetTotals,
    IntersectionInterval,
    MessageBus,
    NetworkInterval,
    ParkingOccupancy,
    ParkingTotals,
    RunFinished,
    RunStarted,
    SignalPhase,
    TripTotals,
    ZoneOccupancy,
)


def run_stream() -> KpiCollector:
    kpi = KpiCollector()
    bus = MessageBus()
    bus.subscribe(kpi)
    bus.publish(0.0, "engine", RunStarted("s", "fixed", 1, 0.0, 600.0, 1.0, "SUMO"))
    for t, phase in ((1, 0), (30, 1), (60, 0), (90, 1), (120, 0)):
        bus.publish(float(t), "tls:J", SignalPhase("J", "0", phase, "G"))
    trips1 = TripTotals(2, 20.0, 2.0, 100.0, 4.0, 500.0)
    bus.publish(300.0, "monitor", NetworkInterval(0.0, 300.0, 5, 2, 3, 0, trips1, 0, 0.0))
    bus.publish(300.0, "tls:J", IntersectionInterval("J", 0.0, 300.0, 2.0, 6))
    trips2 = TripTotals(4, 60.0, 4.0, 220.0, 10.0, 1000.0)
    bus.publish(600.0, "monitor", NetworkInterval(300.0, 600.0, 6, 4, 2, 1, trips2, 0, 0.0))
    bus.publish(600.0, "tls:J", IntersectionInterval("J", 300.0, 600.0, 4.0, 9))
    bus.publish(600.0, "tls:J", ApproachDelay("J", 0.0, 300.0, 10, 5.0))
    bus.publish(600.0, "tls:J", ApproachDelay("J", 300.0, 600.0, 30, 9.0))
    bus.publish(
        600.0,
        "monitor",
        RunFinished(
            trips=trips2,
            running=2,
            running_delay_s=30.0,
            pending=1,
            pending_delay_s=50.0,
            stops_total=9,
            buses=FleetTotals(0, 0.0),
            persons=FleetTotals(4, 20.0),
        ),
    )
    return kpi


def test_mean_delay_counts_arrived_running_and_never_inserted() -> None:
    summary = run_stream().summary(scenario="s", controller="fixed", seed=1, wall_time_s=2.0)
    assert list(summary) == list(SUMMARY_KEYS)
    # arrived: 60 time loss + 4 depart delay; running: 30; never inserted: 50 -> 144 over 7
    assert summary["mean_delay_s"] == pytest.approx(144.0 / 7)
    assert summary["vehicles_departed"] == 6
    assert summary["vehicles_arrived"] == 4
    assert summary["mean_travel_time_s"] == pytest.approx(55.0)
    assert summary["mean_stops"] == pytest.approx(9 / 6)
    assert summary["throughput_veh_h"] == pytest.approx(24.0)
    assert summary["pedestrian_mean_delay_s"] == pytest.approx(5.0)
    assert summary["bus_mean_delay_s"] is None
    assert summary["realtime_factor"] == pytest.approx(300.0)


def test_interval_and_intersection_figures() -> None:
    rows = run_stream().timeseries()

    def value(period: str, begin: float, scope: str, metric: str) -> float | None:
        (row,) = [
            r for r in rows
            if (r["period"], r["begin_s"], r["scope"], r["metric"]) == (period, begin, scope, metric)
        ]  # fmt: skip
        return row["value"]

    # second interval: 2 trips finished with (40 + 2) s of delay between them
    assert value("interval", 300.0, "network", "mean_delay_arrived_s") == pytest.approx(21.0)
    assert value("interval", 300.0, "network", "departed") == 1
    # cycles end when the phase index wraps: at t=60 and t=120
    assert value("interval", 0.0, "tls:J", "cycles") == 2
    assert value("run", 0.0, "tls:J", "approach_delay_s") == pytest.approx((50 + 270) / 40)
    assert value("run", 0.0, "tls:J", "queue_mean_veh") == pytest.approx(3.0)
    assert value("run", 0.0, "tls:J", "queue_max_veh") == 9


def test_parking_peak_and_rotating_loading_efficiency() -> None:
    """The rotating bays' peak is the busiest quarter-hour of the minute samples (lots, loading
    bays and windows running past the end left out); the aim's efficiency counts rotating and
    loading bays only."""
    kpi = run_stream()
    bus = MessageBus()
    bus.subscribe(kpi)
    kpi.started = RunStarted("s", "fixed", 1, 0.0, 1800.0, 1.0, "SUMO")
    for minute in range(30):  # rotating: 5 of 10 bays, 9 in minutes 10-24, 10 after that
        taken = 9 if 10 <= minute < 25 else 10 if minute >= 25 else 5
        zones = (
            ZoneOccupancy("r1", "rotating", 4, min(4, taken), 0, 0.0),
            ZoneOccupancy("r2", "rotating", 6, max(0, taken - 4), 0, 0.0),
            ZoneOccupancy("lot", "lot", 100, 100, 0, 0.0),
            ZoneOccupancy("l1", "loading", 2, 2, 0, 0.0),
        )
        bus.publish(1.0 + 60 * minute, "parking", ParkingOccupancy(zones))
    bus.publish(1800.0, "parking", ParkingTotals(
        bays=112, duration_s=1800.0, parkers=5, parked=4, initially_parked=6, search_time_s=40.0,
        search_distance_m=400.0, overstays=2, rotating_parked=3, misuse=0,
        occupied_bay_s=112 * 1800.0 * 0.5, legitimate_bay_s=112 * 1800.0 * 0.4, curb_bays=12,
        curb_legitimate_bay_s=12 * 1800.0 * 0.75, sensor_agree=1, sensor_samples=1,
    ))  # fmt: skip
    s = kpi.summary(scenario="s", controller="fixed", seed=1, wall_time_s=1.0)
    # windows of 15 samples start at minutes 0..15 (one starting later would run past the last
    # sample): the busiest, the run's last quarter-hour (minutes 15-29), has 10 at 0.9 and 5 at
    # 1.0 (the last minute alone would be 1.0)
    assert s["parking_rotating_peak_occupancy"] == pytest.approx((10 * 0.9 + 5 * 1.0) / 15)
    assert s["public_space_efficiency_rotating_loading"] == pytest.approx(0.75)
    assert s["public_space_efficiency"] == pytest.approx(0.4)
    assert s["parking_overstay_rate"] == pytest.approx(2 / 10)  # over every stay seen, before too
    assert s["parking_turnover_per_bay_h"] == pytest.approx(4 / 112 / 0.5)  # events in the run


def test_a_run_shorter_than_the_peak_window_takes_its_mean() -> None:
    kpi = run_stream()  # 600 s
    bus = MessageBus()
    bus.subscribe(kpi)
    for minute, taken in enumerate((2, 4, 6)):
        zone = ZoneOccupancy("r", "rotating", 10, taken, 0, 0.0)
        bus.publish(1.0 + 60 * minute, "parking", ParkingOccupancy((zone,)))
    assert kpi._rotating_peak() == pytest.approx(0.4)


def test_a_run_stopped_early_has_no_short_windows_at_its_end() -> None:
    """Stopped after 17 minutes of a planned hour: the windows are the three that have 15
    samples, not the ones of a few samples at the stop (a last minute of 1.0 is no peak)."""
    kpi = KpiCollector()
    bus = MessageBus()
    bus.subscribe(kpi)
    bus.publish(0.0, "engine", RunStarted("s", "fixed", 1, 0.0, 3600.0, 1.0, "SUMO"))
    for minute in range(17):
        taken = 10 if minute == 16 else 6 if minute >= 14 else 4
        zone = ZoneOccupancy("r", "rotating", 10, taken, 0, 0.0)
        bus.publish(1.0 + 60 * minute, "parking", ParkingOccupancy((zone,)))
    # windows at minutes 0-14, 1-15 and 2-16; the last: 12 at 0.4, 2 at 0.6, 1 at 1.0
    assert kpi._rotating_peak() == pytest.approx((12 * 0.4 + 2 * 0.6 + 1.0) / 15)
