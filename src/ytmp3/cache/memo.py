"""Answers read from Redis (or the disk), remembered in-process, renewed ahead of their end.

A Memo joins a HotCache (the remembered answers) with a SingleFlight (one read at a
time per key). A read that finds nothing remembered is shared by everyone asking at
once; an answer in its last second is served and re-read in the background, and what
that re-read finds replaces the answer, or drops it when it is gone or not to be kept.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

from ytmp3.cache.hot import HotCache
from ytmp3.cache.single_flight import SingleFlight

K = TypeVar("K")
V = TypeVar("V")

log = logging.getLogger(__name__)


class Memo(Generic[K, V]):
    def __init__(
        self,
        load: Callable[[K], Coroutine[Any, Any, V | None]],
        *,
        clock: Callable[[], float],
        keep: Callable[[V], bool] = lambda value: True,
        until: Callable[[V], float | None] = lambda value: None,
    ) -> None:
        """`load` reads the truth (None: there is none); `keep` says whether an answer may
        be remembered, `until` when it stops being true (None: it may change any time, so
        the memo's own max age bounds it); both are read on `clock`'s time."""
        self._load = load
        self._clock = clock
        self._keep = keep
        self._until = until
        self._hot: HotCache[K, V] = HotCache()
        self._reading: SingleFlight[K, V | None] = SingleFlight()

    async def get(self, key: K) -> V | None:
        now = self._clock()
        hot = self._hot.get(key, now)
        if hot is not None:
            if self._hot.due(key, now):
                self._reading.start(key, lambda: self._read(key)).add_done_callback(
                    lambda task: self._refreshed(key, task)
                )
            return hot
        return await self._reading.run(key, lambda: self._read(key))

    def remember(self, key: K, value: V) -> None:
        """Remember `value` if it is to be kept (an answer learnt outside `load`)."""
        if self._keep(value):
            self._hot.put(key, value, self._clock(), until=self._until(value))

    def forget(self, key: K) -> None:
        self._hot.drop(key)

    async def _read(self, key: K) -> V | None:
        value = await self._load(key)
        if value is not None and self._keep(value):
            self._hot.put(key, value, self._clock(), until=self._until(value))
        else:  # gone, or replaced by something not to keep: believe that at once
            self._hot.drop(key)
        return value

    def _refreshed(self, key: K, task: asyncio.Task[V | None]) -> None:
        # Only an error is left to see: the read itself kept or dropped the answer.
        if not task.cancelled() and (error := task.exception()) is not None:
            log.debug("refreshing %s failed: %s", key, error)  # it lapses at its deadline
