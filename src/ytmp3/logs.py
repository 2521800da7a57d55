"""Logging: one line per event, text for people or JSON for machines, each tagged with
the request or job it belongs to (carried in context variables, so deep code needs no
argument for it)."""

from __future__ import annotations

import json
import logging
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


def _utc(created: float) -> str:
    millis = int(created * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{millis:03d}Z"


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        key: value
        for key, value in record.__dict__.items()
        if key not in _STANDARD and key not in CONTEXT_FIELDS and not key.startswith("_")
    }


class JsonFormatter(logging.Formatter):
    """One JSON object per line; a traceback stays inside its line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        entry.update(_extras(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message [request_id=… job_id=… key=value]`, for people."""

    def format(self, record: logging.LogRecord) -> str:
        # a video title with a newline must not start a line of its own
        message = record.getMessage().replace("\r", "\\r").replace("\n", "\\n")
        fields = {
            name: getattr(record, name)
            for name in CONTEXT_FIELDS
            if getattr(record, name, None) is not None
        }
        fields.update(_extras(record))
        line = f"{_utc(record.created)} {record.levelname} {record.name}: {message}"
        if fields:
            line += " [" + " ".join(f"{k}={v}" for k, v in fields.items()) + "]"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
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
