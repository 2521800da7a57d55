"""Playlists end to end: the real API, ARQ worker, fetch server, yt-dlp and ffmpeg on the
real Redis, with the stand-in's RSS feeds as the lists."""

from __future__ import annotations

import asyncio
import io
import os
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_audio, submit_body, wait_finished, wait_for
from tests.integration.helpers import assert_mp3, fetch_servers_of, processes_mentioning, service
from tests.stand_in import MISSING_VIDEO, Feed, Source, StandIn
from ytmp3.cache import keys, workers
from ytmp3.cache.connection import Store
from ytmp3.cache.job_store import JobStore
from ytmp3.config import Settings
from ytmp3.jobs.convert import BULK_NICE
from ytmp3.model.job import Status

pytestmark = [pytest.mark.slow, pytest.mark.redis]
SettingsFactory = Callable[..., Settings]
PROXY = "203.0.113.7"  # the in-process client's address (tests/harness.py)


def playlist_body(list_id: str, bitrate: int = 192) -> dict[str, Any]:
    return {"playlist_url": f"https://www.youtube.com/playlist?list={list_id}", "bitrate": bitrate}


async def submit_playlist(
    client: httpx.AsyncClient, list_id: str, headers: dict[str, str] | None = None
) -> str:
    response = await client.post("/playlists", json=playlist_body(list_id), headers=headers)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["message_code"] == "PLAYLIST_QUEUED"
    playlist: str = body["data"]["id"]
    return playlist


async def wait_playlist(
    client: httpx.AsyncClient, playlist: str, timeout: float = 90.0
) -> dict[str, Any]:
    async def finished() -> dict[str, Any] | None:
        data: dict[str, Any] = (await client.get(f"/playlists/{playlist}")).json()["data"]
        return data if data["status"] in ("done", "failed") else None

    return await wait_for(finished, timeout=timeout, interval=0.1)


async def started(settings: Settings) -> None:
    redis = Store.from_url(settings.redis_url).connect()
    await wait_for(lambda: workers.alive(redis), timeout=30)


async def test_a_playlist_end_to_end_with_its_zip(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str, tmp_path: Path
) -> None:
    settings = make_settings(redis_url=redis_url, max_duration=600)
    async with service(settings) as client:
        # submitted alone first: the playlist's first entry reuses this conversion
        alone = (await client.post("/submit", json=submit_body("feedVideo01"))).json()["data"]
        assert (await wait_finished(client, alone["id"]))["status"] == "done"
        assert stand_in.downloads["feedVideo01"] == 1

        playlist = await submit_playlist(client, "PLwithMissing")
        data = await wait_playlist(client, playlist)
        assert data["status"] == "done", data
        assert (data["total"], data["done"], data["failed"]) == (3, 2, 1)
        assert data["progress"] == 100 and data["truncated"] is False
        assert data["title"] == "With a missing video"
        first, gone, third = data["entries"]
        assert first["job_id"] == alone["id"]  # the same conversion, not a second one
        assert stand_in.downloads["feedVideo01"] == 1
        assert gone["video_id"] == MISSING_VIDEO and gone["status"] == "failed"
        assert gone["error"]["code"] == "VIDEO_UNAVAILABLE" and gone["download_url"] is None
        assert (
            third["status"] == "done"
            and third["download_url"] == f"/download-music/{third['job_id']}"
        )
        assert stand_in.feed_hits["PLwithMissing"] == 1
        # flat: the feed's www.youtube.com links were never opened, each entry came from here
        assert stand_in.page_hits["feedVideo03"] >= 1

        head = await client.head(data["zip_url"])
        assert head.status_code == 200
        response = await client.get(data["zip_url"])
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/zip"
        assert int(head.headers["content-length"]) == len(response.content)
        assert int(response.headers["content-length"]) == len(response.content)
        assert 'filename="With a missing video.zip"' in response.headers["content-disposition"]

    archive = zipfile.ZipFile(io.BytesIO(response.content))
    names = archive.namelist()
    assert names == ["01 - First.mp3", "03 - Third.mp3", "playlist.m3u8"]
    assert archive.testzip() is None
    for info in archive.infolist():
        assert info.compress_type == zipfile.ZIP_STORED
        # no data descriptor: each CRC was known before its bytes went (the worker's)
        assert not info.flag_bits & 0x08
    for name in names[:2]:
        path = tmp_path / name
        path.write_bytes(archive.read(name))
        assert_mp3(path, seconds=3, bitrate=192)
    m3u = archive.read("playlist.m3u8").decode()
    assert m3u.startswith("#EXTM3U\n")
    assert "01 - First.mp3" in m3u and "03 - Third.mp3" in m3u
    assert "# 2. Gone: not included (" in m3u


