"""On-street parking and lots: who parks where, who breaks the rules, what the bay sensors say.

The scenario's SUMO parking areas are the zones; each carries ``<param key="ccsim.kind">``:
``rotating`` (a time limit), ``loading`` (delivery vehicles, within allowed hours, maximum dwell),
``disabled`` (permit holders only) or ``lot`` (off-street, entries and exits counted).

The run can start with bays already taken, as a district's are when its morning peak begins
(``initial_occupancy``, a share of each kind's bays): those cars were parked before the run, for
a time drawn from the dwell distribution, and stay for another such draw (an exponential dwell is
memoryless, so both are exponential with its mean); then they drive off to an exit of the net.

A share of the trips park near their destination on the way (``[parking] share``); of the cars,
``long_stay_share`` are commuters who head for a lot for the day. A driver picks
a zone of its kind within ``SEARCH_RADIUS_M`` of its destination by a utility ``-distance/100 m -
price_sensitivity * price``; a driver with guidance (``guidance_share`` when ``guidance`` is on)
picks only among zones the bay sensors report free. Reaching a full zone, a driver cruises to the
next best one: the time and distance from first reaching a zone to parking are its search.
Some drivers overstay the time limit, park in a loading zone without being a delivery, or in a
disabled bay without a permit, at the configured rates. Parked, they stay for an exponentially
distributed dwell (``dwell_mean_s``; deliveries ``loading_dwell_mean_s``), then drive on to their
destination.

Every bay has an in-ground sensor whose reports pass through a sensor profile (missed and false
detections, latency, faults), giving ``parking.arrival`` / ``parking.departure`` messages; time-limit
enforcement (``parking.overstay``), guidance and pricing use the *sensed* state. With
``bay_sensor_source = "uplinks"`` guidance, pricing and the sensed occupancy use instead what the
control center ingested from the sensors' LoRaWAN uplinks (``parking.observed``, fed in with
:meth:`ParkingManager.observe` at step boundaries): the whole loop runs through the network.
Dynamic pricing moves each zone's price by ``price_step`` every ``price_period_s`` toward its
target occupancy band (``target_occupancy``, 60-85% by default); the demand response is the price
term of the utility above.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import AfterValidator
from pydantic.dataclasses import dataclass as pydantic_dataclass

from sim.config_model import CONFIG, Flag, Number, Text, invalid, validate, within
from sim.errors import ScenarioError
from sim.messages import (
    BayObserved,
    MessageBus,
    ParkingArrival,
    ParkingDeparture,
    ParkingMisuse,
    ParkingOccupancy,
    ParkingOverstay,
    ParkingTotals,
    ZoneOccupancy,
)
from sim.network import Network
from sim.sensor_profiles import BUNDLED, Fault, ProfileSpec, read_profile
from sim.sumo import SumoWorld

KINDS = ("rotating", "loading", "disabled", "lot")
CURB_KINDS = ("rotating", "loading")
"""The zones the city's public-space efficiency aim is stated for (the bay sensors' zones)."""
SEARCH_RADIUS_M = 400.0
SAMPLE_S = 60.0
FALSE_OCCUPANCY_S = 300.0


Hours = Annotated[float, within(0.0, 24.0)]
Share = Annotated[float, within(0.0, 1.0)]
Dwell = Annotated[float, within(60.0, 86400.0)]
Price = Annotated[float, within(0.0, 1000.0)]


def _ordered(value: tuple[float, float]) -> tuple[float, float]:
    if value[0] > value[1]:
        raise invalid("wrong value", "[low, high] with low <= high")
    return value


Band = Annotated[tuple[Number, Number], AfterValidator(_ordered)]
"""``[low, high]`` with low <= high."""


def _bay_profile(name: str) -> str:
    """A bay sensor profile that exists (as :func:`_bay_spec` finds it when the run starts)."""
    path = Path(name) if name.endswith(".toml") else BUNDLED / f"{name}.toml"
    if name != "ideal" and not path.is_file():
        known = ", ".join(["ideal", *sorted(p.stem for p in BUNDLED.glob("*.toml"))])
        raise invalid("no such bay sensor profile", f"one of {known} or a .toml file")
    return name


@pydantic_dataclass(frozen=True, config=CONFIG)
class ParkingConfig:
    """``[parking]`` of scenario.toml. Times in s, shares 0..1, prices in currency units."""

    share: Share = 0.15
    dwell_mean_s: Annotated[float, within(1.0, 86400.0)] = 900.0
    loading_dwell_mean_s: Annotated[float, within(1.0, 86400.0)] = 900.0
    """Deliveries' dwell (in loading zones or wherever they find a bay)."""
    long_stay_share: Share = 0.0
    """Of the parking car drivers, commuters who head for a lot (a rotating bay only if no lot is
    near), for ``long_stay_dwell_mean_s``."""
    long_stay_dwell_mean_s: Annotated[float, within(1.0, 86400.0)] = 14400.0
    time_limit_s: Dwell = 1800.0
    loading_max_dwell_s: Dwell = 1200.0
    loading_hours: Band = (6.0, 11.0)
    start_hour: Hours = 7.0
    guidance: Flag = False
    guidance_share: Share = 0.5
    pricing: Flag = False
    base_price: Price = 2.0
    price_step: Price = 0.5
    price_period_s: Dwell = 900.0
    price_sensitivity: Annotated[float, within(0.0, 100.0)] = 1.0
    target_occupancy: Band = (0.60, 0.85)
    overstay_share: Share = 0.10
    loading_misuse_share: Share = 0.05
    disabled_misuse_share: Share = 0.03
    permit_share: Share = 0.03
    bay_sensor_profile: Annotated[Text, AfterValidator(_bay_profile)] = "ideal"
    bay_sensor_source: Literal["simulated", "uplinks"] = "simulated"
    """``simulated``: guidance sees the simulated sensors directly; ``uplinks``: what arrived
    through the network (needs ``ccsim serve --mqtt``)."""
    initial_occupancy: dict[Literal["rotating", "loading", "disabled", "lot"], Share] = field(
        default_factory=dict
    )
    """Share (0..1) of each kind's bays taken when the run starts; kinds not named start empty."""


