"""``ccsim serve --db postgresql://...`` as a user runs it: the run, its alarms and the audit are
in PostgreSQL, and a server started again on the same database - after the first was killed with
SIGKILL - finds everything the first one confirmed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.serving import Server, audit, process_gone, start_server, wait_for


def manual_alarm(server: Server) -> dict[str, Any] | None:
    with server.client() as c:
        items = c.get("/api/alarms", params={"state": "active-unacknowledged"}).json()["items"]
    return next((a for a in items if a["rule"] == "signal-manual"), None)


def test_serve_on_postgresql_keeps_runs_alarms_and_audit_across_a_kill(
    tmp_path: Path, postgres_url: str
) -> None:
    first = start_server(tmp_path / "first", "--speed", "20", db_url=postgres_url)
    try:
        health = first.wait_running()
        assert health["store"]["url"] == postgres_url.replace(":ccsim@", ":***@")
        with first.client() as c:
            flash = c.post("/api/signals/C/override", json={"action": "flash"})
            assert flash.status_code in (200, 202), flash.text
            alarm = wait_for(lambda: manual_alarm(first), 15, "the manual-control alarm")
            ack = c.post(f"/api/alarms/{alarm['id']}/acknowledge", json={"note": "seen on pg"})
            assert ack.status_code == 200, ack.text
            # PostgreSQL cannot keep a NUL: refused as bad input (naming where), never a 503
            nul = "NUL characters"
            for response, where, why in (
                (c.post(f"/api/alarms/{alarm['id']}/comment", json={"text": "a\x00b"}),
                 "body.text", nul),
                (c.post("/api/signals/C%00/override", json={"action": "flash"}), "path", nul),
                (c.get("/api/audit", params={"user": "x\x00"}), "query.user", nul),
                (c.post("/api/users", json={"name": "eve\x00", "role": "viewer"}), "body.name",
                 "should match pattern"),
            ):  # fmt: skip
                assert response.status_code == 422, response.text
                detail = response.json()["detail"]
                assert detail.startswith(where) and why in detail, response.text
            # nor in a field's name: the refusal names it, escaped, and is audited
            misnamed = c.post(f"/api/alarms/{alarm['id']}/comment", json={"text": "x", "a\x00b": 1})
            assert misnamed.status_code == 422, misnamed.text
            assert misnamed.json()["detail"] == "body.a\\u0000b: Extra inputs are not permitted"
            assert audit(first, result="refused")[0]["detail"] == misnamed.json()["detail"]
            wait_for(lambda: audit(first, action="signal.override", result="accepted"), 15,
                     "the override to be applied")  # fmt: skip
            events = c.get("/api/events", params={"limit": 5}).json()["items"]
            assert events, "the run's messages should be in the store"
        first.process.kill()  # SIGKILL: what was confirmed must already be committed
        first.process.wait(10)
        wait_for(lambda: process_gone(health["run"]["pid"]), 20, "the orphaned simulation to stop")
    finally:
        if first.process.poll() is None:
            first.process.kill()

    second = start_server(tmp_path / "second", "--speed", "20", db_url=postgres_url)
    try:
        second.wait_running()
        with second.client() as c:
            runs = {r["id"]: r for r in c.get("/api/runs").json()["items"]}
            assert runs[health["run"]["id"]]["status"] == "interrupted"
            assert c.get("/api/runs").json()["current"] != health["run"]["id"]
            kept = c.get(f"/api/alarms/{alarm['id']}").json()
            assert kept["state"] == "acknowledged" and kept["run"] == health["run"]["id"]
            assert [(h["action"], h["user"], h["note"]) for h in kept["history"]] == [
                ("raise", "system", ""), ("acknowledge", "admin", "seen on pg"),
            ]  # fmt: skip
            shown = {a["id"]: a["state"] for a in c.get("/api/state").json()["alarms"]}
            assert shown[alarm["id"]] == "acknowledged"  # the new server's book read it back
            old_events = c.get("/api/events", params={"run": health["run"]["id"], "limit": 5})
            assert old_events.json()["items"] == events
        [override] = audit(second, action="signal.override", result="accepted")
        assert (override["user"], override["target"], override["arguments"]["action"]) == (
            "admin", "tls:C", "flash"
        )  # fmt: skip
        [acknowledged] = audit(second, action="alarm.acknowledge")
        assert acknowledged["result"] == "accepted" and acknowledged["target"] == f"alarm:{alarm['id']}"
    finally:
        assert second.stop() == 0, second.lines[-20:]
