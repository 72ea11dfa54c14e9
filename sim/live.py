"""A live run: the simulation paced to the wall clock, steerable while it runs, with its state kept.

Virtual time stays in the engine; this module only wraps it, as ``simpy.rt`` wraps simpy:

* :class:`Pacer` is the ``pace`` hook of :class:`~sim.engine.Simulation`: after each step it
  blocks the simulation thread until the wall clock has caught up with ``t / speed``. Pause,
  resume and speed changes (from any thread) take effect at once, even in the middle of a wait.
* :class:`LiveController` wraps a controller so that an operator can change it mid-run.
* :class:`LiveState` is a subscriber to the message stream that keeps the current state of the
  district (signals, detectors, queues, lanes, KPIs) as plain JSON-able sections, and remembers
  which entries changed since it was last asked.
* :class:`LiveRun` puts them together and hands out, at step boundaries and at most every
  ``flush_period_s`` of wall time, a :class:`Flush`: the new messages, the changed state entries
  and the new KPI rows. It never waits on its consumer: ``on_flush`` must not block.

Nothing here knows about sockets or processes; the control center runs a LiveRun in a process
of its own and carries flushes and commands across.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sim.controllers import ControlContext, Controller, create_controller
from sim.engine import RunResult, Simulation
from sim.errors import CcsimError
from sim.kpi import INTERVAL
from sim.messages import (
    BayObserved,
    ControllerChanged,
    GuardRefused,
    IncidentEnded,
    IncidentReported,
    IntersectionInterval,
    LaneStatus,
    Message,
    NetworkInterval,
    RunControlled,
    RunStarted,
    SignalDecision,
    SignalOverride,
    SignalPhase,
    SignalPreempted,
)
from sim.network import Network
from sim.scenario import Scenario
from sim.sensors import LaneObservation, StationReport
from sim.signals import ExternalShown, IncidentCommand, LaneCommand, PhaseControl, SignalCommand

Clock = Callable[[], float]


class Pacer:
    """Wall-clock pacing for the simulation thread (thread-safe). ``speed`` is simulated seconds
    per wall second; ``None`` runs as fast as the machine allows.

    When the simulation falls behind by more than ``max_lag_s`` (a slow step, a controller being
    compiled), the pacer starts counting afresh instead of racing to catch up.
    """

    def __init__(
        self, speed: float | None = 1.0, *, clock: Clock = time.monotonic, max_lag_s: float = 1.0
    ) -> None:
        check_speed(speed)
        self._speed = speed
        self._clock = clock
        self.max_lag_s = max_lag_s
        self._cond = threading.Condition()
        self._paused = False
        self._stopped = False
        self._nudged = False
        self._anchor: tuple[float, float] | None = None
        """(simulation time, wall time) from which the schedule counts."""
        self._released_t: float | None = None
        """The last simulation time let through."""

    @property
    def speed(self) -> float | None:
        return self._speed

    @property
    def paused(self) -> bool:
        return self._paused

    def set_speed(self, speed: float | None) -> None:
        check_speed(speed)
        with self._cond:
            self._speed = speed
            self._restart()

    def pause(self) -> None:
        with self._cond:
            self._paused = True
            self._cond.notify_all()

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._restart()

    def nudge(self) -> None:
        """Something waits to be applied between steps: the waiting thread runs its ``between``
        hook now rather than when the wait ends."""
        with self._cond:
            self._nudged = True
            self._cond.notify_all()

    def stop(self) -> None:
        """Let the simulation thread through for good (the run is ending)."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def _restart(self) -> None:
        # Count from the last step let through, now: a change never makes the run jump or race.
        self._anchor = None if self._released_t is None else (self._released_t, self._clock())
        self._cond.notify_all()

    def __call__(self, t: float, between: Callable[[], None] | None = None) -> None:
        """Block until simulation time ``t`` (s) is due on the wall clock; ``between`` runs (in
        this thread, still at ``t``) whenever :meth:`nudge` is called during the wait."""
        with self._cond:
            while not self._stopped:
                if self._nudged and between is not None:
                    self._nudged = False
                    self._cond.release()  # the hook may take a while: others may nudge meanwhile
                    try:
                        between()
                    finally:
                        self._cond.acquire()
                    continue
                if self._paused:
                    self._cond.wait()
                    continue
                now = self._clock()
                if self._speed is None or self._anchor is None:
                    self._anchor = (t, now)
                    break
                t0, wall0 = self._anchor
                due = wall0 + (t - t0) / self._speed
                if now >= due:
                    if now - due > self.max_lag_s:
                        self._anchor = (t, now)
                    break
                self._cond.wait(due - now)
            self._released_t = t


