"""A small in-process memo with per-entry expiry, for answers that cannot change.

Redis stays the source of truth; the memo only spares the round trips of the
hottest path (the same finished video asked for again and again), and holds an
answer no longer than it is true, and never longer than a few seconds, so a
Redis that lost its data is believed again quickly. Pure: the clock is passed in.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class HotCache(Generic[K, V]):
    def __init__(self, *, max_entries: int = 4096, max_age: float = 5.0) -> None:
        self._entries: OrderedDict[K, tuple[V, float]] = OrderedDict()
        self._max_entries = max_entries
        self._max_age = max_age

    def get(self, key: K, now: float) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, until = entry
        if now >= until:
            del self._entries[key]
            return None
        return value

    def put(self, key: K, value: V, now: float, *, until: float | None = None) -> None:
        """Remember `value` until `until` (capped at `max_age` from now)."""
        deadline = now + self._max_age if until is None else min(until, now + self._max_age)
        if deadline <= now:
            return
        self._entries[key] = (value, deadline)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def drop(self, key: K) -> None:
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)
