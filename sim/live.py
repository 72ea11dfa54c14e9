"""A live run: the simulation paced to the wall clock and steerable while it runs.

Virtual time stays in the engine; this module only wraps it, as ``simpy.rt`` wraps simpy:

* :class:`Pacer` is the ``pace`` hook of :class:`~sim.engine.Simulation`: after each step it
  blocks the simulation thread until the wall clock has caught up with ``t / speed``. Pause,
  resume and speed changes (from any thread) take effect at once, even in the middle of a wait.
* :class:`LiveController` wraps a controller so that an operator can change it mid-run.
* :class:`LiveRun` puts them together and hands out, at step boundaries and at most every
  ``flush_period_s`` of wall time, a :class:`Flush`: the new messages, the new KPI rows and the
  commands' outcomes. It never waits on its consumer: ``on_flush`` must not block.

Nothing here knows about sockets or processes, nor about what a control room shows: the control
center runs a LiveRun in a process of its own, carries flushes and commands across, and reduces
the messages into its state (controlcenter/state.py), as it does when it replays a run.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
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
    IncidentReported,
    IntersectionInterval,
    LaneStatus,
    Message,
    NetworkInterval,
    RunControlled,
    SignalOverride,
)
from sim.network import Network
from sim.scenario import Scenario
from sim.sensors import StationReport
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
    kpis: list[dict[str, Any]] = field(default_factory=list)
    """New rows of the run's KPI time series (the rows of ``timeseries.parquet``)."""
    outcomes: list[Outcome] = field(default_factory=list)
    """Commands applied since the last flush (after ``messages``, which show their effect)."""


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
        keep_messages: bool = True,
    ) -> None:
        """``keep_messages`` False: the result's log stays empty (the caller keeps the flushed
        messages, e.g. writes them out as they come)."""
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
            keep_messages=keep_messages,
        )
        self.simulation.bay_reports_fed = bay_reports
        self.simulation.stations_fed = stations
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
        self.status = "running"
        """running, then finished or failed."""
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
        status = "failed"  # what became of the run (``status``, once it returns)
        try:
            result = self.simulation.run()
            status = "finished"
            return result
        finally:
            with self._lock:
                self._ended = True
                self.status = status
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
        flush = Flush(self._t, self._messages, kpis=self._new_kpi_rows(), outcomes=self._outcomes)
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
