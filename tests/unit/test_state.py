"""The job record's rules: statuses, transitions, progress, ids."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ytmp3.model.job import (
    JOB_ID_RE,
    ErrorCode,
    InvalidTransition,
    JobError,
    JobState,
    Status,
    advance,
    can_move,
    new_job_id,
)

ID_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,64}")
VIDEO_ID = "dQw4w9WgXcQ"
RUNNING = (Status.QUEUED, Status.DOWNLOADING, Status.CONVERTING)


def job(status: Status = Status.QUEUED, progress: int = 0) -> JobState:
    return JobState(id="job-1", video_id=VIDEO_ID, bitrate=192, status=status, progress=progress)


def test_status_values_are_the_spec_strings() -> None:
    assert [s.value for s in Status] == ["queued", "downloading", "converting", "done", "failed"]
    assert Status("done") is Status.DONE
    assert f"{Status.DOWNLOADING}" == "downloading"


def test_finished() -> None:
    assert {s for s in Status if s.finished} == {Status.DONE, Status.FAILED}


def test_error_codes_are_the_spec_codes() -> None:
    assert {c.value for c in ErrorCode} == {
        "VIDEO_UNAVAILABLE",
        "TOO_LONG",
        "DOWNLOAD_FAILED",
        "CONVERSION_FAILED",
        "TIMEOUT",
    }


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (Status.QUEUED, Status.DOWNLOADING),
        (Status.DOWNLOADING, Status.CONVERTING),
        (Status.CONVERTING, Status.DONE),
        (Status.QUEUED, Status.FAILED),
        (Status.DOWNLOADING, Status.FAILED),
        (Status.CONVERTING, Status.FAILED),
        # progress updates within a state
        (Status.DOWNLOADING, Status.DOWNLOADING),
        (Status.CONVERTING, Status.CONVERTING),
        # a job whose worker died is queued and run again
        (Status.DOWNLOADING, Status.QUEUED),
        (Status.CONVERTING, Status.QUEUED),
    ],
)
def test_allowed_moves(current: Status, new: Status) -> None:
    assert can_move(current, new)
    assert advance(job(current), new, now=1.0).status is new


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (Status.QUEUED, Status.DONE),
        (Status.QUEUED, Status.CONVERTING),
        (Status.DOWNLOADING, Status.DONE),
        *((Status.DONE, s) for s in Status),
        *((Status.FAILED, s) for s in Status),
    ],
)
def test_forbidden_moves(current: Status, new: Status) -> None:
    assert not can_move(current, new)
    state = job(current, progress=100 if current is Status.DONE else 0)
    with pytest.raises(InvalidTransition):
        advance(state, new, now=1.0)


def test_invalid_transition_is_a_value_error() -> None:
    assert issubclass(InvalidTransition, ValueError)


def test_every_running_state_can_fail_and_only_converting_can_finish() -> None:
    for status in RUNNING:
        assert can_move(status, Status.FAILED)
    assert [s for s in Status if can_move(s, Status.DONE)] == [Status.CONVERTING]


def test_advance_returns_a_new_state_and_keeps_the_old() -> None:
    before = job()
    after = advance(before, Status.DOWNLOADING, now=42.5, progress=10, title="A song")
    assert before.status is Status.QUEUED
    assert before.progress == 0
    assert before.title is None
    assert after.status is Status.DOWNLOADING
    assert after.progress == 10
    assert after.title == "A song"
    assert after.updated_at == 42.5
    assert (after.id, after.video_id, after.bitrate) == (before.id, VIDEO_ID, 192)


def test_advance_keeps_progress_when_not_given() -> None:
    state = advance(job(Status.DOWNLOADING, 40), Status.DOWNLOADING, now=1.0, size_bytes=10)
    assert state.progress == 40
    assert state.size_bytes == 10


def test_progress_never_goes_backwards() -> None:
    state = job(Status.DOWNLOADING, 60)
    assert advance(state, Status.DOWNLOADING, now=1.0, progress=30).progress == 60
    assert advance(state, Status.CONVERTING, now=1.0, progress=0).progress == 60
    assert advance(state, Status.QUEUED, now=1.0, progress=0).progress == 60


@pytest.mark.parametrize(("given_progress", "expected"), [(150, 100), (-20, 0), (100, 100)])
def test_progress_is_clamped(given_progress: int, expected: int) -> None:
    state = advance(job(Status.DOWNLOADING), Status.DOWNLOADING, now=1.0, progress=given_progress)
    assert state.progress == expected


def test_done_forces_100() -> None:
    assert advance(job(Status.CONVERTING, 70), Status.DONE, now=1.0).progress == 100
    assert advance(job(Status.CONVERTING, 70), Status.DONE, now=1.0, progress=5).progress == 100


def test_failed_keeps_progress_and_error() -> None:
    error = JobError(code=ErrorCode.TIMEOUT, message="Too long.")
    state = advance(job(Status.CONVERTING, 70), Status.FAILED, now=1.0, error=error)
    assert state.progress == 70
    assert state.error == error


def test_state_is_frozen() -> None:
    state = job()
    with pytest.raises(ValueError, match="frozen"):
        state.status = Status.DONE  # type: ignore[misc]


def test_json_round_trip() -> None:
    state = advance(
        job(Status.CONVERTING, 50),
        Status.FAILED,
        now=3.0,
        title="Tïtle",
        error=JobError(code=ErrorCode.DOWNLOAD_FAILED, message="Nope."),
    )
    assert JobState.model_validate_json(state.model_dump_json()) == state


steps = st.lists(st.tuples(st.sampled_from(list(Status)), st.integers(-50, 150)), max_size=25)


@given(steps)
def test_any_sequence_of_moves_keeps_the_rules(moves: list[tuple[Status, int]]) -> None:
    state = job()
    for number, (status, progress) in enumerate(moves):
        previous = state
        if not can_move(state.status, status):
            with pytest.raises(InvalidTransition):
                advance(state, status, now=float(number), progress=progress)
            assert previous.status is state.status
            continue
        state = advance(state, status, now=float(number), progress=progress)
        assert state.status is status
        assert 0 <= state.progress <= 100
        assert state.progress >= previous.progress
        assert state.updated_at == float(number)
        if status is Status.DONE:
            assert state.progress == 100
    if state.status.finished:
        for status in Status:
            assert not can_move(state.status, status)


video_ids = st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=11, max_size=11)


@given(video_ids, st.sampled_from([128, 192, 256, 320]))
def test_new_job_id_shape(video_id: str, bitrate: int) -> None:
    job_id = new_job_id(video_id, bitrate)
    assert ID_SHAPE.fullmatch(job_id)
    assert JOB_ID_RE.match(job_id)
    assert job_id.startswith(f"{video_id}-{bitrate}-")


def test_new_job_ids_are_unique() -> None:
    ids = {new_job_id(VIDEO_ID, 192) for _ in range(2000)}
    assert len(ids) == 2000


@pytest.mark.parametrize(
    "text", ["", "a" * 65, "abc\n", "\nabc", "a/b", "../x", "a b", "a.b", "é", "abc\x00"]
)
def test_job_id_regex_refuses(text: str) -> None:
    assert JOB_ID_RE.match(text) is None


@pytest.mark.parametrize("text", ["a", "a" * 64, "A-z_0-9", "dQw4w9WgXcQ-192-AbCd_-12"])
def test_job_id_regex_accepts(text: str) -> None:
    assert JOB_ID_RE.match(text) is not None


# any text, lone surrogates (which st.characters leaves out) mixed in
@given(st.text(st.one_of(st.characters(), st.integers(0xD800, 0xDFFF).map(chr)), max_size=50))
def test_any_text_makes_a_record_that_writes_and_reads_back(text: str) -> None:
    """Lone surrogates included: a title, artist or message never fails a write."""
    from ytmp3.model.job import clean_text

    state = advance(job(), Status.DOWNLOADING, now=1.0, title=text, artist=text)
    state = advance(
        state,
        Status.FAILED,
        now=2.0,
        error=JobError(code=ErrorCode.TIMEOUT, message=text),
    )
    again = JobState.model_validate_json(state.model_dump_json())
    assert again.title == again.artist == clean_text(text)
    assert again.error is not None and again.error.message == clean_text(text)
    again.model_dump_json().encode("utf-8")  # strict UTF-8: no surrogate left


def test_clean_text_examples() -> None:
    from ytmp3.model.job import TEXT_MAX, clean_text

    assert clean_text("a\ud800b") == "a\ufffdb"
    assert clean_text("\ud83d\ude00") == "\U0001f600"  # a pair in two halves joins again
    assert clean_text("a\tb\nc\x00d\x1b[0m\x85\x7f") == "a b cd[0m"
    assert clean_text("é" * (TEXT_MAX + 5)) == "é" * TEXT_MAX
