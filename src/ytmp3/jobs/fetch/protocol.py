"""Everything that crosses between the worker, the fetch server and a download process.

- The server's start-up options and each download's job: JSON of plain dataclasses, on
  stdin (never on a command line, which any local user may read: a proxy's password).
- Worker -> server: a `Job` (a download) or a `ListJob` (a playlist's entries, read flat)
  as JSON with two file descriptors attached (the data pipe, the process's stdout: the
  audio, or for a list one JSON `Listing`; and the events pipe), over a SOCK_SEQPACKET
  socket. `decode_request` tells the two apart.
- Server -> worker, one message each: first `Ready` (yt-dlp loaded: its version, where
  it came from, the plugins it found), then `Started(pid)`, or `Refused(error)` when no process
  could be started (answered in order: the worker matches answers to requests), then
  `Exited(pid, code)` when that process ends.
- Download -> worker, on the events pipe: one JSON object per line,
  {"event": "info" | "progress" | "log" | "error" | "finished", ...}.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Self, cast

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

MAX_MESSAGE = 64 * 1024
SOFTWARE_ERROR = 70  # EX_SOFTWARE: a download process that failed before it could say why


class _Json:
    """A dataclass of plain values, sent as JSON."""

    def to_json(self) -> str:
        return json.dumps(asdict(cast("DataclassInstance", self)))

    @classmethod
    def from_json(cls, text: str | bytes) -> Self:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class Options(_Json):
    """What is the same for every download of a worker."""

    source_url: str  # with a {video_id} placeholder
    socket_timeout: float = 20
    cookies_file: str | None = None
    proxy: str | None = None
    js_runtimes: dict[str, dict[str, str]] | None = None


@dataclass(frozen=True)
class Job(_Json):
    url: str
    max_duration: int
    nice: int = 0  # levels below the worker's CPU priority: a playlist's entry (bulk)


@dataclass(frozen=True)
class ListJob(_Json):
    """Read a playlist's entries, flat: the list's pages only, never an entry's page."""

    list_url: str
    max_entries: int  # one more is read, to tell a longer list (truncated)


Request = Job | ListJob


def decode_request(text: str | bytes) -> Request:
    """A request as the worker sent it; raises ValueError (or TypeError) for anything else."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("a request is a JSON object")
    return ListJob(**data) if "list_url" in data else Job(**data)


@dataclass(frozen=True)
class ListEntry:
    video_id: str
    title: str | None = None
    duration: float | None = None


@dataclass(frozen=True)
class Listing:
    """What a ListJob's process writes to its data pipe, as one JSON object."""

    title: str | None
    entries: tuple[ListEntry, ...]
    truncated: bool

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> Listing:
        data = json.loads(text)
        entries = tuple(ListEntry(**entry) for entry in data["entries"])
        return cls(data.get("title"), entries, bool(data.get("truncated")))


@dataclass(frozen=True)
class Ready(_Json):
    """yt-dlp as a fetch server (or a download process) loaded it."""

    yt_dlp: str  # its version
    location: str  # the directory it was imported from
    ejs: str | None = None  # yt-dlp-ejs's version, when present
    plugins: tuple[str, ...] = ()  # "name version" of the PO-token providers found

    @classmethod
    def from_json(cls, text: str | bytes) -> Self:
        data = json.loads(text)
        return cls(**{**data, "plugins": tuple(data.get("plugins") or ())})


@dataclass(frozen=True)
class Started:
    pid: int


@dataclass(frozen=True)
class Refused:
    error: str


@dataclass(frozen=True)
class Exited:
    pid: int
    code: int


Answer = Ready | Started | Refused | Exited


def encode_answer(answer: Answer) -> bytes:
    if isinstance(answer, Ready):
        return json.dumps({"ready": json.loads(answer.to_json())}).encode()
    if isinstance(answer, Started):
        return json.dumps({"pid": answer.pid}).encode()
    if isinstance(answer, Refused):
        return json.dumps({"error": answer.error}).encode()
    return json.dumps({"exited": answer.pid, "code": answer.code}).encode()


def decode_answer(message: bytes) -> Answer:
    """Raises ValueError for a message the server would never send."""
    data = json.loads(message)
    if "ready" in data:
        return Ready.from_json(json.dumps(data["ready"]))
    if "pid" in data:
        return Started(int(data["pid"]))
    if "error" in data:
        return Refused(str(data["error"]))
    if "exited" in data:
        return Exited(int(data["exited"]), int(data["code"]))
    raise ValueError(f"unknown fetch server message: {message[:100]!r}")


def encode_event(event: str, **fields: Any) -> str:
    return json.dumps({"event": event, **fields}) + "\n"


def decode_event(line: str) -> dict[str, Any] | None:
    """An event line, or None for anything else (a stray line never stops a job)."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None