async def test_a_burst_of_the_same_playlist_reads_it_once(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str
) -> None:
    settings = make_settings(redis_url=redis_url, max_duration=600)
    async with service(settings) as client:
        answers = await asyncio.gather(
            *(client.post("/playlists", json=playlist_body("PLwithTooLong")) for _ in range(12))
        )
        codes = sorted(a.json()["message_code"] for a in answers)
        assert codes == ["PLAYLIST_EXISTS"] * 11 + ["PLAYLIST_QUEUED"]
        assert sorted(a.status_code for a in answers) == [200] * 11 + [201]
        assert len({a.json()["data"]["id"] for a in answers}) == 1
        playlist = answers[0].json()["data"]["id"]
        data = await wait_playlist(client, playlist)
        assert stand_in.feed_hits["PLwithTooLong"] == 1
        assert data["status"] == "done"
        long_one = data["entries"][1]
        assert long_one["status"] == "failed" and long_one["error"]["code"] == "TOO_LONG"
        assert long_one["job_id"] is None
        # refused from the listing's duration: never downloaded, its page never opened
        assert stand_in.page_hits["longVideo01"] == 0
        again = await client.post("/playlists", json=playlist_body("PLwithTooLong"))
        assert again.status_code == 200 and again.json()["data"]["id"] == playlist


async def test_a_list_that_cannot_be_read_fails_with_a_code(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str
) -> None:
    stand_in.feeds["PLemptyList"] = Feed([])
    settings = make_settings(redis_url=redis_url)
    async with service(settings) as client:
        missing = await submit_playlist(client, "PLnotThere")
        empty = await submit_playlist(client, "PLemptyList")
        data = await wait_playlist(client, missing)
        assert data["status"] == "failed" and data["error"]["code"] == "PLAYLIST_UNAVAILABLE"
        assert data["entries"] == [] and data["total"] == 0
        zip_answer = await client.get(data["zip_url"])
        assert zip_answer.status_code == 409 and zip_answer.json()["message_code"] == "NOT_READY"
        data = await wait_playlist(client, empty)
        assert data["status"] == "failed" and data["error"]["code"] == "PLAYLIST_EMPTY"


async def test_a_long_list_is_capped_and_read_in_one_page(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str
) -> None:
    # a window of 1 keeps the conversions from running much while this looks
    settings = make_settings(redis_url=redis_url, playlist_max=200, queue_window=1)
    async with service(settings) as client:
        playlist = await submit_playlist(client, "PL250entries")

        async def read() -> dict[str, Any] | None:
            data: dict[str, Any] = (await client.get(f"/playlists/{playlist}")).json()["data"]
            return data if data["status"] != "resolving" else None

        data = await wait_for(read, timeout=30, interval=0.05)
        assert data["total"] == 200 and data["truncated"] is True
        assert [e["position"] for e in data["entries"]] == list(range(1, 201))
        assert data["entries"][-1]["video_id"] == "many0000199"
        assert stand_in.feed_hits["PL250entries"] == 1
        assert sum(stand_in.page_hits[f"many{n:07d}"] for n in range(200, 250)) == 0


async def test_the_events_stream_ends_after_done(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str
) -> None:
    settings = make_settings(redis_url=redis_url, max_duration=600)
    async with service(settings) as client:
        playlist = await submit_playlist(client, "PLwithTooLong")
        events: list[str] = []
        async with client.stream("GET", f"/playlists/{playlist}/events") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    events.append(line)
        assert '"status":"done"' in events[-1]
        assert all('"status":"done"' not in e for e in events[:-1])


