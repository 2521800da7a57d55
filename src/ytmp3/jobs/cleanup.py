"""Keeps the media dir bounded: files whose job expired, and stray partial files, go."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from redis.asyncio import Redis

from ytmp3.cache import disk, keys
from ytmp3.storage import media

log = logging.getLogger(__name__)


async def sweep_media(
    redis: Redis, media_dir: Path, *, part_max_age: float, account: bool = False
) -> int:
    """Remove MP3s with no live job and partial files older than `part_max_age`; with
    `account`, set the disk budget's account from what is left (ytmp3.cache.disk)."""
    removed = 0
    now = time.time()
    kept: dict[str, int] = {}
    for path in media_dir.iterdir() if media_dir.is_dir() else ():
        job_id = media.job_id_of(path)
        if job_id is None or not path.is_file():
            continue
        if path.name.endswith(media.PART_SUFFIX):
            # A live job may be writing it: only old ones are strays.
            stale = now - path.stat().st_mtime > part_max_age
        else:
            stale = not await redis.exists(keys.job_key(job_id))
        if stale:
            path.unlink(missing_ok=True)
            removed += 1
        elif not path.name.endswith(media.PART_SUFFIX):
            kept[job_id] = path.stat().st_size
    if account:
        await disk.reset(redis, kept)
    if removed:
        log.info("cleanup removed %d file(s) from %s", removed, media_dir)
    return removed
