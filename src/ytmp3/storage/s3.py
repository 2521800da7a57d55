"""The MP3s as objects in a bucket (YTMP3_STORAGE=s3://BUCKET/PREFIX), through obstore:
`PREFIX<job id>.mp3`, put whole by the worker that made it (a multipart upload for a
large one, which S3 shows only once it is complete), read by the API in ranges.

A download (or a ZIP's member) is one streamed GET of the range asked, read in CHUNK
pieces as the client takes them (memory flat), within the client's own deadline (a
request's `timeout`): a GET that deadline (or a reset) cuts is taken up again from the
byte it stopped at, so a slow client is served to its end. Streamed, SeaweedFS served
~500 MB/s through the API with its memory flat; ranged GETs of 1 MiB, 168 MB/s; of
4 MiB, ~380 MB/s with the API's memory up 24 MB a download (bench/RESULTS.md, row s3).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import obstore
from obstore.exceptions import BaseError
from obstore.store import S3Store

from ytmp3.config import BucketPlace, Settings
from ytmp3.storage import media
from ytmp3.storage.base import StorageError, Stored

CHUNK = 256 * 1024  # what a streamed GET hands on at a time
RESUMES = 3  # cuts in a row, with no byte between them, before a download gives up
PART = 8 * 1024 * 1024  # a multipart upload's part (S3's least is 5 MiB)
DELETE_BATCH = 1000  # S3's most per DeleteObjects


def _key(job_id: str) -> str:
    return media.mp3_path(Path(), job_id).name


class Bucket:
    def __init__(self, settings: Settings, place: BucketPlace) -> None:
        secret, endpoint = settings.aws_secret_access_key, settings.s3_endpoint
        config: dict[str, str] = {}
        if settings.aws_access_key_id:
            config["access_key_id"] = settings.aws_access_key_id
        if secret is not None:
            config["secret_access_key"] = secret.get_secret_value()
        if settings.aws_region:
            config["region"] = settings.aws_region
        if endpoint:
            config["endpoint"] = endpoint
        self.place = place
        self.store = S3Store(
            place.bucket,
            prefix=place.prefix or None,
            # an endpoint of one's own (SeaweedFS, MinIO) answers on paths, not host names
            virtual_hosted_style_request=endpoint is None,
            client_options={
                "allow_http": bool(endpoint and endpoint.startswith("http:")),
                "connect_timeout": timedelta(seconds=5),
                # each request: a part uploaded, a listing page, a download's stream (taken
                # up again where it stopped when this cuts it)
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
        try:  # asked now: a missing object is known before any header is sent
            result = await self._get(key, start, end) if end > start else None
        except FileNotFoundError:
            return None
        return self._stream(key, result, start, end)

    async def _get(self, key: str, start: int, end: int) -> obstore.GetResult:
        try:
            return await obstore.get_async(self.store, key, options={"range": (start, end)})
        except FileNotFoundError:
            raise
        except (BaseError, OSError) as exc:
            raise StorageError(str(exc)) from exc

    async def _stream(
        self, key: str, result: obstore.GetResult | None, at: int, end: int
    ) -> AsyncIterator[bytes]:
        cuts = 0
        while result is not None:
            try:
                async for chunk in result.stream(min_chunk_size=CHUNK):
                    at, cuts = at + len(chunk), 0
                    yield bytes(chunk)
                return
            except (BaseError, OSError) as exc:
                cuts += 1
                if cuts > RESUMES:
                    raise StorageError(str(exc)) from exc
            result = await self._get(key, at, end) if at < end else None

    def chunks(self, job_id: str, size: int) -> Iterator[bytes]:
        key, at, cuts = _key(job_id), 0, 0
        while at < size:
            try:
                result = obstore.get(self.store, key, options={"range": (at, size)})
                for chunk in result.stream(min_chunk_size=CHUNK):
                    at, cuts = at + len(chunk), 0
                    yield bytes(chunk)
            except (BaseError, OSError) as exc:
                cuts += 1
                if cuts > RESUMES:
                    raise StorageError(str(exc)) from exc

    async def presign(self, job_id: str, seconds: int) -> str:
        try:
            return await obstore.sign_async(
                self.store, "GET", _key(job_id), timedelta(seconds=seconds)
            )
        except (BaseError, OSError) as exc:
            raise StorageError(str(exc)) from exc

    async def close(self) -> None:
        return None
