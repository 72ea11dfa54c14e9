"""The alarm list in real headless Chromium for alarms that outlive their run: an operator clears
an alarm of an earlier run, and takes one of the run in progress out of service and back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.e2e.browser import chromium, sign_in, tablet_page
from tests.e2e.serving import Server, start_server, wait_for


def signal_alarm(server: Server, run: int) -> dict[str, Any] | None:
    with server.client() as c:
        items = c.get("/api/alarms", params={"run": run}).json()["items"]
    return next((a for a in items if a["rule"] == "signal-manual" and a["state"] != "cleared"), None)


def test_an_operator_clears_an_earlier_runs_alarm_and_takes_one_out_of_service(
    tmp_path: Path,
) -> None:
    db = tmp_path / "control.db"
    (tmp_path / "first").mkdir()
    first = start_server(tmp_path / "first", "--speed", "20", db=db)
    try:
        first.wait_running()
        with first.client() as c:
            c.post("/api/signals/C/override", json={"action": "flash"})
        old = wait_for(lambda: signal_alarm(first, 1), 15, "run 1's alarm")
    finally:
        first.stop()
    second = start_server(tmp_path, "--speed", "20", db=db)
    try:
        second.wait_running()
        with chromium() as browser, tablet_page(browser) as page:
            sign_in(page, second, second.token)
            earlier = page.locator(f"[data-testid=alarm-row][data-alarm-id='{old['id']}']")
            expect(earlier).to_contain_text("run 1")
            earlier.get_by_test_id("alarm-clear").click()
            expect(earlier).to_have_attribute("data-state", "cleared")  # (kept under the pointer)
            page.mouse.move(5, 5)
            expect(earlier).to_have_count(0)
            assert wait_for(lambda: signal_alarm(second, 1) is None, 10, "the server to clear it")

            with second.client() as c:
                c.post("/api/signals/C/override", json={"action": "flash"})
            new = wait_for(lambda: signal_alarm(second, 2), 15, "run 2's alarm")
            current = page.locator(f"[data-testid=alarm-row][data-alarm-id='{new['id']}']")
            expect(current).to_have_attribute("data-state", "active-unacknowledged")
            expect(current.get_by_test_id("alarm-clear")).to_have_count(0)  # its condition clears it
            current.get_by_test_id("alarm-out-of-service").click()
            expect(current).to_have_attribute("data-state", "out-of-service")
            expect(current).to_contain_text("out of service")
            assert signal_alarm(second, 2)["state"] == "out-of-service"  # type: ignore[index]
            current.get_by_test_id("alarm-return-to-service").click()
            expect(current).to_have_attribute("data-state", "active-unacknowledged")
    finally:
        second.stop()
