"""The recorder: the one thread that writes the store and owns the alarm book.

Everything that changes what is recorded passes through its inbox, in order: the simulation's
batches (events, KPI rows, alarm conditions), command outcomes, the end of the run, and
operator jobs (acknowledge an alarm, audit a command...). It takes whatever has queued up, does
it in one transaction, commits - durably - and only then tells the event loop: alarm events go
to the feed, finished jobs return to the request that waits for them. So no command is
confirmed, and no alarm event is shown to an operator, before it is on disk.

When the store fails for a reason that can pass - a full disk, a lost connection to the
database server - nothing is confirmed (the waiting requests get :class:`StoreError`, HTTP
503), and nothing the simulation sent is dropped: its records wait in memory, in order, and the
recorder tries again every :data:`RETRY_EVERY_S`. Operators learn of it from the critical
``store-failed`` alarm, the one alarm event shown before the store has it (it cannot have it
yet): it goes to the feed at once under the sequence number it will have, and is written first
of all when the store takes writes again - that commit also returns the alarm to normal. A
record the store refuses for good (a constraint it breaks) is dropped with its batch and
reported, as retrying it could never succeed.
"""

from __future__ import annotations

import asyncio
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

from controlcenter.alarm_book import AlarmBook
from controlcenter.alarms import Alarm, AlarmEvent, Severity
from controlcenter.rules import ConditionChange
from controlcenter.simproc import Batch, Record, RunEnded
from controlcenter.store import Store, StoreError, Writer, error_text
from sim.live import Outcome

T = TypeVar("T")
RETENTION_EVERY_S = 3600.0
MAX_ITEMS_PER_COMMIT = 500
RETRY_EVERY_S = 1.0
"""While the store fails for a reason that can pass, how often the recorder tries again (s)."""
BACKLOG_LIMIT = 50_000
"""Records of the simulation held in memory while the store fails (at 20 batches/s, some 40
minutes). Past it, the oldest batches lose their messages and KPI rows (counted in ``lost``),
never their alarm conditions or command verdicts."""
STOP_RETRY_S = 10.0
"""On shutdown, how long the recorder keeps trying a failing store with what still waits (s)."""
STORE_FAILED = "store-failed"


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
    failing: bool = False
    """The last commit failed for a reason that can pass: records wait, commands are refused."""
    waiting: int = 0
    """Records of the simulation waiting for the store."""
    lost: int = 0
    """Messages never recorded: refused for good by the store, or past the backlog's limit."""