async def test_single_videos_start_at_once_while_entries_fill_every_slot_of_two_workers(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str
) -> None:
    """Two workers on one Redis, one slot each (YTMP3_MAX_JOBS=1), both running a
    playlist's entry, and a third entry waiting in ARQ's queue of entries (a window of
    3): a new video and a single submission of that third entry (another client) each
    start at once, beside the entries, each converted once."""
    audio = make_audio(5)
    entries = [f"slotEntry{n:02d}" for n in range(4)]
    stand_in.feeds["PLslotList"] = Feed([(v, v, 5.0) for v in entries])
    for video_id in entries:
        # ~30 s each until released: the entries hold their slots while the test looks
        stand_in.sources[video_id] = Source(
            audio, bytes_per_second=len(audio) // 30, hurry_on_release=True
        )
    stand_in.sources[entries[2]] = Source(audio)  # the one a single submission wants
    stand_in.sources["slotSingle0"] = Source(audio)
    settings = make_settings(redis_url=redis_url, max_jobs=1, queue_window=3, trusted_proxies=PROXY)
    redis = Store.from_url(redis_url).connect()
    jobs = JobStore(redis, settings.result_ttl)
    async with service(settings, workers=2) as client:

        async def both_taking() -> bool:
            return await workers.alive(redis) == 2

        await wait_for(both_taking, timeout=30)
        playlist = await submit_playlist(
            client, "PLslotList", headers={"X-Forwarded-For": "198.51.100.1"}
        )

        async def entry_jobs() -> list[str] | None:
            data = (await client.get(f"/playlists/{playlist}")).json()["data"]
            return [e["job_id"] for e in data["entries"]] if data["entries"] else None

        first, second, third, _ = await wait_for(entry_jobs, timeout=30)

        async def runners(*of: str) -> list[str] | None:
            """The worker that took each of `of`, once each has been taken."""
            states = [await jobs.get(job_id) for job_id in of]
            found = [s.worker for s in states if s is not None and s.worker is not None]
            return found if len(found) == len(of) else None

        async def statuses(*of: str) -> list[Status | None]:
            return [s.status if s else None for s in [await jobs.get(j) for j in of]]

        # every slot of both workers holds an entry, one each
        assert len(set(await wait_for(lambda: runners(first, second), timeout=30))) == 2
        # (ARQ keeps a job in its queue until it ends)
        assert await queued_in_arq(redis, keys.BULK_QUEUE) == sorted([first, second, third])
        assert await statuses(third) == [Status.QUEUED]
        other = {"X-Forwarded-For": "198.51.100.2"}
        fresh = await client.post("/submit", json=submit_body("slotSingle0"), headers=other)
        assert fresh.status_code == 201, fresh.text
        shared = await client.post("/submit", json=submit_body(entries[2]), headers=other)
        assert shared.json()["data"]["id"] == third
        single = fresh.json()["data"]["id"]
        # at once, one in each worker's single video's slot, while the entries still
        # hold theirs (their downloads take 30 s until released)
        assert len(set(await wait_for(lambda: runners(single, third), timeout=10))) == 2
        assert (await wait_finished(client, single, timeout=30))["status"] == "done"
        assert (await wait_finished(client, third, timeout=30))["status"] == "done"
        assert await statuses(first, second) == [Status.DOWNLOADING] * 2
        stand_in.release_stalls.set()
        final = await wait_playlist(client, playlist, timeout=60)
        assert final["status"] == "done" and final["done"] == 4
    assert all(stand_in.downloads[v] == 1 for v in [*entries, "slotSingle0"]), stand_in.downloads
    await redis.aclose()


async def queued_in_arq(redis: Any, queue: str) -> list[str]:
    """The ARQ job ids in `queue` (waiting or running), sorted."""
    return sorted(m.decode() for m in await redis.zrange(queue, 0, -1))


async def test_a_single_video_is_not_stuck_behind_another_clients_playlist(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str
) -> None:
    audio = make_audio(5)
    heavy = [(f"heavyList{n:02d}", f"Heavy {n}", 5.0) for n in range(30)]
    stand_in.feeds["PLthirtyTracks"] = Feed(list(heavy))
    for video_id, _, _ in [*heavy, ("singleVid00", "", 0)]:
        # each download takes ~0.5 s: the 30 take ~8 s on two slots
        stand_in.sources[video_id] = Source(audio, bytes_per_second=len(audio) * 2)
    settings = make_settings(redis_url=redis_url, max_jobs=2, trusted_proxies=PROXY)
    async with service(settings) as client:
        await started(settings)
        playlist = await submit_playlist(
            client, "PLthirtyTracks", headers={"X-Forwarded-For": "198.51.100.1"}
        )

        async def converting() -> bool:
            data = (await client.get(f"/playlists/{playlist}")).json()["data"]
            return bool(data["status"] == "converting")

        await wait_for(converting, timeout=30)
        single = await client.post(
            "/submit", json=submit_body("singleVid00"), headers={"X-Forwarded-For": "198.51.100.2"}
        )
        assert single.status_code == 201
        single_done = await wait_finished(client, single.json()["data"]["id"], timeout=60)
        single_at = time.monotonic()
        assert single_done["status"] == "done"
        data = (await client.get(f"/playlists/{playlist}")).json()["data"]
        assert data["done"] <= 10, data["done"]  # most of the 30 are still to come
        final = await wait_playlist(client, playlist, timeout=180)
        assert final["status"] == "done" and final["done"] == 30
        assert time.monotonic() - single_at > 2.0  # the playlist went on well after


