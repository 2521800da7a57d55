"""What the rest of ytmp3 asks of the place finished MP3s are kept: a media dir
(ytmp3.storage.files) or a bucket (ytmp3.storage.s3). Keys come from job ids, never
from user input; an MP3 appears there whole or not at all."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Stored:
    """A finished MP3 as the storage tells it."""

    job_id: str
    size: int
    modified: float  # seconds since the epoch
    etag: str | None = None  # the storage's own (a file's is the file server's)


class StorageError(Exception):
    """The storage could not be reached or refused (not: the MP3 is not there)."""


class Storage(Protocol):
    async def stat(self, job_id: str) -> Stored | None:
        """The job's MP3, or None when it is not there (yet, or any more)."""

    def local_path(self, job_id: str) -> Path | None:
        """Where the MP3 is on this machine's disk, when it is (the file server sends
        it); None for a bucket."""

    async def put(self, job_id: str, local: Path, *, disposition: str) -> None:
        """The finished MP3 at `local` becomes the job's, whole (the local file goes)."""

    async def delete(self, job_ids: list[str]) -> None:
        """Remove these jobs' MP3s (those already gone are no error)."""

    async def listing(self) -> list[Stored]:
        """Every finished MP3 there."""

    async def free_bytes(self) -> int | None:
        """Room left, for YTMP3_MIN_FREE_DISK; None: no such limit (a bucket)."""

    async def open(self, job_id: str, start: int, end: int) -> AsyncIterator[bytes] | None:
        """Bytes [start, end) of the MP3, already asked for (None: it is gone)."""

    def chunks(self, job_id: str, size: int) -> Iterator[bytes]:
        """The whole MP3, read as iterated (from a thread: it blocks)."""

    async def presign(self, job_id: str, seconds: int) -> str | None:
        """A URL anyone may GET the MP3 from for `seconds`; None: not offered."""

    async def close(self) -> None: ...


async def present(storage: Storage, job_id: str) -> bool | None:
    """True when the job's MP3 is there, else None: for a Memo, which keeps only the
    first (one that is there is looked at again within seconds, not on every ask)."""
    return True if await storage.stat(job_id) is not None else None
