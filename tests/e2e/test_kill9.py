"""Kill the server with SIGKILL in the middle of a live run: after a restart on the same store,
no alarm event a client was shown and no command the server confirmed is missing."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.e2e.serving import TOKEN, Server, audit, start_server, wait_for

RULES = """
[[alarm]]
name = "departures"
kind = "vehicles.departed"
severity = "low"
category = "traffic"
subcategory = "trafficJam"
description = "vehicles entered: {ids}"

[[alarm]]
name = "manual"
kind = "signal.override"
when = { action = ["flash", "hold"], accepted = true }
key = "tls"
clear = "latched"
clear_kind = "signal.override"
clear_when = { action = "automatic", accepted = true }
severity = "medium"
category = "traffic"
subcategory = "hazardOnRoad"
description = "signal {tls}: {action} by {user}"
"""


class AlarmListener(threading.Thread):
    """Collects every alarm frame the feed shows, until the connection dies."""

    def __init__(self, server: Server) -> None:
        super().__init__(daemon=True)
        self.url = server.ws_url
        self.seen: list[dict[str, Any]] = []
        self.open: dict[int, str] = {}
        self.listening = threading.Event()

    def run(self) -> None:
        with connect(self.url, additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
            self.listening.set()
            try:
                while True:
                    frame = json.loads(ws.recv())
                    if frame["type"] == "alarm":
                        self.seen.append(frame)
                        self.open[frame["alarm"]["id"]] = frame["alarm"]["state"]
            except ConnectionClosed:
                return


def process_gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")  # a zombie has exited


def test_sigkill_mid_run_loses_no_shown_alarm_and_no_confirmed_command(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    db = tmp_path / "control.db"
    first = start_server(
        tmp_path / "first", "--speed", "50", "--rate", "10", "--alarms", str(rules), db=db
    )
    try:
        health = first.wait_running()
        listener = AlarmListener(first)
        listener.start()
        assert listener.listening.wait(10)
        confirmed: list[dict[str, Any]] = []
        acknowledged: set[int] = set()
        with first.client() as c:
            for i in range(30):
                action = ["flash", "automatic", "hold", "automatic"][i % 4]
                body = {"action": action, "argument": "0" if action == "hold" else ""}
                response = c.post("/api/signals/C/override", json=body)
                assert response.status_code in (200, 202), response.text
                confirmed.append(response.json())
                unacknowledged = [
                    a for a, s in list(listener.open.items()) if s.endswith("unacknowledged")
                ]
                for alarm_id in unacknowledged[-2:]:
                    ack = c.post(f"/api/alarms/{alarm_id}/acknowledge", json={"note": f"round {i}"})
                    confirmed.append(ack.json())
                    if ack.status_code == 200:
                        acknowledged.add(alarm_id)
        assert first.health()["run"]["status"] == "running"
        first.process.kill()  # SIGKILL: no shutdown of any kind
        first.process.wait(10)
        listener.join(10)
        shown = list(listener.seen)
        assert len(shown) > 20 and acknowledged, "the run should have raised and handled alarms"
        wait_for(lambda: process_gone(health["run"]["pid"]), 20, "the orphaned simulation to stop")
    finally:
        if first.process.poll() is None:  # the test failed before its kill
            first.process.kill()

    second = start_server(tmp_path / "second", "--speed", "50", db=db)
    try:
        second.wait_running()
        with connect(
            f"{second.ws_url}?since=0", additional_headers={"Authorization": f"Bearer {TOKEN}"}
        ) as ws:
            stored: dict[int, dict[str, Any]] = {}
            while len(stored) < shown[-1]["seq"]:
                frame = json.loads(ws.recv(timeout=10))
                if frame["type"] == "alarm":
                    stored[frame["seq"]] = frame["event"]
        for frame in shown:
            assert stored[frame["seq"]] == frame["event"], f"alarm event {frame['seq']} changed or lost"
        with second.client() as c:
            audit = {e["id"]: e for e in c.get("/api/audit", params={"limit": 1000}).json()["items"]}
            for answer in confirmed:
                entry = audit[answer["command"]]
                if answer["result"] != "pending":
                    assert entry["result"] == answer["result"] and entry["detail"] == answer["detail"]
            for alarm_id in acknowledged:
                history = c.get(f"/api/alarms/{alarm_id}").json()["history"]
                assert "acknowledge" in [h["action"] for h in history]
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
