"""One access line per answer, and the HTTP metrics (ytmp3.api.middleware.http_metrics)."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ytmp3.api.middleware.http_metrics import HTTP

log = logging.getLogger("ytmp3.access")

# Probes and scrapes come every few seconds: logged at DEBUG, or they drown the rest.
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
# A path is the client's to choose: a line shows this much of it, and its length.
MAX_LOGGED_PATH = 256


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
    log.log(
        level,
        "%s %s %d %.1f ms",
        method,
        shown_path(scope["path"]),
        status,
        ms,
        extra={
            "status": status,
            "duration_ms": round(ms, 1),
            "bytes": sent,
            "peer": client[0] if client else None,
        },
    )


class AccessMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering
        sent = 0

        async def counting_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            elif message["type"] == "http.response.zerocopysend":  # ytmp3.api.zero_copy
                sent += message.get("count") or 0
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            record(scope, status, time.perf_counter() - started, sent)
