"""Where parallel encoding cuts the audio, and which frames the join keeps."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ytmp3.jobs.cores import CoreShare
from ytmp3.jobs.encode import plan
from ytmp3.jobs.encode.frames import ENCODER_DELAY


def _lame_frames(samples: int) -> int:
    """Frames LAME writes for `samples` of input (its delay ahead, the rest padded)."""
    return math.ceil((samples + ENCODER_DELAY) / plan.FRAME)


def _encode(total: int, per_segment: int, encoders: int, order: list[int]) -> list[plan.Keep]:
    """Hand segments out as the parallel encoder does (to whichever encoder `order`
    names next), model each encoder's output, and plan the join."""
    pieces: list[list[tuple[plan.Piece, bool]]] = [[] for _ in range(encoders)]
    k = 0
    while True:
        p = plan.piece(k, per_segment)
        last = not plan.follows(p, total)
        pieces[order[k % len(order)] % encoders].append((p, last))
        if last:
            break
        k += 1
    outputs = []
    for fed in pieces:
        samples = 0
        for p, last in fed:
            end = total if last else p.fed_end * plan.FRAME
            samples += end - p.first * plan.FRAME
        outputs.append(_lame_frames(samples) if fed else 0)
    return plan.keep([plan.feed_order(f) for f in pieces], outputs)


@given(
    total=st.integers(1, 400 * plan.FRAME),
    per_segment=st.integers(1, 60),
    encoders=st.integers(1, 4),
    order=st.lists(st.integers(0, 3), min_size=1, max_size=8),
)
def test_the_join_is_every_frame_of_a_one_piece_encode_once_in_order(
    total: int, per_segment: int, encoders: int, order: list[int]
) -> None:
    keeps = _encode(total, per_segment, encoders, order)
    frames = sum(k.end - k.start for k in keeps)
    assert frames == _lame_frames(total)  # as many as one encoder would write
    pad = plan.padding(frames, total, ENCODER_DELAY)
    assert 0 <= pad < plan.FRAME + ENCODER_DELAY
    # each segment's frames are its body: segment i starts at frame i * per_segment
    assert all(k.end - k.start == per_segment for k in keeps[:-1])


def test_a_piece_brings_its_lead_in_and_trail_but_the_first_has_no_lead_in() -> None:
    first, second = plan.piece(0, 100), plan.piece(1, 100)
    assert (first.first, first.body_start, first.body_end, first.fed_end) == (0, 0, 100, 102)
    assert second.first == 100 - plan.LEAD_IN and second.lead_in == plan.LEAD_IN
    assert second.fed_frames == plan.LEAD_IN + 100 + plan.TRAIL


def test_a_tail_shorter_than_the_trail_belongs_to_the_segment_before() -> None:
    p = plan.piece(0, 100)
    assert not plan.follows(p, 102 * plan.FRAME)  # ends inside (or at) the trail
    assert plan.follows(p, 102 * plan.FRAME + 1)


def test_keep_refuses_an_encoder_that_wrote_too_few_frames() -> None:
    p = plan.piece(0, 10)
    q = plan.piece(1, 10)
    fed = [plan.feed_order([(p, False)]), plan.feed_order([(q, True)])]
    with pytest.raises(ValueError, match="wrote 5 frames"):
        plan.keep(fed, [5, 20])


def test_keep_refuses_a_missing_segment() -> None:
    q = plan.piece(1, 10)
    with pytest.raises(ValueError, match="do not end"):
        plan.keep([plan.feed_order([(q, True)])], [20])


def test_segments_are_whole_frames_of_about_the_planned_length() -> None:
    assert plan.segment_frames(48000, 15.0) == math.ceil(15 * 48000 / plan.FRAME)
    assert plan.segment_frames(44100, 0.001) == 1


@pytest.mark.parametrize(
    ("max_jobs", "running", "share"), [(2, 1, 2), (2, 2, 1), (2, 3, 1), (8, 3, 2), (1, 1, 1)]
)
def test_each_conversion_gets_its_share_of_the_slots(
    max_jobs: int, running: int, share: int
) -> None:
    assert plan.share(max_jobs, running) == share


def test_a_conversion_alone_has_every_core_and_hands_them_back() -> None:
    cores = CoreShare(4)
    with cores.conversion() as first:
        assert first() == 4
        with cores.conversion() as second:
            assert first() == second() == 2
        assert first() == 4
    assert cores.running == 0


def test_parallel_encoding_off_means_one_core_each() -> None:
    with CoreShare(4, parallel=False).conversion() as share:
        assert share() == 1


def test_a_bulk_conversion_takes_one_core_and_leaves_the_others_theirs() -> None:
    cores = CoreShare(2)
    # the entries run niced: the single video has both cores before them
    with (
        cores.conversion(bulk=True) as entry,
        cores.conversion(bulk=True) as other,
        cores.conversion() as single,
    ):
        assert (entry(), other(), single()) == (1, 1, 2)
    assert cores.running == 0
