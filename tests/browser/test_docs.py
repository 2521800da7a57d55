"""Swagger UI and ReDoc draw the API's description in Chromium from the service alone,
within their own security policy."""

from __future__ import annotations

from playwright.sync_api import Browser, Request, expect

from tests.browser.support import OpenTab, StartServer

# ReDoc's footer always asks for its maker's logo; the page's CSP (img-src 'self' data:)
# refuses it before it leaves, and ReDoc then leaves the logo out (its onError).
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def test_swagger_ui_renders_with_nothing_from_elsewhere(
    start_server: StartServer, open_tab: OpenTab
) -> None:
    server = start_server(with_worker=False)
    tab = open_tab(server)
    tab.page.goto(server.url + "/docs")
    expect(tab.page.locator(".swagger-ui .info .title")).to_contain_text("ytmp3")
    expect(tab.page.locator(".opblock-summary-path", has_text="/submit")).to_be_visible()
    tab.page.locator(".opblock-summary-control", has_text="/submit").click()
    expect(tab.page.get_by_role("button", name="Try it out")).to_be_visible()
    # the open_tab fixture then checks: no request outside, no script error, no CSP breach


def test_redoc_renders_and_nothing_leaves_the_page(
    start_server: StartServer, browser: Browser
) -> None:
    server = start_server(with_worker=False)
    context = browser.new_context()
    page = context.new_page()
    asked: list[Request] = []
    failed: list[str] = []
    errors: list[str] = []
    page.on("request", lambda request: asked.append(request))
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(server.url + "/redoc")
        expect(page.locator("h1", has_text="ytmp3")).to_be_visible()
        expect(page.get_by_text("/submit").first).to_be_attached()
        expect(page.get_by_alt_text("redocly logo")).to_have_count(0)  # dropped when refused
    finally:
        context.close()
    outside = [
        r.url
        for r in asked
        if not r.url.removeprefix("blob:").startswith(server.url)  # blob: the search worker
    ]
    assert set(outside) <= {REDOC_LOGO}, outside
    assert all(url in failed for url in outside)  # refused by the CSP: never fetched
    assert all(REDOC_LOGO in e or "logo-mini.svg" in e for e in errors), errors
