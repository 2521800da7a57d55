"""How the worker's child processes end: with the worker, and all at once when killed."""

from __future__ import annotations

import contextlib
import os
import signal
import sys

if sys.platform == "linux":
    import ctypes

    # Looked up here, in the parent: a child (a fork about to exec, or a download forked
    # by the fetch server) then only calls it, importing and loading nothing.
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
    _PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a child: be killed when its parent dies, even by SIGKILL (Linux only)."""
    if sys.platform == "linux":
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def kill_group(pid: int) -> None:
    """Kill the process group `pid` leads (it and whatever it started), if it is still there."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
