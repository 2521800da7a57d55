"""Per request: an id (in the logs and the `X-Request-ID` header), one access log line,
and the HTTP metrics. Pure ASGI, outermost, so every answer passes through it."""

from __future__ import annotations

import logging
import re
import secrets
import time

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ytmp3 import logs, metrics

log = logging.getLogger("ytmp3.access")

HEADER = "X-Request-ID"
# Probes and scrapes come every few seconds: logged at DEBUG, or they drown the rest.
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
# An id from a proxy in front is kept, so one request reads the same in both logs.
_GOOD_ID = re.compile(r"\A[A-Za-z0-9._:-]{1,64}\Z")


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = bytes(value).decode("latin-1")
            if _GOOD_ID.match(text):
                return text
    return secrets.token_hex(8)


def _route(scope: Scope) -> str:
    """The route's template (`/status/{job_id}`), never the raw path: bounded label values."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    return "/static" if scope["path"].startswith("/static/") else "unmatched"


class RequestLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _request_id(scope)
        token = logs.request_id.set(rid)
        job_token = logs.job_id.set(None)  # a route may name its job (POST /submit does)
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering
        sent = 0

        async def send_wrapper(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append(HEADER, rid)
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            seconds = time.perf_counter() - started
            method, route = scope["method"], _route(scope)
            metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
            metrics.HTTP_SECONDS.labels(method, route).observe(seconds)
            metrics.HTTP_RESPONSE_BYTES.labels(route).inc(sent)
            client = scope.get("client")
            log.log(
                logging.DEBUG if route in QUIET_ROUTES else logging.INFO,
                "%s %s %d %.1f ms",
                method,
                scope["path"],
                status,
                seconds * 1000,
                extra={
                    "status": status,
                    "duration_ms": round(seconds * 1000, 1),
                    "bytes": sent,
                    "peer": client[0] if client else None,
                },
            )
            logs.job_id.reset(job_token)
            logs.request_id.reset(token)
