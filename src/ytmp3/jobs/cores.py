"""How many conversions a worker runs at once, and how many cores each may use: its
share of YTMP3_MAX_JOBS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

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


# With YTMP3_SPARE_SLOT, ARQ takes this many jobs more than YTMP3_MAX_JOBS, for single
# videos beside a playlist's entries (jobs/worker.py).
SPARE_SLOTS = 1


class Slots:
    """YTMP3_MAX_JOBS conversions at once, and SPARE_SLOTS more only for single videos
    while a playlist's entries run: a single video never waits for bulk work, and a worker
    with no playlist still runs at most YTMP3_MAX_JOBS, as the setting says. (A job ARQ
    hands this worker beyond them goes to another worker with room: jobs/convert.py.)"""

    def __init__(self, max_jobs: int) -> None:
        self.max_jobs = max_jobs
        self.running = 0
        self.bulk = 0
        self._changed = asyncio.Condition()

    def free(self, *, bulk: bool = False) -> bool:
        """Whether a conversion would start at once."""
        if self.running < self.max_jobs:
            return True
        return not bulk and self.bulk > 0 and self.running < self.max_jobs + SPARE_SLOTS

    @asynccontextmanager
    async def slot(self, *, bulk: bool = False) -> AsyncIterator[None]:
        """Wait for a slot, and hold it while inside."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.free(bulk=bulk))
            self.running += 1
            self.bulk += bulk
        try:
            yield
        finally:
            async with self._changed:
                self.running -= 1
                self.bulk -= bulk
                self._changed.notify_all()
