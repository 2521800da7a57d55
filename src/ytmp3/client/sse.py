"""Server-Sent Events read from lines. Pure: no I/O."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Event:
    name: str  # "message" unless the server named it (`event: expired`)
    data: str


async def events(lines: AsyncIterable[str]) -> AsyncIterator[Event]:
    """The events of a text/event-stream, given its lines (comments and ids skipped)."""
    name, data = "message", list[str]()
    async for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield Event(name, "\n".join(data))
            name, data = "message", []
            continue
        if line.startswith(":"):
            continue  # a keepalive
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
