"""Turns what the pipeline tells into status writes: throttled, never backwards."""

from __future__ import annotations

import math
import time

from ytmp3.cache.job_store import JobStore
from ytmp3.jobs.pipeline import Info, Listener
from ytmp3.model.job import JobError, JobState, Status, advance

WRITE_INTERVAL = 0.25  # progress-only writes: four a second at most
DOWNLOAD_SHARE = 90  # the download fills the bar to 90 %, converting the rest


class StatusTracker(Listener):
    def __init__(self, store: JobStore, state: JobState) -> None:
        self._store = store
        self.state = state
        self._last_write = 0.0

    async def move(self, status: Status, **changes: object) -> None:
        self.state = advance(self.state, status, now=time.time(), **changes)
        await self._store.save(self.state)
        self._last_write = time.monotonic()

    async def on_info(self, info: Info) -> None:
        # What a page says is anybody's text: a title may be a number, or carry a lone
        # surrogate (advance() cleans text); no write may fail on it.
        await self.move(
            self.state.status,
            title=_text(info.title),
            artist=_text(info.artist),
            duration=_seconds(info.duration),
        )

    async def on_download(self, fraction: float) -> None:
        progress = int(fraction * DOWNLOAD_SHARE)
        if progress <= self.state.progress:
            return
        if time.monotonic() - self._last_write < WRITE_INTERVAL and fraction < 1:
            return
        await self.move(self.state.status, progress=progress)

    async def on_converting(self) -> None:
        await self.move(Status.CONVERTING, progress=DOWNLOAD_SHARE)

    async def fail(self, error: JobError) -> None:
        await self.move(Status.FAILED, error=error)


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _seconds(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None
