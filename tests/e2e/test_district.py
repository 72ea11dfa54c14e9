"""The control room on the 34-signal district: closing a lane, and a feed client that stops
reading - dropped, while neither the other clients nor the simulation wait for it."""

from __future__ import annotations

import base64
import itertools
import json
import os
import socket
import statistics
import threading
import time
from collections.abc import Iterator

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.e2e.serving import TOKEN, Server, start_server, wait_for

HEADERS = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # x10 and 20 frames a second: the district's frames fill a stalled connection within seconds.
    args = ("--speed", "10", "--rate", "20", "--send-timeout", "1")
    running = start_server(tmp_path_factory.mktemp("district"), *args, scenario="district")
    try:
        running.wait_running()
        yield running
    finally:
        assert running.stop() == 0, running.lines


def test_closing_a_lane_reaches_the_simulation_the_state_and_the_alarms(server: Server) -> None:
    with server.client() as c:
        closed = c.post("/api/lanes/B1_C1_2/close")  # a middle lane of a 3-lane avenue
        assert closed.status_code == 200 and closed.json()["detail"] == "closed"
        assert c.get("/api/state").json()["state"]["lanes"]["B1_C1_2"]["closed"] is True
        unacknowledged = {"state": "active-unacknowledged"}
        alarm = wait_for(
            lambda: c.get("/api/alarms", params=unacknowledged).json()["items"], 10, "the lane alarm"
        )[0]
        assert alarm["subCategory"] == "roadClosed" and alarm["location"]["type"] == "LineString"
        t = c.get("/api/state").json()["t"]
        wait_for(lambda: c.get("/api/state").json()["t"] > t + 20, 10, "the run to go on")
        assert c.post("/api/lanes/B1_C1_2/open").json()["detail"] == "open"
        assert c.get("/api/state").json()["state"]["lanes"]["B1_C1_2"]["closed"] is False
        assert c.get("/api/health").json()["run"]["running"]


class Reader(threading.Thread):
    """A well-behaved client: reads every frame, noting when each state frame arrived."""

    def __init__(self, server: Server) -> None:
        super().__init__(daemon=True)
        self.url = server.ws_url
        self.arrivals: list[tuple[float, float, float | None]] = []
        """(received, sent by the server, simulation time) of each state frame."""
        self.stop = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        with connect(self.url, additional_headers=HEADERS, compression=None) as ws:
            self.ready.set()
            while not self.stop.is_set():
                try:
                    frame = json.loads(ws.recv(timeout=5))
                except (TimeoutError, ConnectionClosed):
                    return
                if frame["type"] in ("delta", "snapshot"):
                    self.arrivals.append((time.time(), frame["sent"], frame["t"]))


def stalled_client(server: Server) -> socket.socket:
    """Opens the websocket (handshake done by hand), then never reads: its small receive buffer
    fills at once and stays full."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: Bearer {TOKEN}\r\n\r\n".encode()
    )
    assert sock.recv(12) == b"HTTP/1.1 101"
    return sock


def test_a_client_that_stops_reading_is_dropped_without_delaying_the_others(server: Server) -> None:
    readers = [Reader(server) for _ in range(4)]
    for reader in readers:
        reader.start()
        assert reader.ready.wait(10)
    stalled = stalled_client(server)
    wait_for(lambda: server.health()["feed"]["clients"] == 5, 10, "five feed clients")
    began = time.time()
    wait_for(lambda: server.health()["feed"]["dropped"] == 1, 60, "the stalled client to be dropped")
    dropped_after = time.time() - began
    for reader in readers:
        reader.stop.set()
        reader.join(10)
    stalled.close()
    assert dropped_after < 30
    for reader in readers:
        frames = [a for a in reader.arrivals if a[0] >= began]
        gaps = [b[0] - a[0] for a, b in itertools.pairwise(frames)]
        latency = sorted(received - sent for received, sent, _t in frames)
        # 20 frames a second all along, never held up by the client that stalled
        assert len(frames) >= 0.8 * 20 * dropped_after, (len(frames), dropped_after)
        assert max(gaps) < 0.5, max(gaps)
        assert statistics.quantiles(latency, n=100)[98] < 0.1
        # and the simulation kept its pace (x10) meanwhile
        (_r0, _s0, t0), (_r1, _s1, t1) = frames[0], frames[-1]
        assert t0 is not None and t1 is not None
        assert (t1 - t0) / (frames[-1][0] - frames[0][0]) > 0.8 * 10
