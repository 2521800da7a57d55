"""An httpx transport into an ASGI app in this process, streaming the answer as it is made.

httpx's own ASGITransport hands the body over only once the app has finished it: an
event stream would arrive all at once, when the conversion is over. This one runs the
app in a task and passes each body message on as it is sent (one at a time: the app
waits while the client reads), so events arrive live and a large file is never held
whole. Closing the response tells the app the client went away, then ends its task.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import httpx

Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Message, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]
_END = "ytmp3.end"  # the app returned, or raised (then the message carries the exception)


class StreamingASGITransport(httpx.AsyncBaseTransport):
    def __init__(self, app: ASGIApp, client: tuple[str, int] = ("127.0.0.1", 0)) -> None:
        self.app = app
        self.client = client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        scope: Message = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower(), v) for (k, v) in request.headers.raw],
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "server": (request.url.host, request.url.port),
            "client": self.client,
            "root_path": "",
        }
        body = await request.aread()
        sent_body = False
        gone = asyncio.Event()
        outbox: asyncio.Queue[Message] = asyncio.Queue(maxsize=1)

        async def receive() -> Message:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if gone.is_set():
                raise OSError("the client closed the response")
            await outbox.put(message)

        async def run() -> None:
            end: Message = {"type": _END, "error": None}
            try:
                await self.app(scope, receive, send)
            except Exception as exc:
                end["error"] = exc
            if not gone.is_set():
                await outbox.put(end)

        task = asyncio.create_task(run())
        try:
            start = await outbox.get()
        except BaseException:
            task.cancel()  # our caller was cancelled: so is the app's work for it
            raise
        if start["type"] != "http.response.start":
            await task
            raise httpx.RemoteProtocolError(
                f"the app ended without an answer ({start.get('error')!r})", request=request
            )
        stream = _Body(outbox, task, gone, head=request.method == "HEAD")
        return httpx.Response(start["status"], headers=start.get("headers", []), stream=stream)


class _Body(httpx.AsyncByteStream):
    def __init__(
        self,
        outbox: asyncio.Queue[Message],
        task: asyncio.Task[None],
        gone: asyncio.Event,
        *,
        head: bool,
    ) -> None:
        self._outbox, self._task, self._gone, self._head = outbox, task, gone, head

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            message = await self._outbox.get()
            if message["type"] == _END:
                if message["error"] is not None:
                    raise httpx.ReadError(f"the app failed: {message['error']!r}")
                return
            if message["type"] != "http.response.body":
                continue
            chunk = message.get("body", b"")
            if chunk and not self._head:
                yield chunk
            if not message.get("more_body", False):
                return

    async def aclose(self) -> None:
        self._gone.set()
        # unblock an app waiting to hand over a message, then let it finish or cancel it
        while not self._outbox.empty():
            self._outbox.get_nowait()
        if not self._task.done():
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
