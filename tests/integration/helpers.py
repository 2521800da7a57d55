"""What the integration tests share: a running service, processes, and ffprobe."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI

# Started and waited for by the harness; imported from here by many tests.
from tests.harness import free_port as free_port
from tests.harness import service as service
from tests.harness import settings_env as settings_env
from tests.harness import wait_http as wait_http
from tests.harness import ytmp3_process as ytmp3_process


def ffprobe(path: Path) -> dict[str, Any]:
    exe = shutil.which("ffprobe")
    if exe is None:
        if IN_CI:
            pytest.fail("ffprobe is required (scripts/test installs Debian's ffmpeg)")
        pytest.skip("ffprobe not installed (./scripts/test installs it)")
    out = subprocess.run(
        [exe, "-v", "error", "-show_entries",
         "format=format_name,duration,bit_rate:stream=codec_name,bit_rate,sample_rate",
         "-of", "json", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    result: dict[str, Any] = json.loads(out)
    return result


def assert_mp3(path: Path, *, seconds: float, bitrate: int) -> None:
    info = ffprobe(path)
    audio = [s for s in info["streams"] if s["codec_name"] == "mp3"]
    assert info["format"]["format_name"] == "mp3", info
    assert len(audio) == 1, info
    assert abs(float(info["format"]["duration"]) - seconds) < 0.25, info
    assert abs(int(audio[0]["bit_rate"]) - bitrate * 1000) <= 1000, info


def _live_processes() -> Iterator[tuple[int, str, int]]:
    """(pid, command line, parent pid) of every live process but this one."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state, ppid = (entry / "stat").read_text().split(") ")[-1].split()[:2]
        except (OSError, ValueError):
            continue  # gone meanwhile
        if state != "Z":
            yield int(entry.name), cmdline, int(ppid)


def processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line contains `text`."""
    return [pid for pid, cmdline, _ in _live_processes() if text in cmdline]


def fetch_servers_of(parent: int) -> list[int]:
    """Pids of the live fetch servers that the process `parent` started; given a fetch
    server's pid, those of its downloads (forks of it, so with the same command line)."""
    return [
        pid
        for pid, cmdline, ppid in _live_processes()
        if "ytmp3.jobs.fetch.server" in cmdline and ppid == parent
    ]


def descendants_of(parent: int) -> set[int]:
    """Pids of every live process below `parent`: children, theirs, and so on."""
    children: dict[int, list[int]] = {}
    for pid, _, ppid in _live_processes():
        children.setdefault(ppid, []).append(pid)
    found: set[int] = set()
    todo = [parent]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found
