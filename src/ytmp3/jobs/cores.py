"""How many cores each of a worker's conversions may use: its share of YTMP3_MAX_JOBS."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ytmp3.jobs.encode import plan


class CoreShare:
    """Counts the conversions running in one worker. Alone, a conversion may use all
    `max_jobs` cores (one slot's core each); with others, an equal share. Asked again
    as a conversion goes, so cores lent to one are handed back when others start.

    A bulk conversion (a playlist's entry) takes one core and does not count against
    the others: it yields them the CPU (jobs/priority.py)."""

    def __init__(self, max_jobs: int, *, parallel: bool = True) -> None:
        self.max_jobs = max_jobs
        self.parallel = parallel
        self.running = 0  # not bulk

    @contextmanager
    def conversion(self, *, bulk: bool = False) -> Iterator[Callable[[], int]]:
        """Count one conversion while inside; gives what to ask for its share."""
        if bulk:
            yield lambda: 1
            return
        self.running += 1
        try:
            yield self.share
        finally:
            self.running -= 1

    def share(self) -> int:
        if not self.parallel:
            return 1
        return plan.share(self.max_jobs, self.running)
