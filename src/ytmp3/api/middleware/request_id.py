"""Each request's id: the proxy's `X-Request-ID` when it is safe to log, else a new one;
set for every line logged while the request runs, and sent back on the answer."""

from __future__ import annotations

import itertools
import os
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ytmp3 import logs

HEADER = "X-Request-ID"
_HEADER = HEADER.lower().encode("latin-1")
# An id from a proxy in front is kept, so one request reads the same in both logs.
_GOOD_ID = re.compile(r"\A[A-Za-z0-9._:-]{1,64}\Z")
_prefix = os.urandom(4).hex()
_count = itertools.count(int.from_bytes(os.urandom(4)))


def _reseed() -> None:
    global _prefix, _count
    _prefix, _count = os.urandom(4).hex(), itertools.count(int.from_bytes(os.urandom(4)))


os.register_at_fork(after_in_child=_reseed)  # a forked process counts on its own prefix


def given_request_id(value: bytes) -> str | None:
    """The X-Request-ID a client or proxy sent, if it is one we can log safely."""
    text = value.decode("latin-1")
    return text if _GOOD_ID.match(text) else None


def new_request_id() -> str:
    """16 hex digits: this process's random half, then a count (unique, and no syscall)."""
    return f"{_prefix}{next(_count) & 0xFFFFFFFF:08x}"


def request_id_of(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == _HEADER:
            return given_request_id(value) or new_request_id()
    return new_request_id()


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id_of(scope)
        header = (_HEADER, rid.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                # a copy: a response may hand the same header list to every answer
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        token = logs.request_id.set(rid)
        job_token = logs.job_id.set(None)  # a route may name its job (POST /submit does)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            logs.job_id.reset(job_token)
            logs.request_id.reset(token)
