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
