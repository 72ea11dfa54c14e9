"""An operator reports an incident to a running ``ccsim serve`` (a real server process, real
SUMO on the single intersection with the incident model): it is checked against the net, sent
to the simulation, occurs there and shows in the state, the event history and the audit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.serving import Server, audit, make_user, start_server, wait_for
from tests.sim.devices_helpers import single_with

INCIDENTS = "[devices.incidents]\ncollisions = false\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("incidents")
    scenario = single_with(tmp / "scenario", INCIDENTS, name="single-incidents")
    running = start_server(tmp, "--speed", "20", scenario=str(scenario))
    try:
        running.wait_running()
        yield running
    finally:
        assert running.stop() == 0, running.lines[-20:]


def state(server: Server) -> dict[str, Any]:
    with server.client() as c:
        found: dict[str, Any] = c.get("/api/state").json()["state"]
    return found


@pytest.mark.parametrize(
    ("body", "field", "expected"),
    [
        ({"edge": "nowhere"}, "edge", "an edge of the net"),
        ({"edge": "E_C", "lane": 5}, "lane", "a vehicle lane index of E_C: 1, 2"),
        ({"edge": "E_C", "lane": 1, "pos_m": 900}, "pos_m", "a position on E_C_1: 0 to "),
        # N_C's only way into C_W is C_W_1: SUMO would stop the run
        ({"edge": "C_W", "lane": 1, "cause": "blocked_lane"}, "lane", "a lane SUMO can close"),
    ],
)
def test_an_incident_off_the_net_is_refused_naming_the_field(
    server: Server, body: dict[str, Any], field: str, expected: str
) -> None:
    with server.client() as c:
        refused = c.post("/api/incidents", json=body)
    assert refused.status_code == 422, refused.text
    answer = refused.json()
    assert answer["field"] == field and answer["expected"].startswith(expected)
    assert answer["result"] == "refused" and answer["detail"].startswith(f"{field} ")
    (entry,) = [a for a in audit(server, action="incident.report") if a["id"] == answer["command"]]
    assert entry["result"] == "refused"


def test_a_bad_cause_or_duration_is_refused_naming_the_field(server: Server) -> None:
    with server.client() as c:
        cause = c.post("/api/incidents", json={"edge": "E_C", "lane": 1, "cause": "fire"})
        duration = c.post("/api/incidents", json={"edge": "E_C", "lane": 1, "duration_s": 0})
    assert cause.status_code == 422 and "body.cause" in cause.json()["detail"]
    assert "'stopped_vehicle' or 'blocked_lane'" in cause.json()["detail"]
    assert duration.status_code == 422 and "body.duration_s" in duration.json()["detail"]


def test_a_viewer_may_not_report_an_incident(server: Server) -> None:
    token = make_user(server, "vera", "viewer")
    with server.client(token) as c:
        refused = c.post("/api/incidents", json={"edge": "E_C", "lane": 1})
    assert refused.status_code == 403


def test_a_reported_incident_occurs_holds_its_lane_and_shows(server: Server) -> None:
    body = {"edge": "E_C", "lane": 1, "pos_m": 120, "duration_s": 900, "cause": "blocked_lane"}
    with server.client() as c:
        reported = c.post("/api/incidents", json=body)
        assert reported.status_code in (200, 202), reported.text
        events = wait_for(
            lambda: c.get("/api/events", params={"kind": "incident.reported"}).json()["items"],
            30, "the incident to be reported in the stream",
        )  # fmt: skip
    payload = events[-1]["payload"]
    incident = payload["incident"]
    assert payload["accepted"] and incident.startswith("incident.")
    assert (payload["lane"], payload["cause"], payload["user"]) == ("E_C_1", "blocked_lane", "admin")
    current = wait_for(lambda: (s := state(server)).get("lanes", {}).get("E_C_1") and s, 30, "lanes")
    assert current["lanes"]["E_C_1"]["closed"] is True
    assert current["lanes"]["E_C_1"]["owners"] == [incident]
    shown = current["reported_incidents"][incident]
    assert (shown["lane"], shown["user"], shown["until"] - shown["since"]) == ("E_C_1", "admin", 900)
    # An operator cannot open what the incident holds; the answer says who holds it.
    with server.client() as c:
        refused = c.post("/api/lanes/E_C_1/open")
    assert refused.status_code == 409
    assert refused.json()["detail"].startswith(f"the lane stays closed: held by {incident}")
    assert state(server)["lanes"]["E_C_1"]["closed"] is True
    (entry,) = [a for a in audit(server, action="incident.report") if a["result"] == "accepted"]
    assert entry["detail"].startswith(incident)
