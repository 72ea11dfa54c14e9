"""``ccsim replay``: the control room of a finished run, from its ``events.parquet``.

The stream is the record: everything the control room shows is reduced from messages
(controlcenter/state.py), so replaying a run's messages through the same reducers shows what
was shown live. :class:`Replayer` stands where the simulation process stands for ``ccsim serve``:
it hands the control center batches of messages as their simulation time comes (at the replay's
speed), obeys pause, resume and speed, and can :meth:`~Replayer.seek` to any time of the run
(the state is then rebuilt from the start up to that time). Commands that would act on a
simulation (overrides, lanes, incidents, the controller) are refused: the run is over.

What the control room shows besides the stream - the map, the devices, the parking zones, the
entities of the adapters - comes from the scenario, as live: :func:`replay_config` loads it with
the variant the run applied (its ``run.started`` message records it).
"""

from __future__ import annotations

import bisect
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from controlcenter.config import ServeConfig
from controlcenter.simproc import Batch, Control, RunEnded
from controlcenter.state import Row
from sim.errors import CcsimError
from sim.kpi import INTERVAL
from sim.live import Outcome, RunControl, check_speed
from sim.outputs import EVENTS_SCHEMA
from sim.scenario import load_scenario

TICK_S = 0.05
"""Wall seconds between two batches of a playing replay (as a live run's flush period)."""

EVENT_COLUMNS = ("t", "seq", "source", "kind", "payload")


@dataclass
class RecordedRun:
    """A finished run's messages (in stream order) and KPI rows, as ``ccsim run`` or ``serve``
    wrote them into ``run_dir``."""

    run_dir: Path
    rows: list[Row]
    kpis: list[dict[str, Any]]
    started: dict[str, Any]
    """The ``run.started`` payload: scenario, controller, seed, begin_s, end_s..."""
    times: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.times = [row[1] for row in self.rows]

    @property
    def begin_t(self) -> float:
        return float(self.started.get("begin_s", self.times[0] if self.times else 0.0))

    @property
    def variant(self) -> str | None:
        """The scenario variant the run applied (empty: none); None if the run does not say (its
        events are from before runs recorded their variant)."""
        value = self.started.get("variant")
        return None if value is None else str(value)

    @property
    def end_t(self) -> float:
        return max(self.times[-1] if self.times else 0.0, self.begin_t)

    def until(self, t: float) -> int:
        """How many messages there are up to time ``t`` (s) included."""
        return bisect.bisect_right(self.times, t)

    def interval_rows(self, after: float, until: float) -> list[dict[str, Any]]:
        """The KPI rows of the intervals that closed in (``after``, ``until``] (s), as a live run
        hands them out when each closes."""
        return [r for r in self.kpis if r["period"] == INTERVAL and after < r["end_s"] <= until]


def load_run(run_dir: Path) -> RecordedRun:
    """Read ``run_dir``'s ``events.parquet`` (and ``timeseries.parquet`` if there): a clear
    error names the file and what is wrong with it."""
    if not run_dir.is_dir():
        raise CcsimError(f"{run_dir}: no such folder (expected a run's output folder)")
    events = run_dir / "events.parquet"
    if not events.is_file():
        raise CcsimError(
            f"{events}: not found; a run folder holds the events.parquet that ccsim run or "
            "ccsim serve wrote at its end"
        )
    try:
        table = pq.read_table(events)
    except Exception as exc:
        raise CcsimError(f"{events}: not a Parquet file ({exc})") from None
    missing = [c for c in EVENT_COLUMNS if c not in table.column_names]
    if missing:
        raise CcsimError(f"{events}: columns {missing} missing; expected {list(EVENT_COLUMNS)}")
    for column in EVENTS_SCHEMA:
        got = table.schema.field(column.name).type
        if got != column.type:
            raise CcsimError(f"{events}: column '{column.name}' holds {got}; expected {column.type}")
        if table.column(column.name).null_count:
            raise CcsimError(f"{events}: column '{column.name}' has empty values; expected none")
    columns = {c: table.column(c).to_pylist() for c in EVENT_COLUMNS}
    rows: list[Row] = sorted(
        zip(columns["seq"], columns["t"], columns["source"], columns["kind"], columns["payload"],
            strict=True),
    )  # fmt: skip
    started = next((row for row in rows if row[3] == "run.started"), None)
    if started is None:
        raise CcsimError(f"{events}: no run.started message; not the events of a ccsim run")
    for seq, _t, _source, kind, payload in rows:  # here, not in the middle of the replay
        try:
            parsed = json.loads(payload)
        except json.JSONDecodeError as exc:
            raise CcsimError(f"{events}: seq {seq} ({kind}): the payload is not JSON ({exc})") from None
        if not isinstance(parsed, dict):
            raise CcsimError(f"{events}: seq {seq} ({kind}): the payload is not a JSON object")
    start = json.loads(started[4])
    kpis: list[dict[str, Any]] = []
    timeseries = run_dir / "timeseries.parquet"
    if timeseries.is_file():
        try:
            kpis = pq.read_table(timeseries).to_pylist()
        except Exception as exc:
            raise CcsimError(f"{timeseries}: not a Parquet file ({exc})") from None
    return RecordedRun(run_dir, rows, kpis, start)


