"""The live simulation in a process of its own, and the two one-way channels to it.

libsumo allows one simulation per process, and a simulation step holds the interpreter for
milliseconds at a time: in a separate process it can neither stall the feed's event loop nor be
stalled by it. The child runs a :class:`~sim.live.LiveRun` with the alarm rules subscribed to
its message stream, and puts records on a queue that never blocks it:

* :class:`Batch` - per flush: the messages as store rows, new KPI rows and alarm condition
  changes (the parent reduces the rows into the control room's state);
* :class:`~sim.live.Outcome` - what became of a command refused before it reached the run
  (the others travel in the batch that shows their effect);
* :class:`RunEnded` - last of all.

The parent sends :class:`Control` values down a pipe. When the parent dies (even by SIGKILL) the
pipe closes, and the child stops its run and exits.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.queues
import queue
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from controlcenter.rules import ConditionChange, Rule, RuleEngine
from controlcenter.state import Row, StateChanges
from sim.errors import CcsimError
from sim.live import Flush, LiveCommand, LiveRun, Outcome
from sim.messages import BayObserved
from sim.outputs import RunOutputs, event_row
from sim.scenario import load_scenario
from sim.sensors import StationReport
from sim.signals import ExternalShown


@dataclass(frozen=True)
class ChildSpec:
    """What the child runs. ``speed`` None: as fast as possible."""

    scenario: str
    controller: str
    seed: int
    speed: float | None
    out: Path
    rules: tuple[Rule, ...]
    begin_s: float | None = None
    end_s: float | None = None
    flush_period_s: float = 0.05
    bay_reports: bool = False
    stations: bool = False
    """The scenario's external NTCIP stations are polled: those with ``drive`` drive control."""
    variant: str | None = None
    """Bay reports ingested from the sensors' network come in (``ccsim serve --mqtt``)."""


@dataclass
class Batch:
    t: float
    events: list[Row]
    kpis: list[dict[str, Any]]
    conditions: list[ConditionChange] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    changes: StateChanges = field(default_factory=dict)
    """The state entries the events changed: reduced in the parent, which fills this in before
    handing the batch on (the feed, the adapters)."""


@dataclass(frozen=True)
class RunEnded:
    status: str
    """finished, stopped or failed."""
    detail: str = ""
    summary: dict[str, Any] | None = None


@dataclass(frozen=True)
class Control:
    """submit (``command_id``, ``command``: an operator's, run controls included), report
    (``observed``: bay reports ingested from the network), external (``external``: what an
    external controller in the loop shows), station (``station``: an external detector
    station's period), stop."""

    action: str
    command_id: int = 0
    command: LiveCommand | None = None
    observed: tuple[BayObserved, ...] = ()
    external: ExternalShown | None = None
    station: StationReport | None = None


Record = Batch | Outcome | RunEnded


# --- the child ------------------------------------------------------------------------------------


