"""Keys across processes, as an operator uses them: `ytmp3 keys` in one process, the API in
others. A revoked key stops working on every API process within a second; keys outlive a
restart, on Redis and in the embedded mode (a file under YTMP3_DATA_DIR)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.conftest import submit_body
from tests.integration.helpers import free_port, settings_env, wait_http, ytmp3_process
from tests.stand_in import StandIn
from ytmp3.config import Settings

SettingsFactory = Callable[..., Settings]
pytestmark = pytest.mark.slow


def keys(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ytmp3", "keys", *args],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def env_of(settings: Settings, port: int, data_dir: Path) -> dict[str, str]:
    env = settings_env(settings, port)
    env.update(YTMP3_AUTH="keys", YTMP3_DATA_DIR=str(data_dir))
    return env


async def answers(base: str, key: str) -> int:
    async with httpx.AsyncClient(base_url=base) as client:
        reply = await client.post(
            "/submit", json=submit_body(), headers={"Authorization": f"Bearer {key}"}
        )
        return reply.status_code


async def refused_within(bases: list[str], key: str, seconds: float) -> float:
    """How long until every API process refuses `key` (fails past `seconds`)."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    waiting = set(bases)
    while waiting:
        for base in list(waiting):
            if await answers(base, key) == 401:
                waiting.discard(base)
        assert loop.time() - began < seconds, f"still accepted by {sorted(waiting)}"
        await asyncio.sleep(0.05)
    return loop.time() - began


async def test_a_key_revoked_is_refused_by_every_api_process_within_a_second(
    make_settings: SettingsFactory, stand_in: StandIn, redis_url: str, tmp_path: Path
) -> None:
    settings = make_settings(redis_url=redis_url)
    ports = [free_port(), free_port()]
    env = env_of(settings, ports[0], tmp_path / "data")
    made = keys(env, "add", "alice", "--rate", "100/minute")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("ytmp3_") and "shown this once" in made.stderr
    with ExitStack() as stack:
        for n, port in enumerate(ports):
            stack.enter_context(
                ytmp3_process(
                    "api", env_of(settings, port, tmp_path / "data"), tmp_path / f"api{n}.log"
                )
            )
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        for base in bases:
            await wait_http(base)
            assert await answers(base, key) in (200, 201)
        listed = keys(env, "list")
        assert (
            "alice" in listed.stdout and key not in listed.stdout and "100/minute" in listed.stdout
        )
        revoked = keys(env, "revoke", "alice")
        assert revoked.returncode == 0, revoked.stderr
        await refused_within(bases, key, 1.5)
    assert key not in "".join((tmp_path / f"api{n}.log").read_text() for n in range(2))
    assert keys(env, "revoke", "alice").returncode == 1  # said in words, exit 1
    bad = keys(env, "add", "no spaces allowed")
    assert bad.returncode == 2 and "key name" in bad.stderr


async def test_embedded_keys_outlive_a_restart_of_serve(
    make_settings: SettingsFactory, stand_in: StandIn, tmp_path: Path
) -> None:
    settings = make_settings()
    port = free_port()
    env = env_of(settings, port, tmp_path / "data")
    key = keys(env, "add", "laptop").stdout.strip()
    base = f"http://127.0.0.1:{port}"
    for run in range(2):  # the same key, before and after a restart
        with ytmp3_process("serve", env, tmp_path / f"serve{run}.log"):
            await wait_http(base)
            assert await answers(base, key) in (200, 201), run
            assert await answers(base, "ytmp3_" + "B" * 43) == 401
            if run == 1:
                assert keys(env, "revoke", "laptop").returncode == 0
                await refused_within([base], key, 1.5)
    assert (tmp_path / "data" / "keys.sqlite3").stat().st_mode & 0o077 == 0
