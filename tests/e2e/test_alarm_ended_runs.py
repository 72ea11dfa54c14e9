"""Alarms that outlive their run, on real ``ccsim serve`` processes sharing one store: an operator
clears them or takes them out of service (audited); an alarm of the run in progress is cleared
by its condition only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.serving import Server, audit, start_server, wait_for


def open_alarm(server: Server, rule: str, run: int) -> dict[str, Any] | None:
    with server.client() as c:
        items = c.get("/api/alarms", params={"run": run, "state": "active-unacknowledged"}).json()
    return next((a for a in items["items"] if a["rule"] == rule), None)


def test_alarms_of_ended_runs_are_cleared_or_taken_out_of_service(tmp_path: Path) -> None:
    db = tmp_path / "control.db"
    (tmp_path / "first").mkdir()
    first = start_server(tmp_path / "first", "--speed", "20", db=db)
    try:
        first.wait_running()
        with first.client() as c:
            c.post("/api/signals/C/override", json={"action": "flash"})
        old = wait_for(lambda: open_alarm(first, "signal-manual", 1), 15, "run 1's alarm")
    finally:
        first.stop()  # run 1 ends with the signal still flashing: its alarm can never return to normal

    second = start_server(tmp_path, "--speed", "20", "--end", "300", db=db)
    try:
        second.wait_running()
        with second.client() as c:
            cleared = c.post(f"/api/alarms/{old['id']}/clear", json={"note": "run 1 is over"})
            assert cleared.status_code == 200, cleared.text
            assert cleared.json()["alarm"]["state"] == "cleared"
            assert cleared.json()["detail"].startswith("active-unacknowledged -> cleared")
            history = c.get(f"/api/alarms/{old['id']}").json()["history"]
            assert [(h["action"], h["user"], h["note"]) for h in history][-1] == (
                "clear", "admin", "run 1 is over"
            )  # fmt: skip

            c.post("/api/signals/C/override", json={"action": "flash"})
            new = wait_for(lambda: open_alarm(second, "signal-manual", 2), 15, "run 2's alarm")
            refused = c.post(f"/api/alarms/{new['id']}/clear", json={})
            assert refused.status_code == 409
            assert "belongs to the run in progress" in refused.json()["detail"]
            away = c.post(f"/api/alarms/{new['id']}/out-of-service", json={"note": "loop works"})
            assert away.json()["alarm"]["state"] == "out-of-service"
            back = c.post(f"/api/alarms/{new['id']}/return-to-service", json={})
            assert back.json()["alarm"]["state"] == "active-unacknowledged"  # still flashing
            c.post(f"/api/alarms/{new['id']}/out-of-service", json={})
            shown = {a["id"]: a["state"] for a in c.get("/api/state").json()["alarms"]}
            assert shown[new["id"]] == "out-of-service" and old["id"] not in shown

            wait_for(lambda: c.get("/api/health").json()["run"]["status"] == "finished", 60,
                     "run 2 to finish")  # fmt: skip
            done = c.post(f"/api/alarms/{new['id']}/clear", json={"note": "run 2 is over"})
            assert done.status_code == 200, done.text
            assert done.json()["detail"].startswith("out-of-service -> cleared")
            assert c.get("/api/alarms", params={"state": "out-of-service"}).json()["total"] == 0
        clears = [(e["target"], e["result"]) for e in reversed(audit(second, action="alarm.clear"))]
        assert clears == [
            (f"alarm:{old['id']}", "accepted"), (f"alarm:{new['id']}", "refused"),
            (f"alarm:{new['id']}", "accepted"),
        ]  # fmt: skip
    finally:
        second.stop()
