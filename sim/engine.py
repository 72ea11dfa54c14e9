"""The engine: a simpy Environment owns time and SUMO advances inside it as a process.

At each instant the SUMO step comes first (an urgent event), so every process that wakes at
``t`` - controllers, devices, the monitor's interval - sees the world as it is at ``t``; whatever
they command takes effect in the next step. Commands thus enter only at step boundaries.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import simpy
from simpy.events import URGENT

from sim.controllers import ControlContext, Controller
from sim.demand import repeat_demand
from sim.detectors import Detector, place_detectors, priority_types, write_detectors
from sim.devices import DeviceContext, FieldDevices
from sim.devices.config import InjectedIncident
from sim.devices.incidents import incident_problem
from sim.errors import ScenarioError
from sim.kpi import KpiCollector
from sim.lanes import LaneAccess
from sim.messages import (
    BayObserved,
    IncidentReported,
    Message,
    MessageBus,
    MessageLog,
    RunFinished,
    RunStarted,
    VehiclesArrived,
    VehiclesDeparted,
)
from sim.monitor import TrafficMonitor, approach_edge_data, approach_edges
from sim.network import Network, check_xml, read_network
from sim.parking import ParkingManager, read_zones
from sim.programs import add_programs
from sim.scenario import Scenario
from sim.sensor_profiles import load_profile
from sim.sensors import SensorLayer, StationReport
from sim.signals import (
    Command,
    ExternalShown,
    IncidentCommand,
    LaneCommand,
    PhaseControl,
    SignalCommand,
    SignalControl,
)
from sim.sumo import SumoWorld
from sim.sumo_outputs import read_approach_delays, read_emissions, read_total_stops

Progress = Callable[[float, float], None]
"""Called with (simulated seconds done, simulated seconds in all)."""


class _StepEvent(simpy.Event):
    """A timeout scheduled as URGENT, so the SUMO step at ``t`` precedes everything else at ``t``."""

    def __init__(self, env: simpy.Environment, delay: float) -> None:
        super().__init__(env)
        self._ok = True
        self._value = None
        env.schedule(self, URGENT, delay)


@dataclass
class RunResult:
    summary: dict[str, Any]
    timeseries: list[dict[str, Any]]
    log: MessageLog


class Simulation:
    """One run of a scenario with one controller and one seed. Times in s."""

    def __init__(
        self,
        scenario: Scenario,
        controller: Controller,
        *,
        seed: int,
        workdir: Path,
        gui: bool = False,
        begin_s: float | None = None,
        end_s: float | None = None,
        pace: Callable[[float], None] | None = None,
        scale: float = 1.0,
        keep_messages: bool = True,
    ) -> None:
        """``pace``, if given, is called once every step's time is over (all that happens at
        that time has run, just before the next SUMO step) with that time (s); a live run blocks
        in it to follow the wall clock (or to pause). ``scale`` multiplies the
        demand (SUMO's ``--scale``: 0.5 inserts every other vehicle, 2 each one twice), on top
        of the scenario's ``[run] demand_scale``.
        ``keep_messages`` False leaves :attr:`log` empty: a caller that writes the stream out as
        it goes (a live run, for hours) does not hold all of it in memory."""
        self.scenario = scenario
        self.controller = controller
        self.seed = seed
        # Absolute: SUMO resolves paths inside an additional file against that file's folder.
        self.workdir = workdir.resolve()
        self.gui = gui
        self.begin_s = scenario.begin_s if begin_s is None else begin_s
        self.end_s = scenario.end_s if end_s is None else end_s
        self.step_s = scenario.step_length_s
        self.scale = scale * scenario.demand_scale
        self.route_files = scenario.route_files
        """The route files SUMO runs: the scenario's, or their repeated copies in ``workdir``."""
        self.bus = MessageBus()
        self.log = MessageLog()
        self.kpi = KpiCollector()
        if keep_messages:
            self.bus.subscribe(self.log)
        self.bus.subscribe(self.kpi)
        self.sensor_profile = load_profile(scenario.sensor_profile, base=scenario.root)
        self.detectors: list[Detector] = []
        # A deque: commands may come from another thread (the control center's event loop).
        self._commands: deque[Command] = deque()
        self._bay_reports: deque[BayObserved] = deque()
        self._external: deque[ExternalShown] = deque()
        self._stations: deque[StationReport] = deque()
        self.stations_fed = False
        """Set by a caller that polls the scenario's external NTCIP stations and feeds
        :meth:`feed_station` (``ccsim serve``): only then do ``drive = true`` stations drive
        their signals' controllers."""
        self.bay_reports_fed = False
        """Set by a caller that feeds :meth:`report` (``ccsim serve --mqtt``): only then may a
        scenario's parking guidance use ingested uplinks."""
        self._stopping = False
        self.pace = pace
        self.signals: SignalControl | None = None
        self.sensors: SensorLayer | None = None
        self.monitor: TrafficMonitor | None = None
        self.network: Network | None = None
        self.parking: ParkingManager | None = None
        self.devices: FieldDevices | None = None
        self.lanes: LaneAccess | None = None
        """Who holds each lane closed (operators, incidents), once the run has begun."""

    def submit(self, command: Command) -> None:
        """Queue an operator command (thread-safe); it is applied at the next step boundary."""
        self._commands.append(command)

    def report(self, observed: BayObserved) -> None:
        """Queue a bay report ingested from the network (thread-safe); applied at the next step
        boundary."""
        self._bay_reports.append(observed)

    def show_external(self, report: ExternalShown) -> None:
        """Queue what an external controller in the loop shows (thread-safe); applied at the
        next step boundary."""
        self._external.append(report)

    def feed_station(self, report: StationReport) -> None:
        """Queue an external station's completed period (thread-safe); applied at the next
        step boundary."""
        self._stations.append(report)

    def apply_external(self, t: float) -> None:
        """Between steps, at ``t`` (the simulation thread only): what external controllers
        showed since, checked by their monitors and set in SUMO at once."""
        signals, monitor = self.signals, self.monitor
        if signals is None or monitor is None or not self._external:
            return
        while self._external:
            signals.show_external(t, self._external.popleft())
        signals.report_modes(t)
        if signals.step_external(t):
            monitor.check_signals(t)

    def stop(self) -> None:
        """End the run after the current step (thread-safe); outputs cover the time run."""
        self._stopping = True

    # --- preparation -------------------------------------------------------------------------

    def _validate(self) -> Network:
        network = read_network(self.scenario.net_file)
        for route_file in self.scenario.route_files:
            check_xml(route_file, "route")
        for add_file in self.scenario.additional_files:
            check_xml(add_file, "additional")
        add_programs(network, self.scenario.additional_files)
        return network

    def _write_measurement_file(self, network: Network) -> Path:
        root = ET.Element("additional")
        interval = self.scenario.kpi_interval_s
        if approach_edges(network):
            root.append(approach_edge_data(network, interval, str(self.workdir / "approaches.xml")))
        ET.SubElement(
            root,
            "edgeData",
            id="ccsim.emissions",
            type="emissions",
            period=f"{interval:g}",
            file=str(self.workdir / "emissions.xml"),
            excludeEmpty="true",
        )
        path = self.workdir / "ccsim-measure.add.xml"
        ET.indent(root)
        ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
        return path

    def sumo_options(self, extra_additional: list[Path]) -> list[str]:
        sc = self.scenario
        options: list[str] = []
        if sc.sumocfg is not None:
            options += ["-c", str(sc.sumocfg)]
        else:
            options += ["-n", str(sc.net_file)]
        if self.route_files and (sc.sumocfg is None or self.route_files != sc.route_files):
            # Given on the command line, route files replace the .sumocfg's list.
            options += ["-r", ",".join(str(p) for p in self.route_files)]
        # Given on the command line, additional files replace the .sumocfg's list: pass them all.
        additional = [*sc.additional_files, *extra_additional]
        options += ["-a", ",".join(str(p) for p in additional)]
        options += [
            "--begin", f"{self.begin_s:g}",
            "--end", f"{self.end_s:g}",
            "--step-length", f"{self.step_s:g}",
            "--seed", str(self.seed),
            "--scale", f"{self.scale:g}",
            "--no-step-log", "true",
            "--duration-log.disable", "true",
            "--tripinfo-output", str(self.workdir / "tripinfo.xml"),
            "--tripinfo-output.write-unfinished", "true",
            "--tripinfo-output.write-undeparted", "true",
            "--no-warnings", "true",
            "--log", str(self.workdir / "sumo.log"),
        ]  # fmt: skip
        return options

    # --- the run -------------------------------------------------------------------------------

    def run(self, progress: Progress | None = None) -> RunResult:
        self.workdir.mkdir(parents=True, exist_ok=True)
        network = self.network = self._validate()
        sc = self.scenario
        if sc.repeat_demand > 1:  # the repeated route files go into the run's folder
            self.route_files = repeat_demand(
                sc.route_files, sc.demand_period_s, sc.repeat_demand, self.workdir / "demand"
            )
        self.lanes = LaneAccess(network, self.bus)
        extra = [self._write_measurement_file(network)]
        extra += self.controller.additional_files(network, self.workdir)
        extra += self._build_devices(network)
        if self.controller.uses_detectors:
            types = priority_types([*sc.route_files, *sc.additional_files])
            self.detectors = place_detectors(network, sc.detectors, priority=sorted(types, key=str))
            extra.append(
                write_detectors(self.workdir / "detectors.add.xml", self.detectors, types=types)
            )

        world = SumoWorld(gui=self.gui)
        self.lanes.bind(world)
        wall_start = time.perf_counter()
        world.start(self.sumo_options(extra))
        try:
            monitor = self._run_world(world, network, progress)
            stopped = self._final_state(world, monitor)
        finally:
            world.close()
        wall_s = time.perf_counter() - wall_start

        t_end = self.end_s
        # SUMO's own measurement files are complete only once it has closed.
        for emissions in read_emissions(self.workdir / "emissions.xml"):
            self.bus.publish(t_end, "sumo", emissions)
        edge_tls = approach_edges(network)
        if edge_tls:
            for delay in read_approach_delays(self.workdir / "approaches.xml", edge_tls):
                self.bus.publish(t_end, f"tls:{delay.tls}", delay)
        if self.parking is not None:
            self.bus.publish(t_end, "parking", self.parking.finish(t_end, t_end - self.begin_s))
        if self.devices is not None:
            self.devices.finish(t_end)
        if self.signals is not None:
            self.signals.finish(t_end)
        stops = read_total_stops(self.workdir / "tripinfo.xml")
        self.bus.publish(t_end, "monitor", RunFinished(stops_total=stops, **stopped))

        summary = self.kpi.summary(
            scenario=self.scenario.name,
            controller=self.controller.name,
            seed=self.seed,
            wall_time_s=wall_s,
        )
        return RunResult(summary=summary, timeseries=self.kpi.timeseries(), log=self.log)

    def _run_world(
        self, world: SumoWorld, network: Network, progress: Progress | None
    ) -> TrafficMonitor:
        env = simpy.Environment(initial_time=self.begin_s)
        tls_ids = [t for t in world.traffic_light_ids() if t in network.traffic_lights]
        monitor = TrafficMonitor(
            world=world, bus=self.bus, step_length_s=self.step_s, interval_begin_s=self.begin_s
        )
        self.bus.publish(
            self.begin_s,
            "engine",
            RunStarted(
                scenario=self.scenario.name,
                controller=self.controller.name,
                seed=self.seed,
                begin_s=self.begin_s,
                end_s=self.end_s,
                step_length_s=self.step_s,
                sumo_version=world.version,
                variant=self.scenario.variant,
            ),
        )
        monitor.attach(network, tls_ids)
        self.monitor = monitor
        signals = SignalControl(network, world, self.bus, self.step_s, self.scenario.clearance)
        signals.announce(self.begin_s)
        monitor.on_signal = signals.observe
        sensors: SensorLayer | None = None
        if self.controller.uses_detectors:
            sensors = SensorLayer(
                world,
                self.detectors,
                self.sensor_profile,
                self.scenario.detectors.reporting_period_s,
                bus=self.bus,
                seed=self.seed,
            )
            sensors.attach(self.begin_s)
            if self.stations_fed:
                for binding in self.scenario.ntcip_stations:
                    if binding.drive:
                        sensors.drive_externally(binding.signal)
            self.sensors = sensors
            signals.take_over(self.begin_s, {tls: world.signal_state(tls) for tls in signals.guards})
            monitor.phase_of = signals.phase_shown
            env.process(self._drive_signals(env, sensors, signals))
        signals.report_modes(self.begin_s)
        self.signals = signals
        self.parking = self._start_parking(env, world, network)
        if self.devices is not None:
            self.devices.start(env, world)
        self.controller.start(
            ControlContext(
                env=env,
                bus=self.bus,
                network=network,
                step_s=self.step_s,
                signals=signals,
                sensors=sensors,
                set_program=world.set_program,
            )
        )
        n_steps = round((self.end_s - self.begin_s) / self.step_s)
        interval_steps = max(1, round(self.scenario.kpi_interval_s / self.step_s))
        report_every = max(1, round(60.0 / self.step_s))
        total = self.end_s - self.begin_s

        def advance() -> Generator[simpy.Event, Any, None]:
            paced: float | None = None  # the step whose time is over but not yet paced
            for k in range(1, n_steps + 1):
                target = self.begin_s + k * self.step_s
                yield _StepEvent(env, target - env.now)
                # The step is URGENT, so everything at the previous time (detectors, controllers,
                # devices) has run: pacing it now lets its flush carry all that is stamped then.
                if paced is not None and self.pace is not None:
                    self.pace(paced)
                world.step()
                t = world.time
                monitor.on_step(t)
                last = k == n_steps or self._stopping
                if k % interval_steps == 0 or last:
                    monitor.on_interval(t)
                    signals.check_degraded(t)
                while self._commands:
                    self._apply(t, self._commands.popleft(), signals)
                while self._external:
                    signals.show_external(t, self._external.popleft())
                if signals.external:
                    signals.check_silence(t)
                signals.report_modes(t)
                while self._stations:
                    station = self._stations.popleft()
                    if self.sensors is not None:
                        self.sensors.feed_station(t, station)
                while self._bay_reports:
                    report = self._bay_reports.popleft()
                    if self.parking is not None:
                        self.parking.observe(t, report)
                if progress is not None and (k % report_every == 0 or last):
                    progress(t - self.begin_s, total)
                if last:
                    if self.pace is not None:
                        self.pace(t)
                    self.end_s = t
                    return
                paced = t

        env.run(until=env.process(advance()))
        return monitor

    def _apply(self, t: float, command: Command, signals: SignalControl) -> None:
        if isinstance(command, SignalCommand):
            signals.command(t, command)
            return
        if isinstance(command, PhaseControl):
            if signals.phase_control(t, command) and self.sensors is not None:
                self.sensors.set_standing_calls(command.tls, command.call_lanes)
            return
        if isinstance(command, LaneCommand):
            lanes = self.lanes
            assert lanes is not None  # built before SUMO starts
            if command.closed:
                lanes.close(t, command.lane, command.user, command.command)
            else:
                lanes.open(t, command.lane, command.user, command.command)
            return
        self._report_incident(t, command)

    def _report_incident(self, t: float, command: IncidentCommand) -> None:
        """An operator's incident: refused here when it cannot be (no incident model, not on
        the net), else it occurs in this step, answered by the incident model."""
        incidents = self.devices.incidents if self.devices is not None else None
        if incidents is None:
            detail = "no incident model in this run: the scenario needs [devices.incidents]"
        elif self.network is not None and (problem := incident_problem(
            self.network, command.edge, command.lane, command.pos_m, command.duration_s, command.cause
        )) is not None:  # fmt: skip
            detail = str(problem)
        else:
            incident = InjectedIncident(t, command.edge, command.lane, command.pos_m,
                                        command.duration_s, command.cause)  # fmt: skip
            incidents.submit(incident, command.user, command.command)
            return
        refused = IncidentReported("", command.cause, command.edge, command.lane_id, command.pos_m,
                                   command.duration_s, command.user, False, detail,
                                   command.command)  # fmt: skip
        self.bus.publish(t, "incidents", refused)

    def _start_parking(
        self, env: simpy.Environment, world: SumoWorld, network: Network
    ) -> ParkingManager | None:
        config = self.scenario.parking
        if config is None:
            return None
        zones = read_zones(list(self.scenario.additional_files), network)
        if not zones:
            return None
        if config.bay_sensor_source == "uplinks" and not self.bay_reports_fed:
            raise ScenarioError(
                self.scenario.source or self.scenario.root,
                "guidance from ingested uplinks needs the sensors' network: run it with "
                "ccsim serve --mqtt",
                field="parking.bay_sensor_source",
                value="uplinks",
            )
        manager = ParkingManager(config, zones, world, self.bus, self.seed)
        manager.bind_network(network)
        manager.fill_initially()
        arrived: list[str] = []

        def listen(message: Message) -> None:
            payload = message.payload
            if isinstance(payload, VehiclesDeparted):
                for vehicle in payload.ids:
                    manager.on_departed(message.t, vehicle, world.vehicle_class(vehicle))
            elif isinstance(payload, VehiclesArrived):
                arrived.extend(payload.ids)

        def run() -> Generator[simpy.Event, Any, None]:
            while True:
                yield env.timeout(self.step_s)
                manager.on_step(env.now, tuple(arrived))
                arrived.clear()

        self.bus.subscribe(listen)
        env.process(run())
        return manager

    def _build_devices(self, network: Network) -> list[Path]:
        """The scenario's field devices (``[devices]``), and the SUMO file declaring their
        detectors and driver types; they start as simpy processes once SUMO runs."""
        sc = self.scenario
        if sc.devices is None:
            return []
        context = DeviceContext(
            network=network,
            bus=self.bus,
            seed=self.seed,
            step_s=self.step_s,
            begin_s=self.begin_s,
            source=sc.source or sc.root,
            vehicle_files=(*sc.route_files, *sc.additional_files),
            lanes=self.lanes,
        )
        self.devices = FieldDevices(sc.devices, context)
        return [self.devices.write_additional(self.workdir / "devices.add.xml")]

    def _drive_signals(
        self, env: simpy.Environment, sensors: SensorLayer, signals: SignalControl
    ) -> Generator[simpy.Event, Any, None]:
        """Each step, after SUMO's (and the operator commands): sensors report, the controller
        decides, and the guard shows the result."""
        while True:
            yield env.timeout(self.step_s)
            t = env.now
            sensors.update(t)
            self.controller.on_step(t)
            signals.step(t)

    def _final_state(self, world: SumoWorld, monitor: TrafficMonitor) -> dict[str, Any]:
        """What is still on the road or waiting at the end (must be read before SUMO closes)."""
        # Vehicles in the middle of a teleport are off the road but still on their trip.
        running = (*world.running_ids(), *sorted(monitor.teleporting))
        pending = monitor.undeparted_delays()
        return {
            "trips": world.trip_totals(),
            "running": len(running),
            "running_delay_s": sum(world.time_loss(v) + world.depart_delay(v) for v in running),
            "pending": len(pending),
            "pending_delay_s": sum(pending),
            "buses": monitor.bus_totals(),
            "persons": monitor.person_totals(),
        }
