"""What the process tests of tests/ops share: environments, JSON log lines, metrics over HTTP."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.helpers import free_port, settings_env
from ytmp3.config import Settings


def env_for(settings: Settings, *, port: int | None = None, **extra: str) -> dict[str, str]:
    """A child's environment: the settings, JSON logs, and YTMP3_* extras."""
    env = settings_env(settings, port or free_port())
    env["YTMP3_LOG_FORMAT"] = "json"
    env.update({f"YTMP3_{name.upper()}": value for name, value in extra.items()})
    return env


def events(log: Path) -> list[dict[str, Any]]:
    """The JSON lines of a process's log, in order (anything else, e.g. a crash, skipped)."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))
    return found


def conversions(log: Path, event: str) -> list[dict[str, Any]]:
    return [e for e in events(log) if e.get("event") == event]


def most_at_once(log: Path) -> int:
    """The most conversions one worker ran at the same time, from its start/end lines."""
    running = peak = 0
    for entry in events(log):
        if entry.get("event") == "conversion.start":
            running += 1
            peak = max(peak, running)
        elif entry.get("event") == "conversion.end":
            running -= 1
    return peak


async def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    async with httpx.AsyncClient() as client:
        text = (await client.get(url)).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> float:
    """SIGTERM, wait for the exit; returns the seconds it took."""
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=timeout)
    return time.monotonic() - started


def worker_check(env: dict[str, str]) -> int:
    """`ytmp3 worker --check`, the container health check."""
    return subprocess.run(
        [sys.executable, "-m", "ytmp3", "worker", "--check"], env=env, timeout=30
    ).returncode
