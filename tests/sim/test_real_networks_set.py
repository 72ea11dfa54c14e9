"""The real-network test set: every network runs in ccsim, every variant has its feature."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from sim.controllers import create_controller
from sim.engine import Simulation
from sim.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
REAL = sorted((SCENARIOS / "realnets").glob("*/scenario.sumocfg"))
VARIANTS = sorted((SCENARIOS / "tlsvariants").glob("*/scenario.sumocfg"))


def test_the_set_has_real_districts_and_every_variant() -> None:
    assert len(REAL) >= 3
    names = {cfg.parent.name for cfg in VARIANTS}
    assert names == {
        "right-on-red",
        "joined",
        "red-amber",
        "protected-left",
        "incoming",
        "t-junctions",
        "actuated",
    }


@pytest.mark.parametrize("cfg", REAL + VARIANTS, ids=lambda p: p.parent.name)
def test_network_runs_in_ccsim_with_every_signal_seen(cfg: Path, tmp_path: Path) -> None:
    """Two minutes with the net's own programs: traffic flows and every signal is measured."""
    simulation = Simulation(
        load_scenario(cfg), create_controller("fixed"), seed=1, workdir=tmp_path, end_s=120
    )
    result = simulation.run()
    assert result.summary["vehicles_departed"] > 20
    assert result.summary["mean_delay_s"] is not None
    scopes = {r["scope"] for r in result.timeseries if r["scope"].startswith("tls:")}
    assert len(scopes) == len(programs(cfg.parent))


# --- the variants' features, read from their nets ----------------------------------------------


def net_root(name: str) -> ET.Element:
    return ET.parse(SCENARIOS / "tlsvariants" / name / f"{name}.net.xml").getroot()


def programs(folder: Path) -> list[ET.Element]:
    return list(ET.parse(next(folder.glob("*.net.xml"))).getroot().iter("tlLogic"))


def states(root: ET.Element) -> list[str]:
    return [p.get("state", "") for p in root.iter("phase")]


def green_phases(logic: ET.Element) -> set[str]:
    """The distinct states of a program in which something gets green and nothing is changing."""
    phases = [p.get("state", "") for p in logic.iter("phase")]
    return {s for s in phases if any(c in "Gg" for c in s) and not any(c in "yu" for c in s)}


def signal_links(root: ET.Element) -> dict[str, dict[int, str]]:
    """tls id -> link index -> the incoming edge of that link."""
    links: dict[str, dict[int, str]] = {}
    for c in root.iter("connection"):
        if c.get("tl"):
            links.setdefault(c.get("tl", ""), {})[int(c.get("linkIndex", "-1"))] = c.get("from", "")
    return links


def test_right_on_red_shows_s_on_red() -> None:
    assert any("s" in s and "G" in s for s in states(net_root("right-on-red")))


def test_red_amber_shows_u_before_greens() -> None:
    root = net_root("red-amber")
    for logic in root.iter("tlLogic"):
        phases = [p.get("state", "") for p in logic.iter("phase")]
        for i, state in enumerate(phases):
            following = phases[(i + 1) % len(phases)]
            if "u" in state:
                assert all(following[k] in "Gg" for k, c in enumerate(state) if c == "u")
        assert any("u" in s for s in phases)


def test_joined_signal_runs_several_junctions() -> None:
    root = net_root("joined")
    edge_to = {e.get("id"): e.get("to") for e in root.iter("edge") if e.get("function") is None}
    junctions = {
        tls: {edge_to[edge] for edge in links.values()} for tls, links in signal_links(root).items()
    }
    assert max(len(j) for j in junctions.values()) >= 2


def test_protected_left_has_four_green_phases_and_turn_lanes() -> None:
    root = net_root("protected-left")
    for logic in root.iter("tlLogic"):
        assert len(green_phases(logic)) == 4
    assert any(
        int(e.get("numLanes", len(e.findall("lane")))) == 3
        for e in root.iter("edge")
        if e.get("function") is None
    )


@pytest.mark.parametrize(("name", "greens"), [("incoming", 4), ("t-junctions", 3)])
def test_one_approach_at_a_time(name: str, greens: int) -> None:
    root = net_root(name)
    links = signal_links(root)
    for logic in root.iter("tlLogic"):
        phases = green_phases(logic)
        assert len(phases) == greens
        for state in phases:
            approaches = {links[logic.get("id", "")][k] for k, c in enumerate(state) if c in "Gg"}
            assert len(approaches) == 1


def test_actuated_programs_are_actuated() -> None:
    logics = list(net_root("actuated").iter("tlLogic"))
    assert logics and all(logic.get("type") == "actuated" for logic in logics)
    assert all(
        p.get("minDur") and p.get("maxDur")
        for logic in logics
        for p in logic.iter("phase")
        if "G" in p.get("state", "") and "y" not in p.get("state", "")
    )
