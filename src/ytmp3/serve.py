"""`ytmp3 serve`: the API with a conversion worker inside the same process.

Above both the API and the worker (ytmp3.api never imports the worker's modules): this
is where the one-command set-up joins them, on one store.
"""

from __future__ import annotations

from fastapi import FastAPI

from ytmp3.api.app import create_app
from ytmp3.cache.connection import Store
from ytmp3.config import Settings
from ytmp3.jobs.worker import run_worker


def create_app_with_worker(settings: Settings, *, store: Store | None = None) -> FastAPI:
    shared = store or Store.from_url(settings.redis_url)
    return create_app(
        settings,
        store=shared,
        beside=lambda: run_worker(settings, shared, handle_signals=False),
    )
