"""The recorder: the one thread that writes the store and owns the alarm book.

Everything that changes what is recorded passes through its inbox, in order: the simulation's
batches (events, KPI rows, alarm conditions), command outcomes, the end of the run, and
operator jobs (acknowledge an alarm, audit a command...). It takes whatever has queued up, does
it in one transaction, commits - durably - and only then tells the event loop: alarm events go
to the feed, finished jobs return to the request that waits for them. So nothing is shown to an
operator, and no command is confirmed, before it is on disk.
"""

from __future__ import annotations

import asyncio
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

from controlcenter.alarm_book import AlarmBook
from controlcenter.alarms import Alarm, AlarmEvent, Severity
from controlcenter.rules import ConditionChange
from controlcenter.simproc import Batch, Record, RunEnded
from controlcenter.store import Store, StoreError, Writer
from sim.live import Outcome

T = TypeVar("T")
RETENTION_EVERY_S = 3600.0
MAX_ITEMS_PER_COMMIT = 500


@dataclass
class Session:
    """What an operator job may use, inside the recorder's transaction."""

    writer: Writer
    book: AlarmBook
    run_id: int
    store: Store
    now: float
    published: list[tuple[AlarmEvent, Alarm]] = field(default_factory=list)

    def record(self, alarm: Alarm, event: AlarmEvent) -> AlarmEvent:
        """Persist an alarm transition (it goes to the feed after the commit)."""
        self.writer.save_alarm(alarm)
        stored = replace(event, seq=self.writer.add_alarm_event(event))
        self.published.append((stored, replace(alarm)))  # as it is now, not as it will be
        return stored


@dataclass
class _Job(Generic[T]):
    work: Callable[[Session], T]
    future: asyncio.Future[T]
    loop: asyncio.AbstractEventLoop


@dataclass
class RecorderStats:
    commits: int = 0
    events: int = 0
    last_error: str = ""


