"""KPIs of a run, computed from the message stream alone.

``mean_delay_s`` follows the common benchmark definition: the mean over every vehicle that was
due in the run of its time loss plus its departure delay - vehicles that arrived, vehicles still
driving at the end (time loss so far), and vehicles that were due but never inserted (their whole
wait since the intended departure).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sim.messages import (
    ApproachDelay,
    ControlShares,
    DevicesDeployed,
    EmissionsInterval,
    GuardViolation,
    IncidentTotals,
    InfoSignTotals,
    IntersectionInterval,
    Message,
    NetworkInterval,
    ParkingOccupancy,
    ParkingTotals,
    RadarPasses,
    RedLightViolation,
    RunFinished,
    RunStarted,
    SignalPhase,
    TripTotals,
    Violation,
)

SUMMARY_KEYS = (
    "scenario",
    "controller",
    "seed",
    "begin_s",
    "end_s",
    "vehicles_departed",
    "vehicles_arrived",
    "mean_delay_s",
    "mean_travel_time_s",
    "mean_waiting_time_s",
    "mean_stops",
    "throughput_veh_h",
    "pedestrian_mean_delay_s",
    "bus_mean_delay_s",
    "co2_kg",
    "nox_g",
    "pm_g",
    "guard_violations",
    "guard_refusals",
    "control_share_min",
    "signals_degraded",
    "control_share_by_tls",
    "parking_occupancy_mean",
    "parking_search_time_mean_s",
    "parking_search_distance_mean_m",
    "parking_turnover_per_bay_h",
    "parking_overstay_rate",
    "public_space_efficiency",
    "public_space_efficiency_rotating_loading",
    "parking_rotating_peak_occupancy",
    "sensor_occupancy_accuracy",
    "speeding_rate",
    "radar_mean_speed_kmh",
    "red_light_violations_per_h",
    "violations_by_site",
    "incident_detection_delay_mean_s",
    "incident_false_alarms_per_h",
    "sign_warned_vehicles",
    "sign_reroutes",
    "sign_warned_travel_time_mean_s",
    "sign_rerouted_travel_time_mean_s",
    "sign_stayed_travel_time_mean_s",
    "sign_rerouted_unfinished",
    "sign_stayed_unfinished",
    "wall_time_s",
    "realtime_factor",
)
"""The keys of ``summary.json``, in order (the contract in DESIGN.md)."""

PEAK_WINDOW_S = 900.0
"""The peak of parking occupancy is the busiest quarter-hour (SFpark's and most parking
surveys' unit is the hour or less; a quarter-hour is what an hour-long run can show)."""

NETWORK = "network"
RUN = "run"
INTERVAL = "interval"


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


@dataclass
class _Cycles:
    """Counts completed signal cycles: a cycle ends when the phase index wraps around."""

    last: dict[str, tuple[str, int]] = field(default_factory=dict)
    ends: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def add(self, t: float, phase: SignalPhase) -> None:
        if phase.phase < 0:
            return  # changing between greens: the cycle goes on
        previous = self.last.get(phase.tls)
        if previous is not None and previous[0] == phase.program and phase.phase < previous[1]:
            self.ends[phase.tls].append(t)
        self.last[phase.tls] = (phase.program, phase.phase)

    def count(self, tls: str, begin: float, end: float) -> int:
        return sum(1 for t in self.ends.get(tls, ()) if begin < t <= end)


class KpiCollector:
    """Subscribes to the stream; :meth:`summary` and :meth:`timeseries` read what it gathered."""

    def __init__(self) -> None:
        self.started: RunStarted | None = None
        self.finished: RunFinished | None = None
        self.network: list[NetworkInterval] = []
        self.intersections: list[IntersectionInterval] = []
        self.approach_delays: list[ApproachDelay] = []
        self.emissions: list[EmissionsInterval] = []
        self.cycles = _Cycles()
        self.guard_violations = 0
        self.control: ControlShares | None = None
        self.parking: ParkingTotals | None = None
        self.rotating: list[tuple[float, float]] = []
        """(t, share of rotating bays truly occupied) once a minute."""
        self.deployed: dict[str, tuple[str, ...]] = {}
        self.violations: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.radar = [0, 0, 0.0]  # passes, speeding, speed sum (km/h)
        self.detection_delays: list[float] = []
        self.false_alarms = 0
        self.signs: InfoSignTotals | None = None

    def __call__(self, message: Message) -> None:
        payload = message.payload
        if isinstance(payload, SignalPhase):
            self.cycles.add(message.t, payload)
        elif isinstance(payload, NetworkInterval):
            self.network.append(payload)
        elif isinstance(payload, IntersectionInterval):
            self.intersections.append(payload)
        elif isinstance(payload, ApproachDelay):
            self.approach_delays.append(payload)
        elif isinstance(payload, EmissionsInterval):
            self.emissions.append(payload)
        elif isinstance(payload, GuardViolation):
            self.guard_violations += 1
        elif isinstance(payload, ControlShares):
            self.control = payload
        elif isinstance(payload, RunStarted):
            self.started = payload
        elif isinstance(payload, RunFinished):
            self.finished = payload
        elif isinstance(payload, ParkingTotals):
            self.parking = payload
        elif isinstance(payload, ParkingOccupancy):
            zones = [z for z in payload.zones if z.zone_kind == "rotating"]
            bays = sum(z.bays for z in zones)
            if bays:
                self.rotating.append((message.t, sum(z.occupied for z in zones) / bays))
        elif isinstance(payload, Violation):
            self.violations[payload.site][payload.kind.removeprefix("violation.")] += 1
        elif isinstance(payload, RadarPasses):
            self.radar[0] += payload.passes
            self.radar[1] += payload.speeding
            self.radar[2] += payload.speed_sum_kmh
        elif isinstance(payload, IncidentTotals):
            for match in payload.detections:
                if match.delay_s is not None:
                    self.detection_delays.append(match.delay_s)
                else:
                    self.false_alarms += 1
        elif isinstance(payload, DevicesDeployed):
            self.deployed[payload.device] = payload.sites
        elif isinstance(payload, InfoSignTotals):
            self.signs = payload

    # --- summary.json ------------------------------------------------------------------------

    def summary(
        self, *, scenario: str, controller: str, seed: int, wall_time_s: float
    ) -> dict[str, Any]:
        if self.started is None or self.finished is None:
            raise RuntimeError("the run has not finished: no run.started / run.finished message")
        start, end = self.started, self.finished
        trips = end.trips
        duration_s = start.end_s - start.begin_s
        departed = trips.count + end.running
        due = departed + end.pending
        delay_total = trips.time_loss_s + trips.depart_delay_s + end.running_delay_s
        delay_total += end.pending_delay_s
        values: dict[str, Any] = {
            "scenario": scenario,
            "controller": controller,
            "seed": seed,
            "begin_s": start.begin_s,
            "end_s": start.end_s,
            "vehicles_departed": departed,
            "vehicles_arrived": trips.count,
            "mean_delay_s": _ratio(delay_total, due),
            "mean_travel_time_s": _ratio(trips.duration_s, trips.count),
            "mean_waiting_time_s": _ratio(trips.waiting_time_s, trips.count),
            "mean_stops": _ratio(end.stops_total, departed),
            "throughput_veh_h": trips.count * 3600.0 / duration_s,
            "pedestrian_mean_delay_s": _ratio(end.persons.delay_s, end.persons.count),
            "bus_mean_delay_s": _ratio(end.buses.delay_s, end.buses.count),
            "co2_kg": sum(e.co2_g for e in self.emissions) / 1000.0,
            "nox_g": sum(e.nox_g for e in self.emissions),
            "pm_g": sum(e.pm_g for e in self.emissions),
            "guard_violations": self.guard_violations,
            **self._control_kpis(),
            **self._parking_kpis(),
            **self._device_kpis(duration_s),
            "wall_time_s": wall_time_s,
            "realtime_factor": duration_s / wall_time_s if wall_time_s > 0 else None,
        }
        return {key: values[key] for key in SUMMARY_KEYS}

    def _control_kpis(self) -> dict[str, Any]:
        """``guard_refusals``: requests the guard refused; ``control_share_by_tls``: per signal the
        part of the run under ccsim's control (0..1), ``control_share_min`` the lowest, and
        ``signals_degraded`` how many were out of control more than 5% of the run (all None when
        SUMO's own programs drove the signals)."""
        control = self.control
        shares = {} if control is None else {k: v for k, v in control.shares.items() if v is not None}
        return {
            "guard_refusals": 0 if control is None else control.refusals,
            "control_share_min": min(shares.values()) if shares else None,
            "signals_degraded": sum(1 for v in shares.values() if v < 0.95) if shares else None,
            "control_share_by_tls": shares or None,
        }

    def _parking_kpis(self) -> dict[str, float | None]:
        """Parking KPIs (None without parking); see sim/parking.py for what each measures."""
        p = self.parking
        if p is None or p.bays == 0 or p.duration_s <= 0:
            return dict.fromkeys(k for k in SUMMARY_KEYS if k.startswith(("parking_", "public_space"))
                                 or k == "sensor_occupancy_accuracy")  # fmt: skip
        bay_s = p.bays * p.duration_s
        return {
            "parking_occupancy_mean": p.occupied_bay_s / bay_s,
            "parking_search_time_mean_s": _ratio(p.search_time_s, p.parked),
            "parking_search_distance_mean_m": _ratio(p.search_distance_m, p.parked),
            "parking_turnover_per_bay_h": p.parked / p.bays / (p.duration_s / 3600.0),
            "parking_overstay_rate": _ratio(p.overstays, p.parked + p.initially_parked),
            "public_space_efficiency": p.legitimate_bay_s / bay_s,
            "public_space_efficiency_rotating_loading": _ratio(
                p.curb_legitimate_bay_s, p.curb_bays * p.duration_s
            ),
            "parking_rotating_peak_occupancy": self._rotating_peak(),
            "sensor_occupancy_accuracy": _ratio(p.sensor_agree, p.sensor_samples),
        }

    def _rotating_peak(self) -> float | None:
        """The highest mean share of rotating bays occupied over a ``PEAK_WINDOW_S`` window of
        the once-a-minute samples (the whole run's mean if it is shorter); None without them.

        A window counts when the samples were taken through it: it starts at a sample and the
        run went on to sample at least once more after it (the last window ends one sample
        interval after the last sample). Windows are judged by the samples, not by the end the
        run planned: a run stopped early has no windows of one or two samples at its end."""
        samples = self.rotating
        if not samples:
            return None
        spacing = samples[1][0] - samples[0][0] if len(samples) > 1 else PEAK_WINDOW_S
        covered = samples[-1][0] + spacing + 1e-6
        means = [
            statistics.fmean(v for t, v in samples if start <= t < start + PEAK_WINDOW_S)
            for start, _v in samples
            if start + PEAK_WINDOW_S <= covered
        ]
        return max(means) if means else statistics.fmean(v for _t, v in samples)

    def _device_kpis(self, duration_s: float) -> dict[str, Any]:
        """Field-device KPIs (see sim/devices/); None where the scenario has no such devices.

        ``speeding_rate``: speeding passes / all passes at the radar points; ``radar_mean_speed_kmh``
        their mean speed; ``red_light_violations_per_h`` over all enforcement sites;
        ``violations_by_site``: site -> violation kind -> count (junctions and radar edges);
        ``incident_detection_delay_mean_s``: mean time from an incident to its detection, over
        the incidents detected; ``incident_false_alarms_per_h``: detections that match no incident;
        ``sign_warned_vehicles``: drivers who passed an information sign warning of an incident on
        their way (dark signs: would have warned), ``sign_reroutes`` those of them who took
        another way, ``sign_warned_travel_time_mean_s`` their mean time from the sign to the end
        of their trip (s; None if nobody was warned); split by the draw, the same mean of those
        who went around, ``sign_rerouted_travel_time_mean_s``, and of those who stayed on their
        way, ``sign_stayed_travel_time_mean_s`` (s; None if the group is empty), and the number
        of each still on the road at the end, ``sign_rerouted_unfinished`` and
        ``sign_stayed_unfinished`` (their times are cut there). All None without signs.
        """
        passes, speeding, speed_sum = self.radar
        radar = "radar" in self.deployed
        enforcement = "enforcement" in self.deployed
        by_site: dict[str, dict[str, int]] | None = None
        if radar or enforcement:
            sites = [*self.deployed.get("enforcement", ()), *self.deployed.get("radar", ())]
            by_site = {site: dict(sorted(self.violations.get(site, {}).items())) for site in sites}
        red = sum(v.get(RedLightViolation.kind.removeprefix("violation."), 0)
                  for v in self.violations.values())  # fmt: skip
        delays = self.detection_delays
        return {
            "speeding_rate": _ratio(speeding, passes) if radar else None,
            "radar_mean_speed_kmh": _ratio(speed_sum, passes) if radar else None,
            "red_light_violations_per_h": red * 3600.0 / duration_s if enforcement else None,
            "violations_by_site": by_site,
            "incident_detection_delay_mean_s": sum(delays) / len(delays) if delays else None,
            "incident_false_alarms_per_h": (
                self.false_alarms * 3600.0 / duration_s if "incidents" in self.deployed else None
            ),
            **self._sign_kpis(),
        }

    def _sign_kpis(self) -> dict[str, Any]:
        signs = self.signs
        if signs is None:
            return dict.fromkeys(k for k in SUMMARY_KEYS if k.startswith("sign_"))
        stayed = signs.warned - signs.rerouted
        return {
            "sign_warned_vehicles": signs.warned,
            "sign_reroutes": signs.rerouted,
            "sign_warned_travel_time_mean_s": _ratio(signs.travel_time_s, signs.warned),
            "sign_rerouted_travel_time_mean_s": _ratio(signs.rerouted_travel_time_s, signs.rerouted),
            "sign_stayed_travel_time_mean_s": _ratio(
                signs.travel_time_s - signs.rerouted_travel_time_s, stayed
            ),
            "sign_rerouted_unfinished": signs.rerouted_unfinished,
            "sign_stayed_unfinished": signs.stayed_unfinished,
        }

    # --- timeseries.parquet --------------------------------------------------------------------

    def timeseries(self) -> list[dict[str, Any]]:
        """Tidy rows ``(period, begin_s, end_s, scope, metric, value)``.

        ``period`` is ``interval`` for each KPI interval (5 min by default) or ``run`` for the
        whole run; ``scope`` is ``network`` or ``tls:<id>``.
        """
        rows: list[dict[str, Any]] = []

        def add(period: str, begin: float, end: float, scope: str, metric: str, value: Any) -> None:
            rows.append(
                {"period": period, "begin_s": begin, "end_s": end, "scope": scope,
                 "metric": metric, "value": None if value is None else float(value)}
            )  # fmt: skip

        previous_trips = TripTotals(0, 0.0, 0.0, 0.0, 0.0, 0.0)
        previous_departed = 0
        for iv in self.network:
            trips = iv.trips
            finished = trips.count - previous_trips.count
            hours = (iv.end_s - iv.begin_s) / 3600.0
            delay = (trips.time_loss_s + trips.depart_delay_s) - (
                previous_trips.time_loss_s + previous_trips.depart_delay_s
            )
            for metric, value in (
                ("departed", iv.departed - previous_departed),
                ("arrived", finished),
                ("running", iv.running),
                ("pending", iv.pending),
                ("throughput_veh_h", finished / hours if hours else None),
                ("mean_delay_arrived_s", _ratio(delay, finished)),
                (
                    "mean_travel_time_s",
                    _ratio(trips.duration_s - previous_trips.duration_s, finished),
                ),
            ):
                add(INTERVAL, iv.begin_s, iv.end_s, NETWORK, metric, value)
            previous_trips, previous_departed = trips, iv.departed
        for em in self.emissions:
            add(INTERVAL, em.begin_s, em.end_s, NETWORK, "co2_kg", em.co2_g / 1000.0)
            add(INTERVAL, em.begin_s, em.end_s, NETWORK, "nox_g", em.nox_g)
            add(INTERVAL, em.begin_s, em.end_s, NETWORK, "pm_g", em.pm_g)

        queues: dict[str, list[IntersectionInterval]] = defaultdict(list)
        for ix in self.intersections:
            queues[ix.tls].append(ix)
            scope = f"tls:{ix.tls}"
            add(INTERVAL, ix.begin_s, ix.end_s, scope, "queue_mean_veh", ix.queue_mean_veh)
            add(INTERVAL, ix.begin_s, ix.end_s, scope, "queue_max_veh", ix.queue_max_veh)
            cycles = self.cycles.count(ix.tls, ix.begin_s, ix.end_s)
            add(INTERVAL, ix.begin_s, ix.end_s, scope, "cycles", cycles)
        delays: dict[str, list[ApproachDelay]] = defaultdict(list)
        for ad in self.approach_delays:
            delays[ad.tls].append(ad)
            scope = f"tls:{ad.tls}"
            add(INTERVAL, ad.begin_s, ad.end_s, scope, "vehicles", ad.vehicles)
            add(INTERVAL, ad.begin_s, ad.end_s, scope, "approach_delay_s", ad.delay_s)
        if self.started is not None:
            begin, end = self.started.begin_s, self.started.end_s
            for tls in sorted(queues):
                figures = self.intersection_run_figures(tls, queues[tls], delays.get(tls, []))
                for metric, value in figures.items():
                    add(RUN, begin, end, f"tls:{tls}", metric, value)
        return rows

    def intersection_run_figures(
        self, tls: str, queues: list[IntersectionInterval], delays: list[ApproachDelay]
    ) -> dict[str, float | None]:
        """Whole-run figures of one intersection from its interval messages."""
        vehicles = sum(d.vehicles for d in delays)
        delay = sum((d.delay_s or 0.0) * d.vehicles for d in delays)
        span = sum(q.end_s - q.begin_s for q in queues)
        queue_mean = sum(q.queue_mean_veh * (q.end_s - q.begin_s) for q in queues)
        return {
            "vehicles": vehicles,
            "approach_delay_s": _ratio(delay, vehicles),
            "queue_mean_veh": _ratio(queue_mean, span),
            "queue_max_veh": max(q.queue_max_veh for q in queues),
            "cycles": self.cycles.count(tls, queues[0].begin_s, queues[-1].end_s),
        }
