"""Logging: one line per event, text for people or JSON for machines, each tagged with
the request or job it belongs to (carried in context variables, so deep code needs no
argument for it)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
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


class ContextFilter(logging.Filter):
    """Puts the current request id and job id on every record (an explicit extra wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in (("request_id", request_id), ("job_id", job_id)):
            if getattr(record, name, None) is None:
                setattr(record, name, var.get())
        return True


_NOT_EXTRA = _STANDARD | frozenset(CONTEXT_FIELDS)
# (second, its text): lines come many a second, and strftime is the dear part of the time
_last_second: tuple[int, str] = (-1, "")


def _utc(created: float) -> str:
    global _last_second
    second = int(created)
    if _last_second[0] != second:
        _last_second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    millis = int(created * 1000) % 1000
    return f"{_last_second[1]}.{millis:03d}Z"


def _context() -> dict[str, Any]:
    """The request and job ids of the current context, those that are set."""
    fields: dict[str, Any] = {}
    if (value := request_id.get()) is not None:
        fields["request_id"] = value
    if (value := job_id.get()) is not None:
        fields["job_id"] = value
    return fields


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record's context ids, then its extras, in the order they were given."""
    fields = {
        name: value for name in CONTEXT_FIELDS if (value := getattr(record, name, None)) is not None
    }
    fields.update(
        (key, value)
        for key, value in record.__dict__.items()
        if key not in _NOT_EXTRA and not key.startswith("_")
    )
    return fields


def json_line(created: float, level: str, logger: str, message: str, fields: dict[str, Any]) -> str:
    """One JSON object; a traceback (in `fields`) stays inside its line."""
    entry: dict[str, Any] = {
        "time": _utc(created),
        "level": level,
        "logger": logger,
        "message": message,
        "pid": os.getpid(),
    }
    entry.update(fields)
    return json.dumps(entry, default=str, ensure_ascii=False)


def text_line(created: float, level: str, logger: str, message: str, fields: dict[str, Any]) -> str:
    """`time LEVEL logger: message [request_id=… job_id=… key=value]`, for people."""
    # a video title with a newline must not start a line of its own
    message = message.replace("\r", "\\r").replace("\n", "\\n")
    line = f"{_utc(created)} {level} {logger}: {message}"
    if fields:
        line += " [" + " ".join([f"{k}={v}" for k, v in fields.items()]) + "]"
    return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record)
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        return json_line(record.created, record.levelname, record.name, record.getMessage(), fields)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = text_line(
            record.created, record.levelname, record.name, record.getMessage(), _fields(record)
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class LineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """ytmp3's one handler: each event one line on the stream, in text or JSON.

    Lines written from values (`write`) within one turn of the event loop go out in one
    write at the end of that turn: a system call per line was the dearest part of the
    access line. Anything logged the usual way first sends what waits, so lines keep
    their order; so do `flush()` and logging's shutdown.
    """

    def __init__(self, stream: TextIO, *, json_format: bool) -> None:
        super().__init__(stream)
        self.context = ContextFilter()
        self.addFilter(self.context)
        self.setFormatter(JsonFormatter() if json_format else TextFormatter())
        self.line = json_line if json_format else text_line
        self._pending: list[str] = []

    def plain(self) -> bool:
        """Configured as `configure` left it: what it writes is `self.line` of the values."""
        return len(self.filters) == 1 and self.filters[0] is self.context

    def write(self, level: int, logger: str, message: str, fields: dict[str, Any]) -> None:
        """Write an event that has no LogRecord: the line the formatter would make of one."""
        line = self.line(time.time(), logging.getLevelName(level), logger, message, fields)
        with self.lock:  # type: ignore[union-attr]
            if not self._pending:
                try:
                    asyncio.get_running_loop().call_soon(self.flush)
                except RuntimeError:  # no event loop here: at once
                    self.stream.write(line + self.terminator)
                    self.stream.flush()
                    return
            self._pending.append(line + self.terminator)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if self._pending:
                lines = "".join(self._pending)
                self._pending.clear()
                try:
                    self.stream.write(lines)
                except Exception:
                    self.handleError(logging.makeLogRecord({"msg": lines}))
            super().flush()

    def emit(self, record: logging.LogRecord) -> None:
        if self._pending:
            self.flush()
        super().emit(record)


def _sole_handler(logger: logging.Logger, level: int) -> LineHandler | None:
    """ytmp3's handler when it is the only one an event of `logger` at `level` reaches."""
    if logger.disabled:
        return None
    found: LineHandler | None = None
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return None
        for handler in current.handlers:
            if level < handler.level:
                continue
            if found is not None or not isinstance(handler, LineHandler) or not handler.plain():
                return None
            found = handler
        current = current.parent if current.propagate else None
    return found


def event(logger: logging.Logger, level: int, message: str, fields: dict[str, Any]) -> None:
    """`logger.log(level, message, extra=fields)`, cheaper for the lines of every request.

    A LogRecord costs more than its line: when ytmp3's handler is the only one the event
    reaches, as `configure` sets things up, it writes the line from the values. Anything
    else on the way (a test's capture, another handler or filter) gets a real record.
    """
    if not logger.isEnabledFor(level):
        return
    handler = _sole_handler(logger, level)
    if handler is not None:
        try:
            handler.write(level, logger.name, message, {**_context(), **fields})
            return
        except Exception:  # the standard path reports it (Handler.handleError)
            pass
    logger.handle(logger.makeRecord(logger.name, level, "", 0, message, (), None, extra=fields))


def configure(settings: Settings, stream: TextIO | None = None) -> None:
    """Route every logger (ours, uvicorn's, ARQ's) through one handler on stderr."""
    handler = LineHandler(stream or sys.stderr, json_format=settings.log_format == "json")
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
