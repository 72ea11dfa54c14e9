"""Shared fixtures: small real SUMO inputs built with SUMO's own tools, and a fresh PostgreSQL
database per test on the machine's server (``make postgres`` starts it; ``make test``
runs that first)."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from pytest_postgresql import factories
from pytest_postgresql.config import get_config
from pytest_postgresql.executors import NoopExecutor

from sim.sumo import sumo_binary, sumo_home

REPO = Path(__file__).resolve().parent.parent


def make_net(path: Path, *options: str, junction: str = "traffic_light") -> Path:
    """A netgenerate grid with traffic lights; ``options`` change its signals and layout."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [str(sumo_binary("netgenerate")), "--grid", "--grid.length", "200",
         "--default-junction-type", junction, "--tls.default-type", "static",
         *options, "-o", str(path)],
        check=True, capture_output=True,
    )  # fmt: skip
    return path


def add_red_amber(net: Path, seconds: float = 2.0) -> Path:
    """Rewrite every signal program of ``net`` the German way: before each green, the links
    about to turn green show red-amber (``u``) for ``seconds``, taken from the red before it."""
    tree = ET.parse(net)
    for logic in tree.getroot().iter("tlLogic"):
        phases = list(logic.iter("phase"))
        for phase in phases:
            logic.remove(phase)
        for k, phase in enumerate(phases):
            before = phases[k - 1]
            state, previous = phase.get("state", ""), before.get("state", "")
            starting = [i for i, c in enumerate(state) if c in "Gg" and previous[i] in "rs"]
            if starting and "y" in previous:
                amber = "".join("u" if i in starting else c for i, c in enumerate(previous))
                amber = amber.replace("y", "r")
                logic.append(ET.Element("phase", duration=f"{seconds:g}", state=amber))
            logic.append(phase)
    tree.write(net, encoding="utf-8", xml_declaration=True)
    return net


def make_grid_scenario(folder: Path, *, end_s: int, period_s: float, seed: int = 7) -> Path:
    """A third-party-style scenario: a netgenerate grid with static lights and randomTrips demand,
    wrapped in a plain .sumocfg (no scenario.toml). Returns the .sumocfg path."""
    folder.mkdir(parents=True, exist_ok=True)
    net = folder / "grid.net.xml"
    subprocess.run(
        [str(sumo_binary("netgenerate")), "--grid", "--grid.number", "3", "--grid.length", "200",
         "--default-junction-type", "traffic_light", "--tls.default-type", "static",
         "-o", str(net)],
        check=True, capture_output=True,
    )  # fmt: skip
    routes = folder / "grid.rou.xml"
    subprocess.run(
        [sys.executable, str(sumo_home() / "tools" / "randomTrips.py"), "-n", str(net),
         "-e", str(end_s), "-p", str(period_s), "--seed", str(seed), "-o", str(routes),
         "--validate"],
        check=True, capture_output=True, cwd=folder,
    )  # fmt: skip
    cfg = folder / "grid.sumocfg"
    cfg.write_text(
        "<configuration><input><net-file value='grid.net.xml'/>"
        "<route-files value='grid.rou.xml'/></input>"
        f"<time><begin value='0'/><end value='{end_s}'/></time></configuration>\n"
    )
    return cfg


@pytest.fixture(scope="session")
def grid_cfg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A light grid scenario (10 minutes)."""
    return make_grid_scenario(tmp_path_factory.mktemp("grid"), end_s=600, period_s=2.0)


@pytest.fixture(scope="session")
def jammed_grid_cfg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An overloaded grid: at the end, many vehicles are still driving or never got in."""
    return make_grid_scenario(tmp_path_factory.mktemp("jam"), end_s=400, period_s=0.4)


@pytest.fixture(scope="session")
def alphabet_nets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Nets whose programs use more of SUMO's signal alphabet: right-turn-on-red (``s``) with
    protected-then-permissive left turns, and red-amber (``u``) before every green."""
    folder = tmp_path_factory.mktemp("alphabet")
    ror = make_net(
        folder / "ror.net.xml", "--grid.number", "3", "--default.lanenumber", "2",
        "--tls.left-green.time", "6", junction="traffic_light_right_on_red",
    )  # fmt: skip
    amber = add_red_amber(make_net(folder / "amber.net.xml", "--grid.number", "3"))
    return {"ror": ror, "amber": amber}


# The server the store tests use: pytest-postgresql's options (``postgresql_host``... in
# pyproject.toml, or --postgresql-host... on the command line). Each pytest process has its own
# template database, so that two test runs on one server do not drop each other's.
_pg_server = factories.postgresql_noproc(dbname=f"ccsim_test_{os.getpid()}")


@pytest.fixture(scope="session")
def pg_server(request: pytest.FixtureRequest) -> Iterator[NoopExecutor]:
    """The PostgreSQL server, reachable: an unreachable one fails the tests, it never skips them."""
    config = get_config(request)
    try:  # at once, rather than after pytest-postgresql's minute of retries
        psycopg.connect(
            host=config.host, port=config.port, user=config.user, password=config.password,
            dbname=config.maintenance_dbname, connect_timeout=10,
        ).close()  # fmt: skip
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is unreachable ({exc}); start it and create the test role with "
            "`make postgres` (make test does), or point --postgresql-host/-port/-user/-password "
            "at another server",
            pytrace=False,
        )
    server: NoopExecutor = request.getfixturevalue("_pg_server")
    yield server


pg_database = factories.postgresql("pg_server")


@pytest.fixture
def postgres_url(pg_database: psycopg.Connection[object]) -> str:
    """The URL of a fresh, empty PostgreSQL database (dropped after the test)."""
    info = pg_database.info
    return f"postgresql://{info.user}:{info.password}@{info.host}:{info.port}/{info.dbname}"
