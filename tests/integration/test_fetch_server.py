"""The fetch server: downloads forked from one warm process, and nothing left behind.

Real yt-dlp against the local stand-in; the worker's side (FetchServer) drives it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import VIDEO_ID, make_audio, wait_for
from tests.stand_in import Source, StandIn
from ytmp3.jobs.fetch.client import LOST, Download, Fetcher, FetchServer, FetchServerError
from ytmp3.jobs.fetch.protocol import Job, Options

pytestmark = pytest.mark.slow


@dataclass
class Fetched:
    audio: bytes
    events: list[dict[str, Any]]
    code: int
    pid: int


@pytest.fixture
async def server(stand_in: StandIn) -> AsyncIterator[FetchServer]:
    fetcher = FetchServer(Options(source_url=stand_in.source_url))
    yield fetcher
    await fetcher.close()


def job(stand_in: StandIn, video_id: str = VIDEO_ID) -> Job:
    return Job(url=stand_in.source_url.format(video_id=video_id), max_duration=3600)


def _read_all(fd: int) -> bytes:
    with os.fdopen(fd, "rb") as pipe:
        return pipe.read()


async def start(server: Fetcher, job: Job) -> tuple[Download, asyncio.Future[bytes], int]:
    """Start a download; return it, the future of its audio and the events pipe to read."""
    audio_r, audio_w = os.pipe()
    events_r, events_w = os.pipe()
    try:
        download = await server.spawn(job, audio_w, events_w)
    finally:
        os.close(audio_w)
        os.close(events_w)
    audio = asyncio.get_running_loop().run_in_executor(None, _read_all, audio_r)
    return download, audio, events_r


async def fetch(server: Fetcher, job: Job) -> Fetched:
    download, audio, events_r = await start(server, job)
    events = await asyncio.to_thread(_read_all, events_r)
    return Fetched(
        audio=await audio,
        events=[json.loads(line) for line in events.splitlines()],
        code=await asyncio.wait_for(download.wait(), 30),
        pid=download.pid,
    )


def stat(pid: int) -> list[str]:
    """/proc/PID/stat's fields after the command: state, parent, group, ..."""
    return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].split()


def alive(pid: int) -> bool:
    try:
        return stat(pid)[0] != "Z"
    except OSError:
        return False


def server_pid(server: FetchServer) -> int:
    process = server._process
    assert process is not None
    return process.pid


async def test_each_download_is_a_fork_of_the_one_server(
    server: FetchServer, stand_in: StandIn
) -> None:
    audio = make_audio(2)
    stand_in.sources[VIDEO_ID] = Source(audio, title="A Song", channel="A Band")

    first = await fetch(server, job(stand_in))
    pid = server_pid(server)
    second = await fetch(server, job(stand_in))

    for fetched in (first, second):
        assert fetched.code == 0
        assert fetched.audio == audio  # the stream itself, byte for byte
        told = [event for event in fetched.events if event["event"] != "log"]
        assert told[0]["event"] == "info" and told[-1]["event"] == "finished", told
        assert told[0]["title"] == "A Song"
        assert told[0]["artist"] == "A Band"
    assert first.pid != second.pid
    assert server_pid(server) == pid  # the same server, not a fresh process per job


async def test_a_download_leads_its_own_group_under_the_server(
    server: FetchServer, stand_in: StandIn
) -> None:
    stand_in.sources[VIDEO_ID] = Source(make_audio(5), stall_after=16 * 1024)
    download, audio, events_r = await start(server, job(stand_in))
    try:
        parent, group = (int(field) for field in stat(download.pid)[1:3])
        assert parent == server_pid(server)
        assert group == download.pid  # so killing the group kills all it started
        download.kill()
        assert await asyncio.wait_for(download.wait(), 10) == -signal.SIGKILL
        await asyncio.wait_for(audio, 10)  # its end of the pipe closed with it
    finally:
        os.close(events_r)


def fetch_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "ytmp3.jobs.fetch.client"]


async def test_the_server_dying_ends_its_downloads_and_it_comes_back(
    server: FetchServer, stand_in: StandIn, caplog: pytest.LogCaptureFixture
) -> None:
    stand_in.sources[VIDEO_ID] = Source(make_audio(5), stall_after=16 * 1024)
    download, audio, events_r = await start(server, job(stand_in))
    os.close(events_r)
    os.kill(server_pid(server), signal.SIGKILL)

    assert await asyncio.wait_for(download.wait(), 10) == LOST
    assert any("the next download starts another" in m for m in fetch_warnings(caplog))
    await wait_for(lambda: not alive(download.pid), timeout=10)
    await asyncio.wait_for(audio, 10)

    stand_in.sources["bbbbbbbbbbb"] = Source(make_audio(1))
    again = await fetch(server, job(stand_in, "bbbbbbbbbbb"))
    assert again.code == 0 and again.audio == make_audio(1)