def replay_config(
    run: RecordedRun,
    *,
    scenario: str | None = None,
    variant: str | None = None,
    say: Callable[[str], None],
    **server: Any,
) -> ServeConfig:
    """The settings that show ``run`` as it was shown live: its scenario (``scenario`` instead,
    where the run's name is not a bundled one) with the variant it applied (``variant`` instead,
    empty for none), its controller and seed; ``server`` holds the server's own settings
    (``speed``, ``port``, ``db_url``...).

    A run that does not record its variant (from before runs did) is shown with the scenario
    without one, and ``say`` says so. A scenario that cannot be loaded, or a variant that cannot
    be applied to it (the scenario.toml changed since the run), is an error naming the run's
    folder and the variant."""
    started = run.started
    spec = scenario or str(started.get("scenario", ""))
    try:
        load_scenario(spec)
    except CcsimError as exc:
        raise CcsimError(
            f"{run.run_dir}: its run's scenario '{spec}' cannot be loaded ({exc}); "
            "name it with --scenario"
        ) from None
    given = variant is not None
    if variant is None:
        variant = run.variant
        if variant is None:
            say(
                f"replay: {run.run_dir} does not record the run's scenario variant (a run from "
                f"before runs recorded it): showing '{spec}' without one; if the run had one, "
                "name it with --variant"
            )
    if variant:
        try:
            load_scenario(spec, variant)
        except CcsimError as exc:
            what = "--variant" if given else "its run's scenario variant"
            raise CcsimError(
                f"{run.run_dir}: {what} '{variant}' cannot be applied to scenario '{spec}' "
                f"({exc}); name the variant to show with --variant (--variant '' for none)"
            ) from None
    return ServeConfig(
        scenario=spec,
        variant=variant or None,
        controller=str(started.get("controller", "fixed")),
        seed=int(started.get("seed", 1)),
        **server,
    )


@dataclass(frozen=True)
class Seek:
    """The replay moved to ``batch.t``: ``batch`` holds every message (and closed interval) up
    to then, to be reduced into a fresh state."""

    batch: Batch


ReplayRecord = Batch | Outcome | RunEnded | Seek


class Replayer:
    """Plays a :class:`RecordedRun` to the control center, as :class:`~controlcenter.simproc.
    SimProcess` plays a live run (the same ``on_record``, ``send``, ``running``...). Thread-safe."""

    def __init__(
        self, run: RecordedRun, on_record: Callable[[ReplayRecord], None], *, speed: float | None
    ) -> None:
        check_speed(speed)
        self.run = run
        self._on_record = on_record
        self.speed = speed
        self.paused = False
        self.ended: RunEnded | None = None
        self._t = run.begin_t
        self._next = 0
        """The index of the next message to hand out."""
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._stopped = False
        self._thread: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return None  # nothing runs

    @property
    def running(self) -> bool:
        return not self._stopped

    @property
    def t(self) -> float:
        return self._t

    def start(self) -> None:
        self._thread = threading.Thread(target=self._play, name="ccsim-replay", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        with self._lock:
            self._stopped = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)

    # --- commands -------------------------------------------------------------------------------

    def refusal(self, command: object) -> str | None:
        """Why ``command`` cannot be applied here (None: it can): only the replay's own
        pause, resume and speed can."""
        if isinstance(command, RunControl):
            return None
        return "this is a replay of a finished run: there is no simulation to act on"

    def send(self, control: Control) -> bool:
        """Obey a run control (answered at once); anything else is not for a replay."""
        command = control.command
        if control.action != "submit" or not isinstance(command, RunControl) or self._stopped:
            return False
        with self._lock:
            if command.action == "pause":
                self.paused = True
                detail = f"paused at t={self._t:g} s"
            elif command.action == "resume":
                self.paused = False
                detail = f"resumed at t={self._t:g} s"
            else:
                self.speed = command.value
                detail = f"speed {'max' if command.value is None else f'x{command.value:g}'}"
            self._wake.notify_all()
            outcome = Outcome(control.command_id, True, detail, self._t)
            self._on_record(Batch(self._t, [], [], outcomes=[outcome]))
        return True

    def seek(self, t: float) -> float:
        """Move the replay to simulation time ``t`` (s), between the run's begin and end; returns
        the time moved to. The state shown is then the one as of ``t``."""
        run = self.run
        if not run.begin_t <= t <= run.end_t:
            raise CcsimError(f"t {t:g}: outside the run, expected {run.begin_t:g} to {run.end_t:g} s")
        with self._lock:
            self._next = run.until(t)
            self._t = t
            batch = Batch(t, run.rows[: self._next], run.interval_rows(-float("inf"), t))
            self._on_record(Seek(batch))
            self._wake.notify_all()
        return t

    # --- the thread -----------------------------------------------------------------------------

    def _play(self) -> None:
        run = self.run
        wall = time.monotonic()
        first = True
        while True:
            with self._lock:
                if self._stopped:
                    return
                now = time.monotonic()
                elapsed, wall = now - wall, now
                at_end = self._next >= len(run.rows) and self._t >= run.end_t
                if not first and (self.paused or at_end):
                    self._wake.wait()  # until resumed, sought back, or stopped
                    wall = time.monotonic()
                    continue
                before = self._t
                if first:
                    target = before  # the run's first instant
                elif self.speed is None:
                    target = run.end_t
                else:
                    target = min(run.end_t, before + elapsed * self.speed)
                first = False
                end = run.until(target)
                rows = run.rows[self._next : end]
                self._next, self._t = end, target
                kpis = run.interval_rows(-float("inf") if before == run.begin_t else before, target)
                self._on_record(Batch(target, rows, kpis))
            time.sleep(TICK_S)
