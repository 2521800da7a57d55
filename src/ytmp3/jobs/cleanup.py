"""Keeps the storage bounded: MP3s whose job expired (files or objects), and stray
partial files of the worker's own media dir, go."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from redis.asyncio import Redis

from ytmp3.cache import disk, keys
from ytmp3.storage import media
from ytmp3.storage.base import Storage

log = logging.getLogger(__name__)


async def sweep_media(
    redis: Redis, storage: Storage, media_dir: Path, *, part_max_age: float, account: bool = False
) -> int:
    """Remove MP3s with no live job and partial files older than `part_max_age`; with
    `account`, set the disk budget's account from what is left (ytmp3.cache.disk)."""
    removed = _sweep_parts(media_dir, part_max_age)
    kept: dict[str, int] = {}
    stale: list[str] = []
    for item in await storage.listing():
        if await redis.exists(keys.job_key(item.job_id)):
            kept[item.job_id] = item.size
        else:
            stale.append(item.job_id)
    if stale:
        await storage.delete(stale)
    if account:
        await disk.reset(redis, kept)
    if removed or stale:
        log.info("cleanup removed %d MP3(s) and %d partial file(s)", len(stale), removed)
    return removed + len(stale)


def _sweep_parts(media_dir: Path, max_age: float) -> int:
    """Partial files older than `max_age` (a live job may be writing a younger one)."""
    removed = 0
    now = time.time()
    for path in media_dir.iterdir() if media_dir.is_dir() else ():
        if not path.name.endswith(media.PART_SUFFIX) or media.job_id_of(path) is None:
            continue
        try:
            if path.is_file() and now - path.stat().st_mtime > max_age:
                path.unlink(missing_ok=True)
                removed += 1
        except FileNotFoundError:
            continue  # its job finished meanwhile
    return removed
