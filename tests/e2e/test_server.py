"""``ccsim serve`` as a control room uses it: a real server process on loopback, real SUMO
(scenarios/single, adaptive), a real websocket client and a real HTTP client."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.e2e.serving import REPO, TOKEN, Server, audit, make_user, start_server, wait_for


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("serve"), "--speed", "20", "--rate", "5")
    try:
        running.wait_running()
        yield running
    finally:
        assert running.stop() == 0, running.lines


def feed(server: Server, token: str | None = TOKEN, **kwargs: Any) -> ClientConnection:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return connect(server.ws_url, additional_headers=headers, compression=None, **kwargs)


def frames(ws: ClientConnection, count: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
    return [json.loads(ws.recv(timeout=timeout_s)) for _ in range(count)]


def frame_of(ws: ClientConnection, wanted: str, timeout_s: float = 15.0) -> dict[str, Any]:
    def next_wanted() -> dict[str, Any] | None:
        frame: dict[str, Any] = json.loads(ws.recv(timeout=timeout_s))
        return frame if frame["type"] == wanted else None

    return wait_for(next_wanted, timeout_s, f"a '{wanted}' frame", every_s=0)


def from_address(server: Server, address: str, token: str | None) -> httpx.Client:
    """A client on another loopback address: the login throttle counts per address."""
    return server.client(token, transport=httpx.HTTPTransport(local_address=address))


# --- access ----------------------------------------------------------------------------------------


def test_every_api_route_needs_a_valid_token(server: Server) -> None:
    with server.client(None) as c:
        paths = [p for p in c.get("/openapi.json").json()["paths"] if p.startswith("/api/")]
        assert {"/api/network", "/api/state", "/api/alarms", "/api/events", "/api/kpis", "/api/audit",
                "/api/health", "/api/users", "/api/users/{name}",
                "/api/users/{name}/rotate"} <= set(paths)  # fmt: skip
        for path in paths:
            concrete = (
                path.replace("{alarm_id}", "1").replace("{tls}", "C").replace("{lane}", "nowhere_0")
                .replace("{name}", "admin")
            )  # fmt: skip
            for method in ("get", "post", "put", "patch", "delete"):
                response = c.request(method, concrete)
                assert response.status_code in (401, 405), (method, path, response.status_code)
                if response.status_code == 401:
                    assert response.headers["www-authenticate"] == "Bearer"
    with from_address(server, "127.0.0.2", "not-the-token-000000000") as c:
        assert c.get("/api/state").status_code == 401


def test_feed_refuses_without_the_token_and_streams_with_it(server: Server) -> None:
    with pytest.raises(InvalidStatus) as refused:
        feed(server, "not-the-token-000000000", source_address=("127.0.0.3", 0))
    assert refused.value.response.status_code == 403
    with feed(server, None) as ws:  # no header: the first message must authenticate
        ws.send(json.dumps({"type": "subscribe"}))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    with feed(server) as ws:
        hello, alarms, snapshot, *deltas = frames(ws, 6)
    assert hello["type"] == "hello" and hello["user"] == "admin" and hello["role"] == "admin"
    assert alarms["type"] == "alarms"
    assert snapshot["type"] == "snapshot"
    state = snapshot["state"]
    assert state["run"]["scenario"] == "single" and state["run"]["status"] == "running"
    assert set(state["signals"]) == {"C"} and state["detectors"]
    assert [d["type"] for d in deltas] == ["delta"] * 3
    assert [d["seq"] for d in deltas] == list(range(snapshot["seq"] + 1, snapshot["seq"] + 4))
    assert deltas[-1]["t"] > snapshot["t"]
    assert any("detectors" in d["changes"] or "signals" in d["changes"] for d in deltas)


def test_a_browser_authenticates_with_its_first_message(server: Server) -> None:
    with feed(server, None) as ws:
        ws.send(json.dumps({"type": "auth", "token": TOKEN}))
        hello, _alarms, snapshot = frames(ws, 3)
    assert hello["user"] == "admin" and snapshot["type"] == "snapshot"
    with feed(server, None, source_address=("127.0.0.4", 0)) as ws:
        ws.send(json.dumps({"type": "auth", "token": "wrong-token-000000000"}))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


def test_bad_tokens_lock_out_that_token_and_a_flood_the_address(server: Server) -> None:
    viewer = make_user(server, "vic", "viewer")
    with from_address(server, "127.0.0.9", TOKEN) as good:
        assert good.get("/api/state").status_code == 200  # the admin works from there
    with from_address(server, "127.0.0.9", "wrong-token-000000000") as bad:
        statuses = [bad.get("/api/state").status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]
    # That token is locked out; a good token from the same address is not.
    with from_address(server, "127.0.0.9", viewer) as good_token_same_address:
        assert good_token_same_address.get("/api/state").status_code == 200
    # A flood of guesses (a new token each time) locks the address out...
    with from_address(server, "127.0.0.10", None) as guessing:
        flood = [
            guessing.get("/api/state", headers={"Authorization": f"Bearer guess-{n:016d}"}).status_code
            for n in range(30)
        ]
    assert flood[:20] == [401] * 20 and set(flood[20:]) == {429}
    # ...but not for a token that has signed in from there: the operators behind it keep working.
    with from_address(server, "127.0.0.10", viewer) as new_there, server.client() as signed_in:
        assert signed_in.get("/api/state").status_code == 200  # (from 127.0.0.1)
        locked = new_there.get("/api/state")  # a token new to that address waits
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    with pytest.raises(InvalidStatus):
        feed(server, viewer, source_address=("127.0.0.10", 0))
    # A browser (token in its first message) is told to try again later, and when.
    with feed(server, None, source_address=("127.0.0.10", 0)) as ws:
        ws.send(json.dumps({"type": "auth", "token": viewer}))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
    assert re.search(r"try again later \(in \d+ s\)", closed.value.rcvd.reason)
    with from_address(server, "127.0.0.11", viewer) as elsewhere:
        assert elsewhere.get("/api/state").status_code == 200


# --- roles -----------------------------------------------------------------------------------------


def test_roles_decide_who_may_command_and_refusals_are_audited(server: Server) -> None:
    viewer, operator = make_user(server, "vera", "viewer"), make_user(server, "otto", "operator")
    with server.client(viewer) as c:
        assert c.get("/api/state").status_code == 200
        refused = c.post("/api/signals/C/override", json={"action": "flash"})
        assert refused.status_code == 403 and "needs operator" in refused.json()["detail"]
        assert c.post("/api/simulation/pause").status_code == 403
        assert c.get("/api/users").status_code == 403
    with feed(server, viewer) as ws:
        assert frames(ws, 1)[0]["role"] == "viewer"
    with server.client(operator) as c:
        flash = c.post("/api/signals/C/override", json={"action": "flash"})
        assert flash.status_code == 200 and flash.json()["result"] == "accepted"
        back = c.post("/api/signals/C/override", json={"action": "automatic"})
        assert back.status_code == 200
        assert c.post("/api/simulation/controller", json={"controller": "actuated"}).status_code == 403
        assert c.post("/api/users", json={"name": "mallory", "role": "engineer"}).status_code == 403
    vera = audit(server, user="vera")
    assert {(e["action"], e["result"]) for e in vera} == {
        ("signal.override", "refused"),
        ("simulation.pause", "refused"),
    }
    assert all(e["role"] == "viewer" and "needs operator" in e["detail"] for e in vera)
    otto = audit(server, user="otto")
    assert [(e["action"], e["result"]) for e in reversed(otto)] == [
        ("signal.override", "accepted"), ("signal.override", "accepted"),
        ("simulation.controller", "refused"), ("user.create", "refused"),
    ]  # fmt: skip
    with server.client() as engineer:
        changed = engineer.post("/api/simulation/controller", json={"controller": "actuated"})
        assert changed.status_code == 200, changed.text
        assert changed.json()["detail"] == "'actuated' drives the signals"
        wait_for(lambda: engineer.get("/api/state").json()["state"]["run"]["controller"] == "actuated",
                 10, "the state to show the new controller")  # fmt: skip
        refused = engineer.post("/api/simulation/controller", json={"controller": "fixed"})
        assert refused.status_code == 409 and "lets SUMO drive" in refused.json()["detail"]


# --- commands --------------------------------------------------------------------------------------


def test_overrides_go_through_the_guard_and_show_on_the_feed(server: Server) -> None:
    with server.client() as c, feed(server) as ws:
        wrong = c.post("/api/signals/C/override", json={"action": "hold", "argument": "3"})
        assert wrong.status_code == 409
        assert wrong.json()["detail"].startswith("phase 3 is not a green phase; choose from")
        unknown = c.post("/api/signals/nowhere/override", json={"action": "flash"})
        assert unknown.status_code == 409 and unknown.json()["detail"] == "no signal 'nowhere'"
        assert c.post("/api/signals/C/override", json={"action": "flash"}).json()["result"] == "accepted"

        def flashing() -> bool:
            frame = json.loads(ws.recv(timeout=10))
            signal = frame.get("changes", frame.get("state", {})).get("signals", {}).get("C", {})
            return signal.get("mode") == "flash" and set(signal.get("state", "")) == {"o"}

        wait_for(flashing, 10, "signal C to flash on the feed", every_s=0)
        hold = c.post("/api/signals/C/override", json={"action": "hold", "argument": "0"})
        assert hold.json()["detail"] == "holding phase 0"
        assert c.post("/api/signals/C/override", json={"action": "automatic"}).status_code == 200
    entries = audit(server, action="signal.override", user="admin")
    results = [(e["arguments"]["action"], e["result"]) for e in reversed(entries)][-5:]
    assert results == [("hold", "refused"), ("flash", "refused"), ("flash", "accepted"),
                       ("hold", "accepted"), ("automatic", "accepted")]  # fmt: skip
    assert all(e["t"] is not None and e["decided"] for e in entries)


def test_an_unknown_lane_is_refused(server: Server) -> None:
    # Closing a real lane is tested on the district (tests/e2e/test_district.py): every lane of
    # this single intersection is the only way for some turn, so closing one strands vehicles.
    with server.client() as c:
        refused = c.post("/api/lanes/nowhere_0/close")
    assert refused.status_code == 409 and refused.json()["detail"] == "no lane 'nowhere_0'"


def test_invalid_commands_are_refused_and_audited(server: Server) -> None:
    with server.client() as c:
        response = c.post("/api/signals/C/override", json={"action": "explode"})
    assert response.status_code == 422 and "body.action" in response.json()["detail"]
    latest = audit(server, result="refused")[0]
    assert latest["action"] == "POST signals/C/override" and "body.action" in latest["detail"]


def test_a_number_in_quotes_or_a_misspelt_field_is_refused_not_taken(server: Server) -> None:
    # found by schemathesis (tests/e2e/test_api_fuzz.py): "5" was taken for 5, and an unknown
    # field silently left its neighbour at the default (a shelve for 3600 s, not 60)
    with server.client() as c:
        for url, body, detail in [
            ("/api/simulation/speed", {"speed": "5"}, "body.speed: Input should be a valid number"),
            ("/api/alarms/1/shelve", {"duration": 60}, "body.duration: Extra inputs are not permitted"),
            ("/api/incidents", {"edge": "E_C", "lane": True}, "body.lane: Input should be a valid int"),
            ("/api/users", {"name": "eve", "role": "viewer", "token": "x"}, "body.token: Extra inputs"),
        ]:  # fmt: skip
            response = c.post(url, json=body)
            assert response.status_code == 422, (url, response.text)
            assert response.json()["detail"].startswith(detail), response.text
        assert c.get("/api/state").json()["state"]["run"]["speed"] != 5
        # a body that is not UTF-8 (was an unexplained 400) or not JSON: what was expected
        json_type = {"content-type": "application/json"}
        for raw, detail in [
            (b'{"text": "\xff"}', "body: not UTF-8 text at byte 10; expected a JSON object"),
            (b'{"text": ', "body: not JSON (Expecting value at character 9); expected a JSON object"),
        ]:
            response = c.post("/api/alarms/1/comment", content=raw, headers=json_type)
            assert response.status_code == 422 and response.json()["detail"] == detail, response.text


def test_ids_beyond_what_the_store_holds_are_refused_naming_the_parameter(server: Server) -> None:
    # found by schemathesis: SQLite cannot bind an integer above 2**63 - 1 (a 500)
    huge = str(2**63)
    with server.client() as c:
        for method, url, params, where in [
            ("GET", f"/api/alarms/{huge}", {}, "path.alarm_id"),
            ("POST", f"/api/alarms/{huge}/comment", {}, "path.alarm_id"),
            ("GET", "/api/alarms", {"run": huge}, "query.run"),
            ("GET", "/api/alarms", {"offset": huge}, "query.offset"),
            ("GET", "/api/events", {"after": huge}, "query.after"),
            ("GET", "/api/kpis", {"run": huge}, "query.run"),
            ("GET", "/api/audit", {"offset": huge}, "query.offset"),
        ]:  # fmt: skip
            body = {"text": "x"} if method == "POST" else None
            response = c.request(method, url, params=params, json=body)
            assert response.status_code == 422, (url, params, response.text)
            assert response.json()["detail"].startswith(f"{where}: Input should be less than or equal")
        assert c.get(f"/api/alarms/{2**63 - 1}").status_code == 404  # the largest is an id like any


def test_pause_resume_and_speed(server: Server) -> None:
    with server.client() as c:
        assert c.post("/api/simulation/pause").json()["result"] == "accepted"
        wait_for(lambda: c.get("/api/state").json()["state"]["run"]["paused"], 5, "the run to pause")
        with feed(server) as ws:
            _hello, _alarms, snapshot, *deltas = frames(ws, 6)
        assert all(d["t"] == snapshot["t"] for d in deltas)  # three ticks, no simulated time
        assert c.post("/api/simulation/speed", json={"speed": 40}).json()["result"] == "accepted"
        assert c.post("/api/simulation/resume").json()["result"] == "accepted"
        state = wait_for(
            lambda: (s := c.get("/api/state").json()["state"]["run"])["t"] > snapshot["t"] and s,
            5, "the run to go on",
        )  # fmt: skip
        assert state["paused"] is False and state["speed"] == 40
        zero = c.post("/api/simulation/speed", json={"speed": 0})
        assert zero.status_code == 409 and "expected a factor above 0" in zero.json()["detail"]
        assert c.post("/api/simulation/speed", json={"speed": 20}).status_code == 200
    recorded = [(e["action"], e["result"]) for e in audit(server, user="admin")[:5]]
    assert recorded == [
        ("simulation.speed", "accepted"), ("simulation.speed", "refused"),
        ("simulation.resume", "accepted"), ("simulation.speed", "accepted"),
        ("simulation.pause", "accepted"),
    ]  # fmt: skip


# --- alarms ----------------------------------------------------------------------------------------


def acknowledge_all(server: Server) -> None:
    """Close what earlier tests left open (returned to normal but never acknowledged)."""
    with server.client() as c:
        for alarm in c.get("/api/alarms", params={"state": "return-to-normal-unacknowledged"}).json()[
            "items"
        ]:
            c.post(f"/api/alarms/{alarm['id']}/acknowledge", json={"note": "test clean-up"})


def test_alarm_lifecycle_travels_the_feed_and_every_step_is_recorded(server: Server) -> None:
    acknowledge_all(server)
    with server.client() as c, feed(server) as ws:
        frame_of(ws, "snapshot")
        c.post("/api/signals/C/override", json={"action": "plan", "argument": "0"})
        raised = frame_of(ws, "alarm")
        alarm = raised["alarm"]
        assert raised["event"]["action"] == "raise" and alarm["state"] == "active-unacknowledged"
        assert alarm["rule"] == "signal-manual" and alarm["severity"] == "low"
        assert alarm["category"] == "traffic" and alarm["type"] == "Alert"
        assert alarm["location"] == {"type": "Point", "coordinates": [280.0, 280.0]}
        ack = c.post(f"/api/alarms/{alarm['id']}/acknowledge", json={"note": "planned works"})
        assert ack.status_code == 200 and ack.json()["alarm"]["state"] == "acknowledged"
        acked = frame_of(ws, "alarm")
        assert acked["seq"] == raised["seq"] + 1 and acked["event"]["user"] == "admin"
        again = c.post(f"/api/alarms/{alarm['id']}/acknowledge", json={})
        assert again.status_code == 409 and "cannot acknowledge" in again.json()["detail"]
        c.post("/api/signals/C/override", json={"action": "automatic"})
        cleared = frame_of(ws, "alarm")
        assert (
            cleared["event"]["action"] == "return-to-normal" and cleared["alarm"]["state"] == "cleared"
        )
        c.post(f"/api/alarms/{alarm['id']}/comment", json={"text": "closed after the works"})
        history = c.get(f"/api/alarms/{alarm['id']}").json()["history"]
    assert [(h["action"], h["from"], h["to"], h["user"]) for h in history] == [
        ("raise", None, "active-unacknowledged", "system"),
        ("acknowledge", "active-unacknowledged", "acknowledged", "admin"),
        ("return-to-normal", "acknowledged", "cleared", "system"),
        ("comment", "cleared", "cleared", "admin"),
    ]
    assert all(h["at"] for h in history) and history[1]["note"] == "planned works"
    assert audit(server, action="alarm.acknowledge")[0]["result"] == "refused"


def test_shelving_and_alarm_filters(server: Server) -> None:
    acknowledge_all(server)
    with server.client() as c:
        c.post("/api/signals/C/override", json={"action": "flash"})
        alarm = wait_for(
            lambda: c.get("/api/alarms", params={"state": "active-unacknowledged"}).json()["items"],
            10, "the manual-control alarm",
        )[0]  # fmt: skip
        assert alarm["rule"] == "signal-manual" and alarm["severity"] == "low"
        shelved = c.post(f"/api/alarms/{alarm['id']}/shelve", json={"duration_s": 600, "note": "known"})
        assert shelved.json()["alarm"]["state"] == "shelved" and shelved.json()["alarm"]["shelvedUntil"]
        assert c.post(f"/api/alarms/{alarm['id']}/shelve", json={"duration_s": 600}).status_code == 409
        c.post("/api/signals/C/override", json={"action": "automatic"})
        wait_for(lambda: not c.get(f"/api/alarms/{alarm['id']}").json()["active"], 10, "normal again")
        back = c.post(f"/api/alarms/{alarm['id']}/unshelve", json={})
        assert back.json()["alarm"]["state"] == "cleared"  # its condition had returned to normal
        page = c.get("/api/alarms", params={"severity": "low", "limit": 1}).json()
        assert page["total"] >= 1 and len(page["items"]) == 1
        assert c.get("/api/alarms", params={"state": "nonsense"}).status_code == 422


def test_a_client_that_reconnects_with_its_last_seq_gets_what_it_missed(server: Server) -> None:
    acknowledge_all(server)
    with feed(server) as ws:
        listed = frame_of(ws, "alarms")
    last = listed["seq"]
    with server.client() as c:  # while nobody listens
        for action in ("flash", "automatic", "hold", "automatic"):
            c.post("/api/signals/C/override", json={"action": action, "argument": "0"})
        wait_for(lambda: c.get("/api/health").json()["alarms"]["seq"] >= last + 4, 10, "4 alarm events")
        now = c.get("/api/health").json()["alarms"]["seq"]
    with connect(
        f"{server.ws_url}?since={last}", additional_headers={"Authorization": f"Bearer {TOKEN}"}
    ) as ws:
        assert frames(ws, 1)[0]["type"] == "hello"
        missed = [frame_of(ws, "alarm") for _ in range(now - last)]
    assert [m["seq"] for m in missed] == list(range(last + 1, now + 1))
    actions = [m["event"]["action"] for m in missed]
    assert actions == ["raise", "return-to-normal", "re-alarm", "return-to-normal"]


# --- reads -----------------------------------------------------------------------------------------


def test_network_events_kpis_health_and_page(server: Server) -> None:
    with server.client() as c:
        geo = c.get("/api/network")
        assert geo.headers["content-type"] == "application/geo+json"
        kinds = {f["properties"]["kind"] for f in geo.json()["features"]}
        assert {"lane", "edge", "junction", "signal", "detector"} <= kinds
        assert geo.json()["properties"]["crs"] == "sumo-net"
        events = c.get("/api/events", params={"kind": "run.started"}).json()["items"]
        assert events[0]["payload"]["scenario"] == "single" and events[0]["seq"] == 1
        phases = c.get("/api/events", params={"kind": "signal.phase", "limit": 5}).json()
        assert len(phases["items"]) == 5 and phases["next"] == phases["items"][-1]["seq"]
        health = c.get("/api/health").json()
        assert health["status"] == "ok" and health["run"]["running"] and health["store"]["commits"] > 0
        assert health["collector"]["frozen"] > 0  # what start-up built, out of the collector's way
        wait_for(lambda: c.get("/api/health").json()["collector"]["full"] >= 1, 30,
                 "a full collection after a tick")  # fmt: skip
        rows = wait_for(lambda: c.get("/api/kpis", params={"scope": "network"}).json()["items"],
                        30, "the first KPI interval")  # fmt: skip
        assert {r["metric"] for r in rows} >= {"departed", "arrived", "throughput_veh_h"}
        assert rows[0]["end_s"] == 300.0
        assert c.get("/api/runs").json()["items"][0]["scenario"] == "single"
        assert "ccsim control room" in httpx.get(server.url).text


def test_retention_is_an_engineer_setting(server: Server) -> None:
    operator = make_user(server, "olga", "operator")
    with server.client(operator) as c:
        assert c.put("/api/settings/retention", json={"events_days": 1}).status_code == 403
    with server.client() as c:
        saved = c.put("/api/settings/retention", json={"events_days": 7, "audit_days": 0})
        assert saved.json()["retention"]["events_days"] == 7.0
        assert c.get("/api/settings/retention").json()["audit_days"] == 0.0


def test_stops_cleanly_on_interrupt(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--speed", "50", "--end", "1200")
    try:
        server.wait_running()
    finally:
        assert server.stop() == 0, server.lines


def test_a_first_start_without_a_token_makes_one_and_shows_it_once(tmp_path: Path) -> None:
    first = start_server(tmp_path / "a", "--speed", "max", "--end", "60", admin_token=None)
    try:
        [shown] = [line for line in first.lines if line.startswith("admin token: ")]
        token = shown.removeprefix("admin token: ")
        with first.client(token) as c:
            assert c.get("/api/health").json()["status"] == "ok"
    finally:
        first.stop()
    again = start_server(tmp_path / "b", "--speed", "max", "--end", "60", db=first.db, admin_token=None)
    try:
        assert not [line for line in again.lines if "token" in line]
        with again.client(token) as c:
            assert c.get("/api/health").status_code == 200
    finally:
        again.stop()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nowhere"], "nowhere: no such scenario; expected a bundled name"),
        (["single", "--controller", "psychic"], "unknown controller 'psychic'"),
        (["single", "--db", "mysql://db/ccsim"], "unsupported store; expected sqlite:///"),
        (
            ["single", "--db", "postgresql://ccsim:hunter2@127.0.0.1:1/ccsim"],
            "--db 'postgresql://ccsim:***@127.0.0.1:1/ccsim': cannot open the store",
        ),
        (["single", "--speed", "0"], "expected a factor above 0"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_code_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "controlcenter.cli", "serve", *args, "--port", "0",
         *([] if "--db" in args else ["--db", f"sqlite:///{tmp_path}/c.db"])],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert message in result.stderr.strip().splitlines()[-1]
    assert "admin token" not in result.stdout
