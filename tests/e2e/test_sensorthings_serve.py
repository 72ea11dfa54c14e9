"""``ccsim serve --mqtt`` with its SensorThings API as a user runs it: a client library nobody
here wrote (Fraunhofer IOSB's frost-sta-client) reads the service over HTTP while the run goes
on; mosquitto_sub and aiomqtt, MQTT clients, receive what changes on each kind of topic the
standard names (conformance class "Receive updates via MQTT", SensorThings API 1.1 Annex A);
and the HTTP layer's authentication and errors."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import aiomqtt
import frost_sta_client as fsc
import httpx
import pytest

from controlcenter.sensorthings.service import MQTT_RECEIVE
from tests.e2e.serving import REPO, TOKEN, Server, start_server, wait_for

pytestmark = [
    pytest.mark.skipif(
        shutil.which("mosquitto_sub") is None, reason="mosquitto-clients not installed (make setup)"
    ),
    pytest.mark.filterwarnings("ignore:furl.pathstr is deprecated:DeprecationWarning"),
]
ORIGIN = "-77.03,-12.12"
SELECT = "v1.1/Datastreams(1)/Observations?$select=result,phenomenonTime"
"""A $select topic served (--sta-mqtt-select): Datastream 1 is the signal's phases."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(
        tmp_path_factory.mktemp("sensorthings"),
        "--controller", "fixed", "--speed", "20", "--mqtt", f"--geo-origin={ORIGIN}",
        "--sta-mqtt-select", SELECT,
        scenario="single",
    )  # fmt: skip
    try:
        running.wait_running()
        yield running
    finally:
        assert running.stop() == 0, running.lines


