"""The cover fetch (issue 13, items 7 and 8): a total deadline, a size cap, and no
redirects off the thumbnail host. A cover is a nicety: whatever the thumbnail host does,
the conversion ends `done`, with a cover or without one.

Real Redis, real ARQ worker, yt-dlp and ffmpeg, against the local stand-in.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from mutagen.id3 import ID3

from tests import stand_in as stand_in_mod
from tests.conftest import VIDEO_ID, submit_body, wait_finished
from tests.integration.helpers import service
from tests.stand_in import StandIn, Thumb
from ytmp3.config import Settings
from ytmp3.jobs import convert as convert_module
from ytmp3.storage import media

SettingsFactory = Callable[..., Settings]
pytestmark = pytest.mark.slow
OTHER = "9bZkp7q19f0"


async def convert_once(settings: Settings) -> tuple[dict[str, object], ID3]:
    async with service(settings) as client:
        response = await client.post("/submit", json=submit_body())
        assert response.status_code == 201, response.text
        job_id = response.json()["data"]["id"]
        final = await wait_finished(client, job_id, timeout=30)
    assert final["status"] == "done", final
    return final, ID3(str(media.mp3_path(settings.media_dir, job_id)))


async def test_a_dripping_cover_host_does_not_time_the_job_out(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str
) -> None:
    # one byte every 2 s: each read succeeds within any per-read timeout, forever
    stand_in.thumbs[VIDEO_ID] = Thumb(drip=2.0, size=4096, cover_only=True)
    deadline = convert_module.COVER_DEADLINE
    _, tags = await convert_once(make_settings(redis_url=redis_url, job_timeout=int(deadline * 3)))
    assert tags.getall("APIC") == []  # done without a cover, not TIMEOUT
    assert 0 < stand_in.thumbs[VIDEO_ID].sent < 4096


@pytest.mark.parametrize("tell_length", [True, False], ids=["declared", "undeclared"])
async def test_an_oversized_cover_is_refused_without_reading_it_all(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str, tell_length: bool
) -> None:
    size = 200 * 1024 * 1024
    stand_in.thumbs[VIDEO_ID] = Thumb(size=size, tell_length=tell_length, cover_only=True)
    _, tags = await convert_once(make_settings(redis_url=redis_url))
    assert tags.getall("APIC") == []
    # what the host got out before the worker hung up: the cap and the socket buffers
    assert stand_in.thumbs[VIDEO_ID].sent < 10 * convert_module.COVER_MAX_BYTES


async def test_a_cover_under_the_cap_is_embedded_whole(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str
) -> None:
    size = convert_module.COVER_MAX_BYTES // 2
    stand_in.thumbs[VIDEO_ID] = Thumb(size=size, tell_length=False, cover_only=True)
    _, tags = await convert_once(make_settings(redis_url=redis_url))
    (cover,) = tags.getall("APIC")
    assert len(cover.data) == size and cover.mime == "image/jpeg"


async def test_a_redirect_on_the_thumbnail_host_is_followed(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str
) -> None:
    stand_in.thumbs[VIDEO_ID] = Thumb(redirect=f"/vi/{OTHER}/0.jpg", cover_only=True)
    _, tags = await convert_once(make_settings(redis_url=redis_url))
    assert len(tags.getall("APIC")) == 1
    assert stand_in.cover_hits[OTHER] == 1


@pytest.mark.parametrize("elsewhere", ["another port", "another host name"])
async def test_a_redirect_off_the_thumbnail_host_is_not_followed(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str, elsewhere: str
) -> None:
    other = stand_in_mod.StandIn(default_audio=stand_in.default_audio)
    server = stand_in_mod.start(other)
    try:
        target = {
            "another port": f"{other.base}/vi/{OTHER}/0.jpg",
            "another host name": f"http://localhost:{stand_in.port}/vi/{OTHER}/0.jpg",
        }[elsewhere]
        stand_in.thumbs[VIDEO_ID] = Thumb(redirect=target, cover_only=True)
        _, tags = await convert_once(make_settings(redis_url=redis_url))
    finally:
        server.shutdown()
    assert tags.getall("APIC") == []
    assert stand_in.cover_hits[VIDEO_ID] == 1
    assert other.cover_hits[OTHER] == 0 and stand_in.cover_hits[OTHER] == 0
