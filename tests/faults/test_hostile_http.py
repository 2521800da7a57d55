"""Malformed HTTP on the wire, against `ytmp3 serve`: always a 4xx, never a 5xx or a trace."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.helpers import free_port, settings_env, wait_http, ytmp3_process
from tests.stand_in import StandIn
from ytmp3.config import Settings

SettingsFactory = Callable[..., Settings]
pytestmark = pytest.mark.slow


@pytest.fixture
def server_port(make_settings: SettingsFactory, stand_in: StandIn, tmp_path: Path) -> Iterator[int]:
    port = free_port()
    with ytmp3_process("serve", settings_env(make_settings(), port), tmp_path / "serve.log"):
        yield port
    log = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in log, log


def raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        # Connection: close (added below) makes the server hang up once it has answered
        sock.sendall(request.replace(b"Host: x\r\n", b"Host: x\r\nConnection: close\r\n", 1))
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


REQUESTS = [
    b"POST /submit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: 99999999\r\n\r\n{}",
    b"POST /submit HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}",
    b"POST /submit HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n{}",
    b"GARBAGE\r\n\r\n",
    b"GET /status/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /status/abc HTTP/1.1\r\nHost: x\r\nX-Bad: \x01\x02\r\n\r\n",
    b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    # over YTMP3_MAX_HEADER_BYTES (32 KiB): 431, not taken whole
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n",
    b"POST /submit HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
    b"Content-Type: application/json\r\n\r\nzz\r\n",
    b"GET /download-music/..%2f..%2f..%2fetc%2fpasswd HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /static/../../../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
]


async def test_malformed_requests_get_4xx(server_port: int) -> None:
    await wait_http(f"http://127.0.0.1:{server_port}")
    for request in REQUESTS:
        response = raw(server_port, request)
        assert response.startswith(b"HTTP/1.1 "), (request[:60], response[:200])
        assert 400 <= status_of(response) < 500, (request[:60], response[:300])
        assert b"root:" not in response and b"Traceback" not in response