def sta(server: Server, path: str, **params: str) -> Any:
    with server.client() as client:
        response = client.get(f"/v1.1/{path}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def phase_stream(server: Server) -> int:
    [stream] = sta(server, "Datastreams", **{"$filter": "properties/key eq 'phase'"})["value"]
    return int(stream["@iot.id"])


def test_a_sensorthings_client_library_reads_the_live_service(server: Server) -> None:
    service = fsc.SensorThingsService(f"{server.url}v1.1", auth_handler=fsc.AuthHandler("admin", TOKEN))
    things = service.things().query().expand("Datastreams($orderby=id)").list()
    [thing] = list(things)
    assert thing.name == "intersection C"
    assert [d.name for d in thing.datastreams] == [
        "intersection C signal phase",
        "intersection C mean queue",
        "intersection C longest queue",
    ]
    [location] = list(service.things().find(thing.id).get_locations().query().list())
    lon, lat = location.location["coordinates"]
    assert abs(lon + 77.03) < 0.01 and abs(lat + 12.12) < 0.01  # near the origin serve was given
    # A geospatial filter, as the client library sends it (URL-encoded by it, through HTTP).
    near = f"geo.distance(Locations/location, geography'POINT({lon} {lat + 0.01})')"
    assert [t.name for t in service.things().query().filter(f"{near} lt 1200").list()] == [thing.name]
    assert list(service.things().query().filter(f"{near} lt 1000").list()) == []  # 0.01 deg: 1.1 km
    with server.client() as client:
        bad = client.get(
            "/v1.1/Things", params={"$filter": "st_within(Locations/location, geography'POINT(1)')"}
        )
    assert (
        bad.status_code == 400 and "bad geography literal geography'POINT(1)'" in bad.json()["message"]
    )

    stream_id = phase_stream(server)
    wait_for(
        lambda: (
            sta(server, f"Datastreams({stream_id})/Observations", **{"$count": "true", "$top": "0"})[
                "@iot.count"
            ]
            >= 8
        ),
        60.0,
        "eight phase switches",
    )
    stream = service.datastreams().find(stream_id)
    assert stream.unit_of_measurement is not None
    # The phases other than the first up to now (the run goes on: later ones are left out, so
    # that paging sees a fixed set), newest first, through the client's query builder and page
    # by page (the client follows @iot.nextLink), 2 at a time.
    newest = sta(
        server, f"Datastreams({stream_id})/Observations", **{"$orderby": "id desc", "$top": "1"}
    )
    query = f"result gt 0 and phenomenonTime le {newest['value'][0]['phenomenonTime']}"
    pages = (
        stream.get_observations().query().filter(query).orderby("phenomenonTime", "desc").top(2).list()
    )
    seen = [(o.id, o.result) for o in pages]
    rest = sta(
        server, f"Datastreams({stream_id})/Observations",
        **{"$filter": query, "$orderby": "phenomenonTime desc", "$top": "1000"},
    )["value"]  # fmt: skip
    assert len(seen) >= 4 and all(result > 0 for _id, result in seen)
    assert seen == [(o["@iot.id"], o["result"]) for o in rest]
    assert [i for i, _r in seen] == sorted((i for i, _r in seen), reverse=True)


def broker_of(server: Server) -> tuple[str, str]:
    found = re.fullmatch(
        r"mqtt: mqtt://(127\.0\.0\.1):(\d+)", next(x for x in server.lines if x.startswith("mqtt: "))
    )
    assert found
    return found[1], found[2]


def test_new_observations_reach_an_mqtt_subscriber(server: Server) -> None:
    host, port = broker_of(server)
    root = sta(server, "")
    assert MQTT_RECEIVE in root["serverSettings"]["conformance"]
    assert root["serverSettings"][MQTT_RECEIVE]["endpoints"] == [f"mqtt://{host}:{port}"]
    stream_id = phase_stream(server)
    before = sta(
        server, f"Datastreams({stream_id})/Observations", **{"$top": "1", "$orderby": "id desc"}
    )
    newest_before = before["value"][0]["@iot.id"] if before["value"] else 0
    out = subprocess.run(
        [
            "mosquitto_sub",
            "-h",
            host,
            "-p",
            port,
            "-q",
            "1",
            "-v",
            "-t",
            f"v1.1/Datastreams({stream_id})/Observations",
            "-C",
            "3",
            "-W",
            "60",
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    ).stdout
    received = []
    for line in out.strip().splitlines():
        topic, _, body = line.partition(" ")
        assert topic == f"v1.1/Datastreams({stream_id})/Observations"
        received.append(json.loads(body))
    assert len(received) == 3
    for observation in received:
        assert observation["@iot.id"] > newest_before  # new ones, not a replay
        # The same JSON a GET of it gives.
        assert sta(server, f"Observations({observation['@iot.id']})") == observation
        assert sta(server, f"Observations({observation['@iot.id']})/Datastream")["@iot.id"] == stream_id
    mqtt = server.health()["sensorthings"]["mqtt"]
    assert mqtt["connected"] and mqtt["published"] >= 3 and mqtt["dropped"] == 0


def test_http_needs_a_token_bearer_or_basic_and_errors_are_json(server: Server) -> None:
    url = f"{server.url}v1.1/Things"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, auth=("admin", "not-the-token-at-all")).status_code == 401
    assert httpx.get(url, auth=("someone", TOKEN)).status_code == 401  # the token is admin's
    assert httpx.get(url, headers={"Authorization": "Basic !!!"}).status_code == 401
    assert httpx.get(url, auth=("admin", TOKEN)).status_code == 200
    with server.client() as client:
        bad = client.get("/v1.1/Things", params={"$filter": "name eq"})
        missing = client.get("/v1.1/Things(999)")
        twice = client.get("/v1.1/Things?$top=1&$top=2")
        raw = client.get("/v1.1/Things(1)/name/$value")
    assert bad.status_code == 400 and bad.json()["code"] == 400
    assert "expected more" in bad.json()["message"] == bad.json()["detail"]
    assert missing.status_code == 404 and "no such Thing" in missing.json()["message"]
    assert twice.status_code == 400 and "$top given more than once" in twice.json()["message"]
    assert raw.status_code == 200 and raw.text == "intersection C"
    assert raw.headers["content-type"].startswith("text/plain")


Received = dict[str, list[dict[str, Any]]]


async def receive(
    host: str, port: int, topics: Iterable[str], enough: Callable[[Received], bool], timeout_s: float
) -> Received:
    """Subscribe to ``topics`` in one SUBSCRIBE (so all start at the same message) and collect
    what arrives, by topic, until ``enough`` says so."""
    got: Received = {topic: [] for topic in topics}
    async with aiomqtt.Client(host, port, identifier="test-sta-receive") as client:
        await client.subscribe([(topic, 1) for topic in got])
        async with asyncio.timeout(timeout_s):
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                got[message.topic.value].append(json.loads(message.payload))
                if enough(got):
                    return got
    raise AssertionError("unreachable")


def aligned(later: list[Any], earlier: list[Any]) -> bool:
    """Whether ``later`` - published right after each item of ``earlier``, on another topic -
    runs along ``earlier``: the same items in the same order, but for one at its start (the
    subscription fell between the two publications) and those cut off at the end."""
    if later and later[0] not in earlier:
        later = later[1:]
    if not later or later[0] not in earlier:
        return False
    k = earlier.index(later[0])
    n = min(len(later), len(earlier) - k)
    return n >= 2 and later[:n] == earlier[k : k + n]


def test_receive_updates_on_each_kind_of_topic_the_standard_names(server: Server) -> None:
    """SensorThings API 1.1, 14.2: an entity set, through a navigation property too; one entity
    (an Observation not made yet, a Datastream that its Observations update); one property; a
    $select topic the service was told to serve - and one it was not, which gets nothing."""
    host, port = broker_of(server)
    d = phase_stream(server)
    assert SELECT.startswith(f"v1.1/Datastreams({d})/")
    t = sta(server, f"Datastreams({d})/Thing")["@iot.id"]
    newest = sta(server, "Observations", **{"$orderby": "id desc", "$top": "1"})["value"]
    f = sta(server, "FeaturesOfInterest")["value"][0]["@iot.id"]  # the one intersection's place
    future = (newest[0]["@iot.id"] if newest else 0) + 5
    topics = {
        "set": "v1.1/Observations",
        "stream": f"v1.1/Datastreams({d})/Observations",
        "feature": f"v1.1/FeaturesOfInterest({f})/Observations",
        "entity": f"v1.1/Observations({future})",
        "datastream": f"v1.1/Datastreams({d})",
        "property": f"v1.1/Datastreams({d})/phenomenonTime",
        "thing": f"v1.1/Things({t})/Datastreams",
        "select": SELECT,
        "unserved": f"v1.1/Datastreams({d})/Observations?$select=result",
    }

    def enough(got: Received) -> bool:
        counts = {name: len(got[topic]) for name, topic in topics.items()}
        return counts["entity"] >= 1 and all(
            counts[name] >= 3
            for name in ("set", "stream", "feature", "datastream", "property", "thing", "select")
        )

    got = asyncio.run(receive(host, int(port), topics.values(), enough, 90.0))
    on = {name: got[topic] for name, topic in topics.items()}
    assert on["unserved"] == []
    [created] = on["entity"]
    assert created["@iot.id"] == future and sta(server, f"Observations({future})") == created
    seen = {o["@iot.id"] for o in on["set"]}
    for o in on["stream"]:
        assert o == sta(server, f"Observations({o['@iot.id']})")  # what a GET gives
        assert sta(server, f"Observations({o['@iot.id']})/Datastream")["@iot.id"] == d
        # The entity set has them all (but those published before or after the window).
        assert o["@iot.id"] in seen or not min(seen) < o["@iot.id"] < max(seen)
    for o in on["feature"]:
        assert sta(server, f"Observations({o['@iot.id']})/FeatureOfInterest")["@iot.id"] == f
    # The $select topic: the same Observations as the Datastream's topic, those two properties.
    assert aligned(on["select"], [{"result": o["result"], "phenomenonTime": o["phenomenonTime"]}
                                  for o in on["stream"]])  # fmt: skip
    # The Datastream, updated by each batch of its Observations; its phenomenonTime alone.
    assert {s["@iot.id"] for s in on["datastream"]} == {d}
    spans = [s["phenomenonTime"] for s in on["datastream"]]
    assert spans == sorted(spans) and len(set(spans)) == len(spans)  # each one a change
    assert aligned(on["property"], [{"phenomenonTime": span} for span in spans])
    streams = {s["@iot.id"] for s in sta(server, f"Things({t})/Datastreams")["value"]}
    assert {s["@iot.id"] for s in on["thing"]} <= streams and d in {s["@iot.id"] for s in on["thing"]}
    assert server.health()["sensorthings"]["mqtt"]["select_topics"] == [SELECT]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((SELECT,), f"--sta-mqtt-select {SELECT}: needs --mqtt"),
        (("v1.1/Observations?$select=reslt", "--mqtt"), "an Observation has no 'reslt'"),
        (("v1.1/Observations?$top=1", "--mqtt"), "only $select is served on MQTT topics"),
    ],
)
def test_a_select_topic_that_cannot_be_served_stops_serve_before_it_starts(
    args: tuple[str, ...], message: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "controlcenter.cli", "serve", "single", "--port", "0",
         "--sta-mqtt-select", *args],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("ccsim: error: ") and message in result.stderr
    assert "mqtt: " not in result.stdout  # no broker was started
