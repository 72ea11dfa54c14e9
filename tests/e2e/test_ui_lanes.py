"""The control room's lanes section in real headless Chromium against a real ``ccsim serve``
(the single intersection with the incident model): an operator reports an incident that blocks
a lane, sees who holds the lane, and cannot open it while the incident does."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.browser import chromium, screenshot, sign_in, tablet_page
from tests.e2e.serving import TOKEN, Server, make_user, start_server
from tests.sim.devices_helpers import single_with


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("ui-lanes")
    scenario = single_with(tmp / "scenario", "[devices.incidents]\ncollisions = false\n")
    running = start_server(tmp, "--speed", "10", scenario=str(scenario))
    try:
        running.wait_running()
        yield running
    finally:
        assert running.stop() == 0, running.lines[-20:]


@pytest.fixture
def page() -> Iterator[Page]:
    with chromium() as browser, tablet_page(browser) as opened:
        yield opened


def test_an_operator_reports_an_incident_and_sees_who_holds_the_lane(server: Server, page: Page) -> None:
    sign_in(page, server, TOKEN)
    expect(page.get_by_test_id("closed-count")).to_have_text("0")
    page.get_by_test_id("lane-commands-toggle").click()  # folded away, so that alarms keep the room
    page.get_by_test_id("lane-id").fill("E_C_1")
    page.get_by_test_id("incident-cause").select_option("blocked_lane")
    page.get_by_test_id("incident-pos").fill("120")
    page.get_by_test_id("incident-duration").fill("900")
    page.get_by_test_id("incident-submit").click()
    answer = page.get_by_test_id("lane-answer")
    expect(answer).to_contain_text(re.compile(r"incident on E_C_1: (accepted: incident\.\d+|sent)"))
    closed = page.locator("[data-testid=closed-lane][data-lane=E_C_1]")
    expect(closed.get_by_test_id("lane-holders")).to_have_text(re.compile(r"^held by incident\.\d+$"))
    expect(page.get_by_test_id("closed-count")).to_have_text("1")
    expect(page.get_by_test_id("reported-incident")).to_contain_text(
        re.compile(r"lane blocked on E_C_1 at 120 m, reported by admin")
    )
    # An operator's open does not lift the incident's hold; the answer says who holds the lane.
    page.get_by_test_id("lane-open").click()
    expect(answer).to_contain_text(
        re.compile(r"open E_C_1: refused \(409\): the lane stays closed: held by incident\.\d+")
    )
    expect(answer).to_have_class(re.compile(r"refused"))
    expect(closed).to_be_visible()
    # In single each lane alone serves some turn: closing one is refused, and says why.
    page.get_by_test_id("lane-close").click()
    expect(answer).to_contain_text("close E_C_1: refused (409): closing E_C_1 would leave no lane")
    screenshot(page, "lanes-incident.png")


def test_a_viewer_sees_the_lanes_section_but_no_lane_commands(server: Server, page: Page) -> None:
    sign_in(page, server, make_user(server, "vic", "viewer"))
    expect(page.get_by_test_id("lanes-panel")).to_be_visible()
    expect(page.get_by_test_id("lane-commands")).to_be_hidden()
