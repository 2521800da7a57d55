"""The MP3s as objects in a bucket (YTMP3_STORAGE=s3://BUCKET/PREFIX), through obstore:
`PREFIX<job id>.mp3`, put whole by the worker that made it (a multipart upload for a
large one, which S3 shows only once it is complete), read by the API in ranges.

A download is read as a run of short ranged GETs (READ bytes each, the next one fetched
while the last is sent), not one GET held open for as long as the client takes: a slow
client holds no request to the bucket, every request has a short deadline, and memory
stays at two blocks a download."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import obstore
from obstore.exceptions import BaseError
from obstore.store import S3Store

from ytmp3.config import BucketPlace, Settings
from ytmp3.storage import media
from ytmp3.storage.base import StorageError, Stored

# one ranged GET of a download: few requests, and memory flat (two blocks a download)
READ = 1024 * 1024
PART = 8 * 1024 * 1024  # a multipart upload's part (S3's least is 5 MiB)
DELETE_BATCH = 1000  # S3's most per DeleteObjects


def _key(job_id: str) -> str:
    return media.mp3_path(Path(), job_id).name


class Bucket:
    def __init__(self, settings: Settings, place: BucketPlace) -> None:
        secret = settings.aws_secret_access_key
        config: dict[str, str] = {}
        if settings.aws_access_key_id:
            config["access_key_id"] = settings.aws_access_key_id
        if secret is not None:
            config["secret_access_key"] = secret.get_secret_value()
        if settings.aws_region:
            config["region"] = settings.aws_region
        if settings.s3_endpoint:
            config["endpoint"] = settings.s3_endpoint
        self.place = place
        endpoint = settings.s3_endpoint
        self.store = S3Store(
            place.bucket,
            prefix=place.prefix or None,
            # an endpoint of one's own (SeaweedFS, MinIO) answers on paths, not host names
            virtual_hosted_style_request=endpoint is None,
            client_options={
                "allow_http": bool(endpoint and endpoint.startswith("http:")),
                "connect_timeout": timedelta(seconds=5),
                # a block read, a part uploaded, a listing page: each request is short
                "timeout": timedelta(seconds=120),
            },
            # a few quick tries, not obstore's 10 over 3 minutes: a request waits on this
            retry_config={"max_retries": 3, "retry_timeout": timedelta(seconds=10)},
            **config,  # type: ignore[arg-type]
        )

    def local_path(self, job_id: str) -> None:
        return None

    async def stat(self, job_id: str) -> Stored | None:
        try:
            meta = await obstore.head_async(self.store, _key(job_id))
        except FileNotFoundError:
            return None
        except (BaseError, OSError) as exc:
            raise StorageError(str(exc)) from exc
        return Stored(job_id, meta["size"], meta["last_modified"].timestamp(), meta["e_tag"])

    async def put(self, job_id: str, local: Path, *, disposition: str) -> None:
        attributes = {"Content-Type": "audio/mpeg", "Content-Disposition": disposition}
        try:
            await obstore.put_async(
                self.store, _key(job_id), local, attributes=attributes, chunk_size=PART
            )
        except (BaseError, OSError) as exc:
            raise StorageError(str(exc)) from exc
        local.unlink(missing_ok=True)

    async def delete(self, job_ids: list[str]) -> None:
        keys = [_key(job_id) for job_id in job_ids]
        try:
            for at in range(0, len(keys), DELETE_BATCH):
                await obstore.delete_async(self.store, keys[at : at + DELETE_BATCH])
        except FileNotFoundError:
            return
        except (BaseError, OSError) as exc:
            raise StorageError(str(exc)) from exc

    async def listing(self) -> list[Stored]:
        found = []
        try:
            async for batch in obstore.list(self.store, chunk_size=DELETE_BATCH):
                for meta in batch:
                    job_id = media.job_id_of(Path(meta["path"]))
                    if job_id is not None and "/" not in meta["path"]:
                        when = meta["last_modified"].timestamp()
                        found.append(Stored(job_id, meta["size"], when, meta["e_tag"]))
        except (BaseError, OSError) as exc:
            raise StorageError(str(exc)) from exc
        return found

    async def free_bytes(self) -> None:
        return None

    async def open(self, job_id: str, start: int, end: int) -> AsyncIterator[bytes] | None:
        key = _key(job_id)
        try:
            first = await self._block(key, start, min(end, start + READ)) if end > start else b""
        except FileNotFoundError:
            return None
        return self._blocks(key, first, start + len(first), end)

    async def _blocks(self, key: str, first: bytes, at: int, end: int) -> AsyncIterator[bytes]:
        block, pending = first, None
        try:
            while block:
                if at < end:
                    pending = asyncio.ensure_future(self._block(key, at, min(end, at + READ)))
                yield block
                block, pending = (await pending if pending is not None else b""), None
                at += len(block)
        finally:
            if pending is not None:
                pending.cancel()  # the client went away: the read ahead is not wanted

    async def _block(self, key: str, start: int, end: int) -> bytes:
        try:
            return bytes(await obstore.get_range_async(self.store, key, start=start, end=end))
        except FileNotFoundError:
            raise
        except (BaseError, OSError) as exc:
            raise StorageError(str(exc)) from exc

    def chunks(self, job_id: str, size: int) -> Iterator[bytes]:
        key = _key(job_id)
        for at in range(0, size, READ):
            yield bytes(obstore.get_range(self.store, key, start=at, end=min(size, at + READ)))

    async def presign(self, job_id: str, seconds: int) -> str:
        try:
            return await obstore.sign_async(
                self.store, "GET", _key(job_id), timedelta(seconds=seconds)
            )
        except (BaseError, OSError) as exc:
            raise StorageError(str(exc)) from exc

    async def close(self) -> None:
        return None
