"""A worker's bulk conversions (a playlist's entries) yield the CPU to its single videos.

While a single video converts in the worker, every bulk conversion's ffmpeg runs
`nice` levels lower; when none does, at the worker's own priority again, so a playlist
alone is not slowed by whatever else the host runs. On Linux that is ffmpeg's
autogroup's nice (ffmpeg leads a session of its own, and the scheduler weighs a
session as a group: a process's own nice counts only inside its group), which an
unprivileged worker may raise back to 0; elsewhere the process's nice, lowered only.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path


class Yielding:
    """The ffmpegs of one worker's bulk conversions, and its single videos converting."""

    def __init__(self, nice: int) -> None:
        self.nice = nice
        self.singles = 0
        self._bulk: set[int] = set()

    @contextlib.contextmanager
    def single(self) -> Iterator[None]:
        """A single video converts while inside: the bulk ones yield to it."""
        self.singles += 1
        if self.singles == 1:
            _set(self._bulk, self.nice)
        try:
            yield
        finally:
            self.singles -= 1
            if self.singles == 0:
                _set(self._bulk, 0)

    def add(self, pid: int) -> None:
        """A bulk conversion's ffmpeg started (it leads a session of its own)."""
        self._bulk.add(pid)
        if self.singles:
            _set([pid], self.nice)

    def discard(self, pid: int) -> None:
        self._bulk.discard(pid)


def _set(pids: Iterable[int], nice: int) -> None:
    for pid in list(pids):
        try:
            Path(f"/proc/{pid}/autogroup").write_text(str(nice))
            continue
        except OSError:
            pass  # no autogroups here (or the process is gone)
        if nice > 0:
            with contextlib.suppress(OSError):
                mine = os.getpriority(os.PRIO_PROCESS, 0)
                os.setpriority(os.PRIO_PROCESS, pid, min(19, mine + nice))