def check_speed(speed: float | None) -> None:
    if speed is not None and not 0.0 < speed <= 10_000.0:
        raise CcsimError(f"speed {speed:g}: expected a factor above 0 and at most 10000 (or max)")


# --- changing the controller mid-run -------------------------------------------------------------


class LiveController(Controller):
    """Delegates to one controller at a time; :meth:`switch` hands the signals to another.

    Only ccsim's own controllers can take over from each other: they share the detectors and the
    safety guard the run was started with. ``fixed`` and ``sumo-actuated`` let SUMO drive the
    signals, which a running simulation cannot hand over to or back from.
    """

    def __init__(self, initial: Controller) -> None:
        self.active = initial
        self.name = initial.name
        self.uses_detectors = initial.uses_detectors
        self.context: ControlContext | None = None

    def additional_files(self, network: Network, workdir: Path) -> list[Path]:
        return self.active.additional_files(network, workdir)

    def start(self, context: ControlContext) -> None:
        self.context = context
        self.active.start(context)

    def on_step(self, t: float) -> None:
        self.active.on_step(t)

    def switch(self, name: str) -> tuple[bool, str]:
        """Hand the signals to controller ``name`` from the next decision on; (accepted, why)."""
        if name == self.name:
            return False, f"'{name}' is already driving the signals"
        try:
            candidate = create_controller(name)
        except CcsimError as exc:
            return False, str(exc)
        if not self.uses_detectors:
            return False, f"'{self.name}' lets SUMO drive the signals; restart with --controller {name}"
        if not candidate.uses_detectors:
            return False, f"'{name}' lets SUMO drive the signals; restart with --controller {name}"
        if self.context is None:
            return False, "the simulation has not started yet"
        candidate.start(self.context)
        self.active, self.name = candidate, name
        return True, f"'{name}' drives the signals"


# --- the current state ---------------------------------------------------------------------------

StateChanges = dict[str, dict[str, Any]]
"""section -> key -> entry (a JSON-able value; ``None`` once an entry is gone)."""

Reducer = Callable[["LiveState", Message], None]
_REDUCERS: dict[str, Reducer] = {}


def register_reducer(kind: str) -> Callable[[Reducer], Reducer]:
    """Declare how messages of ``kind`` change the live state (devices of later issues plug in
    here: parking bays, gates, stations...)."""

    def add(reducer: Reducer) -> Reducer:
        _REDUCERS[kind] = reducer
        return reducer

    return add


class LiveState:
    """The district now, kept from the message stream (subscribe it to the bus) and from samples
    of the detectors and signal modes. Not thread-safe: the owner serialises access."""

    def __init__(self) -> None:
        self._sections: StateChanges = {}
        self._changed: StateChanges = {}

    def __call__(self, message: Message) -> None:
        reducer = _REDUCERS.get(message.kind)
        if reducer is not None:
            reducer(self, message)

    def get(self, section: str, key: str) -> Any:
        return self._sections.get(section, {}).get(key)

    def set(self, section: str, key: str, entry: Any) -> None:
        """Set one entry; it counts as changed only if it differs."""
        entries = self._sections.setdefault(section, {})
        if key in entries and entries[key] == entry:
            return
        entries[key] = entry
        self._changed.setdefault(section, {})[key] = entry

    def update(self, section: str, key: str, **fields: Any) -> None:
        """Merge ``fields`` into a dict entry."""
        current = self.get(section, key)
        self.set(section, key, {**(current if isinstance(current, dict) else {}), **fields})

    def add(self, section: str, key: str, amount: float) -> None:
        self.set(section, key, (self.get(section, key) or 0) + amount)

    def sample(self, detectors: Mapping[str, LaneObservation], modes: Mapping[str, str]) -> None:
        """Record what the detectors last reported (per lane) and each signal's mode."""
        for lane, obs in detectors.items():
            self.set(
                "detectors",
                lane,
                {"count": obs.count, "queue": obs.queue, "present": obs.present,
                 "occupancy": round(obs.occupancy, 3), "buses": obs.buses},
            )  # fmt: skip
        for tls, mode in modes.items():
            self.update("signals", tls, mode=mode)

    def changes(self) -> StateChanges:
        """The entries changed since the last call (and forget them)."""
        changed, self._changed = self._changed, {}
        return changed

    def snapshot(self) -> StateChanges:
        return {section: dict(entries) for section, entries in self._sections.items()}


