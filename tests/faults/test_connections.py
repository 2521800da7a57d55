"""Connections that never ask, drip their headers, send huge ones or come by the hundred,
against `ytmp3 serve` as a process: each is closed within seconds or refused at once, the
file limit is never reached, and the worker inside keeps converting."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import resource
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import make_audio, submit_body, wait_for
from tests.integration.helpers import free_port, settings_env, wait_http
from tests.stand_in import Source, StandIn
from ytmp3.cache.connection import Store
from ytmp3.cache.job_store import JobStore
from ytmp3.config import Settings
from ytmp3.storage.media import mp3_path

SettingsFactory = Callable[..., Settings]
pytestmark = pytest.mark.slow


@dataclass
class Served:
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def open_files(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))


@contextlib.contextmanager
def serve(
    settings: Settings, tmp_path: Path, *, file_limit: int | None = None, **extra: str
) -> Iterator[Served]:
    """`python -m ytmp3 serve`, with YTMP3_<extra> set and its file limit (soft and hard)
    at `file_limit`; stopped with SIGTERM, then killed. Its log must hold no trace."""
    port = free_port()
    env = settings_env(settings, port)
    env.update({f"YTMP3_{name.upper()}": value for name, value in extra.items()})
    log = tmp_path / "serve.log"

    def limit_files() -> None:
        if file_limit is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (file_limit, file_limit))

    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ytmp3", "serve"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=limit_files,
        )  # fmt: skip
        try:
            yield Served(port, proc, log)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    text = log.read_text()
    assert "Traceback" not in text and "Too many open files" not in text, text[-3000:]


async def _closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """What the server sent before it closed the connection (b"" for nothing)."""
    try:
        return await reader.read()
    except ConnectionError:
        return b""


async def _healthz_quickly(base: str) -> float:
    async with httpx.AsyncClient(base_url=base, timeout=5) as client:
        started = time.monotonic()
        assert (await client.get("/healthz")).status_code == 200
        return time.monotonic() - started


# ---------------------------------------------------------------------------- item 2


async def test_idle_and_dripping_connections_are_closed(
    make_settings: SettingsFactory, stand_in: StandIn, tmp_path: Path
) -> None:
    """120 connections that send nothing, one that drips its headers a byte at a time and
    one that stops halfway through its body: all closed within the read deadline (2 s
    here), the two that had started a request with an answer; /healthz answers meanwhile."""
    with serve(make_settings(), tmp_path, read_timeout="2") as served:
        await wait_http(served.base)
        idle = [await asyncio.open_connection("127.0.0.1", served.port) for _ in range(120)]
        started = time.monotonic()

        async def drip() -> tuple[float, bytes]:
            reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            answer = asyncio.ensure_future(_closed_by_server(reader))
            with contextlib.suppress(ConnectionError):
                while not answer.done() and time.monotonic() - started < 30:
                    writer.write(b"a")  # a byte every 0.2 s: never idle, never done
                    await writer.drain()
                    await asyncio.sleep(0.2)
            got = await asyncio.wait_for(answer, timeout=30)
            writer.close()
            return time.monotonic() - started, got

        async def half_body() -> tuple[float, bytes]:
            reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
            writer.write(
                b"POST /submit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b'Content-Length: 100\r\n\r\n{"video_url": '
            )
            got = await asyncio.wait_for(_closed_by_server(reader), timeout=30)
            writer.close()
            return time.monotonic() - started, got

        took = await _healthz_quickly(served.base)
        assert took < 1, took
        (dripped, drip_answer), (halted, _), ends = await asyncio.gather(
            drip(),
            half_body(),
            asyncio.wait_for(asyncio.gather(*(_closed_by_server(r) for r, _ in idle)), 30),
        )
        everyone = time.monotonic() - started
        for _, writer in idle:
            writer.close()
    assert ends == [b""] * 120  # closed, with nothing to say
    assert everyone < 2 + 3, everyone
    assert dripped < 2 + 3, dripped
    assert drip_answer.startswith(b"HTTP/1.1 408 "), drip_answer
    assert b'"message_code": "REQUEST_TIMEOUT"' in drip_answer
    assert halted < 2 + 3, halted


async def test_a_connection_flood_never_reaches_the_file_limit(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str, tmp_path: Path
) -> None:
    """`serve` under a file limit of 600 (its connections: (600 - 256) / 2 = 172) takes
    700 connections that hold on: those beyond the cap are closed at once, the process
    stays under its limit with the reserve intact, and the worker inside converts a
    video while the flood lasts (it used to fail with `Too many open files`)."""
    audio = make_audio(3)
    stand_in.sources["floodvideo1"] = Source(audio, bytes_per_second=len(audio) // 2)
    settings = make_settings(redis_url=redis_url)
    with serve(settings, tmp_path, file_limit=600, read_timeout="60") as served:
        await wait_http(served.base)
        async with httpx.AsyncClient(base_url=served.base) as client:
            job_id = (await client.post("/submit", json=submit_body("floodvideo1"))).json()["data"][
                "id"
            ]
        flood = [await asyncio.open_connection("127.0.0.1", served.port) for _ in range(700)]
        try:
            refused = await asyncio.wait_for(
                asyncio.gather(*(_closed_by_server(r) for r, _ in flood[200:])), timeout=20
            )
            assert refused == [b""] * 500  # beyond the cap: closed, not held
            assert served.open_files() < 600 - 200, served.open_files()
            # a newcomer is refused at once too: no hang while the process is full
            reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
            assert await asyncio.wait_for(_closed_by_server(reader), timeout=5) == b""
            writer.close()

            jobs = JobStore(Store.from_url(redis_url).connect(), settings.result_ttl)

            async def finished() -> str | None:
                state = await jobs.get(job_id)
                return str(state.status) if state and state.status.finished else None

            assert await wait_for(finished, timeout=60) == "done"
            # the first 172 were held all along
            assert served.open_files() > 172
        finally:
            for _, writer in flood:
                writer.close()
        # released, the process answers again at once
        await wait_for(lambda: served.open_files() < 100, timeout=10)
        took = await _healthz_quickly(served.base)
        assert took < 1, took


# ---------------------------------------------------------------------------- item 3


async def test_huge_headers_get_431_and_memory_stays_flat(
    make_settings: SettingsFactory, stand_in: StandIn, tmp_path: Path
) -> None:
    """8 clients each try to send a 16 MB header line: each gets 431 and is closed (the
    rest of its bytes dropped unread); resident memory stays flat (200 MB used to take
    the process to 468 MB) and /healthz answers meanwhile."""
    chunk = b"a" * 65536

    async def huge() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Huge: ")
        answer = asyncio.ensure_future(_closed_by_server(reader))
        sent = 0
        with contextlib.suppress(ConnectionError):
            while sent < 16 * 2**20 and not answer.done():
                writer.write(chunk)
                await writer.drain()
                sent += len(chunk)
        got = await asyncio.wait_for(answer, timeout=20)
        writer.close()
        return got

    with serve(make_settings(), tmp_path) as served:
        await wait_http(served.base)
        before = served.rss()
        results, took = await asyncio.gather(
            asyncio.gather(*(huge() for _ in range(8))), _healthz_quickly(served.base)
        )
        after = served.rss()
    assert took < 1, took
    for answer in results:
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
        assert b'"message_code": "HEADERS_TOO_LARGE"' in answer
    assert after - before < 16_000_000, (before, after)


# ------------------------------------------------------------------- the ZIP, zero-copy


async def test_a_playlists_zip_through_the_server_is_its_files_byte_for_byte(
    make_settings: SettingsFactory, stand_in: StandIn, tmp_path: Path, redis_url: str
) -> None:
    """`ytmp3 serve` sends a ZIP's MP3s by its zero-copy send (ytmp3.api.zero_copy): the
    archive is whole, each member the very bytes of the MP3 on disk, and the connection
    serves the next request; the server's descriptors are back where they were."""
    from tests.integration.test_playlists import submit_playlist, wait_playlist

    settings = make_settings(redis_url=redis_url, max_duration=600)
    with serve(settings, tmp_path) as served:
        await wait_http(served.base)
        async with httpx.AsyncClient(base_url=served.base, timeout=30) as client:
            data = await wait_playlist(client, await submit_playlist(client, "PLwithMissing"))
            assert (data["status"], data["done"]) == ("done", 2), data
            files_before = served.open_files()
            head = await client.head(data["zip_url"])
            answers = [await client.get(data["zip_url"]) for _ in range(3)]  # one connection
            assert (await client.get("/healthz")).status_code == 200
        jobs = [e["job_id"] for e in data["entries"] if e["status"] == "done"]
        await wait_for(lambda: served.open_files() <= files_before or None, timeout=10)
    for answer in answers:
        assert answer.status_code == 200
        assert int(answer.headers["content-length"]) == len(answer.content)
        assert head.headers["content-length"] == answer.headers["content-length"]
        archive = zipfile.ZipFile(io.BytesIO(answer.content))
        assert archive.testzip() is None
        names = archive.namelist()
        assert names == ["01 - First.mp3", "03 - Third.mp3", "playlist.m3u8"]
        for name, job_id in zip(names[:2], jobs, strict=True):
            on_disk = mp3_path(settings.media_dir, job_id).read_bytes()
            assert archive.read(name) == on_disk
