"""Redis key names: one namespace per kind, and distinct for distinct inputs."""

from __future__ import annotations

import string
from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from ytmp3.cache import keys

ID_CHARS = string.ascii_letters + string.digits + "_-"
video_ids = st.text(alphabet=ID_CHARS, min_size=11, max_size=11)
job_ids = st.text(alphabet=ID_CHARS, min_size=1, max_size=64)
bitrates = st.integers(min_value=-(10**6), max_value=10**6)

ONE_ARG: list[Callable[[str], str]] = [
    keys.probe_key,
    keys.probe_lock_key,
    keys.job_key,
    keys.job_events_channel,
]


def test_examples() -> None:
    assert keys.probe_key("dQw4w9WgXcQ") == "ytmp3:video:dQw4w9WgXcQ"
    assert keys.claim_key("dQw4w9WgXcQ", 192) == "ytmp3:claim:dQw4w9WgXcQ:192"
    assert keys.job_key("j-1") == "ytmp3:job:j-1"
    assert keys.rate_key("::1", 60) == "ytmp3:rate:::1:60"
    assert keys.worker_key("h-1-aa") == "ytmp3:worker:h-1-aa"
    assert keys.running_key() == "ytmp3:running"


def test_claims_differ_per_bitrate() -> None:
    claims = {keys.claim_key("dQw4w9WgXcQ", b) for b in (128, 192, 256, 320)}
    assert len(claims) == 4


def namespace(key: str) -> str:
    prefix, _, rest = key.partition(":")
    assert prefix == keys.PREFIX
    return rest.split(":", 1)[0]


@given(video_ids, job_ids, bitrates, st.text(), st.integers(0, 10**12))
def test_every_kind_has_its_own_namespace(
    video_id: str, job_id: str, bitrate: int, client: str, window: int
) -> None:
    made = [
        keys.probe_key(video_id),
        keys.probe_lock_key(video_id),
        keys.claim_key(video_id, bitrate),
        keys.job_key(job_id),
        keys.job_events_channel(job_id),
        keys.rate_key(client, window),
        keys.workers_key(),
        keys.worker_key(job_id),
        keys.running_key(),
    ]
    assert len({namespace(key) for key in made}) == len(made)
    assert len(set(made)) == len(made)


@given(st.sampled_from(ONE_ARG), job_ids, job_ids)
def test_one_argument_keys_are_injective(
    make: Callable[[str], str], first: str, second: str
) -> None:
    assert (make(first) == make(second)) == (first == second)
    assert make(first).endswith(":" + first)


@given(video_ids, bitrates)
def test_claim_key_gives_its_inputs_back(video_id: str, bitrate: int) -> None:
    rest = keys.claim_key(video_id, bitrate).removeprefix(f"{keys.PREFIX}:claim:")
    found_video, _, found_bitrate = rest.rpartition(":")
    assert (found_video, int(found_bitrate)) == (video_id, bitrate)


@given(st.text(), st.integers(0, 10**12))
def test_rate_key_gives_its_inputs_back(client: str, window: int) -> None:
    """Distinct even for IPv6 clients full of colons: the window is the last part."""
    rest = keys.rate_key(client, window).removeprefix(f"{keys.PREFIX}:rate:")
    found_client, _, found_window = rest.rpartition(":")
    assert (found_client, int(found_window)) == (client, window)


@given(st.text(), st.integers(0, 10**12), st.text(), st.integers(0, 10**12))
def test_rate_keys_distinct(client_a: str, window_a: int, client_b: str, window_b: int) -> None:
    same_key = keys.rate_key(client_a, window_a) == keys.rate_key(client_b, window_b)
    assert same_key == ((client_a, window_a) == (client_b, window_b))
