"""The accounts dialog in real headless Chromium against a real ``ccsim serve``: an admin lists,
creates, changes roles, rotates and revokes; what the page shows is what the server did."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.e2e.browser import chromium, screenshot, sign_in, tablet_page
from tests.e2e.serving import TOKEN, Server, make_user, start_server, wait_for


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as running:
        yield running


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("ui-accounts"), "--speed", "10")
    try:
        running.wait_running()
        yield running
    finally:
        assert running.stop() == 0, running.lines[-20:]


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with tablet_page(browser) as opened:
        yield opened


def me(server: Server, token: str) -> tuple[int, str]:
    """(HTTP status, role) of ``GET /api/me`` with ``token``."""
    with server.client(token) as c:
        response = c.get("/api/me")
    return response.status_code, response.json().get("role", "")


def open_accounts(page: Page, server: Server, token: str = TOKEN) -> Locator:
    sign_in(page, server, token)
    page.get_by_test_id("accounts-open").click()
    dialog = page.get_by_test_id("accounts")
    expect(dialog).to_be_visible()
    return dialog


def row(dialog: Locator, name: str) -> Locator:
    return dialog.locator(f"[data-testid=user-row][data-name='{name}']")


def shown_token(dialog: Locator) -> str:
    expect(dialog.get_by_test_id("token-shown")).to_be_visible()
    return dialog.get_by_test_id("token-value").inner_text().strip()


def test_an_admin_creates_changes_rotates_and_revokes_a_user(server: Server, page: Page) -> None:
    dialog = open_accounts(page, server)
    expect(row(dialog, "admin")).to_contain_text("(you)")
    expect(row(dialog, "admin").get_by_test_id("user-role")).to_have_value("admin")

    dialog.get_by_test_id("new-user-name").fill("nadia")
    dialog.get_by_test_id("new-user-role").select_option("operator")
    dialog.get_by_test_id("new-user-submit").click()
    first = shown_token(dialog)
    expect(row(dialog, "nadia")).to_have_attribute("data-role", "operator")
    expect(row(dialog, "nadia").get_by_test_id("user-tokens")).to_have_text(re.compile(r"^1 \("))
    assert me(server, first) == (200, "operator")  # the token shown is the one the server made
    screenshot(page, "accounts.png")

    row(dialog, "nadia").get_by_test_id("user-role").select_option("viewer")
    expect(dialog.get_by_test_id("accounts-answer")).to_have_text("nadia: now viewer")
    assert me(server, first) == (200, "viewer")

    row(dialog, "nadia").get_by_test_id("user-rotate").click()
    expect(dialog.get_by_test_id("accounts-answer")).to_contain_text("the old one no longer works")
    second = wait_for(lambda: (t := shown_token(dialog)) != first and t, 10, "the new token")
    assert me(server, first)[0] == 401 and me(server, second) == (200, "viewer")

    row(dialog, "nadia").get_by_test_id("user-revoke").click()  # asked twice
    assert me(server, second)[0] == 200
    row(dialog, "nadia").get_by_test_id("user-revoke-confirm").click()
    expect(row(dialog, "nadia")).to_have_count(0)
    expect(dialog.get_by_test_id("accounts-answer")).to_have_text("nadia: revoked and removed")
    assert me(server, second)[0] == 401

    dialog.get_by_test_id("accounts-close").click()
    expect(dialog).to_be_hidden()
    expect(dialog.get_by_test_id("token-value")).to_have_text("")  # not left on the page


def test_refusals_are_shown_in_words(server: Server, page: Page) -> None:
    make_user(server, "oscar", "viewer")
    dialog = open_accounts(page, server)
    row(dialog, "admin").get_by_test_id("user-role").select_option("engineer")
    expect(dialog.get_by_test_id("accounts-answer")).to_have_text(
        "admin: refused (409): cannot make engineer of 'admin': it is the last admin account"
    )
    expect(row(dialog, "admin").get_by_test_id("user-role")).to_have_value("admin")  # put back
    dialog.get_by_test_id("new-user-name").fill("oscar")
    dialog.get_by_test_id("new-user-submit").click()
    expect(dialog.get_by_test_id("accounts-answer")).to_have_text(
        "create oscar: refused (409): user 'oscar' exists already"
    )
    expect(dialog.get_by_test_id("token-shown")).to_be_hidden()


def test_a_revoked_users_open_page_is_signed_out(server: Server, browser: Browser) -> None:
    token = make_user(server, "pia", "operator")
    with tablet_page(browser) as admin_page, tablet_page(browser) as pia_page:
        sign_in(pia_page, server, token)
        expect(pia_page.get_by_test_id("who")).to_contain_text("pia · operator")
        dialog = open_accounts(admin_page, server)
        row(dialog, "pia").get_by_test_id("user-revoke").click()
        row(dialog, "pia").get_by_test_id("user-revoke-confirm").click()
        expect(pia_page.get_by_test_id("connection-state")).to_have_attribute("data-state", "refused")
        expect(pia_page.get_by_test_id("login-error")).to_contain_text("token revoked")


def test_a_role_change_reaches_the_users_open_page(server: Server, browser: Browser) -> None:
    token = make_user(server, "quim", "viewer")
    with tablet_page(browser) as admin_page, tablet_page(browser) as quim_page:
        sign_in(quim_page, server, token)
        expect(quim_page.get_by_test_id("sim-controls")).to_be_hidden()
        dialog = open_accounts(admin_page, server)
        row(dialog, "quim").get_by_test_id("user-role").select_option("operator")
        # The feed reconnects with the new role; the page offers what an operator may do.
        expect(quim_page.get_by_test_id("who")).to_contain_text("quim · operator", timeout=15_000)
        expect(quim_page.get_by_test_id("sim-controls")).to_be_visible()
        expect(quim_page.get_by_test_id("connection-state")).to_have_attribute("data-state", "connected")
        expect(quim_page.get_by_test_id("accounts-open")).to_be_hidden()


def test_only_admins_see_the_accounts(server: Server, page: Page) -> None:
    engineer = make_user(server, "rosa", "engineer")
    sign_in(page, server, engineer)
    expect(page.get_by_test_id("who")).to_contain_text("rosa · engineer")
    expect(page.get_by_test_id("accounts-open")).to_be_hidden()
    expect(page.get_by_test_id("sim-controls")).to_be_visible()


def test_an_admin_who_rotates_their_own_token_stays_signed_in(server: Server, page: Page) -> None:
    second_admin = make_user(server, "sara", "admin")
    dialog = open_accounts(page, server, second_admin)
    row(dialog, "sara").get_by_test_id("user-rotate").click()
    new = shown_token(dialog)
    assert new != second_admin
    assert me(server, second_admin)[0] == 401 and me(server, new) == (200, "admin")
    expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "connected")
    assert page.evaluate("sessionStorage.getItem('ccsim.token')") == new
    expect(page.get_by_test_id("who")).to_contain_text("sara · admin")
    expect(row(dialog, "sara").get_by_test_id("user-tokens")).to_have_text(re.compile(r"^1 \("))
