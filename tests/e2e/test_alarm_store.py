"""Alarms and the store on a real ``ccsim serve``: after the store refuses a write (a failure
injected with an SQLite trigger in the server's own database), what the server holds in memory
is still what the store has."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from controlcenter.alarms import Alarm, AlarmAction, AlarmEvent, AlarmState, Severity
from controlcenter.store import Store
from tests.e2e.serving import TOKEN, Server, start_server, wait_for


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("alarm-store"), "--speed", "20")
    try:
        running.wait_running()
        yield running
    finally:
        assert running.stop() == 0, running.lines[-20:]


def sql(db: Path, statement: str) -> None:
    with sqlite3.connect(db, timeout=30) as c:
        c.execute(statement)


def fail_on(db: Path, name: str, table: str, when: str) -> None:
    """From now on the store refuses inserts into ``table`` that match ``when``."""
    sql(db, f"CREATE TRIGGER {name} BEFORE INSERT ON {table} WHEN {when} "
            "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")  # fmt: skip


def open_alarm(server: Server, rule: str) -> dict[str, Any] | None:
    with server.client() as c:
        items = c.get("/api/alarms", params={"state": "active-unacknowledged"}).json()["items"]
    return next((a for a in items if a["rule"] == rule), None)


def test_a_refused_acknowledgement_leaves_the_alarm_as_the_store_has_it(server: Server) -> None:
    with server.client() as c:
        c.post("/api/signals/C/override", json={"action": "flash"})
        alarm = wait_for(lambda: open_alarm(server, "signal-manual"), 15, "the manual-control alarm")
        fail_on(server.db, "fail_ack", "alarm_events", "NEW.action = 'acknowledge'")
        try:
            failed = c.post(f"/api/alarms/{alarm['id']}/acknowledge", json={"note": "seen"})
        finally:
            sql(server.db, "DROP TRIGGER fail_ack")
        assert failed.status_code == 503
        assert failed.json()["detail"] == "the store failed, nothing of this was recorded: disk on fire"
        assert c.get(f"/api/alarms/{alarm['id']}").json()["state"] == "active-unacknowledged"
        shown = {a["id"]: a for a in c.get("/api/state").json()["alarms"]}
        assert shown[alarm["id"]]["state"] == "active-unacknowledged"
        # The server's book agrees: the acknowledgement can be made again, from the same state.
        again = c.post(f"/api/alarms/{alarm['id']}/acknowledge", json={"note": "seen"})
        assert again.status_code == 200, again.text
        assert again.json()["detail"].startswith("active-unacknowledged -> acknowledged")
        c.post("/api/signals/C/override", json={"action": "automatic"})
        wait_for(lambda: c.get(f"/api/alarms/{alarm['id']}").json()["state"] == "cleared", 15,
                 "the alarm to clear")  # fmt: skip


def test_an_alarm_the_store_did_not_take_is_not_kept_in_memory(server: Server) -> None:
    with server.client() as c:
        before = c.get("/api/alarms", params={"limit": 1}).json()["total"]
        fail_on(server.db, "fail_raise", "alarms", "NEW.rule = 'signal-manual'")
        try:
            c.post("/api/signals/C/override", json={"action": "flash"})
            wait_for(lambda: "disk on fire" in c.get("/api/health").json()["store"]["error"], 15,
                     "the store error to show in the health")  # fmt: skip
        finally:
            sql(server.db, "DROP TRIGGER fail_raise")
        assert c.get("/api/alarms", params={"limit": 1}).json()["total"] == before
        assert not [a for a in c.get("/api/state").json()["alarms"] if a["rule"] == "signal-manual"]
        # Back to normal and flashing again: the alarm raised now is a whole one, from its raise
        # (a book that had kept the lost alarm would write it back half-way, without a raise).
        c.post("/api/signals/C/override", json={"action": "automatic"})
        c.post("/api/signals/C/override", json={"action": "flash"})
        alarm = wait_for(lambda: open_alarm(server, "signal-manual"), 15, "a new manual-control alarm")
        history = c.get(f"/api/alarms/{alarm['id']}").json()["history"]
        assert [h["action"] for h in history] == ["raise"]
        everything = c.get("/api/alarms", params={"limit": 1000}).json()["items"]
        for each in everything:
            first = c.get(f"/api/alarms/{each['id']}").json()["history"][0]
            assert first["action"] == "raise", each
        c.post("/api/signals/C/override", json={"action": "automatic"})


def test_a_client_reconnecting_far_behind_gets_every_alarm_event(tmp_path: Path) -> None:
    """More alarm events than any one page (there was a silent cap at 10,000)."""
    db = tmp_path / "control.db"
    store = Store(f"sqlite:///{db}")
    writer = store.writer()
    missed = 12_500
    now = time.time()  # (recent: the retention keeps a cleared alarm's history for a year)
    cleared = Alarm(1, "queue", "C", 1, Severity.LOW, "traffic", "trafficJam", "jam", "tls:C",
                    state=AlarmState.CLEARED, active=False, raised_at=now, updated_at=now)  # fmt: skip
    comment = AlarmEvent(1, AlarmAction.COMMENT, AlarmState.CLEARED, AlarmState.CLEARED, "ana", now)
    with writer.transaction():
        writer.save_alarm(cleared)
        for n in range(missed):
            writer.add_alarm_event(replace(comment, note=f"note {n}"))
    writer.close()
    server = start_server(tmp_path, "--speed", "20", db=db)
    try:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with connect(f"{server.ws_url}?since=0", additional_headers=headers, compression=None) as ws:
            seqs: list[int] = []

            def all_there() -> bool:
                frame = json.loads(ws.recv(timeout=20))
                assert frame["type"] != "alarms", "the full list instead of the events"
                if frame["type"] == "alarm":
                    seqs.append(frame["seq"])
                return len(seqs) == missed

            try:
                wait_for(all_there, 60, f"{missed} alarm frames", every_s=0)
            except AssertionError as exc:
                raise AssertionError(f"{exc}: got {len(seqs)}, the last {seqs[-1:]}") from None
        assert seqs == list(range(1, missed + 1))
    finally:
        server.stop()