@register_reducer(RunStarted.kind)
def _run_started(state: LiveState, message: Message) -> None:
    for key, value in message.payload.to_dict().items():
        state.set("run", key, value)
    state.set("run", "status", "running")


@register_reducer("run.finished")
def _run_finished(state: LiveState, message: Message) -> None:
    state.set("run", "status", "finished")


DECISIONS_KEPT = 6
"""The latest decisions kept per signal in the ``decisions`` section (the intersection panel's)."""


def _decided(state: LiveState, tls: str, entry: dict[str, Any]) -> None:
    kept = state.get("decisions", tls) or []
    state.set("decisions", tls, [*kept[-(DECISIONS_KEPT - 1) :], entry])


@register_reducer(SignalDecision.kind)
def _signal_decision(state: LiveState, message: Message) -> None:
    p = message.payload
    assert isinstance(p, SignalDecision)
    _decided(state, p.tls, {
        "t": message.t, "by": p.controller, "reason": p.reason, "detail": p.detail,
        "from": p.from_phase, "to": p.to_phase, "values": p.values,
    })  # fmt: skip


@register_reducer(SignalPreempted.kind)
def _signal_preempted(state: LiveState, message: Message) -> None:
    p = message.payload
    assert isinstance(p, SignalPreempted)
    _decided(state, p.tls, {
        "t": message.t, "by": "pre-emption", "reason": "preemption",
        "detail": f"emergency vehicle on {p.lane}: phase {p.phase} held for it", "to": p.phase,
    })  # fmt: skip


@register_reducer(GuardRefused.kind)
def _guard_refused(state: LiveState, message: Message) -> None:
    p = message.payload
    assert isinstance(p, GuardRefused)
    _decided(state, p.tls, {"t": message.t, "by": "guard", "reason": "guard", "detail": p.reason})


@register_reducer(SignalOverride.kind)
def _signal_override(state: LiveState, message: Message) -> None:
    p = message.payload
    assert isinstance(p, SignalOverride)
    what = f"{p.action} {p.argument}".strip()
    _decided(state, p.tls, {
        "t": message.t, "by": p.user, "reason": "operator",
        "detail": f"{what}: {'accepted' if p.accepted else 'refused'} ({p.detail})",
    })  # fmt: skip


@register_reducer(RunControlled.kind)
def _run_controlled(state: LiveState, message: Message) -> None:
    p = message.payload
    assert isinstance(p, RunControlled)
    if p.action in ("pause", "resume"):
        state.set("run", "paused", p.action == "pause")
    state.set("run", "speed", p.speed)


@register_reducer(SignalPhase.kind)
def _signal_phase(state: LiveState, message: Message) -> None:
    p = message.payload
    assert isinstance(p, SignalPhase)
    state.update("signals", p.tls, program=p.program, phase=p.phase, state=p.state, since=message.t)


@register_reducer(IntersectionInterval.kind)
def _intersection_interval(state: LiveState, message: Message) -> None:
    p = message.payload
    assert isinstance(p, IntersectionInterval)
    state.set(
        "intersections",
        p.tls,
        {"begin_s": p.begin_s, "end_s": p.end_s, "queue_mean_veh": round(p.queue_mean_veh, 2),
         "queue_max_veh": p.queue_max_veh},
    )  # fmt: skip


@register_reducer(NetworkInterval.kind)
def _network_interval(state: LiveState, message: Message) -> None:
    p = message.payload
    assert isinstance(p, NetworkInterval)
    state.set("kpis", "pending", p.pending)


def _counter(key: str) -> Reducer:
    def count(state: LiveState, message: Message) -> None:
        ids = getattr(message.payload, "ids", ())
        state.add("kpis", key, len(ids))
        if key in ("departed", "arrived"):
            running = (state.get("kpis", "departed") or 0) - (state.get("kpis", "arrived") or 0)
            state.set("kpis", "running", running)

    return count


register_reducer("vehicles.departed")(_counter("departed"))
register_reducer("vehicles.arrived")(_counter("arrived"))
register_reducer("vehicles.teleported")(_counter("teleported"))


@register_reducer("guard.violation")
def _guard_violation(state: LiveState, message: Message) -> None:
    state.add("kpis", "guard_violations", 1)