def parking_config(path: Path, table: Any) -> ParkingConfig:
    """Validate ``[parking]``; errors name the file, field, value and expectation."""
    return validate(ParkingConfig, table, path, at=("parking",))


@dataclass
class Zone:
    """One SUMO parking area: its bays, kind, place and (sensed) state."""

    id: str
    kind: str
    edge: str
    bays: int
    xy: tuple[float, float] = (0.0, 0.0)
    price: float = 0.0
    occupant: list[str | None] = field(default_factory=list)
    """True occupant of each bay (vehicle id) or None."""
    sensed: list[bool] = field(default_factory=list)
    sensed_since: list[float] = field(default_factory=list)
    reported: list[bool] = field(default_factory=list)
    """Each bay as its uplinks reported it (``bay_sensor_source = "uplinks"``)."""
    occupied: int = 0
    legitimate: int = 0
    """Bays occupied now, and by users allowed there."""
    occupied_s: float = 0.0
    legitimate_s: float = 0.0
    claims: set[str] = field(default_factory=set)
    """Vehicles on the zone's street heading for a bay in it (each holds one bay)."""

    def free_true(self) -> int:
        return sum(1 for o in self.occupant if o is None)

    def unclaimed(self, vehicle: str) -> int:
        """Free bays a driver on the street can still find, others' claims taken into account."""
        return self.free_true() - len(self.claims - {vehicle})

    def free_sensed(self) -> int:
        return sum(1 for s in self.sensed if not s)

    def free_reported(self) -> int:
        return sum(1 for s in self.reported if not s)


