"""A small in-process memo with per-entry expiry, for answers that cannot change.

Redis stays the source of truth; the memo only spares the round trips of the
hottest path (the same finished video asked for again and again), and holds an
answer no longer than it is true, and never longer than `max_age` after it was
read, so a Redis that lost its data is believed again within `max_age`.

Refresh ahead: in an entry's last `refresh_ahead` seconds, `due()` says yes to
one caller, which re-reads the truth and puts it back (or drops it). Under
steady load an entry is renewed before it lapses, instead of lapsing under
every request in flight at once (which then all went to Redis together).
Pure: the clock is passed in.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Generic, NamedTuple, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class _Entry(NamedTuple, Generic[V]):
    value: V
    until: float
    refresh_at: float  # inf: not to be refreshed (at its own end, or a refresh is under way)


class HotCache(Generic[K, V]):
    def __init__(
        self, *, max_entries: int = 4096, max_age: float = 5.0, refresh_ahead: float = 1.0
    ) -> None:
        self._entries: OrderedDict[K, _Entry[V]] = OrderedDict()
        self._max_entries = max_entries
        self._max_age = max_age
        self._refresh_ahead = min(refresh_ahead, max_age)

    def get(self, key: K, now: float) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if now >= entry.until:
            del self._entries[key]
            return None
        return entry.value

    def due(self, key: K, now: float) -> bool:
        """True to the first caller in the entry's last seconds: that caller refreshes it."""
        entry = self._entries.get(key)
        if entry is None or now < entry.refresh_at or now >= entry.until:
            return False
        self._entries[key] = entry._replace(refresh_at=math.inf)  # told once
        return True

    def put(self, key: K, value: V, now: float, *, until: float | None = None) -> None:
        """Remember `value` until `until` (capped at `max_age` from now)."""
        aged = now + self._max_age
        if until is None or until > aged:
            deadline, refresh_at = aged, aged - self._refresh_ahead
        else:
            # the answer ends at its own deadline: reading it again would not extend it
            deadline, refresh_at = until, math.inf
        if deadline <= now:
            return
        self._entries[key] = _Entry(value, deadline, refresh_at)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def drop(self, key: K) -> None:
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)
