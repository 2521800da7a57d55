"""The request body limit: a declared length over it is refused before a byte is read, a
body that grows past it is refused as soon as it does (never read whole)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ytmp3.api.envelope import envelope

MAX_BODY = 16 * 1024


def declared_too_large(content_length: bytes | None, max_body: int) -> bool:
    """A Content-Length over the limit: refused before a byte of the body is read."""
    if content_length is None:
        return False
    try:
        return int(content_length) > max_body
    except ValueError:
        return False  # the server refuses a garbled length itself


def refusal(max_body: int) -> Response:
    return envelope(
        {},
        f"The request body is larger than {max_body // 1024} KiB.",
        "PAYLOAD_TOO_LARGE",
        status_code=413,
        headers={"Connection": "close"},
    )


def _content_length(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return bytes(value)
    return None


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_body = self.max_body
        if declared_too_large(_content_length(scope), max_body):
            await refusal(max_body)(scope, receive, send)
            return
        received = 0
        refused = False  # answered here: whatever the app sends after is dropped

        async def limited_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request" and not refused:
                received += len(message.get("body", b""))
                if received > max_body:
                    # Answer now and tell the app the client left, so it stops reading.
                    await refusal(max_body)(scope, receive, send)
                    refused = True
                    return {"type": "http.disconnect"}
            return message

        async def send_unless_refused(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, limited_receive, send_unless_refused)
