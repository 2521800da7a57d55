"""ytmp3.cache.memo on its own: what it keeps, and what a failed refresh leaves."""

from __future__ import annotations

import pytest

from tests.conftest import wait_for
from ytmp3.cache.memo import Memo


class Truth:
    """A store to read from, with a clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.value: int | None = 1
        self.reads = 0
        self.failing = False

    def clock(self) -> float:
        return self.now

    async def load(self, key: str) -> int | None:
        self.reads += 1
        if self.failing:
            raise ConnectionError("Redis is away")
        return self.value


async def test_a_failed_refresh_serves_the_answer_until_its_end() -> None:
    truth = Truth()
    memo: Memo[str, int] = Memo(truth.load, clock=truth.clock)
    assert await memo.get("k") == 1 and truth.reads == 1
    truth.failing = True
    truth.now += 4.5  # in the last second: served, and re-read in the background
    assert await memo.get("k") == 1
    await wait_for(lambda: truth.reads == 2)
    assert await memo.get("k") == 1  # the failure changed nothing yet...
    truth.now += 0.5
    with pytest.raises(ConnectionError):  # ...until the answer's end: then the caller asks
        await memo.get("k")


async def test_only_answers_to_keep_are_remembered() -> None:
    truth = Truth()
    memo: Memo[str, int] = Memo(truth.load, clock=truth.clock, keep=lambda v: v % 2 == 0)
    memo.remember("k", 3)
    assert await memo.get("k") == 1 and truth.reads == 1  # not kept: read, and read again
    assert await memo.get("k") == 1 and truth.reads == 2
    memo.remember("k", 4)
    assert await memo.get("k") == 4 and truth.reads == 2


async def test_an_answer_is_not_kept_past_its_own_end() -> None:
    truth = Truth()
    memo: Memo[str, int] = Memo(truth.load, clock=truth.clock, until=lambda v: truth.now + 2)
    assert await memo.get("k") == 1
    truth.now += 1.9
    assert await memo.get("k") == 1 and truth.reads == 1  # no refresh: it would not extend it
    truth.now += 0.1
    assert await memo.get("k") == 1 and truth.reads == 2