def read_zones(files: list[Path], network: Network) -> list[Zone]:
    """Parking areas declared in the scenario's additional files."""
    zones = []
    for path in files:
        for _event, el in ET.iterparse(path, events=("end",)):
            if el.tag != "parkingArea":
                continue
            kind = "rotating"
            for param in el.iter("param"):
                if param.get("key") == "ccsim.kind":
                    kind = param.get("value", kind)
            if kind not in KINDS:
                problem = f"parkingArea '{el.get('id')}' has an unknown kind"
                expected = " / ".join(KINDS)
                raise ScenarioError(path, problem, field="ccsim.kind", value=kind, expected=expected)
            bays = int(el.get("roadsideCapacity", "0")) + sum(1 for _ in el.iter("space"))
            edge = el.get("lane", "").rsplit("_", 1)[0]
            if bays > 0 and edge in network.edge_ends:
                zones.append(Zone(el.get("id", ""), kind, edge, bays, network.edge_xy(edge)))
            el.clear()
    return zones


@dataclass
class _Parker:
    vehicle: str
    destination: str
    kind: str
    """The kind of zone the driver looks for (a misuser looks for a zone not meant for it)."""
    delivery: bool
    informed: bool
    overstays: bool
    permit: bool
    zone: str = ""
    tried: set[str] = field(default_factory=set)
    reached_at: float | None = None
    reached_odometer: float = 0.0
    parked_at: float | None = None
    bay: int = -1
    legitimate: bool = True
    long_stay: bool = False
    """A commuter: heads for a lot, for the day."""
    initial: bool = False
    """Parked before the run began, for ``age_s`` by then."""
    age_s: float = 0.0


def _bay_spec(name: str) -> ProfileSpec:
    if name == "ideal":
        return ProfileSpec("ideal")
    path = Path(name) if name.endswith(".toml") else BUNDLED / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(["ideal", *sorted(p.stem for p in BUNDLED.glob("*.toml"))])
        raise ScenarioError(
            name, "no such bay sensor profile", expected=f"one of {known} or a .toml file"
        )
    return read_profile(path)


