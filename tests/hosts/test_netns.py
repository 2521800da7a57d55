"""tests/hosts' own clean-up: a crashed run's namespaces go at the next start, and only
those (another run's, alive, stay), with whatever still ran in them."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from tests.hosts.netns import PREFIX, Network, ip, namespaces, remove_leftovers

pytestmark = [pytest.mark.hosts, pytest.mark.timeout(30)]


def test_a_dead_runs_namespaces_are_removed_a_live_runs_kept(as_root: None) -> None:
    ended = subprocess.Popen(["true"])
    ended.wait()  # its pid: a run whose process is gone
    dead = Network(run=f"{PREFIX}-{ended.pid}-abc123")
    live = Network(run=f"{PREFIX}-{os.getpid()}-def456")
    left: subprocess.Popen[bytes] | None = None
    try:
        dead.create()
        dead.add("host")
        live.create()
        left = subprocess.Popen(dead.argv("host", ["sleep", "60"]))
        deadline = time.monotonic() + 10  # in the namespace before the sweep
        while str(left.pid) not in ip("netns", "pids", dead.ns("host")).split():
            assert time.monotonic() < deadline, "the process never entered its namespace"
            time.sleep(0.02)
        removed = remove_leftovers()
        assert {dead.hub, dead.ns("host")} <= set(removed), removed
        assert left.wait(timeout=10) == -9  # what ran there was killed first
        names = namespaces()
        assert live.hub in names and live.hub not in removed
        assert dead.hub not in names and dead.ns("host") not in names
    finally:
        if left is not None and left.poll() is None:
            left.kill()
            left.wait()
        dead.remove()
        live.remove()
