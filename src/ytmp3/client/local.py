"""The service inside this process: the API and a worker on the embedded store, reached
through an in-process transport. No port is opened; the MP3s are made in a temporary
folder that goes away with it, and the worker's processes stop with it."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from ytmp3.api.app import create_app
from ytmp3.cache.connection import Store
from ytmp3.client.asgi_stream import StreamingASGITransport
from ytmp3.config import Settings
from ytmp3.jobs.worker import run_worker

BASE_URL = "http://ytmp3.local"


def local_settings(settings: Settings, media_dir: Path) -> Settings:
    """The settings as given, for a service that is this process's alone: its own store
    (never a Redis shared with other workers, which would write their MP3s elsewhere),
    its own media folder, and no limit on its one client (no rate limit, no bound on
    the conversions it has waiting)."""
    values = settings.model_dump()
    values.update(redis_url=None, media_dir=media_dir, rate_limit="0", max_pending=0)
    # its MP3s are files in that folder, whatever bucket the servers use
    values.update(storage="file", s3_presign=False)
    # and no key asked of it: YTMP3_AUTH is for a server others reach
    values.update(auth="off")
    return Settings(**values, _env_file=None)


@asynccontextmanager
async def local_service(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    with tempfile.TemporaryDirectory(prefix="ytmp3-get-") as media:
        own = local_settings(settings, Path(media))
        store = Store.from_url(None)
        # as ytmp3.serve joins them (a module of this layer, so not imported from here)
        app = create_app(
            own, store=store, beside=lambda: run_worker(own, store, handle_signals=False)
        )
        # the lifespan starts the worker and, on the way out (Ctrl-C too), stops it and
        # its download processes
        quiet = False
        try:
            async with app.router.lifespan_context(app):
                transport = StreamingASGITransport(app)
                async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
                    try:
                        yield client
                    except BaseException:
                        # Stopped early (Ctrl-C): the worker would tell of each job it
                        # cuts, ARQ with a traceback, as a wall of text about what the
                        # person just did. Only critical lines while the service winds down.
                        logging.disable(logging.ERROR)
                        quiet = True
                        raise
        finally:
            if quiet:
                logging.disable(logging.NOTSET)
