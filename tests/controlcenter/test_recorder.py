"""The recorder when the store's disk is full: SQLite's own limit on the file's pages
(``PRAGMA max_page_count``) makes it answer exactly as a full disk does (SQLITE_FULL, "database
or disk is full"), with no mount and no simulation."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from controlcenter.alarm_book import AlarmBook
from controlcenter.alarms import Alarm, AlarmAction, AlarmEvent, Severity
from controlcenter.recorder import Recorder, Session
from controlcenter.rules import ConditionChange
from controlcenter.simproc import Batch
from controlcenter.store import Store, StoreError, Writer


class FillableStore(Store):
    """An SQLite store whose writers can be told the disk is full (no page beyond those the file
    has), and that there is room again."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.writers: list[Writer] = []

    def writer(self) -> Writer:
        writer = super().writer()
        self.writers.append(writer)
        return writer

    def fill(self) -> None:
        for writer in self.writers:
            pages = writer.c.scalar("PRAGMA page_count")
            writer.c.execute(f"PRAGMA max_page_count = {pages}")

    def free(self) -> None:
        for writer in self.writers:
            writer.c.execute("PRAGMA max_page_count = 1073741823")


def messages(first: int, last: int, t: float) -> list[tuple[int, float, str, str, str]]:
    payload = json.dumps({"text": "x" * 500})
    return [(seq, t, "engine", "test.message", payload) for seq in range(first, last + 1)]


def queue_alarm(active: bool, t: float) -> ConditionChange:
    return ConditionChange("queue", "C", active, t, "tls:C", Severity.MEDIUM, "traffic",
                           "trafficJam", "queue at C")  # fmt: skip


async def until(check: Callable[[], Any], what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def test_a_full_disk_keeps_what_the_simulation_sent_and_confirms_nothing(tmp_path: Path) -> None:
    store = FillableStore(f"sqlite:///{tmp_path}/control.db")
    writer = store.writer()
    with writer.transaction():
        run_id = writer.begin_run("single", "fixed", 1)
    store.writers.remove(writer)
    writer.close()
    book = AlarmBook([], store.next_alarm_id(), run_id)
    shown: list[tuple[AlarmEvent, Alarm]] = []

    async def main() -> None:
        recorder = Recorder(store, book, run_id, on_alarms=shown.extend, on_outcome=lambda *_: None)
        recorder.start(asyncio.get_running_loop())
        try:
            recorder.put(Batch(1.0, messages(1, 20, 1.0), []))
            await until(lambda: recorder.stats.events == 20, "the first batch")
            store.fill()
            recorder.put(Batch(2.0, messages(21, 200, 2.0), [], conditions=[queue_alarm(True, 2.0)]))
            await until(lambda: shown and recorder.stats.waiting == 1, "the store-failed alarm")
            [(event, alarm)] = shown
            assert (alarm.rule, alarm.severity, event.action, event.seq) == (
                "store-failed", Severity.CRITICAL, AlarmAction.RAISE, 1,
            )  # fmt: skip
            assert "database or disk is full" in alarm.description
            assert store.alarm_events_since(0) == []  # shown before the store could take it
            assert recorder.stats.failing

            def audit(session: Session) -> int:
                return session.writer.add_audit(
                    user="ana", role="operator", action="signal.override", target="tls:C",
                    arguments={}, result="accepted",
                )  # fmt: skip

            with pytest.raises(StoreError, match="nothing of this was recorded"):
                await recorder.call(audit)  # not confirmed: the store did not take it
            recorder.put(Batch(3.0, messages(201, 220, 3.0), [], conditions=[queue_alarm(False, 3.0)]))
            await until(lambda: recorder.stats.waiting == 2, "the next batch to wait too")
            assert len(shown) == 1 and book.get(alarm.id) is not None

            store.free()
            await until(lambda: not recorder.stats.failing and recorder.stats.waiting == 0, "recovery")
            assert await recorder.call(audit) > 0
            await until(lambda: len(shown) == 4, "the alarm events of the recovery")
        finally:
            await asyncio.to_thread(recorder.stop)
        assert recorder.stats.lost == 0

    asyncio.run(main())
    stored = store.alarm_events_since(0)
    assert [(e.seq, a.rule, e.action) for e, a in stored] == [
        (1, "store-failed", AlarmAction.RAISE),  # under the number it was shown with
        (2, "queue", AlarmAction.RAISE),
        (3, "queue", AlarmAction.RETURN_TO_NORMAL),
        (4, "store-failed", AlarmAction.RETURN_TO_NORMAL),
    ]
    assert [e for e, _ in shown] == [e for e, _ in stored]
    events = store.events(run_id=run_id, limit=1000)
    assert [e["seq"] for e in events] == list(range(1, 221))  # nothing the simulation sent is lost
