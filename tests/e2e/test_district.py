"""The control room on the 34-signal district: closing a lane, and a feed client that stops
reading - dropped, while neither the other clients nor the simulation wait for it."""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.e2e.serving import TOKEN, Server, start_server, wait_for

HEADERS = {"Authorization": f"Bearer {TOKEN}"}
SEND_TIMEOUT_S = 5.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # x10 and 20 frames a second: the district's frames fill a stalled connection within seconds;
    # a send that makes no progress for SEND_TIMEOUT_S drops its client.
    args = ("--speed", "10", "--rate", "20", "--send-timeout", str(SEND_TIMEOUT_S))
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
    """A well-behaved client: reads every frame, noting each state frame."""

    def __init__(self, server: Server) -> None:
        super().__init__(daemon=True)
        self.url = server.ws_url
        self.frames: list[tuple[str, int, float]] = []
        """(type, the feed's sequence number, sent by the server: its wall clock) of each state
        frame, in the order received."""
        self.stop = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        with connect(self.url, additional_headers=HEADERS, compression=None) as ws:
            self.ready.set()
            while not self.stop.is_set():
                try:
                    frame = json.loads(ws.recv(timeout=30))
                except (TimeoutError, ConnectionClosed):
                    return
                if frame["type"] in ("delta", "snapshot"):
                    self.frames.append((frame["type"], frame["seq"], frame["sent"]))


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


def until_dropped(server: Server, timeout_s: float) -> tuple[float, float]:
    """Poll the health until the feed has dropped a client; returns (when the last poll that saw
    none dropped was sent, when the first that saw it dropped was answered): the drop happened
    in between (wall clock, s)."""
    deadline = time.monotonic() + timeout_s
    asked = time.time()
    while time.monotonic() < deadline:
        if server.health()["feed"]["dropped"] == 1:
            return asked, time.time()
        asked = time.time()
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for the stalled client to be dropped")


def test_a_client_that_stops_reading_is_dropped_without_delaying_the_others(server: Server) -> None:
    """No speed figure here (benchmarks/feed.py measures those): the behaviour. The stalled
    client is dropped; each reader gets every state frame the feed made meanwhile (one snapshot,
    then deltas numbered without a gap - a reader held up would have skipped some and got a
    snapshot instead); and frames kept going out to the readers while the stalled client's last
    send was blocked. That last point is what fails if the broadcast waited for each client in
    turn: the ticker would then make no frame at all until the blocked send gave up."""
    readers = [Reader(server) for _ in range(4)]
    for reader in readers:
        reader.start()
        assert reader.ready.wait(10)
    for reader in readers:
        wait_for(lambda r=reader: r.frames, 30, "a reader's first snapshot")  # type: ignore[misc]
    connected = time.time()
    stalled = stalled_client(server)
    wait_for(lambda: server.health()["feed"]["clients"] == 5, 30, "five feed clients")
    not_yet, dropped = until_dropped(server, 120)
    wait_for(lambda: server.health()["feed"]["clients"] == 4, 30, "the stalled client to be gone")
    after = time.time()
    for reader in readers:
        wait_for(lambda r=reader: r.frames[-1][2] > after, 30, "a frame after the drop")  # type: ignore[misc]
        reader.stop.set()
        reader.join(10)
    stalled.close()

    # The drop came at some moment D between the two polls; the send it gave up on began
    # SEND_TIMEOUT_S before D. So frames sent between (dropped - SEND_TIMEOUT_S) and not_yet were
    # sent while that send was blocked (the polls are far closer together than the timeout).
    blocked_from, blocked_to = dropped - SEND_TIMEOUT_S, not_yet
    assert blocked_from < blocked_to, ("the health polls were too far apart to tell", not_yet, dropped)
    for n, reader in enumerate(readers):
        kinds = [kind for kind, _seq, _sent in reader.frames]
        seqs = [seq for _kind, seq, _sent in reader.frames]
        assert kinds[0] == "snapshot" and set(kinds[1:]) == {"delta"}, (n, kinds.count("snapshot"))
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"reader {n} skipped frames"
        sent = [s for _kind, _seq, s in reader.frames]
        assert sent[0] < connected and sent[-1] > dropped  # all through the stalled client's time
        meanwhile = [s for s in sent if blocked_from < s < blocked_to]
        assert len(meanwhile) >= 2, (n, "no frames while the stalled client's send was blocked")
