"""How the worker's child processes end: with the worker, and all at once when killed."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path


def die_with_parent() -> None:
    """In a child: be killed when its parent dies, even by SIGKILL (Linux only)."""
    if sys.platform == "linux":
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def kill_group(pid: int) -> None:
    """Kill the process group `pid` leads (it and whatever it started), if it is still there."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def child_setup(nice: int = 0) -> Callable[[], None]:
    """What a child runs before its program: die with its parent, and `nice` levels
    below it (set before the program starts: none of its work runs at our priority)."""
    if nice <= 0:
        return die_with_parent

    def setup() -> None:
        die_with_parent()
        lower_own_priority(nice)

    return setup


def lower_own_priority(by: int) -> None:
    """Run `by` nice levels lower, as a process and, on Linux, as an autogroup: a process
    that started a session of its own (setsid) is weighed against the others as a group,
    by the group's nice value, and its own nice counts only inside that group."""
    nice = os.nice(by)
    with contextlib.suppress(OSError):  # no autogroups here: the nice is enough
        Path("/proc/self/autogroup").write_text(str(nice))
