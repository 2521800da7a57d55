"""What the browser tests share: the real app on a loopback port, and a recorded browser tab."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import ConsoleMessage, Locator, Page, Request, expect

from ytmp3.api.app import create_app
from ytmp3.api.deps import Resources
from ytmp3.cache import keys
from ytmp3.cache.connection import Store
from ytmp3.config import Settings
from ytmp3.serve import create_app_with_worker

T = TypeVar("T")

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
START_TIMEOUT = 15.0
CONVERSION_TIMEOUT = 30_000  # ms, for expect(): a whole conversion on a busy 2-core runner
PARTIAL_PERCENT = re.compile(r"^([1-9]|[1-8][0-9])%$")  # downloading, neither 0 nor 90+


StartServer = Callable[..., "Server"]
OpenTab = Callable[..., "Tab"]


def watch_url(video_id: str) -> str:
    return f"https://www.youtube.com/watch?v={video_id}&t=42s"


@dataclass
class Server:
    """One app served by uvicorn on 127.0.0.1, in a thread with its own event loop."""

    app: FastAPI
    store: Store
    url: str
    loop: asyncio.AbstractEventLoop

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run `coro` on the server's loop (where its Redis pool lives) and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def resources(self) -> Resources:
        resources: Resources = self.app.state.resources
        return resources

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
    """The real app, lifespan and all, answering HTTP on a free loopback port."""
    store = store or Store.from_url(settings.redis_url)
    app = (
        create_app_with_worker(settings, store=store)
        if with_worker
        else create_app(settings, store=store)
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))  # bound here, so no other process can take the port meanwhile
    port: int = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="on",
        # No logging setup of uvicorn's own: it would change global loggers for later tests.
        log_config=None,
        log_level=None,
        ws="none",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    loops: list[asyncio.AbstractEventLoop] = []

    async def main() -> None:
        loops.append(asyncio.get_running_loop())
        await server.serve(sockets=[sock])

    thread = threading.Thread(
        target=asyncio.run, args=(main(),), name=f"uvicorn-{port}", daemon=True
    )
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, server, thread)
        yield Server(app=app, store=store, url=url, loop=loops[0])
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
    assert not thread.is_alive(), "uvicorn did not stop within 10 s"


def _wait_until_up(url: str, server: uvicorn.Server, thread: threading.Thread) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    with httpx.Client(base_url=url, timeout=2.0, trust_env=False) as client:
        while True:
            if not thread.is_alive():
                raise RuntimeError("uvicorn stopped while starting (see the log above)")
            if server.started:
                try:
                    if client.get("/healthz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer within {START_TIMEOUT} s")
            time.sleep(0.02)


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
