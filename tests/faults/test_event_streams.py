"""Event streams held, opened by the thousand and cut by a Redis restart, against a real
API process: one pub/sub connection serves them all, a client's streams are bounded,
nothing stays behind, and a lost store ends a stream cleanly with a `retry:` hint."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import VIDEO_ID, submit_body, wait_for
from tests.faults.redis_server import RedisServer
from tests.integration.helpers import free_port, settings_env, wait_http, ytmp3_process
from tests.stand_in import Source, StandIn
from ytmp3.cache import keys
from ytmp3.config import Settings

SettingsFactory = Callable[..., Settings]
pytestmark = pytest.mark.slow

STALLED = "stalled0001"  # a conversion that stays running for the whole test


@dataclass
class Api:
    base: str
    port: int
    pid: int
    log: Path
    redis_url: str | None  # None: the embedded store, inside the process

    def client(self, address: str = "127.0.0.1", timeout: float = 30) -> httpx.AsyncClient:
        """A client whose connections come from `address` (any of 127.0.0.0/8): the API
        counts each address as a client of its own."""
        transport = httpx.AsyncHTTPTransport(
            local_address=address, limits=httpx.Limits(max_connections=200)
        )
        return httpx.AsyncClient(transport=transport, base_url=self.base, timeout=timeout)

    def rss(self) -> int:
        """The process's resident memory, bytes (read from outside: /proc)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def subscribers(self, job_id: str) -> int:
        assert self.redis_url is not None
        with redis.Redis.from_url(self.redis_url) as client:
            counts = client.pubsub_numsub(keys.job_events_channel(job_id))
        return int(counts[0][1])


@contextlib.contextmanager
def running_api(mode: str, settings: Settings, tmp_path: Path, **extra: str) -> Iterator[Api]:
    """`ytmp3 serve` on the embedded store, or `ytmp3 api` on the settings' Redis."""
    port = free_port()
    env = settings_env(settings, port)
    env.update({f"YTMP3_{name.upper()}": value for name, value in extra.items()})
    log = tmp_path / f"{mode}.log"
    with ytmp3_process(mode, env, log) as proc:
        yield Api(f"http://127.0.0.1:{port}", port, proc.pid, log, settings.redis_url)
    assert_api_log_clean(log.read_text())


def assert_api_log_clean(text: str) -> None:
    """No error of the API or its server. (The worker inside `serve` may log the stalled
    job it is cut from at the stop: that is the worker's, not the streams'.)"""
    for line in text.splitlines():
        assert "Exception in ASGI application" not in line, text
        assert " ERROR ytmp3.api" not in line and " ERROR uvicorn" not in line, text
        assert "Too many open files" not in line, text


