"""How the worker's child processes end: with the worker, and all at once when killed."""

from __future__ import annotations

import contextlib
import os
import signal
import sys


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
