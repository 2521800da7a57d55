"""The app factory: one FastAPI app whose lifespan owns the Redis pool and the HTTP client."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import httpx
from arq.connections import ArqRedis
from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from ytmp3 import __version__
from ytmp3.access.gate import Gate
from ytmp3.access.keys import FileKeys, KeyStore, RedisKeys, key_file
from ytmp3.access.usage import Usage
from ytmp3.api import errors
from ytmp3.api.auth import BEARER_SCHEME, require_access
from ytmp3.api.deps import Resources
from ytmp3.api.middleware import install_middleware
from ytmp3.api.routes import (
    docs,
    download,
    health,
    metrics,
    page,
    playlists,
    session,
    status,
    submit,
)
from ytmp3.api.stream_slots import StreamSlots
from ytmp3.cache.connection import Store
from ytmp3.cache.events import EventHub
from ytmp3.cache.job_store import JobStore
from ytmp3.cache.memo import Memo
from ytmp3.cache.probe import VideoProbe
from ytmp3.config import Settings
from ytmp3.storage import open_storage
from ytmp3.storage.base import present

log = logging.getLogger(__name__)


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
        if settings.bucket is None:
            settings.media_dir.mkdir(parents=True, exist_ok=True)
        storage = open_storage(settings)
        redis = store.connect()
        events = EventHub(redis)
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
                storage=storage,
                mp3s=Memo(functools.partial(present, storage), clock=time.monotonic),
                events=events,
                streams=StreamSlots(settings.stream_bound),
            )
            if settings.auth == "off" and not settings.loopback_only:
                log.warning(
                    "the API listens on %s with YTMP3_AUTH=off: anyone who can reach it may "
                    "convert and download; set YTMP3_AUTH=keys (README: Access)",
                    settings.host,
                )
            if settings.auth == "keys":
                keys = open_keys(settings, store, redis)
                app.state.resources.keys = keys
                app.state.resources.gate = Gate(keys, redis, settings.auth_failures)
                app.state.resources.usage = Usage(keys)
                counting = asyncio.create_task(app.state.resources.usage.run())
            worker = asyncio.create_task(beside()) if beside is not None else None
            try:
                yield
            finally:
                if worker is not None:
                    worker.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await worker
                if app.state.resources.keys is not None:
                    counting.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await counting
                    await app.state.resources.keys.close()
                await events.aclose()  # open streams end with a `retry:` hint
                await redis.aclose()
                await storage.close()

    app = FastAPI(
        title="ytmp3",
        version=__version__,
        summary="Turns a YouTube link into an MP3.",
        lifespan=lifespan,
        # routes/docs.py serves these: the viewers from ytmp3 itself (not FastAPI's CDN),
        # all three after ytmp3's own routes, and asking for a key like the rest
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    errors.install(app)
    install_middleware(app)
    # Every route but health, the page's shell and sign-in asks for a key (YTMP3_AUTH=keys).
    protected = [Depends(require_access)] if settings.auth == "keys" else []
    for router, guard in (
        (submit.router(settings), protected),  # first: the busiest route is matched first
        (playlists.router(settings), protected),
        (page.router, []),
        (status.router, protected),
        (download.router, protected),
        (health.router, []),
        (session.router, []),
        (metrics.router, protected),
        (docs.router(app), protected),
    ):
        app.include_router(router, dependencies=guard)
    app.mount("/static", _StaticFiles(directory=page.STATIC_DIR), name="static")
    if settings.auth == "keys":
        _document_keys(app)
    return app


def _document_keys(app: FastAPI) -> None:
    """The bearer key in /openapi.json (FastAPI's documented way to extend the document),
    so Swagger UI shows its "Authorize" button."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = (
                BEARER_SCHEME
            )
            schema["security"] = [{"bearer": []}]
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]


def open_keys(settings: Settings, store: Store, redis: ArqRedis) -> KeyStore:
    """Keys live beside the data: Redis, or a file under YTMP3_DATA_DIR in embedded mode."""
    if store.embedded:
        return FileKeys(key_file(settings.data_dir))
    return RedisKeys(redis)