AUTOGROUPS = Path("/proc/self/autogroup").exists()


def lowered(pid: int, base: int) -> int:
    """How many nice levels below the test's own a process runs: its autogroup's (it
    leads a session), or where there are none its own."""
    if AUTOGROUPS:
        return int(Path(f"/proc/{pid}/autogroup").read_text().split()[-1])
    return os.getpriority(os.PRIO_PROCESS, pid) - base


async def test_entries_yield_to_a_single_submission_of_one_that_starts_at_once(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str
) -> None:
    """The playlist's window fills the worker's two entries' slots, at the worker's
    priority while they are alone; a single submission of its last entry (another
    client) takes a single video's slot at once, ahead of the entry before it, not as
    bulk; the two entries yield the CPU to it while it runs, and take it back when it
    ends. All with the default settings but YTMP3_MAX_JOBS."""
    base = os.getpriority(os.PRIO_PROCESS, 0)
    audio = make_audio(5)
    entries = [f"niceEntry{n:02d}" for n in range(4)]
    stand_in.feeds["PLniceList"] = Feed([(v, v, 5.0) for v in entries])
    for video_id in entries:
        # the entries' downloads take ~8 s (their processes are looked at), until released;
        # the single submission's ~2 s
        rate = len(audio) // (2 if video_id == entries[3] else 8)
        stand_in.sources[video_id] = Source(audio, bytes_per_second=rate, hurry_on_release=True)
    settings = make_settings(redis_url=redis_url, max_jobs=2, trusted_proxies=PROXY)
    async with service(settings) as client:
        await started(settings)
        playlist = await submit_playlist(
            client, "PLniceList", headers={"X-Forwarded-For": "198.51.100.1"}
        )

        async def jobs() -> list[str] | None:
            data = (await client.get(f"/playlists/{playlist}")).json()["data"]
            return [e["job_id"] for e in data["entries"]] if data["entries"] else None

        first, second, third, last = await wait_for(jobs, timeout=30)

        def ffmpegs(*of: str) -> dict[str, int] | None:
            found = {job: processes_mentioning(job) for job in of}
            return {job: pids[0] for job, pids in found.items()} if all(found.values()) else None

        bulk = await wait_for(lambda: ffmpegs(first, second), timeout=30)
        if AUTOGROUPS:  # alone, a playlist takes the CPU as any conversion would
            assert [lowered(pid, base) for pid in bulk.values()] == [0, 0]
        shared = await client.post(
            "/submit", json=submit_body(entries[3]), headers={"X-Forwarded-For": "198.51.100.2"}
        )
        assert shared.json()["message_code"] == "REQUEST_EXISTS"
        assert shared.json()["data"]["id"] == last
        single = (await wait_for(lambda: ffmpegs(last), timeout=30))[last]
        assert lowered(single, base) == 0
        assert [lowered(pid, base) for pid in bulk.values()] == [BULK_NICE, BULK_NICE]
        (server,) = fetch_servers_of(os.getpid())
        downloads = [os.getpriority(os.PRIO_PROCESS, pid) for pid in fetch_servers_of(server)]
        niced = min(19, base + BULK_NICE)  # the entries' downloads, for good
        assert sorted(downloads) == [base, niced, niced]
        # the entry before it waits for the window, as every entry of the list would
        assert (await client.get(f"/status/{third}")).json()["data"]["status"] == "queued"
        assert (await wait_finished(client, last, timeout=30))["status"] == "done"
        if AUTOGROUPS:  # a process's own nice could not be raised back; a group's can
            # (once the single's run has ended, a moment after its record says done)
            await wait_for(lambda: all(lowered(p, base) == 0 for p in bulk.values()), timeout=5)
        stand_in.release_stalls.set()
        final = await wait_playlist(client, playlist, timeout=60)
        assert final["status"] == "done" and final["done"] == 4