class ParkingManager:
    """Runs parking in a live simulation; see the module docstring. Call :meth:`on_step` every step."""

    def __init__(
        self, config: ParkingConfig, zones: list[Zone], world: SumoWorld, bus: MessageBus, seed: int
    ) -> None:
        self.config = config
        self.zones = {z.id: z for z in zones}
        self.world = world
        self.bus = bus
        self.rng = np.random.default_rng([seed, 0x9A4C])
        self.spec = _bay_spec(config.bay_sensor_profile)
        for z in zones:
            z.occupant = [None] * z.bays
            z.sensed = [False] * z.bays
            z.sensed_since = [0.0] * z.bays
            z.reported = [False] * z.bays
            z.price = config.base_price if config.pricing else 0.0
        self._bay_fault: dict[tuple[str, int], tuple[Fault, float]] = {}
        self._pending: list[tuple[float, str, int, bool, float | None]] = []
        self._false_until: dict[tuple[str, int], float] = {}
        self.parkers: dict[str, _Parker] = {}
        self._searching: set[str] = set()
        self._last_t: float | None = None
        self._exits: list[str] = []
        self._next_sample = 0.0
        self._next_price = config.price_period_s
        self.totals = {"parkers": 0, "parked": 0, "initial": 0, "search_s": 0.0, "search_m": 0.0,
                       "overstays": 0, "rotating": 0, "misuse": 0, "agree": 0, "samples": 0}  # fmt: skip
        self._overstay_reported: set[str] = set()

    # --- demand --------------------------------------------------------------------------------

    def fill_initially(self) -> None:
        """Cars parked before the run: of each zone's bays a binomial draw with its kind's
        ``initial_occupancy``. Each is inserted in its bay (SUMO parks it in the first steps, and
        its sensor reports it), stays for an exponential dwell and then drives to an exit."""
        c = self.config
        for zone in self.zones.values():
            share = next((v for k, v in c.initial_occupancy.items() if k == zone.kind), 0.0)
            delivery, long_stay = zone.kind == "loading", zone.kind == "lot"
            mean = self._dwell_mean(delivery, long_stay)
            for i in range(int(self.rng.binomial(zone.bays, share)) if share > 0 else 0):
                vehicle = f"parked.{zone.id}.{i}"
                exits = self._exits or [zone.edge]
                exit_edge = exits[int(self.rng.integers(len(exits)))]
                parker = _Parker(vehicle, exit_edge, zone.kind, delivery, informed=False,
                                 overstays=False, permit=zone.kind == "disabled", zone=zone.id,
                                 long_stay=long_stay, initial=True,
                                 age_s=float(self.rng.exponential(mean)))  # fmt: skip
                stay = max(60.0, float(self.rng.exponential(mean)))
                vclass = "delivery" if delivery else "passenger"
                if self.world.add_parked(vehicle, zone.id, zone.edge, vclass, stay):
                    parker.tried.add(zone.id)
                    self.parkers[vehicle] = parker
                    self._searching.add(vehicle)

    def on_departed(self, t: float, vehicle: str, vclass: str) -> None:
        if vehicle in self.parkers:  # parked before the run: inserted in its bay
            return
        if vclass not in ("passenger", "delivery") or self.rng.random() >= self.config.share:
            return
        c = self.config
        delivery = vclass == "delivery"
        kind = "loading" if delivery else "rotating"
        permit = self.rng.random() < c.permit_share
        if not delivery:
            draw = self.rng.random()
            if permit or draw < c.disabled_misuse_share:
                kind = "disabled"
            elif draw < c.disabled_misuse_share + c.loading_misuse_share:
                kind = "loading"
            elif c.long_stay_share > 0 and self.rng.random() < c.long_stay_share:
                kind = "lot"
        informed = c.guidance and self.rng.random() < c.guidance_share
        parker = _Parker(vehicle, self.world.route(vehicle)[-1], kind, delivery, informed,
                         overstays=self.rng.random() < c.overstay_share, permit=permit,
                         long_stay=kind == "lot")  # fmt: skip
        zone = self._choose(parker)
        if zone is None:
            return
        self.parkers[vehicle] = parker
        self.totals["parkers"] += 1
        if not self._send(parker, zone):
            del self.parkers[vehicle]

    def _dwell_mean(self, delivery: bool, long_stay: bool) -> float:
        c = self.config
        if delivery:
            return c.loading_dwell_mean_s
        return c.long_stay_dwell_mean_s if long_stay else c.dwell_mean_s

    def _choose(self, parker: _Parker) -> Zone | None:
        """The zone this driver heads for next, or None if no zone of its kind is left near."""
        x, y = self.world_xy(parker.destination)
        kinds = (parker.kind, "rotating", "lot") if parker.kind != "rotating" else ("rotating", "lot")
        for kind in dict.fromkeys(kinds):
            best: tuple[float, Zone] | None = None
            for zone in self.zones.values():
                if zone.kind != kind or zone.id in parker.tried:
                    continue
                distance = math.dist((x, y), zone.xy)
                if distance > SEARCH_RADIUS_M * (2.0 if kind == "lot" else 1.0):
                    continue
                if parker.informed and self.free_seen(zone) == 0:
                    continue
                utility = -distance / 100.0 - self.config.price_sensitivity * zone.price
                utility += float(self.rng.gumbel(0.0, 0.5))
                if best is None or utility > best[0]:
                    best = (utility, zone)
            if best is not None:
                return best[1]
        return None

    def world_xy(self, edge: str) -> tuple[float, float]:
        return self._edge_xy.get(edge, (0.0, 0.0))

    def bind_network(self, network: Network) -> None:
        self._edge_xy = {edge: network.edge_xy(edge) for edge in network.edge_ends}
        cars = {lane.edge for lane in network.lanes.values() if lane.carries_vehicles}
        self._exits = sorted(
            edge
            for edge, (_start, end) in network.edge_ends.items()
            if edge in cars and network.junction_types.get(end) == "dead_end"
        )

    def _send(self, parker: _Parker, zone: Zone | None) -> bool:
        """Send the driver to ``zone``, or to the next candidate if SUMO cannot route it there (a
        zone behind it on its street). False when no zone is left: it drives on unparked."""
        c = self.config
        while zone is not None:
            parker.zone = zone.id
            parker.tried.add(zone.id)
            dwell = float(self.rng.exponential(self._dwell_mean(parker.delivery, parker.long_stay)))
            if zone.kind == "rotating" and parker.overstays:
                dwell = c.time_limit_s * float(self.rng.uniform(1.2, 2.0))
            if self.world.send_to_parking(parker.vehicle, zone.id, zone.edge, max(60.0, dwell)):
                self._searching.add(parker.vehicle)
                return True
            zone = self._choose(parker)
        self._searching.discard(parker.vehicle)
        self.world.change_target(parker.vehicle, parker.destination)
        return False

    # --- each step -----------------------------------------------------------------------------

    def on_step(self, t: float, arrived: tuple[str, ...]) -> None:
        world = self.world
        for vehicle in arrived:
            if vehicle in self.parkers:
                self._searching.discard(vehicle)
                self.zones[self.parkers.pop(vehicle).zone].claims.discard(vehicle)
        for vehicle in sorted(self._searching):  # sorted: set order varies between processes
            parker = self.parkers[vehicle]
            zone = self.zones[parker.zone]
            if world.road(vehicle) != zone.edge:
                continue
            if parker.reached_at is None:
                parker.reached_at, parker.reached_odometer = t, world.odometer(vehicle)
            if vehicle in zone.claims:
                continue
            if zone.unclaimed(vehicle) > 0:
                zone.claims.add(vehicle)
            elif not self._send(parker, self._choose(parker)):  # full: cruise on, or give up
                self.parkers.pop(vehicle)
        for vehicle in world.parking_started_ids():
            if vehicle in self.parkers:
                self._parked(t, self.parkers[vehicle])
        for vehicle in world.parking_ended_ids():
            if vehicle in self.parkers:
                self._left(t, self.parkers.pop(vehicle))
        self._sensors(t)
        self._accumulate(t)
        if self.config.pricing and t >= self._next_price:
            self._next_price += self.config.price_period_s
            self._reprice()
        if t >= self._next_sample:
            self._next_sample = t + SAMPLE_S
            self._sample(t)

    def _parked(self, t: float, parker: _Parker) -> None:
        self._searching.discard(parker.vehicle)
        zone = self.zones[parker.zone]
        zone.claims.discard(parker.vehicle)
        bay = next((i for i, o in enumerate(zone.occupant) if o is None), -1)
        if bay < 0:
            return
        zone.occupant[bay] = parker.vehicle
        parker.bay, parker.parked_at = bay, t
        if parker.initial:
            self.totals["initial"] += 1
        else:
            reached = parker.reached_at if parker.reached_at is not None else t
            self.totals["parked"] += 1
            self.totals["search_s"] += t - reached
            self.totals["search_m"] += max(
                0.0, self.world.odometer(parker.vehicle) - parker.reached_odometer
            )
            self.totals["rotating"] += zone.kind == "rotating"
        self.world.change_target(parker.vehicle, parker.destination)
        # a car parked before the run: its sensor saw it arrive then (enforcement counts from there)
        self._true_change(t, zone, bay, True, since=t - parker.age_s if parker.initial else None)
        misuse = self._misuse(t, zone, parker)
        parker.legitimate = not misuse
        zone.occupied += 1
        zone.legitimate += parker.legitimate
        if misuse:
            self.totals["misuse"] += 1
            self.bus.publish(t, f"parking:{zone.id}", ParkingMisuse(zone.id, bay, zone.kind, misuse))

    def _misuse(self, t: float, zone: Zone, parker: _Parker) -> str:
        """Why parking here breaks the zone's rules ("" if it does not)."""
        if zone.kind == "disabled" and not parker.permit:
            return "disabled bay without permit"
        if zone.kind == "loading":
            if not parker.delivery:
                return "loading zone used by a non-delivery vehicle"
            hour = self.config.start_hour + t / 3600.0
            low, high = self.config.loading_hours
            if not low <= hour < high:
                return "loading zone outside allowed hours"
        return ""

    def _left(self, t: float, parker: _Parker) -> None:
        zone = self.zones[parker.zone]
        if parker.bay >= 0:
            zone.occupant[parker.bay] = None
            zone.occupied -= 1
            zone.legitimate -= parker.legitimate
            self._true_change(t, zone, parker.bay, False)

    # --- bay sensors ---------------------------------------------------------------------------

    def free_seen(self, zone: Zone) -> int:
        """Free bays as guidance and pricing see them: the sensors, or their ingested uplinks."""
        if self.config.bay_sensor_source == "uplinks":
            return zone.free_reported()
        return zone.free_sensed()

    def observe(self, t: float, observed: BayObserved) -> bool:
        """An ingested uplink's report of a bay; published on the stream. False (and ignored) for
        a bay this scenario does not have."""
        zone = self.zones.get(observed.zone)
        if zone is None or not 0 <= observed.bay < zone.bays:
            return False
        zone.reported[observed.bay] = observed.occupied
        self.bus.publish(t, f"lorawan:{observed.device}", observed)
        return True

    def _true_change(
        self, t: float, zone: Zone, bay: int, occupied: bool, since: float | None = None
    ) -> None:
        spec = self.spec
        fault = self._bay_fault.get((zone.id, bay))
        if fault is not None and t < fault[1]:
            return  # a faulty sensor does not see it
        self._false_until.pop((zone.id, bay), None)
        if self.rng.random() < spec.detection_probability:
            self._pending.append((t + spec.latency_s, zone.id, bay, occupied, since))

    def _sensors(self, t: float) -> None:
        due = [p for p in self._pending if p[0] <= t]
        if due:
            self._pending = [p for p in self._pending if p[0] > t]
            for _t, zone_id, bay, occupied, since in due:
                self._sense(t, self.zones[zone_id], bay, occupied, since)
        for key, until in list(self._false_until.items()):
            if t >= until:
                del self._false_until[key]
                self._sense(t, self.zones[key[0]], key[1], False)

    def _sense(self, t: float, zone: Zone, bay: int, occupied: bool, since: float | None = None) -> None:
        """The bay's sensor reports a change; ``since``: when it saw it (default now)."""
        if zone.sensed[bay] == occupied:
            return
        dwell = t - zone.sensed_since[bay]
        zone.sensed[bay], zone.sensed_since[bay] = occupied, t if since is None else since
        if occupied:
            self.bus.publish(t, f"parking:{zone.id}", ParkingArrival(zone.id, bay, zone.kind))
        else:
            self.bus.publish(t, f"parking:{zone.id}", ParkingDeparture(zone.id, bay, zone.kind, dwell))

    def _accumulate(self, t: float) -> None:
        """Bay-seconds occupied, and occupied by legitimate users, since the last step."""
        step = 0.0 if self._last_t is None else t - self._last_t
        self._last_t = t
        for zone in self.zones.values():
            zone.occupied_s += step * zone.occupied
            zone.legitimate_s += step * zone.legitimate

    def _sample(self, t: float) -> None:
        """Once a minute: faults come and go, false detections, enforcement, accuracy, occupancy."""
        for zone in self.zones.values():
            for bay in range(zone.bays):
                self._bay_faults(t, zone, bay, (zone.id, bay))
                truly = zone.occupant[bay] is not None
                if not truly and not zone.sensed[bay] and self._false_detection():
                    self._false_until[(zone.id, bay)] = t + FALSE_OCCUPANCY_S
                    self._sense(t, zone, bay, True)
                self.totals["samples"] += 1
                self.totals["agree"] += zone.sensed[bay] == truly
                self._enforce(t, zone, bay)
        occupancy = tuple(
            ZoneOccupancy(
                z.id, z.kind, z.bays, z.bays - z.free_true(), z.bays - self.free_seen(z), z.price
            )
            for z in self.zones.values()
        )
        self.bus.publish(t, "parking", ParkingOccupancy(occupancy))

    def _false_detection(self) -> bool:
        rate = self.spec.false_detections_per_h
        return rate > 0 and self.rng.random() < rate * SAMPLE_S / 3600.0

    def _enforce(self, t: float, zone: Zone, bay: int) -> None:
        """Time limits, judged from the sensed arrival time as an enforcement officer's app would."""
        if zone.kind == "rotating":
            limit = self.config.time_limit_s
        elif zone.kind == "loading":
            limit = self.config.loading_max_dwell_s
        else:
            return
        dwell = t - zone.sensed_since[bay]
        key = f"{zone.id}#{bay}#{zone.sensed_since[bay]}"
        if zone.sensed[bay] and dwell > limit and key not in self._overstay_reported:
            self._overstay_reported.add(key)
            self.totals["overstays"] += 1
            self.bus.publish(
                t, f"parking:{zone.id}", ParkingOverstay(zone.id, bay, zone.kind, dwell, limit)
            )

    def _bay_faults(self, t: float, zone: Zone, bay: int, key: tuple[str, int]) -> None:
        current = self._bay_fault.get(key)
        if current is not None and t >= current[1]:
            del self._bay_fault[key]
            current = None
            self._sense(t, zone, bay, zone.occupant[bay] is not None)  # back: reports the truth
        if current is not None:
            return
        for kind, spec in self.spec.faults.items():
            if self.rng.random() < spec.rate_per_h * SAMPLE_S / 3600.0:
                until = (
                    math.inf
                    if kind is Fault.DEAD_BATTERY
                    else t + float(self.rng.exponential(spec.duration_s))
                )
                self._bay_fault[key] = (kind, until)
                if kind is Fault.STUCK_ON:
                    self._sense(t, zone, bay, True)
                elif kind is Fault.STUCK_OFF:
                    self._sense(t, zone, bay, False)
                break

    def _reprice(self) -> None:
        low, high = self.config.target_occupancy
        for zone in self.zones.values():
            if zone.kind == "disabled":
                continue
            occupancy = 1.0 - self.free_seen(zone) / zone.bays
            if occupancy > high:
                zone.price += self.config.price_step
            elif occupancy < low:
                zone.price = max(0.0, zone.price - self.config.price_step)

    # --- end of run ------------------------------------------------------------------------------

    def finish(self, t: float, duration_s: float) -> ParkingTotals:
        bays = sum(z.bays for z in self.zones.values())
        curb = [z for z in self.zones.values() if z.kind in CURB_KINDS]
        tt = self.totals
        return ParkingTotals(
            bays=bays,
            duration_s=duration_s,
            parkers=int(tt["parkers"]),
            parked=int(tt["parked"]),
            initially_parked=int(tt["initial"]),
            search_time_s=float(tt["search_s"]),
            search_distance_m=float(tt["search_m"]),
            overstays=int(tt["overstays"]),
            rotating_parked=int(tt["rotating"]),
            misuse=int(tt["misuse"]),
            occupied_bay_s=sum(z.occupied_s for z in self.zones.values()),
            legitimate_bay_s=sum(z.legitimate_s for z in self.zones.values()),
            curb_bays=sum(z.bays for z in curb),
            curb_legitimate_bay_s=sum(z.legitimate_s for z in curb),
            sensor_agree=int(tt["agree"]),
            sensor_samples=int(tt["samples"]),
        )
