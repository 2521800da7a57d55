"""How many conversions a worker runs at once (ytmp3.jobs.cores.Slots)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from ytmp3.jobs.cores import SPARE_SLOTS, Slots

DEADLINE = 5.0


@contextlib.asynccontextmanager
async def held(slots: Slots, *, bulk: bool = False) -> AsyncIterator[asyncio.Event]:
    """A conversion holding a slot until the event it gives is set."""
    release = asyncio.Event()
    entered = asyncio.Event()

    async def run() -> None:
        async with slots.slot(bulk=bulk):
            entered.set()
            await release.wait()

    task = asyncio.ensure_future(run())
    await asyncio.wait_for(entered.wait(), DEADLINE)
    try:
        yield release
    finally:
        release.set()
        await asyncio.wait_for(task, DEADLINE)


async def started(slots: Slots, *, bulk: bool = False) -> bool:
    """Whether one more conversion gets a slot now (it waits a moment at most)."""
    try:
        async with asyncio.timeout(0.2), slots.slot(bulk=bulk):
            return True
    except TimeoutError:
        return False


async def test_single_videos_never_run_past_max_jobs() -> None:
    slots = Slots(2)
    async with held(slots), held(slots):
        assert not await started(slots)
    assert slots.running == 0


async def test_a_single_video_takes_the_spare_slot_beside_a_playlist() -> None:
    slots = Slots(2)
    async with held(slots, bulk=True), held(slots, bulk=True):
        assert not await started(slots, bulk=True)  # the window's entries: no spare
        async with held(slots):  # a single video starts at once
            assert slots.running == 2 + SPARE_SLOTS
            assert not await started(slots)  # one spare, no more


async def test_a_waiting_conversion_starts_when_a_slot_frees() -> None:
    slots = Slots(1)
    async with held(slots) as release:
        waiting = asyncio.ensure_future(started(slots))
        await asyncio.sleep(0)
        release.set()
    assert await asyncio.wait_for(waiting, DEADLINE)
