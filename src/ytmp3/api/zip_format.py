"""The records of a stored (uncompressed) ZIP, from members of known sizes. Pure: bytes in,
bytes out (APPNOTE 6.3.10; ZIP64 where a size or an offset passes 4 GiB, or the count
65 535).

A member's CRC-32 is either known before its first byte (a local header with it, then the
bytes untouched) or told after them, in a data descriptor (flag bit 3). Either way every
record's length depends only on the names and sizes, so the archive's exact length is
known before anything is read (`plan`).
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass

_LOCAL = b"PK\x03\x04"
_CENTRAL = b"PK\x01\x02"
_DESCRIPTOR = b"PK\x07\x08"
_END64 = b"PK\x06\x06"
_LOCATOR64 = b"PK\x06\x07"
_END = b"PK\x05\x06"
_ZIP64_TAG = 0x0001
_MAX32 = 0xFFFFFFFF
_MAX16 = 0xFFFF
_UTF8 = 1 << 11  # names are UTF-8
_DESCRIBED = 1 << 3  # CRC and sizes follow the data
_VERSION = 20  # 2.0: stored, folders
_VERSION64 = 45  # 4.5: ZIP64
_MADE_BY = (3 << 8) | _VERSION64  # Unix, so the modes below are read


@dataclass(frozen=True)
class Member:
    name: str
    size: int
    crc: int | None  # None: worked out as the bytes stream, told in a data descriptor
    modified: float  # seconds since the epoch


@dataclass(frozen=True)
class Plan:
    """Where each member's header and bytes go, and the archive's whole length."""

    heads: tuple[bytes, ...]  # each member's local header
    offsets: tuple[int, ...]  # where each local header starts
    directory_at: int  # where the central directory starts
    length: int


def _dos_time(when: float) -> tuple[int, int]:
    t = time.gmtime(max(when, 315532800.0))  # DOS time starts in 1980
    date = ((min(t.tm_year, 2107) - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday
    return (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2), date


def _big(member: Member) -> bool:
    # >= rather than >: 0xFFFFFFFF itself means "see the ZIP64 extra"
    return member.size >= _MAX32


def local_header(member: Member) -> bytes:
    name = member.name.encode()
    flags = _UTF8 | (_DESCRIBED if member.crc is None else 0)
    # described: CRC and sizes are zero here and come after the bytes (as zipstream-ng
    # and zipfile write them); a reader streaming the archive takes them from there
    known = member.crc is not None
    crc = member.crc or 0
    told = member.size if known else 0
    size = _MAX32 if _big(member) else told
    extra = struct.pack("<HHQQ", _ZIP64_TAG, 16, told, told) if _big(member) else b""
    mtime, mdate = _dos_time(member.modified)
    version = _VERSION64 if _big(member) else _VERSION
    head = struct.pack(
        "<4sHHHHHIIIHH", _LOCAL, version, flags, 0, mtime, mdate, crc, size, size,
        len(name), len(extra),
    )  # fmt: skip
    return head + name + extra


def descriptor_length(member: Member) -> int:
    """The data descriptor's length after the member's bytes (0: none, its CRC was known)."""
    if member.crc is not None:
        return 0
    return 24 if _big(member) else 16


def descriptor(member: Member, crc: int) -> bytes:
    """The data descriptor of a member whose CRC was worked out as it streamed: 8-byte
    sizes when its local header has the ZIP64 extra."""
    if _big(member):
        return struct.pack("<4sIQQ", _DESCRIPTOR, crc, member.size, member.size)
    return struct.pack("<4sIII", _DESCRIPTOR, crc, member.size, member.size)


def central_record(member: Member, crc: int, offset: int) -> bytes:
    name = member.name.encode()
    # the ZIP64 extra holds, in this order, only the fields too big for their place
    wide: list[int] = []
    size = member.size
    if _big(member):
        wide += [member.size, member.size]
        size = _MAX32
    at = offset
    if offset >= _MAX32:
        wide.append(offset)
        at = _MAX32
    extra = struct.pack(f"<HH{len(wide)}Q", _ZIP64_TAG, 8 * len(wide), *wide) if wide else b""
    flags = _UTF8 | (_DESCRIBED if member.crc is None else 0)
    mtime, mdate = _dos_time(member.modified)
    version = _VERSION64 if wide else _VERSION
    head = struct.pack(
        "<4sHHHHHHIIIHHHHHII", _CENTRAL, _MADE_BY, version, flags, 0, mtime, mdate, crc,
        size, size, len(name), len(extra), 0, 0, 0,
        0o100644 << 16,  # a regular file, rw-r--r--
        at,
    )  # fmt: skip
    return head + name + extra


def end_records(count: int, directory_at: int, directory_size: int) -> bytes:
    """The end of central directory record, after the ZIP64 end record and its locator
    when a count, size or offset needs them."""
    end64 = b""
    if count >= _MAX16 or directory_at >= _MAX32 or directory_size >= _MAX32:
        at = directory_at + directory_size
        end64 = struct.pack(
            "<4sQHHIIQQQQ", _END64, 44, _MADE_BY, _VERSION64, 0, 0, count, count,
            directory_size, directory_at,
        ) + struct.pack("<4sIQI", _LOCATOR64, 0, at, 1)  # fmt: skip
        count16, size32, at32 = _MAX16, _MAX32, _MAX32
    else:
        count16, size32, at32 = count, directory_size, directory_at
    return end64 + struct.pack("<4sHHHHIIH", _END, 0, 0, count16, count16, size32, at32, 0)


def _directory_size(members: list[Member], offsets: list[int]) -> int:
    # a CRC never changes a record's length: zero stands in for those not known yet
    return sum(len(central_record(m, 0, at)) for m, at in zip(members, offsets, strict=True))


def plan(members: list[Member]) -> Plan:
    heads = tuple(local_header(m) for m in members)
    offsets: list[int] = []
    at = 0
    for member, head in zip(members, heads, strict=True):
        offsets.append(at)
        at += len(head) + member.size + descriptor_length(member)
    directory_size = _directory_size(members, offsets)
    length = at + directory_size + len(end_records(len(members), at, directory_size))
    return Plan(heads, tuple(offsets), at, length)


def directory(members: list[Member], crcs: list[int], the_plan: Plan) -> bytes:
    """The central directory and the end records, once every member's CRC is known."""
    records = b"".join(
        central_record(m, crc, at)
        for m, crc, at in zip(members, crcs, the_plan.offsets, strict=True)
    )
    return records + end_records(len(members), the_plan.directory_at, len(records))
