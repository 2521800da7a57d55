"""Where a download's bytes go: a hidden temporary file, published under its final name
only when complete (never over an existing file), removed otherwise."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ytmp3.client.names import numbered

PART_PREFIX, PART_SUFFIX = ".ytmp3-", ".mp3.part"
MAX_NUMBER = 10_000


def _read_umask() -> int:
    mask = os.umask(0o022)  # the only way to read it is to set it: put it straight back
    os.umask(mask)
    return mask


_UMASK = _read_umask()


class PartFile:
    """One download in progress, in `directory` (so publishing is a rename, never a copy)."""

    def __init__(self, directory: Path) -> None:
        fd, name = tempfile.mkstemp(dir=directory, prefix=PART_PREFIX, suffix=PART_SUFFIX)
        self.directory = directory  # as the user gave it: the names shown are under it
        self.path = directory / Path(name).name
        # mkstemp makes it private (0600); the MP3 gets what any new file would
        os.chmod(self.path, 0o666 & ~_UMASK)
        self.file: BinaryIO = os.fdopen(fd, "w+b")
        self.published: Path | None = None

    def restart(self) -> None:
        """Empty it: the server sent the whole file again instead of the rest."""
        self.file.seek(0)
        self.file.truncate()

    def publish(self, stem: str) -> Path:
        """Give the bytes their name: `stem.mp3`, else `stem (2).mp3`, ... never replacing."""
        self.file.close()
        for n in range(1, MAX_NUMBER + 1):
            final = self.directory / numbered(stem, n)
            try:
                _move_no_clobber(self.path, final)
            except FileExistsError:
                continue
            self.published = final
            return final
        raise FileExistsError(f"{numbered(stem, 1)} and {MAX_NUMBER - 1} numbered copies exist")

    def discard(self) -> None:
        self.file.close()
        self.path.unlink(missing_ok=True)


def _move_no_clobber(source: Path, target: Path) -> None:
    """`source` renamed to `target`, or FileExistsError if `target` exists.

    A hard link fails when the name is taken, where a POSIX rename would replace it, so
    the complete file appears at once or not at all. File systems without links (FAT,
    some network shares) get the name reserved first, then the bytes renamed onto it.
    """
    try:
        os.link(source, target)
    except FileExistsError:
        raise
    except OSError:
        with open(target, "xb"):  # FileExistsError when taken, as above
            pass
        os.replace(source, target)
        return
    source.unlink()


@contextlib.contextmanager
def part_file(directory: Path) -> Iterator[PartFile]:
    """A PartFile that is removed unless published, whatever ends the block (Ctrl-C too)."""
    part = PartFile(directory)
    try:
        yield part
    finally:
        if part.published is None:
            part.discard()
