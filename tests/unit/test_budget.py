"""The disk budget's decision (ytmp3.model.budget) and its settings."""

from __future__ import annotations

from ytmp3.config import Settings
from ytmp3.model.budget import Stored, evictions, full


def test_the_least_recently_used_go_first_until_the_new_one_fits() -> None:
    stored = [Stored("new", 10, 30.0), Stored("old", 10, 10.0), Stored("mid", 10, 20.0)]
    assert evictions(stored, used=30, incoming=10, budget=35) == ["old"]
    assert evictions(stored, used=30, incoming=10, budget=25) == ["old", "mid"]
    assert evictions(stored, used=30, incoming=10, budget=40) == []


def test_one_being_streamed_is_never_chosen() -> None:
    stored = [Stored("old", 10, 10.0, busy=True), Stored("mid", 10, 20.0)]
    assert evictions(stored, used=20, incoming=10, budget=25) == ["mid"]
    # nothing idle is enough: every idle one goes, the busy one stays
    assert evictions(stored, used=20, incoming=30, budget=25) == ["mid"]


def test_full_when_the_disk_is_short_or_nothing_idle_can_go() -> None:
    assert full(used=0, budget=None, free=10, min_free=20, evictable=0)
    assert not full(used=0, budget=None, free=30, min_free=20, evictable=0)
    assert full(used=50, budget=50, free=99, min_free=20, evictable=0)
    assert not full(used=50, budget=50, free=99, min_free=20, evictable=1)
    assert not full(used=10, budget=50, free=99, min_free=20, evictable=0)


def test_sizes_read_as_people_write_them() -> None:
    settings = Settings(_env_file=None, max_disk="20GB", min_free_disk="512MiB")
    assert settings.max_disk == 20 * 10**9
    assert settings.min_free_disk == 512 * 2**20
    assert Settings(_env_file=None).max_disk is None
    assert Settings(_env_file=None).min_free_disk == 10**9
