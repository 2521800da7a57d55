"""The page with YTMP3_AUTH=keys, in Chromium: sign in, convert, download, sign out, and
the download link no longer works."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.support import CONVERSION_TIMEOUT, OpenTab, StartServer, watch_url
from tests.conftest import VIDEO_ID
from tests.stand_in import StandIn
from ytmp3.access import admin

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_sign_in_convert_download_sign_out(
    start_server: StartServer, open_tab: OpenTab, stand_in: StandIn, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    server = start_server(auth="keys", data_dir=data_dir)
    key = server.call(admin.add(server.resources.settings, "household", None))
    tab = open_tab(server)
    page = tab.page

    # A key is asked for first; the converter waits behind it.
    key_field = page.get_by_label("API key")
    expect(key_field).to_be_visible()
    expect(tab.link_input).to_be_hidden()
    key_field.fill("ytmp3_" + "x" * 43)
    key_field.press("Enter")
    expect(page.locator("#signin-message")).to_contain_text("not valid")
    key_field.fill(key)
    key_field.press("Enter")
    expect(page.locator("#account")).to_contain_text("Signed in as household")
    expect(tab.link_input).to_be_visible()
    cookies = page.context.cookies()
    assert [c["httpOnly"] for c in cookies] == [True] and cookies[0]["sameSite"] == "Strict"
    assert key not in cookies[0]["value"]

    # Convert and download, on the strength of the cookie.
    tab.link_input.fill(watch_url(VIDEO_ID))
    with page.expect_response("**/submit") as answer:
        tab.convert.click()
    assert answer.value.status == 201
    card = tab.card(VIDEO_ID)
    expect(card.locator(".job-status")).to_have_text("Ready", timeout=CONVERSION_TIMEOUT)
    link = card.get_by_role("link", name=re.compile("Download MP3"))
    href = link.get_attribute("href")
    with page.expect_download() as download_info:
        link.click()
    assert download_info.value.path().read_bytes()[:3] in (b"ID3", b"\xff\xfb\x90")

    # Sign out: the key is asked for again, and the same link answers 401.
    page.get_by_role("button", name="Sign out").click()
    expect(key_field).to_be_visible()
    fetched = page.request.get(server.url + str(href))
    assert fetched.status == 401
    assert fetched.headers["www-authenticate"].startswith("Bearer")


def test_the_page_asks_for_no_key_when_auth_is_off(
    start_server: StartServer, open_tab: OpenTab, stand_in: StandIn
) -> None:
    tab = open_tab(start_server())
    expect(tab.link_input).to_be_visible()
    expect(tab.page.get_by_label("API key")).to_be_hidden()
    expect(tab.page.locator("#account")).to_be_hidden()