def child_main(spec: ChildSpec, control: Connection, out: multiprocessing.queues.Queue[Record]) -> None:
    """Entry point of the simulation process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when the run stops
    rules = RuleEngine(spec.rules)
    outputs: RunOutputs | None = None

    def on_flush(flush: Flush) -> None:
        rows = [event_row(m) for m in flush.messages]
        if outputs is not None:
            outputs.add(rows)
        out.put(Batch(flush.t, rows, flush.kpis, rules.drain(), flush.outcomes))

    try:
        # The stream goes to events.parquet as it comes (as for ccsim run): a run of hours or
        # days must not hold all of it in memory until the end.
        outputs = RunOutputs(spec.out)
        live = LiveRun(
            load_scenario(spec.scenario, spec.variant),
            spec.controller,
            seed=spec.seed,
            workdir=outputs.out / "sumo",
            speed=spec.speed,
            begin_s=spec.begin_s,
            end_s=spec.end_s,
            on_flush=on_flush,
            on_outcome=out.put,
            flush_period_s=spec.flush_period_s,
            bay_reports=spec.bay_reports,
            stations=spec.stations,
            keep_messages=False,
        )
        live.simulation.bus.subscribe(rules)
        stopped = threading.Event()
        threading.Thread(
            target=_obey, args=(control, live, stopped), name="ccsim-control", daemon=True
        ).start()
        result = live.run()
        outputs.finish(result.summary, result.timeseries)
        outputs = None
        out.put(RunEnded("stopped" if stopped.is_set() else "finished", "", result.summary))
    except (CcsimError, OSError) as exc:
        out.put(RunEnded("failed", str(exc)))
    except Exception as exc:
        out.put(RunEnded("failed", f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        if outputs is not None:
            outputs.abandon()
        out.close()
        out.join_thread()


def _obey(control: Connection, live: LiveRun, stopped: threading.Event) -> None:
    while True:
        try:
            order: Control = control.recv()
        except (EOFError, OSError):  # the parent is gone: end the run
            stopped.set()
            live.stop()
            return
        if order.action == "submit" and order.command is not None:
            live.submit(order.command_id, order.command)
        elif order.action == "report":
            live.report(order.observed)
        elif order.action == "external" and order.external is not None:
            live.show_external(order.external)
        elif order.action == "station" and order.station is not None:
            live.feed_station(order.station)
        elif order.action == "stop":
            stopped.set()
            live.stop()
            return


# --- the parent's handle --------------------------------------------------------------------------


class SimProcess:
    """Starts the child, sends it controls (thread-safe), and hands every record it puts out to
    ``on_record`` from a pump thread (a child that dies without a word yields ``RunEnded``)."""

    def __init__(self, spec: ChildSpec, on_record: Callable[[Record], None]) -> None:
        self.spec = spec
        self._on_record = on_record
        self._context = multiprocessing.get_context("spawn")
        self._process: multiprocessing.process.BaseProcess | None = None
        self._control: Connection | None = None
        self._lock = threading.Lock()
        self._pump: threading.Thread | None = None
        self.ended: RunEnded | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        return self.ended is None and self._process is not None and self._process.is_alive()

    def start(self) -> None:
        receiver, sender = self._context.Pipe(duplex=False)
        records: multiprocessing.queues.Queue[Record] = self._context.Queue()
        self._process = self._context.Process(
            target=child_main,
            args=(self.spec, receiver, records),
            name="ccsim-simulation",
            daemon=True,
        )
        self._process.start()
        receiver.close()  # the child's now; ours closing with us is what tells it we are gone
        self._control = sender
        self._pump = threading.Thread(target=self._run_pump, args=(records,), daemon=True)
        self._pump.start()

    def refusal(self, command: LiveCommand) -> str | None:
        """Why ``command`` cannot be sent (None: it goes to the simulation, which decides)."""
        return None

    def send(self, control: Control) -> bool:
        """Send a control; False if the run is over (nothing was sent)."""
        with self._lock:
            if self._control is None or not self.running:
                return False
            try:
                self._control.send(control)
            except OSError:
                return False
            return True

    def _run_pump(self, records: multiprocessing.queues.Queue[Record]) -> None:
        process = self._process
        assert process is not None
        while True:
            try:
                record = records.get(timeout=0.5)
            except queue.Empty:
                if process.is_alive():
                    continue
                record = RunEnded("failed", f"the simulation process exited (code {process.exitcode})")
            if isinstance(record, RunEnded):
                self.ended = record
            self._on_record(record)
            if isinstance(record, RunEnded):
                return

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the run and wait for the child (killing it if it does not end in time)."""
        self.send(Control("stop"))
        if self._process is not None:
            self._process.join(timeout_s)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(timeout_s)
        if self._pump is not None:
            self._pump.join(timeout_s)
        with self._lock:
            if self._control is not None:
                self._control.close()
                self._control = None
