"""The existence probe against a hostile thumbnail host: YTMP3_PROBE_TIMEOUT is a deadline
for the whole probe (not for each read), and a redirect is never followed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from tests.conftest import VIDEO_ID, app_client, submit_body
from tests.stand_in import StandIn, Thumb
from ytmp3.config import Settings

SettingsFactory = Callable[..., Settings]
PROBE_TIMEOUT = 1.0
# A byte every half second: each read well inside the timeout, the whole answer ~80 min.
DRIP = 0.5
# What the API may take past the probe's deadline (a loaded machine); the drip takes ages.
SLACK = 2.0


async def test_a_dripping_body_does_not_hold_the_submission(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    """The status came: that is the answer; the body is not waited for past the deadline."""
    stand_in.thumbs[VIDEO_ID] = Thumb(drip=DRIP, size=10_000)
    async with app_client(make_settings(probe_timeout=PROBE_TIMEOUT)) as client:
        started = time.monotonic()
        response = await asyncio.wait_for(
            client.post("/submit", json=submit_body()), PROBE_TIMEOUT + SLACK
        )
        took = time.monotonic() - started
    assert response.status_code == 201, response.text
    assert took < PROBE_TIMEOUT + SLACK


async def test_a_dripping_head_is_cut_at_the_deadline(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    """No status within the deadline: the probe failed (502), and nothing is cached."""
    stand_in.thumbs[VIDEO_ID] = Thumb(drip=DRIP, drip_head=True)
    async with app_client(make_settings(probe_timeout=PROBE_TIMEOUT)) as client:
        started = time.monotonic()
        response = await asyncio.wait_for(
            client.post("/submit", json=submit_body()), PROBE_TIMEOUT + SLACK
        )
        took = time.monotonic() - started
        del stand_in.thumbs[VIDEO_ID]
        again = await client.post("/submit", json=submit_body())
    assert response.status_code == 502
    assert response.json()["message_code"] == "UPSTREAM_ERROR"
    assert PROBE_TIMEOUT * 0.9 <= took < PROBE_TIMEOUT + SLACK
    assert again.status_code == 201  # the failure was not cached
    assert stand_in.probe_hits[VIDEO_ID] == 2


async def test_a_redirect_is_not_followed(
    make_settings: SettingsFactory, stand_in: StandIn
) -> None:
    elsewhere = "elsewhere00"
    stand_in.thumbs[VIDEO_ID] = Thumb(redirect=stand_in.thumbnail_url.format(video_id=elsewhere))
    async with app_client(make_settings()) as client:
        response = await client.post("/submit", json=submit_body())
    assert response.status_code == 502
    assert response.json()["message_code"] == "UPSTREAM_ERROR"
    assert stand_in.probe_hits[elsewhere] == 0
