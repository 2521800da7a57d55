"""The one ASGI layer ytmp3 puts around its app. Per HTTP request: an id (in the logs and
the `X-Request-ID` header), the body limit, then one access log line and the metrics.

One pure-ASGI layer with one send wrapper, not a middleware per concern: each layer costs
every request a call, closures and a wrapper per message. Outermost of ytmp3's own, so
every answer passes through it, the body limit's included.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ytmp3 import logs
from ytmp3.api import request_log
from ytmp3.api.body_limit import MAX_BODY, declared_too_large, refusal

_ID_HEADER = request_log.HEADER.lower().encode("latin-1")


class RequestMiddleware:
    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid: str | None = None
        declared: bytes | None = None
        for name, value in scope["headers"]:  # one pass for both headers we read
            if name == b"content-length":
                declared = value
            elif name == _ID_HEADER and rid is None:
                rid = request_log.given_request_id(value)
        if rid is None:
            rid = request_log.new_request_id()
        id_header = (_ID_HEADER, rid.encode("latin-1"))
        token = logs.request_id.set(rid)
        job_token = logs.job_id.set(None)  # a route may name its job (POST /submit does)
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering
        sent = 0
        refused = False  # the body limit answered: whatever the app sends next is dropped
        max_body = self.max_body
        received = 0

        async def send_wrapper(message: Message) -> None:
            nonlocal status, sent
            if refused:
                return
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
                # a copy: a response may hand the same header list to every answer
                message["headers"] = [*message.get("headers", ()), id_header]
            elif kind == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        async def counting_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request" and not refused:
                received += len(message.get("body", b""))
                if received > max_body:
                    # Answer now and tell the app the client left, so it stops reading.
                    await refusal(max_body)(scope, receive, send_wrapper)
                    refused = True
                    return {"type": "http.disconnect"}
            return message

        try:
            if declared_too_large(declared, max_body):
                await refusal(max_body)(scope, receive, send_wrapper)
            else:
                await self.app(scope, counting_receive, send_wrapper)
        finally:
            request_log.record(scope, status, time.perf_counter() - started, sent)
            logs.job_id.reset(job_token)
            logs.request_id.reset(token)
