"""The disk budget's one decision: which finished MP3s to remove so a new one fits. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Stored:
    job_id: str
    size: int
    last_used: float  # when it was last downloaded (or finished, before any download)
    busy: bool = False  # being streamed to a client right now: it finishes first


def evictions(stored: Iterable[Stored], *, used: int, incoming: int, budget: int) -> list[str]:
    """Least recently used first, never a busy one, until `incoming` fits in `budget`.

    Returns what to remove; when even removing every idle file would not be enough it
    removes them all (the caller then admits the file one over budget, never more).
    """
    excess = used + incoming - budget
    chosen: list[str] = []
    for item in sorted(stored, key=lambda s: s.last_used):
        if excess <= 0:
            break
        if item.busy:
            continue
        chosen.append(item.job_id)
        excess -= item.size
    return chosen


def full(*, used: int, budget: int | None, free: int | None, min_free: int, evictable: int) -> bool:
    """No room for a new conversion: the disk is nearly full (`free` None: a bucket, no
    such limit), or the budget is spent and nothing idle is left to remove."""
    if free is not None and free < min_free:
        return True
    return budget is not None and used >= budget and evictable == 0
