"""The MP3s as files in YTMP3_MEDIA_DIR (names and rules: ytmp3.storage.media)."""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from ytmp3.storage import media
from ytmp3.storage.base import Stored


class Files:
    def __init__(self, media_dir: Path) -> None:
        self.media_dir = media_dir

    def local_path(self, job_id: str) -> Path:
        return media.mp3_path(self.media_dir, job_id)

    async def stat(self, job_id: str) -> Stored | None:
        return _stored(job_id, self.local_path(job_id))

    async def put(self, job_id: str, local: Path, *, disposition: str) -> None:
        # a rename in one directory: the file appears whole (the server sends the name)
        os.replace(local, self.local_path(job_id))

    async def delete(self, job_ids: list[str]) -> None:
        for job_id in job_ids:
            self.local_path(job_id).unlink(missing_ok=True)

    async def listing(self) -> list[Stored]:
        found = []
        for path in self.media_dir.iterdir() if self.media_dir.is_dir() else ():
            job_id = media.job_id_of(path)
            if job_id is not None and not path.name.endswith(media.PART_SUFFIX):
                item = _stored(job_id, path)
                if item is not None:
                    found.append(item)
        return found

    async def free_bytes(self) -> int:
        stats = os.statvfs(self.media_dir)
        return stats.f_bavail * stats.f_frsize

    async def open(self, job_id: str, start: int, end: int) -> AsyncIterator[bytes] | None:
        raise NotImplementedError("files are sent by the file server (local_path)")

    def chunks(self, job_id: str, size: int) -> Iterator[bytes]:
        raise NotImplementedError("files go into a ZIP by their path (local_path)")

    async def presign(self, job_id: str, seconds: int) -> None:
        return None

    async def close(self) -> None:
        return None


def _stored(job_id: str, path: Path) -> Stored | None:
    try:
        found = path.stat()
    except OSError:
        return None
    if not stat.S_ISREG(found.st_mode):
        return None
    return Stored(job_id, found.st_size, found.st_mtime)
