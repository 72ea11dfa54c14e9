"""Reliability under kill -9: does a server killed at a random moment lose anything it confirmed?

For each store - an SQLite file, and a fresh PostgreSQL database - one ``ccsim serve single``
(``--speed 50``, an alarm for every vehicle that enters and one while signal C is under manual
control) is killed with SIGKILL ``--kills`` times, at a random moment (uniform in ``--window``
seconds after its run is running; the moments come from ``--seed``), and started again on the
same store each time. Throughout, two clients in this process override signal C round after
round and acknowledge the newest unacknowledged alarms the feed shows, while a feed client
records every alarm event shown. After each restart the new server is checked against what the killed
one showed and confirmed (``tests/e2e/serving.py``'s :func:`losses`, the check of
``tests/e2e/test_kill9.py``):

- a command is *confirmed* when the server answered it with an audit entry (accepted, pending or
  refused, with its id); lost if its entry is missing or says otherwise than the answer;
- an acknowledgement is confirmed when answered 200; lost if its alarm's history lacks it;
- an alarm event shown on the feed is lost if the store lacks it, or has another under its
  sequence number.

A request cut off by the kill got no answer: it was not confirmed, and is not counted.

    python benchmarks/reliability.py [--kills 10] [--stores sqlite,postgresql]
        [--postgresql postgresql://ccsim:ccsim@127.0.0.1:5432/ccsim] [--seed 16] [--no-write]

The PostgreSQL store is a database created for the run (``ccsim_reliability_<pid>``, dropped
after it) on the server of ``--postgresql`` (``make postgres`` starts one). The figures are
printed and written into benchmarks/RESULTS.md between the ``reliability-kill9`` markers.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import random
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402
from results_md import replace_section  # noqa: E402

from tests.e2e.serving import (  # noqa: E402
    BUSY_ALARM_RULES,
    AlarmListener,
    Confirmed,
    Server,
    kill9,
    losses,
    operate,
    start_server,
)

SECTION = "reliability-kill9"
OPERATORS = 2
"""Clients overriding signal C and acknowledging alarms at once."""


@dataclass
class Tally:
    store: str
    kills: int = 0
    commands: int = 0
    acknowledgements: int = 0
    alarm_events: int = 0
    lost: list[str] = field(default_factory=list)
    moments_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0


@contextlib.contextmanager
def fresh_postgresql(url: str) -> Iterator[str]:
    """A new, empty database on the server of ``url`` (dropped afterwards); yields its URL."""
    name = f"ccsim_reliability_{os.getpid()}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def start(tmp: Path, k: int, rules: Path, db_url: str) -> Server:
    args = ("--speed", "50", "--rate", "10", "--alarms", str(rules))
    return start_server(tmp / f"server{k}", *args, db=tmp / "control.db", db_url=db_url)


def run_store(name: str, db_url: str, tmp: Path, kills: int, window: tuple[float, float],
              rng: random.Random) -> Tally:  # fmt: skip
    tally = Tally(name)
    rules = tmp / "rules.toml"
    rules.write_text(BUSY_ALARM_RULES)
    began = time.monotonic()
    server = start(tmp, 0, rules, db_url)
    try:
        for k in range(1, kills + 1):
            health = server.wait_running()
            listener = AlarmListener(server)
            listener.start()
            if not listener.listening.wait(10):
                raise RuntimeError(f"{name}: the feed did not answer")
            stop = threading.Event()
            each = [Confirmed() for _ in range(OPERATORS)]
            operators = [
                threading.Thread(target=operate, args=(server, listener, c), kwargs={"stop": stop})
                for c in each
            ]
            for operator in operators:
                operator.start()
            moment = rng.uniform(*window)
            time.sleep(moment)  # the random moment of the kill: the clients are at work
            kill9(server, health["run"]["pid"])
            stop.set()
            for operator in operators:
                operator.join(30)
            confirmed = Confirmed(
                [o for c in each for o in c.overrides],
                [a for c in each for a in c.answers],
                {i for c in each for i in c.acknowledged},
            )
            listener.join(10)
            shown = list(listener.seen)
            server = start(tmp, k, rules, db_url)
            server.wait_running()
            lost = losses(server, shown, confirmed)
            tally.kills += 1
            tally.moments_s.append(moment)
            tally.commands += len(confirmed.overrides)
            tally.acknowledgements += len(confirmed.acknowledged)
            tally.alarm_events += len(shown)
            tally.lost.extend(f"kill {k}: {what}" for what in lost.all)
            print(f"{name} kill {k}/{kills} at {moment:.1f} s: {len(confirmed.overrides)} commands, "
                  f"{len(confirmed.acknowledged)} acknowledgements, {len(shown)} alarm events "
                  f"confirmed; lost {len(lost.all)}", flush=True)  # fmt: skip
    finally:
        server.stop()
    tally.wall_s = time.monotonic() - began
    return tally


def section(tallies: list[Tally], command: str, load: tuple[float, float]) -> str:
    lines = [
        "## Reliability: kill -9 of the server (issue 16)",
        "",
        f"Kill -9 of `ccsim serve single` at random moments of a live run, then a restart on the "
        f"same store ({dt.date.today().isoformat()}, {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}). `{command}`",
        "",
        "| store | kills | commands confirmed | acknowledgements confirmed | alarm events shown "
        "| lost | kill moments (s after running) | wall time |",
        "|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for t in tallies:
        moments = ", ".join(f"{m:.1f}" for m in t.moments_s)
        lines.append(
            f"| {t.store} | {t.kills} | {t.commands} | {t.acknowledgements} | {t.alarm_events} "
            f"| **{len(t.lost)}** | {moments} | {t.wall_s:.0f} s |"
        )
    lines += [
        "",
        "A command is confirmed when the server answered it with its audit entry (accepted, "
        "pending or refused); an acknowledgement when answered 200; an alarm event when the feed "
        "showed it. Lost: missing from the store after the restart, or stored otherwise than "
        "confirmed. Requests cut off by the kill got no answer and are not counted. Target: 0 lost.",
        "",
        f"Machine load while measuring: 1-minute load average {load[0]:.1f} at the start, "
        f"{load[1]:.1f} at the end, on {os.cpu_count()} cores shared with other work "
        "(the figures are counts, not timings: load changes how much happens before each kill, "
        "not whether it is kept).",
    ]
    for t in tallies:
        lines += [f"- {what}" for what in t.lost[:20]]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=10, help="kills per store (10)")
    parser.add_argument("--stores", default="sqlite,postgresql", help="sqlite,postgresql")
    parser.add_argument(
        "--postgresql", default="postgresql://ccsim:ccsim@127.0.0.1:5432/ccsim",
        help="a database on the PostgreSQL server to create the run's database from",
    )  # fmt: skip
    parser.add_argument("--window", default="1.5,6", help="kill between these s after running")
    parser.add_argument("--seed", type=int, default=16, help="seed of the kill moments")
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args()
    low, high = (float(x) for x in args.window.split(","))
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    unknown = set(stores) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"--stores: unknown {sorted(unknown)}; expected sqlite and/or postgresql")
    rng = random.Random(args.seed)
    load_start = os.getloadavg()[0]
    tallies = []
    with tempfile.TemporaryDirectory(prefix="ccsim-reliability-") as folder:
        tmp = Path(folder)
        for store in stores:
            (tmp / store).mkdir()
            if store == "sqlite":
                url = f"sqlite:///{tmp / store / 'control.db'}"
                tallies.append(run_store(store, url, tmp / store, args.kills, (low, high), rng))
            else:
                with fresh_postgresql(args.postgresql) as url:
                    tallies.append(run_store(store, url, tmp / store, args.kills, (low, high), rng))
    command = "python benchmarks/reliability.py " + " ".join(sys.argv[1:])
    text = section(tallies, command.strip(), (load_start, os.getloadavg()[0]))
    print(text)
    if not args.no_write:
        replace_section(SECTION, text)
    return 1 if any(t.lost for t in tallies) else 0


if __name__ == "__main__":
    sys.exit(main())
