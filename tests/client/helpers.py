"""What the client tests share: the command, its environment, and a proxy that cuts or
slows the downloads passing through it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness import settings_env
from ytmp3.config import Settings

DOWNLOAD = rb"GET /download-music/"
EVENTS = rb"GET /status/[^ ]+/events "
RANGE = re.compile(rb"^range: bytes=(\d+)-", re.MULTILINE | re.IGNORECASE)


def listening_ports(pids: set[int]) -> set[int]:
    """TCP ports that any of `pids` listens on (Linux: their sockets looked up in /proc)."""
    inodes: set[str] = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
    ports: set[int] = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def get_command(*args: str) -> list[str]:
    """`ytmp3 get ARGS`, as a user runs it."""
    return [sys.executable, "-m", "ytmp3", "get", *args]


def client_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of `ytmp3 get` run in-process on these settings (the stand-in)."""
    env = settings_env(settings, 8080)  # the port is unused: nothing listens
    env.pop("YTMP3_MEDIA_DIR")  # the in-process service makes its own
    env.update(extra)
    return env


@dataclass
class Proxy:
    """A TCP relay in front of a server. Once a request matching `watch` (a download, by
    default) has passed on a connection, what comes back is counted: `cut_after` bytes
    end the connection (`cuts` times), and `bytes_per_second` paces it. The requests
    seen, whole, are kept."""

    upstream_port: int
    watch: bytes = DOWNLOAD
    cut_after: int | None = None
    cuts: int = 1
    bytes_per_second: int | None = None
    port: int = 0
    ranges: list[int] = field(default_factory=list)  # the Range starts asked for
    watched: int = 0
    requests: list[bytes] = field(default_factory=list)

    async def _relay_up(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, flags: dict[str, bool]
    ) -> None:
        while chunk := await reader.read(65536):
            self.requests.append(chunk)
            if re.search(b"^" + self.watch, chunk, re.MULTILINE):
                self.watched += 1
                flags["download"] = True
                if match := RANGE.search(chunk):
                    self.ranges.append(int(match.group(1)))
            writer.write(chunk)
            await writer.drain()

    async def _relay_down(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, flags: dict[str, bool]
    ) -> None:
        sent = 0
        while chunk := await reader.read(4096):
            if flags.get("download"):
                if self.cut_after is not None and self.cuts > 0:
                    room = self.cut_after - sent
                    if room <= len(chunk):
                        self.cuts -= 1
                        writer.write(chunk[:room])
                        await writer.drain()
                        return  # the connection is closed mid-body
                if self.bytes_per_second:
                    await asyncio.sleep(len(chunk) / self.bytes_per_second)
                sent += len(chunk)
            writer.write(chunk)
            await writer.drain()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        flags: dict[str, bool] = {}
        relays = [
            asyncio.create_task(self._relay_up(reader, up_writer, flags)),
            asyncio.create_task(self._relay_down(up_reader, writer, flags)),
        ]
        try:
            await asyncio.wait(relays, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in relays:
                task.cancel()
            for w in (writer, up_writer):
                w.close()
                with contextlib.suppress(OSError):
                    await w.wait_closed()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Proxy]:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        async with server:
            yield self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
