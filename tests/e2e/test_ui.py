"""The control room in real headless Chromium (Debian's, through Playwright) against a real
``ccsim serve`` process running the district in SUMO: what an operator sees and does.

The district server runs its ``degraded-radar`` variant (detectors that stick and chatter) with
the alarm rules of ``ui_alarms.toml``, which make detector faults critical, so that the
simulation raises a critical alarm early in the run (a sensor fault shows at the first 5-minute
check, t = 300 s: 15 s of wall time at x20). With ideal detectors no fault is ever reported.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.browser import chromium, screenshot, sign_in, tablet_page
from tests.e2e.serving import TOKEN, Server, audit, make_user, served, start_server, wait_for

RULES = Path(__file__).with_name("ui_alarms.toml")
SIGNALS_IN_THE_DISTRICT = 34


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as running:
        yield running


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(
        tmp_path_factory.mktemp("ui"), "--speed", "20", "--alarms", str(RULES),
        "--variant", "degraded-radar", scenario="district", timeout_s=120,
    )  # fmt: skip
    try:
        server.wait_running(120)
        yield server
    finally:
        assert server.stop() == 0, server.lines[-20:]


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with tablet_page(browser) as opened:
        yield opened


def alarm(server: Server, alarm_id: int) -> dict[str, Any]:
    with server.client() as c:
        found: dict[str, Any] = c.get(f"/api/alarms/{alarm_id}").json()
    return found


def sim_seconds(page: Page) -> int:
    """The simulation clock the page shows, s (-1 while it shows none: before the first frame)."""
    text = page.get_by_test_id("sim-clock").inner_text()
    if not re.fullmatch(r"\d+:\d\d:\d\d", text):
        return -1
    h, m, s = (int(x) for x in text.split(":"))
    return h * 3600 + m * 60 + s


# --- signing in and the live map ----------------------------------------------------------------


def test_a_wrong_token_is_refused_with_a_clear_message(district: Server, page: Page) -> None:
    page.goto(district.url)
    page.get_by_test_id("login-token").fill("not-the-token-at-all")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("login-error")).to_contain_text("not accepted")
    expect(page.get_by_test_id("connection-state")).not_to_have_attribute("data-state", "connected")
    assert page.locator("[data-testid=signal]").count() == 0


def test_signing_in_shows_the_district_live(district: Server, page: Page) -> None:
    sign_in(page, district, TOKEN)
    signals = page.locator("[data-testid=map] [data-testid=signal]")
    expect(signals).to_have_count(SIGNALS_IN_THE_DISTRICT)
    # Every signal takes its look from the feed: a letter for what it shows (not colour alone).
    wait_for(
        lambda: all(
            s.inner_text() in {"G", "Y", "R", "F", "M", "!"} for s in signals.all()
        ),
        20, "every signal to show its state",
    )  # fmt: skip
    labels = {s.get_attribute("aria-label") for s in signals.all()}
    said = re.compile(r"signal \w+: (automatic|manual|flashing|FAIL)")
    assert all(said.match(label or "") for label in labels)
    # Devices from the scenario are on the map, and the run's clock advances.
    expect(page.get_by_test_id("gate")).to_have_count(4)
    expect(page.get_by_test_id("air-station")).to_have_count(4)
    before = sim_seconds(page)
    wait_for(lambda: sim_seconds(page) > before + 5, 20, "the simulation clock to advance")
    kpi = page.get_by_test_id("kpi-panel")
    expect(kpi.get_by_test_id("kpi-running").locator(".value")).to_have_text(re.compile(r"^\d+ veh$"))
    expect(page.get_by_test_id("run-info")).to_contain_text("district")
    expect(page.get_by_test_id("who")).to_contain_text("admin")


def test_the_kpi_panel_shows_the_figures_the_server_has(district: Server, page: Page) -> None:
    sign_in(page, district, TOKEN)
    delay = page.get_by_test_id("kpi-delay").locator(".value")

    def same_as_the_server() -> bool:
        with district.client() as c:
            params = {"scope": "network", "metric": "mean_delay_arrived_s", "period": "interval"}
            rows = c.get("/api/kpis", params=params).json()["items"]
        latest = max(rows, key=lambda r: r["end_s"], default=None)
        return latest is not None and delay.inner_text() == f"{latest['value']:.1f} s/veh"

    wait_for(same_as_the_server, 40, "the panel to show the last interval's mean delay")
    running = page.get_by_test_id("kpi-running").locator(".value").inner_text()
    assert int(running.split()[0]) > 0  # vehicles in the district now, never a negative count


# --- alarms -------------------------------------------------------------------------------------


def test_a_simulation_alarm_appears_and_acknowledging_it_reaches_the_server(
    district: Server, page: Page
) -> None:
    sign_in(page, district, TOKEN)
    rows = page.locator("[data-testid=alarm-list] [data-testid=alarm-row]")
    expect(rows.first).to_be_visible(timeout=60_000)
    # The first sensor fault is critical here: the banner names it in words, with a shape.
    banner = page.get_by_test_id("critical-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("CRITICAL ALARM")
    assert re.search(r"\bCRITICAL\b", page.title())
    assert page.evaluate("window.ccsim.chime.played") >= 1  # and a sound (unless turned off)
    expect(page.get_by_test_id("sound-toggle")).to_have_attribute("aria-pressed", "true")
    screenshot(page, "control-room.png")

    first = page.locator("[data-testid=alarm-row][data-state=active-unacknowledged]").first
    alarm_id = int(first.get_attribute("data-alarm-id") or 0)
    row = page.locator(f"[data-testid=alarm-row][data-alarm-id='{alarm_id}']")  # whatever comes
    assert alarm(district, alarm_id)["state"] == "active-unacknowledged"
    row.click()  # selecting an alarm centres the map on it
    expect(page.get_by_test_id("map-focus")).to_have_count(1)
    where = alarm(district, alarm_id)["location"]["coordinates"]  # a lane: centred on its middle
    xs, ys = [p[0] for p in where], [p[1] for p in where]
    centre = page.evaluate("window.ccsim.map.center()")
    assert min(xs) - 1 <= centre[0] <= max(xs) + 1 and min(ys) - 1 <= centre[1] <= max(ys) + 1
    row.get_by_test_id("alarm-ack").click()

    acknowledged = wait_for(
        lambda: (a := alarm(district, alarm_id))["state"] == "acknowledged" and a, 10,
        "the server to record the acknowledgement",
    )  # fmt: skip
    assert [h["action"] for h in acknowledged["history"]][:2] == ["raise", "acknowledge"]
    assert acknowledged["history"][1]["user"] == "admin"
    assert any(
        e["target"] == f"alarm:{alarm_id}" and e["result"] == "accepted"
        for e in audit(district, action="alarm.acknowledge")
    )
    same = page.locator(f"[data-testid=alarm-row][data-alarm-id='{alarm_id}']")
    expect(same).to_have_attribute("data-state", "acknowledged")
    expect(same.get_by_test_id("alarm-ack")).to_have_count(0)


def test_alarms_are_sorted_by_severity_then_time(district: Server, page: Page) -> None:
    sign_in(page, district, TOKEN)
    rows = page.locator("[data-testid=alarm-list] [data-testid=alarm-row]")
    expect(rows.first).to_be_visible(timeout=60_000)
    rank = {"critical": 5, "high": 4, "medium": 3, "low": 2, "informational": 1}
    page.mouse.move(5, 5)  # (the order is frozen while the pointer is over the list)
    wait_for(lambda: rows.count() > 1, 60, "a second alarm to sort")
    # read in one go, in the page: row by row, a list re-rendered meanwhile mixes two orders
    attributes = rows.evaluate_all(
        "rows => rows.map(r => [r.dataset.state, r.dataset.severity, r.dataset.issued])"
    )
    seen = [
        (state == "shelved", -rank[severity or ""], [-ord(c) for c in issued or ""])  # newest first
        for state, severity, issued in attributes
    ]
    assert len(seen) > 1 and seen == sorted(seen)


def test_comment_and_shelve_from_the_list(district: Server, page: Page) -> None:
    sign_in(page, district, TOKEN)
    first = page.locator("[data-testid=alarm-row]").first
    expect(first).to_be_visible(timeout=60_000)
    alarm_id = int(first.get_attribute("data-alarm-id") or 0)
    mine = page.locator(f"[data-testid=alarm-row][data-alarm-id='{alarm_id}']")
    mine.get_by_test_id("alarm-comment").click()
    mine.get_by_test_id("alarm-comment-text").fill("crew sent to check the loop")
    mine.get_by_test_id("alarm-comment-save").click()

    def notes() -> list[str]:
        return [h["note"] for h in alarm(district, alarm_id)["history"]]

    wait_for(lambda: "crew sent to check the loop" in notes(), 10, "the comment to be recorded")
    mine.get_by_test_id("alarm-shelve").click()
    expect(mine).to_have_attribute("data-state", "shelved")
    assert alarm(district, alarm_id)["state"] == "shelved"


def test_rows_do_not_move_under_the_pointer(district: Server, page: Page) -> None:
    """A new alarm that sorts above the one being acknowledged waits behind a button."""
    sign_in(page, district, TOKEN)
    with district.client() as c:
        c.post("/api/signals/E3/override", json={"action": "flash"})
        older = page.locator("[data-testid=alarm-row]", has_text="signal E3 under manual control")
        expect(older).to_have_count(1, timeout=15_000)
        ack = older.get_by_test_id("alarm-ack")
        ack.hover()
        where = ack.bounding_box()
        # Same severity, newer: it sorts above - but not while the pointer is in the list.
        c.post("/api/signals/E2/override", json={"action": "flash"})
        # (the simulation may raise others meanwhile: "N new alarms")
        expect(page.get_by_test_id("alarm-new")).to_contain_text(
            re.compile(r"\d+ new alarms?"), timeout=15_000
        )
        newer = page.locator("[data-testid=alarm-row]", has_text="signal E2 under manual control")
        # Not pushed down by a new row (~90 px); rows above may re-render in place (sub-pixel).
        now = ack.bounding_box()
        assert newer.count() == 0 and now is not None and abs(now["y"] - where["y"]) < 2
        alarm_id = int(older.get_attribute("data-alarm-id") or 0)
        page.mouse.click(where["x"] + where["width"] / 2, where["y"] + where["height"] / 2)
        wait_for(lambda: alarm(district, alarm_id)["state"] == "acknowledged", 10, "the ack")
        page.mouse.move(5, 5)  # the pointer leaves: the list sorts itself again
        expect(page.get_by_test_id("alarm-new")).to_be_hidden()
        assert newer.bounding_box()["y"] < older.bounding_box()["y"]  # type: ignore[index]
        c.post("/api/signals/E3/override", json={"action": "automatic"})
        c.post("/api/signals/E2/override", json={"action": "automatic"})


# --- the intersection panel and roles -----------------------------------------------------------


def test_an_operator_holds_a_phase_from_the_intersection_panel(district: Server, page: Page) -> None:
    sign_in(page, district, TOKEN)
    page.locator("[data-testid=signal][data-id=C2]").click()
    panel = page.get_by_test_id("intersection-panel")
    expect(panel).to_be_visible()
    expect(panel).to_contain_text("Signal C2")
    expect(panel.get_by_test_id("panel-controller")).to_have_text("adaptive")
    wait_for(
        lambda: panel.locator("[data-testid=phase-timeline] rect").count() > 3, 20,
        "the last minutes of phases on the timeline",
    )  # fmt: skip
    expect(panel.get_by_test_id("approach-queues").locator("tr")).not_to_have_count(0)
    # why the light changed: the adaptive controller's last decisions, with their reasons
    why = panel.get_by_test_id("decisions").locator("li")
    expect(why.first).to_contain_text(
        re.compile(r"(schedule|transit-priority|max-wait) \u2192 \d+ \(adaptive\)")
    )
    expect(why.first).to_contain_text(re.compile("vehicle-s of delay expected|has waited"))

    panel.get_by_test_id("override-hold").click()
    expect(panel.get_by_test_id("override-answer")).to_contain_text("hold: accepted", timeout=15_000)
    expect(why.first).to_contain_text(re.compile(r"operator \(\w+\) hold \d+: accepted"))
    expect(panel.get_by_test_id("panel-mode")).to_have_text(re.compile("HOLD"))
    expect(page.locator("[data-testid=signal][data-id=C2]")).to_have_text("M")
    screenshot(page, "control-room-intersection.png")
    assert audit(district, action="signal.override")[0]["arguments"]["action"] == "hold"

    panel.get_by_test_id("override-automatic").click()
    expect(panel.get_by_test_id("panel-mode")).to_have_text("automatic", timeout=15_000)


def test_a_viewer_sees_no_override_buttons(district: Server, page: Page) -> None:
    viewer = make_user(district, "vera", "viewer")
    sign_in(page, district, viewer)
    expect(page.get_by_test_id("who")).to_contain_text("vera · viewer")
    page.locator("[data-testid=signal][data-id=B2]").click()
    panel = page.get_by_test_id("intersection-panel")
    expect(panel).to_contain_text("Signal B2")
    expect(panel.get_by_test_id("panel-phase")).not_to_have_text("-")
    expect(page.get_by_test_id("override-hold")).to_have_count(0)
    expect(page.get_by_test_id("alarm-ack")).to_have_count(0)
    expect(page.get_by_test_id("sim-controls")).to_be_hidden()
    # The keyboard does what the pointer does: Escape closes, Enter on a signal opens.
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    page.locator(".leaflet-marker-icon:has([data-testid=signal][data-id=C3])").focus()
    page.keyboard.press("Enter")
    expect(panel).to_contain_text("Signal C3")


def test_an_operator_pauses_and_resumes_the_simulation(district: Server, page: Page) -> None:
    sign_in(page, district, make_user(district, "opal", "operator"))  # as the server allows it
    page.get_by_test_id("sim-pause").click()
    expect(page.get_by_test_id("run-info")).to_contain_text("(paused)", timeout=10_000)
    paused_at = sim_seconds(page)
    page.wait_for_timeout(1500)  # a paused run's clock must stand still meanwhile
    assert sim_seconds(page) == paused_at
    # audited as applied once the simulation had stopped, not when the command was sent
    paused = wait_for(
        lambda: (a := audit(district, action="simulation.pause")[0])["result"] != "pending" and a,
        10, "the pause's verdict in the audit",
    )  # fmt: skip
    assert paused["result"] == "accepted" and paused["detail"].startswith("paused at t="), paused
    page.get_by_test_id("sim-resume").click()
    expect(page.get_by_test_id("run-info")).not_to_contain_text("(paused)", timeout=10_000)
    wait_for(lambda: sim_seconds(page) > paused_at, 15, "the clock to move again")


# --- a dropped connection -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_the_page_recovers_after_the_server_restarts(tmp_path: Path, page: Page) -> None:
    port = str(free_port())
    db = tmp_path / "control.db"
    for run in ("first", "second"):
        (tmp_path / run).mkdir()
    with served(tmp_path / "first", "--port", port, "--speed", "10", db=db) as first:
        first.wait_running()
        sign_in(page, first, TOKEN)
        expect(page.locator("[data-testid=signal]")).to_have_count(1)
        page.evaluate("window.ccsim.loadedOnce = true")
        first_run = page.evaluate("window.ccsim.runId")
    state = page.get_by_test_id("connection-state")
    expect(state).not_to_have_attribute("data-state", "connected", timeout=15_000)
    # Meanwhile the last picture stays, greyed out and saying so.
    expect(page.get_by_test_id("stale-note")).to_contain_text("NOT LIVE")
    expect(page.locator("body")).to_have_attribute("data-live", "no")

    with served(tmp_path / "second", "--port", port, "--speed", "10", db=db) as second:
        second.wait_running()
        expect(state).to_have_attribute("data-state", "connected", timeout=30_000)
        wait_for(lambda: page.evaluate("window.ccsim.runId") != first_run, 10, "the new run")
        # The same page (never reloaded) shows the new run live again.
        assert page.evaluate("window.ccsim.loadedOnce") is True
        before = sim_seconds(page)
        wait_for(lambda: sim_seconds(page) > before, 20, "the new run's clock to advance")
        expect(page.locator("[data-testid=signal]")).to_have_count(1)


def test_a_finished_run_is_shown_as_such_and_takes_no_commands(tmp_path: Path, page: Page) -> None:
    with served(tmp_path, "--speed", "max", "--end", "120") as server:
        sign_in(page, server, TOKEN)
        expect(page.get_by_test_id("stale-note")).to_contain_text("finished", timeout=60_000)
        expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "connected")
        expect(page.get_by_test_id("sim-pause")).to_be_disabled()
        page.locator("[data-testid=signal]").first.click()
        expect(page.get_by_test_id("override-hold")).to_be_disabled()
