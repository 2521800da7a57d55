"""Fixtures of the browser tests: Debian's Chromium through Playwright, one tab per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from playwright.sync_api import Browser, ViewportSize, expect, sync_playwright

from tests.browser.support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    OpenTab,
    Server,
    StartServer,
    Tab,
    serve,
)
from tests.conftest import IN_CI
from ytmp3.cache.connection import Store
from ytmp3.config import Settings

expect.set_options(timeout=10_000)


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the whole folder (a browser download cannot work here)."""
    if not CHROMIUM.exists():
        if IN_CI:
            pytest.fail(f"{CHROMIUM} is required in CI (./scripts/test installs Debian's chromium)")
        pytest.skip(f"no {CHROMIUM}: install Debian's chromium, or run ./scripts/test")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def start_server(make_settings: Callable[..., Settings]) -> Iterator[StartServer]:
    """Serve the real app (embedded store, a real worker inside) with these settings."""
    with ExitStack() as servers:

        def start(
            *, store: Store | None = None, with_worker: bool = True, **overrides: Any
        ) -> Server:
            return servers.enter_context(
                serve(make_settings(**overrides), store=store, with_worker=with_worker)
            )

        yield start


@pytest.fixture
def open_tab(browser: Browser, start_server: StartServer) -> Iterator[OpenTab]:
    """A fresh browser context on a server's page; every request and complaint recorded.

    After the test: nothing went outside the server, no script error, no policy violation.
    """
    tabs: list[Tab] = []

    def open_(server: Server, *, width: int = 1024, height: int = 768, **options: Any) -> Tab:
        context = browser.new_context(
            viewport=ViewportSize(width=width, height=height), accept_downloads=True, **options
        )
        tab = Tab(page=context.new_page(), origin=server.url)
        tab.attach()
        tabs.append(tab)
        tab.open()
        return tab

    yield open_
    for tab in tabs:
        tab.page.context.close()
    for tab in tabs:
        assert tab.outside_requests() == [], "the page asked something other than the service"
        assert tab.page_errors == [], "the page's script failed"
        assert tab.policy_violations() == [], "the page broke its own security policy"
