"""Air-quality stations fed by SUMO's emissions through a street-box dispersion model.

Every ``period_s`` a station reads what the vehicles emitted in the last step (SUMO's HBEFA
model: NOx, PMx, CO2, in mg) on every edge that comes within ``radius_m``, and turns it into a
concentration above the background:

    C = background + sum_e E_e * exp(-d_e / decay_m) / (wind_mps * mixing_height_m * width_m)

``E_e`` is edge e's emission rate (ug/s), spread evenly along the edge (a line source: the
exponential is averaged over ten points along it, ``d_e`` their distance in m): the emissions are
carried off by the wind through a box ``width_m`` wide and ``mixing_height_m`` high, and what
comes from farther away is diluted more. A deliberately simple screening model (no chemistry,
no weather): NOx is taken as NO2 (an upper bound), exhaust PMx as PM10, and 1 ppm of CO2 as 1800 ug/m3.

Every minute a station publishes ``air.reading``: the 1-minute averages and the 1-hour averages
(over the last 60 minutes, or since the start), and an **AQI-style index** from the 1-hour
averages: 100 x concentration / limit for NO2 (200 ug/m3, 1 h) and PM10 (100 ug/m3), Peru's air
quality standards (ECA); the index is the larger, capped at 500 (not an official index). When
the index reaches ``alarm_index`` the station raises ``air.threshold``; it clears (again
``air.threshold``, ``raised`` false) once the index falls below 90% of it.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from sim.devices.config import AirConfig
from sim.devices.registry import DeviceContext, DeviceModel, register_device
from sim.devices.sites import junction_sites, vehicle_edges
from sim.messages import AirReading, AirThreshold, MessageBus

LIMITS_UGM3 = {"no2": 200.0, "pm10": 100.0}
UG_PER_PPM_CO2 = 1800.0
CATEGORIES = ((50.0, "good"), (100.0, "moderate"), (150.0, "unhealthy for sensitive groups"),
              (200.0, "unhealthy"), (300.0, "very unhealthy"))  # fmt: skip
MINUTE_S = 60.0
LINE_POINTS = 10
XY = tuple[float, float]
CLEAR_FRACTION = 0.9


def dispersion_weight(distance_m: float, config: AirConfig) -> float:
    """Concentration (ug/m3) per ug/s emitted at ``distance_m`` from a station."""
    box = config.wind_mps * config.mixing_height_m * config.width_m
    return math.exp(-distance_m / config.decay_m) / box


def line_weight(station: XY, start: XY, end: XY, config: AirConfig) -> float:
    """:func:`dispersion_weight` averaged along a straight edge from ``start`` to ``end`` (m):
    its emissions spread evenly along it (a line source, in ``LINE_POINTS`` pieces)."""
    total = 0.0
    for k in range(LINE_POINTS):
        f = (k + 0.5) / LINE_POINTS
        point = (start[0] + f * (end[0] - start[0]), start[1] + f * (end[1] - start[1]))
        total += dispersion_weight(math.dist(station, point), config)
    return total / LINE_POINTS


def nearest_m(station: XY, start: XY, end: XY) -> float:
    """Distance (m) from ``station`` to the segment ``start``-``end``."""
    dx, dy = end[0] - start[0], end[1] - start[1]
    span = dx * dx + dy * dy
    f = (
        0.0
        if span == 0
        else max(0.0, min(1.0, ((station[0] - start[0]) * dx + (station[1] - start[1]) * dy) / span))
    )
    return math.dist(station, (start[0] + f * dx, start[1] + f * dy))


def air_index(no2_ugm3: float, pm10_ugm3: float) -> tuple[float, str]:
    """The AQI-style index (0-500) and the pollutant that sets it."""
    no2 = 100.0 * no2_ugm3 / LIMITS_UGM3["no2"]
    pm10 = 100.0 * pm10_ugm3 / LIMITS_UGM3["pm10"]
    return (min(500.0, no2), "no2") if no2 >= pm10 else (min(500.0, pm10), "pm10")


def category(index: float) -> str:
    for bound, name in CATEGORIES:
        if index <= bound:
            return name
    return "hazardous"


@dataclass
class _Station:
    site: str
    edges: list[str]
    weights: list[float]
    samples: list[tuple[float, float, float]] = field(default_factory=list)
    minutes: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=60))
    alarm: bool = False


class AirStations(DeviceModel):
    def __init__(self, context: DeviceContext, config: AirConfig) -> None:
        self.config = config
        self.bus: MessageBus = context.bus
        self.period_s = config.period_s
        self.step_s = context.step_s
        network = context.network
        edges = list(vehicle_edges(network))
        self.stations: list[_Station] = []
        for site in junction_sites(network, config.sites, config.count, source=context.source,
                                   field="devices.air.sites"):  # fmt: skip
            xy = network.junction_xy.get(site)
            if xy is None:
                xy = network.edge_xy(network.traffic_lights[site].incoming_lanes(network)[0].edge)
            near, weights = [], []
            for edge in sorted(edges):
                start, end = (network.junction_xy.get(j, (0.0, 0.0)) for j in network.edge_ends[edge])
                if nearest_m(xy, start, end) <= config.radius_m:
                    near.append(edge)
                    weights.append(line_weight(xy, start, end, config))
            self.stations.append(_Station(site, near, weights))
        self.minute_begin = context.begin_s

    def concentrations(self, station: _Station) -> tuple[float, float, float]:
        """NOx (ug/m3), PM10 (ug/m3), CO2 (ppm) at ``station`` now, background included."""
        c = self.config
        nox = pm = co2 = 0.0
        for (e_co2, e_nox, e_pm), w in zip(
            self.world.edge_emissions(station.edges), station.weights, strict=True
        ):
            # mg in the last step -> ug/s
            scale = 1000.0 / self.step_s * w
            nox += e_nox * scale
            pm += e_pm * scale
            co2 += e_co2 * scale
        return (c.background_nox_ugm3 + nox, c.background_pm10_ugm3 + pm,
                c.background_co2_ppm + co2 / UG_PER_PPM_CO2)  # fmt: skip

    def sites(self) -> tuple[str, ...]:
        return tuple(s.site for s in self.stations)

    def sample(self, t: float) -> None:
        for station in self.stations:
            station.samples.append(self.concentrations(station))
        if t - self.minute_begin >= MINUTE_S - 1e-9:
            for station in self.stations:
                self._publish(t, station)
            self.minute_begin = t

    def _publish(self, t: float, station: _Station) -> None:
        n = len(station.samples) or 1
        nox, pm, co2 = (sum(s[i] for s in station.samples) / n for i in range(3))
        station.samples.clear()
        station.minutes.append((nox, pm))
        nox_h = sum(m[0] for m in station.minutes) / len(station.minutes)
        pm_h = sum(m[1] for m in station.minutes) / len(station.minutes)
        index, pollutant = air_index(nox_h, pm_h)
        source = f"air:{station.site}"
        self.bus.publish(t, source, AirReading(station.site, round(nox, 2), round(pm, 3), round(co2, 2),
                                               round(nox_h, 2), round(pm_h, 3), round(index, 1),
                                               category(index)))  # fmt: skip
        threshold = self.config.alarm_index
        if not station.alarm and index >= threshold:
            station.alarm = True
            self.bus.publish(t, source, AirThreshold(station.site, index, threshold, pollutant, True))
        elif station.alarm and index < CLEAR_FRACTION * threshold:
            station.alarm = False
            self.bus.publish(t, source, AirThreshold(station.site, index, threshold, pollutant, False))


@register_device("air")
def _build(context: DeviceContext, config: AirConfig) -> DeviceModel:
    return AirStations(context, config)
