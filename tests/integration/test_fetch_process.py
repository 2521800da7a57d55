"""The portable fetcher, one fresh process per download (where the fetch server cannot
run): the same stream and events, killable, and a whole conversion through it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.conftest import VIDEO_ID, make_audio, submit_body, wait_finished
from tests.integration.helpers import assert_mp3, fetch_servers_of, service
from tests.integration.test_fetch_server import alive, fetch, job, start, stat
from tests.stand_in import Source, StandIn
from ytmp3.config import Settings
from ytmp3.jobs import worker
from ytmp3.jobs.fetch.client import FetchServer, ProcessPerDownload, make_fetcher
from ytmp3.jobs.fetch.protocol import SOFTWARE_ERROR, Options
from ytmp3.storage import media

SettingsFactory = Callable[..., Settings]
pytestmark = pytest.mark.slow


@pytest.fixture
async def fetcher(stand_in: StandIn) -> AsyncIterator[ProcessPerDownload]:
    portable = ProcessPerDownload(Options(source_url=stand_in.source_url))
    yield portable
    await portable.close()


def test_the_fetch_server_on_linux_a_process_per_download_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    options = Options(source_url="http://127.0.0.1:1/{video_id}")
    assert isinstance(make_fetcher(options), FetchServer)  # these tests run on Linux
    monkeypatch.setattr(sys, "platform", "darwin")
    assert isinstance(make_fetcher(options), ProcessPerDownload)


async def test_each_download_is_a_process_of_its_own(
    fetcher: ProcessPerDownload, stand_in: StandIn
) -> None:
    audio = make_audio(2)
    stand_in.sources[VIDEO_ID] = Source(audio, title="A Song", channel="A Band")
    first = await fetch(fetcher, job(stand_in))
    second = await fetch(fetcher, job(stand_in))
    for fetched in (first, second):
        assert fetched.code == 0
        assert fetched.audio == audio  # the stream itself, byte for byte
        told = [event for event in fetched.events if event["event"] != "log"]
        assert told[0]["event"] == "info" and told[-1]["event"] == "finished", told
        assert told[0]["title"] == "A Song" and told[0]["artist"] == "A Band"
    assert first.pid != second.pid


async def test_a_download_leads_its_own_group_and_dies_when_killed(
    fetcher: ProcessPerDownload, stand_in: StandIn
) -> None:
    stand_in.sources[VIDEO_ID] = Source(make_audio(5), stall_after=16 * 1024)
    download, audio, events_r = await start(fetcher, job(stand_in))
    try:
        parent, group = (int(field) for field in stat(download.pid)[1:3])
        assert parent == os.getpid() and group == download.pid
        download.kill()
        assert await asyncio.wait_for(download.wait(), 10) == -signal.SIGKILL
        await asyncio.wait_for(audio, 10)  # its end of the pipe closed with it
    finally:
        os.close(events_r)


async def test_closing_kills_the_downloads_still_running(
    fetcher: ProcessPerDownload, stand_in: StandIn
) -> None:
    stand_in.sources[VIDEO_ID] = Source(make_audio(5), stall_after=16 * 1024)
    download, audio, events_r = await start(fetcher, job(stand_in))
    os.close(events_r)
    await fetcher.close()
    assert not alive(download.pid)
    assert download.returncode == -signal.SIGKILL
    await asyncio.wait_for(audio, 10)


async def test_a_whole_conversion_through_it(
    make_settings: SettingsFactory,
    stand_in: StandIn,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worker, "make_fetcher", ProcessPerDownload)  # as on macOS
    stand_in.sources[VIDEO_ID] = Source(make_audio(5))
    settings = make_settings(redis_url=redis_url)
    async with service(settings) as client:
        job_id = (await client.post("/submit", json=submit_body(bitrate=128))).json()["data"]["id"]
        final = await wait_finished(client, job_id)
        servers = fetch_servers_of(os.getpid())
    assert servers == []  # no fetch server was started
    assert final["status"] == "done", final
    assert final["title"] == VIDEO_ID
    assert_mp3(media.mp3_path(settings.media_dir, job_id), seconds=5, bitrate=128)


def test_a_download_that_fails_before_it_starts_says_why_on_stderr(stand_in: StandIn) -> None:
    """The job's log gets only the exit code; the traceback must reach the worker's stderr."""
    options = Options(source_url=stand_in.source_url)
    result = subprocess.run(
        [sys.executable, "-m", "ytmp3.jobs.fetch.process", "987"],  # no such events fd
        input=f"{options.to_json()}\n{job(stand_in).to_json()}\n",
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == SOFTWARE_ERROR
    assert "Traceback" in result.stderr and "Bad file descriptor" in result.stderr, result.stderr
    assert result.stdout == ""  # nothing reached the audio pipe


async def test_a_proxy_password_is_on_no_command_line(
    stand_in: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any local user can read a process's command line: the options go on stdin."""
    started: list[tuple[str, ...]] = []
    real = asyncio.create_subprocess_exec

    async def recorded(*argv: str, **kw: Any) -> asyncio.subprocess.Process:
        started.append(argv)
        return await real(*argv, **kw)

    monkeypatch.setattr(asyncio, "create_subprocess_exec", recorded)
    options = Options(source_url=stand_in.source_url, proxy="http://me:s3cret-pw@127.0.0.1:9")
    stand_in.sources[VIDEO_ID] = Source(make_audio(1))
    server, portable = FetchServer(options), ProcessPerDownload(options)
    try:
        for fetcher in (server, portable):
            fetched = await fetch(fetcher, job(stand_in))
            assert fetched.code == 1  # it went to the proxy, which is not there
            errors = [e for e in fetched.events if e["event"] == "error"]
            assert "127.0.0.1:9" in errors[0]["message"] or "refused" in errors[0]["message"]
    finally:
        await server.close()
        await portable.close()
    assert [argv[2] for argv in started] == ["ytmp3.jobs.fetch.server", "ytmp3.jobs.fetch.process"]
    assert not any("s3cret" in arg for argv in started for arg in argv), started
