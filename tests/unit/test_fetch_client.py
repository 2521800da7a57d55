"""The worker's side of the fetch server, against a stand-in server played by the test."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import Iterator

import pytest

from ytmp3.jobs.fetch.client import FetchServer
from ytmp3.jobs.fetch.protocol import Job, Options


@pytest.fixture
def pipes() -> Iterator[tuple[int, int]]:
    audio_r, audio_w = os.pipe()
    events_r, events_w = os.pipe()
    yield audio_w, events_w
    for fd in (audio_r, audio_w, events_r, events_w):
        os.close(fd)


def connected(server: FetchServer) -> socket.socket:
    """Attach `server` to a socket pair, as `start` does; the test gets the server's end."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.setblocking(False)
    server._sock = ours
    server._reader = asyncio.create_task(server._read(ours))
    return theirs


async def test_a_download_whose_end_arrives_with_its_pid_is_still_told(
    pipes: tuple[int, int],
) -> None:
    # A download that fails at once: its pid and its end reach the worker together and
    # are read in one turn of the loop, before the spawn that asked for it runs again.
    client = FetchServer(Options(source_url="http://127.0.0.1:1/{video_id}"))
    server = connected(client)
    try:
        asking = asyncio.create_task(client.spawn(Job("http://127.0.0.1:1/x", 60), *pipes))
        request, fds, _, _ = await asyncio.to_thread(socket.recv_fds, server, 65536, 2)
        for fd in fds:
            os.close(fd)
        assert json.loads(request)["url"] == "http://127.0.0.1:1/x"
        server.send(json.dumps({"pid": 101}).encode())
        server.send(json.dumps({"exited": 101, "code": 1}).encode())

        download = await asyncio.wait_for(asking, 5)
        assert download.pid == 101
        assert await asyncio.wait_for(download.wait(), 5) == 1
    finally:
        await client.close()
        server.close()
