"""ASGI's zero-copy send as ytmp3's HTTP server offers it (ytmp3.api.zero_copy, wired into
ytmp3.api.http_server.Guarded): a real uvicorn on loopback, on asyncio's loop and on
uvloop's, read by a raw socket parsed with h11, so every byte on the wire is checked."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import h11
import pytest
import uvicorn
import uvloop

from ytmp3.api import zero_copy
from ytmp3.api.http_server import protocol
from ytmp3.api.zero_copy import EXTENSION
from ytmp3.config import Settings

DATA = os.urandom(9 * 1024 * 1024 + 4321)  # more than loopback's socket buffers take at once
LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


class App:
    """Answers `<` + the file's range + `>`; ?offset=&count=&chunked=1 say which and how."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offered: list[bool] = []
        self.errors: list[BaseException] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
        offset, count = int(query.get("offset", 0)), int(query.get("count", len(DATA)))
        self.offered.append(EXTENSION in (scope.get("extensions") or {}))
        headers = [(b"content-type", b"application/octet-stream")]
        if "chunked" not in query:
            headers.append((b"content-length", str(count + 2).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"<", "more_body": True})
        try:
            with self.path.open("rb") as file:
                message = {"type": EXTENSION, "file": file, "offset": offset, "count": count}
                await send({**message, "more_body": True})
            # after a range, the body's bytes go in order with it (the file closed: the
            # server holds its own descriptor)
            await send({"type": "http.response.body", "body": b">", "more_body": False})
        except EOFError as error:  # a range past the file's end, told by a later send
            self.errors.append(error)
            raise


@contextlib.contextmanager
def served(app: App, loop: str, tmp_path: Path) -> Iterator[int]:
    """uvicorn with ytmp3's protocol, in a thread with its own loop; its port."""
    settings = Settings(media_dir=tmp_path / "media", _env_file=None)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    config = uvicorn.Config(
        app, http=protocol(settings, 100), lifespan="off", log_config=None, log_level=None
    )
    server = uvicorn.Server(config)

    def run() -> None:
        with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
            runner.run(server.serve(sockets=[sock]))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
    assert not thread.is_alive()


class Client:
    """One connection, its answers parsed by h11."""

    def __init__(self, port: int, rcvbuf: int | None = None) -> None:
        self.sock = socket.socket()
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        self.conn = h11.Connection(h11.CLIENT)

    def ask(self, target: str, method: str = "GET") -> None:
        request = h11.Request(method=method, target=target, headers=[("host", "t")])
        self.sock.sendall(self.conn.send(request) + self.conn.send(h11.EndOfMessage()))

    def answer(self) -> tuple[int, bytes]:
        status, body = 0, bytearray()
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(self.sock.recv(1 << 16))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                self.conn.start_next_cycle()
                return status, bytes(body)
            else:
                raise AssertionError(f"unexpected {event!r}")

    def get(self, target: str, method: str = "GET") -> tuple[int, bytes]:
        self.ask(target, method)
        return self.answer()

    def reset(self) -> None:
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.bin"
    path.write_bytes(DATA)
    return path


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_a_files_range_arrives_whole_in_the_body_and_the_connection_goes_on(
    data_file: Path, tmp_path: Path, loop: str, framing: str
) -> None:
    app = App(data_file)
    chunked = "&chunked=1" if framing == "chunked" else ""
    with served(app, loop, tmp_path) as port:
        client = Client(port)
        for offset, count in [(0, len(DATA)), (12345, 3 * 1024 * 1024 + 5), (7, 1)]:
            status, body = client.get(f"/?offset={offset}&count={count}{chunked}")
            assert status == 200
            assert body == b"<" + DATA[offset : offset + count] + b">"
        # HEAD: the same answer's head, no byte of the file, and the connection goes on
        status, body = client.get(f"/?count=100{chunked}", method="HEAD")
        assert (status, body) == (200, b"")
        assert client.get("/?offset=1&count=10") == (200, b"<" + DATA[1:11] + b">")
    assert app.offered and all(app.offered)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_reader_that_lets_the_socket_fill_still_gets_every_byte(
    data_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loop: str
) -> None:
    full: list[int] = []
    real = os.sendfile

    def sendfile(out: int, src: int, offset: int | None, count: int) -> int:
        try:
            return real(out, src, offset, count)
        except BlockingIOError:
            full.append(offset or 0)
            raise

    monkeypatch.setattr(os, "sendfile", sendfile)
    with served(App(data_file), loop, tmp_path) as port:
        client = Client(port, rcvbuf=4096)
        client.ask("/")
        wait_for_sync(lambda: bool(full), timeout=10)  # the server met a full socket
        assert client.answer() == (200, b"<" + DATA + b">")
        assert client.get("/?offset=5&count=5") == (200, b"<" + DATA[5:10] + b">")


