"""The server's side of ASGI's zero-copy send extension ("Zero Copy Send",
asgi.readthedocs.io/en/latest/extensions.html) for uvicorn's h11 protocol
(ytmp3.api.http_server): a response hands over an open file and a byte range, and the
bytes go from the file to the socket inside the kernel (os.sendfile), never through Python.

Why: a playlist's ZIP sent block by block (a read into fresh memory, then a copy into the
socket) kept the API's core busy in the kernel, at about half the speed of `cat` on this
project's 2-core test machines; sent from the file it keeps up with the disk
(bench/RESULTS.md, row `zip`).

How, on the connection's socket beside its asyncio transport (public asyncio API only):

- nothing may wait in the transport's buffer when the kernel sends, or the file's bytes
  would overtake it: while a file is sent, the transport's write limits are (0, 0), so it
  pauses the protocol whenever anything waits in it and resumes it once it is empty;
- a range whose pages are in the page cache is sent from the event loop; one that would
  wait for the disk, from a thread (the socket is non-blocking: a full socket never holds
  the thread), on descriptors of its own (dup), so a connection or file closed meanwhile
  never turns the thread's send onto a reused descriptor;
- a full socket (EAGAIN): one byte goes through the transport, which tells, by resuming
  the protocol, when the socket has room again;
- h11 keeps the response's framing: given a stand-in of the range's length, its
  data-passthrough send counts it against Content-Length (or returns the chunk's framing
  around it), so the rest of the response goes on through uvicorn as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, cast

import h11

from ytmp3.api.file_reads import cached

EXTENSION = "http.response.zerocopysend"
SUPPORTED = hasattr(os, "sendfile")  # not on Windows: there the extension is not offered
# Bytes per sendfile call: whether they wait for the disk is asked of the last of them.
CHUNK = 4 * 1024 * 1024

Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class _Length:
    """Stands for a file range in an h11 Data event: h11 only takes its len()."""

    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size


def _close_when_done(future: asyncio.Future[Any] | None, fds: list[int]) -> None:
    """Close `fds` now, or once the thread still sending on them is done."""

    def close(_: object = None) -> None:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)

    if future is not None and not future.done():
        future.add_done_callback(close)
    else:
        close()


class FileSender:
    """Sends file ranges on one connection, for its h11 protocol."""

    def __init__(self, transport: asyncio.Transport, conn: h11.Connection) -> None:
        self.transport = transport
        self.conn = conn
        self.writable = asyncio.Event()
        self.writable.set()

    # the protocol's flow-control calls, passed on by it
    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def closed(self) -> None:
        self.writable.set()  # wakes a send waiting on a connection that is gone

    async def send(self, fd: int, offset: int, count: int) -> None:
        """`count` bytes of file `fd` from `offset`, as the response's next body bytes.
        EOFError when the file ends first; a client gone meanwhile just ends the send."""
        if count <= 0:
            return
        stand_in = _Length(count)
        # counted even for a client that is gone: the response then ends as uvicorn expects
        pieces = self.conn.send_with_data_passthrough(h11.Data(data=cast(bytes, stand_in)))
        if self.transport.is_closing():
            return
        for piece in pieces or ():
            if cast(object, piece) is stand_in:
                await self._sendfile(fd, offset, count)
            else:
                self.transport.write(piece)  # a chunk's framing

    async def _sendfile(self, fd: int, offset: int, count: int) -> None:
        loop = asyncio.get_running_loop()
        sock = self.transport.get_extra_info("socket")
        fds = [os.dup(sock.fileno()), os.dup(fd)]
        out, src = fds
        pending: asyncio.Future[int] | None = None
        self.transport.set_write_buffer_limits(high=0, low=0)
        try:
            end = offset + count
            while offset < end:
                while self.transport.get_write_buffer_size() and not self.transport.is_closing():
                    await self.writable.wait()
                if self.transport.is_closing():
                    return  # the client is gone: so is the rest of the response
                size = min(CHUNK, end - offset)
                try:
                    if cached(src, offset, size):
                        sent = os.sendfile(out, src, offset, size)
                    else:
                        pending = loop.run_in_executor(None, os.sendfile, out, src, offset, size)
                        sent = await pending
                        pending = None
                except BlockingIOError:
                    sent = await self._nudge(src, offset)
                except (BrokenPipeError, ConnectionResetError):
                    self.transport.close()
                    return
                if sent == 0:
                    raise EOFError(f"the file ended {end - offset} bytes short of its range")
                offset += sent
        finally:
            _close_when_done(pending, fds)
            if not self.transport.is_closing():
                self.transport.set_write_buffer_limits()  # the defaults again

    async def _nudge(self, fd: int, offset: int) -> int:
        """A full socket: one byte through the transport, whose resume tells when there is
        room again."""
        if cached(fd, offset, 1):
            byte = os.pread(fd, 1, offset)
        else:
            byte = await asyncio.get_running_loop().run_in_executor(None, os.pread, fd, 1, offset)
        self.transport.write(byte)  # held: the transport pauses the protocol till it's out
        return len(byte)


def serving_files(app: App, sender: Callable[[], FileSender | None]) -> App:
    """`app` with the extension offered in each HTTP request's scope and its messages
    sent by the connection's FileSender (`sender()`, None before the connection is made)."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        files = sender()
        if scope["type"] != "http" or files is None:
            await app(scope, receive, send)
            return
        scope["extensions"] = {**(scope.get("extensions") or {}), EXTENSION: {}}

        async def sending(message: Message) -> None:
            if message["type"] != EXTENSION:
                await send(message)
                return
            fd = message["file"].fileno()
            offset = message.get("offset")
            if offset is None:
                offset = os.lseek(fd, 0, os.SEEK_CUR)
            count = message.get("count")
            if count is None:
                count = os.fstat(fd).st_size - offset
            if scope["method"] != "HEAD":
                await files.send(fd, offset, count)
            if not message.get("more_body", False):
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        await app(scope, receive, sending)

    return wrapped
