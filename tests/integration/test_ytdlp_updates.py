"""Keeping up with YouTube: yt-dlp upgraded under running workers, from real releases.

The index is a local folder of real, published wheels (tests/integration/wheels.py);
pip, yt-dlp, the fetch servers, the ARQ workers, Redis and ffmpeg are all real.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_audio, submit_body, wait_finished, wait_for
from tests.integration.helpers import fetch_servers_of, service
from tests.integration.test_fetch_server import fetch, job
from tests.integration.wheels import BGUTIL, EJS, NEWER, OLDER, broken_release, put, wheel
from tests.stand_in import Source, StandIn
from ytmp3 import logs
from ytmp3.config import Settings
from ytmp3.jobs.fetch import updates
from ytmp3.jobs.fetch.client import Fetcher, FetchServer, ProcessPerDownload
from ytmp3.jobs.fetch.protocol import Options
from ytmp3.storage import media

SettingsFactory = Callable[..., Settings]
pytestmark = pytest.mark.slow

SLOW, NEXT = "slowslowslo", "nextnextnex"


@pytest.fixture
def index(tmp_path: Path) -> Path:
    """A package index holding the older release and the yt-dlp-ejs both pin."""
    folder = tmp_path / "index"
    put(folder, wheel("yt-dlp", OLDER), wheel("yt-dlp-ejs", EJS))
    return folder


def update_command(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """`ytmp3 update-yt-dlp ARGS`, as an operator runs it on the host."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("YTMP3_")}
    env.update(
        YTMP3_DATA_DIR=str(settings.data_dir),
        YTMP3_YTDLP_INDEX=settings.ytdlp_index,
        YTMP3_SOURCE_URL=settings.source_url,
    )
    return subprocess.run(
        [sys.executable, "-m", "ytmp3", "update-yt-dlp", *args],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def pip_install_target(target: Path, found: Path) -> None:
    """`pip install --target`, as the README tells an operator to add a plugin."""
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-deps", "--target", str(target), str(found)],
        check=True, timeout=300,
    )  # fmt: skip


async def worker_versions(client: httpx.AsyncClient) -> dict[str, Any]:
    """Each worker's yt-dlp, as /readyz lists them."""
    data: dict[str, Any] = (await client.get("/readyz")).json()["data"]
    return {w["id"]: w["yt_dlp"] for w in data["worker_list"] if w["state"] == "taking"}


def started_on(caplog: pytest.LogCaptureFixture, job_id: str) -> list[str]:
    """The yt-dlp versions the job's downloads started on, from its log lines."""
    return [
        r.yt_dlp  # type: ignore[attr-defined]
        for r in caplog.records
        if getattr(r, "event", None) == "download.start" and getattr(r, "job_id", None) == job_id
    ]


