"""Does a video exist? Ask YouTube's thumbnail host once, then remember the answer."""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx
from redis.asyncio import Redis

from ytmp3.cache import keys
from ytmp3.cache.memo import Memo
from ytmp3.cache.single_flight import SingleFlight
from ytmp3.metrics import PROBE_CACHE_HITS, PROBE_CACHE_MISSES, PROBE_SECONDS

EXISTS, MISSING = b"1", b"0"
_LOCK_POLL = 0.02
BODY_MAX = 64 * 1024  # a thumbnail's size: YouTube's 0.jpg is ~10-40 KB


class UpstreamError(Exception):
    """The probe got no usable answer (timeout, 5xx, network): nothing is cached."""


class VideoProbe:
    """Cache-first existence check, probing each video at most once at a time.

    In one process concurrent checks share one task; across processes a
    short Redis lock lets one probe while the others wait for its answer.
    """

    def __init__(
        self,
        redis: Redis,
        http: httpx.AsyncClient,
        *,
        thumbnail_url: str,
        exists_ttl: int,
        missing_ttl: int,
        timeout: float,
    ) -> None:
        self._redis = redis
        self._http = http
        self._thumbnail_url = thumbnail_url
        self._exists_ttl = exists_ttl
        self._missing_ttl = missing_ttl
        self._timeout = timeout
        self._probing: SingleFlight[str, bool] = SingleFlight()
        self._known: Memo[str, bool] = Memo(self._read, clock=time.monotonic)

    async def cached(self, video_id: str) -> bool | None:
        return await self._known.get(video_id)

    async def _read(self, video_id: str) -> bool | None:
        raw = await self._redis.get(keys.probe_key(video_id))
        return None if raw is None else raw == EXISTS

    async def exists(self, video_id: str) -> bool:
        known = await self.cached(video_id)
        if known is not None:
            PROBE_CACHE_HITS.inc()
            return known
        PROBE_CACHE_MISSES.inc()
        return await self._probing.run(video_id, lambda: self._probe_once(video_id))

    async def _probe_once(self, video_id: str) -> bool:
        lock = keys.probe_lock_key(video_id)
        lock_ms = int((self._timeout + 1) * 1000)
        deadline = time.monotonic() + self._timeout + 1
        while not await self._redis.set(lock, b"1", nx=True, px=lock_ms):
            known = await self.cached(video_id)
            if known is not None:
                return known
            if time.monotonic() > deadline:
                break  # the holder died or hangs: probe ourselves
            await asyncio.sleep(_LOCK_POLL)
        try:
            # the previous holder may have answered just before we got the lock
            known = await self.cached(video_id)
            if known is not None:
                return known
            started = time.perf_counter()
            try:
                found = await self._ask_upstream(video_id)
            except UpstreamError:
                PROBE_SECONDS.labels("error").observe(time.perf_counter() - started)
                raise
            outcome = "exists" if found else "missing"
            PROBE_SECONDS.labels(outcome).observe(time.perf_counter() - started)
            await self._redis.set(
                keys.probe_key(video_id),
                EXISTS if found else MISSING,
                ex=self._exists_ttl if found else self._missing_ttl,
            )
            return found
        finally:
            await self._redis.delete(lock)

    async def _ask_upstream(self, video_id: str) -> bool:
        url = self._thumbnail_url.format(video_id=video_id)
        # HEAD would do, but the thumbnail host answers GET for sure. The timeout is a
        # deadline for the whole probe, not only for each read: a host that sends a byte
        # now and then would otherwise hold the request (and a graceful stop) for ever.
        deadline = asyncio.get_running_loop().time() + self._timeout
        request = self._http.build_request("GET", url, timeout=self._timeout)
        try:
            async with asyncio.timeout_at(deadline):
                # a redirect is an answer of its own (an error), never followed
                response = await self._http.send(request, stream=True, follow_redirects=False)
        except TimeoutError as exc:
            raise UpstreamError("thumbnail probe timed out") from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(f"thumbnail probe failed: {exc.__class__.__name__}") from exc
        try:
            # Only the status counts. A thumbnail-sized body is read, so the connection
            # can serve the next probe; a larger or slower one is dropped with it.
            with contextlib.suppress(TimeoutError, httpx.HTTPError):
                async with asyncio.timeout_at(deadline):
                    await _drain(response, BODY_MAX)
        finally:
            await response.aclose()
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise UpstreamError(f"thumbnail probe answered HTTP {response.status_code}")


async def _drain(response: httpx.Response, limit: int) -> None:
    """Read the body if it is known to be at most `limit` bytes; leave it otherwise."""
    length = response.headers.get("content-length", "")
    if not length.isdigit() or int(length) > limit:
        return
    read = 0
    async for chunk in response.aiter_raw():
        read += len(chunk)
        if read > limit:
            return