@register_reducer(LaneStatus.kind)
def _lane_status(state: LiveState, message: Message) -> None:
    p = message.payload
    assert isinstance(p, LaneStatus)
    if not p.accepted:
        return
    # ``since``: when the lane last closed or opened (a holder joining or leaving does neither).
    previous = state.get("lanes", p.lane) or {}
    since = previous["since"] if previous.get("closed") == p.closed else message.t
    state.set(
        "lanes",
        p.lane,
        {"closed": p.closed, "owners": list(p.owners), "user": p.user, "since": since},
    )


@register_reducer(IncidentReported.kind)
def _incident_reported(state: LiveState, message: Message) -> None:
    p = message.payload
    assert isinstance(p, IncidentReported)
    if p.accepted:
        state.set(
            "reported_incidents",
            p.incident,
            {"cause": p.cause, "edge": p.edge, "lane": p.lane, "pos_m": p.pos_m, "user": p.user,
             "since": message.t, "until": message.t + p.duration_s},
        )  # fmt: skip


@register_reducer(IncidentEnded.kind)
def _incident_ended(state: LiveState, message: Message) -> None:
    p = message.payload
    assert isinstance(p, IncidentEnded)
    if state.get("reported_incidents", p.incident) is not None:  # one an operator reported
        state.set("reported_incidents", p.incident, None)


@register_reducer(ControllerChanged.kind)
def _controller_changed(state: LiveState, message: Message) -> None:
    p = message.payload
    assert isinstance(p, ControllerChanged)
    if p.accepted:
        state.set("run", "controller", p.controller)


def _keyed(section: str, key: str) -> Reducer:
    """Each message is the latest entry of its device (named by the payload field ``key``)."""

    def reduce(state: LiveState, message: Message) -> None:
        entry = message.payload.to_dict()
        state.set(section, str(entry.pop(key, "")), {**entry, "t": message.t})

    return reduce


# Field devices: each appears in its own section, keyed by its id.
for _kind, _section, _key in (
    ("air.reading", "stations", "station"),
    ("gate.count", "gates", "gate"),
    ("sign.shown", "signs", "sign"),
    ("radar.passes", "radars", "site"),
    ("pedestrian.count", "crossings", "site"),
    ("sensor.fault", "sensor_faults", "lane"),
    ("incident.detected", "incidents", "lane"),
):
    register_reducer(_kind)(_keyed(_section, _key))


@register_reducer("sensor.recovered")
def _sensor_recovered(state: LiveState, message: Message) -> None:
    state.set("sensor_faults", str(message.payload.to_dict().get("lane", "")), None)


@register_reducer("parking.occupancy")
def _parking_occupancy(state: LiveState, message: Message) -> None:
    for zone in message.payload.to_dict().get("zones", ()):
        entry = dict(zone)
        state.set("zones", str(entry.pop("zone", "")), entry)


@register_reducer("devices.deployed")
def _devices_deployed(state: LiveState, message: Message) -> None:
    entry = message.payload.to_dict()
    state.set("devices", str(entry.get("device", "")), list(entry.get("sites", ())))


def _violation(state: LiveState, message: Message) -> None:
    state.add("kpis", "violations", 1)


for _kind in ("violation", "violation.red_light", "violation.speeding", "violation.crosswalk",
              "violation.box_blocking", "violation.improper_turn"):  # fmt: skip
    register_reducer(_kind)(_violation)


# --- the live run --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ControllerSwitch:
    """An operator hands the signals to another controller (applied at a step boundary)."""

    controller: str
    user: str = "operator"
    command: int = 0
    """The audit entry this came from (its id), named again on the answer; 0: none."""


@dataclass(frozen=True)
class RunControl:
    """An operator pauses (``pause``) or resumes (``resume``) the run, or sets its speed
    (``speed``: ``value`` simulated seconds per wall second, None: as fast as it goes). The
    pacer obeys at once; the answer (:class:`~sim.messages.RunControlled`) goes on the stream
    from the simulation thread once it has (a pause: at the step it stopped after)."""

    action: str
    value: float | None = None
    user: str = "operator"
    command: int = 0
    """The audit entry this came from (its id), named again on the answer; 0: none."""


LiveCommand = (
    SignalCommand | LaneCommand | PhaseControl | IncidentCommand | ControllerSwitch | RunControl
)


@dataclass(frozen=True)
class Outcome:
    """What became of the command submitted as ``command_id``; ``t`` is when it was applied."""

    command_id: int
    accepted: bool
    detail: str
    t: float | None = None


