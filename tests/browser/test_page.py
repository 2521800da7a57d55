"""The page at / in a real browser: headless Chromium on the real app, conversions really run."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Response, expect

from tests.browser.support import (
    CONVERSION_TIMEOUT,
    PARTIAL_PERCENT,
    OpenTab,
    StartServer,
    Tab,
    watch_url,
)
from tests.conftest import VIDEO_ID, make_audio
from tests.stand_in import Source, StandIn, Thumb

pytestmark = [pytest.mark.browser, pytest.mark.slow]

OTHER_ID = "9bZkp7q19f0"


def paced(
    stand_in: StandIn, video_id: str, seconds: float = 6, download_seconds: float = 2.5
) -> None:
    """A source that takes about `download_seconds` to download, so progress can be seen."""
    data = make_audio(seconds)
    stand_in.sources[video_id] = Source(data, bytes_per_second=int(len(data) / download_seconds))


def send(tab: Tab, link: str) -> Response:
    """Put the link in the field and press the button; the answer to POST /submit."""
    tab.link_input.fill(link)
    with tab.page.expect_response("**/submit") as answer:
        tab.convert.click()
    return answer.value


def submit(tab: Tab, video_id: str) -> str:
    """Submit a video that is accepted; the job id its card follows."""
    answer = send(tab, watch_url(video_id))
    assert answer.status in (200, 201), answer.json()
    job_id: str = answer.json()["data"]["id"]
    return job_id


def expect_ready(tab: Tab, video_id: str) -> None:
    card = tab.card(video_id)
    expect(card.locator(".job-status")).to_have_text("Ready", timeout=CONVERSION_TIMEOUT)
    expect(card.locator(".job-percent")).to_have_text("100%")
    expect(card.get_by_role("link", name=re.compile("Download MP3"))).to_be_visible()


def test_success_path_shows_both_phases_and_a_working_download(
    start_server: StartServer, open_tab: OpenTab, stand_in: StandIn
) -> None:
    paced(stand_in, VIDEO_ID)
    server = start_server()
    tab = open_tab(server, permissions=["clipboard-read", "clipboard-write"])
    tab.shot("desktop-empty")
    tab.record_states()
    page = tab.page

    # Paste the link, choose a bitrate, press Enter.
    tab.link_input.focus()
    page.evaluate("(text) => navigator.clipboard.writeText(text)", watch_url(VIDEO_ID))
    page.keyboard.press("ControlOrMeta+V")
    expect(tab.link_input).to_have_value(watch_url(VIDEO_ID))
    tab.choose_bitrate(320)
    with page.expect_response("**/submit") as answer:
        tab.link_input.press("Enter")
    assert answer.value.status == 201
    data = answer.value.json()["data"]
    card = tab.card(VIDEO_ID)
    expect(card).to_have_count(1)
    expect(card).to_have_attribute("data-id", data["id"])
    expect(tab.link_input).to_have_value("")  # ready for the next link

    # Downloading, with a visible percentage on its way up.
    expect(card.locator(".job-status")).to_have_text("Downloading")
    expect(card.locator(".job-percent")).to_have_text(PARTIAL_PERCENT)
    expect(card.locator(".job-title")).to_have_text(VIDEO_ID)  # the title, once known
    expect(card.locator(".job-meta")).to_contain_text("320 kbit/s")
    tab.shot("desktop-downloading")

    # Done: 100 %, a download button built from data.filename, the step list complete.
    expect_ready(tab, VIDEO_ID)
    bar = card.get_by_role("progressbar")
    expect(bar).to_have_attribute("aria-valuenow", "100")
    link = card.get_by_role("link", name=re.compile("Download MP3"))
    expect(link).to_have_attribute("href", f"/download-music/{data['filename']}")
    expect(page.locator("#announcer")).to_have_text(f"{VIDEO_ID} is ready to download.")
    tab.shot("desktop-done")

    seen = tab.states(data["id"])
    assert any(re.fullmatch(r"Downloading ([1-9]|[1-8]\d)%", s) for s in seen), seen
    assert "Converting to MP3 90%" in seen, seen
    assert seen[-1] == "Ready 100%", seen
    percents = [int(s.rsplit(" ", 1)[1].rstrip("%")) for s in seen]
    assert percents == sorted(percents), seen  # never backwards

    # The link works: a click downloads an MP3, and the answer is audio/mpeg.
    with page.expect_download() as download_info:
        link.click()
    download = download_info.value
    assert download.suggested_filename == f"{VIDEO_ID}.mp3"
    head = download.path().read_bytes()[:3]
    assert head == b"ID3" or head[:2] in (b"\xff\xfb", b"\xff\xf3"), head
    fetched = page.request.get(server.url + f"/download-music/{data['filename']}")
    assert fetched.status == 200
    assert fetched.headers["content-type"] == "audio/mpeg"
    assert fetched.body()[:3] == b"ID3"


def test_page_asks_nothing_of_anyone_but_the_service(
    start_server: StartServer, open_tab: OpenTab, stand_in: StandIn
) -> None:
    server = start_server()
    tab = open_tab(server)
    submit(tab, VIDEO_ID)
    expect_ready(tab, VIDEO_ID)
    with tab.page.expect_download():
        tab.card(VIDEO_ID).get_by_role("link", name=re.compile("Download MP3")).click()
    # After a reload the same video is found finished: the card shows it ready at once.
    tab.open()
    assert send(tab, watch_url(VIDEO_ID)).status == 200
    expect_ready(tab, VIDEO_ID)

    kinds = {r.resource_type for r in tab.requests}
    assert {"document", "stylesheet", "script", "fetch", "eventsource"} <= kinds, kinds
    assert tab.outside_requests() == []
    urls = [r.url for r in tab.requests]
    assert all(url.startswith(server.url + "/") for url in urls), urls
    assert tab.policy_violations() == []
    # The headers behind that: the service itself only, no sniffing, no referrer.
    for path in ("/", "/static/app.js", "/static/style.css"):
        headers = tab.page.request.get(server.url + path).headers
        policy = headers["content-security-policy"]
        assert "default-src 'self'" in policy and "http" not in policy, policy
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy, policy
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"


def test_invalid_link_is_explained_then_a_good_one_converts(
    start_server: StartServer, open_tab: OpenTab, stand_in: StandIn
) -> None:
    tab = open_tab(start_server())
    tab.convert.click()
    expect(tab.form_message).to_have_text("Paste the link of a YouTube video first.")
    assert not any(r.url.endswith("/submit") for r in tab.requests)

    assert send(tab, "https://example.com/watch?v=dQw4w9WgXcQ").status == 400
    expect(tab.form_message).to_have_text("That is not a YouTube video link.")
    expect(tab.link_input).to_have_attribute("aria-invalid", "true")
    expect(tab.link_input).to_have_value("https://example.com/watch?v=dQw4w9WgXcQ")  # to correct
    expect(tab.cards).to_have_count(0)
    tab.shot("error-invalid-link")

    submit(tab, VIDEO_ID)
    expect(tab.form_message).to_have_text("")
    expect(tab.link_input).to_have_attribute("aria-invalid", "false")
    expect_ready(tab, VIDEO_ID)


def test_missing_video_is_explained_then_another_converts(
    start_server: StartServer, open_tab: OpenTab, stand_in: StandIn
) -> None:
    stand_in.thumbs[OTHER_ID] = Thumb(status=404)
    tab = open_tab(start_server())
    assert send(tab, watch_url(OTHER_ID)).status == 400
    expect(tab.form_message).to_have_text("This video doesn't exist on YouTube.")
    expect(tab.cards).to_have_count(0)
    tab.shot("error-missing-video")

    submit(tab, VIDEO_ID)
    expect(tab.form_message).to_have_text("")
    expect_ready(tab, VIDEO_ID)


def test_too_long_video_fails_in_words_then_a_shorter_one_converts(
    start_server: StartServer, open_tab: OpenTab, stand_in: StandIn
) -> None:
    stand_in.sources[OTHER_ID] = Source(make_audio(1))
    tab = open_tab(start_server(max_duration=2))  # the stand-in's default audio lasts 3 s
    submit(tab, VIDEO_ID)
    card = tab.card(VIDEO_ID)
    expect(card.locator(".job-status")).to_have_text("Failed", timeout=CONVERSION_TIMEOUT)
    expect(card.locator(".job-error")).to_have_text(
        "This video is longer than this service accepts (2 s)."
    )
    expect(card.get_by_role("link")).to_be_hidden()
    expect(card.get_by_role("button", name="Try again")).to_be_visible()
    expect(tab.page.locator("#announcer")).to_contain_text("failed")
    tab.shot("error-too-long")

    submit(tab, OTHER_ID)
    expect_ready(tab, OTHER_ID)
    expect(tab.cards).to_have_count(2)  # the failure stays in the list, the new one on top
    expect(tab.cards.first).to_have_attribute("data-id", re.compile(f"^{OTHER_ID}-"))


def test_failed_conversion_is_tried_again_from_its_card(
    start_server: StartServer, open_tab: OpenTab, stand_in: StandIn
) -> None:
    stand_in.sources[OTHER_ID] = Source(status=404)  # gone from the source, for now
    tab = open_tab(start_server())
    first_id = submit(tab, OTHER_ID)
    card = tab.card(OTHER_ID)
    expect(card.locator(".job-status")).to_have_text("Failed", timeout=CONVERSION_TIMEOUT)
    expect(card.locator(".job-error")).to_contain_text("can't be downloaded")

    del stand_in.sources[OTHER_ID]  # back again
    with tab.page.expect_response("**/submit") as answer:
        card.get_by_role("button", name="Try again").click()
    assert answer.value.status == 201
    expect(tab.cards).to_have_count(1)  # the same card follows the new attempt
    expect(card).not_to_have_attribute("data-id", first_id)
    expect(card.locator(".job-error")).to_be_hidden()
    expect_ready(tab, OTHER_ID)


def test_rate_limit_is_explained_then_retry_works_once_the_window_passes(
    start_server: StartServer, open_tab: OpenTab, stand_in: StandIn
) -> None:
    server = start_server(rate_limit="2/hour")
    tab = open_tab(server)
    submit(tab, VIDEO_ID)
    submit(tab, VIDEO_ID)  # the same again: already in the list, said so, no second card
    expect(tab.form_message).to_have_text("This video is already in your list below.")
    expect(tab.cards).to_have_count(1)

    assert send(tab, watch_url(OTHER_ID)).status == 429
    expect(tab.form_message).to_have_text(
        re.compile(r"^Too many conversions requested\. Please try again in \d+ seconds\.$")
    )
    expect(tab.cards).to_have_count(1)
    tab.shot("error-rate-limited")

    assert server.reset_rate_limit() >= 1  # what the next window would do
    with tab.page.expect_response("**/submit") as answer:
        tab.convert.click()  # the link is still there: no typing it again
    assert answer.value.status == 201
    expect(tab.form_message).to_have_text("")
    expect_ready(tab, OTHER_ID)


def test_service_unavailable_is_explained(start_server: StartServer, open_tab: OpenTab) -> None:
    """Redis is not there at all (nothing listens on port 1): /submit answers 503."""
    server = start_server(redis_url="redis://127.0.0.1:1/0", with_worker=False)
    tab = open_tab(server)
    assert send(tab, watch_url(VIDEO_ID)).status == 503
    expect(tab.form_message).to_have_text(
        "The service is unavailable right now. Please try again in a moment."
    )
    expect(tab.convert).to_be_enabled()
    tab.shot("error-service-unavailable")


def test_store_outage_then_retry_without_reload(
    start_server: StartServer, open_tab: OpenTab, stand_in: StandIn
) -> None:
    server = start_server()
    tab = open_tab(server)
    fake = server.store.fake_server
    assert fake is not None
    fake.connected = False  # the embedded store stops answering, as a Redis going down
    try:
        assert send(tab, watch_url(VIDEO_ID)).status == 503
        expect(tab.form_message).to_have_text(
            "The service is unavailable right now. Please try again in a moment."
        )
    finally:
        fake.connected = True
    with tab.page.expect_response("**/submit") as answer:
        tab.convert.click()
    assert answer.value.status == 201
    expect(tab.form_message).to_have_text("")
    expect_ready(tab, VIDEO_ID)


def test_network_down_then_retry_without_reload(
    start_server: StartServer, open_tab: OpenTab, stand_in: StandIn
) -> None:
    tab = open_tab(start_server())
    tab.page.context.set_offline(True)
    tab.link_input.fill(watch_url(VIDEO_ID))
    tab.convert.click()
    expect(tab.form_message).to_have_text(
        "The service could not be reached. Check your connection and try again."
    )
    tab.shot("error-network-down")
    tab.page.context.set_offline(False)
    submit(tab, VIDEO_ID)
    expect(tab.form_message).to_have_text("")
    expect_ready(tab, VIDEO_ID)


def test_keyboard_alone(start_server: StartServer, open_tab: OpenTab, stand_in: StandIn) -> None:
    tab = open_tab(start_server())
    page = tab.page
    page.keyboard.press("Tab")
    expect(tab.link_input).to_be_focused()
    page.keyboard.type(watch_url(VIDEO_ID))
    page.keyboard.press("Tab")
    expect(tab.bitrate(192)).to_be_focused()  # the radio group: one stop, on the checked one
    page.keyboard.press("ArrowRight")
    expect(tab.bitrate(256)).to_be_checked()
    page.keyboard.press("Tab")
    expect(tab.convert).to_be_focused()
    with page.expect_response("**/submit") as answer:
        page.keyboard.press("Enter")
    assert answer.value.json()["data"]["bitrate"] == 256
    expect_ready(tab, VIDEO_ID)

    link = tab.card(VIDEO_ID).get_by_role("link", name=re.compile("Download MP3"))
    page.keyboard.press("Tab")
    expect(link).to_be_focused()
    tab.shot("keyboard-download-focused")
    with page.expect_download() as download:
        page.keyboard.press("Enter")
    assert download.value.suggested_filename.endswith(".mp3")


def test_phone_viewport_has_no_horizontal_scroll(
    start_server: StartServer, open_tab: OpenTab, stand_in: StandIn
) -> None:
    tab = open_tab(
        start_server(), width=390, height=844, is_mobile=True, has_touch=True, device_scale_factor=2
    )
    page = tab.page

    def assert_fits() -> None:
        widths = page.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert widths[0] <= widths[1] <= 390, widths
        for target in (tab.link_input, tab.convert, *tab.page.locator(".segments label").all()):
            box = target.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
        for target in (tab.convert, *tab.page.locator(".segments label").all()):
            box = target.bounding_box()
            assert box is not None and box["height"] >= 44, box  # big enough for a thumb

    assert_fits()
    tab.shot("phone-empty")
    tab.link_input.fill("not a link at all, just some words pasted by mistake")
    tab.convert.tap()
    expect(tab.form_message).to_have_text("That is not a YouTube video link.")
    assert_fits()
    tab.shot("phone-error")

    tab.link_input.fill(watch_url(VIDEO_ID))
    tab.convert.tap()
    expect_ready(tab, VIDEO_ID)
    assert_fits()
    download = tab.card(VIDEO_ID).get_by_role("link", name=re.compile("Download MP3"))
    box = download.bounding_box()
    assert box is not None and box["height"] >= 44 and box["x"] + box["width"] <= 390, box
    tab.shot("phone-done")
    page.emulate_media(color_scheme="dark")
    tab.shot("phone-done-dark")


def test_two_conversions_followed_at_once(
    start_server: StartServer, open_tab: OpenTab, stand_in: StandIn
) -> None:
    paced(stand_in, VIDEO_ID)
    paced(stand_in, OTHER_ID)
    tab = open_tab(start_server())
    first = submit(tab, VIDEO_ID)
    second = submit(tab, OTHER_ID)
    expect(tab.cards).to_have_count(2)
    # Both moving at the same moment, each on its own bar.
    tab.page.wait_for_function(
        """() => [...document.querySelectorAll("#jobs > li")].filter((li) =>
             li.querySelector(".job-status").textContent === "Downloading"
             && /^[1-8]?[0-9]%$/.test(li.querySelector(".job-percent").textContent)
             && li.querySelector(".job-percent").textContent !== "0%").length === 2""",
        timeout=CONVERSION_TIMEOUT,
    )
    tab.shot("two-at-once")
    expect_ready(tab, VIDEO_ID)
    expect_ready(tab, OTHER_ID)
    links = [
        tab.card(video_id).get_by_role("link", name=re.compile("Download MP3"))
        for video_id in (VIDEO_ID, OTHER_ID)
    ]
    expect(links[0]).to_have_attribute("href", f"/download-music/{first}")
    expect(links[1]).to_have_attribute("href", f"/download-music/{second}")
    tab.shot("two-done")


def test_more_conversions_than_open_streams_all_finish(
    start_server: StartServer, open_tab: OpenTab, stand_in: StandIn
) -> None:
    """Past four open event streams the page polls (a browser allows six connections a host)."""
    video_ids = [f"video{n:06d}" for n in range(6)]
    for video_id in video_ids:  # each takes a while: all six are still going when sent
        paced(stand_in, video_id, seconds=12, download_seconds=2)
    tab = open_tab(start_server())
    for video_id in video_ids:
        submit(tab, video_id)
    expect(tab.cards).to_have_count(len(video_ids))
    for video_id in video_ids:
        expect_ready(tab, video_id)
    polled = [r.url for r in tab.requests if r.resource_type == "fetch" and "/status/" in r.url]
    assert polled, "the conversions past the fourth were not followed by polling"
