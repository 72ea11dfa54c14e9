"""``ccsim replay``: the control room of a finished run, from its events.parquet, is the one shown
live - through the same reducers - and can be paused, sought and sped up, but not commanded."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from controlcenter.replay import load_run
from controlcenter.state import ControlState
from tests.e2e.browser import chromium, sign_in, tablet_page
from tests.e2e.serving import TOKEN, Server, audit, start_replay, start_server, wait_for

END_S = 300.0
RUN_KEYS = ("scenario", "variant", "controller", "seed", "begin_s", "end_s", "step_length_s",
            "sumo_version", "t")  # fmt: skip
"""The ``run`` section's entries a replay shows as the live run did; the others are the replay's
own (its status, speed, pause, store id, and the replay flag and end)."""
VARIANT = "detectors.advance_distance_m=40"
"""The live run's scenario variant: its advance detectors nearer the stop line than the
scenario's, on the map as in the readings."""


def state(server: Server) -> dict[str, Any]:
    with server.client() as c:
        response = c.get("/api/state")
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


Live = tuple[Path, dict[str, Any], dict[str, Any]]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A live run of ``single`` with a variant (actuated, 300 s, unpaced): its folder, the state
    it showed at its end and its map."""
    tmp = tmp_path_factory.mktemp("live")
    server = start_server(tmp, "--controller", "actuated", "--variant", VARIANT, "--speed", "max",
                          "--end", str(END_S))  # fmt: skip
    try:
        final = wait_for(
            lambda: (s := state(server))["state"].get("run", {}).get("status") == "finished" and s,
            120.0, "the live run to finish",
        )  # fmt: skip
        with server.client() as c:
            refused = c.post("/api/simulation/seek", json={"t": 100})
        assert refused.status_code == 409 and "replay" in refused.json()["detail"]
        with server.client() as c:
            network = c.get("/api/network")
        network.raise_for_status()
    finally:
        server.stop()
    assert (tmp / "run" / "events.parquet").is_file()
    yield tmp / "run", final["state"], network.json()


@pytest.fixture(scope="module")
def replay(live: Live, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    run_dir, _, _ = live
    server = start_replay(tmp_path_factory.mktemp("replay"), run_dir, "--speed", "max")
    try:
        yield server
    finally:
        server.stop()


def test_the_replay_ends_on_the_state_shown_live(live: Live, replay: Server) -> None:
    _, shown_live, _ = live
    replayed = wait_for(
        lambda: (s := state(replay))["state"].get("run", {}).get("t") == END_S and s["state"],
        60.0, "the replay to reach the end",
    )  # fmt: skip
    assert set(replayed) == set(shown_live)
    for section in shown_live:
        if section != "run":
            assert replayed[section] == shown_live[section], section
    assert {k: replayed["run"][k] for k in RUN_KEYS} == {k: shown_live["run"][k] for k in RUN_KEYS}
    assert replayed["run"]["replay"] is True and replayed["run"]["status"] == "finished"
    # what is shown came from the messages: detectors, modes, the phase SUMO showed, decisions
    assert len(replayed["detectors"]) == 6 and replayed["signals"]["C"]["mode"] == "automatic"
    assert replayed["decisions"]["C"] and "target" in replayed["signals"]["C"]


def test_a_seek_back_shows_the_state_as_of_then(live: Live, replay: Server) -> None:
    run_dir, _, _ = live
    with replay.client() as c:
        assert c.post("/api/simulation/pause").json()["result"] == "accepted"
        assert state(replay)["state"]["run"]["paused"] is True  # the replay's, not the run's
        sought = c.post("/api/simulation/seek", json={"t": 100})
        outside = c.post("/api/simulation/seek", json={"t": 5000})
    assert sought.status_code == 200 and sought.json()["t"] == 100, sought.text
    assert outside.status_code == 409 and "outside the run" in outside.json()["detail"]
    now = state(replay)
    # the same as reducing the run's messages up to t = 100 directly
    recorded = load_run(run_dir)
    direct = ControlState()
    direct.apply_rows(recorded.rows[: recorded.until(100.0)])
    direct.apply_kpis(recorded.interval_rows(-float("inf"), 100.0))
    expected = direct.snapshot()
    assert now["t"] == 100.0 and now["state"]["run"]["t"] == 100.0
    assert now["state"]["run"]["paused"] is True
    for section, entries in expected.items():
        if section != "run":
            assert now["state"][section] == entries, section
    assert set(now["state"]) - {"run"} == set(expected) - {"run"}
    assert now["state"]["kpis"]["departed"] < state_at_end(run_dir)["kpis"]["departed"]
    with replay.client() as c:
        events = c.get("/api/events", params={"kind": "signal.phase", "limit": 10_000}).json()
    assert events["items"] and max(e["t"] for e in events["items"]) <= 100.0


def test_the_replay_shows_the_map_of_the_scenario_with_the_runs_variant(
    live: Live, replay: Server
) -> None:
    _, shown_live, network_live = live
    assert shown_live["run"]["variant"] == VARIANT
    with replay.client() as c:
        network = c.get("/api/network")
    network.raise_for_status()
    assert network.json() == network_live
    advance = [f for f in network_live["features"] if f["properties"].get("detector") == "advance"]
    assert advance  # the detectors the variant moved are on it


def state_at_end(run_dir: Path) -> dict[str, Any]:
    recorded = load_run(run_dir)
    direct = ControlState()
    direct.apply_rows(recorded.rows)
    return direct.snapshot()


def test_commands_on_the_simulation_are_refused_and_audited(replay: Server) -> None:
    with replay.client() as c:
        override = c.post("/api/signals/C/override", json={"action": "flash"})
        lane = c.post("/api/lanes/W_C_0/close")
        controller = c.post("/api/simulation/controller", json={"controller": "maxpressure"})
    for response in (override, lane, controller):
        assert response.status_code == 409, response.text
        assert "replay of a finished run" in response.json()["detail"]
    refused = audit(replay, result="refused")
    assert {"signal.override", "lane.close", "simulation.controller"} <= {e["action"] for e in refused}


def test_the_control_room_says_it_is_a_replay_and_shows_the_decisions(replay: Server) -> None:
    with chromium() as browser, tablet_page(browser) as page:
        sign_in(page, replay, TOKEN)
        expect(page.get_by_test_id("replay-label")).to_be_visible()
        expect(page.get_by_test_id("replay-label")).to_contain_text("REPLAY")
        expect(page.get_by_test_id("sim-seek-box")).to_be_visible()
        expect(page.get_by_test_id("sim-new-run")).to_be_hidden()  # a replay starts no run
        page.get_by_test_id("sim-seek-t").fill("250")
        page.get_by_test_id("sim-seek-go").click()
        expect(page.get_by_test_id("sim-clock")).to_contain_text("04:10", timeout=10_000)
        page.locator("[data-testid=signal][data-id=C]").click()
        panel = page.get_by_test_id("intersection-panel")
        expect(panel).to_contain_text("Signal C")
        why = panel.get_by_test_id("decisions").locator("li")
        expect(why.first).to_contain_text(
            re.compile(r"(gap-out|max-out) \u2192 \d+ \(actuated\)"), timeout=10_000
        )
        # commands are off in a replay: the panel's overrides are disabled
        expect(panel.get_by_test_id("override-hold")).to_be_disabled()
