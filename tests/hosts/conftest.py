"""The hosts of tests/hosts, one network namespace each, on one bridge (tests/hosts/netns.py):
Redis (with its append-only file), the storage, the stand-in for YouTube, one `ytmp3 api`,
two `ytmp3 worker`s, and the client: this test process, whose main thread joins the client's
namespace for the module, so every socket the tests open crosses the bridge. The
storage is a bucket of SeaweedFS on a host of its own too (tests/s3_server.py).

Made once per module (a cluster takes some seconds to start) and removed in the
fixtures' finalizers; a crashed run's leftovers are removed at the next start.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import stand_in as stand_in_mod
from tests.conftest import IN_CI, make_audio
from tests.faults.redis_server import RedisServer
from tests.harness import start_process, stop_process, wait_until_answers
from tests.hosts.netns import Network, remove_leftovers
from tests.ops.processes import env_for
from tests.s3_server import BUCKET, s3_values, start_seaweedfs
from ytmp3.config import Settings

API_PORT = 8080
WORKERS = ("worker1", "worker2")


@dataclass
class Storage:
    """Where the API and the workers keep the MP3s, as the settings that say so."""

    settings: dict[str, Any]


@dataclass
class Cluster:
    net: Network
    redis: RedisServer
    stand_in: stand_in_mod.StandIn
    api: str  # its base URL, on the bridge
    worker_logs: dict[str, Path]  # each worker's JSON log
    disks: Path  # the API's and the workers' folders: ./data, ./media


def _require_root() -> None:
    """Root and `ip`, as CI has (a failure there); elsewhere their lack is a skip."""
    why = None
    if os.geteuid() != 0:
        why = "needs root"
    elif shutil.which("ip") is None:
        why = "needs `ip` (iproute2; scripts/test installs it)"
    if why is not None:
        if IN_CI:
            pytest.fail(f"tests/hosts {why}")
        pytest.skip(f"tests/hosts {why}")


@pytest.fixture(scope="module")
def as_root() -> None:
    _require_root()


@pytest.fixture(scope="module")
def network(as_root: None) -> Iterator[Network]:
    remove_leftovers()
    net = Network()
    with contextlib.ExitStack() as stack:
        stack.callback(net.remove)
        net.create()
        for role in ("redis", "storage", "youtube", "api", *WORKERS, "client"):
            net.add(role)
        stack.enter_context(net.inside("client"))
        yield net


@pytest.fixture(scope="module")
def storage(network: Network, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storage]:
    """A bucket of SeaweedFS (`weed server -s3`) on a host of its own. The API and the
    workers share nothing else but Redis: each has its own media dir (`./media` in a
    folder of its own), where a worker converts before it uploads."""
    server = start_seaweedfs(
        tmp_path_factory.mktemp("seaweedfs"),
        host=network.hosts["storage"],
        base_port=8000,  # any: the host is the test's
        argv_prefix=tuple(network.argv("storage", [])),
    )
    try:
        server.create_bucket(BUCKET)
        yield Storage(s3_values(server, "hosts"))
    finally:
        server.process.kill()  # its data is the test's to drop: no graceful stop (10 s)
        server.process.wait()


@pytest.fixture(scope="module")
def redis_host(network: Network, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(
        6379,
        host=network.hosts["redis"],
        wrap=network.argv("redis", []),
        aof_dir=tmp_path_factory.mktemp("redis"),
    )
    try:
        server.start()
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="module")
def youtube(network: Network) -> Iterator[stand_in_mod.StandIn]:
    state = stand_in_mod.StandIn(host=network.hosts["youtube"], default_audio=make_audio(3))
    with network.inside("youtube"):  # its listening socket is the youtube host's
        server = stand_in_mod.start(state)
    yield state
    state.release_stalls.set()
    server.shutdown()


@pytest.fixture(scope="module")
def cluster(
    network: Network,
    storage: Storage,
    redis_host: RedisServer,
    youtube: stand_in_mod.StandIn,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    settings = Settings(
        **storage.settings,
        redis_url=redis_host.url,
        thumbnail_url=youtube.thumbnail_url,
        source_url=youtube.source_url,
        playlist_url=youtube.playlist_url,
        rate_limit="0",
        max_jobs=1,  # so two jobs at once must go to both workers
        min_free_disk=1 << 20,
        _env_file=None,
    )
    api = f"http://{network.hosts['api']}:{API_PORT}"
    root = tmp_path_factory.mktemp("hosts")
    logs = {role: root / f"{role}.log" for role in ("api", *WORKERS)}
    procs = []
    with contextlib.ExitStack() as stack:
        for role, log in logs.items():
            env = env_for(settings, port=API_PORT, stop_grace="1")
            if role == "api":
                env["YTMP3_HOST"] = network.hosts["api"]
            cwd = root / role  # its ./data (and ./media, unless the storage names one)
            cwd.mkdir()
            command = [sys.executable, "-m", "ytmp3", "worker" if role in WORKERS else "api"]
            procs.append(start_process(network.argv(role, command), env, log, cwd=cwd))
            stack.callback(stop_process, procs[-1], 5)
        wait_until_answers(
            api,
            "/readyz",
            alive=lambda: all(proc.poll() is None for proc in procs),
            why=lambda: "\n".join(f"{p.name}: {p.read_text()[-1500:]}" for p in logs.values()),
        )
        yield Cluster(network, redis_host, youtube, api, {w: logs[w] for w in WORKERS}, root)