def test_a_file_shorter_than_its_range_cuts_the_response_short(
    data_file: Path, tmp_path: Path
) -> None:
    app = App(data_file)
    with served(app, "uvloop", tmp_path) as port:
        client = Client(port)
        client.ask(f"/?offset=100&count={len(DATA)}")  # 100 bytes past the end
        with pytest.raises(h11.RemoteProtocolError):
            client.answer()  # the connection closes before its Content-Length
        assert app.errors and isinstance(app.errors[0], EOFError)
        assert Client(port).get("/?count=3") == (200, b"<" + DATA[:3] + b">")


@pytest.mark.parametrize("loop", LOOPS)
def test_a_client_gone_mid_file_leaves_no_descriptor_and_the_server_serving(
    data_file: Path, tmp_path: Path, loop: str
) -> None:
    with served(App(data_file), loop, tmp_path) as port:
        before = len(os.listdir("/proc/self/fd"))
        for _ in range(5):
            client = Client(port, rcvbuf=4096)
            client.ask("/")
            client.sock.recv(1000)
            client.reset()
        # each connection's socket, the app's file and the sender's duplicates all closed
        wait_for_sync(lambda: len(os.listdir("/proc/self/fd")) <= before, timeout=10)
        assert Client(port).get("/?count=10") == (200, b"<" + DATA[:10] + b">")


@pytest.mark.parametrize("loop", LOOPS)
def test_stalled_readers_hold_no_pump_thread_from_another_download(
    data_file: Path, tmp_path: Path, loop: str
) -> None:
    """Twice as many readers that never read as there are pump threads, each with a file
    in flight: another client's download still arrives whole, and promptly."""
    with served(App(data_file), loop, tmp_path) as port:
        stalled = [Client(port, rcvbuf=4096) for _ in range(2 * zero_copy.PUMP_THREADS)]
        for client in stalled:
            client.ask("/")
        began = time.monotonic()
        assert Client(port).get("/") == (200, b"<" + DATA + b">")
        assert time.monotonic() - began < 5
        for client in stalled:
            client.reset()


@pytest.mark.parametrize("loop", LOOPS)
def test_downloads_taking_turns_on_the_pump_threads_each_get_their_own_bytes(
    data_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loop: str
) -> None:
    monkeypatch.setattr(zero_copy, "PUMP_TURN", 64 * 1024)  # many turns a download
    with served(App(data_file), loop, tmp_path) as port:
        clients = [Client(port) for _ in range(2 * zero_copy.PUMP_THREADS)]
        ranges = [(n * 1000, len(DATA) - n * 2000) for n in range(len(clients))]
        for client, (offset, count) in zip(clients, ranges, strict=True):
            client.ask(f"/?offset={offset}&count={count}&chunked=1")
        for client, (offset, count) in zip(clients, ranges, strict=True):
            assert client.answer() == (200, b"<" + DATA[offset : offset + count] + b">")


def test_send_range_stops_at_the_files_end_and_at_a_socket_that_stays_full(
    data_file: Path,
) -> None:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    fd = os.open(data_file, os.O_RDONLY)
    try:
        # nobody reads: the socket fills, and the thread gives up after FULL_WAIT
        began = time.monotonic()
        sent, full = zero_copy.send_range(ours.fileno(), fd, 0, len(DATA))
        assert full and 0 < sent < len(DATA)
        assert time.monotonic() - began >= zero_copy.FULL_WAIT
        got = bytearray()
        while len(got) < sent:
            got += theirs.recv(1 << 20)
        assert bytes(got) == DATA[:sent]
        # the file ends before the range does: what there was, and no wait for room
        assert zero_copy.send_range(ours.fileno(), fd, len(DATA) - 10, 100) == (10, False)
        assert theirs.recv(100) == DATA[-10:]
    finally:
        os.close(fd)
        ours.close()
        theirs.close()


def wait_for_sync(condition: Callable[[], bool], timeout: float) -> None:
    """Until `condition()`, polled (the server runs in another thread), else fail at
    `timeout`. No event loop of its own: it would hold descriptors while it polls."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"condition not met within {timeout} s"
        time.sleep(0.01)