async def test_workers_upgrade_under_a_running_conversion_and_the_next_runs_on_the_new(
    make_settings: SettingsFactory,
    stand_in: StandIn,
    redis_url: str,
    index: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ytmp3.jobs.fetch")
    caplog.handler.addFilter(logs.ContextFilter())  # each line its job id, as in production
    settings = make_settings(
        redis_url=redis_url,
        data_dir=tmp_path / "data",
        ytdlp_index=str(index),
        ytdlp_update="2s",  # a test's interval; an operator's is hours
    )
    # The host starts on the older release: pinned, since the environment's is newer.
    seeded = update_command(settings, "--version", OLDER)
    assert seeded.returncode == 0, seeded.stderr
    assert f"yt-dlp {OLDER}" in seeded.stdout

    # two minutes at this pace unless hurried: far longer than an upgrade takes
    stand_in.sources[SLOW] = Source(make_audio(40), bytes_per_second=2000, hurry_on_release=True)
    stand_in.sources[NEXT] = Source(make_audio(2))
    async with service(settings, workers=2) as client:
        both_old = await wait_for(lambda: _all(worker_versions(client), OLDER, count=2), timeout=60)
        assert len(both_old) == 2
        slow = (await client.post("/submit", json=submit_body(SLOW))).json()["data"]["id"]
        await wait_for(lambda: stand_in.downloads[SLOW] > 0, timeout=30)

        put(index, wheel("yt-dlp", NEWER))  # a release comes out
        await wait_for(lambda: _all(worker_versions(client), NEWER, count=2), timeout=120)
        status = (await client.get(f"/status/{slow}")).json()["data"]["status"]
        assert status == "downloading"  # moved while it ran, which was not disturbed

        stand_in.release_stalls.set()  # let it finish quickly now
        slow_final = await wait_finished(client, slow, timeout=60)
        next_id = (await client.post("/submit", json=submit_body(NEXT))).json()["data"]["id"]
        next_final = await wait_finished(client, next_id, timeout=60)
        # the old servers close once their downloads have ended: one server per worker
        await wait_for(lambda: len(fetch_servers_of(os.getpid())) == 2, timeout=30)

    assert slow_final["status"] == "done", slow_final
    assert stand_in.page_hits[SLOW] == 1  # finished where it started: not retried
    assert media.mp3_path(settings.media_dir, slow).is_file()
    assert started_on(caplog, slow) == [OLDER]
    assert next_final["status"] == "done", next_final
    assert started_on(caplog, next_id) == [NEWER]
    # the two workers shared one install of it
    root = settings.data_dir / "yt-dlp"
    assert sorted(p.name for p in root.iterdir() if (p / "ok").is_file()) == [OLDER, NEWER]
    current = json.loads((root / "current").read_text())
    assert current["yt_dlp"] == NEWER and current["ejs"] == EJS and not current["pinned"]


async def _all(versions: Any, version: str, *, count: int) -> dict[str, Any] | None:
    found: dict[str, Any] = await versions
    ok = len(found) == count and all(v == version for v in found.values())
    return found if ok else None


async def test_update_yt_dlp_moves_the_running_workers_between_jobs(
    make_settings: SettingsFactory,
    stand_in: StandIn,
    redis_url: str,
    index: Path,
    tmp_path: Path,
) -> None:
    """With no updates of their own (YTMP3_YTDLP_UPDATE=off), the workers follow the
    command's install as if they had found it."""
    settings = make_settings(
        redis_url=redis_url, data_dir=tmp_path / "data", ytdlp_index=str(index)
    )
    assert update_command(settings, "--version", OLDER).returncode == 0
    stand_in.sources[NEXT] = Source(make_audio(2))
    async with service(settings) as client:
        await wait_for(lambda: _all(worker_versions(client), OLDER, count=1), timeout=60)
        put(index, wheel("yt-dlp", NEWER))
        done = await asyncio.to_thread(update_command, settings)
        assert done.returncode == 0, done.stderr
        assert f"yt-dlp {NEWER}" in done.stdout
        await wait_for(lambda: _all(worker_versions(client), NEWER, count=1), timeout=60)
        job_id = (await client.post("/submit", json=submit_body(NEXT))).json()["data"]["id"]
        assert (await wait_finished(client, job_id))["status"] == "done"
        again = await asyncio.to_thread(update_command, settings)
    assert again.returncode == 0 and "in use" in again.stdout  # nothing newer: nothing done


async def test_a_release_that_does_not_load_is_not_switched_to(
    make_settings: SettingsFactory, stand_in: StandIn, index: Path, tmp_path: Path
) -> None:
    settings = make_settings(data_dir=tmp_path / "data", ytdlp_index=str(index))
    put(index, broken_release(wheel("yt-dlp", NEWER), "2099.1.1", tmp_path))
    options = Options(source_url=stand_in.source_url)

    outcome = await updates.update(settings.data_dir, str(index), options)
    assert outcome.refused and not outcome.changed
    assert "2099.1.1 was not switched to" in outcome.message
    assert "broken on purpose" in outcome.message  # why, in its own words
    assert updates.current(settings.data_dir) is None  # the environment's stays in use
    assert not (settings.data_dir / "yt-dlp" / "2099.1.1").exists()

    # not installed again at the next look; the command says so and fails
    command = update_command(settings)
    assert command.returncode == 1
    assert "refused before" in command.stderr and "broken on purpose" in command.stderr


async def test_the_worker_refuses_a_server_that_does_not_load(
    make_settings: SettingsFactory,
    stand_in: StandIn,
    redis_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Even an install that passed its check once (then was damaged) is not switched to:
    the new server must have loaded yt-dlp before any download goes to it."""
    from ytmp3.jobs.fetch.kept import KeptUp

    fetcher = KeptUp(
        Options(source_url=stand_in.source_url), tmp_path / "data", index="x", every=None
    )
    broken = tmp_path / "broken"
    (broken / "yt_dlp").mkdir(parents=True)
    (broken / "yt_dlp" / "__init__.py").write_text("raise ImportError('damaged on disk')\n")
    try:
        await fetcher.start()
        before = fetcher.version or (await fetcher.ready()).yt_dlp
        assert not await fetcher.switch((str(broken),))
        assert fetcher.version == before
        assert (await fetch(fetcher, job(stand_in))).code == 0  # downloads go on as before
    finally:
        await fetcher.close()
    refusals = [r for r in caplog.records if getattr(r, "event", None) == "ytdlp.refused"]
    assert len(refusals) == 1 and "not switched to" in refusals[0].getMessage()


@pytest.mark.parametrize("kind", [FetchServer, ProcessPerDownload])
async def test_a_po_token_provider_plugin_is_seen_by_the_downloads(
    stand_in: StandIn, tmp_path: Path, kind: Callable[..., Fetcher]
) -> None:
    """The fetch server builds yt-dlp with two extractors only; a plugin beside it (here
    in the data directory's plugins folder) is loaded all the same."""
    data_dir = tmp_path / "data"
    plugins = updates.plugins_dir(data_dir)
    await asyncio.to_thread(pip_install_target, plugins, wheel("bgutil-ytdlp-pot-provider", BGUTIL))
    path = updates.download_path(data_dir, None)
    assert path == (str(plugins.absolute()),)
    server = kind(Options(source_url=stand_in.source_url), path)
    try:
        ready = await server.ready()
        fetched = await fetch(server, job(stand_in))
    finally:
        await server.close()
    assert f"bgutil:http {BGUTIL}" in ready.plugins
    assert fetched.code == 0
    info = next(e for e in fetched.events if e["event"] == "info")
    assert f"bgutil:http {BGUTIL}" in info["pot_providers"]  # in the download itself


async def test_a_current_install_damaged_on_disk_falls_back_to_the_environments(
    stand_in: StandIn, tmp_path: Path
) -> None:
    from ytmp3.jobs.fetch.kept import KeptUp

    data_dir = tmp_path / "data"
    damaged = updates.root(data_dir) / "2099.1.1"
    (damaged / "yt_dlp").mkdir(parents=True)
    (damaged / "yt_dlp" / "__init__.py").write_text("raise ImportError('damaged on disk')\n")
    (damaged / "ok").write_text("{}")  # it passed its check once
    pointer = {"yt_dlp": "2099.1.1", "ejs": None, "path": str(damaged), "pinned": True}
    (updates.root(data_dir) / "current").write_text(json.dumps(pointer))
    fetcher = KeptUp(Options(source_url=stand_in.source_url), data_dir, index="x", every=None)
    try:
        await fetcher.start()
        await wait_for(lambda: fetcher.version == updates.environment_version(), timeout=60)
        assert (await fetch(fetcher, job(stand_in))).code == 0
    finally:
        await fetcher.close()


async def test_a_look_another_worker_of_the_host_made_lately_is_not_made_again(
    stand_in: StandIn, index: Path, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    options = Options(source_url=stand_in.source_url)
    first = await updates.update(data_dir, str(index), options, every=3600)
    assert "newest is" in first.message  # it asked the index
    index.rename(tmp_path / "gone")  # asking it again would fail now
    second = await updates.update(data_dir, str(index), options, every=3600)
    assert not second.changed and "looked at the index lately" in second.message
    with pytest.raises(updates.UpdateError, match="pip failed"):
        await updates.update(data_dir, str(index), options)  # the command always asks
