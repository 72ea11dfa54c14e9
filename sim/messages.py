"""The one message vocabulary of a run.

Everything a simulation produces travels as a :class:`Message` on one ordered stream: the KPIs,
the outputs, and (later) the control center and the protocol adapters all read these same types.
A message is ``(t, seq, source, kind, payload)``: ``t`` is simulation time in seconds, ``seq`` a
strictly increasing counter that breaks ties between messages of the same instant, ``source`` the
component that spoke (``sumo``, ``tls:J3``, ``monitor``...) and ``payload`` one of the typed
dataclasses below, each of which names its own ``kind``.

Payloads carry plain JSON-able values only, so ``to_dict`` is all the serialisation anyone needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class Payload:
    """Base of every payload; subclasses set ``kind``."""

    kind: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class RunStarted(Payload):
    """The run began: what was run, with which controller and seed."""

    kind: ClassVar[str] = "run.started"
    scenario: str
    controller: str
    seed: int
    begin_s: float
    end_s: float
    step_length_s: float
    sumo_version: str
    variant: str = ""
    """The scenario variant the run applied, as given (``--variant``: a ``[variants.<name>]``
    of its scenario.toml, ``key=value``, several joined by ``;``); empty: none. A replay applies
    it again to show the scenario as the run had it."""


@dataclass(frozen=True, slots=True)
class VehiclesDeparted(Payload):
    """Vehicles inserted into the network during the last step."""

    kind: ClassVar[str] = "vehicles.departed"
    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class VehiclesArrived(Payload):
    """Vehicles that reached their destination during the last step."""

    kind: ClassVar[str] = "vehicles.arrived"
    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class VehiclesTeleported(Payload):
    """Vehicles SUMO removed from a jam during the last step, to reinsert further on (a symptom
    of gridlock: a scenario should have few)."""

    kind: ClassVar[str] = "vehicles.teleported"
    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SignalPhase(Payload):
    """What a signal shows in SUMO changed. ``state`` is SUMO's per-link string (``GrYy...``);
    ``phase`` the program phase it shows: SUMO's own phase index where the net's program runs,
    and where ccsim drives, the green phase whose state is shown (-1 while changing between
    greens, through yellow and all-red). ``target``: where ccsim drives, the green phase the
    guard is moving to or holding (None where the net's program runs)."""

    kind: ClassVar[str] = "signal.phase"
    tls: str
    program: str
    phase: int
    state: str
    target: int | None = None


@dataclass(frozen=True, slots=True)
class SignalMode(Payload):
    """Who drives signal ``tls`` now (published at the start and at each change): ``program``
    (the net's own program in SUMO), or the guard's mode where ccsim drives: ``automatic``,
    ``hold``, ``plan``, ``flash``, ``failsafe``, ``external``."""

    kind: ClassVar[str] = "signal.mode"
    tls: str
    mode: str


READING_FIELDS = ("count", "queue", "present", "occupancy", "buses")
"""The order of a lane's figures in :class:`DetectorReadings`."""


@dataclass(frozen=True, slots=True)
class DetectorReadings(Payload):
    """What the approach detectors reported at the end of a reporting period, for the lanes whose
    report differs from their previous one (the first report has every lane): lane ->
    ``[count, queue, present, occupancy, buses]`` (see :data:`READING_FIELDS`; vehicles, occupancy
    0..1 to 3 decimals). What the controllers see: a faulty lane reads as on recall."""

    kind: ClassVar[str] = "detector.readings"
    lanes: dict[str, tuple[int, int, int, float, int]]


@dataclass(frozen=True, slots=True)
class GuardViolation(Payload):
    """A signal state broke the safety rules (a bug): the intersection went to fail-safe
    flashing. Critical."""

    kind: ClassVar[str] = "guard.violation"
    tls: str
    reason: str


@dataclass(frozen=True, slots=True)
class MonitorTripped(Payload):
    """The conflict monitor put a signal driven by an external controller (hardware in the loop)
    into flash, as a cabinet's MMU does: the controller showed conflicting streams, an impossible
    state, or stopped answering. Latched until an operator resets it (back to automatic). Critical."""

    kind: ClassVar[str] = "signal.monitor"
    tls: str
    controller: str
    """The external controller, ``host:port``."""
    reason: str


@dataclass(frozen=True, slots=True)
class GuardRefused(Payload):
    """The safety guard refused a request (conflicting greens, max green reached...): logged,
    nothing unsafe was shown."""

    kind: ClassVar[str] = "guard.refused"
    tls: str
    reason: str


@dataclass(frozen=True, slots=True)
class SignalNote(Payload):
    """Something of the net's own signal design that ccsim's guard would not do (a short yellow,
    foes green together...): SUMO runs it as written; said once per run, not a violation."""

    kind: ClassVar[str] = "signal.note"
    tls: str
    note: str


@dataclass(frozen=True, slots=True)
class SignalFallback(Payload):
    """ccsim's controller cannot drive this signal (``reason``): it keeps the net's own program."""

    kind: ClassVar[str] = "signal.fallback"
    tls: str
    reason: str


@dataclass(frozen=True, slots=True)
class ControlDegraded(Payload):
    """A signal spent more than the allowed share of the run so far not under ccsim's control:
    its requests refused by the guard, or left on its own program. ``share`` is the part of the
    run it was under control, 0..1."""

    kind: ClassVar[str] = "control.degraded"
    tls: str
    share: float
    reason: str


@dataclass(frozen=True, slots=True)
class ControlShares(Payload):
    """At the end of a run: per signal, the part of the run under ccsim's control (0..1; None
    when SUMO's own programs drove every signal) and how many requests the guard refused."""

    kind: ClassVar[str] = "control.shares"
    shares: dict[str, float | None]
    refusals: int


@dataclass(frozen=True, slots=True)
class SignalDecision(Payload):
    """Why ccsim's controller moved signal ``tls`` from green phase ``from_phase`` to
    ``to_phase`` (program indices; -1: none yet), as the guard accepted it. ``reason``: start,
    gap-out, max-out, split (webster), pressure (maxpressure), schedule, transit-priority,
    max-wait (adaptive) or preemption; ``detail`` says it in words, ``values`` holds the figures
    behind it (gaps and greens in s, pressures per phase, the planned schedule and its expected
    delay in vehicle-seconds)."""

    kind: ClassVar[str] = "signal.decision"
    tls: str
    controller: str
    from_phase: int
    to_phase: int
    reason: str
    detail: str
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SignalOverride(Payload):
    """An operator command on a signal and what came of it."""

    kind: ClassVar[str] = "signal.override"
    tls: str
    action: str
    argument: str
    user: str
    accepted: bool
    detail: str
    command: int = 0
    """The id of the operator's command this answers (its audit entry); 0: not a command."""


@dataclass(frozen=True, slots=True)
class SignalPreempted(Payload):
    """An emergency vehicle was detected on ``lane``: the signal is moving to ``phase`` for it."""

    kind: ClassVar[str] = "signal.preempted"
    tls: str
    phase: int
    lane: str


@dataclass(frozen=True, slots=True)
class LaneStatus(Payload):
    """Who holds a lane closed, after an operator asked to close or open it (``user``: the
    operator) or an incident began or ended on it (``user``: the incident), and what came of it.

    ``closed`` is the lane's state now: closed while ``owners`` is not empty (``operator:<name>``
    for the operators' hold, ``incident.N`` for each incident blocking it; see sim/lanes.py).
    ``asked``: ``close`` or ``open``."""

    kind: ClassVar[str] = "lane.status"
    lane: str
    closed: bool
    user: str
    accepted: bool
    detail: str
    owners: tuple[str, ...]
    asked: str
    command: int = 0
    """The id of the operator's command this answers (its audit entry); 0: not a command."""


@dataclass(frozen=True, slots=True)
class SensorFault(Payload):
    """The detectors of ``lane`` look faulty (``fault``: comm_loss, stuck_on, stuck_off, chatter),
    judged from their data; controllers treat the approach as on recall until it recovers."""

    kind: ClassVar[str] = "sensor.fault"
    lane: str
    tls: str
    fault: str


@dataclass(frozen=True, slots=True)
class SensorRecovered(Payload):
    """The detectors of ``lane`` report plausibly again after ``fault`` since ``since_s``."""

    kind: ClassVar[str] = "sensor.recovered"
    lane: str
    tls: str
    fault: str
    since_s: float


@dataclass(frozen=True, slots=True)
class ParkingArrival(Payload):
    """A bay sensor reports a vehicle arriving in ``bay`` of parking zone ``zone``."""

    kind: ClassVar[str] = "parking.arrival"
    zone: str
    bay: int
    zone_kind: str


@dataclass(frozen=True, slots=True)
class ParkingDeparture(Payload):
    """A bay sensor reports the bay free again, after ``dwell_s`` sensed occupied."""

    kind: ClassVar[str] = "parking.departure"
    zone: str
    bay: int
    zone_kind: str
    dwell_s: float


@dataclass(frozen=True, slots=True)
class ParkingOverstay(Payload):
    """Time-limit enforcement: a bay has been (sensed) occupied past the zone's limit."""

    kind: ClassVar[str] = "parking.overstay"
    zone: str
    bay: int
    zone_kind: str
    dwell_s: float
    limit_s: float


@dataclass(frozen=True, slots=True)
class ParkingMisuse(Payload):
    """A vehicle parked against the zone's rules (loading zone, disabled bay)."""

    kind: ClassVar[str] = "parking.misuse"
    zone: str
    bay: int
    zone_kind: str
    reason: str


@dataclass(frozen=True, slots=True)
class BayObserved(Payload):
    """A bay sensor's uplink reached the control center through the network (LoRaWAN, MQTT):
    ``device`` (registry id) reports ``bay`` of ``zone`` ``occupied``. ``f_cnt`` is its frame
    counter, ``lost`` the frames missing just before it, ``battery_v`` its last battery reading
    (None if its model reports none). With ``bay_sensor_source = "uplinks"`` these, not the
    simulated sensors, are what parking guidance and pricing see."""

    kind: ClassVar[str] = "parking.observed"
    zone: str
    bay: int
    occupied: bool
    device: str
    f_cnt: int
    lost: int = 0
    battery_v: float | None = None


@dataclass(frozen=True, slots=True)
class ZoneOccupancy:
    """One zone's bays, true and sensed occupied bays, and current price."""

    zone: str
    zone_kind: str
    bays: int
    occupied: int
    sensed_occupied: int
    price: float


@dataclass(frozen=True, slots=True)
class ParkingOccupancy(Payload):
    """Every zone's occupancy, once a minute."""

    kind: ClassVar[str] = "parking.occupancy"
    zones: tuple[ZoneOccupancy, ...]


@dataclass(frozen=True, slots=True)
class ParkingTotals(Payload):
    """Parking over the whole run (for the KPIs). Times in s, distances in m. ``parked`` counts
    parking events in the run, ``initially_parked`` the cars in their bays when it began;
    ``curb_*``: the rotating and loading zones alone."""

    kind: ClassVar[str] = "parking.totals"
    bays: int
    duration_s: float
    parkers: int
    parked: int
    initially_parked: int
    search_time_s: float
    search_distance_m: float
    overstays: int
    rotating_parked: int
    misuse: int
    occupied_bay_s: float
    legitimate_bay_s: float
    curb_bays: int
    curb_legitimate_bay_s: float
    sensor_agree: int
    sensor_samples: int


@dataclass(frozen=True, slots=True)
class TripTotals:
    """Running totals over finished trips (arrived vehicles), as SUMO's tripinfo device sums them.

    Times in s, distance in m.
    """

    count: int
    time_loss_s: float
    depart_delay_s: float
    duration_s: float
    waiting_time_s: float
    route_length_m: float


@dataclass(frozen=True, slots=True)
class NetworkInterval(Payload):
    """Network-wide counters at the end of a KPI interval. Totals are cumulative since begin."""

    kind: ClassVar[str] = "network.interval"
    begin_s: float
    end_s: float
    departed: int
    arrived: int
    running: int
    pending: int
    trips: TripTotals
    persons_departed: int
    person_waiting_s: float


@dataclass(frozen=True, slots=True)
class IntersectionInterval(Payload):
    """Queues at one signalised intersection over a KPI interval: halting vehicles (speed below
    0.1 m/s) on its incoming lanes, summed over the lanes and sampled every step."""

    kind: ClassVar[str] = "intersection.interval"
    tls: str
    begin_s: float
    end_s: float
    queue_mean_veh: float
    queue_max_veh: int


@dataclass(frozen=True, slots=True)
class ApproachDelay(Payload):
    """Delay on one intersection's approaches over an interval, as SUMO measured it.

    ``vehicles`` left the incoming edges (into the junction) in the interval; ``delay_s`` is the
    time loss accrued on those edges in the interval per such vehicle (s). SUMO writes these
    figures at the end of each interval, so they reach the stream when the run closes.
    """

    kind: ClassVar[str] = "approach.delay"
    tls: str
    begin_s: float
    end_s: float
    vehicles: int
    delay_s: float | None


@dataclass(frozen=True, slots=True)
class FleetTotals:
    """Delay of one class of road users: ``count`` of them, ``delay_s`` summed over them."""

    count: int
    delay_s: float


@dataclass(frozen=True, slots=True)
class RunFinished(Payload):
    """End-of-run state: everything still on the road or still waiting to be inserted.

    ``running_delay_s`` sums time loss so far plus departure delay of vehicles still driving;
    ``pending_delay_s`` sums the wait of vehicles that were due but never inserted.
    """

    kind: ClassVar[str] = "run.finished"
    trips: TripTotals
    running: int
    running_delay_s: float
    pending: int
    pending_delay_s: float
    stops_total: int
    buses: FleetTotals
    persons: FleetTotals


@dataclass(frozen=True, slots=True)
class EmissionsInterval(Payload):
    """Exhaust emissions of all vehicles over an interval, from SUMO's emission model (g)."""

    kind: ClassVar[str] = "emissions.interval"
    begin_s: float
    end_s: float
    co2_g: float
    nox_g: float
    pm_g: float


@dataclass(frozen=True, slots=True)
class DevicesDeployed(Payload):
    """Field devices of one kind (``enforcement``, ``radar``, ``gates``...) stand at ``sites``
    (junction or edge ids) for this run; published when the run starts."""

    kind: ClassVar[str] = "devices.deployed"
    device: str
    sites: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Violation(Payload):
    """A traffic violation seen by an enforcement device at ``site`` (a junction or radar point).

    ``severity`` is ``minor``, ``serious`` or ``very_serious``; ``speed_kmh`` is the vehicle's
    speed where relevant (radar, red light), else None; ``detail`` says what was seen. Vehicles
    are not identified: enforcement in the field would attach evidence, not an id, to the stream.
    """

    kind: ClassVar[str] = "violation"
    site: str
    severity: str
    speed_kmh: float | None
    detail: str


@dataclass(frozen=True, slots=True)
class RedLightViolation(Violation):
    """A vehicle entered the junction on red (after the yellow and the all-red began)."""

    kind: ClassVar[str] = "violation.red_light"


@dataclass(frozen=True, slots=True)
class SpeedingViolation(Violation):
    """A vehicle passed a radar point faster than the limit plus the enforcement tolerance."""

    kind: ClassVar[str] = "violation.speeding"
    limit_kmh: float = 0.0


@dataclass(frozen=True, slots=True)
class CrosswalkViolation(Violation):
    """A vehicle stood on a pedestrian crosswalk."""

    kind: ClassVar[str] = "violation.crosswalk"


@dataclass(frozen=True, slots=True)
class BoxBlockingViolation(Violation):
    """A vehicle stood inside the junction while its own signal was red (blocking the box)."""

    kind: ClassVar[str] = "violation.box_blocking"


@dataclass(frozen=True, slots=True)
class ImproperTurnViolation(Violation):
    """A vehicle made a forbidden turn (a turn on red, a U-turn where they are banned)."""

    kind: ClassVar[str] = "violation.improper_turn"


@dataclass(frozen=True, slots=True)
class RadarPasses(Payload):
    """Vehicles a radar point measured over an interval, for the speeding KPIs (km/h)."""

    kind: ClassVar[str] = "radar.passes"
    site: str
    begin_s: float
    end_s: float
    passes: int
    speeding: int
    speed_sum_kmh: float
    sign_slowed: int


@dataclass(frozen=True, slots=True)
class GateWatchlistHit(Payload):
    """An access gate read a plate on the watch list. Alarm. The plate is only its keyed hash."""

    kind: ClassVar[str] = "gate.watchlist_hit"
    gate: str
    plate_hash: str


@dataclass(frozen=True, slots=True)
class GateCount(Payload):
    """What an access gate read over an interval: plates read, unreadable, watch-list hits, and
    reads purged from its store for being older than the retention window."""

    kind: ClassVar[str] = "gate.count"
    gate: str
    begin_s: float
    end_s: float
    reads: int
    unreadable: int
    hits: int
    purged: int


@dataclass(frozen=True, slots=True)
class PedestrianCount(Payload):
    """Pedestrians who stepped onto the crossings of ``site`` over an interval (a group count:
    no identities are kept or sent)."""

    kind: ClassVar[str] = "pedestrian.count"
    site: str
    begin_s: float
    end_s: float
    count: int


@dataclass(frozen=True, slots=True)
class AirReading(Payload):
    """An air-quality station's averages (µg/m³; CO2 in ppm) and its AQI-style index (0-500)."""

    kind: ClassVar[str] = "air.reading"
    station: str
    nox_1min_ugm3: float
    pm10_1min_ugm3: float
    co2_1min_ppm: float
    nox_1h_ugm3: float
    pm10_1h_ugm3: float
    index: float
    category: str


@dataclass(frozen=True, slots=True)
class AirThreshold(Payload):
    """An air-quality station's index crossed its alarm threshold (``raised`` true) or fell back
    below it (false)."""

    kind: ClassVar[str] = "air.threshold"
    station: str
    index: float
    threshold: float
    pollutant: str
    raised: bool


@dataclass(frozen=True, slots=True)
class IncidentOccurred(Payload):
    """An incident began (ground truth): an injected stopped vehicle or blocked lane, or a
    collision in SUMO. ``cause`` is ``stopped_vehicle``, ``blocked_lane`` or ``collision``."""

    kind: ClassVar[str] = "incident.occurred"
    incident: str
    cause: str
    edge: str
    lane: str
    pos_m: float
    duration_s: float | None


@dataclass(frozen=True, slots=True)
class IncidentEnded(Payload):
    """An incident's time is up (ground truth): the broken-down car drives off, the blocked
    lane is released, the crashed vehicles are cleared."""

    kind: ClassVar[str] = "incident.ended"
    incident: str
    edge: str
    lane: str


@dataclass(frozen=True, slots=True)
class IncidentReported(Payload):
    """An operator reported an incident on ``lane`` (an id, of ``edge``) at ``pos_m`` for
    ``duration_s`` (``POST /api/incidents``), and what came of it. Accepted, it occurs at once
    as an injected one would (``incident`` names it; ``""`` when refused)."""

    kind: ClassVar[str] = "incident.reported"
    incident: str
    cause: str
    edge: str
    lane: str
    pos_m: float
    duration_s: float
    user: str
    accepted: bool
    detail: str
    command: int = 0
    """The id of the operator's command this answers (its audit entry); 0: not a command."""


@dataclass(frozen=True, slots=True)
class IncidentDetected(Payload):
    """Detector data on ``lane`` (of ``edge``) look like an incident (stopped traffic that does
    not clear). Only what the detection knows: which incident it is, if any, is ground truth
    (see :class:`IncidentTotals`)."""

    kind: ClassVar[str] = "incident.detected"
    lane: str
    edge: str


@dataclass(frozen=True, slots=True)
class DetectionMatch:
    """Ground truth on one detection at ``t`` on ``lane``: the incident it found and how long
    after it began (s), or None for both (a false alarm)."""

    t: float
    lane: str
    incident: str | None
    delay_s: float | None


@dataclass(frozen=True, slots=True)
class IncidentTotals(Payload):
    """At the end of a run, for the KPIs only (ground truth a city would not have): every
    detection matched against the incidents that occurred."""

    kind: ClassVar[str] = "incident.totals"
    detections: tuple[DetectionMatch, ...]


@dataclass(frozen=True, slots=True)
class InfoSignShown(Payload):
    """What an information sign shows, each period: the travel time to ``destination`` (s),
    the free parking bays the bay sensors report (None without parking), warnings of detected
    incidents (``incident on <edge>``), and how many drivers it sent another way since last."""

    kind: ClassVar[str] = "sign.shown"
    sign: str
    destination: str
    travel_time_s: float | None
    free_bays: int | None
    warnings: tuple[str, ...]
    rerouted: int


@dataclass(frozen=True, slots=True)
class InfoSignTotals(Payload):
    """The drivers the information signs warned over the whole run (for the KPIs).

    ``warned``: drivers who passed a sign while it warned of an incident on their way - counted
    the same with dark signs (those it would have warned); ``rerouted``: of them, those the draw
    sent another way; ``travel_time_s``: their time from the sign to the end of their trip, summed
    (drivers still on the road at the end count the time so far). The rest split the warned
    drivers by the draw - a randomised comparison within the run: ``rerouted_travel_time_s`` is
    the part of ``travel_time_s`` of the rerouted drivers (the others, ``warned - rerouted``,
    stayed on their way: all of them with dark signs), ``rerouted_unfinished`` and
    ``stayed_unfinished`` count those of each group still on the road at the end, whose times
    are cut there."""

    kind: ClassVar[str] = "sign.totals"
    warned: int
    rerouted: int
    travel_time_s: float
    rerouted_travel_time_s: float
    rerouted_unfinished: int
    stayed_unfinished: int


@dataclass(frozen=True, slots=True)
class Message:
    """One entry of the stream. Ordered by ``(t, seq)``; ``seq`` is unique within a run."""

    t: float
    seq: int
    source: str
    payload: Payload

    @property
    def kind(self) -> str:
        return self.payload.kind


Subscriber = Callable[[Message], None]


@dataclass
class MessageBus:
    """The ordered stream. Publishing stamps the next ``seq`` and hands the message to every
    subscriber synchronously, in subscription order, so all readers see the same order."""

    _subscribers: list[Subscriber] = field(default_factory=list)
    _seq: int = 0

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def publish(self, t: float, source: str, payload: Payload) -> Message:
        self._seq += 1
        message = Message(t=t, seq=self._seq, source=source, payload=payload)
        for subscriber in self._subscribers:
            subscriber(message)
        return message


class MessageLog:
    """A subscriber that keeps every message, for the outputs and for tests."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def __call__(self, message: Message) -> None:
        self.messages.append(message)

    def of_kind(self, kind: str) -> list[Message]:
        return [m for m in self.messages if m.kind == kind]


@dataclass(frozen=True, slots=True)
class ControllerChanged(Payload):
    """An operator asked a live run to change its signal controller, and what came of it."""

    kind: ClassVar[str] = "controller.changed"
    controller: str
    previous: str
    user: str
    accepted: bool
    detail: str
    command: int = 0
    """The id of the operator's command this answers (its audit entry); 0: not a command."""


@dataclass(frozen=True, slots=True)
class RunControlled(Payload):
    """An operator paused or resumed a live run or changed its speed (``speed`` simulated seconds
    per wall second, None: as fast as it goes), and what came of it: published by the
    simulation once it has acted (a pause: at the step it stopped after)."""

    kind: ClassVar[str] = "run.control"
    action: str
    speed: float | None
    user: str
    accepted: bool
    detail: str
    command: int = 0
    """The id of the operator's command this answers (its audit entry); 0: not a command."""
