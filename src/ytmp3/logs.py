"""Logging: one line per event, text for people or JSON for machines, each tagged with
the request or job it belongs to (carried in context variables, so deep code needs no
argument for it). Stock `logging`: one StreamHandler, a filter that adds the context, and
a formatter per format."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from contextvars import ContextVar
from typing import Any, TextIO

from ytmp3.config import Settings

request_id: ContextVar[str | None] = ContextVar("ytmp3_request_id", default=None)
job_id: ContextVar[str | None] = ContextVar("ytmp3_job_id", default=None)

CONTEXT_FIELDS = ("request_id", "job_id")
# What every LogRecord has; anything else on a record came from `extra=` and is logged.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's message with terminal colours: the plain one is enough
}
_NOT_EXTRA = _STANDARD | frozenset(CONTEXT_FIELDS)

# What could end a line, rewrite one, or hide what a line says, in any reader: the C0
# controls (LF, CR, VT, FF, ESC…), DEL, the C1 controls (NEL…), the Unicode line and
# paragraph separators (str.splitlines() and some viewers break lines there), and the
# bidirectional controls (they reorder what a terminal shows). Client text (a path, a
# video title) reaches the logs: none of these is ever written raw.
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_one(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def escape(text: str) -> str:
    """`text` with every character of UNSAFE written as an escape (`\\n`, `\\x1b`, `\\u2028`)."""
    return UNSAFE.sub(_escape_one, text)


def _json_escape_one(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def utc(created: float) -> str:
    """`2026-01-01T12:00:00.123Z`."""
    millis = int(created * 1000) % 1000
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(created))}.{millis:03d}Z"


class ContextFilter(logging.Filter):
    """Puts the current request id and job id on every record (an explicit extra wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id.get()
        if getattr(record, "job_id", None) is None:
            record.job_id = job_id.get()
        return True


def fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record's context ids (those set), then its extras, in the order they were given."""
    found = {
        name: value for name in CONTEXT_FIELDS if (value := getattr(record, name, None)) is not None
    }
    found.update(
        (key, value)
        for key, value in record.__dict__.items()
        if key not in _NOT_EXTRA and not key.startswith("_")
    )
    return found


class JsonFormatter(logging.Formatter):
    """One JSON object a line; a traceback stays inside its line (`exception`)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": os.getpid(),
        }
        entry.update(fields(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # json.dumps escapes the C0 controls; the rest of UNSAFE is valid raw in JSON but
        # not in every reader of a line, so it is escaped too (the parsed value is the same).
        line = json.dumps(entry, default=str, ensure_ascii=False)
        return UNSAFE.sub(_json_escape_one, line)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message [request_id=… job_id=… key=value]`, for people; a
    traceback follows on lines of its own, indented, so none reads as an event."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{utc(record.created)} {record.levelname} {record.name}: "
        line += escape(record.getMessage())
        extra = fields(record)
        if extra:
            line += " [" + " ".join(f"{escape(k)}={escape(str(v))}" for k, v in extra.items()) + "]"
        if record.exc_info:
            trace = self.formatException(record.exc_info)
            line += "".join(f"\n  {escape(part)}" for part in trace.splitlines())
        return line


def configure(settings: Settings, stream: TextIO | None = None) -> None:
    """Route every logger (ours, uvicorn's, ARQ's) through one handler on stderr."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    # uvicorn configures nothing itself (log_config=None): its loggers reach ours
    for name in ("uvicorn", "uvicorn.error", "arq"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True


async def bind_job(ctx: dict[str, Any]) -> None:
    """ARQ's on_job_start: every line logged while the job runs carries its id."""
    job_id.set(str(ctx["job_id"]))
