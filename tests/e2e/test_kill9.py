"""Kill the server with SIGKILL in the middle of a live run: after a restart on the same store,
no alarm event a client was shown and no command the server confirmed is missing."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.e2e.serving import (
    BUSY_ALARM_RULES,
    AlarmListener,
    Confirmed,
    audit,
    kill9,
    losses,
    operate,
    start_server,
    wait_for,
)


def test_sigkill_mid_run_loses_no_shown_alarm_and_no_confirmed_command(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(BUSY_ALARM_RULES)
    db = tmp_path / "control.db"
    first = start_server(
        tmp_path / "first", "--speed", "50", "--rate", "10", "--alarms", str(rules), db=db
    )
    try:
        health = first.wait_running()
        listener = AlarmListener(first)
        listener.start()
        assert listener.listening.wait(10)
        confirmed = operate(first, listener, Confirmed(), rounds=30)
        assert len(confirmed.overrides) == 30
        assert all(status in (200, 202) for status, _ in confirmed.overrides), confirmed.overrides
        assert first.health()["run"]["status"] == "running"
        kill9(first, health["run"]["pid"])
        listener.join(10)
        shown = list(listener.seen)
        assert len(shown) > 20 and confirmed.acknowledged, (
            "the run should have raised and handled alarms"
        )
    finally:
        if first.process.poll() is None:  # the test failed before its kill
            first.process.kill()

    second = start_server(tmp_path / "second", "--speed", "50", db=db)
    try:
        second.wait_running()
        assert losses(second, shown, confirmed).all == []
        with second.client() as c:
            runs = c.get("/api/runs").json()["items"]
        assert [r["status"] for r in runs] == ["running", "interrupted"]  # newest first
        assert "killed" in runs[1]["detail"]
    finally:
        assert second.stop() == 0


def test_a_simulation_that_dies_leaves_no_command_pending(tmp_path: Path) -> None:
    """The simulation process is killed (out of memory, a crash in SUMO) while commands wait in
    it (queued behind a pause): their audit entries say they were never applied, not 'pending'
    for ever."""
    server = start_server(tmp_path / "serve", "--speed", "1", db=tmp_path / "control.db")
    try:
        health = server.wait_running()
        with server.client() as c:
            paused = c.post("/api/simulation/pause").json()
            assert paused["result"] == "accepted", paused
            queued = c.post("/api/signals/C/override", json={"action": "flash", "argument": ""})
            assert queued.json()["result"] == "pending", queued.text  # applies after the pause
        os.kill(health["run"]["pid"], signal.SIGKILL)
        entry = wait_for(
            lambda: (e := audit(server, action="signal.override")[0])["result"] != "pending" and e,
            20,
            "the override's audit entry to be decided",
        )
        assert entry["id"] == queued.json()["command"]
        assert entry["result"] == "refused" and "ended" in entry["detail"], entry
    finally:
        server.stop()
