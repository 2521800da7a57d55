"""The page with playlists, in headless Chromium on the real app (a worker inside)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.support import CONVERSION_TIMEOUT, OpenTab, StartServer, Tab
from tests.stand_in import Feed, StandIn

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PLAYLIST_LINK = "https://www.youtube.com/playlist?list=PLwithMissing"
WATCH_IN_LIST = "https://www.youtube.com/watch?v=feedVideo01&list=PLwithMissing"


def expect_playlist_done(tab: Tab) -> None:
    card = tab.page.locator('#jobs > li[data-id^="pl-PLwithMissing-"]')
    expect(card.locator(".job-status")).to_have_text("Ready", timeout=CONVERSION_TIMEOUT * 2)
    rows = card.locator(".track")
    expect(rows).to_have_count(3)
    expect(rows.nth(0).locator(".track-title")).to_have_text("1. First")
    expect(rows.nth(0).get_by_role("link", name="Download MP3 of First")).to_be_visible()
    expect(rows.nth(1)).to_have_attribute("data-status", "failed")
    expect(rows.nth(1).get_by_role("link")).to_have_count(0)
    expect(rows.nth(2).get_by_role("link", name="Download MP3 of Third")).to_be_visible()
    expect(card.get_by_role("link", name=re.compile(r"Download all .*\(ZIP\)"))).to_be_visible()


def test_a_playlist_link_shows_every_track_and_a_zip(
    start_server: StartServer, open_tab: OpenTab, stand_in: StandIn
) -> None:
    tab = open_tab(start_server())
    tab.link_input.fill(PLAYLIST_LINK)
    with tab.page.expect_response("**/playlists") as answer:
        tab.convert.click()
    assert answer.value.status == 201
    expect_playlist_done(tab)
    card = tab.page.locator('#jobs > li[data-id^="pl-PLwithMissing-"]')
    tab.shot("playlist-done")
    with tab.page.expect_download() as download:
        card.get_by_role("link", name=re.compile(r"\(ZIP\)")).click()
    assert download.value.suggested_filename == "With a missing video.zip"
    with tab.page.expect_download() as track:
        card.get_by_role("link", name="Download MP3 of Third").click()
    assert track.value.suggested_filename.endswith(".mp3")


def test_a_watch_link_in_a_list_asks_which_with_the_keyboard(
    start_server: StartServer, open_tab: OpenTab, stand_in: StandIn
) -> None:
    tab = open_tab(start_server())
    page = tab.page
    tab.link_input.fill(WATCH_IN_LIST)
    tab.link_input.press("Enter")
    question = page.get_by_role("group", name=re.compile("video in a playlist"))
    expect(question).to_be_visible()
    this_video = page.get_by_role("button", name="This video")
    expect(this_video).to_be_focused()
    page.keyboard.press("Escape")  # changed my mind: back to the field, nothing sent
    expect(question).to_be_hidden()
    expect(tab.link_input).to_be_focused()
    tab.link_input.press("Enter")
    expect(this_video).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="The whole playlist")).to_be_focused()
    with page.expect_response("**/playlists") as answer:
        page.keyboard.press("Enter")
    assert answer.value.status == 201
    expect_playlist_done(tab)

    tab.link_input.fill(WATCH_IN_LIST)
    tab.link_input.press("Enter")
    with page.expect_response("**/submit") as single:
        page.keyboard.press("Enter")  # on "This video"
    assert single.value.json()["data"]["video_id"] == "feedVideo01"
    expect(tab.card("feedVideo01").locator(".job-status")).to_have_text(
        "Ready", timeout=CONVERSION_TIMEOUT
    )


def test_a_playlist_fits_a_phone(
    start_server: StartServer, open_tab: OpenTab, stand_in: StandIn
) -> None:
    tab = open_tab(
        start_server(), width=390, height=844, is_mobile=True, has_touch=True, device_scale_factor=2
    )
    tab.link_input.fill(PLAYLIST_LINK)
    tab.convert.tap()
    expect_playlist_done(tab)
    widths = tab.page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1] <= 390, widths
    zip_link = tab.page.get_by_role("link", name=re.compile(r"\(ZIP\)"))
    box = zip_link.bounding_box()
    assert box is not None and box["height"] >= 44 and box["x"] + box["width"] <= 390, box
    tab.shot("phone-playlist-done")


def test_a_failed_playlist_is_tried_again_from_its_card(
    start_server: StartServer, open_tab: OpenTab, stand_in: StandIn
) -> None:
    stand_in.feeds["PLcomesBack"] = Feed(status=404)  # not there, for now
    tab = open_tab(start_server())
    tab.link_input.fill("https://www.youtube.com/playlist?list=PLcomesBack")
    with tab.page.expect_response("**/playlists") as answer:
        tab.convert.click()
    assert answer.value.status == 201
    first_id = answer.value.json()["data"]["id"]
    card = tab.page.locator('#jobs > li[data-id^="pl-PLcomesBack-"]')
    expect(card.locator(".job-status")).to_have_text("Failed", timeout=CONVERSION_TIMEOUT)
    retry = card.get_by_role("button", name="Try again")
    expect(retry).to_be_visible()

    stand_in.feeds["PLcomesBack"] = Feed(
        [("feedVideo01", "First", 3), ("feedVideo03", "Third", 3)], title="Back again"
    )
    with tab.page.expect_response("**/playlists") as again:
        retry.click()
    assert again.value.status == 201
    assert again.value.json()["data"]["id"] != first_id  # a new read of the list
    expect(card).to_have_count(1)  # the same card follows it
    expect(card.locator(".job-status")).to_have_text("Ready", timeout=CONVERSION_TIMEOUT * 2)
    expect(retry).to_be_hidden()
    expect(card.locator(".track")).to_have_count(2)
    expect(card.get_by_role("link", name=re.compile(r"Download all .*\(ZIP\)"))).to_be_visible()
