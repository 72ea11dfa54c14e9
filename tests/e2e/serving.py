"""Running ``ccsim serve`` as a user does - a real process on a loopback port - for the tests."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

REPO = Path(__file__).resolve().parents[2]
TOKEN = "e2e-admin-token-0123456789"
T = TypeVar("T")


def wait_for(check: Callable[[], T | None], timeout_s: float, what: str, every_s: float = 0.05) -> T:
    """Poll ``check`` until it returns something truthy (not a sleep-as-synchronisation: it
    returns as soon as the condition holds, and fails naming what never happened)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(every_s)


@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str
    db: Path
    token: str = TOKEN
    lines: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.url.rstrip("/").rsplit(":", 1)[1])

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "ws"

    def client(self, token: str | None = TOKEN, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30.0, **kwargs)

    def health(self) -> dict[str, Any]:
        with self.client() as c:
            response = c.get("/api/health")
            response.raise_for_status()
            data: dict[str, Any] = response.json()
            return data

    def wait_running(self, timeout_s: float = 60.0) -> dict[str, Any]:
        return wait_for(
            lambda: (h := self.health())["run"]["status"] == "running" and h,
            timeout_s,
            "the run to start",
        )

    def stop(self) -> int:
        """Interrupt it as Ctrl-C would; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode


def start_server(
    tmp: Path,
    *args: str,
    scenario: str = "single",
    db: Path | None = None,
    db_url: str | None = None,
    timeout_s: float = 60.0,
    admin_token: str | None = TOKEN,
) -> Server:
    """Start ``ccsim serve SCENARIO --port 0`` and wait until it says where it listens
    (``admin_token`` None: without ``CCSIM_ADMIN_TOKEN``). The store is the SQLite file ``db``
    (default ``tmp/control.db``), or any ``--db`` URL given as ``db_url``."""
    db = db or tmp / "control.db"
    command = ["serve", scenario, "--port", "0", "--db", db_url or f"sqlite:///{db}",
               "--out", str(tmp / "run"), *args]  # fmt: skip
    return _start(command, db, timeout_s, admin_token)


def start_replay(
    tmp: Path, run_dir: Path, *args: str, db: Path | None = None, timeout_s: float = 60.0
) -> Server:
    """Start ``ccsim replay RUN_DIR --port 0`` (store ``db``, default ``tmp/replay.db``) and wait
    until it says where it listens."""
    db = db or tmp / "replay.db"
    command = ["replay", str(run_dir), "--port", "0", "--db", f"sqlite:///{db}", *args]
    return _start(command, db, timeout_s, TOKEN)


def _start(command: list[str], db: Path, timeout_s: float, admin_token: str | None) -> Server:
    env = {k: v for k, v in os.environ.items() if k != "CCSIM_ADMIN_TOKEN"}
    if admin_token is not None:
        env["CCSIM_ADMIN_TOKEN"] = admin_token
    process = subprocess.Popen(
        [sys.executable, "-m", "controlcenter.cli", *command],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, env=env,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    seen: list[str] = []

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            seen.append(line.rstrip())
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            process.kill()
            raise AssertionError(f"ccsim {command[0]} did not start: {seen}") from None
        if line.startswith("control room: "):
            return Server(process, line.split(": ", 1)[1].strip(), db, lines=seen)


def make_user(server: Server, name: str, role: str) -> str:
    """Create a user through the API (as the admin); returns its token."""
    with server.client() as c:
        response = c.post("/api/users", json={"name": name, "role": role})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


def audit(server: Server, **filters: str) -> list[dict[str, Any]]:
    """The audit log, newest first, filtered as ``GET /api/audit`` filters it."""
    with server.client() as c:
        items: list[dict[str, Any]] = c.get("/api/audit", params=filters).json()["items"]
    return items


def ntcip_agent_port(server: Server, tls: str = "C", timeout_s: float = 30.0) -> int:
    """The UDP port ``serve --ntcip`` printed for signal ``tls``'s agent (``ntcip: C -> udp
    127.0.0.1:PORT (...)``), once it has printed it."""
    line = wait_for(
        lambda: next((x for x in server.lines if x.startswith(f"ntcip: {tls} -> udp ")), None),
        timeout_s, f"serve to print the agent of signal {tls}",
    )  # fmt: skip
    return int(line.split(" -> udp ")[1].split()[0].rsplit(":", 1)[1])


@contextlib.contextmanager
def served(tmp: Path, *args: str, **kwargs: Any) -> Iterator[Server]:
    server = start_server(tmp, *args, **kwargs)
    try:
        yield server
    finally:
        server.stop()
