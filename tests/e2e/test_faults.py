"""Faults injected into a real ``ccsim serve``: its simulation process killed (a crash in SUMO,
the out-of-memory killer), and its store's disk full (a real tmpfs, filled)."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from pytest_postgresql.config import get_config
from pytest_postgresql.executors import NoopExecutor
from websockets.sync.client import connect

from tests.e2e.serving import (
    TOKEN,
    AlarmListener,
    Confirmed,
    Server,
    audit,
    losses,
    make_user,
    operate,
    start_server,
    wait_for,
)


def alarm_frame(listener: AlarmListener, rule: str, action: str = "raise") -> dict[str, Any] | None:
    """The first alarm frame of ``rule`` whose event is ``action``, if the feed showed one."""
    return next(
        (
            f
            for f in list(listener.seen)
            if f["alarm"]["rule"] == rule and f["event"]["action"] == action
        ),
        None,
    )


def run_events(server: Server, run_id: int) -> list[dict[str, Any]]:
    """Every message of run ``run_id`` the store has, in order (paged by ``after``)."""
    items: list[dict[str, Any]] = []
    with server.client() as c:
        while True:
            page = c.get("/api/events", params={"run": run_id, "after": items[-1]["seq"] if items else 0,
                                                "limit": 10_000}).json()["items"]  # fmt: skip
            if not page:
                return items
            items += page


def feed_snapshot(server: Server) -> dict[str, Any]:
    """The state a client connecting now is shown (its first snapshot frame)."""
    with connect(server.ws_url, additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
        while True:
            frame = json.loads(ws.recv(timeout=10))
            if frame["type"] == "snapshot":
                state: dict[str, Any] = frame["state"]
                return state


# --- the simulation process crashes ------------------------------------------------------------------


def test_a_crashed_simulation_raises_a_critical_alarm_and_a_new_run_can_start(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--speed", "20")
    try:
        health = server.wait_running()
        crashed = health["run"]["id"]
        listener = AlarmListener(server)
        listener.start()
        assert listener.listening.wait(10)
        wait_for(lambda: len(run_events(server, crashed)) > 50, 30, "some history of the run")
        with server.client() as c:
            shown_before = c.get("/api/state").json()["state"]
        crashed_pid = health["run"]["pid"]
        os.kill(crashed_pid, signal.SIGKILL)

        frame = wait_for(lambda: alarm_frame(listener, "simulation-failed"), 20, "the critical alarm")
        alarm = frame["alarm"]
        assert (alarm["severity"], alarm["state"], alarm["run"]) == (
            "critical", "active-unacknowledged", crashed,
        )  # fmt: skip
        assert "the simulation process exited (code -9)" in alarm["description"]
        with server.client() as c:
            stored = c.get(f"/api/alarms/{alarm['id']}").json()
            assert [h["action"] for h in stored["history"]] == ["raise"]
            assert stored["severity"] == "critical"
            # The server keeps serving: the health, the last state, the history - REST and feed.
            health = c.get("/api/health").json()
            assert (health["run"]["status"], health["run"]["running"]) == ("failed", False)
            state = c.get("/api/state").json()
            assert state["state"]["run"]["status"] == "failed"
            assert state["state"].keys() >= shown_before.keys()  # every section, as last shown
            assert state["t"] >= shown_before["run"]["t"]
            assert alarm["id"] in [a["id"] for a in state["alarms"]]
            history = run_events(server, crashed)
            assert [e["seq"] for e in history] == list(range(1, len(history) + 1))
            assert history[-1]["t"] <= state["t"]
            snapshot = feed_snapshot(server)
            assert snapshot["run"]["status"] == "failed" and snapshot.keys() == state["state"].keys()
            refused = c.post("/api/signals/C/override", json={"action": "flash"})
            assert refused.status_code == 409 and refused.json()["detail"] == "the run is over"

            # A new run: a viewer may not start one; an operator may, once.
            viewer = make_user(server, "vera", "viewer")
            with server.client(viewer) as v:
                assert v.post("/api/runs").status_code == 403
            started = c.post("/api/runs")
            assert started.status_code == 200, started.text
            new = started.json()["run"]
            assert new != crashed and started.json()["detail"] == f"run {new} started"
            health = server.wait_running()
            assert health["run"]["id"] == new and health["run"]["pid"] != crashed_pid
            again = c.post("/api/runs")
            assert again.status_code == 409 and "in progress" in again.json()["detail"]
            wait_for(lambda: run_events(server, new), 30, "the new run's messages")
            accepted = c.post("/api/signals/C/override", json={"action": "flash"})
            assert accepted.status_code in (200, 202), accepted.text
            runs = c.get("/api/runs").json()
            assert runs["current"] == new
            assert [(r["id"], r["status"]) for r in runs["items"][:2]] == [
                (new, "running"), (crashed, "failed"),
            ]  # fmt: skip
            # The crashed run stays: its history, and its alarm - which an operator can now clear.
            assert run_events(server, crashed) == history
            cleared = c.post(f"/api/alarms/{alarm['id']}/clear", json={"note": "restarted"})
            assert cleared.status_code == 200, cleared.text
        # newest first: the second start, the operator's, the viewer's
        starts = [e["result"] for e in audit(server, action="run.start")]
        assert starts == ["refused", "accepted", "refused"]
    finally:
        assert server.stop() == 0, server.lines[-20:]


# --- the store's disk is full ------------------------------------------------------------------------


@contextmanager
def tmpfs(mount: Path, size: str, *options: str) -> Iterator[Path]:
    """A real tmpfs of ``size`` (``16m``) mounted on ``mount`` (as root), unmounted afterwards."""
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join((f"size={size}", *options)),
                           "tmpfs", str(mount)], capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.fail(f"this test mounts a tmpfs and needs root: {done.stderr.strip()}", pytrace=False)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 16 MiB tmpfs of its own (as root), unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    with tmpfs(mount, "16m") as disk:
        yield disk


def fill(disk: Path, name: str = "filler") -> Path:
    """Write a file until the disk has no space left; returns it."""
    filler = disk / name
    chunk = b"\0" * 65536
    with filler.open("wb", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return filler


def fill_the_disk_and_free_it(
    tmp_path: Path,
    disk: Path,
    start: Callable[[Path], Server],
    full: str,
    while_full: Callable[[Server], object] | None = None,
) -> None:
    """The store's disk fills up under a live run and is freed again; then a server started
    again on the store must have everything the first one confirmed.

    ``disk`` is the filesystem the store writes to, ``start(folder)`` starts ``ccsim serve`` (its
    run's files in ``folder``) on the store, and ``full`` is what the ``store-failed`` alarm's
    description says of the cause (the engine's words for a full disk). ``while_full(server)``
    checks what is the engine's own, just before the disk is freed (files it fills on ``disk``
    are removed with the first).
    """
    server = start(tmp_path / "first")
    try:
        health = server.wait_running()
        run_id = health["run"]["id"]
        listener = AlarmListener(server)
        listener.start()
        assert listener.listening.wait(10)
        confirmed = operate(server, listener, Confirmed(), rounds=6)
        assert confirmed.acknowledged, "the overrides' alarms should have been acknowledged"

        filler = fill(disk)
        raised = wait_for(lambda: alarm_frame(listener, "store-failed"), 60, "the store-failed alarm")
        assert (raised["alarm"]["severity"], raised["alarm"]["state"]) == (
            "critical", "active-unacknowledged",
        )  # fmt: skip
        description = raised["alarm"]["description"]
        assert full in description and "\n" not in description, raised  # one line in the list
        with server.client() as c:
            state = c.get("/api/state").json()  # the control room's list of open alarms
            assert raised["alarm"]["id"] in [a["id"] for a in state["alarms"]]
            health = c.get("/api/health").json()
            assert health["status"] == "degraded" and health["store"]["failing"]
            assert full in health["store"]["error"], health
            assert health["run"]["status"] == "running"  # the server and the run go on
            # Nothing is confirmed that the store did not take: answered 503, no audit id.
            refused = c.post("/api/signals/C/override", json={"action": "flash"})
            assert refused.status_code == 503 and "command" not in refused.json(), refused.text
            assert full in refused.json()["detail"], refused.text  # and says why
            ack = c.post(f"/api/alarms/{raised['alarm']['id']}/acknowledge", json={"note": "seen"})
            assert ack.status_code == 503, ack.text
            assert c.get("/api/events", params={"limit": 5}).json()["items"]  # reads still work
            # A client that reconnects now, having seen the events before it, is shown it too.
            headers = {"Authorization": f"Bearer {TOKEN}"}
            with connect(f"{server.ws_url}?since={raised['seq'] - 1}", additional_headers=headers) as ws:
                frames = [json.loads(ws.recv(timeout=10)) for _ in range(2)]  # hello, then the missed
            assert (frames[1]["type"], frames[1].get("seq"), frames[1].get("event")) == (
                "alarm", raised["seq"], raised["event"],
            )  # fmt: skip
            t_full = c.get("/api/state").json()["t"]
            wait_for(lambda: c.get("/api/state").json()["t"] > t_full + 20, 30, "the run to go on")

            if while_full is not None:
                while_full(server)
            for written in disk.glob(f"{filler.name}*"):
                written.unlink()
            wait_for(lambda: alarm_frame(listener, "store-failed", "return-to-normal"), 30,
                     "the store-failed alarm to return to normal")  # fmt: skip
            health = wait_for(lambda: (h := c.get("/api/health").json())["store"]["waiting"] < 50 and h,
                              30, "the records that waited to be written")  # fmt: skip
            assert not health["store"]["failing"] and health["store"]["lost"] == 0
            ack = c.post(f"/api/alarms/{raised['alarm']['id']}/acknowledge", json={"note": "freed"})
            assert ack.status_code == 200 and ack.json()["alarm"]["state"] == "cleared", ack.text
            confirmed.answers.append(ack.json())
            confirmed.acknowledged.add(raised["alarm"]["id"])
        operate(server, listener, confirmed, rounds=4)
    finally:
        assert server.stop() == 0, server.lines[-20:]
    listener.join(10)
    shown = list(listener.seen)

    again = start(tmp_path / "second")
    try:
        again.wait_running()
        assert losses(again, shown, confirmed).all == []
        history = run_events(again, run_id)  # the messages that waited in memory too
        assert [e["seq"] for e in history] == list(range(1, len(history) + 1))
        assert history[-1]["t"] > t_full + 20
    finally:
        assert again.stop() == 0


def test_a_full_disk_raises_an_alarm_and_loses_nothing_confirmed(
    tmp_path: Path, small_disk: Path
) -> None:
    db = small_disk / "control.db"
    fill_the_disk_and_free_it(
        tmp_path, small_disk, lambda folder: start_server(folder, "--speed", "20", db=db),
        full="database or disk is full",
    )  # fmt: skip


def superuser_sql(
    port: int, *statements: str, database: str = "postgres"
) -> subprocess.CompletedProcess[str]:
    """Run ``statements`` (each on its own) in ``database`` as the server's superuser: the local
    ``postgres`` account, over the Unix socket (as ``make postgres`` does)."""
    command = ["runuser", "-u", "postgres", "--", "psql", "-p", str(port), "-d", database,
               "-v", "ON_ERROR_STOP=1", "-tAq", *(a for s in statements for a in ("-c", s))]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True)


@pytest.fixture
def postgres_on_small_disk(
    request: pytest.FixtureRequest, pg_server: NoopExecutor
) -> Iterator[tuple[Path, str]]:
    """A fresh PostgreSQL database, catalog and tables, in a tablespace of its own on a real
    32 MiB tmpfs: (the tmpfs, the database's URL). Dropped and unmounted afterwards.

    The tmpfs is mounted outside pytest's folders, which only root may enter: the server's
    ``postgres`` account must reach it. WAL stays on the server's own disk, as it does when a
    database's tablespace is a volume of its own."""
    config = get_config(request)
    name = f"ccsim_full_{os.getpid()}"
    mount = Path(tempfile.mkdtemp(prefix="ccsim-pgdisk-"))
    mount.chmod(0o755)
    try:
        with tmpfs(mount, "32m", "uid=postgres", "gid=postgres", "mode=0700"):
            made = superuser_sql(int(config.port), f"CREATE TABLESPACE {name} LOCATION '{mount}'")
            try:
                if made.returncode != 0:
                    pytest.skip(
                        "this test needs a tablespace on a tmpfs of its own, made as the local "
                        f"server's superuser (runuser -u postgres -- psql -p {config.port}): "
                        f"{made.stderr.strip()}"
                    )
                created = superuser_sql(
                    int(config.port), f"CREATE DATABASE {name} OWNER {config.user} TABLESPACE {name}"
                )
                assert created.returncode == 0, created.stderr
                url = f"postgresql://{config.user}:{config.password}@{config.host}:{config.port}/{name}"
                yield mount, url
            finally:
                dropped = superuser_sql(
                    int(config.port),
                    f"DROP DATABASE IF EXISTS {name} WITH (FORCE)",
                    f"DROP TABLESPACE IF EXISTS {name}",
                )
                assert dropped.returncode == 0, dropped.stderr
    finally:
        mount.rmdir()


def sessions_refused(disk: Path, url: str) -> Callable[[Server], None]:
    """PostgreSQL's own trouble with a full disk: a session cannot open once the database's
    relation-cache file is gone - the server drops it whenever the catalog changes (a VACUUM of
    ``pg_class``, as autovacuum runs) and a new session writes it again, or fails (``FATAL: could
    not write init file``). Then every session of the server's is cut (as a restart of the
    database server would): its reads answer 503, naming the cause, and its writer must
    connect again once the disk is freed."""
    parts = urlsplit(url)
    port, database = parts.port or 5432, parts.path.lstrip("/")

    def check(server: Server) -> None:
        vacuum = superuser_sql(port, "VACUUM pg_class", database=database)
        # (a session that cannot open: autovacuum dropped the file already, as wanted)
        assert vacuum.returncode == 0 or "could not write init file" in vacuum.stderr, vacuum.stderr
        fill(disk, "filler-after-vacuum")  # what the vacuum freed
        sessions = f"SELECT pid FROM pg_stat_activity WHERE datname = '{database}'"
        cut = superuser_sql(port, f"SELECT pg_terminate_backend(pid) FROM ({sessions}) AS s")
        assert cut.returncode == 0, cut.stderr
        with server.client() as c:
            read = c.get("/api/events", params={"limit": 5})
            assert read.status_code == 503, read.text
            assert read.json()["detail"] == (
                "the store did not answer: connection failed: connection to server at "
                f'"{parts.hostname}", port {port} failed: FATAL: could not write init file'
            )  # fmt: skip
            refused = c.post("/api/signals/C/override", json={"action": "flash"})
            assert refused.status_code == 503 and "command" not in refused.json(), refused.text
            assert c.get("/api/health").json()["store"]["failing"]

    return check


def test_a_full_postgresql_disk_raises_an_alarm_and_loses_nothing_confirmed(
    tmp_path: Path, postgres_on_small_disk: tuple[Path, str]
) -> None:
    disk, url = postgres_on_small_disk
    fill_the_disk_and_free_it(
        tmp_path, disk, lambda folder: start_server(folder, "--speed", "20", db_url=url),
        full="No space left on device", while_full=sessions_refused(disk, url),
    )  # fmt: skip
