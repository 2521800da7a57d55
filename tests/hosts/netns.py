"""Network namespaces for tests/hosts: one run's hosts on one bridge, made and removed as root.

A run is named `ytmp3-hosts-{pid}-{token}`: its namespaces are `{run}-{role}`, one per
host (`redis`, `api`, `worker1`, ...) and `{run}-hub`, which holds the bridge. Each host
has `eth0` (and `lo`), the other end of its veth is a port of the bridge in the hub,
named after the host. Nothing is made in the machine's own namespace: no interface, no
route, no address, so the subnet can't clash with the machine's or with another run's
(each run's addresses exist in its own namespaces only), and the machine's iptables
(Docker's FORWARD policy, with bridged traffic sent through it by br_netfilter) never
see a packet of ours.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

PREFIX = "ytmp3-hosts"
SUBNET = "10.77.0"  # a /24, its .1 unused: there is no gateway, all hosts are on the bridge
_RUN = re.compile(rf"{PREFIX}-(\d+)-[0-9a-f]+-\w+")
_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def ip(*args: str) -> str:
    """`ip ARGS`; its output, or CalledProcessError naming what it said."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if done.returncode != 0:
        raise subprocess.CalledProcessError(
            done.returncode, ["ip", *args], done.stdout, done.stderr
        )
    return done.stdout


@dataclass
class Network:
    run: str = field(default_factory=lambda: f"{PREFIX}-{os.getpid()}-{secrets.token_hex(3)}")
    hosts: dict[str, str] = field(default_factory=dict)  # role -> its address

    def ns(self, role: str) -> str:
        return f"{self.run}-{role}"

    @property
    def hub(self) -> str:
        return self.ns("hub")

    def create(self) -> None:
        ip("netns", "add", self.hub)
        ip("-n", self.hub, "link", "add", "name", "br0", "type", "bridge")
        ip("-n", self.hub, "link", "set", "dev", "br0", "up")

    def add(self, role: str) -> str:
        """A host on the bridge; its address."""
        address = f"{SUBNET}.{len(self.hosts) + 2}"
        ns = self.ns(role)
        ip("netns", "add", ns)
        self.hosts[role] = address
        # made in the hub with its other end in the host: never in the machine's namespace
        ip("-n", self.hub, "link", "add", "name", role, "type", "veth",
           "peer", "name", "eth0", "netns", ns)  # fmt: skip
        ip("-n", self.hub, "link", "set", "dev", role, "master", "br0", "up")
        ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
        ip("-n", ns, "link", "set", "dev", "eth0", "up")
        ip("-n", ns, "link", "set", "dev", "lo", "up")
        return address

    def argv(self, role: str, command: list[str]) -> list[str]:
        """`command` run on host `role` (ip execs it: the child's pid is the command's)."""
        return ["ip", "netns", "exec", self.ns(role), *command]

    def cut(self, role: str) -> None:
        """The host's cable pulled: its bridge port down. It sees no error, only silence."""
        ip("-n", self.hub, "link", "set", "dev", role, "down")

    def mend(self, role: str) -> None:
        ip("-n", self.hub, "link", "set", "dev", role, "up")

    @contextlib.contextmanager
    def inside(self, role: str) -> Iterator[None]:
        """This thread on host `role`: the sockets it makes meanwhile are the host's (and
        stay so). The thread's own namespace is put back after."""
        with open("/proc/thread-self/ns/net") as home, open(f"/run/netns/{self.ns(role)}") as ns:
            _setns(ns.fileno())
            try:
                yield
            finally:
                _setns(home.fileno())

    def remove(self) -> None:
        """Every process left on the run's hosts killed, every namespace deleted (their
        veths and the bridge go with them)."""
        for name in namespaces():
            if name.startswith(f"{self.run}-"):
                remove_namespace(name)


def _setns(fd: int) -> None:
    # os.setns is Python 3.12's; libc's is the same call
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def namespaces() -> list[str]:
    return [line.split()[0] for line in ip("netns", "list").splitlines() if line.strip()]


def remove_namespace(name: str) -> None:
    deadline = time.monotonic() + 10
    # killed until none is left: one may enter as we kill (a process being started there)
    while left := [int(pid) for pid in ip("netns", "pids", name).split()]:
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            raise AssertionError(f"processes outlived SIGKILL in {name}: {left}")
        time.sleep(0.02)
    ip("netns", "delete", name)


def remove_leftovers() -> list[str]:
    """The namespaces of runs whose process is dead (a crash, a kill): removed; their names."""
    removed = []
    for name in namespaces():
        match = _RUN.fullmatch(name)
        if match is not None and not _alive(int(match.group(1))):
            remove_namespace(name)
            removed.append(name)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's: alive
        pass
    return True