Item = Record | _Job[Any]


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
        book.run_id = run_id
        self._on_alarms = on_alarms
        self._on_outcome = on_outcome
        self._inbox: queue.Queue[Item | None] = queue.Queue()
        self._queue: deque[Item] = deque()
        """Taken from the inbox, not yet committed (in order; more than one commit's worth only
        while the store fails or falls behind)."""
        self._alarm_seq = store.last_alarm_seq()
        """The sequence number of the last alarm event committed or shown."""
        self._retry_at = 0.0
        """While the store fails: when to try it again (time.monotonic)."""
        self._unrecorded: list[tuple[Alarm, AlarmEvent]] = []
        """Alarm events shown before the store had them (``store-failed``): written first."""
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

    @property
    def run_id(self) -> int:
        """The run whose records come in (the book's: a new run changes it in a transaction)."""
        return self.book.run_id

    def unrecorded(self) -> list[tuple[Alarm, AlarmEvent]]:
        """The alarm events shown while the store took no writes, not written yet (any thread)."""
        return list(self._unrecorded)

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
        stop_by: float | None = None
        try:
            while True:
                retry_in = self._retry_at - time.monotonic()
                if stop_by is None:
                    if self.stats.failing:  # take what comes in, try again when it is time
                        wait = max(0.0, retry_in)
                    else:
                        wait = 0.0 if self._queue else self._timeout()
                    if self._take(wait):
                        stop_by = time.monotonic() + STOP_RETRY_S
                    if self.stats.failing and time.monotonic() < self._retry_at:
                        continue
                elif self.stats.failing and retry_in > 0:
                    time.sleep(retry_in)  # shutting down: the store still gets its chances
                size = min(len(self._queue), MAX_ITEMS_PER_COMMIT)
                self._commit(writer, [self._queue.popleft() for _ in range(size)])
                if stop_by is not None and (not self._queue or time.monotonic() > stop_by):
                    if self._queue:
                        print(f"ccsim: the store still fails ({self.stats.last_error}): "
                              f"{len(self._queue)} records of the run were not recorded",
                              file=sys.stderr)  # fmt: skip
                    return
        finally:
            writer.close()

    def _take(self, wait: float) -> bool:
        """Move everything in the inbox to the queue, waiting up to ``wait`` s for the first;
        True once told to stop."""
        try:
            items = [self._inbox.get(timeout=wait) if wait > 0 else self._inbox.get_nowait()]
        except queue.Empty:
            return False
        while True:
            try:
                items.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        self._queue.extend(i for i in items if i is not None)
        return None in items

    def _commit(self, writer: Writer, items: list[Item]) -> None:
        session = Session(writer, self.book, self.run_id, self.store, time.time())
        before = self.book.checkpoint()
        done: list[tuple[_Job[Any], Any, BaseException | None]] = []
        after: list[Callable[[], None]] = []
        unrecorded = list(self._unrecorded)
        try:
            with writer.transaction():
                for alarm, event in unrecorded:  # shown already, under this seq: first of all
                    writer.save_alarm(alarm)
                    writer.put_alarm_event(event)
                for item in items:
                    if isinstance(item, _Job):
                        done.append(self._run_job(session, item))
                    else:
                        self._handle(session, item, after)
                if self.stats.failing:
                    self._store_condition(session.now, None, session)
                for alarm, event in self.book.expire_shelves(session.now):
                    session.record(alarm, event)
                if session.now >= self._next_retention:
                    writer.apply_retention(self.store.retention(), session.now)
        except Exception as exc:  # the store failed: nothing of this is durable...
            self.book.restore(before)  # ...so nothing of it stays in the book either
            self._failed(items, done, exc)
            return
        if session.now >= self._next_retention:
            self._next_retention = session.now + RETENTION_EVERY_S
        del self._unrecorded[: len(unrecorded)]
        self.stats.commits += 1
        self.stats.events += sum(len(i.events) for i in items if isinstance(i, Batch))
        self.stats.failing = False
        self.stats.waiting = self._waiting()
        if session.published:
            self._alarm_seq = max(self._alarm_seq, *(e.seq for e, _a in session.published))
            self._post(self._on_alarms, session.published)
        for job, value, error in done:
            self._resolve(job, value, error)
        for callback in after:
            callback()

    def _failed(
        self, items: list[Item], done: list[tuple[_Job[Any], Any, BaseException | None]], exc: Exception
    ) -> None:
        """After a commit failed: refuse the jobs, and keep the records to try again - or drop
        them, if the store refused them for good."""
        text = error_text(exc)
        reason = f"{type(exc).__name__}: {text}"
        failed = StoreError(f"the store failed, nothing of this was recorded: {text}")
        records = [i for i in items if not isinstance(i, _Job)]
        jobs = [i for i in items if isinstance(i, _Job)]
        for job in jobs:
            self._resolve(job, None, failed)
        passing = isinstance(exc, self.store.transient_errors)
        if passing:
            self._retry_at = time.monotonic() + RETRY_EVERY_S
            self._queue.extendleft(reversed(records))
            for job in [i for i in self._queue if isinstance(i, _Job)]:  # refused at once
                self._queue.remove(job)
                self._resolve(job, None, failed)
            if not self.stats.failing:
                print(
                    f"ccsim: the store fails ({text}); what the simulation sends waits in "
                    "memory, commands are refused until it takes writes again",
                    file=sys.stderr,
                )
                self.stats.failing = True
                self.stats.last_error = reason
                self._store_condition(time.time(), text, None)
            self._trim()
        else:
            lost = sum(len(r.events) for r in records if isinstance(r, Batch))
            self.stats.lost += lost
            self.stats.last_error = reason
            print(f"ccsim: store error, batch of {len(items)} not recorded "
                  f"({lost} messages lost): {text}", file=sys.stderr)  # fmt: skip
        self.stats.waiting = self._waiting()

    def _store_condition(self, at: float, error: str | None, session: Session | None) -> None:
        """The store failed (``error``, on one line; its alarm is shown at once) or takes writes
        again (in ``session``: recorded and shown with the commit)."""
        change = ConditionChange(
            rule=STORE_FAILED, key="", active=error is not None, t=self._t, source="store",
            severity=Severity.CRITICAL, category="traffic", subcategory="hazardOnRoad",
            description=(
                f"the store takes no writes ({error}): the run's records wait in memory, "
                "commands and acknowledgements are refused until it does"
                if error is not None else "the store takes writes again"
            ),
        )  # fmt: skip
        for alarm, event in self.book.on_condition(change, at):
            if session is not None:
                session.record(alarm, event)
                continue
            self._alarm_seq += 1
            shown = replace(event, seq=self._alarm_seq)
            self._unrecorded.append((replace(alarm), shown))
            self._post(self._on_alarms, [(shown, replace(alarm))])

    def _waiting(self) -> int:
        return sum(1 for i in self._queue if not isinstance(i, _Job))

    def _trim(self) -> None:
        """Keep the backlog within :data:`BACKLOG_LIMIT`: the oldest batches give up their
        messages and KPI rows (counted), never their conditions, verdicts or run status."""
        holding = sum(1 for i in self._queue if isinstance(i, Batch) and (i.events or i.kpis))
        excess = holding - BACKLOG_LIMIT
        for i in range(len(self._queue)):
            if excess <= 0:
                break
            item = self._queue[i]
            if isinstance(item, Batch) and (item.events or item.kpis):
                self.stats.lost += len(item.events)
                self._queue[i] = replace(item, events=[], kpis=[])
                excess -= 1

    def _run_job(self, session: Session, job: _Job[Any]) -> tuple[_Job[Any], Any, BaseException | None]:
        published = len(session.published)
        before = session.book.checkpoint()
        try:
            with session.writer.savepoint():
                return job, job.work(session), None
        except Exception as exc:  # handed back to the waiting request (e.g. an illegal transition)
            if isinstance(exc, self.store.transient_errors):
                raise  # the store failed, not the job: the whole transaction with it
            del session.published[published:]
            session.book.restore(before)  # the store rolled the job back: so does the book
            if isinstance(exc, self.store.errors):
                exc = StoreError(f"the store failed, nothing of this was recorded: {error_text(exc)}")
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
