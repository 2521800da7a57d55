"""Faults between ytmp3 and its bucket, made by a proxy in between: a worker killed
(SIGKILL) while it uploads an MP3 leaves no object and nothing is served, and its job is
handed back, converted again and done once; downloads cut mid-body are taken up again
from where they stopped."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import submit_body, wait_finished, wait_for
from tests.harness import app_client, free_port, settings_env, ytmp3_process
from tests.s3_server import SeaweedFS
from tests.stand_in import StandIn
from ytmp3.cache.connection import Store
from ytmp3.cache.job_store import JobStore
from ytmp3.config import Settings
from ytmp3.storage import open_storage

pytestmark = [pytest.mark.slow, pytest.mark.redis]
SettingsFactory = Callable[..., Settings]


class HoldingProxy:
    """A TCP proxy to the S3 server that forwards everything but uploads: a connection
    whose request starts with PUT is held (its bytes go nowhere) once `hold` is set. With
    `cut_after`, each connection is closed once it has sent that many bytes back."""

    def __init__(self, upstream: tuple[str, int], cut_after: int | None = None) -> None:
        self.upstream = upstream
        self.cut_after = cut_after
        self.cuts = 0
        self.hold = threading.Event()
        self.held = threading.Event()  # an upload was caught
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client, socket.create_connection(self.upstream) as server:
            back = threading.Thread(target=self._pump, args=(server, client, self.cut_after))
            back.start()
            self._pump(client, server, uploads=True)
            back.join()

    def _pump(
        self, src: socket.socket, dst: socket.socket, limit: int | None = None, *,
        uploads: bool = False,
    ) -> None:  # fmt: skip
        holding, sent = False, 0
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if uploads and self.hold.is_set() and data.startswith(b"PUT "):
                    holding = True
                    self.held.set()
                if limit is not None and sent + len(data) > limit:
                    dst.sendall(data[: limit - sent])
                    self.cuts += 1
                    src.shutdown(socket.SHUT_RDWR)  # both ways: the connection is cut
                    break
                if not holding:
                    dst.sendall(data)
                    sent += len(data)
        # the sender is gone: the upstream sees its request cut, never complete
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.closing = True
        self.listener.close()


@contextlib.contextmanager
def holding_proxy(server: SeaweedFS, cut_after: int | None = None) -> Iterator[HoldingProxy]:
    proxy = HoldingProxy((server.host, server.base_port + 6), cut_after)
    try:
        yield proxy
    finally:
        proxy.close()


async def test_a_worker_killed_mid_upload_leaves_no_object_and_the_job_is_done_once(
    s3_settings: SettingsFactory,
    s3_server: SeaweedFS,
    redis_url: str,
    stand_in: StandIn,
    tmp_path: Path,
) -> None:
    settings = s3_settings(redis_url=redis_url, max_jobs=1)
    storage = open_storage(settings)
    redis = Store.from_url(redis_url).connect()
    jobs = JobStore(redis, settings.result_ttl)
    with holding_proxy(s3_server) as proxy:
        proxied = settings.model_copy(update={"s3_endpoint": f"http://127.0.0.1:{proxy.port}"})
        async with app_client(settings) as client:
            proxy.hold.set()
            with ytmp3_process(
                "worker", settings_env(proxied, free_port()), tmp_path / "w1.log"
            ) as first:
                answer = await client.post("/submit", json=submit_body("s3killed001"))
                job = answer.json()["data"]["id"]
                await wait_for(proxy.held.is_set, timeout=60)
                # uploading: not done, nothing to download, no object
                status = (await client.get(f"/status/{job}")).json()["data"]["status"]
                assert status == "converting"
                refused = await client.get(f"/download-music/{job}")
                assert refused.status_code == 409
                assert await storage.stat(job) is None
                os.killpg(first.pid, signal.SIGKILL)
                first.wait()
            assert await storage.stat(job) is None and await storage.listing() == []
            log = tmp_path / "w2.log"
            with ytmp3_process("worker", settings_env(settings, free_port()), log):
                finished = await wait_finished(client, job, timeout=90)
                assert finished["status"] == "done"
                state = await jobs.get(job)
                assert state is not None and state.attempt == 1  # one re-run, done once
                (stored,) = await storage.listing()
                mp3 = await client.get(f"/download-music/{job}")
            assert (
                stored.job_id == job and len(mp3.content) == stored.size == finished["size_bytes"]
            )
            assert mp3.content[:3] == b"ID3"
    await redis.aclose()
    assert stand_in.downloads["s3killed001"] == 2  # converted again from zero, no more


async def test_a_download_cut_mid_body_is_taken_up_where_it_stopped(
    s3_settings: SettingsFactory, s3_server: SeaweedFS, tmp_path: Path
) -> None:
    data = os.urandom(3_000_000)
    local = tmp_path / "a.part"
    local.write_bytes(data)
    job = "cutvideo001-192-00000000"
    await open_storage(s3_settings()).put(job, local, disposition="attachment")
    with holding_proxy(s3_server, cut_after=700_000) as proxy:
        cut = open_storage(s3_settings(s3_endpoint=f"http://127.0.0.1:{proxy.port}"))
        body = await cut.open(job, 10, len(data))
        assert body is not None
        assert b"".join([chunk async for chunk in body]) == data[10:]
        assert proxy.cuts >= 4  # every connection cut after 700 kB: taken up each time
        cuts = proxy.cuts
        # a ZIP's member, read from a thread, the same way
        assert b"".join(await asyncio.to_thread(lambda: list(cut.chunks(job, len(data))))) == data
        assert proxy.cuts >= cuts + 4