@pytest.fixture(params=["serve", "api"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_settings(
    mode: str, request: pytest.FixtureRequest, make_settings: SettingsFactory, stand_in: StandIn
) -> Settings:
    """Settings on the embedded store (serve) or on the real Redis (api)."""
    for n in range(1, 6):  # STALLED and four more
        stand_in.sources[f"stalled000{n}"] = Source(stand_in.default_audio, stall_after=1000)
    if mode == "api":
        return make_settings(redis_url=request.getfixturevalue("redis_url"))
    return make_settings()


async def running_job(client: httpx.AsyncClient, video_id: str = STALLED) -> str:
    answer = await client.post("/submit", json=submit_body(video_id))
    assert answer.status_code == 201, answer.text
    job_id: str = answer.json()["data"]["id"]
    return job_id


@contextlib.asynccontextmanager
async def stream(client: httpx.AsyncClient, job_id: str) -> AsyncIterator[AsyncIterator[str]]:
    """An open event stream, its first event read; yields the rest of its lines."""
    async with client.stream("GET", f"/status/{job_id}/events") as response:
        assert response.status_code == 200, await response.aread()
        lines = response.aiter_lines()
        async for line in lines:
            if line.startswith("data: "):
                break
        yield lines


async def _first_event(client: httpx.AsyncClient, job_id: str) -> None:
    async with stream(client, job_id):
        pass


# ---------------------------------------------------------------------------- item 1


async def test_held_streams_leave_the_store_to_everyone_else(
    mode: str, store_settings: Settings, tmp_path: Path
) -> None:
    """100 streams on one job (more than the 64 connections of the pool), 10 from each of
    10 addresses, and 300 for unknown ids: every /status and /submit sent meanwhile
    answers, and one subscription serves the 100."""
    with running_api(mode, store_settings, tmp_path) as api:
        await wait_http(api.base)
        clients = [api.client(f"127.0.0.{n}") for n in range(2, 12)]
        async with contextlib.AsyncExitStack() as held:
            for client in clients:
                await held.enter_async_context(client)
            job_id = await running_job(clients[0])
            await asyncio.wait_for(
                asyncio.gather(
                    *(
                        held.enter_async_context(stream(c, job_id))
                        for c in clients
                        for _ in range(10)
                    )
                ),
                timeout=60,
            )
            unknown = [f"{VIDEO_ID}-192-{secrets.token_hex(4)}" for _ in range(300)]
            strays = await asyncio.gather(
                *(clients[n % 10].get(f"/status/{i}/events") for n, i in enumerate(unknown))
            )
            assert {r.status_code for r in strays} == {404}
            assert {r.json()["message_code"] for r in strays} == {"NOT_FOUND"}

            async with api.client("127.0.0.20") as other:
                statuses, submits = await asyncio.gather(
                    asyncio.gather(*(other.get(f"/status/{job_id}") for _ in range(40))),
                    asyncio.gather(
                        *(
                            other.post("/submit", json=submit_body(f"other{n:06d}"))
                            for n in range(10)
                        )
                    ),
                )
            assert [r.status_code for r in statuses] == [200] * 40
            assert sorted({r.status_code for r in submits}) == [201], [r.text for r in submits]
            if api.redis_url is not None:
                assert api.subscribers(job_id) == 1  # one connection, 100 streams
        if api.redis_url is not None:
            # the last stream gone, the subscription goes too
            await wait_for(lambda: api.subscribers(job_id) == 0, timeout=10)


async def test_streams_per_client_are_bounded(
    make_settings: SettingsFactory, stand_in: StandIn, tmp_path: Path
) -> None:
    stand_in.sources[STALLED] = Source(stand_in.default_audio, stall_after=1000)
    with running_api("serve", make_settings(), tmp_path, streams_per_client="5") as api:
        await wait_http(api.base)
        async with api.client() as client, api.client("127.0.0.9") as other:
            job_id = await running_job(client)
            # 50 streams asked for and dropped at once (before their first byte): each
            # gives its slot back, though its body never started
            for _ in range(50):
                _, writer = await asyncio.open_connection("127.0.0.1", api.port)
                writer.write(f"GET /status/{job_id}/events HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                await writer.drain()
                writer.close()
            async with contextlib.AsyncExitStack() as held:

                async def fifth_opens() -> bool:
                    try:
                        for _ in range(5):
                            await held.enter_async_context(stream(client, job_id))
                    except AssertionError:  # a 429: the dropped ones still held slots
                        await held.aclose()
                        return False
                    return True

                await wait_for(fifth_opens, timeout=10)
                refused = await client.get(f"/status/{job_id}/events")
                assert refused.status_code == 429, refused.text
                assert refused.json()["message_code"] == "RATE_LIMITED"
                assert int(refused.headers["retry-after"]) > 0
                # another address is another client; plain /status is not bounded
                await asyncio.wait_for(_first_event(other, job_id), timeout=10)
                assert (await client.get(f"/status/{job_id}")).status_code == 200
            # the five closed, their slots are free again (once the server saw them go)

            async def opens() -> bool:
                async with client.stream("GET", f"/status/{job_id}/events") as response:
                    return response.status_code == 200

            await wait_for(opens, timeout=10)


# --------------------------------------------------------------------------- item 14


async def test_memory_flat_over_5000_streams(
    mode: str, store_settings: Settings, tmp_path: Path
) -> None:
    """5,000 streams opened and closed, 50 at a time on 5 jobs: the process's resident
    memory, read from /proc, stays within a few MB (the embedded store used to keep
    ~9.4 KB per stream: 47 MB here)."""
    with running_api(mode, store_settings, tmp_path, streams_per_client="0") as api:
        await wait_http(api.base)
        async with api.client() as client:
            jobs = [await running_job(client, f"stalled000{n}") for n in range(1, 6)]

            async def streams(count: int) -> None:
                gate = asyncio.Semaphore(50)

                async def one(n: int) -> None:
                    async with gate:
                        await _first_event(client, jobs[n % len(jobs)])

                await asyncio.wait_for(asyncio.gather(*(one(n) for n in range(count))), 120)

            await streams(500)  # warm-up: pools, caches, the allocator's arenas
            await asyncio.sleep(0.5)
            before = api.rss()
            await streams(5000)
            await asyncio.sleep(0.5)
            after = api.rss()
            assert (await client.get(f"/status/{jobs[0]}")).status_code == 200
        if api.redis_url is not None:
            await wait_for(lambda: sum(map(api.subscribers, jobs)) == 0, timeout=10)
    grown = after - before
    assert grown < 4_000_000, f"RSS {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB"


# --------------------------------------------------------------------------- item 15


async def _read_to_end(lines: AsyncIterator[str]) -> list[str]:
    return [line async for line in lines]


async def test_streams_end_cleanly_across_a_redis_restart(
    make_settings: SettingsFactory, stand_in: StandIn, private_redis: RedisServer, tmp_path: Path
) -> None:
    """Redis killed under 5 open streams: each ends (a complete chunked body, no trace in
    the log) with a `retry:` field; Redis back, a new stream works without a restart."""
    stand_in.sources[STALLED] = Source(stand_in.default_audio, stall_after=1000)
    settings = make_settings(redis_url=private_redis.url)
    with running_api("api", settings, tmp_path) as api:
        await wait_http(api.base)
        async with api.client() as client:
            job_id = await running_job(client)
            async with contextlib.AsyncExitStack() as held:
                opened = [await held.enter_async_context(stream(client, job_id)) for _ in range(5)]
                private_redis.kill()
                # httpx raises RemoteProtocolError on a cut chunked body: none may
                rests = await asyncio.wait_for(
                    asyncio.gather(*(_read_to_end(lines) for lines in opened)), timeout=20
                )
            for rest in rests:
                assert any(line.startswith("retry: ") for line in rest), rest
                assert int(next(x for x in rest if x.startswith("retry: ")).split()[1]) > 0
            # while Redis is away a new stream is refused with the envelope, not cut
            down = await client.get(f"/status/{job_id}/events")
            assert down.status_code == 503, down.text
            assert down.json()["message_code"] == "SERVICE_UNAVAILABLE"

            private_redis.start()  # empty, as a restart without persistence

            async def submitted() -> str | None:
                answer = await client.post("/submit", json=submit_body())
                return answer.json()["data"]["id"] if answer.status_code == 201 else None

            fresh = await wait_for(submitted, timeout=30)
            await asyncio.wait_for(_first_event(client, fresh), timeout=10)
    assert "event streams lost Redis" in api.log.read_text()
