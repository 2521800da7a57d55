"""Is a `Range` header one the download can answer? Checked before the file is sent, so a
malformed or unsatisfiable one gets the envelope, not the file server's plain text. Pure.

The rules are those the file server (Starlette's FileResponse) applies, so what passes
here it serves: a `bytes=` unit, at least one `start-end` or `-suffix` part it can read
(parts it can't are skipped), every start inside the file and before its end.
"""

from __future__ import annotations

from typing import Literal

Problem = Literal["malformed", "unsatisfiable"]

# past this many parts the file server sends the whole file instead (FileResponse.max_ranges)
MAX_RANGES = 100


def _parts(spec: str, size: int) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    for raw in spec.split(","):
        part = raw.strip()
        if not part or part == "-" or "-" not in part:
            continue
        first, last = (side.strip() for side in part.split("-", 1))
        try:
            start = int(first) if first else max(size - int(last), 0)
            end = int(last) + 1 if first and last and int(last) < size else size
        except ValueError:
            continue
        ranges.append((start, end))
    return ranges


def range_problem(header: str, size: int) -> Problem | None:
    """What is wrong with `header` for a file of `size` bytes: "malformed" (400),
    "unsatisfiable" (416: no byte of the file is asked for), or nothing."""
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return "malformed"
    if spec.count(",") + 1 > MAX_RANGES:
        return None
    ranges = _parts(spec, size)
    if not ranges:
        return "malformed"
    if any(not 0 <= start < size for start, _ in ranges):
        return "unsatisfiable"
    if any(start >= end for start, end in ranges):
        return "malformed"
    return None


def served_bytes(header: str | None, size: int) -> int:
    """How much of a file of `size` bytes a GET with this `Range` sends (for the keys' use
    counts): all of it without one, else the parts asked for."""
    if header is None:
        return size
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes":
        return size
    return sum(max(0, min(end, size) - start) for start, end in _parts(spec, size)) or size


def one_range(header: str | None, if_range: str | None, validators: tuple[str, ...],
              size: int) -> tuple[int, int] | None:  # fmt: skip
    """The [start, end) a proxied object's answer sends as 206, for a `Range` that
    range_problem passed; None: the whole object, 200 (no Range, an If-Range naming
    another version, or several parts, which a server may answer whole: RFC 9110 14.2)."""
    if header is None or (if_range is not None and if_range not in validators):
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or spec.count(",") + 1 > MAX_RANGES:
        return None
    ranges = _parts(spec, size)
    return ranges[0] if len(ranges) == 1 else None
