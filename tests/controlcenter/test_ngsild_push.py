"""Pushing entities to a broker: batched upserts of what changed, and a broker that is down or
refuses costs a count and a log line, never the server."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from controlcenter.geojson import network_map
from controlcenter.ngsild.entities import EntityBook
from controlcenter.ngsild.models import CONTEXT
from controlcenter.ngsild.push import UPSERT_PATH, Pusher, check_broker_url
from sim.errors import CcsimError
from sim.messages import AirReading
from sim.network import read_network
from sim.scenario import load_scenario
from tests.controlcenter.ngsild_broker import broker
from tests.controlcenter.ngsild_schemas import normalized_errors


@pytest.fixture(scope="module")
def book() -> EntityBook:
    scenario = load_scenario("district")
    network = read_network(scenario.net_file)
    return EntityBook(scenario, network, network_map(scenario, network, []), epoch_s=1.767e9)


def reading(index: float) -> AirReading:
    return AirReading("C3", 80.0, 20.0, 430.0, 75.0, 19.0, index, "moderate")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_pushes_everything_once_in_batches_then_only_what_changed(book: EntityBook) -> None:
    book.on_message(60.0, reading(55.0))
    total = len(book.entities())
    with broker() as peer:
        pusher = Pusher(peer.url, book, batch_size=100)
        assert asyncio.run(pusher.push_once()) == total
        assert len(peer.received) == -(-total // 100)  # batches of at most 100
        assert all(r.path == UPSERT_PATH for r in peer.received)
        assert all(r.content_type == "application/ld+json" for r in peer.received)
        sent = peer.entities()
        assert len(sent) == total
        for entity in sent.values():
            assert entity["@context"] == CONTEXT
            assert normalized_errors(entity) == [], entity["id"]
        assert asyncio.run(pusher.push_once()) == 0  # nothing changed, nothing sent
        peer.received.clear()
        book.on_message(120.0, reading(61.0))
        assert asyncio.run(pusher.push_once()) == 1
        [request] = peer.received
        [entity] = request.body
        assert entity["type"] == "AirQualityObserved" and entity["airQualityIndex"]["value"] == 61
        assert pusher.stats.failures == 0 and pusher.stats.entities_sent == total + 1


def test_a_broker_that_is_down_is_counted_and_caught_up_later(
    book: EntityBook, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()  # nobody listens there
    pusher = Pusher(f"http://127.0.0.1:{port}", book, timeout_s=2.0)
    caplog.set_level(logging.WARNING, logger="ccsim.ngsild")
    for _ in range(3):
        assert asyncio.run(pusher.push_once()) == 0
    assert pusher.stats.failures == 3 and "Connection refused" in pusher.stats.last_error
    assert len(caplog.records) == 1  # said once, not at every period
    assert len(pusher.due()) == len(book.entities())  # all still due
    with broker() as peer:
        pusher.url = peer.url
        assert asyncio.run(pusher.push_once()) == len(book.entities())
        assert "again" in caplog.records[-1].getMessage()


def test_a_failing_broker_is_retried_and_a_refusal_is_not(book: EntityBook) -> None:
    with broker() as peer:
        pusher = Pusher(peer.url, book, batch_size=50)
        peer.status = 503
        assert asyncio.run(pusher.push_once()) == 0
        assert pusher.stats.failures == 1 and len(peer.received) == 1  # stopped at the first batch
        assert pusher.stats.last_error.startswith("HTTP 503")
        peer.status, peer.reply = 400, {"type": "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"}
        assert asyncio.run(pusher.push_once()) == 0
        assert pusher.stats.rejected == len(book.entities())
        assert pusher.due() == []  # not resent unchanged: it would be refused again


def test_a_partial_success_counts_the_refused_entities(book: EntityBook) -> None:
    with broker() as peer:
        pusher = Pusher(peer.url, book)
        refused = book.urn("AirQualityObserved", "C3")
        book.on_message(180.0, reading(70.0))
        peer.status = 207
        peer.reply = {"success": [], "errors": [{"entityId": refused, "error": {"type": "x"}}]}
        asyncio.run(pusher.push_once())
        assert pusher.stats.rejected == 1
        assert pusher.stats.entities_sent == len(book.entities()) - 1
        assert refused in pusher.stats.last_error


@pytest.mark.parametrize(
    "url", ["localhost:1026", "ftp://broker", "http://", "http://broker:port", "http://b/x?y=1"]
)
def test_a_bad_broker_url_is_named(url: str) -> None:
    with pytest.raises(CcsimError, match="--ngsi-ld"):
        check_broker_url(url)
    assert check_broker_url("http://127.0.0.1:1026/") == "http://127.0.0.1:1026"


def test_a_bug_while_pushing_is_logged_and_the_pushing_goes_on(
    book: EntityBook, caplog: pytest.LogCaptureFixture
) -> None:
    with broker() as peer:
        pusher = Pusher(peer.url, book, period_s=0.01)
        real = pusher.push_once
        calls: list[int] = []

        async def flaky() -> int:
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("boom")
            return await real()

        pusher.push_once = flaky  # type: ignore[method-assign]

        async def main() -> None:
            task = asyncio.create_task(pusher.run())
            for _ in range(500):  # 5 s at most
                if peer.received:
                    break
                await asyncio.sleep(0.01)
            task.cancel()

        asyncio.run(main())
        assert peer.received and pusher.stats.failures == 1
        assert pusher.stats.last_error == "RuntimeError: boom"
        assert "pushing to" in caplog.text and "boom" in caplog.text


@pytest.mark.parametrize("status", [307, 401, 404, 429])
def test_an_answer_about_the_request_not_the_entities_is_retried(book: EntityBook, status: int) -> None:
    """A redirect, bad credentials, a wrong URL or "too many requests" say nothing about the
    entities: nothing counts as sent or refused, and everything is due again."""
    with broker() as peer:
        pusher = Pusher(peer.url, book, batch_size=50)
        peer.status = status
        assert asyncio.run(pusher.push_once()) == 0
        assert pusher.stats.failures == 1 and pusher.stats.rejected == 0
        assert pusher.stats.entities_sent == 0 and len(pusher.due()) == len(book.entities())


def test_a_reading_that_is_not_a_number_leaves_the_attribute_out(book: EntityBook) -> None:
    book.on_message(240.0, reading(float("nan")))
    [air] = [e for e in book.entities() if e.type == "AirQualityObserved" and "C3" in e.id]
    assert "airQualityIndex" not in air.attrs and air.attrs["nox"].value == 80.0
