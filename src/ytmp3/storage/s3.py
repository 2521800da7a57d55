"""The MP3s as objects in a bucket (YTMP3_STORAGE=s3://BUCKET/PREFIX), through obstore:
`PREFIX<job id>.mp3`, put whole by the worker that made it (a multipart upload for a
large one, which S3 shows only once it is complete), read by the API in ranges."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import obstore
from obstore.exceptions import BaseError
from obstore.store import S3Store

from ytmp3.config import BucketPlace, Settings
from ytmp3.storage import media
from ytmp3.storage.base import StorageError, Stored

# what one read hands on: large enough for few hops, small enough for flat memory
CHUNK = 256 * 1024
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
                "timeout": timedelta(seconds=300),
            },
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
        try:
            result = await obstore.get_async(
                self.store, _key(job_id), options={"range": (start, end)}
            )
        except FileNotFoundError:
            return None
        except (BaseError, OSError) as exc:
            raise StorageError(str(exc)) from exc
        return _bytes(result.stream(min_chunk_size=CHUNK))

    def chunks(self, job_id: str, size: int) -> Iterator[bytes]:
        result = obstore.get(self.store, _key(job_id))
        for chunk in result.stream(min_chunk_size=CHUNK):
            yield bytes(chunk)

    async def presign(self, job_id: str, seconds: int) -> str:
        try:
            return await obstore.sign_async(
                self.store, "GET", _key(job_id), timedelta(seconds=seconds)
            )
        except (BaseError, OSError) as exc:
            raise StorageError(str(exc)) from exc

    async def close(self) -> None:
        return None


async def _bytes(stream: AsyncIterable[Any]) -> AsyncIterator[bytes]:
    async for chunk in stream:
        yield bytes(chunk)
