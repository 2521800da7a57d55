"""The server's side of ASGI's zero-copy send extension ("Zero Copy Send",
asgi.readthedocs.io/en/latest/extensions.html) for uvicorn's h11 protocol
(ytmp3.api.http_server): a response hands over an open file and a byte range, and the
bytes go from the file to the socket inside the kernel (os.sendfile), never through Python.

Why: a playlist's ZIP sent block by block (a read into fresh memory, then a copy into the
socket) kept the API's core busy in the kernel, at about half the speed of `cat` on this
project's 2-core test machines; sent from the files it keeps up with the disk
(bench/RESULTS.md, row `zip`).

How, on the connection's socket beside its asyncio transport (public asyncio API only):

- h11 keeps the response's framing: given a stand-in of a range's length, its
  data-passthrough send counts it against Content-Length (or returns the chunk's framing
  around it), so the response ends through uvicorn as any other;
- from a response's first range on, its body goes through a queue (ranges, and the bytes
  between them), which one thread call, the pump, sends in order while there is work:
  blocking sends, the waits for the disk and for a moment's room in the socket made
  there (the kernel reads each file ahead as sendfile reads it: asking it to with
  POSIX_FADV_WILLNEED made the pump wait ~1.7 ms a file to queue the reads, measured).
  A hand-off between the loop and a thread for each file cost more than sending it, on
  a busy machine (bench/RESULTS.md); with the queue the app hands over the next files
  while the pump sends;
- nothing may wait in the transport's buffer while the pump sends, or the bytes would
  overtake it: while the queue is in use the transport's write limits are (0, 0), so it
  pauses the protocol whenever anything waits in it and resumes it once it is empty;
- a socket that stays full (a slow reader) stops the pump, so no reader holds a thread
  for long: one byte goes through the transport, which tells, by resuming the protocol,
  when there is room again, and the pump starts anew;
- the queue holds its own descriptors (dup), so a connection or file closed meanwhile
  never turns a send onto a reused descriptor; it holds at most MAX_RANGES files (the
  one being sent and the next three: the app's sends wait for room beyond that), so a ZIP's
  connection holds a few descriptors, whatever the list's length.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
import os
import select
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, cast

import h11

log = logging.getLogger(__name__)

EXTENSION = "http.response.zerocopysend"
SUPPORTED = hasattr(os, "sendfile")  # not on Windows: there the extension is not offered
# How long the pump waits for a full socket to take more before it stops and the event
# loop waits instead: a slow reader never holds a thread for long.
FULL_WAIT = 0.002
# Bytes a pump call sends before it yields its thread to the next connection's: the pump
# threads (PUMP_THREADS of their own, so no ZIP takes the loop's default executor from
# the rest of the API) are shared in turns, whatever each download's size.
PUMP_TURN = 8 * 1024 * 1024
PUMP_THREADS = 4
MAX_RANGES = 4

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


@dataclass
class _Range:
    fd: int  # the queue's own (a dup)
    offset: int
    count: int


class _Stop(enum.Enum):
    EMPTY = "empty"  # all sent
    FULL = "full"  # the socket stayed full: the loop waits for room
    TURN = "turn"  # PUMP_TURN sent: the next pump call waits its turn
    SHORT = "short"  # a file ended before its range
    GONE = "gone"  # the connection is closed


@functools.cache
def _pumps() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(PUMP_THREADS, thread_name_prefix="ytmp3-zero-copy")


def _poller(fd: int) -> select.poll:
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return poller


def write_all(out: int, data: bytes) -> tuple[int, bool]:
    """Blocking, for a thread: `data` written to non-blocking socket `out` until all of it
    is, or the socket stays full for FULL_WAIT seconds. The bytes written, and whether it
    stopped for a full socket."""
    poller = _poller(out)
    view = memoryview(data)
    sent = 0
    while sent < len(data):
        try:
            sent += os.write(out, view[sent:])
        except BlockingIOError:
            if not poller.poll(FULL_WAIT * 1000):
                return sent, True
    return sent, False


def send_range(out: int, src: int, offset: int, count: int) -> tuple[int, bool]:
    """Blocking, for a thread: os.sendfile until `count` bytes from `offset` are sent, the
    file ends, or the socket stays full for FULL_WAIT seconds. The bytes sent, and whether
    it stopped for a full socket."""
    poller = _poller(out)
    sent = 0
    while sent < count:
        try:
            n = os.sendfile(out, src, offset + sent, count - sent)
        except BlockingIOError:
            if not poller.poll(FULL_WAIT * 1000):
                return sent, True
            continue
        if n == 0:
            break  # the end of the file
        sent += n
    return sent, False


class FileSender:
    """One connection's zero-copy sends, for its h11 protocol."""

    transport: asyncio.Transport  # from connect(), before any request

    def __init__(self, conn: h11.Connection) -> None:
        self.conn = conn
        self.queue: deque[bytes | _Range] = deque()
        self.pump: asyncio.Future[tuple[_Stop, bytes]] | None = None
        self.restart: asyncio.Future[None] | None = None  # a pump to start once writable
        self.idle = asyncio.Event()  # no queue in use: uvicorn writes as usual
        self.idle.set()
        self.room = asyncio.Event()  # the queue holds fewer than MAX_RANGES files
        self.room.set()
        self.writable = asyncio.Event()  # nothing waits in the transport's buffer
        self.writable.set()
        self.ranges = 0  # files in the queue
        self.gone = False
        self.short: EOFError | None = None

    def connect(self, transport: asyncio.Transport) -> None:
        self.transport = transport

    # the protocol's flow-control calls, passed on by it
    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def closed(self) -> None:
        self.gone = True  # the pump stops at its next look
        for event in (self.writable, self.room):
            event.set()  # and nobody waits on a connection that is gone
        if self.pump is None and self.restart is None and self.active:
            self._finish()

    @property
    def active(self) -> bool:
        """Whether this response's body goes through the queue (from its first range)."""
        return not self.idle.is_set()

    async def send_file(self, fd: int, offset: int, count: int) -> None:
        """`count` bytes of file `fd` from `offset`, as the response's next body bytes."""
        self._check()
        if count <= 0:
            return
        stand_in = _Length(count)
        # counted even for a client that is gone: the response then ends as uvicorn expects
        pieces = self.conn.send_with_data_passthrough(h11.Data(data=cast(bytes, stand_in)))
        for piece in pieces or ():
            if cast(object, piece) is stand_in:
                self._queue(_Range(os.dup(fd), offset, count))
            else:
                self._queue(bytes(piece))  # a chunk's framing
        await self._room()

    async def send_bytes(self, data: bytes) -> None:
        """Body bytes after a range, in order with it."""
        self._check()
        pieces = self.conn.send_with_data_passthrough(h11.Data(data=data))
        self._queue(b"".join(pieces or ()))
        await self._room()

    async def drained(self) -> None:
        """Once everything queued is sent (EOFError if a file ended short)."""
        await self.idle.wait()
        self._check()

    def _check(self) -> None:
        if self.short is not None:
            raise self.short

    def _queue(self, item: bytes | _Range) -> None:
        if self.gone or self.transport.is_closing():
            if isinstance(item, _Range):
                os.close(item.fd)
            return
        if not self.active:
            self.idle.clear()
            self.transport.set_write_buffer_limits(high=0, low=0)
        self.queue.append(item)
        if isinstance(item, _Range):
            self.ranges += 1
            if self.ranges >= MAX_RANGES:
                self.room.clear()
        self._kick()

    def _sent_range(self) -> None:
        self.ranges = max(0, self.ranges - 1)  # (0 already, after a _finish)
        if self.ranges < MAX_RANGES:
            self.room.set()

    async def _room(self) -> None:
        while not self.room.is_set():
            await self.room.wait()

    def _kick(self) -> None:
        """The pump started, now or once the transport's buffer is empty (at most one)."""
        if self.pump is not None or self.restart is not None:
            return
        if self.writable.is_set() and not self.transport.get_write_buffer_size():
            self._start()
        else:
            self.restart = asyncio.ensure_future(self._start_when_writable())

    async def _start_when_writable(self) -> None:
        try:
            while self.transport.get_write_buffer_size() and not self.gone:
                if self.writable.is_set():  # never so with limits (0, 0): no spin if it is
                    await asyncio.sleep(0.001)
                else:
                    await self.writable.wait()
        finally:
            self.restart = None
        if self.gone:
            self._finish()
        elif self.pump is None and self.queue:
            self._start()

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        out = os.dup(self.transport.get_extra_info("socket").fileno())
        self.pump = loop.run_in_executor(_pumps(), self._pumping, out, loop)
        self.pump.add_done_callback(lambda done: self._pumped(done, out))

    def _pumping(self, out: int, loop: asyncio.AbstractEventLoop) -> tuple[_Stop, bytes]:
        """In a thread: the queue sent from its left (the loop only appends on the right)."""
        turn = PUMP_TURN
        while not self.gone:
            if turn <= 0:
                return _Stop.TURN, b""
            try:
                item = self.queue[0]
            except IndexError:
                return _Stop.EMPTY, b""
            if isinstance(item, bytes):
                sent, full = write_all(out, item)
                self.queue[0] = item = item[sent:]
                left = len(item)
            else:
                size = min(item.count, turn)
                sent, full = send_range(out, item.fd, item.offset, size)
                item.offset += sent
                item.count -= sent
                left = item.count
                if sent < size and not full:
                    return _Stop.SHORT, b""
            turn -= sent
            if full:
                return _Stop.FULL, self._one_byte()
            if not left:
                self.queue.popleft()
                if isinstance(item, _Range):
                    os.close(item.fd)
                    loop.call_soon_threadsafe(self._sent_range)
        return _Stop.GONE, b""

    def _one_byte(self) -> bytes:
        """The queue's next byte, taken off it (for the transport to hold)."""
        item = self.queue[0]
        if isinstance(item, bytes):
            self.queue[0] = item[1:]
            return item[:1]
        byte = os.pread(item.fd, 1, item.offset)
        item.offset += len(byte)
        item.count -= len(byte)
        return byte

    def _pumped(self, done: asyncio.Future[tuple[_Stop, bytes]], out: int) -> None:
        self.pump = None
        os.close(out)
        try:
            stop, byte = done.result()
        except OSError:  # the client reset or left mid-send
            stop, byte = _Stop.GONE, b""
        except Exception:  # a bug: the response is cut, the server goes on
            log.exception("zero-copy send failed")
            stop, byte = _Stop.GONE, b""
        if stop is _Stop.FULL and byte:
            self.transport.write(byte)  # held: the transport pauses the protocol till it's out
            self._kick()
            return
        if stop is _Stop.SHORT or (stop is _Stop.FULL and not byte):
            self.short = EOFError("a file ended before its range")
        if stop not in (_Stop.EMPTY, _Stop.TURN):
            self.transport.close()  # cut short of its length: never a whole-looking body
        if stop in (_Stop.EMPTY, _Stop.TURN) and self.queue and not self.gone:
            self._start()  # its next turn, or what was appended after its last look
            return
        self._finish()

    def _finish(self) -> None:
        while self.queue:
            item = self.queue.popleft()
            if isinstance(item, _Range):
                os.close(item.fd)
        self.ranges = 0
        if not self.transport.is_closing():
            self.transport.set_write_buffer_limits()  # the defaults again
        for event in (self.room, self.idle):
            event.set()


