"""What the browser tests share: the real app on a loopback port, and a recorded browser tab."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import ConsoleMessage, Locator, Page, Request, expect

from tests import harness
from ytmp3.cache import keys
from ytmp3.cache.connection import Store
from ytmp3.config import Settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
CONVERSION_TIMEOUT = 30_000  # ms, for expect(): a whole conversion on a busy 2-core runner
PARTIAL_PERCENT = re.compile(r"^([1-9]|[1-8][0-9])%$")  # downloading, neither 0 nor 90+


StartServer = Callable[..., "Server"]
OpenTab = Callable[..., "Tab"]


def watch_url(video_id: str) -> str:
    return f"https://www.youtube.com/watch?v={video_id}&t=42s"


class Server(harness.Server):
    """The app under uvicorn (tests.harness.serve), with what the page tests do to it."""

    def reset_rate_limit(self) -> int:
        """What a new rate-limit window does: forget every count so far."""

        async def forget() -> int:
            redis = self.resources.redis
            found = [key async for key in redis.scan_iter(match=f"{keys.PREFIX}:rate:*")]
            return int(await redis.delete(*found)) if found else 0

        return self.call(forget())


@contextmanager
def serve(
    settings: Settings, *, store: Store | None = None, with_worker: bool = True
) -> Iterator[Server]:
    with harness.serve(settings, store=store, with_worker=with_worker) as server:
        yield Server(app=server.app, store=server.store, url=server.url, loop=server.loop)


@dataclass
class Tab:
    """A page with everything it asked for and everything it complained about."""

    page: Page
    origin: str
    requests: list[Request] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def attach(self) -> None:
        self.page.on("request", lambda request: self.requests.append(request))
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda error: self.page_errors.append(str(error)))

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def outside_requests(self) -> list[str]:
        return [r.url for r in self.requests if _origin(r.url) != self.origin]

    def policy_violations(self) -> list[str]:
        return [
            t for t in self.console_errors if "Content Security Policy" in t or "Trusted Type" in t
        ]

    def open(self) -> None:
        response = self.page.goto(self.origin + "/")
        assert response is not None and response.status == 200

    # The page's parts, as a person finds them: by role and label where there is one.
    @property
    def link_input(self) -> Locator:
        return self.page.get_by_label("YouTube link")

    @property
    def convert(self) -> Locator:
        return self.page.locator("#convert")

    @property
    def form_message(self) -> Locator:
        return self.page.locator("#form-message")

    @property
    def cards(self) -> Locator:
        return self.page.locator("#jobs > li")

    def card(self, video_id: str) -> Locator:
        return self.page.locator(f'#jobs > li[data-id^="{video_id}-"]')

    def bitrate(self, kbits: int) -> Locator:
        return self.page.get_by_role("radio", name=f"{kbits} kbit/s")

    def choose_bitrate(self, kbits: int) -> None:
        """Click the segment's label, as a person does (the radio itself is drawn by it)."""
        self.page.locator(f'label[for="{self.bitrate(kbits).get_attribute("id")}"]').click()
        expect(self.bitrate(kbits)).to_be_checked()

    def shot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(
            path=SCREENSHOTS / f"{name}.png", full_page=True, animations="disabled"
        )

    def record_states(self) -> None:
        """Remember every (status, percent) each card shows, to read back with `states()`.

        Runs through the DevTools protocol, which the page's CSP does not govern.
        """
        self.page.evaluate(
            """() => {
              window.__states = {};
              const list = document.getElementById("jobs");
              const take = () => list.querySelectorAll(":scope > li").forEach((li) => {
                const seen = (window.__states[li.dataset.id] ||= []);
                const now = li.querySelector(".job-status").textContent + " "
                  + li.querySelector(".job-percent").textContent;
                if (seen[seen.length - 1] !== now) seen.push(now);
              });
              new MutationObserver(take).observe(list,
                { subtree: true, childList: true, characterData: true, attributes: true });
            }"""
        )

    def states(self, job_id: str) -> list[str]:
        seen: list[str] = self.page.evaluate("(id) => (window.__states || {})[id] || []", job_id)
        return seen


def _origin(url: str) -> str:
    if url.startswith("blob:"):  # made in the page, named after the page's origin
        url = url.removeprefix("blob:")
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