@dataclass
class Flush:
    """What happened since the previous flush, up to simulation time ``t`` (s)."""

    t: float
    messages: list[Message] = field(default_factory=list)
    changes: StateChanges = field(default_factory=dict)
    kpis: list[dict[str, Any]] = field(default_factory=list)
    """New rows of the run's KPI time series (the rows of ``timeseries.parquet``)."""
    outcomes: list[Outcome] = field(default_factory=list)
    """Commands applied since the last flush (after ``changes``, which show their effect)."""


Answer = SignalOverride | LaneStatus | IncidentReported | ControllerChanged | RunControlled
"""The messages that say what came of a command (each names it by ``command``)."""


class LiveRun:
    """One simulation run live; see the module docstring. :meth:`run` blocks (call it in the
    thread that owns the simulation); every other method may be called from any thread."""

    def __init__(
        self,
        scenario: Scenario,
        controller: str,
        *,
        seed: int,
        workdir: Path,
        speed: float | None = 1.0,
        begin_s: float | None = None,
        end_s: float | None = None,
        on_flush: Callable[[Flush], None],
        on_outcome: Callable[[Outcome], None],
        flush_period_s: float = 0.05,
        clock: Clock = time.monotonic,
        bay_reports: bool = False,
        stations: bool = False,
    ) -> None:
        self.pacer = Pacer(speed, clock=clock)
        self.controller = LiveController(create_controller(controller))
        self.simulation = Simulation(
            scenario,
            self.controller,
            seed=seed,
            workdir=workdir,
            begin_s=begin_s,
            end_s=end_s,
            pace=self._pace,
        )
        self.simulation.bay_reports_fed = bay_reports
        self.simulation.stations_fed = stations
        self.state = LiveState()
        self.state.set("run", "status", "starting")
        self.state.set("run", "speed", speed)
        self.state.set("run", "paused", False)
        self._on_flush = on_flush
        self._on_outcome = on_outcome
        self.flush_period_s = flush_period_s
        self._clock = clock
        self._lock = threading.Lock()
        self._messages: list[Message] = []
        self._outcomes: list[Outcome] = []
        self._t = self.simulation.begin_s
        self._last_flush = -float("inf")
        self._pending: set[int] = set()
        """Commands submitted to the simulation, not answered yet."""
        self._switches: deque[ControllerSwitch] = deque()
        self._controls: deque[RunControl] = deque()
        """Run controls the pacer obeyed, for the simulation thread to answer on the stream."""
        self._kpi_rows_seen: set[tuple[Any, ...]] = set()
        self._intervals_seen = 0
        self._ended = False
        self.simulation.bus.subscribe(self._on_message)

    # --- commands (any thread) ------------------------------------------------------------------

    def submit(self, command_id: int, command: LiveCommand) -> None:
        """Queue ``command`` as command ``command_id``; the simulation's answer names that id,
        and its :class:`Outcome` reaches ``on_outcome`` (with the flush that shows its effect)."""
        command = replace(command, command=command_id)
        with self._lock:
            if self._ended:
                refused = Outcome(command_id, False, "the run has ended", self._t)
            else:
                if command_id:
                    self._pending.add(command_id)
                if isinstance(command, ControllerSwitch):
                    self._switches.append(command)
                elif isinstance(command, RunControl):
                    self._control(command)
                else:
                    self.simulation.submit(command)
                return
        self._on_outcome(refused)

    def _control(self, command: RunControl) -> None:
        """Obey a run control at once (under the lock); the simulation thread answers it."""
        if command.action == "pause":
            self.pacer.pause()
        elif command.action == "resume":
            self.pacer.resume()
        elif command.action == "speed":
            self.pacer.set_speed(command.value)  # checked by the caller: a bad one never comes
        self._controls.append(command)
        self.pacer.nudge()  # a waiting (or paused) simulation thread answers now

    def report(self, observed: Sequence[BayObserved]) -> None:
        """Bay reports ingested from the sensors' network, for the next step boundary."""
        for one in observed:
            self.simulation.report(one)

    def feed_station(self, report: StationReport) -> None:
        """An external station's completed period, for the controllers it drives."""
        self.simulation.feed_station(report)

    def show_external(self, report: ExternalShown) -> None:
        """What an external controller in the loop shows: applied at once if the simulation
        thread is waiting between steps (at x1, most of the time), else at the next boundary."""
        self.simulation.show_external(report)
        self.pacer.nudge()

    def _between(self) -> None:
        self.simulation.apply_external(self._t)
        self._answer_controls(self._t)
        with self._lock:
            if self._messages:
                self._flush_locked()  # a mirrored phase, a flash or a pause goes out at once

    def _answer_controls(self, t: float) -> None:
        """Put the run controls obeyed since the last call on the stream (simulation thread)."""
        while True:
            with self._lock:
                if not self._controls:
                    return
                command = self._controls.popleft()
            if command.action == "pause":
                detail = f"paused at t={t:g} s"
            elif command.action == "resume":
                detail = f"resumed at t={t:g} s"
            else:
                detail = f"speed {'max' if command.value is None else f'x{command.value:g}'}"
            self.simulation.bus.publish(t, "engine", RunControlled(
                command.action, self.pacer.speed, command.user, True, detail, command.command
            ))  # fmt: skip

    def pause(self) -> None:
        self.submit(0, RunControl("pause"))

    def resume(self) -> None:
        self.submit(0, RunControl("resume"))

    def set_speed(self, speed: float | None) -> None:
        check_speed(speed)
        self.submit(0, RunControl("speed", speed))

    def stop(self) -> None:
        """End the run after the current step (its outputs cover the time run)."""
        self.simulation.stop()
        self.pacer.stop()

    # --- the simulation thread --------------------------------------------------------------------

    def run(self) -> RunResult:
        """Run to the end (or :meth:`stop`); the final flush carries the end-of-run messages."""
        status = "failed"
        try:
            result = self.simulation.run()
            status = "finished"
            return result
        finally:
            with self._lock:
                self._ended = True
                self.state.set("run", "status", status)
                unapplied = sorted(self._pending)
                self._pending.clear()
                self._switches.clear()
                self._controls.clear()
                self._outcomes += [
                    Outcome(i, False, "the run ended before it applied", self._t) for i in unapplied
                ]
                self._flush_locked()

    def _on_message(self, message: Message) -> None:
        with self._lock:
            self._messages.append(message)
            self.state(message)
            payload = message.payload
            if (
                isinstance(payload, NetworkInterval | IntersectionInterval)
                or message.kind == "run.finished"
            ):
                self._intervals_seen += 1
            if isinstance(payload, Answer) and payload.command in self._pending:
                self._pending.discard(payload.command)
                self._outcomes.append(
                    Outcome(payload.command, payload.accepted, payload.detail, message.t)
                )

    def _pace(self, t: float) -> None:
        self._t = t
        while self._switches:
            self._switch(t, self._switches.popleft())
        self._answer_controls(t)
        with self._lock:
            self.state.set("run", "t", t)
            # A command's outcome goes out at once; a waiting operator should not wait longer.
            if self._outcomes or self._clock() - self._last_flush >= self.flush_period_s:
                self._flush_locked()
        self.pacer(t, self._between)

    def _switch(self, t: float, command: ControllerSwitch) -> None:
        previous = self.controller.name
        accepted, detail = self.controller.switch(command.controller)
        self.simulation.bus.publish(
            t,
            "engine",
            ControllerChanged(
                command.controller, previous, command.user, accepted, detail, command.command
            ),
        )

    def _flush_locked(self) -> None:
        self._last_flush = self._clock()
        context = self.controller.context
        if context is not None:
            sensors = context.sensors
            signals = context.signals
            modes = {
                tls: guard.mode.value if signals.driving else "program"
                for tls, guard in signals.guards.items()
            }
            self.state.sample(sensors.latest if sensors is not None else {}, modes)
        flush = Flush(self._t, self._messages, kpis=self._new_kpi_rows(), outcomes=self._outcomes)
        # The latest closed interval's network figures, apart from the run's running counters
        # in ``kpis`` (both have ``departed`` and ``arrived``: per interval vs since the start).
        closed = [r for r in flush.kpis if r["scope"] == "network" and r["period"] == INTERVAL]
        for row in closed:
            self.state.set("interval", row["metric"], row["value"])
        if closed:
            self.state.set("interval", "end_s", max(r["end_s"] for r in closed))
        flush.changes = self.state.changes()
        self._messages, self._outcomes = [], []
        self._on_flush(flush)

    def _new_kpi_rows(self) -> list[dict[str, Any]]:
        """Rows of the KPI time series not handed out yet: each interval's as it closes, the
        whole run's (and SUMO's own measurements) once the run has ended."""
        if not self._intervals_seen:
            return []
        self._intervals_seen = 0
        rows = []
        for row in self.simulation.kpi.timeseries():
            if row["period"] != INTERVAL and not self._ended:
                continue
            key = (row["period"], row["begin_s"], row["end_s"], row["scope"], row["metric"])
            if key not in self._kpi_rows_seen:
                self._kpi_rows_seen.add(key)
                rows.append(row)
        return rows
