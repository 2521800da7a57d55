"""The app factory: one FastAPI app whose lifespan owns the Redis pool and the HTTP client."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from ytmp3 import __version__
from ytmp3.api import errors
from ytmp3.api.deps import Resources
from ytmp3.api.middleware import install_middleware
from ytmp3.api.routes import docs, download, health, metrics, page, status, submit
from ytmp3.cache.connection import Store
from ytmp3.cache.job_store import JobStore
from ytmp3.cache.memo import Memo
from ytmp3.cache.probe import VideoProbe
from ytmp3.config import Settings
from ytmp3.storage import media


class _StaticFiles(StaticFiles):
    """Static files with the page's security headers."""

    async def get_response(self, path: str, scope):  # type: ignore[no-untyped-def]
        response = await super().get_response(path, scope)
        response.headers.update(page.SECURITY_HEADERS)
        return response


def create_app(
    settings: Settings,
    *,
    store: Store | None = None,
    beside: Callable[[], Coroutine[Any, Any, None]] | None = None,
) -> FastAPI:
    """The API on `store`; `beside` runs for as long as the app does (ytmp3.serve puts a
    conversion worker there), cancelled when it stops."""
    store = store or Store.from_url(settings.redis_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.media_dir.mkdir(parents=True, exist_ok=True)
        redis = store.connect()
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
        async with httpx.AsyncClient(
            limits=limits,
            follow_redirects=False,
            headers={"User-Agent": f"ytmp3/{__version__} (probe)"},
        ) as http:
            app.state.resources = Resources(
                settings=settings,
                redis=redis,
                http=http,
                jobs=JobStore(redis, settings.result_ttl),
                probe=VideoProbe(
                    redis,
                    http,
                    thumbnail_url=settings.thumbnail_url,
                    exists_ttl=settings.exists_ttl,
                    missing_ttl=settings.missing_ttl,
                    timeout=settings.probe_timeout,
                ),
                mp3s=Memo(
                    functools.partial(media.on_disk, settings.media_dir), clock=time.monotonic
                ),
            )
            worker = asyncio.create_task(beside()) if beside is not None else None
            try:
                yield
            finally:
                if worker is not None:
                    worker.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await worker
                await redis.aclose()

    app = FastAPI(
        title="ytmp3",
        version=__version__,
        summary="Turns a YouTube link into an MP3.",
        lifespan=lifespan,
        # routes/docs.py serves these: the viewers from ytmp3 itself (not FastAPI's CDN),
        # all three after ytmp3's own routes
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    errors.install(app)
    install_middleware(app)
    for router in (
        submit.router(settings),  # first: the busiest route is matched first
        page.router,
        status.router,
        download.router,
        health.router,
        metrics.router,
        docs.router(app),
    ):
        app.include_router(router)
    app.mount("/static", _StaticFiles(directory=page.STATIC_DIR), name="static")
    return app
