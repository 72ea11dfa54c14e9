"""The control room's "New run" button in real headless Chromium against a real ``ccsim serve``:
a short run ends, an operator starts the next one from the page, and the page moves on to it;
a viewer gets no such control."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect

from tests.e2e.browser import chromium, sign_in, tablet_page
from tests.e2e.serving import make_user, start_server, wait_for


def test_an_operator_starts_a_new_run_once_the_run_has_ended_and_a_viewer_cannot(
    tmp_path: Path,
) -> None:
    # Two simulated minutes at x20: a run of a few seconds, long enough to be seen running.
    server = start_server(tmp_path, "--speed", "20", "--end", "120")
    try:
        first = server.wait_running()["run"]["id"]
        operator = make_user(server, "olga", "operator")
        viewer = make_user(server, "vera", "viewer")
        with chromium() as browser, tablet_page(browser) as page, tablet_page(browser) as watcher:
            sign_in(page, server, operator)
            button = page.get_by_test_id("sim-new-run")
            expect(button).to_be_visible()
            sign_in(watcher, server, viewer)
            expect(watcher.get_by_test_id("sim-controls")).to_be_hidden()
            expect(watcher.get_by_test_id("sim-new-run")).to_be_hidden()

            # Enabled once the run has ended (the feed says so), not before.
            expect(page.get_by_test_id("stale-note")).to_contain_text("finished", timeout=60_000)
            expect(button).to_be_enabled()
            assert page.evaluate("window.ccsim.runId") == first
            expect(page.get_by_test_id("run-info")).to_contain_text(f"run {first}")

            button.click()
            second = first + 1
            expect(page.get_by_test_id("sim-answer")).to_have_text(
                f"new run: accepted: run {second} started"
            )
            # The page (never reloaded) moves on to the new run: its id, its clock from the
            # start, live again - and the button is off while it runs.
            expect(page.get_by_test_id("run-info")).to_contain_text(f"run {second}", timeout=30_000)
            wait_for(lambda: page.evaluate("window.ccsim.runId") == second, 30, "the page's run")
            assert server.health()["run"]["id"] == second
            expect(page.locator("body")).to_have_attribute("data-live", "yes", timeout=30_000)
            expect(button).to_be_disabled()
            # The viewer's page follows too, still without the control.
            expect(watcher.get_by_test_id("run-info")).to_contain_text(f"run {second}", timeout=30_000)
            expect(watcher.get_by_test_id("sim-new-run")).to_be_hidden()

            # Once that run has ended too, the button is back; a run another operator starts
            # (here through the API) takes the page along as well.
            expect(page.get_by_test_id("stale-note")).to_contain_text("finished", timeout=60_000)
            expect(button).to_be_enabled()
            with server.client(operator) as c:
                assert c.post("/api/runs").json()["run"] == second + 1
            expect(page.get_by_test_id("run-info")).to_contain_text(f"run {second + 1}", timeout=30_000)
            expect(button).to_be_disabled()
    finally:
        assert server.stop() == 0, server.lines[-20:]
