"""NGSI-LD from ``ccsim serve`` as a client or a broker sees it: a real server running ten minutes
of the district, queried over HTTP, pushing its entities to a real HTTP peer (``--ngsi-ld``)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from controlcenter.ngsild.models import CONTEXT, MODELS
from tests.controlcenter.ngsild_broker import Broker, broker
from tests.controlcenter.ngsild_schemas import errors_of, normalized_errors
from tests.e2e.serving import REPO, Server, make_user, start_server, wait_for

ENTITIES = "/ngsi-ld/v1/entities"
ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"


@pytest.fixture(scope="module")
def peer() -> Iterator[Broker]:
    with broker() as running:
        yield running


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, peer: Broker) -> Iterator[Server]:
    running = start_server(
        tmp_path_factory.mktemp("serve"), "--controller", "fixed", "--speed", "max", "--end", "600",
        "--variant", "devices.air.alarm_index=25", "--ngsi-ld", peer.url, "--ngsi-ld-period", "0.2",
        scenario="district",
    )  # fmt: skip
    try:
        wait_for(lambda: running.health()["run"]["status"] == "finished", 120, "the run to finish")
        yield running
    finally:
        assert running.stop() == 0, running.lines


def get(server: Server, path: str, token: str | None = None, **params: Any) -> httpx.Response:
    headers = {"Accept": params.pop("accept")} if "accept" in params else {}
    with server.client(token or server.token) as c:
        return c.get(path, params=params, headers=headers)


def problem(response: httpx.Response, status: int, kind: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == ERRORS + kind and body["status"] == status and body["title"]
    detail: str = body["detail"]
    return detail


def test_every_model_is_served_valid_in_both_forms(server: Server) -> None:
    for type_name in MODELS:
        page = get(server, ENTITIES, type=type_name, limit=1000, count="true")
        assert page.status_code == 200, page.text
        entities = page.json()
        assert entities and int(page.headers["NGSILD-Results-Count"]) == len(entities), type_name
        assert {e["type"] for e in entities} == {type_name}
        for entity in entities:
            assert normalized_errors(entity) == [], entity["id"]
        simple = get(server, ENTITIES, type=type_name, limit=1000, options="keyValues").json()
        assert [e["id"] for e in simple] == [e["id"] for e in entities]
        for entity in simple:
            assert errors_of(entity) == [], entity["id"]
    types = get(server, "/ngsi-ld/v1/types").json()
    assert types["type"] == "EntityTypeList" and set(types["typeList"]) == set(MODELS)


def test_json_ld_and_plain_json_carry_the_context_their_way(server: Server) -> None:
    plain = get(server, ENTITIES, type="AirQualityObserved")
    assert plain.headers["content-type"] == "application/json"
    link = plain.headers["link"]
    assert 'rel="http://www.w3.org/ns/json-ld#context"' in link and "@context" not in plain.json()[0]
    context_url = link.split(">")[0].lstrip("<")
    with httpx.Client() as anonymous:  # a JSON-LD processor fetches it without a token
        assert anonymous.get(context_url).json() == {"@context": CONTEXT}
    ld = get(server, ENTITIES, type="AirQualityObserved", accept="application/ld+json")
    assert ld.headers["content-type"] == "application/ld+json"
    assert all(e["@context"] == CONTEXT for e in ld.json()) and "link" not in ld.headers
    by_iri = get(server, ENTITIES, type=MODELS["AirQualityObserved"].iri)
    assert [e["id"] for e in by_iri.json()] == [e["id"] for e in plain.json()]


def test_one_entity_by_id_and_ids_idpattern_attrs(server: Server) -> None:
    [lot] = get(server, ENTITIES, type="OffStreetParking", q='name=="lot C4_D4"').json()
    one = get(server, f"{ENTITIES}/{lot['id']}")
    assert one.status_code == 200 and one.json() == lot
    kv = get(server, f"{ENTITIES}/{lot['id']}", options="keyValues", attrs="totalSpotNumber").json()
    assert kv == {"id": lot["id"], "type": "OffStreetParking", "totalSpotNumber": 120}
    spots = get(server, ENTITIES, idPattern=r":lot_north:11[0-9]$", limit=100).json()
    assert len(spots) == 10 and {s["type"] for s in spots} == {"ParkingSpot"}
    ids = [spots[0]["id"], lot["id"], "urn:ngsi-ld:ParkingSpot:district:nowhere:0"]
    assert {e["id"] for e in get(server, ENTITIES, id=",".join(ids)).json()} == set(ids[:2])
    with_speed = get(server, ENTITIES, attrs="averageVehicleSpeed", limit=100).json()
    assert with_speed and all(set(e) == {"id", "type", "averageVehicleSpeed"} for e in with_speed)


def test_q_filters_on_values(server: Server) -> None:
    occupied = get(server, ENTITIES, type="ParkingSpot", q='status=="occupied"', limit=1000).json()
    free = get(server, ENTITIES, type="ParkingSpot", q='status=="free"', limit=1000, count="true")
    total = int(get(server, ENTITIES, type="ParkingSpot", limit=0, count="true").headers[
        "NGSILD-Results-Count"])  # fmt: skip
    assert occupied and len(occupied) + len(free.json()) == total
    assert all(s["status"]["value"] == "occupied" for s in occupied)
    zones = "OnStreetParking,OffStreetParking"
    busy_q = "occupiedSpotNumber>0;totalSpotNumber>=5"
    busy = get(server, ENTITIES, type=zones, q=busy_q, limit=100, options="keyValues").json()
    assert busy and all(z["occupiedSpotNumber"] > 0 and z["totalSpotNumber"] >= 5 for z in busy)
    alerts = get(server, ENTITIES, type="Alert", q='category=="environment"|severity=="critical"',
                 options="keyValues").json()  # fmt: skip
    assert alerts and all(a["category"] == "environment" for a in alerts)


def test_pages_follow_the_link_header(server: Server) -> None:
    total = int(get(server, ENTITIES, limit=0, count="true").headers["NGSILD-Results-Count"])
    assert total > 500
    seen: list[str] = []
    url: str | None = f"{server.url.rstrip('/')}{ENTITIES}?type=ParkingSpot&limit=100"
    with server.client() as c:
        while url is not None:
            page = c.get(url)
            seen += [e["id"] for e in page.json()]
            nexts = [p for p in page.headers["link"].split(", ") if p.endswith('rel="next"')]
            url = nexts[0].split(">")[0].lstrip("<") if nexts else None
    assert len(seen) == len(set(seen)) == sum(1 for _ in get(server, ENTITIES, type="ParkingSpot",
                                                             limit=1000).json())  # fmt: skip
    assert seen == sorted(seen)
    second = get(server, ENTITIES, type="ParkingSpot", limit=100, offset=100)
    assert 'rel="prev"' in second.headers["link"] and second.json()[0]["id"] == seen[100]


def test_errors_are_ngsi_ld_problem_details(server: Server) -> None:
    detail = problem(get(server, ENTITIES, q="status=="), 400, "BadRequestData")
    assert "ends too early" in detail
    problem(get(server, ENTITIES, q="occupancy>0.5,0.7"), 400, "BadRequestData")
    problem(
        get(server, f"{ENTITIES}/urn:ngsi-ld:ParkingSpot:district:nowhere:0"), 404, "ResourceNotFound"
    )
    problem(get(server, f"{ENTITIES}/not-a-uri"), 400, "BadRequestData")
    problem(get(server, ENTITIES, id="lot_north"), 400, "BadRequestData")
    problem(get(server, ENTITIES, limit=5000), 403, "TooManyResults")
    problem(get(server, ENTITIES, limit="ten"), 400, "BadRequestData")
    problem(get(server, ENTITIES, offset=-1), 400, "BadRequestData")
    problem(get(server, ENTITIES, options="everything"), 400, "BadRequestData")
    problem(get(server, ENTITIES, idPattern="("), 400, "BadRequestData")
    problem(get(server, ENTITIES, georel="near;maxDistance==100", geometry="Point",
                coordinates="[-77.03,-12.12]"), 422, "OperationNotSupported")  # fmt: skip
    assert get(server, ENTITIES, type="Vehicle").json() == []  # an unknown type: nothing


def test_reads_need_a_token_and_any_role_will_do(server: Server) -> None:
    with server.client(None) as c:
        assert c.get(ENTITIES).status_code == 401
        assert c.get(f"{ENTITIES}/urn:ngsi-ld:Alert:district:alarm-1").status_code == 401
    viewer = make_user(server, "ngsi-viewer", "viewer")
    assert get(server, ENTITIES, token=viewer, type="Alert").status_code == 200


def test_the_broker_gets_the_same_entities_and_health_says_so(server: Server, peer: Broker) -> None:
    def caught_up() -> dict[str, Any] | None:
        push = server.health()["ngsi_ld"]["push"]
        return push if push["entities_sent"] and not push["failures"] else None

    push = wait_for(caught_up, 30, "the pusher to send")
    served = {e["id"]: e for e in get(server, ENTITIES, limit=1000).json()}
    served |= {e["id"]: e for e in get(server, ENTITIES, limit=1000, offset=1000).json()}

    def pushed_all() -> bool:
        sent = peer.entities()
        return all(i in sent and sent[i] == {**e, "@context": CONTEXT} for i, e in served.items())

    wait_for(pushed_all, 30, "the broker to have every entity as served")
    assert all(r.path == "/ngsi-ld/v1/entityOperations/upsert" for r in peer.received)
    assert all(len(r.body) <= 100 for r in peer.received)
    assert push["url"] == peer.url and push["rejected"] == 0
    health = server.health()["ngsi_ld"]
    assert health["location"].startswith("[geo] origin") and set(health["entities"]) == set(MODELS)


def test_a_bad_broker_url_is_one_clear_line(tmp_path: Any) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "controlcenter.cli", "serve", "single", "--ngsi-ld", "localhost:1026",
         "--db", f"sqlite:///{tmp_path}/c.db"],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "ccsim: error: --ngsi-ld 'localhost:1026': expected the broker's address, "
        "http://HOST:PORT or https://HOST:PORT"
    ]
