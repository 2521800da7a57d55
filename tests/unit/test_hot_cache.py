from __future__ import annotations

from ytmp3.cache.hot import HotCache


def test_entry_lives_until_its_deadline_capped_by_max_age() -> None:
    cache: HotCache[str, int] = HotCache(max_age=5)
    cache.put("a", 1, now=100, until=102)
    cache.put("b", 2, now=100, until=1000)
    assert cache.get("a", 101.9) == 1
    assert cache.get("a", 102) is None  # its own deadline
    assert cache.get("b", 104.9) == 2
    assert cache.get("b", 105) is None  # capped at max_age


def test_expired_answers_are_not_stored() -> None:
    cache: HotCache[str, int] = HotCache()
    cache.put("a", 1, now=100, until=99)
    assert cache.get("a", 100) is None
    assert len(cache) == 0


def test_oldest_entries_are_evicted_first() -> None:
    cache: HotCache[int, int] = HotCache(max_entries=3)
    for i in range(5):
        cache.put(i, i, now=0)
    assert [cache.get(i, 1) for i in range(5)] == [None, None, 2, 3, 4]


def test_drop_forgets() -> None:
    cache: HotCache[str, int] = HotCache()
    cache.put("a", 1, now=0)
    cache.drop("a")
    cache.drop("missing")
    assert cache.get("a", 0) is None


def test_refresh_is_due_once_in_the_last_seconds_of_an_entry() -> None:
    cache: HotCache[str, int] = HotCache(max_age=5, refresh_ahead=1)
    cache.put("a", 1, now=100)
    assert not cache.due("a", 103.9)  # fresh: nobody re-reads it
    assert cache.due("a", 104)  # the first caller in its last second refreshes it
    assert not cache.due("a", 104.1)  # the others keep being served, no second refresh
    assert cache.get("a", 104.5) == 1
    cache.put("a", 2, now=104.5)  # the refresh put it back: renewed before it lapsed
    assert cache.get("a", 106) == 2
    assert not cache.due("a", 106) and cache.due("a", 108.5)


def test_an_answer_ending_at_its_own_deadline_is_not_refreshed() -> None:
    cache: HotCache[str, int] = HotCache(max_age=5, refresh_ahead=1)
    cache.put("a", 1, now=100, until=103)  # e.g. a job record expiring at 103
    assert not any(cache.due("a", t) for t in (102, 102.5, 102.99))
    assert cache.get("a", 103) is None


def test_nothing_is_due_for_missing_or_expired_entries() -> None:
    cache: HotCache[str, int] = HotCache(max_age=5, refresh_ahead=1)
    assert not cache.due("missing", 0)
    cache.put("a", 1, now=0)
    assert not cache.due("a", 5)  # lapsed: the next reader reads Redis anyway
