"""Media file names come from job ids only: no traversal, and the way back from a name."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ytmp3.model.job import JOB_ID_RE
from ytmp3.storage.media import PART_SUFFIX, job_id_of, mp3_path, part_path

MEDIA = Path("/srv/media")
JOB = "dQw4w9WgXcQ-192-AbCd_-12"

BAD_IDS = [
    "",
    ".",
    "..",
    "../x",
    "../../etc/passwd",
    "/etc/passwd",
    "a/b",
    "a\\b",
    "x" * 65,
    "abc\n",
    "abc\x00",
    "abc.mp3",
    "a b",
    "é",
    "~",
]


def test_mp3_path() -> None:
    assert mp3_path(MEDIA, JOB) == MEDIA / f"{JOB}.mp3"


def test_part_path_is_hidden_and_distinct() -> None:
    part = part_path(MEDIA, JOB)
    assert part.parent == MEDIA
    assert part.name == f".{JOB}.mp3{PART_SUFFIX}"
    assert part.name.startswith(".")
    assert part != mp3_path(MEDIA, JOB)


@pytest.mark.parametrize("job_id", BAD_IDS)
def test_mp3_path_refuses_non_ids(job_id: str) -> None:
    with pytest.raises(ValueError, match="not a job id"):
        mp3_path(MEDIA, job_id)


@pytest.mark.parametrize("job_id", BAD_IDS)
def test_part_path_refuses_non_ids(job_id: str) -> None:
    with pytest.raises(ValueError, match="not a job id"):
        part_path(MEDIA, job_id)


def test_round_trip() -> None:
    assert job_id_of(mp3_path(MEDIA, JOB)) == JOB
    assert job_id_of(part_path(MEDIA, JOB)) == JOB


@pytest.mark.parametrize(
    "name",
    [
        "notes.txt",
        ".mp3",
        ".hidden.mp3",
        "abc.mp3.part",  # a part file is always hidden
        ".abc.part",
        "abc.MP3",
        "a b.mp3",
        "abc\n.mp3",
        f"{'x' * 65}.mp3",
        ".DS_Store",
        "abc.mp3.tmp",
    ],
)
def test_strangers_are_nobodys(name: str) -> None:
    assert job_id_of(MEDIA / name) is None


job_ids = st.from_regex(r"\A[A-Za-z0-9_-]{1,64}\Z")


@given(job_ids)
def test_any_id_round_trips_inside_the_media_dir(job_id: str) -> None:
    for path in (mp3_path(MEDIA, job_id), part_path(MEDIA, job_id)):
        assert path.parent == MEDIA
        assert job_id_of(path) == job_id


@given(st.text())
def test_any_text_is_refused_or_stays_inside(text: str) -> None:
    try:
        path = mp3_path(MEDIA, text)
    except ValueError:
        assert not JOB_ID_RE.fullmatch(text)
        return
    assert path.parent == MEDIA
    assert path.name == f"{text}.mp3"
    assert ".." not in path.parts
