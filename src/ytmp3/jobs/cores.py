"""How many cores each of a worker's conversions may use: its share of YTMP3_MAX_JOBS."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from ytmp3.jobs.encode import plan

Waiting = Callable[[], Awaitable[int]]  # conversions queued, ready, that no worker took yet

# The longest a conversion's first choice waits: it reads the queue at the end, so a job
# submitted with it is seen however long YTMP3_POLL_DELAY is; one alone never waits long.
MAX_SETTLE = 0.1


def settle(poll_delay: float) -> float:
    """How long after its start a conversion's first choice waits: midway between two of
    the worker's polls (a job taken at a poll is counted ms later, and until then is
    neither counted nor waiting in the queue), at most MAX_SETTLE."""
    return min(1.5 * poll_delay, MAX_SETTLE)


class Share:
    """One conversion's share: called, the cores it may use now; `first()`, the cores to
    choose its encoder with."""

    def __init__(self, cores: CoreShare, started: float, waiting: Waiting | None) -> None:
        self._cores = cores
        self._started = started  # time.monotonic() when the conversion started
        self._waiting = waiting

    def __call__(self) -> int:
        return self._cores.share()

    async def first(self) -> int:
        """The share once conversions about to start are known. Two submitted together
        reach ARQ's queue some ms apart, and the worker takes the second in its next poll:
        the first waits until `settle` seconds from its start (or until another starts),
        then counts the jobs still waiting in the queue as about to start. The encoder
        chosen stays (a parallel one hands cores back, one ffmpeg never takes more), and
        the split path costs ~10% more CPU: chosen alone a moment before another starts,
        the pair pays for it. (A job waiting may go to another worker, or be a playlist's
        read: then this conversion has one ffmpeg, as before parallel encoding.)"""
        cores = self._cores
        while cores.share() > 1:
            left = self._started + cores.settle - time.monotonic()
            if left <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(cores.arrival().wait(), left)
        share = cores.share()
        if share <= 1 or self._waiting is None:
            return share
        return plan.share(cores.max_jobs, cores.running + await self._waiting())


class CoreShare:
    """Counts the conversions running in one worker. Alone, a conversion may use all
    `max_jobs` cores (one slot's core each); with others, an equal share. Asked again
    as a conversion goes, so cores lent to one are handed back when others start.

    A bulk conversion (a playlist's entry) takes one core and does not count against
    the others: it yields them the CPU (jobs/priority.py)."""

    def __init__(self, max_jobs: int, *, parallel: bool = True, settle: float = 0.0) -> None:
        self.max_jobs = max_jobs
        self.parallel = parallel
        self.settle = settle  # how long after its start a conversion's first choice waits
        self.running = 0  # not bulk
        self._arrived = asyncio.Event()  # set when a conversion starts, then replaced

    def arrival(self) -> asyncio.Event:
        """Set when the next conversion starts."""
        return self._arrived

    @contextmanager
    def conversion(
        self, *, bulk: bool = False, started: float | None = None, waiting: Waiting | None = None
    ) -> Iterator[Share]:
        """Count one conversion while inside; gives its share. `started`: its start
        (time.monotonic(), now if not given); `waiting`: reads ARQ's queue."""
        if bulk:
            yield _One(self)
            return
        self.running += 1
        self._arrived.set()
        self._arrived = asyncio.Event()
        try:
            yield Share(self, time.monotonic() if started is None else started, waiting)
        finally:
            self.running -= 1

    def share(self) -> int:
        if not self.parallel:
            return 1
        return plan.share(self.max_jobs, self.running)


class _One(Share):
    """A bulk conversion's share: one core, always."""

    def __init__(self, cores: CoreShare) -> None:
        super().__init__(cores, 0.0, None)

    def __call__(self) -> int:
        return 1

    async def first(self) -> int:
        return 1