async def test_closing_the_server_leaves_no_process(
    server: FetchServer, stand_in: StandIn, caplog: pytest.LogCaptureFixture
) -> None:
    stand_in.sources[VIDEO_ID] = Source(make_audio(5), stall_after=16 * 1024)
    download, audio, events_r = await start(server, job(stand_in))
    os.close(events_r)
    pid = server_pid(server)

    await server.close()

    assert not alive(pid)
    await wait_for(lambda: not alive(download.pid), timeout=10)
    assert await asyncio.wait_for(download.wait(), 10) == LOST
    await asyncio.wait_for(audio, 10)
    assert fetch_warnings(caplog) == []  # closed on purpose: nothing to warn about


def cookies_file(path: Path, value: str) -> Path:
    expires = int(time.time()) + 3600
    path.write_text(
        f"# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t{expires}\tCONSENT\t{value}\n"
    )
    return path


async def test_the_cookies_file_is_read_for_each_download(
    stand_in: StandIn, tmp_path: Path
) -> None:
    cookies = cookies_file(tmp_path / "cookies.txt", "first")
    server = FetchServer(Options(source_url=stand_in.source_url, cookies_file=str(cookies)))
    try:
        assert (await fetch(server, job(stand_in))).code == 0
        assert any("CONSENT=first" in c for c in stand_in.cookies), stand_in.cookies
        stand_in.cookies.clear()

        cookies_file(cookies, "second")  # replaced while the server runs
        assert (await fetch(server, job(stand_in))).code == 0
        assert stand_in.cookies and all("CONSENT=second" in c for c in stand_in.cookies)
    finally:
        await server.close()


async def test_the_cookies_file_is_read_again_only_when_it_changed(
    stand_in: StandIn, tmp_path: Path
) -> None:
    """Its mtime and size tell a change: a file rewritten behind the same ones is not
    read again (so it is not read for every download), one with a new mtime is."""
    cookies = cookies_file(tmp_path / "cookies.txt", "first")
    server = FetchServer(Options(source_url=stand_in.source_url, cookies_file=str(cookies)))
    try:
        assert (await fetch(server, job(stand_in))).code == 0
        before = cookies.stat()
        cookies_file(cookies, "third")  # as long as "first"
        os.utime(cookies, ns=(before.st_atime_ns, before.st_mtime_ns))
        stand_in.cookies.clear()
        assert (await fetch(server, job(stand_in))).code == 0
        assert stand_in.cookies and all("CONSENT=first" in c for c in stand_in.cookies)

        os.utime(cookies, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
        stand_in.cookies.clear()
        assert (await fetch(server, job(stand_in))).code == 0
        assert stand_in.cookies and all("CONSENT=third" in c for c in stand_in.cookies)
    finally:
        await server.close()


async def test_a_download_asked_for_then_abandoned_is_killed(
    server: FetchServer, stand_in: StandIn
) -> None:
    stand_in.sources[VIDEO_ID] = Source(make_audio(5), stall_after=16 * 1024)
    audio_r, audio_w = os.pipe()
    events_r, events_w = os.pipe()
    await server.start()  # it warms up for a second: the answer (the pid) comes after that
    asked = asyncio.create_task(server.spawn(job(stand_in), audio_w, events_w))
    await asyncio.sleep(0)  # the request is sent
    asked.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asked
    os.close(audio_w)
    os.close(events_w)
    # Once started, it is killed: its pipes close without a finished download.
    events = await asyncio.wait_for(asyncio.to_thread(_read_all, events_r), 30)
    await asyncio.wait_for(asyncio.to_thread(_read_all, audio_r), 10)
    assert b'"finished"' not in events


async def test_a_request_it_cannot_serve_is_answered_and_the_next_one_works(
    server: FetchServer, stand_in: StandIn
) -> None:
    stand_in.sources[VIDEO_ID] = Source(make_audio(1))
    await server.start()
    assert server._sock is not None
    read, write = os.pipe()
    answer = asyncio.get_running_loop().create_future()
    server._started.append(answer)  # as spawn() does, but with one pipe instead of two
    socket.send_fds(server._sock, [job(stand_in).to_json().encode()], [write])
    os.close(write)
    with pytest.raises(FetchServerError, match="1 file descriptors"):
        await asyncio.wait_for(answer, 30)
    os.close(read)
    # answers still match their requests
    assert (await fetch(server, job(stand_in))).code == 0
