"""Running ``ccsim serve`` as a user does - a real process on a loopback port - for the tests."""

from __future__ import annotations

import contextlib
import json
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
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

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


# --- what a server confirmed, and whether a server started again on its store has it ----------------


BUSY_ALARM_RULES = """
[[alarm]]
name = "departures"
kind = "vehicles.departed"
severity = "low"
category = "traffic"
subcategory = "trafficJam"
description = "vehicles entered: {ids}"

[[alarm]]
name = "manual"
kind = "signal.override"
when = { action = ["flash", "hold"], accepted = true }
key = "tls"
clear = "latched"
clear_kind = "signal.override"
clear_when = { action = "automatic", accepted = true }
severity = "medium"
category = "traffic"
subcategory = "hazardOnRoad"
description = "signal {tls}: {action} by {user}"
"""
"""Alarm rules (``--alarms``) that keep the alarm stream busy: an alarm for every vehicle that
enters, and one while signal C is under manual control (:func:`operate` raises and clears it)."""


class AlarmListener(threading.Thread):
    """Collects every alarm frame the feed shows, until the connection dies."""

    def __init__(self, server: Server) -> None:
        super().__init__(daemon=True)
        self.url = server.ws_url
        self.seen: list[dict[str, Any]] = []
        self.open: dict[int, str] = {}
        """Each alarm's state, as the last frame about it showed."""
        self.listening = threading.Event()

    def run(self) -> None:
        with connect(self.url, additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
            self.listening.set()
            try:
                while True:
                    frame = json.loads(ws.recv())
                    if frame["type"] == "alarm":
                        self.seen.append(frame)
                        self.open[frame["alarm"]["id"]] = frame["alarm"]["state"]
            except ConnectionClosed:
                return


def process_gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")  # a zombie has exited


def kill9(server: Server, simulation_pid: int | None = None) -> None:
    """SIGKILL the server (no shutdown of any kind), and wait for its orphaned simulation
    process (``simulation_pid``) to notice and stop."""
    server.process.kill()
    server.process.wait(10)
    if simulation_pid is not None:
        wait_for(lambda: process_gone(simulation_pid), 20, "the orphaned simulation to stop")


OVERRIDES = ("flash", "automatic", "hold", "automatic")
"""What :func:`operate` does to signal C, round after round (raising and clearing its alarm)."""


@dataclass
class Confirmed:
    """What a server answered its clients: every answer that carries an audit entry (accepted,
    pending or refused, with its id), and the alarms whose acknowledgement it accepted."""

    overrides: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    """(HTTP status, answer) of each signal override."""
    answers: list[dict[str, Any]] = field(default_factory=list)
    acknowledged: set[int] = field(default_factory=set)


def operate(
    server: Server,
    listener: AlarmListener,
    confirmed: Confirmed,
    *,
    rounds: int | None = None,
    stop: threading.Event | None = None,
) -> Confirmed:
    """An operator at work: each round overrides signal C (:data:`OVERRIDES`) and acknowledges
    the newest two unacknowledged alarms the feed has shown. Stops after ``rounds``, when
    ``stop`` is set, or when the server stops answering (a request cut off by a kill is not
    confirmed, so it is not counted)."""
    round_ = 0
    with server.client() as c:
        while (rounds is None or round_ < rounds) and not (stop is not None and stop.is_set()):
            action = OVERRIDES[round_ % len(OVERRIDES)]
            body = {"action": action, "argument": "0" if action == "hold" else ""}
            try:
                response = c.post("/api/signals/C/override", json=body)
                if "command" in response.json():
                    confirmed.overrides.append((response.status_code, response.json()))
                    confirmed.answers.append(response.json())
                waiting = [a for a, s in list(listener.open.items()) if s.endswith("unacknowledged")]
                for alarm_id in waiting[-2:]:
                    ack = c.post(f"/api/alarms/{alarm_id}/acknowledge", json={"note": f"round {round_}"})
                    if "command" in ack.json():
                        confirmed.answers.append(ack.json())
                    if ack.status_code == 200:
                        confirmed.acknowledged.add(alarm_id)
            except (httpx.HTTPError, json.JSONDecodeError):
                break  # the server is gone
            round_ += 1
    return confirmed


@dataclass
class Losses:
    """What a server started again on the store lacks of what the killed one showed or confirmed."""

    alarm_events: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    acknowledgements: list[str] = field(default_factory=list)

    @property
    def all(self) -> list[str]:
        return [*self.alarm_events, *self.commands, *self.acknowledgements]


def stored_alarm_events(
    server: Server, up_to: int, timeout_s: float = 10.0
) -> dict[int, dict[str, Any]]:
    """The alarm events ``server``'s store has, by sequence number, up to ``up_to`` at least (read
    from its feed with ``since=0``: the store's events in order, then live ones)."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    stored: dict[int, dict[str, Any]] = {}
    with connect(f"{server.ws_url}?since=0", additional_headers=headers) as ws:
        while not stored or max(stored) < up_to:
            try:
                frame = json.loads(ws.recv(timeout=timeout_s))
            except TimeoutError:
                break  # none beyond what is there: the missing ones are missing
            if frame["type"] == "alarm":
                stored[frame["seq"]] = frame["event"]
    return stored


def audit_entries(server: Server, ids: set[int]) -> dict[int, dict[str, Any]]:
    """The audit entries ``ids`` that the store has (paging through the whole log)."""
    found: dict[int, dict[str, Any]] = {}
    with server.client() as c:
        offset = 0
        while len(found) < len(ids):
            items = c.get("/api/audit", params={"limit": 1000, "offset": offset}).json()["items"]
            if not items:
                break
            found.update({e["id"]: e for e in items if e["id"] in ids})
            offset += len(items)
    return found


def losses(server: Server, shown: list[dict[str, Any]], confirmed: Confirmed) -> Losses:
    """Check ``server`` (started again on the store) against what the killed server showed on its
    feed (``shown``: alarm frames) and ``confirmed``: every alarm event with the same content
    under the same sequence number, every answered command's audit entry with the result it was
    answered with (a pending one may have been decided since), every acknowledgement in its
    alarm's history."""
    found = Losses()
    stored = stored_alarm_events(server, max((f["seq"] for f in shown), default=0))
    for frame in shown:
        if stored.get(frame["seq"]) != frame["event"]:
            found.alarm_events.append(f"alarm event {frame['seq']}: shown {frame['event']}, "
                                      f"stored {stored.get(frame['seq'])}")  # fmt: skip
    entries = audit_entries(server, {a["command"] for a in confirmed.answers})
    for answer in confirmed.answers:
        entry = entries.get(answer["command"])
        if entry is None:
            found.commands.append(f"command {answer['command']} ({answer['result']}): not in the audit")
        elif answer["result"] != "pending" and (entry["result"], entry["detail"]) != (
            answer["result"],
            answer["detail"],
        ):
            found.commands.append(f"command {answer['command']}: answered {answer}, audit {entry}")
    with server.client() as c:
        for alarm_id in sorted(confirmed.acknowledged):
            history = c.get(f"/api/alarms/{alarm_id}").json().get("history", [])
            if "acknowledge" not in [h["action"] for h in history]:
                found.acknowledgements.append(
                    f"alarm {alarm_id}: its acknowledgement is not in its history"
                )
    return found
