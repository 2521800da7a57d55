"""One read at a time per key: concurrent callers share one task instead of each asking."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    def __init__(self) -> None:
        self._tasks: dict[K, asyncio.Task[V]] = {}

    def start(self, key: K, read: Callable[[], Coroutine[Any, Any, V]]) -> asyncio.Task[V]:
        """The task reading `key`: the one under way, or a new one running `read()`."""
        task = self._tasks.get(key)
        if task is None:
            task = asyncio.create_task(read())
            self._tasks[key] = task
            task.add_done_callback(lambda _: self._tasks.pop(key, None))
        return task

    async def run(self, key: K, read: Callable[[], Coroutine[Any, Any, V]]) -> V:
        # shield: one caller going away must not cancel the read the others wait on
        return await asyncio.shield(self.start(key, read))
