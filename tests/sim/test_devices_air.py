"""Air-quality stations: the dispersion model, the index, and readings from SUMO's emissions."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.devices.air import MINUTE_S, air_index, category, dispersion_weight
from sim.devices.config import AirConfig
from sim.messages import AirReading, AirThreshold
from tests.sim.devices_helpers import run, single_with


def test_dispersion_dilutes_with_distance_and_wind() -> None:
    calm, windy = AirConfig(wind_mps=1.0), AirConfig(wind_mps=4.0)
    assert dispersion_weight(0.0, calm) == pytest.approx(1.0 / (1.0 * 10.0 * 30.0))
    assert dispersion_weight(50.0, calm) == pytest.approx(dispersion_weight(0.0, calm) / 2.718281828)
    assert dispersion_weight(0.0, windy) == pytest.approx(dispersion_weight(0.0, calm) / 4)


def test_index_follows_the_worse_pollutant_against_peru_standards() -> None:
    assert air_index(200.0, 50.0) == (100.0, "no2")
    assert air_index(40.0, 150.0) == (150.0, "pm10")
    assert air_index(5000.0, 0.0) == (500.0, "no2")
    assert [category(i) for i in (20, 80, 120, 180, 250, 400)] == [
        "good", "moderate", "unhealthy for sensitive groups", "unhealthy", "very unhealthy", "hazardous"
    ]  # fmt: skip


def test_station_reads_traffic_above_background_and_raises_alarms(tmp_path: Path) -> None:
    text = """
[devices.air]
sites = ["C"]
alarm_index = 32.5
background_nox_ugm3 = 60
background_pm10_ugm3 = 0
"""
    # The background alone (NO2 60 ug/m3) gives index 30: only the traffic can set off the alarm.
    result = run(single_with(tmp_path / "a", text), tmp_path / "r", end_s=1200.0)
    readings = [m for m in result.log.of_kind("air.reading")]
    assert len(readings) == 1200 / MINUTE_S
    assert all(m.t % MINUTE_S == 0 for m in readings)
    values = [m.payload for m in readings if isinstance(m.payload, AirReading)]
    assert all(r.nox_1min_ugm3 > 60 and r.pm10_1min_ugm3 > 0 and r.co2_1min_ppm > 420 for r in values)
    # the 1-h average is the mean of the minutes so far (all within the first hour)
    mean = sum(r.nox_1min_ugm3 for r in values) / len(values)
    assert values[-1].nox_1h_ugm3 == pytest.approx(mean, abs=0.05)
    alarms = [m.payload for m in result.log.of_kind("air.threshold")]
    assert alarms and isinstance(alarms[0], AirThreshold) and alarms[0].raised
    assert alarms[0].index >= 32.5 and alarms[0].pollutant == "no2"
    quiet = run(
        single_with(tmp_path / "b", text.replace("= 32.5", "= 400")), tmp_path / "r2", end_s=600.0
    )
    assert quiet.log.of_kind("air.threshold") == []