def serving_files(app: App, files: FileSender) -> App:
    """`app` with the extension offered in each HTTP request's scope and its messages
    sent by the connection's FileSender. (It holds the sender, not the protocol: the
    protocol holds it, and a cycle would keep every closed connection until the GC runs.)"""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        scope["extensions"] = {**(scope.get("extensions") or {}), EXTENSION: {}}
        head = scope["method"] == "HEAD"

        async def sending(message: Message) -> None:
            kind = message["type"]
            if kind == EXTENSION:
                if not head:
                    await files.send_file(*_range(message))
                more = message.get("more_body", False)
            elif kind == "http.response.body" and files.active:
                if body := message.get("body", b""):
                    await files.send_bytes(body)
                more = message.get("more_body", False)
            else:
                await send(message)
                return
            if not more:
                await files.drained()
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        await app(scope, receive, sending)

    return wrapped


def _range(message: Message) -> tuple[int, int, int]:
    """The message's descriptor, offset and count (ASGI: offset None is the file's current
    position, count None is to its end)."""
    fd: int = message["file"].fileno()
    offset = message.get("offset")
    if offset is None:
        offset = os.lseek(fd, 0, os.SEEK_CUR)
    count = message.get("count")
    if count is None:
        count = os.fstat(fd).st_size - offset
    return fd, offset, count
