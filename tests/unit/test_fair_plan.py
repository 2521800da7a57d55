"""The fair queue's arithmetic: the window's size and what one refill moves. Pure."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ytmp3.cache.fair import Plan, plan_refill, window_size


def test_window_is_the_setting_or_the_live_slots() -> None:
    assert window_size(3, 8) == 3  # set: as set, whatever runs
    assert window_size(0, 8) == 8  # unset: every slot of the live workers
    assert window_size(0, 0) == 1  # no worker seen yet: one, so a client's job still waits ready


def test_an_empty_window_takes_the_head_in_order() -> None:
    plan = plan_refill(set(), ["a", "b", "c", "d"], {"a", "b", "c", "d"}, 2)
    assert plan == Plan(enqueue=("a", "b"), consumed=2, released=())


def test_a_full_window_takes_nothing() -> None:
    plan = plan_refill({"x", "y"}, ["a", "b"], {"x", "y", "a", "b"}, 2)
    assert plan == Plan(enqueue=(), consumed=0, released=())


def test_an_ended_job_makes_room_for_one() -> None:
    plan = plan_refill({"x", "y"}, ["a", "b"], {"y", "a", "b"}, 2)
    assert plan == Plan(enqueue=("a",), consumed=1, released=("x",))


def test_ended_pending_entries_are_dropped_without_using_room() -> None:
    # "a" ended without entering the window (its record expired, or a cut refill had
    # enqueued it): dropped; "b" and "c" fill the room.
    plan = plan_refill(set(), ["a", "b", "c"], {"b", "c"}, 2)
    assert plan == Plan(enqueue=("b", "c"), consumed=3, released=())


def test_an_entry_already_in_the_window_is_not_enqueued_again() -> None:
    plan = plan_refill({"a"}, ["a", "b"], {"a", "b"}, 3)
    assert plan == Plan(enqueue=("b",), consumed=2, released=())


def test_a_shrunk_window_takes_nothing_until_it_drains() -> None:
    plan = plan_refill({"x", "y", "z"}, ["a"], {"x", "y", "z", "a"}, 1)
    assert plan == Plan(enqueue=(), consumed=0, released=())


ids = st.sampled_from([f"j{i}" for i in range(12)])


@given(
    st.sets(ids, max_size=6),
    st.lists(ids, max_size=8, unique=True),
    st.sets(ids),
    st.integers(1, 6),
)
def test_refill_keeps_its_promises(
    window: set[str], head: list[str], live: set[str], size: int
) -> None:
    plan = plan_refill(window, head, live, size)
    after = (window - set(plan.released)) | set(plan.enqueue)
    # every ended one leaves, no live one does
    assert set(plan.released) == window - live
    # never over the window, and full when there was enough waiting
    live_waiting = [j for j in head if j in live and j not in window]
    room = max(0, size - len(window & live))
    assert len(plan.enqueue) == min(room, len(live_waiting))
    assert len(after) <= max(size, len(window & live))
    # first come, first served: the enqueued are the first live ones, in order
    assert list(plan.enqueue) == live_waiting[: len(plan.enqueue)]
    # what is consumed is a prefix of the list: all of it, or up to the last one taken
    assert set(plan.enqueue) <= set(head[: plan.consumed])
    if 0 < plan.consumed < len(head):
        assert plan.enqueue and head[plan.consumed - 1] == plan.enqueue[-1]