class Recorder:
    def __init__(
        self,
        store: Store,
        book: AlarmBook,
        run_id: int,
        *,
        on_alarms: Callable[[list[tuple[AlarmEvent, Alarm]]], None],
        on_outcome: Callable[[Outcome, dict[str, Any]], None],
    ) -> None:
        self.store = store
        self.book = book
        self.run_id = run_id
        self._on_alarms = on_alarms
        self._on_outcome = on_outcome
        self._inbox: queue.Queue[Record | _Job[Any] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._next_retention = 0.0
        self._t = 0.0
        """Simulation time of the latest batch, s."""
        self.stats = RecorderStats()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.Thread(target=self._main, name="ccsim-recorder", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._inbox.put(None)
            self._thread.join()

    def put(self, record: Record) -> None:
        """Hand over a record from the simulation (any thread)."""
        self._inbox.put(record)

    async def call(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in the recorder's next transaction; returns once it is committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._inbox.put(_Job(work, future, loop))
        return await future

    # --- the thread --------------------------------------------------------------------------------

    def _timeout(self) -> float:
        shelf = self.book.next_shelf_end()
        wait = 1.0 if shelf is None else min(1.0, max(0.0, shelf - time.time()))
        return wait

    def _main(self) -> None:
        writer = self.store.writer()
        try:
            while True:
                try:
                    items = [self._inbox.get(timeout=self._timeout())]
                except queue.Empty:
                    items = []
                while items and len(items) < MAX_ITEMS_PER_COMMIT:
                    try:
                        items.append(self._inbox.get_nowait())
                    except queue.Empty:
                        break
                stopping = None in items
                self._commit(writer, [i for i in items if i is not None])
                if stopping:
                    return
        finally:
            writer.close()

    def _commit(self, writer: Writer, items: list[Record | _Job[Any]]) -> None:
        session = Session(writer, self.book, self.run_id, self.store, time.time())
        before = self.book.checkpoint()
        done: list[tuple[_Job[Any], Any, BaseException | None]] = []
        after: list[Callable[[], None]] = []
        try:
            with writer.transaction():
                for item in items:
                    if isinstance(item, _Job):
                        done.append(self._run_job(session, item))
                    else:
                        self._handle(session, item, after)
                for alarm, event in self.book.expire_shelves(session.now):
                    session.record(alarm, event)
                if session.now >= self._next_retention:
                    self._next_retention = session.now + RETENTION_EVERY_S
                    writer.apply_retention(self.store.retention(), session.now)
        except Exception as exc:  # the store failed: nothing of this batch is durable...
            self.book.restore(before)  # ...so nothing of it stays in the book either
            self.stats.last_error = f"{type(exc).__name__}: {exc}"
            print(f"ccsim: store error, batch of {len(items)} not recorded: {exc}", file=sys.stderr)
            failed = StoreError(f"the store failed, nothing of this was recorded: {exc}")
            for job, _value, _error in done:
                self._resolve(job, None, failed)
            return
        self.stats.commits += 1
        if session.published:
            self._post(self._on_alarms, session.published)
        for job, value, error in done:
            self._resolve(job, value, error)
        for callback in after:
            callback()

    def _run_job(self, session: Session, job: _Job[Any]) -> tuple[_Job[Any], Any, BaseException | None]:
        published = len(session.published)
        before = session.book.checkpoint()
        try:
            with session.writer.savepoint():
                return job, job.work(session), None
        except Exception as exc:  # handed back to the waiting request (e.g. an illegal transition)
            del session.published[published:]
            session.book.restore(before)  # the store rolled the job back: so does the book
            if isinstance(exc, self.store.errors):
                exc = StoreError(f"the store failed, nothing of this was recorded: {exc}")
            return job, None, exc

    def _handle(self, session: Session, record: Record, after: list[Callable[[], None]]) -> None:
        writer = session.writer
        if isinstance(record, Batch):
            status = record.changes.get("run", {}).get("status")
            if status == "running":
                writer.set_run_status(self.run_id, "running")
            elif status in ("finished", "stopped", "failed"):
                # The last batch: no condition is evaluated any more, operators may clear.
                self.book.run_ended = True
            self._t = record.t
            writer.add_events(self.run_id, record.events, session.now)
            writer.add_kpis(self.run_id, record.kpis, session.now)
            self.stats.events += len(record.events)
            for change in record.conditions:
                for alarm, event in self.book.on_condition(change, session.now):
                    session.record(alarm, event)
            for outcome in record.outcomes:
                self._decide(writer, outcome, after)
        elif isinstance(record, Outcome):
            self._decide(writer, record, after)
        elif isinstance(record, RunEnded):
            writer.set_run_status(self.run_id, record.status, record.detail, ended=True)
            # Commands the run never answered (a simulation that died has no last batch to
            # refuse them in): decided now, or they would stay pending for ever.
            for command_id in writer.pending_audits(self.run_id):
                unanswered = f"the run ended ({record.status}) before it answered"
                self._decide(writer, Outcome(command_id, False, unanswered, None), after)
            self.book.run_ended = True
            if record.status == "failed":
                change = ConditionChange(
                    rule="simulation-failed", key="", active=True, t=self._t, source="engine",
                    severity=Severity.CRITICAL, category="traffic", subcategory="hazardOnRoad",
                    description=f"the simulation stopped: {record.detail}",
                )  # fmt: skip
                for alarm, event in self.book.on_condition(change, session.now):
                    session.record(alarm, event)

    def _decide(self, writer: Writer, outcome: Outcome, after: list[Callable[[], None]]) -> None:
        result = "accepted" if outcome.accepted else "refused"
        writer.decide_audit(outcome.command_id, result, outcome.detail, outcome.t)
        entry = writer.audit_row(outcome.command_id)
        after.append(lambda: self._post(self._on_outcome, outcome, entry))

    def _post(self, callback: Callable[..., None], *args: Any) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(callback, *args)

    @staticmethod
    def _resolve(job: _Job[Any], value: Any, error: BaseException | None) -> None:
        def settle() -> None:
            if job.future.done():
                return
            if error is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result(value)

        if not job.loop.is_closed():
            job.loop.call_soon_threadsafe(settle)
