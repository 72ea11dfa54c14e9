"""A tiny real HTTP peer standing in for an NGSI-LD broker: it records every request and answers
as told (no broker is installed on this machine; this is the receiving end, not a mock of the
code under test)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    content_type: str
    body: Any


@dataclass
class Broker:
    url: str
    received: list[Received] = field(default_factory=list)
    status: int = 204
    """What it answers next (201, 204, 207 with ``reply``, 400, 503...)."""
    reply: Any = None

    def entities(self) -> dict[str, dict[str, Any]]:
        """The latest of each entity it was sent, by id."""
        latest: dict[str, dict[str, Any]] = {}
        for request in self.received:
            for entity in request.body:
                latest[entity["id"]] = entity
        return latest


@contextmanager
def broker() -> Iterator[Broker]:
    state = Broker("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # http.server's naming
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            state.received.append(Received(self.path, self.headers.get("Content-Type", ""), body))
            text = b"" if state.reply is None else json.dumps(state.reply).encode()
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
