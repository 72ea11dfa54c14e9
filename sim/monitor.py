"""Ground-truth measurement of a run: what the KPIs are computed from.

The monitor reads SUMO each step (through subscriptions) and speaks on the message stream:
departures and arrivals, signal phase changes, and at every KPI interval the network counters
and each intersection's approach delay and queues. Controllers never see any of this; they get
detector observations only.

Per-intersection queues are the halting vehicles on each signal's incoming lanes, sampled every
step. Approach delay is measured by SUMO itself (an ``edgeData`` on the incoming edges, which
counts vehicles inserted on an approach too) and read when the run closes.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field

from sim.messages import (
    FleetTotals,
    IntersectionInterval,
    MessageBus,
    NetworkInterval,
    SignalPhase,
    VehiclesArrived,
    VehiclesDeparted,
    VehiclesTeleported,
)
from sim.network import Network
from sim.sumo import SignalState, SumoWorld

SOURCE = "monitor"


def approach_edges(network: Network) -> dict[str, str]:
    """Incoming vehicle edge -> the signal it feeds."""
    edges: dict[str, str] = {}
    for tls in network.traffic_lights.values():
        for lane in tls.incoming_lanes(network):
            edges.setdefault(lane.edge, tls.id)
    return edges


def approach_edge_data(network: Network, period_s: float, path: str) -> ET.Element:
    """SUMO ``edgeData`` over every approach edge, written every ``period_s`` to ``path``."""
    return ET.Element(
        "edgeData",
        id="ccsim.approaches",
        period=f"{period_s:g}",
        file=path,
        edges=" ".join(sorted(approach_edges(network))),
        excludeEmpty="false",
    )


@dataclass
class _QueueStats:
    samples: int = 0
    total: int = 0
    peak: int = 0

    def add(self, halting: int) -> None:
        self.samples += 1
        self.total += halting
        self.peak = max(self.peak, halting)


@dataclass
class TrafficMonitor:
    """Publishes what happened in SUMO; see the module docstring. Times in s."""

    world: SumoWorld
    bus: MessageBus
    step_length_s: float
    interval_begin_s: float
    departed: int = 0
    arrived: int = 0
    persons_departed: int = 0
    person_waiting_s: float = 0.0
    buses: FleetTotals = field(default_factory=lambda: FleetTotals(0, 0.0))
    phase_of: Callable[[str, str], tuple[int, int | None]] | None = None
    """Where ccsim (not SUMO's program) drives: (the green phase a signal's shown state is, -1
    while changing; the phase the guard is moving to), from its id and its state in SUMO."""
    on_signal: Callable[[float, str, str], None] | None = None
    """Told of every state a signal shows (the guard checks SUMO's own programs with it)."""
    _signals: dict[str, SignalState] = field(default_factory=dict)
    _queues: dict[str, _QueueStats] = field(default_factory=dict)
    _lanes: list[str] = field(default_factory=list)
    _lane_tls: list[str] = field(default_factory=list)
    _bus_depart_delay: dict[str, float] = field(default_factory=dict)
    _bus_time_loss: dict[str, float] = field(default_factory=dict)
    teleporting: set[str] = field(default_factory=set)
    _walking: set[str] = field(default_factory=set)
    waiting: set[str] = field(default_factory=set)

    def attach(self, network: Network, tls_ids: list[str]) -> None:
        """Subscribe to what the monitor reads each step."""
        self.world.watch_signals(tls_ids)
        pairs = [
            (lane.id, tls)
            for tls in tls_ids
            for lane in network.traffic_lights[tls].incoming_lanes(network)
        ]
        self._lanes = [lane for lane, _ in pairs]
        self._lane_tls = [tls for _, tls in pairs]
        self._queues = {tls: _QueueStats() for tls in tls_ids}
        self._note_loaded()

    def _note_loaded(self) -> None:
        # Loaded but not yet departed: the candidates for "due but never inserted" at the end.
        self.waiting.update(self.world.loaded_ids())

    def on_step(self, t: float) -> None:
        """Read one step of SUMO; called right after every ``simulationStep``."""
        world, bus = self.world, self.bus
        self._note_loaded()
        departed = world.departed_ids()
        if departed:
            self.departed += len(departed)
            self.waiting.difference_update(departed)
            bus.publish(t, SOURCE, VehiclesDeparted(departed))
            for vehicle in departed:
                if world.vehicle_class(vehicle) == "bus":
                    self._bus_depart_delay[vehicle] = world.depart_delay(vehicle)
        arrived = world.arrived_ids()
        if arrived:
            self.arrived += len(arrived)
            bus.publish(t, SOURCE, VehiclesArrived(arrived))
            for vehicle in arrived:
                if vehicle in self._bus_depart_delay:
                    self._close_bus(vehicle)
        # A bus's time loss is read each step, so the last value before it arrives is known to
        # within one step (an arrived vehicle can no longer be asked).
        for vehicle in self._bus_depart_delay:
            self._bus_time_loss[vehicle] = world.time_loss(vehicle)
        teleported = world.teleport_started_ids()
        if teleported:
            self.teleporting.update(teleported)
            bus.publish(t, SOURCE, VehiclesTeleported(teleported))
        if self.teleporting:
            self.teleporting.difference_update(world.teleport_ended_ids())
            self.teleporting.difference_update(arrived)
        persons = world.departed_person_ids()
        self.persons_departed += len(persons)
        self._walking.update(persons)
        if self._walking:
            self._walking.difference_update(world.arrived_person_ids())
            self.person_waiting_s += world.persons_standing(self._walking) * self.step_length_s
        self.check_signals(t)
        halting: dict[str, int] = dict.fromkeys(self._queues, 0)
        for tls, count in zip(self._lane_tls, world.lane_halting(self._lanes), strict=True):
            halting[tls] += count
        for tls, count in halting.items():
            self._queues[tls].add(count)

    def check_signals(self, t: float) -> None:
        """Publish the signals whose state in SUMO changed (after a step, or after a state was set
        between steps)."""
        for tls, state in self.world.signal_states().items():
            last = self._signals.get(tls)
            if last is None or last.state != state.state or last.program != state.program:
                self._signals[tls] = state
                phase, target = (
                    (state.phase, None) if self.phase_of is None else self.phase_of(tls, state.state)
                )
                self.bus.publish(
                    t, f"tls:{tls}", SignalPhase(tls, state.program, phase, state.state, target)
                )
                if self.on_signal is not None:
                    self.on_signal(t, tls, state.state)

    def _close_bus(self, vehicle: str) -> None:
        delay = self._bus_depart_delay.pop(vehicle) + self._bus_time_loss.pop(vehicle, 0.0)
        self.buses = FleetTotals(self.buses.count + 1, self.buses.delay_s + delay)

    def bus_totals(self) -> FleetTotals:
        """All buses that departed: arrived ones plus those still driving (time loss so far)."""
        running = sum(
            self._bus_depart_delay[v] + self._bus_time_loss.get(v, 0.0) for v in self._bus_depart_delay
        )
        return FleetTotals(self.buses.count + len(self._bus_depart_delay), self.buses.delay_s + running)

    def undeparted_delays(self) -> list[float]:
        """Waits (s) of vehicles due by now (intended departure <= now) but never inserted (not
        those a demand scaled below 1 left out: SUMO loaded them, but they were never due)."""
        delays = self.world.depart_delays(sorted(self.waiting))
        return [d for d in delays if d >= 0.0]

    def person_totals(self) -> FleetTotals:
        """Persons that set off, and the seconds they spent standing (waiting to cross)."""
        return FleetTotals(self.persons_departed, self.person_waiting_s)

    def on_interval(self, t: float) -> None:
        """Publish the counters of the KPI interval that ends at ``t`` and start the next."""
        world, bus = self.world, self.bus
        begin = self.interval_begin_s
        bus.publish(
            t,
            SOURCE,
            NetworkInterval(
                begin_s=begin,
                end_s=t,
                departed=self.departed,
                arrived=self.arrived,
                running=self.departed - self.arrived,
                pending=len(world.pending_ids()),
                trips=world.trip_totals(),
                persons_departed=self.persons_departed,
                person_waiting_s=self.person_waiting_s,
            ),
        )
        for tls, queue in self._queues.items():
            bus.publish(
                t,
                f"tls:{tls}",
                IntersectionInterval(
                    tls=tls,
                    begin_s=begin,
                    end_s=t,
                    queue_mean_veh=queue.total / queue.samples if queue.samples else 0.0,
                    queue_max_veh=queue.peak,
                ),
            )
            self._queues[tls] = _QueueStats()
        self.interval_begin_s = t
