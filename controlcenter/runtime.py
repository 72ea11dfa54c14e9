"""The running control center: one object that wires store, auth, recorder, simulation process,
feed and commands together, and starts and stops them with the server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adapters.mqtt.broker import BrokerUrl
from controlcenter.alarm_book import AlarmBook
from controlcenter.alarms import Alarm, AlarmEvent
from controlcenter.auth import Authenticator, LoginThrottle
from controlcenter.collector import PacedCollector
from controlcenter.commands import Commands
from controlcenter.config import ServeConfig
from controlcenter.feed import FeedHub, StateMirror
from controlcenter.geo import Georef, serve_origin
from controlcenter.geojson import NetworkMap, network_map
from controlcenter.lorawan import LoRaWANLink
from controlcenter.ngsild.entities import EntityBook
from controlcenter.ngsild.push import Pusher
from controlcenter.recorder import Recorder, Session
from controlcenter.replay import RecordedRun, Replayer, Seek
from controlcenter.sensorthings.live import SensorThingsLive
from controlcenter.simproc import Batch, ChildSpec, Control, Record, RunEnded, SimProcess
from controlcenter.state import ControlState
from controlcenter.store import Store
from sim.controllers import create_controller
from sim.detectors import place_detectors, priority_types
from sim.errors import CcsimError
from sim.live import Outcome
from sim.messages import BayObserved
from sim.network import read_network
from sim.programs import add_programs
from sim.scenario import Scenario, load_scenario
from sim.study import check_window

if TYPE_CHECKING:
    from controlcenter.ntcip import NtcipService


log = logging.getLogger("ccsim.controlcenter")


@dataclass(frozen=True)
class RunInfo:
    id: int
    scenario: str
    controller: str
    seed: int


class RunRefused(CcsimError):
    """A new run cannot start now (and why)."""


class ControlCenter:
    """Everything ``ccsim serve`` runs. Build it (validating the inputs), then :meth:`lifespan`."""

    def __init__(
        self,
        config: ServeConfig,
        store: Store,
        *,
        throttle: LoginThrottle | None = None,
        ntcip: NtcipService | None = None,
        mqtt_url: BrokerUrl | None = None,
        replay: RecordedRun | None = None,
    ) -> None:
        """``replay``: serve this finished run from its events instead of running one."""
        self.config = config
        self.replay = replay
        self.store = store
        scenario = load_scenario(config.scenario, config.variant)
        self.scenario = scenario
        create_controller(config.controller)
        check_window(scenario, config.begin_s, config.end_s)
        self.map = network_map_of(scenario, config.controller)
        self.auth = Authenticator(store.token_users(), throttle or LoginThrottle())
        self.mirror = StateMirror()
        self.started_at = time.time()
        writer = store.writer()
        try:
            with writer.transaction():
                writer.close_interrupted_runs()
                name = scenario.name if replay is None else f"{scenario.name} (replay)"
                run_id = writer.begin_run(name, config.controller, config.seed)
        finally:
            writer.close()
        self.run = RunInfo(run_id, scenario.name, config.controller, config.seed)
        book = AlarmBook(store.open_alarms(), store.next_alarm_id(), run_id, self.map.locate)
        origin, origin_from = serve_origin(config.geo_origin, scenario.geo_origin)
        self.ngsild = EntityBook(
            scenario, self.map.network, self.map, epoch_s=self.started_at, begin_s=config.begin_s,
            georef=Georef(self.map.network, origin, origin_from),
        )  # fmt: skip
        self.ngsild.on_alarms([alarm.to_dict() for alarm in book.alarms.values()])
        self.ngsild_push = (
            Pusher(config.ngsi_ld, self.ngsild, period_s=config.ngsi_ld_period_s)
            if config.ngsi_ld is not None
            else None
        )
        self.collector = PacedCollector()
        """Started by the server process (:func:`controlcenter.server.serve`), not here."""
        self.hub = FeedHub(
            self.mirror,
            rate_hz=config.feed_rate_hz,
            send_timeout_s=config.send_timeout_s,
            load_alarm_events=self._alarm_events_since,
            open_alarms=list(book.alarms.values()),
            alarm_seq=store.last_alarm_seq(),
        )
        self.hub.after_tick = self.collector.after_tick
        self.recorder = Recorder(
            store,
            book,
            run_id,
            on_alarms=self._on_alarms,
            on_outcome=self._on_outcome,
        )
        out = config.out or Path("out") / f"serve-{scenario.name}"
        self.state = ControlState()
        """What the control room shows, reduced here from the simulation's messages (the pump
        thread's: it alone touches it)."""
        self.simulation: SimProcess | Replayer
        if replay is not None:
            self.simulation = Replayer(replay, self._on_record, speed=config.speed)
        else:
            self.simulation = SimProcess(
                ChildSpec(
                    scenario=config.scenario,
                    variant=config.variant,
                    controller=config.controller,
                    seed=config.seed,
                    speed=config.speed,
                    out=out,
                    rules=config.rules,
                    begin_s=config.begin_s,
                    end_s=config.end_s,
                    bay_reports=config.mqtt is not None,
                    stations=ntcip is not None and bool(ntcip.drive),
                ),
                self._on_record,
            )
        self.lorawan: LoRaWANLink | None = None
        if config.mqtt is not None and mqtt_url is not None:
            uses_uplinks = scenario.parking is not None and (
                scenario.parking.bay_sensor_source == "uplinks"
            )
            self.lorawan = LoRaWANLink(
                config.mqtt,
                mqtt_url,
                seed=config.seed,
                out=out,
                mirror=self.mirror,
                report=self._report_bays if uses_uplinks else None,
            )
        # SensorThings: simulation time t stands for the run's start on the wall clock plus t.
        begin_s = scenario.begin_s if config.begin_s is None else config.begin_s
        self.begin_s = begin_s
        self.run_epoch_s = self.started_at
        """The wall-clock time (epoch s) the run's simulation time ``begin_s`` stands for in the
        adapters' times (SensorThings, NGSI-LD)."""
        self.sensorthings = SensorThingsLive(
            scenario,
            self.map,
            epoch=datetime.fromtimestamp(self.started_at, UTC) - timedelta(seconds=begin_s),
            origin=origin,
            origin_from=origin_from,
            mqtt_url=mqtt_url if config.mqtt is not None else None,
            select_topics=config.sta_mqtt_select,
        )
        self.commands = Commands(self.recorder, self.simulation, wait_s=config.command_wait_s)
        self.ntcip = ntcip
        if ntcip is not None:
            ntcip.attach(self.commands, lambda changes: self.mirror.merge(changes, None))
        self._start_state()
        self.mirror.merge(self.state.changes(), None)
        self.reader_errors: dict[str, int] = {}
        """Batches of the stream an adapter failed on, by adapter (``/api/health``)."""
        self._starting = asyncio.Lock()

    # --- records from the simulation (pump thread) -----------------------------------------------

    @property
    def replaying(self) -> Replayer | None:
        """The replay this server plays (``ccsim replay``), None for a live run."""
        return self.simulation if isinstance(self.simulation, Replayer) else None

    def _start_state(self) -> None:
        state = self.state
        state.set("run", "status", "starting")
        state.set("run", "id", self.run.id)
        state.set("run", "speed", self.config.speed)
        state.set("run", "paused", False)
        if self.replay is not None:
            state.set("run", "replay", True)
            state.set("run", "end_t", self.replay.end_t)

    def _on_record(self, record: Record | Seek) -> None:
        if isinstance(record, Seek):
            # A replay moved to another time: the state as of then, from the start.
            self.state = ControlState()
            self._start_state()
            self._reduce(record.batch)
            self.mirror.replace(self.state.snapshot(), record.batch.t)
            return
        if isinstance(record, Batch):
            self._reduce(record)
            self.mirror.merge(record.changes, record.t)  # the feed sees it at once...
            if self.replay is not None:
                for outcome in record.outcomes:
                    self.recorder.put(outcome)
                return  # a replay's messages are recorded already (its events.parquet)
            # ...the adapters too; one that fails on a record is logged and counted, and the
            # record is still stored (a bug in a reader must not stop the recording)
            if self.ntcip is not None:
                self._read("ntcip", self.ntcip.on_changes, record.changes, record.t)
            if self.lorawan is not None:
                self._read("lorawan", self.lorawan.on_batch, record)
            self._read("ngsi-ld", self.ngsild.on_rows, record.events)
            self._read("sensorthings", self.sensorthings.on_batch, record)
        elif isinstance(record, RunEnded):
            self.state.set("run", "status", record.status)
            self.state.set("run", "detail", record.detail)
            self.mirror.merge(self.state.changes(), None)
        self.recorder.put(record)  # ...the store right after

    def _reduce(self, batch: Batch) -> None:
        """Reduce a batch's messages into the state; its ``changes`` are what they changed."""
        state = self.state
        state.apply_rows(batch.events)
        state.apply_kpis(batch.kpis)
        state.set("run", "t", batch.t)
        replaying = self.replaying
        if replaying is not None:  # the replay's own pause and speed, not the recorded run's
            state.set("run", "paused", replaying.paused)
            state.set("run", "speed", replaying.speed)
        batch.changes = state.changes()

    def _read(self, name: str, reader: Callable[..., object], *args: Any) -> None:
        try:
            reader(*args)
        except Exception:
            self.reader_errors[name] = self.reader_errors.get(name, 0) + 1
            log.exception("%s could not take a batch of the stream (the store still has it)", name)

    def _on_alarms(self, events: list[tuple[AlarmEvent, Alarm]]) -> None:
        self.hub.publish_alarms(events)
        self.ngsild.on_alarms([alarm.to_dict() for _event, alarm in events])

    def _report_bays(self, observed: tuple[BayObserved, ...]) -> None:
        self.simulation.send(Control("report", observed=observed))

    def _on_outcome(self, outcome: Outcome, entry: dict[str, Any]) -> None:
        self.commands.on_outcome(outcome, entry)

    async def _alarm_events_since(self, seq: int) -> list[tuple[AlarmEvent, Alarm]] | None:
        first = await asyncio.to_thread(self.store.first_alarm_seq)
        if first > seq + 1:
            return None  # some were deleted by the retention: the client needs the full list
        page = await asyncio.to_thread(self.store.alarm_events_since, seq)
        if not page:  # past what the store has: what was shown before it could take it
            page = [(event, alarm) for alarm, event in self.recorder.unrecorded() if event.seq > seq]
        return page

    # --- life cycle ------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: object) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        self.recorder.start(loop)
        if self.lorawan is not None:
            await self.lorawan.start()
        await self.sensorthings.start()
        self.simulation.start()
        ticker = asyncio.create_task(self.hub.run_ticker(), name="ccsim-feed-ticker")
        pusher = None
        if self.ngsild_push is not None:
            pusher = asyncio.create_task(self.ngsild_push.run(), name="ccsim-ngsi-ld-push")
        if self.ntcip is not None:
            await self.ntcip.start()
        try:
            yield
        finally:
            if self.ntcip is not None:
                self.ntcip.close()
            ticker.cancel()
            if pusher is not None:
                pusher.cancel()
            if self.lorawan is not None:
                await self.lorawan.stop()
            await self.sensorthings.stop()
            self.hub.close_all()
            await asyncio.to_thread(self.simulation.stop)
            if self.replay is not None:  # the replay's own entry in the store's runs ends here
                self.recorder.put(RunEnded("stopped", "replay ended"))
            await asyncio.to_thread(self.recorder.stop)

    # --- a new run -------------------------------------------------------------------------------

    def new_run_refusal(self) -> str | None:
        """Why a new run cannot start now (None: it can)."""
        if not isinstance(self.simulation, SimProcess):
            return "a replay shows a finished run; it starts no new one"
        if self.simulation.ended is None:
            return (
                f"run {self.run.id} is in progress: a new run starts once it has ended "
                "(finished, stopped, or failed)"
            )
        return None

    async def new_run(self) -> RunInfo:
        """Run the scenario again - same controller, seed and options - as a new run, once the
        last one has ended (finished, or failed: its simulation process crashed). Its records,
        alarms and audit stay in the store; the control room moves on to the new run, whose
        outputs go to ``OUT-runN`` beside the first run's ``OUT``. :class:`RunRefused` if a
        run is in progress."""
        async with self._starting:
            refusal = self.new_run_refusal()
            if refusal is not None:
                raise RunRefused(refusal)
            ended = self.simulation
            assert isinstance(ended, SimProcess)
            # Its pump has handed the run's end to the recorder, so the recorder takes that
            # before the new run's begin (its inbox is in order).
            await asyncio.to_thread(ended.stop)
            previous_id = self.run.id
            scenario, controller, seed = self.scenario.name, self.config.controller, self.config.seed

            def begin(session: Session) -> int:
                run_id = session.writer.begin_run(scenario, controller, seed)
                session.book.run_id = run_id  # in the transaction: a failed one undoes it
                session.book.run_ended = False
                return run_id

            run_id = await self.recorder.call(begin)
            self.run = RunInfo(run_id, scenario, controller, seed)
            self._adapters_new_run(self.mirror.t)
            # The control room's picture starts afresh (the adapters' sections stay).
            previous = self.state.snapshot().keys()
            self.state = ControlState()
            self._start_state()
            kept = {k: v for k, v in self.mirror.snapshot().items() if k not in previous}
            self.mirror.replace({**kept, **self.state.snapshot()}, None)
            self.state.changes()
            self.hub.resync()
            out = ended.spec.out
            spec = replace(ended.spec, out=out.with_name(f"{out.name}-run{run_id}"))
            self.simulation = SimProcess(spec, self._on_record)
            self.commands.simulation = self.simulation
            self.simulation.start()
            log.info("run %d started (run %d had ended: %s)", run_id, previous_id, ended.ended)
            return self.run

    def _adapters_new_run(self, last_t: float | None) -> None:
        """The protocol adapters move on to the new run (the ended one's last batch is in, the
        new one's first is not): they keep serving, from the new run's data only. Its times
        follow the ended run's (``last_t``: its last simulation time), so the adapters' clocks
        never go back - a run faster than real time ends ahead of the wall clock."""
        ended_at = self.run_epoch_s + (last_t - self.begin_s) if last_t is not None else 0.0
        self.run_epoch_s = max(time.time(), ended_at)
        epoch = datetime.fromtimestamp(self.run_epoch_s, UTC) - timedelta(seconds=self.begin_s)
        steps: list[tuple[str, Callable[[], None]]] = [
            ("sensorthings", partial(self.sensorthings.new_run, epoch)),
            ("ngsi-ld", partial(self.ngsild.new_run, self.run_epoch_s)),
        ]
        if self.ntcip is not None:
            steps.append(("ntcip", self.ntcip.new_run))
        if self.lorawan is not None:
            steps.append(("lorawan", partial(self.lorawan.new_run, self.begin_s)))
        for name, step in steps:
            try:
                step()
            except Exception:  # logged and counted (``/api/health``); the new run still starts
                self.reader_errors[name] = self.reader_errors.get(name, 0) + 1
                log.exception("%s could not move on to the new run", name)

    def adapters(self) -> dict[str, Any]:
        """The protocol adapters this server runs (``GET /api/adapters``)."""
        return {"ntcip": self.ntcip.describe() if self.ntcip is not None else None}

    def health(self) -> dict[str, Any]:
        ended = self.simulation.ended
        return {
            "status": "ok" if not self.recorder.stats.last_error else "degraded",
            "uptime_s": round(time.time() - self.started_at, 1),
            "run": {**self.run.__dict__, "status": self.mirror.get("run", "status"),
                    "t": self.mirror.t, "pid": self.simulation.pid,
                    "running": self.simulation.running,
                    "detail": ended.detail if ended else ""},
            "feed": {"clients": self.hub.stats.connected, "dropped": self.hub.stats.dropped,
                     "ticks": self.hub.stats.ticks, "rate_hz": self.hub.rate_hz},
            "store": {"url": self.store.url, "commits": self.recorder.stats.commits,
                      "events": self.recorder.stats.events, "error": self.recorder.stats.last_error,
                      "failing": self.recorder.stats.failing,
                      "waiting": self.recorder.stats.waiting, "lost": self.recorder.stats.lost},
            "alarms": {"open": len(self.hub.open_alarms), "seq": self.hub.alarm_seq},
            "reader_errors": dict(self.reader_errors),
            **({"lorawan": self.lorawan.health()} if self.lorawan is not None else {}),
            "ngsi_ld": {"entities": self.ngsild.counts(), "location": self.ngsild.georef.how,
                        "push": self.ngsild_push.describe() if self.ngsild_push else None},
            "sensorthings": self.sensorthings.health(),
            "collector": {"frozen": self.collector.stats.frozen, "full": self.collector.stats.full,
                          "last_full_ms": round(1000 * self.collector.stats.last_full_s, 1)},
        }  # fmt: skip

    async def set_retention(self, settings: dict[str, float]) -> dict[str, float]:
        def write(session: Session) -> None:
            session.writer.set_retention(settings)

        await self.recorder.call(write)
        return await asyncio.to_thread(self.store.retention)


def network_map_of(scenario: Scenario, controller: str) -> NetworkMap:
    """The map ``/api/network`` serves (detectors only where the controller places them)."""
    network = read_network(scenario.net_file)
    add_programs(network, scenario.additional_files)
    detectors = []
    if create_controller(controller).uses_detectors:
        types = priority_types([*scenario.route_files, *scenario.additional_files])
        detectors = place_detectors(network, scenario.detectors, priority=sorted(types, key=str))
    return network_map(scenario, network, detectors)
