"""`ytmp3 get` of a playlist against a real server process: the client (issue 19) on the
playlist routes (issue 14), as the SPEC defines both."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.client.helpers import client_env
from tests.client.test_cli import _run, _serve
from tests.harness import wait_http
from tests.integration.helpers import assert_mp3
from tests.stand_in import Feed, StandIn
from ytmp3.config import Settings

pytestmark = pytest.mark.slow


async def test_get_a_playlist_from_a_server(
    make_settings: Callable[..., Settings], stand_in: StandIn, tmp_path: Path
) -> None:
    stand_in.feeds["PLcleanTwo"] = Feed(
        [("feedVideo01", "First", 3), ("feedVideo03", "Third", 3)], title="Two tracks"
    )
    settings = make_settings()
    link = "https://www.youtube.com/playlist?list=PLcleanTwo"
    with _serve(settings, tmp_path / "serve.log") as base:
        await wait_http(base, "/readyz")
        env = client_env(settings, YTMP3_SERVER=base)
        code, _, err = await _run(["-o", "out", link], env, tmp_path)
        # a list with a missing video: the others saved, exit 1, the failure said
        failed = await _run(
            ["-o", "out2", "https://www.youtube.com/playlist?list=PLwithMissing"],
            env, tmp_path,
        )  # fmt: skip
    assert code == 0, err
    saved = sorted((tmp_path / "out").rglob("*.mp3"))
    assert [p.name for p in saved] == ["01 - First.mp3", "02 - Third.mp3"]
    for path in saved:
        assert_mp3(path, seconds=3, bitrate=192)
    assert failed[0] == 1, failed[2]
    assert len(list((tmp_path / "out2").rglob("*.mp3"))) == 2
    assert stand_in.feed_hits["PLwithMissing"] == 1
