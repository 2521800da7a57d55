"""Per request: its id, one access log line and the HTTP metrics (ytmp3.api.middleware calls
these for every answer). Kept cheap: they run on every request, the hottest path included."""

from __future__ import annotations

import itertools
import logging
import os
import re

from starlette.types import Scope

from ytmp3 import logs
from ytmp3.api.http_metrics import HTTP

log = logging.getLogger("ytmp3.access")

HEADER = "X-Request-ID"
# Probes and scrapes come every few seconds: logged at DEBUG, or they drown the rest.
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
# An id from a proxy in front is kept, so one request reads the same in both logs.
_GOOD_ID = re.compile(r"\A[A-Za-z0-9._:-]{1,64}\Z")
# A path is the client's to choose: a line shows this much of it, and its length.
MAX_LOGGED_PATH = 256
_PREFIX = os.urandom(4).hex()
_count = itertools.count(int.from_bytes(os.urandom(4)))


def _reseed() -> None:
    global _PREFIX, _count
    _PREFIX, _count = os.urandom(4).hex(), itertools.count(int.from_bytes(os.urandom(4)))


os.register_at_fork(after_in_child=_reseed)  # a forked process counts on its own prefix


def given_request_id(value: bytes) -> str | None:
    """The X-Request-ID a client or proxy sent, if it is one we can log safely."""
    text = value.decode("latin-1")
    return text if _GOOD_ID.match(text) else None


def new_request_id() -> str:
    """16 hex digits: this process's random half, then a count (unique, and no syscall)."""
    return f"{_PREFIX}{next(_count) & 0xFFFFFFFF:08x}"


def route_label(scope: Scope) -> str:
    """The route's template (`/status/{job_id}`), never the raw path: bounded label values."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    return "/static" if scope["path"].startswith("/static/") else "unmatched"


def shown_path(path: str) -> str:
    if len(path) <= MAX_LOGGED_PATH:
        return path
    return f"{path[:MAX_LOGGED_PATH]}…({len(path)} chars)"


def record(scope: Scope, status: int, seconds: float, sent: int) -> None:
    """Count the answer and write its access line."""
    method, route = scope["method"], route_label(scope)
    HTTP.observe(method, route, status, seconds, sent)
    level = logging.DEBUG if route in QUIET_ROUTES else logging.INFO
    if not log.isEnabledFor(level):
        return
    client = scope.get("client")
    ms = seconds * 1000
    logs.event(
        log,
        level,
        f"{method} {shown_path(scope['path'])} {status} {ms:.1f} ms",
        {
            "status": status,
            "duration_ms": round(ms, 1),
            "bytes": sent,
            "peer": client[0] if client else None,
        },
    )
