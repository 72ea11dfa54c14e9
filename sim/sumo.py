"""The one seam to SUMO: the only module that imports libsumo or traci.

libsumo (SUMO in-process, one simulation per process) is the default because it is many times
faster than TraCI's socket for per-step queries. ``gui=True`` runs ``sumo-gui`` through TraCI.
Both speak the same API, so the world holds whichever module is in use.

Per-step reads are direct calls: with libsumo they cost well under a microsecond each, while a
subscription costs several per value per step.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from sim.errors import SimulationError
from sim.messages import TripTotals


def sumo_home() -> Path:
    """SUMO_HOME of the ``eclipse-sumo`` wheel (binaries and tools), else of the environment.

    The wheel comes first: importing libsumo sets the environment's SUMO_HOME to the
    ``sumo-data`` package, which holds data files but no binaries.
    """
    try:
        sumo = importlib.import_module("sumo")
        return Path(sumo.SUMO_HOME)
    except (ImportError, AttributeError):
        env = os.environ.get("SUMO_HOME")
        if env:
            return Path(env)
        raise SimulationError("SUMO is not installed: no eclipse-sumo wheel, no SUMO_HOME") from None


def sumo_binary(name: str = "sumo") -> Path:
    """Path of a SUMO executable (``sumo``, ``sumo-gui``, ``netconvert``...)."""
    return sumo_home() / "bin" / name


@dataclass(frozen=True)
class SignalState:
    program: str
    phase: int
    state: str


class SumoWorld:
    """A running SUMO simulation. Create, :meth:`start`, :meth:`step` repeatedly, :meth:`close`."""

    def __init__(self, *, gui: bool = False) -> None:
        self.gui = gui
        self._api: Any = None
        self._tls_ids: list[str] = []

    # --- life cycle ------------------------------------------------------------------------

    def start(self, options: Sequence[str]) -> None:
        """Start SUMO with command-line ``options`` (without the binary)."""
        api: ModuleType
        if self.gui:
            api = importlib.import_module("traci")
            cmd = [str(sumo_binary("sumo-gui")), "--start", "--quit-on-end", *options]
        else:
            api = importlib.import_module("libsumo")
            cmd = [str(sumo_binary("sumo")), *options]
        try:
            api.start(cmd)
        except Exception as exc:  # libsumo raises TraCIException, traci FatalTraCIError
            raise SimulationError(f"SUMO refused the scenario: {_one_line(exc)}") from None
        self._api = api

    def close(self) -> None:
        if self._api is not None:
            api, self._api = self._api, None
            api.close()

    @property
    def version(self) -> str:
        return str(self._require().getVersion()[1])

    @property
    def time(self) -> float:
        return float(self._require().simulation.getTime())

    def step(self) -> None:
        """Advance SUMO by one step."""
        try:
            self._require().simulationStep()
        except Exception as exc:
            raise SimulationError(f"SUMO failed at t={self.time:g}s: {_one_line(exc)}") from None

    def _require(self) -> Any:
        if self._api is None:
            raise RuntimeError("SUMO is not running")
        return self._api

    # --- vehicles and persons --------------------------------------------------------------

    def loaded_ids(self) -> tuple[str, ...]:
        """Vehicles SUMO read from the demand in the last step (before or at start: at init)."""
        return tuple(self._require().simulation.getLoadedIDList())

    def departed_ids(self) -> tuple[str, ...]:
        return tuple(self._require().simulation.getDepartedIDList())

    def arrived_ids(self) -> tuple[str, ...]:
        return tuple(self._require().simulation.getArrivedIDList())

    def teleport_started_ids(self) -> tuple[str, ...]:
        """Vehicles SUMO took off the road in the last step to resolve a jam (they come back)."""
        return tuple(self._require().simulation.getStartingTeleportIDList())

    def teleport_ended_ids(self) -> tuple[str, ...]:
        return tuple(self._require().simulation.getEndingTeleportIDList())

    def departed_person_ids(self) -> tuple[str, ...]:
        return tuple(self._require().simulation.getDepartedPersonIDList())

    def vehicle_class(self, vehicle: str) -> str:
        return str(self._require().vehicle.getVehicleClass(vehicle))

    def depart_delay(self, vehicle: str) -> float:
        """Actual minus intended departure (s); for a vehicle not yet inserted, now minus intended."""
        return float(self._require().vehicle.getDepartDelay(vehicle))

    def depart_delays(self, vehicles: Iterable[str]) -> list[float]:
        """:meth:`depart_delay` of each of ``vehicles`` SUMO still knows (one that ``--scale``
        left out it loaded, then dropped)."""
        api = self._require()
        delays = []
        for vehicle in vehicles:
            try:
                delays.append(float(api.vehicle.getDepartDelay(vehicle)))
            except api.TraCIException:
                continue
        return delays

    def running_ids(self) -> tuple[str, ...]:
        return tuple(self._require().vehicle.getIDList())

    def time_loss(self, vehicle: str) -> float:
        return float(self._require().vehicle.getTimeLoss(vehicle))

    def pending_ids(self) -> tuple[str, ...]:
        """Vehicles that are due but could not be inserted yet."""
        return tuple(self._require().simulation.getPendingVehicles())

    def arrived_person_ids(self) -> tuple[str, ...]:
        return tuple(self._require().simulation.getArrivedPersonIDList())

    def persons_standing(self, persons: Iterable[str]) -> int:
        """How many of ``persons`` are standing still right now (waiting to cross, mostly)."""
        waiting = self._require().person.getWaitingTime
        return sum(1 for p in persons if waiting(p) > 0.0)

    def trip_totals(self) -> TripTotals:
        """Totals over arrived vehicles from SUMO's tripinfo device (means times count)."""
        param = self._require().simulation.getParameter
        count = int(float(param("", "device.tripinfo.count")))

        def total(attr: str) -> float:
            return count * float(param("", f"device.tripinfo.{attr}")) if count else 0.0

        return TripTotals(
            count=count,
            time_loss_s=total("timeLoss"),
            depart_delay_s=float(param("", "device.tripinfo.totalDepartDelay")) if count else 0.0,
            duration_s=float(param("", "device.tripinfo.totalTravelTime")) if count else 0.0,
            waiting_time_s=total("waitingTime"),
            route_length_m=total("routeLength"),
        )

    # --- traffic lights --------------------------------------------------------------------

    def traffic_light_ids(self) -> tuple[str, ...]:
        return tuple(self._require().trafficlight.getIDList())

    def watch_signals(self, tls_ids: Iterable[str]) -> None:
        self._tls_ids = list(tls_ids)

    def signal_states(self) -> dict[str, SignalState]:
        """Program, phase index and state of every watched signal, now."""
        tl = self._require().trafficlight
        return {
            tls: SignalState(tl.getProgram(tls), tl.getPhase(tls), tl.getRedYellowGreenState(tls))
            for tls in self._tls_ids
        }

    def signal_state(self, tls: str) -> str:
        return str(self._require().trafficlight.getRedYellowGreenState(tls))

    def set_program(self, tls: str, program: str) -> None:
        self._require().trafficlight.setProgram(tls, program)

    # --- lanes ------------------------------------------------------------------------------

    def lane_halting(self, lane_ids: Sequence[str]) -> list[int]:
        """Halting vehicles (speed < 0.1 m/s) on each lane, this step."""
        halting = self._require().lane.getLastStepHaltingNumber
        return [halting(lane) for lane in lane_ids]

    # --- detectors ---------------------------------------------------------------------------

    def loop_interval_counts(self, loop_ids: Sequence[str]) -> list[int]:
        """Vehicles that have reached each induction loop since its current interval began."""
        count = self._require().inductionloop.getIntervalVehicleNumber
        return [count(loop) for loop in loop_ids]

    def loops_vehicle_ids(self, loop_ids: Sequence[str]) -> list[tuple[str, ...]]:
        """The vehicles over each induction loop during the last step."""
        ids = self._require().inductionloop.getLastStepVehicleIDs
        return [ids(loop) for loop in loop_ids]

    def loop_gaps(self, loop_ids: Sequence[str]) -> list[float]:
        """Seconds since each induction loop was last occupied (0 while a vehicle is on it)."""
        since = self._require().inductionloop.getTimeSinceDetection
        return [since(loop) for loop in loop_ids]

    def area_counts(self, area_ids: Sequence[str]) -> list[tuple[int, int, float]]:
        """(vehicles present, vehicles halting, occupancy %) in each lane-area detector, now."""
        area = self._require().lanearea
        present, halting = area.getLastStepVehicleNumber, area.getLastStepHaltingNumber
        occupancy = area.getLastStepOccupancy
        return [(present(a), halting(a), occupancy(a)) for a in area_ids]

    def set_lane_access(
        self, lane: str, *, allowed: list[str] | None, disallowed: list[str] | None
    ) -> None:
        """Set who may use ``lane``: only ``allowed`` classes, or everyone but ``disallowed``."""
        api = self._require()
        if allowed is not None:
            api.lane.setAllowed(lane, allowed)
        else:
            api.lane.setDisallowed(lane, disallowed or [])

    def lane_allowed(self, lane: str) -> tuple[str, ...]:
        """The vehicle classes SUMO lets onto ``lane`` now (empty: every class)."""
        return tuple(self._require().lane.getAllowed(lane))

    # --- parking -------------------------------------------------------------------------------

    def route(self, vehicle: str) -> tuple[str, ...]:
        return tuple(self._require().vehicle.getRoute(vehicle))

    def road(self, vehicle: str) -> str:
        return str(self._require().vehicle.getRoadID(vehicle))

    def odometer(self, vehicle: str) -> float:
        """Distance driven so far, m."""
        return float(self._require().vehicle.getDistance(vehicle))

    def send_to_parking(self, vehicle: str, area: str, area_edge: str, duration_s: float) -> bool:
        """Route ``vehicle`` to park in ``area`` for ``duration_s`` (replacing any parking stop).

        False if SUMO refuses (the area is behind the vehicle on its street); the vehicle may then
        be left with ``area_edge`` as its target, to be set back by the caller.
        """
        api = self._require()
        try:
            if any(stop.stoppingPlaceID for stop in api.vehicle.getStops(vehicle)):
                api.vehicle.rerouteParkingArea(vehicle, area)
            else:
                api.vehicle.changeTarget(vehicle, area_edge)
                api.vehicle.setParkingAreaStop(vehicle, area, duration_s)
        except api.TraCIException:
            return False
        return True

    def add_parked(
        self, vehicle: str, area: str, area_edge: str, vclass: str, duration_s: float
    ) -> bool:
        """Insert ``vehicle`` in a bay of ``area`` (on ``area_edge``), to stay ``duration_s``: a
        car parked before the run. Its type is the scenario's first of ``vclass`` (SUMO's default
        type if it has none). False if SUMO refuses."""
        api = self._require()
        types = sorted(
            t
            for t in api.vehicletype.getIDList()
            if not t.startswith("DEFAULT_") and api.vehicletype.getVehicleClass(t) == vclass
        )
        try:
            api.route.add(f"{vehicle}.route", [area_edge])
            api.vehicle.add(vehicle, f"{vehicle}.route", typeID=types[0] if types else "DEFAULT_VEHTYPE",
                            depart="now", departPos="stop")  # fmt: skip
        except api.TraCIException:
            return False
        try:
            api.vehicle.setParkingAreaStop(vehicle, area, duration_s)
        except api.TraCIException:
            api.vehicle.remove(vehicle)
            return False
        return True

    def change_target(self, vehicle: str, edge: str) -> bool:
        """Send ``vehicle`` on to ``edge``; False (and its route kept) when ``edge`` cannot be
        reached from where it is now (a parked car on a dead-end street beyond its junction)."""
        api = self._require()
        try:
            api.vehicle.changeTarget(vehicle, edge)
        except api.TraCIException:
            return False
        return True

    def parking_started_ids(self) -> tuple[str, ...]:
        return tuple(self._require().simulation.getParkingStartingVehiclesIDList())

    def parking_ended_ids(self) -> tuple[str, ...]:
        return tuple(self._require().simulation.getParkingEndingVehiclesIDList())

    def parked_count(self, area: str) -> int:
        return int(self._require().parkingarea.getVehicleCount(area))

    def set_signal_state(self, tls: str, state: str) -> None:
        """Show ``state`` at ``tls`` from now on (SUMO's own program stops driving it)."""
        self._require().trafficlight.setRedYellowGreenState(tls, state)

    # --- field devices -------------------------------------------------------------------------

    def vehicle_type(self, vehicle: str) -> str:
        return str(self._require().vehicle.getTypeID(vehicle))

    def set_vehicle_type(self, vehicle: str, type_id: str) -> None:
        self._require().vehicle.setType(vehicle, type_id)

    def speed_factor(self, vehicle: str) -> float:
        return float(self._require().vehicle.getSpeedFactor(vehicle))

    def set_speed_factor(self, vehicle: str, factor: float) -> None:
        """The driver aims at ``factor`` times each speed limit from now on."""
        self._require().vehicle.setSpeedFactor(vehicle, factor)

    def vehicle_speed(self, vehicle: str) -> float:
        """m/s"""
        return float(self._require().vehicle.getSpeed(vehicle))

    def vehicle_on_lane(self, vehicle: str) -> tuple[float, float, float]:
        """(position of the front on its lane, length, speed) in m and m/s."""
        v = self._require().vehicle
        return float(v.getLanePosition(vehicle)), float(v.getLength(vehicle)), float(v.getSpeed(vehicle))

    def loop_vehicle_ids(self, loop: str) -> tuple[str, ...]:
        """Vehicles over induction loop ``loop`` during the last step."""
        return tuple(self._require().inductionloop.getLastStepVehicleIDs(loop))

    def lane_vehicle_ids(self, lane: str) -> tuple[str, ...]:
        """Vehicles on ``lane`` (internal junction lanes too), now."""
        return tuple(self._require().lane.getLastStepVehicleIDs(lane))

    def edge_emissions(self, edges: Sequence[str]) -> list[tuple[float, float, float]]:
        """(CO2, NOx, PMx) emitted on each edge during the last step, mg."""
        edge = self._require().edge
        co2, nox, pmx = edge.getCO2Emission, edge.getNOxEmission, edge.getPMxEmission
        return [(co2(e), nox(e), pmx(e)) for e in edges]

    def edge_person_count_ids(self, edge: str) -> tuple[str, ...]:
        """Persons on ``edge`` (a crossing) now; callers keep only counts."""
        return tuple(self._require().edge.getLastStepPersonIDs(edge))

    def collisions(self) -> list[tuple[str, str, str, float]]:
        """Collisions in the last step: (collider, victim, lane, position m)."""
        return [
            (c.collider, c.victim, c.lane, float(c.pos))
            for c in self._require().simulation.getCollisions()
        ]

    def collision_stand_s(self) -> float:
        """How long SUMO keeps vehicles that collided standing where they are (s): its
        ``collision.stoptime``, 0 unless SUMO lets them stand (``collision.action`` none)."""
        api = self._require()
        if api.simulation.getOption("collision.action") == "none":
            return 0.0
        return float(api.simulation.getOption("collision.stoptime"))

    def add_stopped_vehicle(
        self, vehicle: str, edge: str, lane: int, pos_m: float, until_s: float
    ) -> None:
        """Insert ``vehicle`` standing on lane index ``lane`` of ``edge`` at ``pos_m`` until
        ``until_s`` (a broken-down car), then remove it."""
        api = self._require()
        route = f"{vehicle}.route"
        api.route.add(route, [edge])
        api.vehicle.add(vehicle, route, typeID="DEFAULT_VEHTYPE", departLane=str(lane),
                        departPos=f"{pos_m:g}", departSpeed="0")  # fmt: skip
        # A stop with ``until`` alone never ends in SUMO (its duration defaults to "for ever");
        # with a zero duration it ends at ``until``.
        api.vehicle.setStop(vehicle, edge, pos=pos_m, laneIndex=lane, duration=0.0, until=until_s)

    def fastest_route(self, from_edge: str, to_edge: str) -> tuple[str, ...]:
        """The edges of the fastest route between two edges now (empty if there is none)."""
        return tuple(self._require().simulation.findRoute(from_edge, to_edge).edges)

    def edge_travel_times(self, edges: Sequence[str]) -> list[float]:
        """SUMO's current travel time estimate of each edge (s)."""
        travel_time = self._require().edge.getTraveltime
        return [float(travel_time(e)) for e in edges]

    def reroute_avoiding(self, vehicle: str, edges: Sequence[str], penalty_s: float = 3600.0) -> None:
        """Send ``vehicle`` the fastest way that avoids ``edges`` where it can (only this driver
        believes they take ``penalty_s`` longer)."""
        api = self._require()
        for edge in edges:
            api.vehicle.setAdaptedTraveltime(vehicle, edge, penalty_s)
        api.vehicle.rerouteTraveltime(vehicle, False)

    def has_vehicle(self, vehicle: str) -> bool:
        """Whether ``vehicle`` is on the road now (a full id scan: call rarely)."""
        return vehicle in self._require().vehicle.getIDList()

    def remove_vehicle(self, vehicle: str) -> None:
        api = self._require()
        if vehicle in api.vehicle.getIDList():
            api.vehicle.remove(vehicle)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
