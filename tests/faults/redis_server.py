"""A Redis of the test's own, which it may stop, freeze and restart (never the shared one)."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import IN_CI


@dataclass
class RedisServer:
    port: int
    host: str = "127.0.0.1"
    # what starts it, before redis-server's own argv: `ip netns exec NS` (tests/hosts)
    wrap: list[str] = field(default_factory=list)
    # its append-only file's folder, written through on every command (so a kill -9
    # loses nothing acknowledged); None: it keeps nothing
    aof_dir: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None)

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            if IN_CI:
                pytest.fail("redis-server is required (scripts/test installs it)")
            pytest.skip("redis-server not installed")
        kept = (
            ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.aof_dir)]
            if self.aof_dir is not None
            else ["--appendonly", "no"]
        )
        self.proc = subprocess.Popen(
            [*self.wrap, exe, "--port", str(self.port), "--bind", self.host, "--save", "",
             "--protected-mode", "no", *kept, "--logfile", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not self.answers():
            if time.monotonic() > deadline:
                raise AssertionError("private redis-server did not start")
            time.sleep(0.02)

    def answers(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def freeze(self) -> None:
        """Still accepting connections, never answering: the worst kind of outage."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)
